//! The query API's writes take effect in the running `ward-collector serve`, without a restart:
//! agent batches stream in over mTLS (the agent's transport, no eBPF) and VPC Flow Log files are
//! dropped into a watched directory, while lists, suppression rules and archive states change
//! through the HTTP API (docs/api.md).
//!
//! * A threat list added through the API turns later agent events (a listed executable hash) and
//!   later flow records (a listed address) into findings; deleting it stops that.
//! * Archive and unarchive through the API reach the outputs as GuardDuty exports: neither is
//!   sent, the finding's next occurrence is; the change stream shows both.
//! * A suppression rule added through the API archives later matching findings and keeps them out
//!   of the outputs; so does a rule of a `--suppression` file (installed into the store at start),
//!   on every occurrence, not only the first.
//! * `/metrics` counts what the outputs did (a loopback webhook that fails its first request:
//!   one retry) and what the pipelines processed.

#[path = "transport_common.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use ward_agent::output::Sink;
use ward_proto::v1 as pb;

/// The executable hash of `common::event`'s process.
const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// A public address the flow records reach (TEST-NET-3: no traffic is ever sent there).
const LISTED_IP: &str = "203.0.113.66";
const FILE_TYPE: &str = "Execution:Runtime/MaliciousFileExecuted.Custom";
const FLOW_TYPE: &str = "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom";
const MINER_TYPE: &str = "Impact:Runtime/CryptoMinerExecuted";

