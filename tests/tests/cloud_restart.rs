//! Cloud-log detections in `ward-collector serve` across a SIGKILL: the real collector binary reads
//! a watched directory of CloudTrail files, is killed mid-read and restarted on the same data.
//! Every record is a root API call, one occurrence of its account's RootCredentialUsage finding,
//! so each finding's count must equal a clean run's: an object whose findings were committed and
//! then read again would add, one marked done without its findings would subtract, and findings
//! not restored into aggregation would restart their counts.

#[path = "transport_common.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::*;

const FILES: usize = 400;
const CALLS_PER_FILE: usize = 40;
const ACCOUNTS: usize = 4;

fn root_call(n: usize) -> serde_json::Value {
    let account = format!("1111111111{:02}", n % ACCOUNTS);
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "Root", "principalId": account, "accountId": account,
            "arn": format!("arn:aws:iam::{account}:root"), "accessKeyId": "ASIAEXAMPLEROOTKEY01"},
        "eventTime": format!("2026-01-01T{:02}:{:02}:{:02}Z", n / 3600 % 24, n / 60 % 60, n % 60),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.5",
        "userAgent": "aws-cli/2",
        "eventID": format!("00000000-0000-0000-0000-{n:012}"),
        "eventType": "AwsApiCall",
        "recipientAccountId": account
    })
}

fn write_logs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in 0..FILES {
        let records: Vec<_> = (0..CALLS_PER_FILE)
            .map(|i| root_call(f * CALLS_PER_FILE + i))
            .collect();
        std::fs::write(
            dir.join(format!("ct-{f:04}.json")),
            serde_json::json!({ "Records": records }).to_string(),
        )
        .unwrap();
    }
}

fn wait_line(lines: &Receiver<String>, what: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line containing {what:?} within {timeout:?}"),
        }
    }
}

/// (objects checkpointed, finding id -> (type, count)) as committed. Only opened while no
/// collector runs.
fn committed(data: &Path) -> (usize, BTreeMap<String, (String, u64)>) {
    use ward_collector::store::{ListQuery, Store, StoreConfig};
    let store = Store::open(&data.join("ward.db"), StoreConfig::default()).expect("store opens");
    let objects = store.read(|r| r.checkpoints_under("cloud:")).unwrap().len();
    let mut findings = BTreeMap::new();
    let mut query = ListQuery {
        max_results: 1000,
        ..ListQuery::default()
    };
    loop {
        let page = store.read(|r| r.list_findings(&query)).unwrap();
        for raw in &page.findings {
            let f: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
            findings.insert(
                f["id"].as_str().unwrap().to_string(),
                (
                    f["type"].as_str().unwrap().to_string(),
                    f["service"]["count"].as_u64().unwrap(),
                ),
            );
        }
        match page.next_token {
            Some(t) => query.next_token = Some(t),
            None => break,
        }
    }
    (objects, findings)
}

/// The log records the findings count. Attack sequences are left out: they count their signals
/// (other findings), not records; they are still compared whole between the runs.
fn records_counted(findings: &BTreeMap<String, (String, u64)>) -> u64 {
    findings
        .values()
        .filter(|(kind, _)| !kind.starts_with("AttackSequence:"))
        .map(|(_, count)| count)
        .sum()
}

#[test]
fn killed_collector_counts_every_cloud_log_record_once() {
    let pki = Pki::generate();
    let dir = TempDir::new("cloud-restart");
    pki.write_server_files(dir.path());
    let logs = dir.path().join("logs");
    write_logs(&logs);
    let logs_arg = logs.to_string_lossy().into_owned();
    let flags = ["--cloudtrail", &logs_arg, "--cloud-poll-secs", "0.05"];
    let env = [("RUST_LOG", "info,ward_collector::pipeline::cloud=debug")];
    let start =
        |data: &Path| CollectorProcess::start_env(dir.path(), data, free_port(), &flags, &env);

    // The clean run: one pass reads every file; SIGTERM commits and exits.
    let clean_data = dir.path().join("clean");
    let (collector, lines) = start(&clean_data);
    let read = wait_line(&lines, ": read ", Duration::from_secs(120));
    assert!(read.contains(&format!("read {FILES} objects")), "{read}");
    collector.stop();
    let (objects, clean) = committed(&clean_data);
    assert_eq!(objects, FILES);
    assert!(clean.len() >= ACCOUNTS, "{clean:?}");
    assert_eq!(
        records_counted(&clean),
        (FILES * CALLS_PER_FILE) as u64,
        "{clean:?}"
    );

    // Killed after its second group commit, while the first pass is still reading.
    let data = dir.path().join("data");
    let (collector, lines) = start(&data);
    wait_line(&lines, "cloud logs: committed", Duration::from_secs(120));
    wait_line(&lines, "cloud logs: committed", Duration::from_secs(60));
    collector.kill();
    let pass_done = lines.try_iter().any(|l| l.contains(": read "));
    let (done_at_kill, at_kill) = committed(&data);
    assert!(
        !pass_done && done_at_kill > 0 && done_at_kill < FILES,
        "the kill came after the pass ({done_at_kill} of {FILES} objects committed)"
    );
    assert_eq!(
        records_counted(&at_kill),
        (done_at_kill * CALLS_PER_FILE) as u64,
        "the committed findings are exactly those of the committed objects"
    );

    // Restarted: reads what was not committed, once.
    let (collector, lines) = start(&data);
    let read = wait_line(&lines, ": read ", Duration::from_secs(120));
    assert!(
        read.contains(&format!("read {} objects", FILES - done_at_kill)),
        "{read}"
    );
    collector.stop();
    let (objects, after) = committed(&data);
    assert_eq!(objects, FILES);
    assert_eq!(after, clean, "counts differ from the clean run");
}
