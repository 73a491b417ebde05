//! Alert outputs against real receivers on loopback: an HTTP server that fails on purpose, UDP and
//! TCP syslog listeners, files. Every test drives `ward_collector::outputs::start` with the same
//! flags `ward-collector serve` takes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use ward_collector::findings::{Finding, Severity};
use ward_collector::ingest::devcerts::DevCa;
use ward_collector::outputs::{self, ChangeKind, FindingChange, OutputArgs, Outputs, webhook};

fn finding(id: &str, count: u64, archived: bool) -> Finding {
    let mut f = Finding {
        schema_version: "2.0".into(),
        id: id.into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        finding_type_name: "Execution:Runtime/ReverseShell".into(),
        severity: Severity(8.0),
        title: format!("Reverse shell {id}"),
        updated_at: format!("2026-11-29T10:00:{:02}.000Z", count % 60),
        ..Finding::default()
    };
    f.service.count = count;
    f.service.archived = archived;
    f
}

fn change(kind: ChangeKind, id: &str, count: u64, archived: bool) -> FindingChange {
    FindingChange::new(kind, finding(id, count, archived))
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("ward-outputs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(args: &[&str], dir: &Path) -> Outputs {
    let args = OutputArgs::parse_from(args).unwrap();
    outputs::start(&args, dir).unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 receiver whose answers are scripted: the n-th request gets the n-th behaviour
// (the last one repeats).

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Read the request, then close the connection without a response.
    Drop,
}

#[derive(Debug, Clone)]
struct Request {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(script: Vec<Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                let script = script.clone();
                std::thread::spawn(move || serve_connection(stream, &script, &seen));
            }
        });
        Receiver { url, requests }
    }

    /// The same receiver over HTTPS with a certificate for 127.0.0.1 from `ca`.
    fn start_tls(script: Vec<Answer>, ca: &DevCa) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let server = ca.server(&["127.0.0.1"]).unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(server.cert.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                let script = script.clone();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                std::thread::spawn(move || {
                    serve_connection(rustls::StreamOwned::new(conn, stream), &script, &seen)
                });
            }
        });
        Receiver { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_connection<S: Read + Write>(stream: S, script: &[Answer], seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(
            line.starts_with("POST /hook HTTP/1.1"),
            "request line {line:?}"
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        let len: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let n = {
            let mut seen = seen.lock().unwrap();
            seen.push(Request { headers, body });
            seen.len()
        };
        match script[(n - 1).min(script.len() - 1)] {
            Answer::Drop => return,
            Answer::Status(code) => {
                let text = format!("status {code}");
                let response = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
                    text.len()
                );
                let stream = reader.get_mut();
                if stream
                    .write_all(response.as_bytes())
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

const FAST_RETRY: [&str; 6] = [
    "--output-retry-delay",
    "20ms",
    "--output-retry-max-delay",
    "100ms",
    "--output-update-interval",
    "0",
];

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn webhook_retries_through_500s_and_a_dropped_connection_then_delivers_signed() {
    let dir = Dir::new("webhook-retry");
    let receiver = Receiver::start(vec![
        Answer::Status(500),
        Answer::Status(503),
        Answer::Drop,
        Answer::Status(204),
    ]);
    let secret = dir.0.join("secret");
    std::fs::write(&secret, "correct horse battery staple\n").unwrap();
    let mut args = vec!["--output", &receiver.url, "--webhook-secret-file"];
    let spec = format!("webhook:{}", receiver.url);
    args[1] = &spec;
    args.push(secret.to_str().unwrap());
    args.extend(FAST_RETRY);
    let outputs = start(&args, &dir.0);
    outputs.publish(change(ChangeKind::Created, "f1", 1, false));
    wait_until("four requests", Duration::from_secs(10), || {
        receiver.requests().len() >= 4
    });
    let stats = outputs.shutdown(Duration::from_secs(5));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "no request after the delivery");
    let delivered = &requests[3];
    let body: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(body["id"], "f1");
    assert_eq!(body["service"]["count"], 1);
    assert_eq!(delivered.headers["content-type"], "application/json");
    let ts = &delivered.headers["x-ward-timestamp"];
    let sig = &delivered.headers["x-ward-signature"];
    assert!(
        webhook::verify(
            b"correct horse battery staple",
            ts,
            &delivered.body,
            sig,
            now_secs(),
            Duration::from_secs(300)
        ),
        "signature {sig} over {ts}"
    );
    assert!(!webhook::verify(
        b"wrong",
        ts,
        &delivered.body,
        sig,
        now_secs(),
        Duration::from_secs(300)
    ));
    let ids: Vec<&String> = requests
        .iter()
        .map(|r| &r.headers["x-ward-delivery"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id across retries: {ids:?}"
    );
    let (name, s) = &stats[0];
    assert_eq!(name, &spec);
    assert_eq!(
        (s.sent, s.retried, s.dead_lettered, s.dropped),
        (1, 3, 0, 0)
    );
    assert!(!dir.0.join("outputs-dead-letter.jsonl").exists());
}

#[test]
fn webhook_that_never_recovers_leaves_the_finding_in_the_dead_letter_file() {
    let dir = Dir::new("webhook-dead");
    let receiver = Receiver::start(vec![Answer::Status(503)]);
    let spec = format!("webhook:{}", receiver.url);
    let mut args = vec!["--output", &spec, "--output-max-attempts", "3"];
    args.extend(FAST_RETRY);
    let outputs = start(&args, &dir.0);
    outputs.publish(change(ChangeKind::Created, "lost-1", 1, false));
    let dead = dir.0.join("outputs-dead-letter.jsonl");
    wait_until("a dead letter", Duration::from_secs(10), || {
        !json_lines(&dead).is_empty()
    });
    let stats = outputs.shutdown(Duration::from_secs(5));
    assert_eq!(receiver.requests().len(), 3, "max attempts");
    let lines = json_lines(&dead);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["finding"]["id"], "lost-1");
    assert_eq!(lines[0]["attempts"], 3);
    assert_eq!(lines[0]["output"], spec.as_str());
    let error = lines[0]["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 503") && error.contains("status 503"),
        "{error}"
    );
    let s = stats[0].1;
    assert_eq!((s.sent, s.retried, s.dead_lettered), (0, 2, 1));
}

#[test]
fn webhook_refusal_is_dead_lettered_without_retrying() {
    let dir = Dir::new("webhook-400");
    let receiver = Receiver::start(vec![Answer::Status(400)]);
    let spec = format!("webhook:{}", receiver.url);
    let dead = dir.0.join("custom").join("dead.jsonl");
    let mut args = vec![
        "--output",
        &spec,
        "--output-dead-letter",
        dead.to_str().unwrap(),
    ];
    args.extend(FAST_RETRY);
    let outputs = start(&args, &dir.0);
    outputs.publish(change(ChangeKind::Created, "bad", 1, false));
    wait_until("a dead letter", Duration::from_secs(10), || {
        !json_lines(&dead).is_empty()
    });
    let stats = outputs.shutdown(Duration::from_secs(5));
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(json_lines(&dead)[0]["attempts"], 1);
    assert_eq!((stats[0].1.retried, stats[0].1.dead_lettered), (0, 1));
}

#[test]
fn connection_refused_is_retried_and_dead_lettered_at_shutdown_with_the_reason() {
    let dir = Dir::new("webhook-refused");
    // A port nothing listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("webhook:http://127.0.0.1:{port}/hook");
    let outputs = start(
        &[
            "--output",
            &spec,
            "--output-retry-delay",
            "10s",
            "--output-retry-max-delay",
            "10s",
        ],
        &dir.0,
    );
    outputs.publish(change(ChangeKind::Created, "r1", 1, false));
    std::thread::sleep(Duration::from_millis(300));
    // The worker is in a 5-10 s backoff; shutdown's grace cuts it short and dead-letters.
    let started = Instant::now();
    let stats = outputs.shutdown(Duration::from_millis(200));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    let lines = json_lines(&dir.0.join("outputs-dead-letter.jsonl"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["finding"]["id"], "r1");
    let error = lines[0]["error"].as_str().unwrap();
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert_eq!(stats[0].1.dead_lettered, 1);
}

#[test]
fn archived_findings_never_go_out() {
    let dir = Dir::new("archived");
    let file = dir.0.join("findings.jsonl");
    let receiver = Receiver::start(vec![Answer::Status(200)]);
    let hook = format!("webhook:{}", receiver.url);
    let file_spec = format!("file:{}", file.display());
    let outputs = start(
        &[
            "--output",
            &file_spec,
            "--output",
            &hook,
            "--output-update-interval",
            "1s",
        ],
        &dir.0,
    );
    // Suppressed at creation: never sent. Active, then archived while its update waits: only the
    // first state goes out. Unarchived later: goes out again.
    outputs.publish(change(ChangeKind::Created, "suppressed", 1, true));
    outputs.publish(change(ChangeKind::Updated, "suppressed", 2, true));
    outputs.publish(change(ChangeKind::Created, "active", 1, false));
    outputs.publish(change(ChangeKind::Updated, "active", 2, false));
    outputs.publish(change(ChangeKind::Updated, "active", 3, true));
    std::thread::sleep(Duration::from_millis(1500));
    outputs.publish(change(ChangeKind::Updated, "suppressed", 3, false));
    let stats = outputs.shutdown(Duration::from_secs(5));
    let sent: Vec<(String, u64)> = json_lines(&file)
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["service"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [("active".to_owned(), 1), ("suppressed".to_owned(), 3)]
    );
    assert!(
        json_lines(&file)
            .iter()
            .all(|f| f["service"]["archived"] == false)
    );
    let posted: Vec<Value> = receiver
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 2);
    assert!(posted.iter().all(|f| f["service"]["archived"] == false));
    for (_, s) in &stats {
        assert_eq!((s.sent, s.archived_skipped), (2, 3));
    }
}

#[test]
fn new_findings_go_out_within_a_second_and_updates_are_rate_limited() {
    let dir = Dir::new("ratelimit");
    let file = dir.0.join("findings.jsonl");
    let spec = format!("file:{}", file.display());
    let outputs = start(
        &["--output", &spec, "--output-update-interval", "2s"],
        &dir.0,
    );
    let t0 = Instant::now();
    outputs.publish(change(ChangeKind::Created, "a", 1, false));
    wait_until("the new finding", Duration::from_secs(1), || {
        json_lines(&file).len() == 1
    });
    let first_latency = t0.elapsed();
    for count in 2..=5 {
        outputs.publish(change(ChangeKind::Updated, "a", count, false));
    }
    // Another finding is not held by a's window.
    outputs.publish(change(ChangeKind::Created, "b", 1, false));
    wait_until("b", Duration::from_secs(1), || json_lines(&file).len() == 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        json_lines(&file).len(),
        2,
        "a's updates wait for the window"
    );
    wait_until("a's update", Duration::from_secs(5), || {
        json_lines(&file).len() == 3
    });
    let update_after = t0.elapsed();
    let lines = json_lines(&file);
    assert_eq!(lines[2]["id"], "a");
    assert_eq!(
        lines[2]["service"]["count"], 5,
        "the latest state when the window opens"
    );
    assert!(
        update_after >= Duration::from_millis(1900),
        "update sent after {update_after:?}, window 2 s"
    );
    let stats = outputs.shutdown(Duration::from_secs(5));
    assert_eq!(
        json_lines(&file).len(),
        3,
        "nothing else pending at shutdown"
    );
    assert_eq!((stats[0].1.sent, stats[0].1.coalesced), (3, 3));
    eprintln!("new finding written after {first_latency:?}");
}

#[test]
fn updates_waiting_for_their_window_are_sent_at_shutdown() {
    let dir = Dir::new("shutdown-flush");
    let file = dir.0.join("f.jsonl");
    let spec = format!("file:{}", file.display());
    let outputs = start(&["--output", &spec], &dir.0);
    outputs.publish(change(ChangeKind::Created, "a", 1, false));
    outputs.publish(change(ChangeKind::Updated, "a", 2, false));
    outputs.shutdown(Duration::from_secs(5));
    let counts: Vec<u64> = json_lines(&file)
        .iter()
        .map(|f| f["service"]["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2]);
}

#[test]
fn eventbridge_envelope_wraps_the_finding_for_guardduty_consumers() {
    let dir = Dir::new("eventbridge");
    let file = dir.0.join("events.jsonl");
    let spec = format!("file+eventbridge:{}", file.display());
    let plain = dir.0.join("plain.jsonl");
    let plain_spec = format!("file:{}", plain.display());
    let receiver = Receiver::start(vec![Answer::Status(200)]);
    let outputs = start(
        &[
            "--output",
            &spec,
            "--output",
            &plain_spec,
            "--output",
            &format!("webhook:{}", receiver.url),
            "--output-format",
            "eventbridge",
        ],
        &dir.0,
    );
    outputs.publish(change(ChangeKind::Created, "e1", 4, false));
    outputs.shutdown(Duration::from_secs(5));
    let events = json_lines(&file);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["version"], "0");
    assert_eq!(e["detail-type"], "GuardDuty Finding");
    assert_eq!(e["source"], "aws.guardduty");
    assert_eq!(e["account"], "111122223333");
    assert_eq!(e["region"], "us-east-1");
    assert_eq!(e["time"], "2026-11-29T10:00:04Z");
    assert_eq!(e["resources"], serde_json::json!([]));
    assert_eq!(e["detail"]["id"], "e1");
    assert_eq!(e["detail"]["type"], "Execution:Runtime/ReverseShell");
    let id = e["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4);
    // file: without +FORMAT takes --output-format; the webhook too.
    assert_eq!(json_lines(&plain)[0]["detail-type"], "GuardDuty Finding");
    let posted: Value = serde_json::from_slice(&receiver.requests()[0].body).unwrap();
    assert_eq!(posted["detail"]["id"], "e1");
    assert_eq!(receiver.requests()[0].headers["x-ward-delivery"], id);
}

#[test]
fn a_stalled_output_never_blocks_publishing() {
    let dir = Dir::new("stalled");
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("webhook:http://{}/hook", listener.local_addr().unwrap());
    let file = dir.0.join("f.jsonl");
    let file_spec = format!("file:{}", file.display());
    let outputs = start(
        &[
            "--output",
            &spec,
            "--output",
            &file_spec,
            "--output-queue",
            "4",
            "--webhook-timeout",
            "2s",
            "--output-max-attempts",
            "1",
        ],
        &dir.0,
    );
    let started = Instant::now();
    for i in 0..2000 {
        outputs.publish(change(ChangeKind::Created, &format!("f{i}"), 1, false));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "publishing 2000 changes took {took:?}"
    );
    let stats = outputs.stats();
    assert!(
        stats[0].1.dropped >= 1990,
        "webhook dropped {}",
        stats[0].1.dropped
    );
    // Shutdown with a receiver that still never answers: the send in flight ends at its timeout,
    // everything still queued goes to the dead-letter file without being tried.
    let started = Instant::now();
    let stats = outputs.shutdown(Duration::from_millis(300));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    drop(listener);
    let hook = stats[0].1;
    assert_eq!(hook.sent, 0);
    assert_eq!(
        hook.dead_lettered + hook.dropped,
        2000,
        "every change accounted for: {hook:?}"
    );
    let dead = json_lines(&dir.0.join("outputs-dead-letter.jsonl"));
    assert_eq!(dead.len() as u64, hook.dead_lettered);
    // The file output kept up independently of the stalled webhook (its own queue and thread).
    let written = json_lines(&file).len() as u64;
    assert_eq!(written, stats[1].1.sent);
    assert_eq!(written + stats[1].1.dropped, 2000);
}

#[test]
fn https_webhook_trusts_the_given_ca_and_refuses_an_unknown_issuer() {
    let dir = Dir::new("webhook-tls");
    let ca = DevCa::new("ward test CA").unwrap();
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem.cert).unwrap();
    let receiver = Receiver::start_tls(vec![Answer::Status(200)], &ca);
    let spec = format!("webhook:{}", receiver.url);
    let mut args = vec!["--output", &spec, "--webhook-ca", ca_file.to_str().unwrap()];
    args.extend(FAST_RETRY);
    let outputs = start(&args, &dir.0);
    outputs.publish(change(ChangeKind::Created, "tls1", 1, false));
    let stats = outputs.shutdown(Duration::from_secs(10));
    assert_eq!(stats[0].1.sent, 1, "{stats:?}");
    let body: Value = serde_json::from_slice(&receiver.requests()[0].body).unwrap();
    assert_eq!(body["id"], "tls1");

    // Without --webhook-ca the test CA is not trusted: nothing reaches the receiver.
    let mut args = vec!["--output", &spec, "--output-max-attempts", "2"];
    args.extend(FAST_RETRY);
    let outputs = start(&args, &dir.0);
    outputs.publish(change(ChangeKind::Created, "tls2", 1, false));
    let stats = outputs.shutdown(Duration::from_secs(10));
    assert_eq!((stats[0].1.sent, stats[0].1.dead_lettered), (0, 1));
    assert_eq!(receiver.requests().len(), 1);
    let dead = json_lines(&dir.0.join("outputs-dead-letter.jsonl"));
    let error = dead[0]["error"].as_str().unwrap();
    assert!(
        error.to_ascii_lowercase().contains("certificate") || error.contains("Issuer"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// Syslog

/// An RFC 5424 message split into its parts.
#[derive(Debug)]
struct SyslogMessage {
    pri: u16,
    version: String,
    timestamp: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd_id: String,
    params: HashMap<String, String>,
    msg: String,
}

fn parse_syslog(text: &str) -> SyslogMessage {
    let rest = text.strip_prefix('<').expect("PRI");
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut fields = rest.splitn(7, ' ');
    let mut next = || fields.next().unwrap().to_owned();
    let (version, timestamp, hostname, app, procid, msgid) =
        (next(), next(), next(), next(), next(), next());
    let sd = next();
    let sd = sd.strip_prefix('[').expect("one SD element");
    let (sd_id, mut rest) = sd.split_once(' ').unwrap();
    let mut params = HashMap::new();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            rest = after.strip_prefix(' ').expect("SP before MSG");
            break;
        }
        let (name, after) = rest.trim_start().split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("closing quote");
            match c {
                '\\' => value.push(chars.next().unwrap().1),
                '"' => break i + 1,
                c => value.push(c),
            }
        };
        params.insert(name.to_owned(), value);
        rest = &after[end..];
    }
    SyslogMessage {
        pri: pri.parse().unwrap(),
        version,
        timestamp,
        hostname,
        app,
        procid,
        msgid,
        sd_id: sd_id.to_owned(),
        params,
        msg: rest.to_owned(),
    }
}

fn check_message(m: &SyslogMessage, id: &str, count: u64) {
    assert_eq!(m.pri, 16 * 8 + 3, "local0, High -> err");
    assert_eq!(m.version, "1");
    assert!(
        ward_collector::findings::time::parse_millis(&m.timestamp).is_some(),
        "{}",
        m.timestamp
    );
    assert!(!m.hostname.is_empty() && !m.hostname.contains(' '));
    assert_eq!(m.app, "ward");
    assert_eq!(m.procid, std::process::id().to_string());
    assert_eq!(m.msgid, "finding");
    assert_eq!(m.sd_id, "ward@32473");
    assert_eq!(m.params["id"], id);
    assert_eq!(m.params["type"], "Execution:Runtime/ReverseShell");
    assert_eq!(m.params["severity"], "8");
    assert_eq!(m.params["severityLabel"], "High");
    assert_eq!(m.params["count"], count.to_string());
    assert_eq!(m.params["accountId"], "111122223333");
}

#[test]
fn syslog_over_udp_parses_back_as_rfc_5424() {
    let dir = Dir::new("syslog-udp");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let spec = format!("syslog:udp://{}", socket.local_addr().unwrap());
    let outputs = start(&["--output", &spec], &dir.0);
    outputs.publish(change(ChangeKind::Created, "u1", 1, false));
    let mut buf = vec![0u8; 65_536];
    let n = socket.recv(&mut buf).unwrap();
    let m = parse_syslog(std::str::from_utf8(&buf[..n]).unwrap());
    check_message(&m, "u1", 1);
    let msg: Value = serde_json::from_str(&m.msg).unwrap();
    assert_eq!(msg["id"], "u1");
    assert_eq!(msg["title"], "Reverse shell u1");
    outputs.shutdown(Duration::from_secs(5));
}

#[test]
fn syslog_over_tcp_is_octet_counted_and_reconnects() {
    let dir = Dir::new("syslog-tcp");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("syslog:tcp://{}", listener.local_addr().unwrap());
    let outputs = start(
        &[
            "--output",
            &spec,
            "--syslog-msg",
            "title",
            "--syslog-facility",
            "auth",
        ],
        &dir.0,
    );
    fn read_frame(r: &mut BufReader<TcpStream>) -> String {
        let mut len = Vec::new();
        r.read_until(b' ', &mut len).unwrap();
        let len: usize = std::str::from_utf8(&len)
            .unwrap()
            .trim_end()
            .parse()
            .unwrap();
        let mut msg = vec![0; len];
        r.read_exact(&mut msg).unwrap();
        String::from_utf8(msg).unwrap()
    }
    outputs.publish(change(ChangeKind::Created, "t1", 1, false));
    outputs.publish(change(ChangeKind::Created, "t2", 1, false));
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn);
    for id in ["t1", "t2"] {
        let m = parse_syslog(&read_frame(&mut reader));
        assert_eq!(m.pri, 4 * 8 + 3, "auth, High -> err");
        assert_eq!(m.params["id"], id);
        assert_eq!(m.msg, format!("Reverse shell {id}"));
    }
    // The receiver restarts: the next finding arrives on a new connection, not lost in the old one.
    drop(reader);
    std::thread::sleep(Duration::from_millis(100));
    outputs.publish(change(ChangeKind::Created, "t3", 1, false));
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn);
    let m = parse_syslog(&read_frame(&mut reader));
    check_message(
        &SyslogMessage {
            pri: 16 * 8 + 3,
            ..m
        },
        "t3",
        1,
    );
    let stats = outputs.shutdown(Duration::from_secs(5));
    assert_eq!((stats[0].1.sent, stats[0].1.dead_lettered), (3, 0));
}

#[test]
fn bad_output_configuration_is_refused_at_start_with_the_flag_named() {
    let dir = Dir::new("badconfig");
    let err = OutputArgs::parse_from(["--output", "webhook:ftp://x"]).unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
    let args = OutputArgs::parse_from([
        "--output",
        "webhook:https://127.0.0.1:1/x",
        "--webhook-secret-file",
        "/nonexistent/secret",
    ])
    .unwrap();
    let err = outputs::start(&args, &dir.0).err().unwrap();
    assert!(
        format!("{err:#}").contains("--webhook-secret-file /nonexistent/secret"),
        "{err:#}"
    );
    let args = OutputArgs::parse_from(["--output", "file:/nonexistent/dir/f.jsonl"]).unwrap();
    let err = outputs::start(&args, &dir.0).err().unwrap();
    assert!(
        format!("{err:#}").contains("file:/nonexistent/dir/f.jsonl"),
        "{err:#}"
    );
}
