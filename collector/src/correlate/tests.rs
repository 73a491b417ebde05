//! The stage as a whole: the real runtime engine's findings, cloud-log findings shaped as the
//! foundational engines file them, CloudTrail records, one correlator.

use super::hosts::ConfiguredHost;
use super::*;
use crate::detect::offline::Setup;
use crate::detect::{EngineConfig, HostIdentity};
use crate::findings::resource::resource_type;
use crate::findings::{DnsRequestAction, FindingType, InstanceDetails, Resource};

const INSTANCE: &str = "i-0123456789abcdef0";

fn scope() -> Scope {
    Scope::new("123456789012", "eu-west-1", "ward")
}

fn correlator() -> Correlator {
    let mut hosts = HostMap::new();
    hosts
        .add_configured(ConfiguredHost {
            instance_id: INSTANCE.into(),
            private_ips: vec!["10.0.1.5".into()],
            hostname: Some("web-1".into()),
            ..Default::default()
        })
        .unwrap();
    let mut config = CorrelateConfig::new(scope());
    config.activity.imds_endpoints = vec!["127.0.0.1:8099".parse().unwrap()];
    Correlator::new(config, hosts)
}

fn engine() -> crate::detect::Engine {
    Setup {
        config: EngineConfig {
            scope: scope(),
            host: HostIdentity {
                instance_id: INSTANCE.into(),
                ..HostIdentity::default()
            },
            ..EngineConfig::default()
        },
        ..Setup::default()
    }
    .build()
    .unwrap()
}

fn event(json: &str) -> RuntimeEvent {
    RuntimeEvent::from_json(json).unwrap()
}

/// Runs an agent event through the correlator's index and the runtime engine, and the engine's
/// findings through the correlator.
fn runtime(
    c: &mut Correlator,
    e: &mut crate::detect::Engine,
    ev: &RuntimeEvent,
) -> Vec<Correlated> {
    c.on_runtime_event(INSTANCE, ev);
    e.process(ev)
        .into_iter()
        .flat_map(|emitted| c.on_finding(emitted.finding))
        .collect()
}

const MINER: &str = r#""process":{"pid":4242,"start_time":"2026-03-01T09:59:00Z","name":"xmrig","executable":"/tmp/.x/xmrig",
    "args":["/tmp/.x/xmrig","-o","pool.supportxmr.com:443"],"uid":33,"euid":33,
    "ancestors":[{"pid":4000,"start_time":"2026-03-01T09:00:00Z","name":"bash","executable":"/usr/bin/bash"}]}"#;

fn miner_query(at: &str) -> RuntimeEvent {
    event(&format!(
        r#"{{"type":"dns_query","time":"{at}",{MINER},
            "dns":{{"id":7,"questions":[{{"name":"pool.supportxmr.com","type":"A","class":"IN"}}],"transport":"udp",
            "server":{{"ip":"10.0.0.2","port":53}}}}}}"#
    ))
}

