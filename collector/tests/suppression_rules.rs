//! Suppression rules: the documented examples of spec §7, operator semantics, rank order and errors.

use serde_json::{Value, json};
use ward_collector::findings::Finding;
use ward_collector::suppression::{FilterAction, FindingCriteria, RuleSet, SuppressionRule};

/// The SSH brute-force example of spec §2.8 (a), with a tag set for the bastion example.
fn ssh_brute_force() -> Finding {
    serde_json::from_value(json!({
        "schemaVersion": "2.0", "accountId": "193043430472", "region": "us-east-1", "partition": "aws",
        "id": "46ba0ac2845071e23ccdeb2ae03bfdea",
        "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2,
        "createdAt": "2020-08-22T09:34:34.146Z", "updatedAt": "2020-09-30T12:14:00.206Z",
        "resource": {"resourceType": "Instance", "instanceDetails": {
            "instanceId": "i-0c10c2c7863d1a356", "imageId": "ami-02354e95b39ca8dec",
            "tags": [{"key": "Name", "value": "kubectl"}, {"key": "Role", "value": "bastion"}]}},
        "service": {"serviceName": "guardduty", "archived": false, "count": 74,
            "eventFirstSeen": "2020-08-22T09:15:57Z", "eventLastSeen": "2020-09-30T11:56:49Z",
            "resourceRole": "TARGET",
            "action": {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                "connectionDirection": "INBOUND", "protocol": "TCP",
                "localPortDetails": {"port": 22, "portName": "SSH"},
                "remoteIpDetails": {"ipAddressV4": "199.241.229.197", "organization": {"asn": "209"}}}}}
    }))
    .unwrap()
}

fn dns_finding(domain: &str) -> Finding {
    serde_json::from_value(json!({
        "type": "Backdoor:EC2/C&CActivity.B!DNS", "severity": 8,
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
        "service": {"archived": false, "action": {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": domain}},
            "additionalInfo": {"value": "{\"threatListName\":\"ProofPoint\"}", "type": "default"}}
    }))
    .unwrap()
}

fn runtime_finding() -> Finding {
    serde_json::from_value(json!({
        "type": "Execution:Runtime/ReverseShell", "severity": 8.5,
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-2"}},
        "service": {"archived": false, "runtimeDetails": {"process": {
            "name": "bash", "executablePath": "/usr/bin/bash", "pid": 4242, "euid": 0,
            "lineage": [{"pid": 4000, "executablePath": "/usr/sbin/sshd"}, {"pid": 1, "executablePath": "/sbin/init"}]}},
            "additionalInfo": {"ward": {"container": {"image": "registry.example/build-runner:7"}}}}
    }))
    .unwrap()
}

fn criteria(value: Value) -> FindingCriteria {
    FindingCriteria::from_json(&value).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn documented_criterion_example() {
    // Spec §7's example, verbatim.
    let c = criteria(json!({"Criterion": {"service.archived": {"Eq": ["false"]},
        "service.action.dnsRequestAction.domain": {"Eq": ["test.example.com"]}}}));
    assert!(c.matches(&dns_finding("test.example.com")));
    assert!(
        !c.matches(&dns_finding("other.example.com")),
        "AND across fields"
    );
    let mut archived = dns_finding("test.example.com");
    archived.service.archived = true;
    assert!(!c.matches(&archived));
}

#[test]
fn documented_common_suppressions() {
    let ssh = ssh_brute_force();
    // Vulnerability scanner: Portscan from a known image.
    let scanner = criteria(json!({"Criterion": {"type": {"Eq": ["Recon:EC2/Portscan"]},
        "resource.instanceDetails.imageId": {"Eq": ["ami-02354e95b39ca8dec"]}}}));
    assert!(!scanner.matches(&ssh), "type differs");
    let mut portscan = ssh.clone();
    portscan.finding_type_name = "Recon:EC2/Portscan".into();
    assert!(scanner.matches(&portscan));
    // Bastion hosts: SSH brute force on instances tagged as bastions (tags resolve through the array).
    let bastion = criteria(
        json!({"Criterion": {"type": {"Eq": ["UnauthorizedAccess:EC2/SSHBruteForce"]},
        "resource.instanceDetails.tags.value": {"Eq": ["bastion"]}}}),
    );
    assert!(bastion.matches(&ssh));
    // Intentionally exposed hosts: a tag key.
    let exposed = criteria(
        json!({"Criterion": {"resource.instanceDetails.tags.key": {"Eq": ["Exposed", "Role"]}}}),
    );
    assert!(exposed.matches(&ssh), "OR within a field's values");
    // On-prem egress: API caller IPv4 on credential-exfiltration findings.
    let egress = criteria(json!({"Criterion": {
        "type": {"Eq": ["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"]},
        "service.action.awsApiCallAction.remoteIpDetails.ipAddressV4": {"Eq": ["198.51.100.6"]}}}));
    let exfil: Finding = serde_json::from_value(json!({
        "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "severity": 8,
        "service": {"action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets",
            "remoteIpDetails": {"ipAddressV4": "198.51.100.6"}}}}}))
    .unwrap();
    assert!(egress.matches(&exfil));
    assert!(!egress.matches(&ssh));
}

