//! Helpers shared by the transport tests (included with `#[path]`; as its own test target it has no
//! tests): a dev PKI in a temporary directory, synthetic events that carry their agent and index, an
//! in-process collector, a real `ward-collector serve` process, and reading back what was stored.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ward_agent::transport::{self, ClientTls, TransportConfig, TransportHandle, TransportSink};
use ward_collector::ingest::devcerts::{DevCa, Pem};
use ward_collector::ingest::store::{decode_stored, read_log};
use ward_collector::ingest::{self, IngestHandle, Limits, ServeConfig, ServerTls};
use ward_proto::v1::{self as pb, event::Kind};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ward-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Pki {
    pub ca: DevCa,
    pub server: Pem,
}

impl Pki {
    pub fn generate() -> Pki {
        let ca = DevCa::new("Ward test CA").unwrap();
        let server = ca.server(&["localhost", "127.0.0.1", "::1"]).unwrap();
        Pki { ca, server }
    }

    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            cert_pem: self.server.cert.clone().into_bytes(),
            key_pem: self.server.key.clone().into_bytes(),
            client_ca_pem: self.ca.pem.cert.clone().into_bytes(),
        }
    }

    pub fn client_tls(&self, agent_id: &str) -> ClientTls {
        let pem = self.ca.agent(agent_id).unwrap();
        ClientTls {
            ca_pem: self.ca.pem.cert.clone().into_bytes(),
            cert_pem: pem.cert.into_bytes(),
            key_pem: pem.key.into_bytes(),
            server_name: Some("localhost".into()),
        }
    }

    /// Writes ca.pem, collector.pem, collector-key.pem into `dir` (for the real binary).
    pub fn write_server_files(&self, dir: &Path) {
        std::fs::write(dir.join("ca.pem"), &self.ca.pem.cert).unwrap();
        std::fs::write(dir.join("collector.pem"), &self.server.cert).unwrap();
        std::fs::write(dir.join("collector-key.pem"), &self.server.key).unwrap();
    }
}

/// Event `index` of agent number `agent`: the index is the event time, the agent number the pid, and
/// the rest looks like a real exec (so batches compress like real ones).
// The proto grows fields as event families are added; tests only set what they check.
#[allow(clippy::needless_update)]
pub fn event(agent: u32, index: u64) -> pb::Event {
    pb::Event {
        time_unix_nano: index,
        process: Some(pb::Process {
            pid: agent,
            ppid: 1,
            start_time_unix_nano: 1_700_000_000_000_000_000 + index,
            name: "curl".into(),
            executable: "/usr/bin/curl".into(),
            args: vec![
                "curl".into(),
                "-s".into(),
                format!("https://example.invalid/{index}"),
            ],
            cwd: "/home/user".into(),
            uid: 1000,
            euid: 1000,
            gid: 1000,
            egid: 1000,
            cgroup: "/user.slice/user-1000.slice/session-1.scope".into(),
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            ancestors: vec![pb::Ancestor {
                pid: 4242,
                name: "bash".into(),
                executable: "/usr/bin/bash".into(),
                uid: 1000,
                euid: 1000,
                ..Default::default()
            }],
            ..Default::default()
        }),
        kind: Some(Kind::Exec(pb::ProcessExec {})),
        ..Default::default()
    }
}

pub async fn start_collector(pki: &Pki, data: &Path, listen: SocketAddr) -> IngestHandle {
    ingest::start(ServeConfig {
        listen,
        tls: Some(pki.server_tls()),
        data_dir: data.to_path_buf(),
        limits: Limits::default(),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
    })
    .await
    .expect("collector starts")
}

pub fn agent_config(
    addr: SocketAddr,
    tls: ClientTls,
    agent_id: &str,
    spool: &Path,
) -> TransportConfig {
    let host = pb::HostIdentity {
        agent_id: agent_id.into(),
        hostname: "test-host".into(),
        ..Default::default()
    };
    let mut cfg = TransportConfig::new(
        format!("https://127.0.0.1:{}", addr.port()),
        Some(tls),
        host,
        spool.to_path_buf(),
    );
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(500);
    cfg.drain_timeout = Duration::from_secs(30);
    cfg.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    cfg
}

pub fn start_agent(cfg: TransportConfig) -> (TransportSink, TransportHandle) {
    transport::start(cfg).expect("transport starts")
}

/// Every stored event per agent id, in stored order, decoded.
pub fn stored_events(data: &Path) -> std::collections::HashMap<String, Vec<pb::Event>> {
    let mut out: std::collections::HashMap<String, Vec<pb::Event>> = Default::default();
    for b in read_log(&data.join("ingest.log")).expect("read ingest log") {
        let list = decode_stored(&b).expect("stored batch decodes");
        assert_eq!(list.events.len(), b.event_count as usize);
        out.entry(b.agent_id).or_default().extend(list.events);
    }
    out
}

/// Sequence numbers stored per agent, in stored order.
pub fn stored_sequences(data: &Path) -> std::collections::HashMap<String, Vec<u64>> {
    let mut out: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for b in read_log(&data.join("ingest.log")).expect("read ingest log") {
        out.entry(b.agent_id).or_default().push(b.sequence);
    }
    out
}

