//! Bad input never crashes a reader: each problem is counted and located (object + line / record
//! index), and everything else in the object is still read.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{Cursor, Read, Write};
use ward_collector::event::{Event, Record, SourceKind};
use ward_collector::logs::{Counts, Limits, Problem, ReadOptions, Sink, read_object};

#[derive(Default)]
struct Collect {
    origins: Vec<String>,
    ips: Vec<Option<std::net::IpAddr>>,
    malformed: Vec<String>,
    skipped: Vec<String>,
}

impl Sink for Collect {
    fn event(&mut self, e: &Event<'_>) {
        self.origins.push(e.origin.to_string());
        self.ips.push(match e.record {
            Record::CloudTrail(r) => r.source_ip(),
            Record::Flow(r) => r.srcaddr,
            Record::Dns(r) => r.src_ip(),
        });
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.malformed.push(p.to_string());
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.skipped.push(p.to_string());
    }
}

fn read(source: SourceKind, data: impl Read + 'static, opts: &ReadOptions) -> (Counts, Collect) {
    let mut sink = Collect::default();
    let c = read_object(source, "obj", data, opts, &mut sink);
    (c, sink)
}

fn read_bytes(source: SourceKind, data: &[u8]) -> (Counts, Collect) {
    read(source, Cursor::new(data.to_vec()), &ReadOptions::default())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn ct_event(i: usize) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject{i}","sourceIPAddress":"10.0.0.{}","requestParameters":{{"bucketName":"b","key":"k{i}"}},"responseElements":null}}"#,
        i % 60,
        i % 250
    )
}

fn flow_line(i: usize) -> String {
    format!(
        "2 123456789010 eni-1 10.0.{}.{} 10.1.0.1 {} 443 6 10 840 1700000000 1700000060 ACCEPT OK\n",
        i / 250 % 250,
        i % 250,
        1024 + i % 60000
    )
}

fn dns_line(i: usize) -> String {
    format!(
        r#"{{"version":"1.100000","account_id":"1","region":"us-east-1","vpc_id":"vpc-1","query_timestamp":"2024-01-01T00:00:00Z","query_name":"host{i}.example.com.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[],"srcaddr":"10.0.0.1","srcport":"53","transport":"UDP","srcids":{{"instance":"i-1"}}}}"#
    ) + "\n"
}

#[test]
fn empty_objects() {
    for source in SourceKind::ALL {
        for data in [Vec::new(), b"\n\n  \n".to_vec(), gzip(b"")] {
            let (c, s) = read_bytes(source, &data);
            assert_eq!(
                (c.records, c.malformed, c.skipped),
                (0, 0, 0),
                "{source} {data:?}: {:?}",
                s.malformed
            );
        }
    }
}

#[test]
fn truncated_gzip_keeps_what_came_before() {
    let flow: String = (0..20_000).map(flow_line).collect();
    let dns: String = (0..5_000).map(dns_line).collect();
    let ct = format!(
        "{{\"Records\":[{}]}}",
        (0..5_000).map(ct_event).collect::<Vec<_>>().join(",")
    );
    let ct_lines: String = (0..5_000).map(|i| ct_event(i) + "\n").collect();
    for (source, text, total) in [
        (SourceKind::VpcFlow, &flow, 20_000),
        (SourceKind::Dns, &dns, 5_000),
        (SourceKind::CloudTrail, &ct, 5_000),
        (SourceKind::CloudTrail, &ct_lines, 5_000),
    ] {
        let gz = gzip(text.as_bytes());
        let cut = &gz[..gz.len() / 2];
        let (c, s) = read_bytes(source, cut);
        assert!(c.records > 0 && c.records < total, "{source}: {c:?}");
        assert_eq!(c.malformed, 1, "{source}: {:?}", s.malformed);
        assert!(
            s.malformed[0].contains("input cut short"),
            "{}",
            s.malformed[0]
        );
        // The records delivered are exactly a prefix: none invented, none skipped.
        let last = s.origins.last().unwrap().clone();
        assert!(
            last == format!("obj:{}", c.records)
                || last == format!("obj:1 record #{}", c.records - 1),
            "{source}: {last} vs {c:?}"
        );
    }
}

/// Produces `before`, then a line of `len` bytes, then `after`, without holding the long line.
struct HugeLine {
    parts: Vec<Vec<u8>>,
    fill_left: u64,
    fill: u8,
    stage: usize,
}

impl Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.stage {
                0 | 2 => {
                    let part = &mut self.parts[self.stage / 2];
                    if part.is_empty() {
                        self.stage += 1;
                        continue;
                    }
                    let n = part.len().min(buf.len());
                    buf[..n].copy_from_slice(&part[..n]);
                    part.drain(..n);
                    return Ok(n);
                }
                1 => {
                    if self.fill_left == 0 {
                        self.stage = 2;
                        continue;
                    }
                    let n = (buf.len() as u64).min(self.fill_left) as usize;
                    buf[..n].fill(self.fill);
                    self.fill_left -= n as u64;
                    return Ok(n);
                }
                _ => return Ok(0),
            }
        }
    }
}

