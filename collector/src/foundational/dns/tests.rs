//! Each DNS analysis with a positive and a negative case, from real query-log records: the Panther
//! Route 53 tests, the AWS guide's example, and the GuardDuty tester's domains and exfiltration
//! names (`../shared/corpus/`), read by the real query-log reader.

use std::io::Cursor;
use std::sync::Arc;

use super::*;
use crate::event::{Event, SourceKind};
use crate::findings::{Finding, FindingType, Scope};
use crate::foundational::{LogContext, LogDetector, Settings};
use crate::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};
use crate::logs::{Problem, ReadOptions, Sink, read_object};

/// The shared corpus next to the repository (as the other corpus tests expect it), or where
/// `WARD_CORPUS_DIR` says (a worktree elsewhere).
fn corpus(path: &str) -> String {
    let dir = std::env::var("WARD_CORPUS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus").to_owned());
    std::fs::read_to_string(format!("{dir}/{path}"))
        .unwrap_or_else(|e| panic!("{dir}/{path}: {e} (set WARD_CORPUS_DIR)"))
}

/// The Panther `AWS.DNS.Crypto.Domain` "Non Crypto Query" record, with the query name replaced.
fn panther_query(name: &str, time: &str) -> String {
    let line = corpus("panther-analysis/panther_rule_tests_route53_resolver.jsonl")
        .lines()
        .find(|l| l.contains("\"Non Crypto Query\""))
        .expect("Panther test present")
        .to_owned();
    let test: serde_json::Value = serde_json::from_str(&line).unwrap();
    let mut log = test["log"].clone();
    log["query_name"] = name.into();
    log["query_timestamp"] = time.into();
    log.as_object_mut()
        .unwrap()
        .retain(|k, _| !k.starts_with("p_"));
    serde_json::to_string(&log).unwrap()
}

struct Collect<'d> {
    detector: &'d mut DnsDetector,
    ctx: LogContext<'d>,
    out: Vec<crate::findings::Occurrence>,
    problems: Vec<String>,
}

impl Sink for Collect<'_> {
    fn event(&mut self, event: &Event<'_>) {
        self.detector.on_event(event, &self.ctx, &mut self.out);
    }
    fn malformed(&mut self, problem: &Problem<'_>) {
        self.problems.push(problem.to_string());
    }
}

fn run_with(
    detector: &mut DnsDetector,
    intel: &IntelIndex,
    settings: &Settings,
    lines: &[String],
) -> Vec<Finding> {
    let scope = Scope::new("123456789012", "us-east-1", "ward");
    let mut sink = Collect {
        detector,
        ctx: LogContext {
            intel,
            scope: &scope,
            settings,
        },
        out: Vec::new(),
        problems: Vec::new(),
    };
    let text = lines.join("\n");
    read_object(
        SourceKind::Dns,
        "dns.log",
        Cursor::new(text.into_bytes()),
        &ReadOptions::default(),
        &mut sink,
    );
    assert!(sink.problems.is_empty(), "{:?}", sink.problems);
    sink.out.into_iter().map(|o| o.details).collect()
}

fn run(lines: &[String]) -> Vec<Finding> {
    run_with(
        &mut DnsDetector::default(),
        &IntelIndex::default(),
        &Settings::default(),
        lines,
    )
}

fn types(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f.finding_type_name.as_str())
        .collect()
}

fn dns_action(f: &Finding) -> &DnsRequestAction {
    f.service
        .action
        .as_ref()
        .and_then(|a| a.dns_request_action.as_ref())
        .expect("dnsRequestAction")
}

const T0: &str = "2024-01-01T00:00:00Z";