#[test]
fn api_and_cli_operator_spellings_are_equivalent() {
    let ssh = ssh_brute_force();
    let pairs = [
        (json!({"Eq": ["22"]}), json!({"equals": ["22"]})),
        (json!({"Neq": ["23"]}), json!({"notEquals": ["23"]})),
        (json!({"Gt": 21}), json!({"greaterThan": 21})),
        (json!({"Gte": 22}), json!({"greaterThanOrEqual": 22})),
        (json!({"Lt": 23}), json!({"lessThan": 23})),
        (json!({"Lte": 22}), json!({"lessThanOrEqual": 22})),
        (json!({"Matches": ["2*"]}), json!({"matches": ["2*"]})),
        (json!({"NotMatches": ["3*"]}), json!({"notMatches": ["3*"]})),
    ];
    let path = "service.action.networkConnectionAction.localPortDetails.port";
    for (cli, api) in pairs {
        let a = criteria(json!({"Criterion": {path: cli.clone()}}));
        let b = criteria(json!({"criterion": {path: api.clone()}}));
        assert!(a.matches(&ssh), "{cli}");
        assert!(b.matches(&ssh), "{api}");
    }
    let not = [
        json!({"Eq": ["23"]}),
        json!({"Neq": ["22"]}),
        json!({"Gt": 22}),
        json!({"Lt": 22}),
        json!({"NotMatches": ["22"]}),
    ];
    for condition in not {
        assert!(
            !criteria(json!({path: condition.clone()})).matches(&ssh),
            "{condition}"
        );
    }
}

#[test]
fn severity_bands_and_numeric_comparisons() {
    let high = criteria(json!({"Criterion": {"severity": {"Eq": ["7", "8"]}}}));
    assert!(high.matches(&runtime_finding()), "8.5 is High");
    assert!(!high.matches(&ssh_brute_force()), "2 is Low");
    let at_least_medium = criteria(json!({"Criterion": {"severity": {"gte": 4}}}));
    assert!(at_least_medium.matches(&runtime_finding()));
    assert!(!at_least_medium.matches(&ssh_brute_force()));
    // asn is a string on the wire but compares as a number.
    assert!(criteria(json!({"service.action.networkConnectionAction.remoteIpDetails.organization.asn": {"Lt": 1000}}))
        .matches(&ssh_brute_force()));
}

#[test]
fn timestamps_compare_as_epoch_milliseconds() {
    let ssh = ssh_brute_force();
    // updatedAt 2020-09-30T12:14:00.206Z = 1601468040206.
    assert!(
        criteria(json!({"updatedAt": {"GreaterThanOrEqual": 1_601_468_040_206_i64}})).matches(&ssh)
    );
    assert!(!criteria(json!({"updatedAt": {"GreaterThan": 1_601_468_040_206_i64}})).matches(&ssh));
    // eventLastSeen has no milliseconds on the wire: 2020-09-30T11:56:49Z = 1601467009000.
    let exact = json!({"Gte": 1_601_467_009_000_i64, "Lte": 1_601_467_009_000_i64});
    assert!(criteria(json!({"service.eventLastSeen": exact})).matches(&ssh));
    // Equality against an epoch-ms string works too (2020-08-22T09:15:57Z).
    assert!(criteria(json!({"service.eventFirstSeen": {"Eq": ["1598087757000"]}})).matches(&ssh));
}

