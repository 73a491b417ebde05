//! The ingest path (the readers' own JSON reader) builds exactly the records the serde path
//! (`serde_json::from_str`, which tests and tools use) builds: every typed field, every `extra`
//! entry, raw or parsed, in the same order. Checked on every CloudTrail and Route 53 record of the
//! corpus and on hand-made records with odd types, nulls, duplicates, escapes and non-ASCII text.

use std::io::Cursor;
use ward_collector::event::cloudtrail::CloudTrailRecord;
use ward_collector::event::dns::DnsQuery;
use ward_collector::event::{Event, Record, SourceKind};
use ward_collector::logs::{Problem, ReadOptions, Sink, read_object};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

/// Debug text of each record the reader emitted, with its line.
#[derive(Default)]
struct Collect {
    records: Vec<(u64, String)>,
    problems: Vec<String>,
}

impl Sink for Collect {
    fn event(&mut self, e: &Event<'_>) {
        let text = match e.record {
            Record::CloudTrail(r) => format!("{r:?}"),
            Record::Dns(q) => format!("{q:?}"),
            _ => panic!("unexpected record kind"),
        };
        self.records.push((e.origin.line, text));
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.problems.push(p.to_string());
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.problems.push(p.to_string());
    }
}

/// Reads `lines` as JSON Lines with the ingest path and compares every record with the serde
/// path's record for the same line. Returns how many records were compared.
fn compare(source: SourceKind, lines: &[String]) -> usize {
    let mut sink = Collect::default();
    read_object(
        source,
        "parity",
        Cursor::new(lines.join("\n").into_bytes()),
        &ReadOptions::default(),
        &mut sink,
    );
    let mut expected = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = match source {
            SourceKind::CloudTrail => {
                let r: CloudTrailRecord<'_> = serde_json::from_str(line).unwrap();
                r.looks_like_event().then(|| format!("{r:?}"))
            }
            SourceKind::Dns => {
                let q: DnsQuery<'_> = serde_json::from_str(line).unwrap();
                q.looks_like_query().then(|| format!("{q:?}"))
            }
            SourceKind::VpcFlow => unreachable!(),
        };
        if let Some(t) = text {
            expected.push((i as u64 + 1, t));
        }
    }
    // Objects that are not records (some rule tests hold other log types) are reported by the
    // reader; nothing else may be.
    assert_eq!(
        sink.problems.len(),
        lines.len() - expected.len(),
        "{:?}",
        sink.problems
    );
    for p in &sink.problems {
        assert!(p.contains(": JSON object is not a "), "{p}");
    }
    assert_eq!(sink.records.len(), expected.len());
    for (got, want) in sink.records.iter().zip(&expected) {
        assert_eq!(got, want, "line {}", want.0);
    }
    expected.len()
}

/// Records of a corpus file, one compact JSON text each.
fn corpus_records(rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{CORPUS}/{rel}")).unwrap_or_else(|e| {
        panic!("corpus file {rel}: {e} (CI copies shared/ beside the checkout)")
    });
    if rel.ends_with(".jsonl") {
        // Panther rule tests: the record is `log`.
        return text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["log"].to_string())
            .collect();
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) => match o.remove("Records") {
            Some(serde_json::Value::Array(a)) => a,
            _ => vec![serde_json::Value::Object(o)],
        },
        other => vec![other],
    };
    list.iter().map(|r| r.to_string()).collect()
}

