//! S3 and SQS sources against a real S3/SQS-compatible server (moto in server mode, started by
//! each test on 127.0.0.1): list and read a prefix, SQS-driven ingestion, restart from the
//! checkpoint, a malformed object among good ones, and the server going away.
//!
//! moto comes from `.ci/deps.d/collector-logs.sh`. Without it these tests skip with a message,
//! except under CI (`CI=true`), where a missing moto is a failure.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_collector::event::{Event, SourceKind};
use ward_collector::logs::checkpoint::Checkpoint;
use ward_collector::logs::s3::sqs::{SqsClient, SqsSource};
use ward_collector::logs::s3::{AwsConfig, Credentials, Retry, S3Location, S3Source, SourceError};
use ward_collector::logs::scan::read_file;
use ward_collector::logs::{Problem, ReadOptions, Sink};

const ACCOUNT: &str = "123456789012";

// ---------------------------------------------------------------- moto server

struct Moto {
    child: Child,
    port: u16,
    agent: ureq::Agent,
}

fn python() -> String {
    std::env::var("WARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// True if moto's server can be started here; otherwise skips (or, under CI, fails).
fn moto_available(test: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", "import moto.server, flask"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{test}: moto[server] is not installed (CI=true): run .ci/deps.d/collector-logs.sh"
            );
        }
        eprintln!("SKIPPED {test}: moto[server] not installed (run .ci/deps.d/collector-logs.sh)");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    fn start() -> Moto {
        Moto::start_on(free_port())
    }

    fn start_on(port: u16) -> Moto {
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut m = Moto { child, port, agent };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("moto exited early: {status}");
            }
            assert!(Instant::now() < deadline, "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// moto routes a request to a service by the credential scope of its Authorization header;
    /// it does not check signatures, so setup calls carry a placeholder one.
    fn auth(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        )
    }

    fn s3_put(&self, path: &str, body: &[u8]) {
        let resp = self
            .agent
            .put(format!("{}{path}", self.url()))
            .header("authorization", Moto::auth("s3"))
            .header("content-type", "application/octet-stream")
            .send(body)
            .unwrap();
        assert!(resp.status().is_success(), "PUT {path}: {}", resp.status());
    }

    fn bucket(&self, name: &str) {
        self.s3_put(&format!("/{name}"), b"");
    }

    fn object(&self, bucket: &str, key: &str, body: &[u8]) {
        let path = ward_collector::logs::s3::sigv4::uri_encode(key, true);
        self.s3_put(&format!("/{bucket}/{path}"), body);
    }

    fn sqs(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let mut resp = self
            .agent
            .post(format!("{}/", self.url()))
            .header("authorization", Moto::auth("sqs"))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .send(body.to_string())
            .unwrap();
        let text = resp.body_mut().read_to_string().unwrap();
        assert!(resp.status().is_success(), "{action}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    fn queue(&self, name: &str) -> String {
        let v = self.sqs("CreateQueue", serde_json::json!({"QueueName": name}));
        v["QueueUrl"].as_str().unwrap().to_owned()
    }

    /// Messages still on the queue, visible or in flight.
    fn queue_depth(&self, url: &str) -> u64 {
        let v = self.sqs(
            "GetQueueAttributes",
            serde_json::json!({"QueueUrl": url, "AttributeNames": ["All"]}),
        );
        let n = |k: &str| v["Attributes"][k].as_str().unwrap().parse::<u64>().unwrap();
        n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible")
    }

    fn send(&self, url: &str, body: &str) {
        self.sqs(
            "SendMessage",
            serde_json::json!({"QueueUrl": url, "MessageBody": body}),
        );
    }

    /// S3 sends ObjectCreated notifications for `bucket` to the queue.
    fn notify(&self, bucket: &str, queue: &str) {
        let xml = format!(
            "<NotificationConfiguration><QueueConfiguration><Id>logs</Id>\
             <Queue>arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}</Queue><Event>s3:ObjectCreated:*</Event>\
             </QueueConfiguration></NotificationConfiguration>"
        );
        let resp = self
            .agent
            .put(format!("{}/{bucket}?notification", self.url()))
            .header("authorization", Moto::auth("s3"))
            .header("content-type", "application/xml")
            .send(xml)
            .unwrap();
        assert!(resp.status().is_success());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(m: &Moto) -> AwsConfig {
    AwsConfig {
        region: "us-east-1".into(),
        credentials: Some(Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: Some("token".into()),
        }),
        s3_endpoint: None,
        sqs_endpoint: None,
        path_style: false,
        retry: Retry {
            attempts: 3,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
    }
    .with_s3_endpoint(&m.url())
    .unwrap()
}

// ---------------------------------------------------------------- corpus and sink

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel)
}

const CLOUDTRAIL: &str = "stratus-red-team/detonation-logs/aws.execution.ssm-send-command.json";
const FLOW: &str = "awsdocs/vpcflow/v2_default.log";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Records as `object-name-without-location:line[#index]`, plus problems.
#[derive(Default)]
struct Seen {
    events: Vec<String>,
    malformed: Vec<String>,
    skipped: Vec<String>,
}

impl Sink for Seen {
    fn event(&mut self, e: &Event<'_>) {
        let name = e.origin.object.rsplit('/').next().unwrap();
        self.events
            .push(format!("{name}:{}#{:?}", e.origin.line, e.origin.index));
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.malformed.push(p.to_string());
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.skipped.push(p.to_string());
    }
}

/// What the readers make of the local corpus file, named as `name`.
fn local_events(source: SourceKind, rel: &str, name: &str) -> Vec<String> {
    let mut seen = Seen::default();
    read_file(source, &corpus(rel), &ReadOptions::default(), &mut seen);
    let local = corpus(rel);
    let local_name = local.file_name().unwrap().to_str().unwrap();
    seen.events
        .iter()
        .map(|e| e.replacen(local_name, name, 1))
        .collect()
}

fn ct_key(day: u32, name: &str) -> String {
    format!("AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/01/{day:02}/{name}")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ward-s3-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(corpus(rel)).unwrap()
}

// ---------------------------------------------------------------- tests

#[test]
fn lists_and_reads_a_prefix() {
    if !moto_available("lists_and_reads_a_prefix") {
        return;
    }
    let m = Moto::start();
    m.bucket("trail");
    let ct = read(CLOUDTRAIL);
    m.object("trail", &ct_key(1, "a.json.gz"), &gzip(&ct));
    m.object("trail", &ct_key(2, "b.json"), &ct);
    m.object(
        "trail",
        &format!("AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/01/02/d.json.gz"),
        b"{}",
    );
    m.object(
        "trail",
        &format!("AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2024/01/02/f.log"),
        &read(FLOW),
    );
    m.object("trail", "elsewhere/c.json", &ct);

    let client = config(&m).s3_client();
    let mut src = S3Source::new(
        SourceKind::CloudTrail,
        S3Location::parse(&format!("s3://trail/AWSLogs/{ACCOUNT}/")).unwrap(),
        ReadOptions::default(),
        Arc::clone(&client),
    );
    src.page_size = 2; // several ListObjectsV2 pages
    let mut seen = Seen::default();
    let counts = src.poll(None, &mut seen).unwrap();

    let mut want = local_events(SourceKind::CloudTrail, CLOUDTRAIL, "a.json.gz");
    want.extend(local_events(SourceKind::CloudTrail, CLOUDTRAIL, "b.json"));
    assert_eq!(want.len(), 2 * 56, "corpus records");
    assert_eq!(
        seen.events, want,
        "same records, in key order, as the local reads"
    );
    assert_eq!(counts.objects, 2);
    assert_eq!(counts.records, want.len() as u64);
    assert_eq!(counts.bytes, 2 * ct.len() as u64, "bytes after gunzip");
    assert_eq!(
        counts.skipped, 2,
        "digest and flow-log objects: {:?}",
        seen.skipped
    );
    assert!(
        seen.skipped.iter().any(|s| s.contains("digest")),
        "{:?}",
        seen.skipped
    );
    assert!(seen.malformed.is_empty(), "{:?}", seen.malformed);

    // The flow-log prefix of the same bucket, through a second source sharing the client.
    let mut flow = S3Source::new(
        SourceKind::VpcFlow,
        S3Location::parse(&format!("s3://trail/AWSLogs/{ACCOUNT}/vpcflowlogs/")).unwrap(),
        ReadOptions::default(),
        client,
    );
    let mut seen = Seen::default();
    flow.poll(None, &mut seen).unwrap();
    assert_eq!(
        seen.events,
        local_events(SourceKind::VpcFlow, FLOW, "f.log")
    );
}

#[test]
fn restart_neither_rereads_nor_skips() {
    if !moto_available("restart_neither_rereads_nor_skips") {
        return;
    }
    let m = Moto::start();
    m.bucket("logs");
    let flow = read(FLOW);
    m.object("logs", "flows/1.log", &flow);
    m.object("logs", "flows/2.log.gz", &gzip(&flow));
    let dir = temp_dir("restart");
    let ckpt = dir.join("checkpoint.jsonl");
    let loc = S3Location::parse("s3://logs/flows/").unwrap();
    let opts = ReadOptions::default();
    let per_object = local_events(SourceKind::VpcFlow, FLOW, "x").len();

    let run = |checkpoint: &mut Checkpoint| {
        // A fresh source each time, as after a process restart.
        let mut src = S3Source::new(
            SourceKind::VpcFlow,
            loc.clone(),
            opts.clone(),
            config(&m).s3_client(),
        );
        let mut seen = Seen::default();
        src.poll(Some(checkpoint), &mut seen).unwrap();
        seen.events
    };
    let mut c = Checkpoint::open(&ckpt).unwrap();
    let first = run(&mut c);
    assert_eq!(first.len(), 2 * per_object);
    drop(c);

    m.object("logs", "flows/0-late.log", &flow); // sorts before what was read already
    m.object("logs", "flows/3.log", &flow);
    let mut c = Checkpoint::open(&ckpt).unwrap();
    let second = run(&mut c);
    let objects: std::collections::BTreeSet<_> = second
        .iter()
        .map(|e| e.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(objects, ["0-late.log", "3.log"].map(String::from).into());
    assert_eq!(second.len(), 2 * per_object);
    assert!(run(&mut c).is_empty(), "nothing new, nothing read");

    // A replaced object (new ETag) is read again.
    let mut changed = flow.clone();
    changed.extend_from_slice(&flow);
    m.object("logs", "flows/1.log", &changed);
    drop(c);
    let mut c = Checkpoint::open(&ckpt).unwrap();
    assert_eq!(run(&mut c).len(), 2 * per_object);
    assert_eq!(c.len(), 4);
}

#[test]
fn malformed_object_is_reported_with_its_key() {
    if !moto_available("malformed_object_is_reported_with_its_key") {
        return;
    }
    let m = Moto::start();
    m.bucket("trail");
    let ct = read(CLOUDTRAIL);
    let mut bad = b"{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\"}\n".to_vec();
    bad.extend_from_slice(b"{\"eventName\": this is not json\n");
    let good_gz = gzip(&ct);
    let truncated = &good_gz[..good_gz.len() / 2];
    m.object("trail", &ct_key(1, "1-good.json"), &ct);
    m.object("trail", &ct_key(1, "2-bad.json"), &bad);
    m.object("trail", &ct_key(1, "3-truncated.json.gz"), truncated);
    m.object("trail", &ct_key(1, "4-good.json"), &ct);

    let dir = temp_dir("malformed");
    let mut ckpt = Checkpoint::open(&dir.join("c.jsonl")).unwrap();
    let mut src = S3Source::new(
        SourceKind::CloudTrail,
        S3Location::parse("s3://trail/AWSLogs/").unwrap(),
        ReadOptions::default(),
        config(&m).s3_client(),
    );
    let mut seen = Seen::default();
    let counts = src.poll(Some(&mut ckpt), &mut seen).unwrap();
    let good = local_events(SourceKind::CloudTrail, CLOUDTRAIL, "x").len();
    let count = |name: &str| seen.events.iter().filter(|e| e.starts_with(name)).count();
    assert_eq!(count("1-good.json"), good);
    assert_eq!(count("4-good.json"), good);
    assert_eq!(count("2-bad.json"), 1, "the good line of the bad object");
    // Records before the damage are kept, exactly as when the same bytes are a local file.
    let local_truncated = dir.join("3-truncated.json.gz");
    std::fs::write(&local_truncated, truncated).unwrap();
    let mut local = Seen::default();
    read_file(
        SourceKind::CloudTrail,
        &local_truncated,
        &ReadOptions::default(),
        &mut local,
    );
    assert_eq!(count("3-truncated.json.gz"), local.events.len());
    let bad_key = format!("s3://trail/{}:2", ct_key(1, "2-bad.json"));
    assert!(
        seen.malformed.iter().any(|p| p.contains(&bad_key)),
        "reported with bucket, key and line: {:?}",
        seen.malformed
    );
    assert!(
        seen.malformed
            .iter()
            .any(|p| p.contains("3-truncated.json.gz") && p.contains("cut short")),
        "{:?}",
        seen.malformed
    );
    assert_eq!(counts.objects, 4);
    assert_eq!(counts.malformed as usize, seen.malformed.len());
    assert_eq!(
        ckpt.len(),
        4,
        "damaged content is final: recorded, not retried forever"
    );
}

#[test]
fn sqs_notifications_drive_ingestion() {
    if !moto_available("sqs_notifications_drive_ingestion") {
        return;
    }
    let m = Moto::start();
    m.bucket("trail");
    let queue = m.queue("trail-events");
    m.notify("trail", "trail-events");
    let ct = read(CLOUDTRAIL);
    let flow = read(FLOW);
    let ct_obj = ct_key(3, "with space+plus é.json.gz");
    let flow_obj = format!("AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2024/01/03/f.log");
    m.object("trail", &ct_obj, &gzip(&ct));
    m.object("trail", &flow_obj, &flow);
    m.object("trail", "unrelated/readme.txt", b"hello");
    // An SNS-wrapped notification for an object uploaded without one, a message that is not a
    // notification at all.
    m.bucket("other"); // no notifications: announced by hand below
    m.object(
        "other",
        "AWSLogs/x/CloudTrail/us-east-1/2024/01/03/sns.json",
        &ct,
    );
    let inner = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "other"},
        "object": {"key": "AWSLogs/x/CloudTrail/us-east-1/2024/01/03/sns.json"}}}]});
    let sns = serde_json::json!({"Type": "Notification", "MessageId": "1",
        "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": inner.to_string()});
    m.send(&queue, &sns.to_string());
    m.send(&queue, "not json at all");

    let dir = temp_dir("sqs");
    let ckpt_path = dir.join("c.jsonl");
    let cfg = config(&m);
    let routes = vec![
        (
            SourceKind::CloudTrail,
            S3Location::parse("s3://trail/AWSLogs/").unwrap(),
        ),
        (
            SourceKind::VpcFlow,
            S3Location::parse("s3://trail/AWSLogs/").unwrap(),
        ),
        (
            SourceKind::CloudTrail,
            S3Location::parse("s3://other/").unwrap(),
        ),
    ];
    let mut src = SqsSource::new(
        SqsClient::new(&cfg, &queue).unwrap(),
        cfg.s3_client(),
        routes.clone(),
        ReadOptions::default(),
    );
    src.wait_secs = 0;
    src.batch = 2; // several receives
    let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
    let mut seen = Seen::default();
    while src.poll(Some(&mut ckpt), &mut seen).unwrap().messages > 0 {}

    let ct_events = local_events(SourceKind::CloudTrail, CLOUDTRAIL, "x").len();
    let count = |name: &str| seen.events.iter().filter(|e| e.starts_with(name)).count();
    assert_eq!(
        count("with space+plus é.json.gz"),
        ct_events,
        "decoded key read"
    );
    assert_eq!(count("sns.json"), ct_events, "SNS-wrapped notification");
    assert_eq!(
        count("f.log"),
        local_events(SourceKind::VpcFlow, FLOW, "x").len(),
        "routed to vpc-flow"
    );
    assert!(
        seen.malformed
            .iter()
            .any(|p| p.contains("sqs message") && p.contains("not an S3 event")),
        "{:?}",
        seen.malformed
    );
    assert!(
        seen.skipped.iter().any(|p| p.contains("s3:TestEvent")),
        "{:?}",
        seen.skipped
    );
    assert!(
        seen.skipped
            .iter()
            .any(|p| p.contains("unrelated/readme.txt")),
        "{:?}",
        seen.skipped
    );
    let totals = src.totals();
    let ct_total = totals
        .iter()
        .find(|(s, _)| *s == SourceKind::CloudTrail)
        .unwrap()
        .1;
    assert_eq!(ct_total.records as usize, 2 * ct_events);
    assert_eq!(m.queue_depth(&queue), 0, "every processed message deleted");

    // A duplicate delivery after a restart is recognised from the checkpoint and not re-read.
    drop(ckpt);
    m.send(&queue, &sns.to_string());
    let note = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "trail"},
        "object": {"key": ct_obj.replace(' ', "+"), "size": gzip(&ct).len(), "eTag": "ignored-since-get-tells"}}}]});
    m.send(&queue, &note.to_string());
    let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
    let mut src = SqsSource::new(
        SqsClient::new(&cfg, &queue).unwrap(),
        cfg.s3_client(),
        routes,
        ReadOptions::default(),
    );
    src.wait_secs = 0;
    let mut seen = Seen::default();
    while src.poll(Some(&mut ckpt), &mut seen).unwrap().messages > 0 {}
    assert!(
        seen.events.is_empty(),
        "re-read after restart: {} events",
        seen.events.len()
    );
    assert_eq!(m.queue_depth(&queue), 0);
}

