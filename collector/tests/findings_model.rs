//! The finding model against the example findings of the GuardDuty reference (spec §2.8): each
//! example parses, every member lands in a typed field, and re-serialising gives the same JSON.

use serde_json::{Value, json};
use ward_collector::findings::{
    Action, AggregationKey, Aggregator, DnsRequestAction, Finding, FindingType, InstanceDetails,
    Occurrence, ProcessDetails, Resource, RuntimeDetails, Scope, SeverityLevel, WardContainer,
    WardDetails, WardProcess,
};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/spec/guardduty.md"
);

/// The ```json blocks of spec §2.8.
fn example_findings() -> Vec<String> {
    let spec = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("reading {SPEC}: {e}"));
    let start = spec.find("### 2.8 Example findings").expect("§2.8 heading");
    let end = start
        + spec[start..]
            .find("\n## 3.")
            .expect("§3 heading after §2.8");
    let section = &spec[start..end];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```json\n") {
        let body = &rest[open + 8..];
        let close = body.find("```").expect("closing fence");
        blocks.push(body[..close].to_owned());
        rest = &body[close + 3..];
    }
    blocks
}

/// GuardDuty's `null` members and Ward's omitted ones mean the same; drop nulls before comparing.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[test]
fn spec_examples_round_trip_exactly() {
    let examples = example_findings();
    assert_eq!(
        examples.len(),
        2,
        "§2.8 has the SSH brute-force and the runtime example"
    );
    for text in examples {
        let original: Value = serde_json::from_str(&text).expect("example is valid JSON");
        let finding: Finding = serde_json::from_str(&text).expect("example parses as a Finding");
        // Nothing may have slipped into the catch-all maps: every example member is modelled.
        assert!(
            finding.other.is_empty(),
            "unmodelled top-level members: {:?}",
            finding.other.keys()
        );
        assert!(
            finding.resource.other.is_empty(),
            "unmodelled resource members: {:?}",
            finding.resource.other.keys()
        );
        assert!(
            finding.service.other.is_empty(),
            "unmodelled service members: {:?}",
            finding.service.other.keys()
        );
        let reserialised = serde_json::to_value(&finding).unwrap();
        assert_eq!(
            reserialised,
            without_nulls(original),
            "round trip of {}",
            finding.finding_type_name
        );
    }
}

#[test]
fn spec_examples_parse_into_the_expected_typed_values() {
    let examples = example_findings();
    let ssh: Finding = serde_json::from_str(&examples[0]).unwrap();
    assert_eq!(
        ssh.finding_type(),
        Some(FindingType::UnauthorizedAccessEc2SshBruteForce)
    );
    assert_eq!(ssh.severity.level(), SeverityLevel::Low);
    assert_eq!(ssh.service.count, 74);
    let connection = ssh
        .service
        .action
        .as_ref()
        .unwrap()
        .network_connection_action
        .as_ref()
        .unwrap();
    assert_eq!(
        connection.local_port_details.as_ref().unwrap().port,
        Some(22)
    );
    let remote = connection.remote_ip_details.as_ref().unwrap();
    assert_eq!(remote.ip_address_v4.as_deref(), Some("199.241.229.197"));
    assert_eq!(
        remote.organization.as_ref().unwrap().asn.as_deref(),
        Some("209")
    );
    assert_eq!(remote.geo_location.as_ref().unwrap().lat, Some(42.5122));
    assert_eq!(
        ssh.resource.identity().as_deref(),
        Some("instance=i-0c10c2c7863d1a356")
    );

    let runtime: Finding = serde_json::from_str(&examples[1]).unwrap();
    assert_eq!(
        runtime.finding_type(),
        Some(FindingType::PrivilegeEscalationRuntimeCGroupsReleaseAgentModified)
    );
    assert_eq!(runtime.severity.label(), "High");
    let details = runtime.service.runtime_details.as_ref().unwrap();
    let process = details.process.as_ref().unwrap();
    assert_eq!(process.pid, Some(1234));
    assert_eq!(process.lineage.len(), 2);
    assert_eq!(process.lineage[1].pid, Some(1230));
    assert_eq!(
        details
            .context
            .as_ref()
            .unwrap()
            .release_agent_path
            .as_deref(),
        Some("GeneratedFindingPath")
    );
    // The API's {"value": "<json>", "type": "default"} wrapper is unwrapped for readers.
    let info = runtime.service.additional_info_entries();
    assert_eq!(info["sample"], json!(true));
    assert_eq!(
        info["agentDetails"]["agentId"],
        json!("GeneratedFindingAgentId")
    );
    assert_eq!(
        runtime.service.threat_list_name().as_deref(),
        Some("GeneratedFindingThreatListName")
    );
}