#[test]
fn cloudtrail_corpus_records_are_identical_on_both_paths() {
    let dir = format!("{CORPUS}/stratus-red-team/detonation-logs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e} (CI copies shared/ beside the checkout)"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for f in &files {
        lines.extend(corpus_records(&format!(
            "stratus-red-team/detonation-logs/{f}"
        )));
    }
    lines.extend(corpus_records(
        "panther-analysis/panther_rule_tests_cloudtrail.jsonl",
    ));
    let n = compare(SourceKind::CloudTrail, &lines);
    assert!(n > 500, "only {n} CloudTrail records compared");
}

#[test]
fn dns_corpus_records_are_identical_on_both_paths() {
    let mut lines = corpus_records("panther-analysis/panther_rule_tests_route53_resolver.jsonl");
    lines.extend(corpus_records(
        "awsdocs/route53resolver/example_v1.100000_firewall_block.json",
    ));
    let n = compare(SourceKind::Dns, &lines);
    assert!(n >= 10, "only {n} DNS records compared");
}

#[test]
fn odd_cloudtrail_records_are_identical_on_both_paths() {
    let lines = [
        // Every documented field typed, in an unusual order.
        r#"{"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"x","clientProvidedHostHeader":"h"},"eventName":"A","addendum":{"reason":"r","updatedFields":"u","originalRequestID":"o","originalEventID":"e"},"readOnly":true,"resources":[{"ARN":"arn:1","accountId":"1","type":"t"},{"ARN":"arn:2"}],"userIdentity":{"type":"AssumedRole","sessionContext":{"attributes":{"mfaAuthenticated":"true","creationDate":"d"},"sessionIssuer":{"type":"Role","arn":"a"},"webIdFederationData":{"federatedProvider":"p","attributes":{"k":[1,2]}},"ec2RoleDelivery":"2.0","assumedRoot":false},"onBehalfOf":{"userId":"u","identityStoreArn":"s"},"inScopeOf":{"x":1}}}"#,
        // Nulls, odd types, duplicates, unknown keys with nested values.
        r#"{"eventName":"B","eventVersion":null,"readOnly":"TRUE","managementEvent":1,"sessionCredentialFromConsole":[true],"userIdentity":"someone","resources":{"ARN":"x"},"requestParameters":null,"responseElements":[1,{"a":null}],"unknown":{"x":[1,{"y":"z"}],"n":-0.5e-3},"eventName":"dup","tlsDetails":{"tlsVersion":5,"cipherSuite":null},"errorCode":false,"errorMessage":{"m":1},"addendum":[],"vpcEndpointId":12345678901234567890}"#,
        // Lists that do not fit stay raw: an element of the wrong type, or not a list.
        r#"{"eventSource":"s","resources":[{"ARN":"a"},"x"],"additionalEventData":"text"}"#,
        r#"{"eventSource":"s","resources":null,"serviceEventDetails":true,"insightDetails":0}"#,
        r#"{"eventSource":"s","resources":[],"edgeDeviceDetails":{}}"#,
        // Escapes in keys and values, non-ASCII text, whitespace everywhere.
        r#" { "event\u004eame" : "caf\u00e9 \"q\" \\ \/ \b\f\n\r\t \ud83d\ude00" , "userAgent" : "Gr\u00fc\u00dfe ✓ 日本語 😀" , "sourceIPAddress":"08.1.250.216" , "x" : [ "\u0000" ] } "#,
        // An EventBridge-shaped record that also names eventName at the top.
        r#"{"eventVersion":"1.09","detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"C"}}"#,
    ];
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(compare(SourceKind::CloudTrail, &lines), lines.len());
}

#[test]
fn odd_dns_records_are_identical_on_both_paths() {
    let lines = [
        r#"{"query_name":"a.example.","answers":{"Rdata":"1.2.3.4","Type":"A","Class":"IN"},"srcport":53}"#,
        r#"{"query_name":"b.example.","answers":[{"Rdata":"x"},{"Type":"AAAA"}],"srcport":"53","srcids":{"resolver-endpoint":"rslvr-in-1","instance":"i-1"}}"#,
        r#"{"query_name":"c.example.","answers":[1],"srcids":null,"rcode":7}"#,
        r#"{"query_name":"d.example.","answers":null,"query_name":"dup.","firewall_rule_action":"BLOCK"}"#,
        r#"{"query_name":"\u00e9t\u00e9.example.","answers":[],"transport":"UDP","version":"1.100000"}"#,
        r#"{"query_name":"e.example.","answers":"none","srcids":{"instance":["i-2"]}}"#,
    ];
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(compare(SourceKind::Dns, &lines), lines.len());
}