#[test]
fn gigabyte_line_is_bounded_and_counted() {
    const GB: u64 = 1 << 30;
    let cases: [(SourceKind, String, String, &[u8]); 3] = [
        (SourceKind::VpcFlow, flow_line(1), flow_line(2), b"2 "),
        (
            SourceKind::Dns,
            dns_line(1),
            dns_line(2),
            b"{\"query_name\":\"",
        ),
        (
            SourceKind::CloudTrail,
            ct_event(1) + "\n",
            ct_event(2) + "\n",
            b"{\"eventName\":\"",
        ),
    ];
    for (source, before, after, start) in cases {
        let mut first = before.into_bytes();
        first.extend_from_slice(start);
        let mut last = b"\n".to_vec();
        last.extend(after.into_bytes());
        let r = HugeLine {
            parts: vec![first, last],
            fill_left: GB,
            fill: b'x',
            stage: 0,
        };
        let opts = ReadOptions {
            limits: Limits {
                max_line: 1 << 20,
                ..Limits::default()
            },
            ..ReadOptions::default()
        };
        let (c, s) = read(source, r, &opts);
        assert_eq!(
            (c.records, c.malformed),
            (2, 1),
            "{source}: {:?}",
            s.malformed
        );
        assert!(
            s.malformed[0].starts_with(&format!("{source}: obj:2: ")),
            "{}",
            s.malformed[0]
        );
        assert_eq!(
            s.origins[1], "obj:3",
            "{source}: the record after the long line keeps its line number"
        );
    }
}

#[test]
fn non_utf8_bytes() {
    let mut flow = flow_line(1).into_bytes();
    flow.extend(b"2 1 eni-\xff\xfe 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n");
    flow.extend(flow_line(3).into_bytes());
    let (c, s) = read_bytes(SourceKind::VpcFlow, &flow);
    assert_eq!((c.records, c.malformed), (2, 1));
    assert!(
        s.malformed[0].contains("obj:2: not UTF-8"),
        "{}",
        s.malformed[0]
    );

    for source in [SourceKind::Dns, SourceKind::CloudTrail] {
        let (a, b) = if source == SourceKind::Dns {
            (dns_line(1), dns_line(3))
        } else {
            (ct_event(1) + "\n", ct_event(3) + "\n")
        };
        let mut data = a.into_bytes();
        data.extend(b"{\"query_name\":\"bad\xff\xfename\",\"eventName\":\"x\"}\n");
        data.extend(b.into_bytes());
        let (c, s) = read_bytes(source, &data);
        assert_eq!(
            (c.records, c.malformed),
            (2, 1),
            "{source}: {:?}",
            s.malformed
        );
        assert!(
            s.malformed[0].contains("obj:2: invalid JSON"),
            "{}",
            s.malformed[0]
        );
        assert_eq!(s.origins, vec!["obj:1", "obj:3"]);
    }
}

#[test]
fn unusual_ip_forms_never_crash() {
    let mut text = String::new();
    for ip in [
        "08.1.250.216",
        "255.090.254.5",
        "035.249.253.232",
        "1.2.3.4.5",
        "::ffff:10.0.0.1",
        "999.1.1.1",
        "1e1.2.3.4",
        "",
        "-",
    ] {
        text += &format!("2 1 eni-1 {ip} 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n");
    }
    let (c, s) = read_bytes(SourceKind::VpcFlow, text.as_bytes());
    // "" collapses into the separator: a field-count error, like 1.2.3.4.5 / 999.1.1.1 / 1e1.2.3.4 are value errors.
    assert_eq!((c.records, c.malformed), (5, 4), "{:?}", s.malformed);
    assert_eq!(s.ips[0], Some("8.1.250.216".parse().unwrap()));
    assert_eq!(s.ips[1], Some("255.90.254.5".parse().unwrap()));
    assert_eq!(s.ips[4], None, "`-`");
    assert!(
        s.malformed
            .iter()
            .any(|m| m.contains("obj:4: invalid srcaddr value \"1.2.3.4.5\"")),
        "{:?}",
        s.malformed
    );

    // In CloudTrail an unparseable sourceIPAddress is simply not an IP (it may be a host name).
    let ct = r#"[{"eventName":"A","sourceIPAddress":"08.1.250.216"},{"eventName":"B","sourceIPAddress":"ec2.amazonaws.com"},{"eventName":"C","sourceIPAddress":"300.1.1.1"}]"#;
    let (c, s) = read_bytes(SourceKind::CloudTrail, ct.as_bytes());
    assert_eq!((c.records, c.malformed), (3, 0));
    assert_eq!(
        s.ips,
        vec![Some("8.1.250.216".parse().unwrap()), None, None]
    );
}