/// Splits stored events into (index, agent pid) for ordinary events and the loss events.
pub fn split_loss(events: &[pb::Event]) -> (Vec<u64>, Vec<pb::EventLoss>) {
    let mut idx = Vec::new();
    let mut loss = Vec::new();
    for e in events {
        match &e.kind {
            Some(Kind::Loss(l)) => loss.push(l.clone()),
            _ => idx.push(e.time_unix_nano),
        }
    }
    (idx, loss)
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port (bound then released; the tests that restart a collector reuse it).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A real `ward-collector serve` process.
pub struct CollectorProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// The query API's address, with `--api-listen`.
    pub api: Option<SocketAddr>,
}

impl CollectorProcess {
    pub fn start(pki_dir: &Path, data: &Path, listen: SocketAddr) -> CollectorProcess {
        Self::start_with(pki_dir, data, listen, &[])
    }

    /// `start` with more `serve` flags.
    pub fn start_with(
        pki_dir: &Path,
        data: &Path,
        listen: SocketAddr,
        extra: &[&str],
    ) -> CollectorProcess {
        Self::start_env(pki_dir, data, listen, extra, &[]).0
    }

    /// `start_with` plus environment variables; also returns every stderr line as it comes.
    pub fn start_env(
        pki_dir: &Path,
        data: &Path,
        listen: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (CollectorProcess, std::sync::mpsc::Receiver<String>) {
        let mut child = Command::new(ward_tests::workspace_bin("ward-collector"))
            .envs(env.iter().copied())
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--tls-cert")
            .arg(pki_dir.join("collector.pem"))
            .arg("--tls-key")
            .arg(pki_dir.join("collector-key.pem"))
            .arg("--client-ca")
            .arg(pki_dir.join("ca.pem"))
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward-collector serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[collector] {line}");
                if let Some(a) = line.strip_prefix("ward-collector: query API on http://") {
                    let _ = tx.send((false, a.trim().to_string()));
                }
                if let Some(a) = line.strip_prefix("ward-collector: listening on ") {
                    let _ = tx.send((true, a.trim().to_string()));
                }
                let _ = lines_tx.send(line);
            }
        });
        // The API line, if any, comes before the listening line.
        let mut api = None;
        let addr = loop {
            let (listening, a) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("collector printed its address");
            if listening {
                break a.parse().unwrap();
            }
            api = Some(a.parse().unwrap());
        };
        (CollectorProcess { child, addr, api }, lines)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `ward-collector serve` process with a fresh PKI and data directory, and an agent transport
/// streaming `n` events (`make(i)`) to it steadily, about 6 k/s, from a producer thread: the set-up
/// of the tests that kill the collector mid-stream and restart it on the same data.
pub struct SteadyStream {
    pub dir: TempDir,
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub metrics: std::sync::Arc<transport::Metrics>,
    producer: std::thread::JoinHandle<()>,
    handle: TransportHandle,
}

impl SteadyStream {
    /// Starts the collector and the stream; returns once the producer runs.
    pub fn start(
        test: &str,
        agent_id: &str,
        batch_events: usize,
        n: u64,
        make: fn(u64) -> pb::Event,
    ) -> (SteadyStream, CollectorProcess) {
        let pki = Pki::generate();
        let dir = TempDir::new(test);
        pki.write_server_files(dir.path());
        let data = dir.path().join("data");
        let listen = free_port();
        let collector = CollectorProcess::start(dir.path(), &data, listen);
        let mut cfg = agent_config(
            collector.addr,
            pki.client_tls(agent_id),
            agent_id,
            &dir.path().join("spool"),
        );
        cfg.max_batch_events = batch_events;
        cfg.max_batch_delay = Duration::from_millis(20);
        let (mut sink, handle) = start_agent(cfg);
        let metrics = handle.metrics.clone();
        let producer = std::thread::spawn(move || {
            use ward_agent::output::Sink;
            for i in 0..n {
                sink.push(&make(i)).unwrap();
                if i % 600 == 599 {
                    sink.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        let stream = SteadyStream {
            dir,
            data,
            listen,
            metrics,
            producer,
            handle,
        };
        (stream, collector)
    }

    /// Waits (off the async runtime) until `events` are acknowledged.
    pub async fn acked_at_least(&self, events: u64) {
        let m = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            wait_until("acknowledgements", Duration::from_secs(30), || {
                m.events_acked.load(std::sync::atomic::Ordering::Relaxed) >= events
            })
        })
        .await
        .unwrap();
    }

    /// A collector on the same address and data, as after a restart.
    pub fn restart_collector(&self) -> CollectorProcess {
        CollectorProcess::start(self.dir.path(), &self.data, self.listen)
    }

    /// Waits until every event was produced and the transport drained; the directory stays.
    pub async fn finish(self) -> TempDir {
        let SteadyStream {
            dir,
            producer,
            handle,
            ..
        } = self;
        tokio::task::spawn_blocking(move || {
            producer.join().unwrap();
            handle.join().expect("transport drains");
        })
        .await
        .unwrap();
        dir
    }
}