#[test]
fn arrays_missing_fields_and_negations() {
    let runtime = runtime_finding();
    // Any lineage element may match.
    assert!(criteria(json!({"service.runtimeDetails.process.lineage.executablePath": {"Eq": ["/usr/sbin/sshd"]}})).matches(&runtime));
    assert!(
        criteria(json!({"service.runtimeDetails.process.lineage.pid": {"Eq": ["1"]}}))
            .matches(&runtime)
    );
    // Negations hold only when no element matches.
    assert!(
        !criteria(json!({"service.runtimeDetails.process.lineage.pid": {"Neq": ["1"]}}))
            .matches(&runtime)
    );
    // A missing field fails positive tests and passes negative ones.
    let missing = "resource.instanceDetails.imageId";
    assert!(!criteria(json!({missing: {"Eq": ["ami-1"]}})).matches(&runtime));
    assert!(criteria(json!({missing: {"Neq": ["ami-1"]}})).matches(&runtime));
    assert!(!criteria(json!({missing: {"Gt": 0}})).matches(&runtime));
    assert!(criteria(json!({missing: {"NotMatches": ["*"]}})).matches(&runtime));
    // Two operators on one field are ANDed.
    let both = criteria(json!({"service.runtimeDetails.process.pid": {"Gt": 4000, "Lt": 5000}}));
    assert!(both.matches(&runtime));
    assert!(
        !criteria(json!({"service.runtimeDetails.process.pid": {"Gt": 4000, "Lt": 4100}}))
            .matches(&runtime)
    );
}

#[test]
fn matches_wildcards_and_ward_extension_fields() {
    let runtime = runtime_finding();
    assert!(criteria(json!({"service.additionalInfo.ward.container.image": {"Matches": ["*/build-runner:*"]}})).matches(&runtime));
    assert!(
        !criteria(json!({"service.additionalInfo.ward.container.image": {"Matches": ["*/web:*"]}}))
            .matches(&runtime)
    );
    assert!(criteria(json!({"type": {"Matches": ["Execution:Runtime/*"]}})).matches(&runtime));
    assert!(
        !criteria(json!({"type": {"Matches": ["execution:*"]}})).matches(&runtime),
        "case-sensitive"
    );
    // The API's wrapped additionalInfo is unwrapped for filtering.
    assert!(
        criteria(json!({"service.additionalInfo.threatListName": {"Eq": ["ProofPoint"]}}))
            .matches(&dns_finding("x.example"))
    );
}

#[test]
fn rule_sets_archive_in_rank_order() {
    let rules = RuleSet::from_json_str(
        &json!([
            {"Name": "keep-everything", "Action": "NOOP", "Rank": 1,
             "FindingCriteria": {"Criterion": {"type": {"Matches": ["*"]}}}},
            {"Name": "bastions", "Action": "ARCHIVE", "Rank": 3, "Description": "bastion SSH noise",
             "FindingCriteria": {"Criterion": {"type": {"Eq": ["UnauthorizedAccess:EC2/SSHBruteForce"]},
                                               "resource.instanceDetails.tags.value": {"Eq": ["bastion"]}}}},
            {"name": "all-low", "action": "ARCHIVE", "rank": 2,
             "findingCriteria": {"criterion": {"severity": {"lt": 4}}}}
        ])
        .to_string(),
    )
    .unwrap();
    let order: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, ["keep-everything", "all-low", "bastions"]);
    assert_eq!(rules.rules()[0].action, FilterAction::Noop);

    let mut ssh = ssh_brute_force();
    assert_eq!(
        rules.apply(&mut ssh).map(|r| r.name.as_str()),
        Some("all-low"),
        "lowest-ranked ARCHIVE rule reported"
    );
    assert!(ssh.service.archived);

    let mut runtime = runtime_finding();
    assert!(
        rules.apply(&mut runtime).is_none(),
        "NOOP filters never archive"
    );
    assert!(!runtime.service.archived);
}