#[test]
fn server_going_away_is_retried_and_loses_nothing() {
    if !moto_available("server_going_away_is_retried_and_loses_nothing") {
        return;
    }
    let mut m = Moto::start();
    let flow = read(FLOW);
    let per_object = local_events(SourceKind::VpcFlow, FLOW, "x").len();
    let setup = |m: &Moto, keys: &[&str]| {
        m.bucket("logs");
        for k in keys {
            m.object("logs", k, &flow);
        }
    };
    setup(&m, &["f/a.log"]);
    let queue = m.queue("q");
    let dir = temp_dir("away");
    let ckpt_path = dir.join("c.jsonl");
    let cfg = config(&m);
    let mut src = S3Source::new(
        SourceKind::VpcFlow,
        S3Location::parse("s3://logs/f/").unwrap(),
        ReadOptions::default(),
        cfg.s3_client(),
    );
    let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
    let mut seen = Seen::default();
    src.poll(Some(&mut ckpt), &mut seen).unwrap();
    assert_eq!(seen.events.len(), per_object);

    m.object("logs", "f/b.log", &flow);
    m.stop();
    let t = Instant::now();
    let err: SourceError = src.poll(Some(&mut ckpt), &mut seen).unwrap_err();
    assert!(err.is_transient(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("ListObjectsV2 s3://logs/f/")
            && msg.contains(&m.url())
            && msg.contains("3 attempt(s)"),
        "clear error: {msg}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "retried with backoff"
    );
    let sqs_err = SqsSource::new(
        SqsClient::new(&cfg, &queue).unwrap(),
        cfg.s3_client(),
        vec![],
        ReadOptions::default(),
    )
    .poll(Some(&mut ckpt), &mut seen)
    .unwrap_err();
    assert!(
        sqs_err.is_transient() && sqs_err.to_string().contains("ReceiveMessage"),
        "{sqs_err}"
    );
    assert_eq!(seen.events.len(), per_object, "nothing read while down");
    assert_eq!(ckpt.len(), 1);

    // The store comes back (moto keeps no state: the same objects are put back, same ETags).
    let m2 = Moto::start_on(m.port);
    setup(&m2, &["f/a.log", "f/b.log"]);
    drop(ckpt);
    let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
    let mut after = Seen::default();
    src.poll(Some(&mut ckpt), &mut after).unwrap();
    assert_eq!(
        after.events.len(),
        per_object,
        "b.log once, a.log not again"
    );
    assert!(
        after.events.iter().all(|e| e.starts_with("b.log")),
        "{:?}",
        after.events
    );
    assert_eq!(ckpt.len(), 2);
}

#[test]
fn scan_cli_reads_s3_and_sqs() {
    if !moto_available("scan_cli_reads_s3_and_sqs") {
        return;
    }
    let m = Moto::start();
    m.bucket("trail");
    let queue = m.queue("scanq");
    m.notify("trail", "scanq");
    let ct = read(CLOUDTRAIL);
    m.object("trail", &ct_key(4, "a.json.gz"), &gzip(&ct));
    let per_object = local_events(SourceKind::CloudTrail, CLOUDTRAIL, "x").len();
    let scan = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
            .args([
                "scan",
                "--cloudtrail",
                "s3://trail/AWSLogs/",
                "--s3-endpoint",
                &m.url(),
            ])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let listed = scan(&[]);
    assert!(
        listed.contains(&format!(
            "cloudtrail: objects=1 bytes={} records={per_object} ",
            ct.len()
        )),
        "{listed}"
    );
    let queued = scan(&["--sqs-queue", &queue]);
    assert!(
        queued.contains(&format!("records={per_object} ")),
        "{queued}"
    );
    assert_eq!(m.queue_depth(&queue), 0);
    // Unreachable endpoint: a clear error and exit code 2.
    let out = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .args([
            "scan",
            "--cloudtrail",
            "s3://trail/AWSLogs/",
            "--s3-endpoint",
        ])
        .arg(format!("http://127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: cloudtrail: s3://trail/AWSLogs/") && stderr.contains("unavailable"),
        "{stderr}"
    );
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// `serve` reads S3 continuously as the queue announces objects: one object before start, one
/// while it runs, each read once, and the queue is left empty.
#[test]
fn serve_reads_objects_as_sqs_announces_them() {
    use std::io::BufRead;
    if !moto_available("serve_reads_objects_as_sqs_announces_them") {
        return;
    }
    let m = Moto::start();
    m.bucket("trail");
    let queue = m.queue("serveq");
    m.notify("trail", "serveq");
    let ct = read(CLOUDTRAIL);
    let per_object = local_events(SourceKind::CloudTrail, CLOUDTRAIL, "x").len();
    m.object("trail", &ct_key(5, "a.json.gz"), &gzip(&ct));
    let data = temp_dir("serve-sqs");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .args(["serve", "--insecure", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--cloudtrail",
            "s3://trail/AWSLogs/",
            "--s3-endpoint",
            &m.url(),
        ])
        .args(["--sqs-queue", &queue, "--cloud-poll-secs", "0.2"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(serve.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("[collector] {line}");
            let _ = tx.send(line);
        }
    });
    let wait = |what: &str| loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(_) => panic!("no line with {what:?}"),
        }
    };
    let read_line = format!("read 1 objects, {per_object} records (0 malformed");
    assert!(wait(": read ").contains(&read_line));
    m.object("trail", &ct_key(6, "b.json.gz"), &gzip(&ct));
    assert!(wait(": read ").contains(&read_line));
    // SAFETY: kill(2) on our own child.
    unsafe { kill(serve.id() as i32, 15) };
    let summary = wait("ward-collector: cloud logs:");
    assert!(
        summary.contains(&format!("2 objects, {} records", 2 * per_object)),
        "{summary}"
    );
    assert!(serve.wait().unwrap().success());
    assert_eq!(m.queue_depth(&queue), 0);
    std::fs::remove_dir_all(&data).unwrap();
}