/// A DNS-log finding as the foundational engine files it (type from the built-in pool list,
/// instance from `srcids.instance`, key on the domain).
fn dns_log_finding(domain: &str, at: EpochMillis) -> Finding {
    let t =
        crate::intel::builtin::mining_pool_finding(domain, crate::findings::AffectedResource::Ec2)
            .expect("a pool domain");
    let resource = Resource {
        resource_type: Some(resource_type::INSTANCE.into()),
        instance_details: Some(InstanceDetails {
            instance_id: Some(INSTANCE.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let key = AggregationKey::new(t, &resource, [("domain", domain)]).unwrap();
    let mut details = Finding::draft(t, resource);
    details.service.action = Some(Action {
        action_type: Some("DNS_REQUEST".into()),
        dns_request_action: Some(DnsRequestAction {
            domain: Some(domain.into()),
            protocol: Some("UDP".into()),
            blocked: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut agg = Aggregator::new(scope());
    agg.record(Occurrence {
        key,
        event_time: at,
        details,
    })
    .unwrap()
    .1
    .clone()
}

fn ms(t: &str) -> EpochMillis {
    crate::findings::time::parse_millis(t).unwrap()
}

#[test]
fn dns_log_finding_gets_the_process_and_is_linked_to_its_runtime_twin() {
    let mut c = correlator();
    let mut e = engine();
    let out = runtime(&mut c, &mut e, &miner_query("2026-03-01T10:00:00.100Z"));
    let runtime_finding = out
        .iter()
        .find(|o| o.finding.finding_type_name == "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
        .expect("the runtime engine raised the pool lookup")
        .finding
        .clone();
    assert_eq!(out[0].change, Change::Passed);

    // Resolver logged the query 40 ms later (clock skew), delivered minutes later.
    let out = c.on_finding(dns_log_finding(
        "pool.supportxmr.com",
        ms("2026-03-01T10:00:00.140Z"),
    ));
    assert_eq!(out.len(), 2, "{out:#?}");
    let log = &out[0];
    assert_eq!(log.change, Change::Duplicate);
    assert_eq!(
        log.finding.finding_type_name,
        "CryptoCurrency:EC2/BitcoinTool.B!DNS"
    );
    assert!(
        log.finding.service.archived,
        "the twin is stored, not alerted"
    );
    let ward = log.finding.service.ward_details().unwrap();
    assert_eq!(
        ward.duplicate_of.as_deref(),
        Some(runtime_finding.id.as_str())
    );
    assert_eq!(
        ward.linked_finding_ids,
        std::slice::from_ref(&runtime_finding.id)
    );
    assert_eq!(ward.process.as_ref().unwrap().pid, Some(4242));
    assert_eq!(ward.ancestry[0].name.as_deref(), Some("bash"));
    let attribution = ward.attribution.unwrap();
    assert_eq!(attribution.event_type, "dns_query");
    assert_eq!(attribution.matched_on, "pool.supportxmr.com");
    let process = log
        .finding
        .service
        .runtime_details
        .as_ref()
        .unwrap()
        .process
        .as_ref()
        .unwrap();
    assert_eq!(process.executable_path.as_deref(), Some("/tmp/.x/xmrig"));

    let linked = &out[1];
    assert_eq!(linked.change, Change::Linked);
    assert_eq!(linked.finding.id, runtime_finding.id);
    assert!(
        !linked.finding.service.archived,
        "the runtime finding is the alert"
    );
    assert_eq!(
        linked
            .finding
            .service
            .ward_details()
            .unwrap()
            .linked_finding_ids,
        std::slice::from_ref(&log.finding.id)
    );

    // The runtime finding recurs: its engine's new state gets the link again, still one alert.
    let out = runtime(&mut c, &mut e, &miner_query("2026-03-01T10:01:00Z"));
    let again = out
        .iter()
        .find(|o| o.finding.id == runtime_finding.id)
        .unwrap();
    assert_eq!(again.finding.service.count, 2);
    assert!(!again.finding.service.archived);
    assert_eq!(
        again
            .finding
            .service
            .ward_details()
            .unwrap()
            .linked_finding_ids,
        std::slice::from_ref(&log.finding.id)
    );
    assert_eq!(c.stats().duplicates, 1);
}

#[test]
fn dns_log_finding_without_a_matching_query_is_passed_unchanged() {
    let mut c = correlator();
    c.on_runtime_event(INSTANCE, &miner_query("2026-03-01T10:00:00Z"));
    // Twenty minutes later: outside the DNS slack.
    let f = dns_log_finding("pool.supportxmr.com", ms("2026-03-01T10:20:00Z"));
    let out = c.on_finding(f.clone());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].change, Change::Passed);
    assert_eq!(out[0].finding, f);
}

fn trail(at: &str, ip: &str, name: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:{INSTANCE}",
        "arn":"arn:aws:sts::123456789012:assumed-role/web-role/{INSTANCE}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLEKEY",
        "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::123456789012:role/web-role"}},"ec2RoleDelivery":"2.0"}}}},
        "eventTime":"{at}","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"eu-west-1",
        "sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15","eventID":"ev-{name}"}}"#
    )
}

fn on_trail(c: &mut Correlator, text: &str) -> Vec<Correlated> {
    let record: CloudTrailRecord = serde_json::from_str(text).unwrap();
    c.on_cloudtrail(&record)
}