#[test]
fn every_tester_domain_raises_its_ec2_type() {
    let defs: serde_json::Value =
        serde_json::from_str(&corpus("amazon-guardduty-tester/definitions.json")).unwrap();
    let mut checked = 0;
    for def in defs["definitions"].as_array().expect("definitions array") {
        let (Some(t), Some(source), Some(domain)) = (
            def["findingType"].as_str(),
            def["logSource"].as_str(),
            def["indicator"].as_str(),
        ) else {
            continue;
        };
        if source != "dns" || !t.contains(":EC2/") {
            continue;
        }
        let f = run(&[panther_query(domain, T0)]);
        assert_eq!(types(&f), [t], "{domain}");
        assert_eq!(
            dns_action(&f[0]).domain.as_deref(),
            Some(domain.to_ascii_lowercase().as_str())
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} tester definitions checked");
}

#[test]
fn panther_crypto_domain_tests() {
    // The Panther rule's own expected results (`expected_result`) for each of its tests.
    let text = corpus("panther-analysis/panther_rule_tests_route53_resolver.jsonl");
    let mut checked = 0;
    for line in text.lines() {
        let test: serde_json::Value = serde_json::from_str(line).unwrap();
        if test["rule_id"] != "AWS.DNS.Crypto.Domain" || test["mocks"].is_object() {
            continue;
        }
        let name = test["log"]["query_name"].as_str().unwrap();
        let expected = test["expected_result"].as_bool().unwrap();
        // Panther's IOC list is its own; Ward's mining-pool list covers the pools, and an
        // operator list stands in for the dynamic-DNS IOC.
        let intel = IntelIndex::new([Arc::new(IntelList::parse(
            "crypto-iocs",
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            "moneropool.ru\n*.moneropool.ru\nwebservicepag.webhop.net\n",
        ))]);
        let settings = Settings {
            threat_categories: [("crypto-iocs".to_owned(), ThreatCategory::Bitcoin)].into(),
            ..Settings::default()
        };
        let mut detector = DnsDetector::new(DnsConfig::default());
        let mut log = test["log"].clone();
        log.as_object_mut()
            .unwrap()
            .retain(|k, _| !k.starts_with("p_"));
        let f = run_with(&mut detector, &intel, &settings, &[log.to_string()]);
        if expected {
            assert_eq!(
                types(&f),
                [FindingType::CryptoCurrencyEc2BitcoinToolBDns.name()],
                "{name}"
            );
            assert_eq!(
                f[0].service.threat_list_name().as_deref(),
                Some("crypto-iocs")
            );
            assert_eq!(
                f[0].resource
                    .instance_details
                    .as_ref()
                    .unwrap()
                    .instance_id
                    .as_deref(),
                Some("i-0abc234")
            );
        } else {
            assert!(f.is_empty(), "{name}: {f:#?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn mining_pools_from_the_built_in_list() {
    let f = run(&[panther_query("pool.supportxmr.com.", T0)]);
    assert_eq!(
        types(&f),
        [FindingType::CryptoCurrencyEc2BitcoinToolBDns.name()]
    );
    assert!(run(&[panther_query("xmrig.com", T0)]).is_empty());
}

fn exfil_queries(n: usize) -> Vec<String> {
    corpus("amazon-guardduty-tester/dns_exfil_queries.txt")
        .lines()
        .take(n)
        .enumerate()
        .map(|(i, name)| {
            panther_query(
                name,
                &format!("2024-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60),
            )
        })
        .collect()
}

#[test]
fn the_testers_exfiltration_queries_fire_once_per_window() {
    let all = exfil_queries(929);
    let f = run(&all);
    let exfil: Vec<&Finding> = f
        .iter()
        .filter(|f| f.finding_type_name == FindingType::TrojanEc2DnsDataExfiltration.name())
        .collect();
    // 929 queries one second apart span two 10-minute windows.
    assert_eq!(exfil.len(), 2, "{:?}", types(&f));
    assert_eq!(f.len(), 2, "nothing else fires: {:?}", types(&f));
    let a = dns_action(exfil[0]);
    assert_eq!(
        a.domain_with_suffix.as_deref(),
        Some("guarddutyc2activityb.com")
    );
    assert_eq!(exfil[0].service.resource_role.as_deref(), Some("ACTOR"));
    assert_eq!(
        exfil[0].severity.level(),
        crate::findings::SeverityLevel::High
    );
    let record = exfil[0].service.ward_details().unwrap().log_record.unwrap();
    assert_eq!((record.source.as_str(), record.line), ("dns", 20));
    // 19 of them are not enough.
    assert!(run(&exfil_queries(19)).is_empty());
}

#[test]
fn cdn_and_service_names_are_not_exfiltration() {
    let names = [
        "d1a2b3c4d5e6f7.cloudfront.net",
        "ec2-54-12-34-56.compute-1.amazonaws.com",
        "ip-10-0-1-23.us-west-2.compute.internal",
        "my-load-balancer-1234567890.us-east-1.elb.amazonaws.com",
        "e1234.dscb.akamaiedge.net",
        "vpce-0123456789abcdef0-abcdefgh.s3.us-east-1.vpce.amazonaws.com",
        "r3---sn-4g5e6nsz.googlevideo.com",
        "15.3.4.32.in-addr.arpa",
    ];
    let mut lines = Vec::new();
    for round in 0..5 {
        for (i, name) in names.iter().enumerate() {
            let name = name.replace("1234", &format!("{}{}", 1234 + round, i));
            lines.push(panther_query(&name, T0));
        }
    }
    let f = run(&lines);
    assert!(f.is_empty(), "{:?}", types(&f));
}

#[test]
fn metadata_rebinding_from_the_answers() {
    let rebind = |name: &str, rdata: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&panther_query(name, T0)).unwrap();
        v["answers"] = serde_json::json!([{"Rdata": rdata, "Type": "A", "Class": "IN"}]);
        v.to_string()
    };
    let f = run(&[rebind("rebind.attacker.example", "169.254.169.254")]);
    assert_eq!(
        types(&f),
        [FindingType::UnauthorizedAccessEc2MetadataDnsRebind.name()]
    );
    assert!(f[0].description.contains("169.254.169.254"));
    assert!(
        run(&[
            rebind("instance-data.ec2.internal", "169.254.169.254"),
            rebind("rebind.attacker.example", "93.184.216.34"),
        ])
        .is_empty()
    );
}

#[test]
fn blocked_queries_and_the_aws_example_record() {
    // The AWS guide's DNS Firewall example: a BLOCKed PTR query from an instance.
    let example = corpus("awsdocs/route53resolver/example_v1.100000_firewall_block.json");
    let example: serde_json::Value = serde_json::from_str(&example).unwrap();
    assert!(
        run(&[example.to_string()]).is_empty(),
        "an ordinary PTR query"
    );
    let mut blocked = example.clone();
    blocked["query_name"] = "guarddutyphishingactivity.com.".into();
    let f = run(&[blocked.to_string()]);
    assert_eq!(
        types(&f),
        [FindingType::TrojanEc2PhishingDomainRequestDns.name()]
    );
    let a = dns_action(&f[0]);
    assert_eq!(a.blocked, Some(true));
    assert_eq!(a.protocol.as_deref(), Some("UDP"));
    assert_eq!(a.vpc_owner_account_id.as_deref(), Some("111122223333"));
    // No instance in srcids (a Resolver endpoint): not analysed.
    let mut endpoint = blocked;
    endpoint["srcids"] = serde_json::json!({"resolver_endpoint": "rslvr-in-1"});
    assert!(run(&[endpoint.to_string()]).is_empty());
}

#[test]
fn reputation_and_custom_lists_and_blackhole_answers() {
    let intel = IntelIndex::new([
        Arc::new(IntelList::parse(
            "young-domains",
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            "fresh.example.net\n",
        )),
        Arc::new(IntelList::parse(
            "corp",
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            "bad.example.org\n",
        )),
        Arc::new(IntelList::parse(
            "sinkholes",
            ListRole::Threat,
            ListKind::IpList,
            ListFormat::Txt,
            "198.51.100.250\n",
        )),
        Arc::new(IntelList::parse(
            "ok",
            ListRole::Trusted,
            ListKind::EntityList,
            ListFormat::Txt,
            "crypto.guarddutyc2activityb.com\n",
        )),
    ]);
    let threat_categories = [
        (
            "young-domains".to_owned(),
            ThreatCategory::SuspiciousReputation,
        ),
        ("sinkholes".to_owned(), ThreatCategory::Blackhole),
    ]
    .into();
    let settings = Settings {
        threat_categories,
        ..Settings::default()
    };
    let mut detector = DnsDetector::new(DnsConfig::default());
    let mut sinkholed: serde_json::Value =
        serde_json::from_str(&panther_query("parked.example.com", T0)).unwrap();
    sinkholed["answers"] =
        serde_json::json!([{"Rdata": "198.51.100.250", "Type": "A", "Class": "IN"}]);
    let f = run_with(
        &mut detector,
        &intel,
        &settings,
        &[
            panther_query("fresh.example.net", T0),
            panther_query("bad.example.org", T0),
            sinkholed.to_string(),
            panther_query("crypto.guarddutyc2activityb.com", T0),
            panther_query("good.example.org", T0),
        ],
    );
    assert_eq!(
        types(&f),
        [
            FindingType::ImpactEc2SuspiciousDomainRequestReputation.name(),
            FindingType::ImpactEc2MaliciousDomainRequestCustom.name(),
            FindingType::TrojanEc2BlackholeTrafficDns.name(),
        ]
    );
    assert_eq!(f[1].service.threat_list_name().as_deref(), Some("corp"));
}

/// The detector remembers what it learned about names (`recent`): a name it has seen must still
/// be checked against lists added, replaced or trusted since, and a listed name seen again must
/// raise again.
#[test]
fn names_seen_before_meet_the_lists_of_the_moment() {
    let list = |name: &str, role: ListRole, text: &str| {
        Arc::new(IntelList::parse(
            name,
            role,
            ListKind::EntityList,
            ListFormat::Txt,
            text,
        ))
    };
    let settings = Settings::default();
    let mut detector = DnsDetector::default();
    let query = || panther_query("bad.example.org", T0);
    let mut intel = IntelIndex::default();
    let f = run_with(&mut detector, &intel, &settings, &[query(), query()]);
    assert!(f.is_empty(), "{f:#?}");

    intel.add(list("corp", ListRole::Threat, "bad.example.org\n"));
    let f = run_with(&mut detector, &intel, &settings, &[query(), query()]);
    let custom = FindingType::ImpactEc2MaliciousDomainRequestCustom.name();
    assert_eq!(types(&f), [custom, custom]);

    intel.replace(list("corp", ListRole::Threat, "other.example.org\n"));
    let f = run_with(&mut detector, &intel, &settings, &[query()]);
    assert!(f.is_empty(), "{f:#?}");

    intel.replace(list("corp", ListRole::Threat, "*.example.org\n"));
    let f = run_with(&mut detector, &intel, &settings, &[query()]);
    assert_eq!(types(&f), [custom]);

    intel.add(list("ok", ListRole::Trusted, "bad.example.org\n"));
    let f = run_with(&mut detector, &intel, &settings, &[query(), query()]);
    assert!(f.is_empty(), "{f:#?}");

    // A fresh index with the same lists is another generation too.
    let fresh = IntelIndex::new([list("corp", ListRole::Threat, "bad.example.org\n")]);
    let f = run_with(&mut detector, &fresh, &settings, &[query()]);
    assert_eq!(types(&f), [custom]);
}

#[test]
fn many_unresolved_generated_domains_are_dga() {
    let nx = |name: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&panther_query(name, T0)).unwrap();
        v["rcode"] = "NXDOMAIN".into();
        v["answers"] = serde_json::json!([]);
        v.to_string()
    };
    let generated = [
        "xjkqpwzvbtrm",
        "qwrtzpsdfghk",
        "mnbvcxzlkjhg",
        "zxcvbnmasdfg",
        "plmkoqwrtzxv",
        "bcdfghjklmnp",
        "vwxzqrtpsdfk",
        "hjklzxcvbnmq",
        "rtyplkjhgfds",
        "wxcvbnqsdfgh",
    ];
    let lines: Vec<String> = generated.iter().map(|g| nx(&format!("{g}.com"))).collect();
    let f = run(&lines);
    assert_eq!(types(&f), [FindingType::TrojanEc2DgaDomainRequestB.name()]);
    assert_eq!(
        dns_action(&f[0]).domain.as_deref(),
        Some("wxcvbnqsdfgh.com")
    );
    // Nine, or ten ordinary typos, are not.
    assert!(run(&lines[..9]).is_empty());
    let typos: Vec<String> = [
        "exampel",
        "gogle",
        "amazom",
        "wikipdia",
        "facebok",
        "githb",
        "stackoverflw",
        "redit",
        "twiter",
        "linkdin",
    ]
    .iter()
    .map(|t| nx(&format!("{t}.com")))
    .collect();
    assert!(run(&typos).is_empty());
}