/// A restart lists each `AWSLogs/<account>/<service>/<region>/` root from the checkpoint's newest
/// day (less the one-day lookback) instead of from the start of the prefix; a full listing
/// afterwards finds nothing the incremental one missed, except what the lookback leaves out.
#[test]
fn restart_lists_from_the_checkpoint_position() {
    if !moto_available("restart_lists_from_the_checkpoint_position") {
        return;
    }
    let m = Moto::start();
    m.bucket("trail");
    let record = |n: &str| {
        format!(
            r#"{{"Records":[{{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"{n}"}}]}}"#
        )
    };
    let key = |region: &str, day: u32, name: &str| {
        format!("AWSLogs/{ACCOUNT}/CloudTrail/{region}/2024/01/{day:02}/{name}.json")
    };
    let mut first_batch = 0;
    for day in 1..=30 {
        for n in 0..3 {
            let name = format!("use1-{day}-{n}");
            m.object(
                "trail",
                &key("us-east-1", day, &name),
                record(&name).as_bytes(),
            );
            first_batch += 1;
        }
    }
    for day in 1..=5 {
        let name = format!("euw1-{day}");
        m.object(
            "trail",
            &key("eu-west-1", day, &name),
            record(&name).as_bytes(),
        );
        first_batch += 1;
    }
    m.object(
        "trail",
        &format!("AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/01/30/d.json.gz"),
        b"{}",
    );
    let dir = temp_dir("incremental");
    let ckpt = dir.join("checkpoint.jsonl");
    let loc = S3Location::parse(&format!("s3://trail/AWSLogs/{ACCOUNT}/")).unwrap();
    let source = |incremental: bool| {
        let mut s = S3Source::new(
            SourceKind::CloudTrail,
            loc.clone(),
            ReadOptions::default(),
            config(&m).s3_client(),
        );
        s.page_size = 5; // many pages, as a real bucket of months of logs has
        s.incremental = incremental;
        s
    };
    let names = |seen: &Seen| -> std::collections::BTreeSet<String> {
        seen.events
            .iter()
            .map(|e| e.split(".json").next().unwrap().to_owned())
            .collect()
    };

    let mut c = Checkpoint::open(&ckpt).unwrap();
    let mut src = source(true);
    let mut seen = Seen::default();
    src.poll(Some(&mut c), &mut seen).unwrap();
    assert_eq!(seen.events.len(), first_batch, "{:?}", seen.malformed);
    assert_eq!(seen.skipped.len(), 1, "digest: {:?}", seen.skipped);
    drop(c);

    // New deliveries: the next day, a late file of the newest day, a new region, a file in a
    // day long past (older than the lookback).
    let new = [
        key("us-east-1", 31, "use1-31-0"),
        key("us-east-1", 31, "use1-31-1"),
        key("us-east-1", 30, "use1-30-late"),
        key("eu-west-1", 6, "euw1-6"),
        key("ap-south-1", 2, "aps1-2"),
    ];
    for k in &new {
        let name = k.rsplit('/').next().unwrap().trim_end_matches(".json");
        m.object("trail", k, record(name).as_bytes());
    }
    let very_late = key("us-east-1", 10, "use1-10-late");
    m.object("trail", &very_late, record("use1-10-late").as_bytes());

    // Restart: a new process (source, client) on the same checkpoint.
    let mut c = Checkpoint::open(&ckpt).unwrap();
    let mut src = source(true);
    let mut seen = Seen::default();
    src.poll(Some(&mut c), &mut seen).unwrap();
    let want: std::collections::BTreeSet<String> = new
        .iter()
        .map(|k| {
            k.rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    assert_eq!(
        names(&seen),
        want,
        "exactly the new objects within the lookback"
    );
    assert_eq!(seen.events.len(), new.len());
    let (inc_requests, inc_keys) = (src_requests(&src), src_keys(&src));

    // A full listing of the same prefix, for comparison: it finds only the very late object.
    let mut full = source(false);
    let mut seen = Seen::default();
    full.poll(Some(&mut c), &mut seen).unwrap();
    assert_eq!(
        names(&seen),
        ["use1-10-late".to_owned()].into(),
        "the full listing finds only what is older than the lookback"
    );
    let (full_requests, full_keys) = (src_requests(&full), src_keys(&full));
    let total_keys = first_batch as u64 + 1 + new.len() as u64 + 1;
    assert_eq!(full_keys, total_keys, "a full listing returns every key");
    // us-east-1 from day 30 (3 + 1 late + 2 new), eu-west-1 from day 4 (3), ap-south-1 (1),
    // the digest root from day 29 (1), plus the directory walk's common prefixes.
    assert!(
        inc_keys <= 25 && inc_keys * 4 < full_keys,
        "incremental listing returned {inc_keys} keys, a full one {full_keys}"
    );
    // The directory walk costs a few requests per root; with months of keys (here 21 pages)
    // the pages of whole days skipped dominate.
    assert!(
        inc_requests * 3 < full_requests * 2,
        "incremental listing took {inc_requests} requests, a full one {full_requests}"
    );
}

fn src_requests(s: &S3Source) -> u64 {
    s.client().list_requests()
}

fn src_keys(s: &S3Source) -> u64 {
    s.client().listed_keys()
}