#[test]
fn credentials_fetched_by_a_process_and_used_outside_make_one_finding() {
    let mut c = correlator();
    // Another process talks to the metadata service earlier; the thief names the credentials path.
    c.on_runtime_event(INSTANCE, &event(
        r#"{"type":"net_connect","time":"2026-03-01T09:00:00Z","process":{"pid":900,"start_time":"2026-03-01T08:00:00Z","name":"amazon-ssm-agent","executable":"/usr/bin/amazon-ssm-agent"},
           "socket":{"family":"inet","protocol":"tcp","remote":{"ip":"127.0.0.1","port":8099}}}"#,
    ));
    c.on_runtime_event(INSTANCE, &event(
        r#"{"type":"net_connect","time":"2026-03-01T10:00:00Z","process":{"pid":5000,"start_time":"2026-03-01T09:59:59Z","name":"curl","executable":"/usr/bin/curl",
             "args":["curl","-s","http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role"],
             "ancestors":[{"pid":4000,"start_time":"2026-03-01T09:00:00Z","name":"bash","executable":"/usr/bin/bash"}]},
           "socket":{"family":"inet","protocol":"tcp","remote":{"ip":"127.0.0.1","port":8099}}}"#,
    ));
    // The instance's own use is normal.
    assert!(
        on_trail(
            &mut c,
            &trail("2026-03-01T10:01:00Z", "10.0.1.5", "GetCallerIdentity")
        )
        .is_empty()
    );
    let out = on_trail(
        &mut c,
        &trail("2026-03-01T10:20:00Z", "198.51.100.23", "ListUsers"),
    );
    let theft = out
        .iter()
        .find(|o| o.change == Change::CredentialTheft)
        .expect("cross-layer finding");
    let f = &theft.finding;
    assert_eq!(
        f.finding_type_name,
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    );
    let ward = f.service.ward_details().unwrap();
    assert_eq!(ward.instance_id.as_deref(), Some(INSTANCE));
    assert_eq!(ward.hostname.as_deref(), Some("web-1"));
    assert_eq!(ward.process.as_ref().unwrap().name.as_deref(), Some("curl"));
    assert_eq!(ward.ancestry[0].pid, Some(4000));
    assert_eq!(ward.api_calls.len(), 1);
    assert_eq!(ward.api_calls[0].event_name, "ListUsers");
    assert!(
        f.description.contains("curl (pid 5000"),
        "{}",
        f.description
    );
    assert_eq!(
        f.resource
            .access_key_details
            .as_ref()
            .unwrap()
            .access_key_id
            .as_deref(),
        Some("ASIAEXAMPLEKEY")
    );

    // A second outside call updates the same finding.
    let out = on_trail(
        &mut c,
        &trail("2026-03-01T10:21:00Z", "198.51.100.23", "ListRoles"),
    );
    let again = &out
        .iter()
        .find(|o| o.change == Change::CredentialTheft)
        .unwrap()
        .finding;
    assert_eq!(again.id, f.id);
    assert_eq!(again.service.count, 2);
    let calls: Vec<_> = again
        .service
        .ward_details()
        .unwrap()
        .api_calls
        .into_iter()
        .map(|c| c.event_name)
        .collect();
    assert_eq!(calls, ["ListUsers", "ListRoles"]);
}

