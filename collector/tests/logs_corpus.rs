//! Every corpus file relevant to CloudTrail, VPC Flow Logs and Route 53 Resolver logs parses
//! with the expected record count (see `shared/corpus/README.md`), and the deliberately
//! malformed ones produce the documented errors.

use std::io::Cursor;
use std::net::IpAddr;
use ward_collector::event::flow::{FlowAction, FlowDirection, FlowFormat, LogStatus};
use ward_collector::event::{Event, Record, SourceKind};
use ward_collector::logs::{Counts, Problem, ReadOptions, Sink, read_object};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

fn corpus(rel: &str) -> String {
    format!("{CORPUS}/{rel}")
}

/// An assertion run on every event.
type Check = Box<dyn Fn(&Event<'_>)>;

/// Keeps what the tests look at, as owned data.
#[derive(Default)]
struct Collect {
    events: Vec<String>,
    malformed: Vec<String>,
    skipped: Vec<String>,
    checks: Vec<Check>,
}

impl Sink for Collect {
    fn event(&mut self, e: &Event<'_>) {
        for c in &self.checks {
            c(e);
        }
        let desc = match e.record {
            Record::CloudTrail(r) => {
                format!("{} {}", e.origin, r.event_name.as_deref().unwrap_or("?"))
            }
            Record::Flow(r) => format!("{} {}", e.origin, r.line),
            Record::Dns(r) => format!("{} {}", e.origin, r.query_name.as_deref().unwrap_or("?")),
        };
        self.events.push(desc);
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.malformed.push(p.to_string());
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.skipped.push(p.to_string());
    }
}

fn read_file(source: SourceKind, rel: &str, opts: &ReadOptions, sink: &mut Collect) -> Counts {
    let path = corpus(rel);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!("corpus file {path}: {e} (CI copies shared/ beside the checkout)")
    });
    read_object(source, &path, f, opts, sink)
}

fn read_bytes(
    source: SourceKind,
    name: &str,
    data: Vec<u8>,
    opts: &ReadOptions,
    sink: &mut Collect,
) -> Counts {
    read_object(source, name, Cursor::new(data), opts, sink)
}

/// (file, records) for `stratus-red-team/detonation-logs/` (each file is a bare JSON array).
const STRATUS: &[(&str, u64)] = &[
    ("aws.credential-access.ec2-get-password-data.json", 34),
    (
        "aws.credential-access.ec2-steal-instance-credentials.json",
        45,
    ),
    (
        "aws.credential-access.secretsmanager-batch-retrieve-secrets.json",
        5,
    ),
    (
        "aws.credential-access.secretsmanager-retrieve-secrets.json",
        21,
    ),
    (
        "aws.credential-access.ssm-retrieve-securestring-parameters.json",
        10,
    ),
    ("aws.defense-evasion.cloudtrail-delete.json", 1),
    ("aws.defense-evasion.cloudtrail-event-selectors.json", 1),
    ("aws.defense-evasion.cloudtrail-stop.json", 1),
    ("aws.defense-evasion.dns-delete-logs.json", 1),
    ("aws.defense-evasion.organizations-leave.json", 3),
    ("aws.defense-evasion.vpc-remove-flow-logs.json", 1),
    ("aws.discovery.ec2-download-user-data.json", 19),
    ("aws.execution.ec2-launch-unusual-instances.json", 3),
    ("aws.execution.ec2-user-data.json", 35),
    ("aws.execution.ssm-send-command.json", 56),
    ("aws.execution.ssm-start-session.json", 29),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
        1,
    ),
    ("aws.exfiltration.ec2-share-ami.json", 1),
    ("aws.exfiltration.ec2-share-ebs-snapshot.json", 1),
    ("aws.exfiltration.rds-share-snapshot.json", 1),
    ("aws.impact.bedrock-invoke-model.json", 15),
    ("aws.initial-access.console-login-without-mfa.json", 1),
    ("aws.lateral-movement.ec2-instance-connect.json", 3),
    (
        "aws.lateral-movement.ec2-serial-console-send-ssh-public-key.json",
        4,
    ),
    ("aws.persistence.iam-backdoor-role.json", 1),
    ("aws.persistence.iam-backdoor-user.json", 1),
    ("aws.persistence.iam-create-admin-user.json", 3),
    ("aws.persistence.iam-create-backdoor-role.json", 2),
    ("aws.persistence.iam-create-user-login-profile.json", 3),
    ("aws.persistence.lambda-backdoor-function.json", 1),
    ("aws.persistence.lambda-layer-extension.json", 1),
    ("aws.persistence.lambda-overwrite-code.json", 1),
    ("aws.persistence.rolesanywhere-create-trust-anchor.json", 2),
    ("aws.persistence.sts-federation-token.json", 2),
    (
        "aws.privilege-escalation.iam-update-user-login-profile.json",
        1,
    ),
];