#[test]
fn cloudtrail_bad_elements_are_located_by_index() {
    let doc = format!(
        r#"{{"Records":[{},42,{},"x",{}]}}"#,
        ct_event(0),
        ct_event(1),
        ct_event(2)
    );
    let (c, s) = read_bytes(SourceKind::CloudTrail, doc.as_bytes());
    assert_eq!((c.records, c.malformed), (3, 2));
    assert_eq!(
        s.origins,
        vec!["obj:1 record #0", "obj:1 record #2", "obj:1 record #4"]
    );
    assert!(
        s.malformed[0]
            .contains("record #1: expected a CloudTrail record (JSON object), found a number"),
        "{}",
        s.malformed[0]
    );

    // A syntax error inside the envelope: records before it are kept, the error is located.
    let doc = format!(
        "{{\"Records\":[\n{},\n{},\n{{\"eventName\": oops}},\n{}]}}",
        ct_event(0),
        ct_event(1),
        ct_event(3)
    );
    let (c, s) = read_bytes(SourceKind::CloudTrail, doc.as_bytes());
    assert_eq!((c.records, c.malformed), (2, 1), "{:?}", s.malformed);
    assert!(
        s.malformed[0].contains("obj:4: invalid JSON"),
        "{}",
        s.malformed[0]
    );
}

#[test]
fn cloudtrail_wrappers_digests_and_odd_values() {
    // EventBridge event, CloudWatch Logs subscription batch (concatenated, no newline), control
    // message, digest file, a JSON object that is not an event, a pretty-printed event, a
    // CloudWatch export line with a timestamp prefix.
    let eb = format!(
        r#"{{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","detail":{}}}"#,
        ct_event(1)
    );
    let cwl = serde_json::json!({"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s",
        "subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":ct_event(2)},{"id":"2","timestamp":1,"message":"not json"}]});
    let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
    let digest = r#"{"awsAccountId":"1","digestStartTime":"2024-01-01T00:00:00Z","digestEndTime":"2024-01-01T01:00:00Z","digestPublicKeyFingerprint":"ab","digestSignatureAlgorithm":"SHA256withRSA","logFiles":[]}"#;
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&ct_event(3)).unwrap(),
    )
    .unwrap();
    let data = format!(
        "{eb}\n{cwl}{control}\n{digest}\n{{\"hello\":1}}\n{pretty}\n2024-01-01T00:00:00.000Z {}\n",
        ct_event(4)
    );
    let (c, s) = read_bytes(SourceKind::CloudTrail, data.as_bytes());
    assert_eq!(
        (c.records, c.malformed, c.skipped),
        (4, 2, 2),
        "{:?} {:?}",
        s.malformed,
        s.skipped
    );
    // The pretty-printed event spans lines 5-16.
    assert_eq!(
        s.origins,
        vec!["obj:1", "obj:2 record #0", "obj:5", "obj:17"]
    );
    assert!(
        s.malformed[0].contains("obj:2 record #1: log event message is not JSON"),
        "{}",
        s.malformed[0]
    );
    assert!(
        s.malformed[1].contains("obj:4: JSON object is not a CloudTrail record"),
        "{}",
        s.malformed[1]
    );
    assert!(
        s.skipped[0].contains("control message") && s.skipped[1].contains("digest"),
        "{:?}",
        s.skipped
    );
}

#[test]
fn dns_cloudwatch_subscription_gz_from_firehose() {
    // Firehose concatenates gzip members; each holds one subscription batch.
    let batch = |from: usize| {
        let events: Vec<_> = (from..from + 3).map(|i| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": dns_line(i).trim_end()})).collect();
        serde_json::json!({"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":events}).to_string()
    };
    let mut data = gzip(batch(0).as_bytes());
    data.extend(gzip(batch(3).as_bytes()));
    let (c, s) = read_bytes(SourceKind::Dns, &data);
    assert_eq!((c.records, c.malformed), (6, 0), "{:?}", s.malformed);
    assert_eq!(s.origins[5], "obj:1 record #2");
}

#[test]
fn flow_lines_with_wrong_values_are_located() {
    let text = format!(
        "{}2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 MAYBE OK\n{}2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK extra\n\n{}",
        flow_line(1),
        flow_line(2),
        flow_line(3)
    );
    let (c, s) = read_bytes(SourceKind::VpcFlow, text.as_bytes());
    assert_eq!((c.records, c.malformed), (3, 2));
    assert_eq!(
        s.malformed,
        vec![
            "vpc-flow: obj:2: invalid action value \"MAYBE\"",
            "vpc-flow: obj:4: 15 fields, the format has 14"
        ]
    );
    assert_eq!(s.origins, vec!["obj:1", "obj:3", "obj:6"]);
}