#[test]
fn unknown_members_survive_a_round_trip() {
    let text = r#"{"type":"Execution:Lambda/Whatever","severity":5.5,
        "resource":{"resourceType":"Lambda","lambdaDetails":{"functionName":"f"}},
        "service":{"archived":false,"malwareScanDetails":{"threats":[]}},
        "futureMember":1}"#;
    let finding: Finding = serde_json::from_str(text).unwrap();
    assert_eq!(finding.finding_type(), None);
    assert_eq!(
        serde_json::to_value(&finding).unwrap(),
        serde_json::from_str::<Value>(text).unwrap()
    );
}

fn runtime_dns_finding() -> Finding {
    let t = FindingType::BackdoorRuntimeCncActivityBDns;
    let resource = Resource {
        resource_type: Some("Instance".into()),
        instance_details: Some(InstanceDetails {
            instance_id: Some("i-0abc".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let key = AggregationKey::new(t, &resource, [("domain", "guarddutyc2activityb.com")]).unwrap();
    let mut details = Finding {
        finding_type_name: t.name().into(),
        severity: t.default_severity(),
        title: "Process curl is querying a domain name associated with a known Command & Control server.".into(),
        resource,
        ..Finding::default()
    };
    details.service.action = Some(Action::dns_request(DnsRequestAction {
        domain: Some("guarddutyc2activityb.com".into()),
        protocol: Some("UDP".into()),
        blocked: Some(false),
        ..Default::default()
    }));
    details.service.feature_name = Some("RuntimeMonitoring".into());
    details.service.runtime_details = Some(RuntimeDetails {
        process: Some(ProcessDetails {
            name: Some("curl".into()),
            executable_path: Some("/usr/bin/curl".into()),
            pid: Some(4242),
            ..Default::default()
        }),
        context: None,
    });
    details.service.set_ward_details(&WardDetails {
        event_ids: vec!["evt-1".into(), "evt-2".into()],
        process: Some(WardProcess {
            pid: Some(4242),
            command_line: vec!["curl".into(), "http://guarddutyc2activityb.com/".into()],
            ..Default::default()
        }),
        container: Some(WardContainer {
            id: Some("3f2a".into()),
            image: Some("nginx:1.27".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut aggregator = Aggregator::new(Scope::new("111122223333", "eu-west-1", "det0"));
    aggregator
        .record(Occurrence {
            key,
            event_time: 1_700_000_000_123,
            details,
        })
        .unwrap()
        .1
        .clone()
}

#[test]
fn ward_findings_serialise_in_guardduty_shape_with_extensions_under_additional_info() {
    let finding = runtime_dns_finding();
    let json = serde_json::to_value(&finding).unwrap();
    assert_eq!(json["schemaVersion"], "2.0");
    assert_eq!(json["type"], "Backdoor:Runtime/C&CActivity.B!DNS");
    assert_eq!(json["severity"], json!(8));
    assert_eq!(json["createdAt"], "2023-11-14T22:13:20.123Z");
    assert_eq!(json["service"]["serviceName"], "guardduty");
    assert_eq!(json["service"]["action"]["actionType"], "DNS_REQUEST");
    assert_eq!(
        json["service"]["action"]["dnsRequestAction"]["domain"],
        "guarddutyc2activityb.com"
    );
    assert_eq!(
        json["service"]["runtimeDetails"]["process"]["executablePath"],
        "/usr/bin/curl"
    );
    assert_eq!(
        json["service"]["additionalInfo"]["ward"]["eventIds"],
        json!(["evt-1", "evt-2"])
    );
    assert_eq!(
        json["service"]["additionalInfo"]["ward"]["container"]["image"],
        "nginx:1.27"
    );
    // Absent optionals are omitted, never written as null.
    assert!(json["service"].get("evidence").is_none());
    assert!(json.get("confidence").is_none());
    let text = serde_json::to_string(&finding).unwrap();
    assert!(!text.contains("null"), "{text}");

    let back: Finding = serde_json::from_str(&text).unwrap();
    assert_eq!(back, finding);
    let ward = back.service.ward_details().expect("ward details readable");
    assert_eq!(
        ward.process.unwrap().command_line[1],
        "http://guarddutyc2activityb.com/"
    );
}