/// One HTTP/1.1 request to the API (loopback, no token: the API is open on loopback).
fn call(api: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: ward\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn call_ok(api: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (status, text) = call(api, method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Every stored finding of `kind` (archived ones included).
fn findings(api: SocketAddr, kind: &str) -> Vec<Value> {
    let page = call_ok(
        api,
        "POST",
        "/v1/findings/list",
        Some(&json!({"findingCriteria": {"criterion": {"type": {"equals": [kind]}}}})),
    );
    page["findings"].as_array().cloned().unwrap_or_default()
}

fn count(f: &Value) -> u64 {
    f["service"]["count"].as_u64().unwrap()
}

/// One unlabelled sample of `/metrics`.
fn metric(api: SocketAddr, name: &str) -> u64 {
    let (status, text) = call(api, "GET", "/metrics", None);
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Every `name{output="..."} n` sample of `/metrics`, by output.
fn output_metric(api: SocketAddr, name: &str) -> Vec<(String, u64)> {
    let (_, text) = call(api, "GET", "/metrics", None);
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix("{output=\"")?;
            let (output, value) = rest.split_once("\"} ")?;
            Some((output.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn output_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sent_of(path: &Path, kind: &str) -> Vec<Value> {
    output_lines(path)
        .into_iter()
        .filter(|f| f["type"] == kind)
        .collect()
}

/// A loopback webhook receiver that answers 500 to its first request, then 200.
struct Hook {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let status = if i == 0 {
                    "500 Internal Server Error"
                } else {
                    seen.lock().unwrap().push(String::from_utf8(body).unwrap());
                    "200 OK"
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Hook { addr, bodies }
    }
}

fn exec_events(from: u64, n: u64) -> Vec<pb::Event> {
    (from..from + n)
        .map(|i| {
            let mut e = event(9, i);
            e.time_unix_nano = 1_767_000_000_000_000_000 + i * 1_000;
            e
        })
        .collect()
}

fn miner_events(from: u64, n: u64) -> Vec<pb::Event> {
    exec_events(from, n)
        .into_iter()
        .map(|mut e| {
            let p = e.process.as_mut().unwrap();
            p.name = "xmrig".into();
            p.executable = "/opt/pool/xmrig".into();
            p.sha256 = "ab".repeat(32);
            e
        })
        .collect()
}

/// Sends events through the agent transport and waits until the detection pipeline has run them
/// and committed their findings.
fn send(sink: &mut ward_agent::transport::TransportSink, api: SocketAddr, events: &[pb::Event]) {
    let before = metric(api, "ward_pipeline_events_total");
    for e in events {
        sink.push(e).unwrap();
    }
    sink.flush().unwrap();
    let want = before + events.len() as u64;
    wait_until(
        "the pipeline ran the events",
        Duration::from_secs(30),
        || metric(api, "ward_pipeline_events_total") >= want,
    );
}

/// Writes a VPC Flow Log file (v2 default format) of flows to `LISTED_IP` and waits until the
/// cloud-log source has handed its records to the detections.
fn drop_flows(dir: &Path, api: SocketAddr, name: &str, start: u64, n: u64) {
    let before = metric(api, "ward_cloud_records_total");
    let lines: String = (0..n)
        .map(|i| {
            // An hour apart: the flow detector reports a listed peer once per 10-minute window.
            let t = start + i * 3600;
            format!(
                "2 123456789012 eni-0ee 10.0.0.6 {LISTED_IP} 50000 8009 6 3 200 {t} {} REJECT OK\n",
                t + 30
            )
        })
        .collect();
    std::fs::write(dir.join(name), lines).unwrap();
    wait_until(
        "the flow records were read",
        Duration::from_secs(30),
        || metric(api, "ward_cloud_records_total") >= before + n,
    );
    // Records are counted as they are handed to the detections; the pass that read them ends
    // after their findings are stored.
    let passes = metric(api, "ward_cloud_passes_total");
    wait_until("the pass ended", Duration::from_secs(30), || {
        metric(api, "ward_cloud_passes_total") > passes
    });
}

/// `wardctl tail --json --suppressed`, its lines collected.
fn tail(api: SocketAddr) -> (std::process::Child, Receiver<Value>) {
    let mut child = Command::new(ward_tests::workspace_bin("wardctl"))
        .args([
            "--server",
            &format!("http://{api}"),
            "--json",
            "tail",
            "--suppressed",
        ])
        .env_remove("WARD_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap());
        }
    });
    // The stream carries changes committed after it opened: give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    (child, rx)
}

/// The next change line of `kind` about `id` (others are skipped).
fn next_change(rx: &Receiver<Value>, kind: &str, id: &str) -> Value {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no {kind:?} change of {id} on the stream"));
        if line["change"] == kind && line["finding"]["id"] == id {
            return line;
        }
    }
}

#[test]
fn api_changes_take_effect_in_the_running_serve() {
    let pki = Pki::generate();
    let dir = TempDir::new("serve-live-api");
    pki.write_server_files(dir.path());
    let data = dir.path().join("data");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let out = dir.path().join("findings.jsonl");
    let hook = Hook::start();
    let api = free_port();
    let file_output = format!("file:{}", out.display());
    let hook_output = format!("webhook:http://{}/hook", hook.addr);
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        json!([{"Name": "file-flows", "Action": "ARCHIVE", "Rank": 2,
                "FindingCriteria": {"Criterion": {"type": {"Eq": [FLOW_TYPE]}}}}])
        .to_string(),
    )
    .unwrap();
    let collector = CollectorProcess::start_with(
        dir.path(),
        &data,
        free_port(),
        &[
            "--api-listen",
            &api.to_string(),
            "--output",
            &file_output,
            "--output",
            &hook_output,
            // Every active change goes out at once: what is not sent is held back by the rules.
            "--output-update-interval",
            "0",
            "--output-retry-delay",
            "50ms",
            "--vpc-flow",
            flows.to_str().unwrap(),
            "--cloud-poll-secs",
            "0.2",
            "--suppression",
            rules.to_str().unwrap(),
        ],
    );
    wait_until("the query API", Duration::from_secs(20), || {
        TcpStream::connect(api).is_ok()
    });
    let mut cfg = agent_config(
        collector.addr,
        pki.client_tls("agent-live"),
        "agent-live",
        &dir.path().join("spool"),
    );
    cfg.max_batch_delay = Duration::from_millis(20);
    let (mut sink, handle) = start_agent(cfg);
    let (mut tail, changes) = tail(api);

    // No list yet: the hash and the address are nobody's concern.
    send(&mut sink, api, &exec_events(0, 5));
    drop_flows(&flows, api, "flows-1.log", 1_767_000_000, 2);
    assert!(findings(api, FILE_TYPE).is_empty());
    assert!(findings(api, FLOW_TYPE).is_empty());

    // A threat list through the API: later events and records raise findings.
    let saved = call_ok(
        api,
        "POST",
        "/v1/lists",
        Some(
            &json!({"name": "corp", "role": "THREAT", "kind": "ENTITY", "format": "TXT",
                     "content": format!("{HASH}\n{LISTED_IP}\n")}),
        ),
    );
    assert_eq!(saved["entries"], 2);
    send(&mut sink, api, &exec_events(100, 5));
    let file = findings(api, FILE_TYPE);
    assert_eq!(file.len(), 1, "{file:#?}");
    let listed = count(&file[0]);
    assert_eq!(
        listed, 5,
        "one occurrence per event after the list, none before"
    );
    assert_eq!(
        file[0]["service"]["additionalInfo"]["threatListName"], "corp",
        "{:#}",
        file[0]
    );
    let id = file[0]["id"].as_str().unwrap().to_owned();
    drop_flows(&flows, api, "flows-2.log", 1_767_001_000, 3);
    let flow = findings(api, FLOW_TYPE);
    assert_eq!(flow.len(), 1, "{flow:#?}");
    let flows_seen = count(&flow[0]);
    assert!(flows_seen > 1, "several occurrences: {:#}", flow[0]);
    assert_eq!(
        flow[0]["service"]["archived"], true,
        "the file's rule archives every occurrence"
    );
    let listed_rules = call_ok(api, "GET", "/v1/suppression-rules", None);
    assert_eq!(listed_rules["rules"][0]["name"], "file-flows");
    assert_eq!(
        next_change(&changes, "created", &id)["finding"]["type"],
        FILE_TYPE
    );
    wait_until("the finding went out", Duration::from_secs(20), || {
        sent_of(&out, FILE_TYPE)
            .last()
            .is_some_and(|f| count(f) == listed)
    });
    let sent_before = sent_of(&out, FILE_TYPE).len();

    // Archive through the API: not sent (GuardDuty exports active findings only), on the stream.
    let archived = call_ok(
        api,
        "POST",
        "/v1/findings/archive",
        Some(&json!({"findingIds": [id]})),
    );
    assert_eq!(archived["changed"], json!([id]));
    assert_eq!(
        next_change(&changes, "archived", &id)["finding"]["service"]["archived"],
        true
    );
    call_ok(
        api,
        "POST",
        "/v1/findings/unarchive",
        Some(&json!({"findingIds": [id]})),
    );
    assert_eq!(
        next_change(&changes, "unarchived", &id)["finding"]["service"]["archived"],
        false
    );
    // Archived again: its next occurrence lifts a user's archive (GuardDuty's rule) and goes out.
    call_ok(
        api,
        "POST",
        "/v1/findings/archive",
        Some(&json!({"findingIds": [id]})),
    );
    next_change(&changes, "archived", &id);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sent_of(&out, FILE_TYPE).len(),
        sent_before,
        "neither an archive nor an unarchive is exported"
    );
    send(&mut sink, api, &exec_events(200, 2));
    let updated = next_change(&changes, "updated", &id);
    assert_eq!(updated["finding"]["service"]["archived"], false);
    assert_eq!(count(&updated["finding"]), listed + 2);
    wait_until(
        "the next occurrence went out",
        Duration::from_secs(20),
        || {
            sent_of(&out, FILE_TYPE)
                .last()
                .is_some_and(|f| count(f) == listed + 2 && f["service"]["archived"] == false)
        },
    );

    // The list deleted through the API: later events and records raise nothing more.
    let (status, _) = call(api, "DELETE", "/v1/lists/corp", None);
    assert_eq!(status, 204);
    send(&mut sink, api, &exec_events(300, 5));
    drop_flows(&flows, api, "flows-3.log", 1_767_002_000, 3);
    assert_eq!(count(&findings(api, FILE_TYPE)[0]), listed + 2);
    assert_eq!(count(&findings(api, FLOW_TYPE)[0]), flows_seen);

    // A suppression rule through the API archives later matching findings; they are stored, on
    // the stream with the rule's name, and never sent.
    let (status, text) = call(
        api,
        "POST",
        "/v1/suppression-rules",
        Some(
            &json!({"name": "lab-miners", "action": "ARCHIVE", "rank": 1,
                     "findingCriteria": {"criterion": {"type": {"equals": [MINER_TYPE]}}}}),
        ),
    );
    assert_eq!(status, 201, "{text}");
    send(&mut sink, api, &miner_events(400, 4));
    let miner = findings(api, MINER_TYPE);
    assert_eq!(miner.len(), 1, "{miner:#?}");
    assert_eq!(miner[0]["service"]["archived"], true);
    assert_eq!(count(&miner[0]), 4);
    let miner_id = miner[0]["id"].as_str().unwrap();
    assert_eq!(
        next_change(&changes, "created", miner_id)["suppressedBy"],
        "lab-miners"
    );
    let active = call_ok(
        api,
        "POST",
        "/v1/findings/list",
        Some(
            &json!({"findingCriteria": {"criterion": {"service.archived": {"equals": ["false"]},
                                                        "type": {"equals": [MINER_TYPE]}}}}),
        ),
    );
    assert_eq!(active["findings"], json!([]));

    // Outputs on /metrics: every active state went out to both outputs; the webhook's first
    // refusal was retried; archived changes were skipped, not queued forever.
    std::thread::sleep(Duration::from_millis(500));
    assert!(sent_of(&out, MINER_TYPE).is_empty(), "suppressed: not sent");
    assert!(sent_of(&out, FLOW_TYPE).is_empty(), "suppressed: not sent");
    let lines = output_lines(&out).len() as u64;
    wait_until("the webhook caught up", Duration::from_secs(20), || {
        hook.bodies.lock().unwrap().len() as u64 == lines
    });
    let sent = output_metric(api, "ward_output_sent_total");
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (name, n) in &sent {
        assert_eq!(*n, lines, "{name}");
    }
    let retried: u64 = output_metric(api, "ward_output_retried_total")
        .iter()
        .filter(|(name, _)| name.starts_with("webhook:"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(retried, 1);
    assert!(
        output_metric(api, "ward_output_archived_skipped_total")
            .iter()
            .all(|(_, n)| *n >= 2),
        "the archives and the suppressed miner were skipped"
    );
    assert!(
        output_metric(api, "ward_output_queued")
            .iter()
            .all(|(_, n)| *n == 0)
    );
    assert_eq!(
        output_metric(api, "ward_output_dead_lettered_total")
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>(),
        0
    );
    assert_eq!(metric(api, "ward_pipeline_events_total"), 21);
    assert_eq!(metric(api, "ward_cloud_records_total"), 8);
    assert_eq!(metric(api, "ward_pipeline_malformed_total"), 0);

    let _ = tail.kill();
    let _ = tail.wait();
    drop(sink);
    handle.join().expect("transport drains");
    collector.stop();
}