#[test]
fn stratus_detonation_logs_every_file() {
    let dir = corpus("stratus-red-team/detonation-logs");
    let on_disk = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        on_disk,
        STRATUS.len(),
        "a corpus file is not covered by this test"
    );
    let mut total = 0;
    for (file, want) in STRATUS {
        let mut sink = Collect::default();
        let c = read_file(
            SourceKind::CloudTrail,
            &format!("stratus-red-team/detonation-logs/{file}"),
            &ReadOptions::default(),
            &mut sink,
        );
        assert_eq!(
            (c.records, c.malformed, c.skipped),
            (*want, 0, 0),
            "{file}: {:?}",
            sink.malformed
        );
        // Records of an array carry their index.
        assert!(
            sink.events
                .last()
                .unwrap()
                .contains(&format!("record #{}", want - 1)),
            "{:?}",
            sink.events.last()
        );
        total += c.records;
    }
    assert_eq!(total, 310);
}

#[test]
fn stratus_anonymised_fields() {
    // Leading-zero source IPs (`08.1.250.216` ...) parse as decimal; IMDSv1 role delivery is typed.
    let mut sink = Collect::default();
    sink.checks.push(Box::new(|e| {
        if let Record::CloudTrail(r) = e.record {
            let ip = r.source_ip_address.as_deref().unwrap();
            if ip.as_bytes()[0].is_ascii_digit() && !ip.contains(':') {
                assert!(r.source_ip().is_some(), "{ip} at {}", e.origin);
            }
            assert!(r.time_ms().is_some(), "{:?}", r.event_time);
        }
    }));
    let mut imds_v1 = 0;
    let mut seen_leading_zero = false;
    for (file, _) in STRATUS {
        let path = corpus(&format!("stratus-red-team/detonation-logs/{file}"));
        let text = std::fs::read_to_string(&path).unwrap();
        seen_leading_zero |= text.contains("\"08.1.250.216\"");
        imds_v1 += text.matches("\"ec2RoleDelivery\": \"1.0\"").count();
        read_file(
            SourceKind::CloudTrail,
            &format!("stratus-red-team/detonation-logs/{file}"),
            &ReadOptions::default(),
            &mut sink,
        );
    }
    assert!(seen_leading_zero);
    assert!(imds_v1 > 0);

    let mut sink = Collect::default();
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let c2 = count.clone();
    sink.checks.push(Box::new(move |e| {
        if let Record::CloudTrail(r) = e.record
            && r.ec2_role_delivery() == Some("1.0")
        {
            let arn = r.user_identity.as_ref().unwrap().arn.as_deref().unwrap();
            assert!(arn.contains(":assumed-role/"), "{arn}");
            c2.set(c2.get() + 1);
        }
    }));
    read_file(
        SourceKind::CloudTrail,
        "stratus-red-team/detonation-logs/aws.credential-access.ec2-steal-instance-credentials.json",
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!(
        count.get(),
        2,
        "GetCallerIdentity + DescribeInstances with IMDSv1 credentials"
    );
}

/// Panther's rule tests: one JSON object per line with the event under `log`. The events are fed
/// to the reader as CloudTrail JSON Lines (the EventBridge / CloudWatch export shape).
fn panther_logs(rel: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(corpus(rel)).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        serde_json::to_writer(&mut out, &v["log"]).unwrap();
        out.push(b'\n');
    }
    out
}

#[test]
fn panther_cloudtrail_rule_tests() {
    let mut sink = Collect::default();
    let data = panther_logs("panther-analysis/panther_rule_tests_cloudtrail.jsonl");
    let c = read_bytes(
        SourceKind::CloudTrail,
        "panther_cloudtrail",
        data,
        &ReadOptions::default(),
        &mut sink,
    );
    // 471 tests; 11 of them are not CloudTrail-shaped: 8 use all-lower-case keys (`eventname`) and 3
    // hold only Panther metadata (`p_*`, `eventType`). Those are reported, by line, not dropped.
    assert_eq!(
        (c.records, c.malformed, c.skipped),
        (460, 11, 0),
        "{:#?}",
        sink.malformed
    );
    let lines: Vec<u64> = sink
        .malformed
        .iter()
        .map(|m| m.split(':').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![32, 33, 34, 128, 130, 208, 209, 210, 466, 467, 470]
    );
    assert!(
        sink.malformed[0].contains("not a CloudTrail record"),
        "{}",
        sink.malformed[0]
    );
}