fn runtime_finding(t: FindingType, exe: &str, at: EpochMillis) -> Finding {
    let resource = Resource {
        resource_type: Some(resource_type::INSTANCE.into()),
        instance_details: Some(InstanceDetails {
            instance_id: Some(INSTANCE.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let key = AggregationKey::new(t, &resource, [("executable", exe)]).unwrap();
    let mut agg = Aggregator::new(scope());
    agg.record(Occurrence {
        key,
        event_time: at,
        details: Finding::draft(t, resource),
    })
    .unwrap()
    .1
    .clone()
}

#[test]
fn three_findings_on_an_instance_make_a_sequence_updated_by_a_fourth() {
    let mut c = correlator();
    let t0 = ms("2026-03-01T10:00:00Z");
    let types = [
        FindingType::ExecutionRuntimeReverseShell,
        FindingType::ImpactRuntimeCryptoMinerExecuted,
        FindingType::DefenseEvasionRuntimeProcessInjectionPtrace,
        FindingType::PersistenceRuntimeSuspiciousCommand,
    ];
    let mut members = Vec::new();
    let mut sequence_id = None;
    for (i, t) in types.into_iter().enumerate() {
        let f = runtime_finding(t, "/tmp/x", t0 + i as i64 * 60_000);
        members.push(f.id.clone());
        let out = c.on_finding(f);
        let sequences: Vec<_> = out
            .iter()
            .filter(|o| o.change == Change::Sequence)
            .collect();
        match i {
            0 | 1 => assert!(sequences.is_empty(), "{out:#?}"),
            _ => {
                assert_eq!(sequences.len(), 1);
                let s = &sequences[0].finding;
                assert_eq!(
                    s.finding_type_name,
                    "AttackSequence:EC2/CompromisedInstanceGroup"
                );
                assert_eq!(s.severity.label(), "Critical");
                assert_eq!(s.service.event_first_seen, format_millis(t0));
                let seq = &s.service.detection.as_ref().unwrap()["sequence"];
                assert_eq!(seq["signals"].as_array().unwrap().len(), i + 1);
                let tactics = &seq["sequenceIndicators"][0];
                assert_eq!(tactics["key"], "ATTACK_TACTIC");
                assert!(tactics["values"].as_array().unwrap().len() >= 3);
                match &sequence_id {
                    None => sequence_id = Some(s.id.clone()),
                    Some(id) => {
                        assert_eq!(id, &s.id, "updated, not duplicated");
                        assert_eq!(s.service.count, 2);
                    }
                }
                // The finding that completed (or extended) the sequence already names it.
                assert_eq!(
                    out[0].finding.associated_attack_sequence_arn.as_ref(),
                    Some(&s.arn)
                );
                if i == 2 {
                    // The two earlier members are re-emitted once with the ARN.
                    let re: Vec<_> = out
                        .iter()
                        .filter(|o| o.change == Change::SequenceMember)
                        .map(|o| o.finding.id.clone())
                        .collect();
                    assert_eq!(re, members[..2]);
                } else {
                    assert!(out.iter().all(|o| o.change != Change::SequenceMember));
                }
            }
        }
    }
}

#[test]
fn two_runtime_findings_of_one_key_are_not_twins_and_both_link_the_log_finding() {
    let mut c = correlator();
    let mut e = engine();
    let mut ids = Vec::new();
    runtime(&mut c, &mut e, &miner_query("2026-03-01T10:00:00Z"));
    // A second executable queries the same pool: a second runtime finding, not a duplicate.
    let other = event(
        r#"{"type":"dns_query","time":"2026-03-01T10:00:01Z","process":{"pid":77,"start_time":"2026-03-01T09:00:00Z","name":"kworker-x","executable":"/dev/shm/kworker-x"},
            "dns":{"id":8,"questions":[{"name":"pool.supportxmr.com","type":"A","class":"IN"}],"transport":"udp"}}"#,
    );
    for o in runtime(&mut c, &mut e, &other) {
        assert_ne!(o.change, Change::Duplicate);
    }
    for f in e.findings() {
        if f.finding_type_name == "CryptoCurrency:Runtime/BitcoinTool.B!DNS" {
            ids.push(f.id.clone());
        }
    }
    assert_eq!(ids.len(), 2);
    let out = c.on_finding(dns_log_finding(
        "pool.supportxmr.com",
        ms("2026-03-01T10:00:01.010Z"),
    ));
    assert_eq!(out[0].change, Change::Duplicate);
    // Attributed to the process nearest in time.
    let ward = out[0].finding.service.ward_details().unwrap();
    assert_eq!(ward.process.unwrap().pid, Some(77));
    let mut linked: Vec<String> = out
        .iter()
        .filter(|o| o.change == Change::Linked)
        .map(|o| o.finding.id.clone())
        .collect();
    linked.sort();
    ids.sort();
    assert_eq!(linked, ids);
}

#[test]
fn flow_log_finding_is_attributed_to_the_connecting_process() {
    use crate::findings::{NetworkConnectionAction, PortDetails};
    let mut c = correlator();
    c.on_runtime_event(INSTANCE, &event(&format!(
        r#"{{"type":"net_connect","time":"2026-03-01T10:02:00Z",{MINER},
           "socket":{{"family":"inet","protocol":"tcp","local":{{"ip":"10.0.1.5","port":41000}},"remote":{{"ip":"198.51.100.7","port":3333}}}}}}"#
    )));
    let t = FindingType::CryptoCurrencyEc2BitcoinToolB;
    let resource = Resource {
        resource_type: Some(resource_type::INSTANCE.into()),
        instance_details: Some(InstanceDetails {
            instance_id: Some(INSTANCE.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let key = AggregationKey::new(t, &resource, [("remoteIp", "198.51.100.7")]).unwrap();
    let mut details = Finding::draft(t, resource);
    details.service.action = Some(Action {
        action_type: Some("NETWORK_CONNECTION".into()),
        network_connection_action: Some(NetworkConnectionAction {
            connection_direction: Some("OUTBOUND".into()),
            protocol: Some("TCP".into()),
            remote_ip_details: Some(RemoteIpDetails {
                ip_address_v4: Some("198.51.100.7".into()),
                ..Default::default()
            }),
            remote_port_details: Some(PortDetails {
                port: Some(3333),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut agg = Aggregator::new(scope());
    // The flow record's interval started 10:05 (the connection is older: long-lived).
    let f = agg
        .record(Occurrence {
            key,
            event_time: ms("2026-03-01T10:05:00Z"),
            details,
        })
        .unwrap()
        .1
        .clone();
    let out = c.on_finding(f);
    assert_eq!(out[0].change, Change::Attributed);
    let ward = out[0].finding.service.ward_details().unwrap();
    assert_eq!(ward.process.unwrap().name.as_deref(), Some("xmrig"));
    let attribution = ward.attribution.unwrap();
    assert_eq!(attribution.event_type, "net_connect");
    assert_eq!(attribution.matched_on, "198.51.100.7:3333");
}