#[test]
fn clear_errors_for_bad_criteria() {
    let cases = [
        (
            json!({"Criterion": {"type": {"Equal": ["x"]}}}),
            "criterion \"type\": unknown operator \"Equal\"",
        ),
        (
            json!({"Criterion": {"type": {"Eq": "x"}}}),
            "expected a list of values",
        ),
        (
            json!({"Criterion": {"type": {"Eq": []}}}),
            "expected 1 to 50 values",
        ),
        (
            json!({"Criterion": {"severity": {"Gt": "7"}}}),
            "expected a number",
        ),
        (
            json!({"Criterion": {"type": {"Matches": [""]}}}),
            "patterns must be 1 to 512",
        ),
        (
            json!({"Criterion": {"type": {"Eq": [{"nested": 1}]}}}),
            "values must be strings",
        ),
        (
            json!({"Criterion": {"Service.Archived": {"Eq": ["false"]}}}),
            "did you mean \"service\"",
        ),
        (
            json!({"Criterion": {"service..archived": {"Eq": ["false"]}}}),
            "empty segment",
        ),
        (
            json!({"Criterion": {"type": ["x"]}}),
            "condition must be an object",
        ),
        (json!({"Criterion": {"type": {}}}), "no operator"),
        (json!({"Criterion": {}}), "1 to 50 fields"),
        (json!(["not", "an", "object"]), "expected a JSON object"),
    ];
    for (input, expected) in cases {
        let err = FindingCriteria::from_json(&input).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{input}: got {err:?}, wanted {expected:?}"
        );
    }
    let too_many: serde_json::Map<String, Value> = (0..51)
        .map(|i| (format!("service.f{i}"), json!({"Eq": ["x"]})))
        .collect();
    assert!(
        FindingCriteria::from_json(&json!({"Criterion": too_many}))
            .unwrap_err()
            .to_string()
            .contains("found 51")
    );
    assert!(
        FindingCriteria::from_json_str("{nope")
            .unwrap_err()
            .to_string()
            .contains("invalid JSON")
    );
}

#[test]
fn clear_errors_for_bad_rules() {
    let criterion = json!({"Criterion": {"type": {"Eq": ["x"]}}});
    let cases = [
        (
            json!({"Action": "ARCHIVE", "FindingCriteria": criterion}),
            "\"Name\"",
        ),
        (
            json!({"Name": "r", "Action": "DELETE", "FindingCriteria": criterion}),
            "ARCHIVE or NOOP",
        ),
        (
            json!({"Name": "r", "Rank": 0, "FindingCriteria": criterion}),
            "from 1 to 100",
        ),
        (json!({"Name": "r"}), "\"FindingCriteria\" is required"),
        (
            json!({"Name": "r", "FindingCriteria": criterion, "Extra": 1}),
            "unknown member \"Extra\"",
        ),
        (
            json!({"Name": "r", "FindingCriteria": {"Criterion": {"type": {"Bogus": [1]}}}}),
            "rule \"r\" criterion \"type\"",
        ),
    ];
    for (input, expected) in cases {
        let err = SuppressionRule::from_json(&input).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{input}: got {err:?}, wanted {expected:?}"
        );
    }
    let rule = |name: &str| json!({"Name": name, "FindingCriteria": criterion});
    let dup =
        RuleSet::from_json_str(&json!([rule("a"), rule("b"), rule("a")]).to_string()).unwrap_err();
    assert!(
        dup.to_string().contains("two rules are named \"a\""),
        "{dup}"
    );
    let positioned =
        RuleSet::from_json_str(&json!([rule("a"), {"Name": "b"}]).to_string()).unwrap_err();
    assert!(
        positioned.to_string().starts_with("rule #2"),
        "{positioned}"
    );
}