#[test]
fn panther_route53_rule_tests() {
    let mut sink = Collect::default();
    let data = panther_logs("panther-analysis/panther_rule_tests_route53_resolver.jsonl");
    let domains = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let d2 = domains.clone();
    sink.checks.push(Box::new(move |e| {
        if let Record::Dns(q) = e.record {
            // `answers` is a single object in 8 tests, an array in 3, null in 2.
            d2.borrow_mut().push((
                q.domain().unwrap().to_owned(),
                q.answers.as_ref().map(|a| a.0.len()),
            ));
            assert!(q.instance_id().is_none_or(|i| i.starts_with("i-")));
        }
    }));
    let c = read_bytes(
        SourceKind::Dns,
        "panther_dns",
        data,
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (13, 0), "{:?}", sink.malformed);
    let d = domains.borrow();
    assert_eq!(
        d[0],
        ("dynamodb.us-west-2.amazonaws.com".to_owned(), Some(1))
    );
    assert_eq!(
        d[1].0, "dynamodb.us-west-2.amazonaws.com",
        "trailing root dot stripped by domain()"
    );
    assert_eq!(d.iter().filter(|(_, a)| a.is_none()).count(), 2);
}

#[test]
fn panther_scenario_raw_vpc_flow_lines() {
    // The compromised-root-creds scenario carries raw v2 lines as a YAML list.
    let text = std::fs::read_to_string(corpus(
        "panther-analysis/test_scenarios/compromised-root-creds/attacker_vpc.yml",
    ))
    .unwrap();
    let lines: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut sink = Collect::default();
    let attacker: IpAddr = "92.55.146.245".parse().unwrap();
    let hits = std::rc::Rc::new(std::cell::Cell::new(0));
    let h2 = hits.clone();
    sink.checks.push(Box::new(move |e| {
        if let Record::Flow(f) = e.record
            && (f.srcaddr == Some(attacker) || f.dstaddr == Some(attacker))
        {
            h2.set(h2.get() + 1);
        }
    }));
    let c = read_bytes(
        SourceKind::VpcFlow,
        "attacker_vpc",
        lines.into_bytes(),
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (6, 0));
    assert_eq!(hits.get(), 4);
}

fn flow_format(rel: &str) -> ReadOptions {
    let spec = std::fs::read_to_string(corpus(rel)).unwrap();
    ReadOptions {
        flow_format: Some(FlowFormat::parse(&spec).unwrap()),
        ..ReadOptions::default()
    }
}

#[test]
fn vpcflow_v2_default() {
    let mut sink = Collect::default();
    let statuses = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let s2 = statuses.clone();
    sink.checks.push(Box::new(move |e| {
        let Record::Flow(f) = e.record else { panic!() };
        s2.borrow_mut().push((
            f.log_status,
            f.action,
            f.srcaddr.map(|a| a.is_ipv6()),
            f.srcport,
            f.protocol,
        ));
        if f.log_status != Some(LogStatus::Ok) {
            // NODATA / SKIPDATA: every traffic field is `-`.
            assert_eq!(
                (f.srcaddr, f.dstport, f.packets, f.action),
                (None, None, None, None)
            );
            assert!(f.start.is_some() && f.interface_id.is_some());
        }
    }));
    let c = read_file(
        SourceKind::VpcFlow,
        "awsdocs/vpcflow/v2_default.log",
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (7, 0));
    let s = statuses.borrow();
    use FlowAction::*;
    use LogStatus::*;
    assert_eq!(
        *s,
        vec![
            (Some(Ok), Some(Accept), Some(false), Some(20641), Some(6)),
            (Some(Ok), Some(Reject), Some(false), Some(49761), Some(6)),
            (Some(NoData), None, None, None, None),
            (Some(SkipData), None, None, None, None),
            (Some(Ok), Some(Accept), Some(false), Some(0), Some(1)),
            (Some(Ok), Some(Reject), Some(false), Some(0), Some(1)),
            (Some(Ok), Some(Accept), Some(true), Some(34892), Some(6)),
        ]
    );
}

#[test]
fn vpcflow_v3_tcp_flags_with_double_space() {
    let mut sink = Collect::default();
    let flags = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let f2 = flags.clone();
    sink.checks.push(Box::new(move |e| {
        let Record::Flow(f) = e.record else { panic!() };
        assert_eq!(f.version, Some(3));
        assert_eq!(f.vpc_id, Some("vpc-abcdefab012345678"));
        assert_eq!(f.traffic_type, Some("IPv4"));
        assert_eq!(f.pkt_srcaddr, f.srcaddr);
        f2.borrow_mut().push(f.tcp_flags.unwrap());
    }));
    let opts = flow_format("awsdocs/vpcflow/v3_tcp_flags.format");
    let c = read_file(
        SourceKind::VpcFlow,
        "awsdocs/vpcflow/v3_tcp_flags.log",
        &opts,
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (8, 0), "{:?}", sink.malformed);
    assert_eq!(*flags.borrow(), vec![2, 18, 2, 18, 1, 1, 3, 19]);

    // Without the format the v2 default does not fit: every line is reported, with its number.
    let mut sink = Collect::default();
    let c = read_file(
        SourceKind::VpcFlow,
        "awsdocs/vpcflow/v3_tcp_flags.log",
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (0, 8));
    assert!(
        sink.malformed[7].ends_with("v3_tcp_flags.log:8: 21 fields, the format has 14"),
        "{}",
        sink.malformed[7]
    );
}

#[test]
fn vpcflow_v3_transit_gateway() {
    let mut sink = Collect::default();
    sink.checks.push(Box::new(|e| {
        let Record::Flow(f) = e.record else { panic!() };
        assert_eq!((f.start, f.bytes), (None, None), "not in this format");
        assert_eq!(f.action, Some(FlowAction::Accept));
    }));
    let opts = flow_format("awsdocs/vpcflow/v3_transit_gateway.format");
    let c = read_file(
        SourceKind::VpcFlow,
        "awsdocs/vpcflow/v3_transit_gateway.log",
        &opts,
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (4, 0));
    assert!(
        sink.events[2].contains(" - 10.40.1.175"),
        "instance-id `-`: {}",
        sink.events[2]
    );
}

#[test]
fn vpcflow_custom_nat_gateway_without_version() {
    let mut sink = Collect::default();
    let pairs = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let p2 = pairs.clone();
    sink.checks.push(Box::new(move |e| {
        let Record::Flow(f) = e.record else { panic!() };
        assert_eq!(f.version, None);
        p2.borrow_mut().push((
            f.instance_id.is_some(),
            f.srcaddr != f.pkt_srcaddr || f.dstaddr != f.pkt_dstaddr,
        ));
    }));
    let opts = flow_format("awsdocs/vpcflow/custom_nat_gateway.format");
    let c = read_file(
        SourceKind::VpcFlow,
        "awsdocs/vpcflow/custom_nat_gateway.log",
        &opts,
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (6, 0));
    assert_eq!(
        *pairs.borrow(),
        vec![
            (false, true),
            (false, false),
            (false, false),
            (false, true),
            (true, false),
            (true, false)
        ]
    );
}

#[test]
fn vpcflow_v5_traffic_path() {
    let mut sink = Collect::default();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let s2 = seen.clone();
    sink.checks.push(Box::new(move |e| {
        let Record::Flow(f) = e.record else { panic!() };
        assert_eq!(
            (f.region, f.az_id),
            (Some("ap-southeast-2"), Some("apse2-az3"))
        );
        assert_eq!((f.sublocation_type, f.sublocation_id), (None, None));
        s2.borrow_mut().push((
            f.pkt_src_aws_service.map(str::to_owned),
            f.pkt_dst_aws_service.map(str::to_owned),
            f.traffic_path,
            f.flow_direction,
        ));
    }));
    let opts = flow_format("awsdocs/vpcflow/v5_traffic_path.format");
    let c = read_file(
        SourceKind::VpcFlow,
        "awsdocs/vpcflow/v5_traffic_path.log",
        &opts,
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (2, 0));
    assert_eq!(
        *seen.borrow(),
        vec![
            (Some("S3".into()), None, None, Some(FlowDirection::Ingress)),
            (
                None,
                Some("S3".into()),
                Some(8),
                Some(FlowDirection::Egress)
            ),
        ]
    );
}

#[test]
fn vpcflow_header_line_overrides_default() {
    // S3-delivered files start with the field names; the format comes from there.
    let mut data = std::fs::read(corpus("awsdocs/vpcflow/v5_traffic_path.format")).unwrap();
    data.extend(std::fs::read(corpus("awsdocs/vpcflow/v5_traffic_path.log")).unwrap());
    let mut sink = Collect::default();
    let c = read_bytes(
        SourceKind::VpcFlow,
        "v5_with_header.log",
        data,
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (2, 0), "{:?}", sink.malformed);
    assert!(
        sink.events[0].starts_with("v5_with_header.log:2 "),
        "{}",
        sink.events[0]
    );
}

#[test]
fn route53_firewall_block_example() {
    let mut sink = Collect::default();
    sink.checks.push(Box::new(|e| {
        let Record::Dns(q) = e.record else { panic!() };
        assert_eq!(q.firewall_rule_action.as_deref(), Some("BLOCK"));
        assert_eq!(
            q.firewall_rule_group_id.as_deref(),
            Some("rslvr-frg-01234567890abcdef")
        );
        assert_eq!(
            q.firewall_domain_list_id.as_deref(),
            Some("rslvr-fdl-01234567890abcdef")
        );
        assert_eq!(q.instance_id(), Some("i-0d15cd0d3example"));
        assert_eq!(q.src_port(), Some(56067));
        assert_eq!(q.src_ip(), Some("4.5.64.102".parse().unwrap()));
        assert_eq!(q.transport.as_deref(), Some("UDP"));
        assert_eq!(q.query_type.as_deref(), Some("PTR"));
        let a = &q.answers.as_ref().unwrap().0;
        assert_eq!(
            (a.len(), a[0].rdata.as_deref(), a[0].answer_type.as_deref()),
            (1, Some("203.0.113.9"), Some("PTR"))
        );
        assert_eq!(e.time_ms(), Some(1_612_461_115_000));
        assert_eq!(e.origin.line, 1, "pretty-printed record starts on line 1");
    }));
    let c = read_file(
        SourceKind::Dns,
        "awsdocs/route53resolver/example_v1.100000_firewall_block.json",
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (1, 0));
}

#[test]
fn route53_not_strict_json_is_reported_not_fatal() {
    // Upstream defects: trailing commas (first at line 16) and "192.0.2e.44" as an A record.
    let mut sink = Collect::default();
    let c = read_file(
        SourceKind::Dns,
        "awsdocs/route53resolver/example_v1.000000_not_strict_json.txt",
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed, c.skipped), (0, 1, 0));
    assert!(
        sink.malformed[0].contains("example_v1.000000_not_strict_json.txt:16: invalid JSON"),
        "{}",
        sink.malformed[0]
    );

    // The same record with the commas fixed parses; the odd Rdata is kept as text, not an IP.
    let text = std::fs::read_to_string(corpus(
        "awsdocs/route53resolver/example_v1.000000_not_strict_json.txt",
    ))
    .unwrap();
    let fixed = text
        .replace(",\n    }", "\n    }")
        .replace(",\n  ]", "\n  ]")
        .replace(",\n  }", "\n  }")
        .replace(",\n}", "\n}");
    let mut sink = Collect::default();
    sink.checks.push(Box::new(|e| {
        let Record::Dns(q) = e.record else { panic!() };
        let a = &q.answers.as_ref().unwrap().0;
        assert_eq!(a[0].rdata.as_deref(), Some("192.0.2e.44"));
        assert_eq!(
            q.srcids.as_ref().unwrap().resolver_endpoint(),
            Some("rslvr-out-2345678dfghexample")
        );
    }));
    let c = read_bytes(
        SourceKind::Dns,
        "fixed",
        fixed.into_bytes(),
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (1, 0), "{:?}", sink.malformed);
}

#[test]
fn guardduty_tester_exfil_queries_through_dns_path() {
    // The tester resolves these names; as Resolver log lines they must all come through intact.
    let names =
        std::fs::read_to_string(corpus("amazon-guardduty-tester/dns_exfil_queries.txt")).unwrap();
    let names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(names.len(), 930); // the README says 929; the file has 930 non-empty lines
    let mut data = Vec::new();
    for n in &names {
        let rec = serde_json::json!({"version":"1.100000","account_id":"111122223333","region":"us-east-1",
            "vpc_id":"vpc-1","query_timestamp":"2024-01-01T00:00:00Z","query_name":format!("{n}."),
            "query_type":"TXT","query_class":"IN","rcode":"NOERROR","answers":[],"srcaddr":"10.0.0.5",
            "srcport":"5353","transport":"UDP","srcids":{"instance":"i-0123456789abcdef0"}});
        serde_json::to_writer(&mut data, &rec).unwrap();
        data.push(b'\n');
    }
    let mut sink = Collect::default();
    let c = read_bytes(
        SourceKind::Dns,
        "exfil.jsonl",
        data,
        &ReadOptions::default(),
        &mut sink,
    );
    assert_eq!((c.records, c.malformed), (930, 0));
    for (e, n) in sink.events.iter().zip(&names) {
        assert!(e.ends_with(&format!(" {n}.")), "{e}");
    }
}
