//! The whole path with the real binaries: `ward-agent run` (eBPF sensors on this kernel) streams over
//! mTLS on loopback to `ward-collector serve`, which stores durably. A process exec with a unique
//! argument and a file created under a unique path must come out of the collector's log attributed to
//! the process that did them, and nothing the agent produced may be lost or reported as lost on the way.

#[path = "transport_common.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use ward_collector::ingest::store::{decode_stored, read_log};
use ward_proto::v1::{self as pb, event::Kind, file_event::Op};

const AGENT_ID: &str = "e2e-agent";
const WAIT: Duration = Duration::from_secs(30);

/// A real `ward-agent run`, its stderr echoed and kept.
struct RunAgent {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    metrics: SocketAddr,
}

impl RunAgent {
    fn start(collector: SocketAddr, pki_dir: &Path, spool: &Path) -> RunAgent {
        let mut child = Command::new(ward_tests::workspace_bin("ward-agent"))
            .arg("run")
            .args([
                "--collector",
                &format!("https://127.0.0.1:{}", collector.port()),
            ])
            .arg("--ca")
            .arg(pki_dir.join("ca.pem"))
            .arg("--cert")
            .arg(pki_dir.join(format!("{AGENT_ID}.pem")))
            .arg("--key")
            .arg(pki_dir.join(format!("{AGENT_ID}-key.pem")))
            .args(["--agent-id", AGENT_ID])
            // Never the real instance-metadata address from a test.
            .args([
                "--imds",
                "off",
                "--instance-id",
                "i-e2e",
                "--region",
                "test-1",
            ])
            .arg("--spool-dir")
            .arg(spool)
            // Light: two families, plus the loss reports that must not appear.
            .args(["--types", "process_exec,file_open,event_loss"])
            .args(["--batch-delay-ms", "50", "--drain-secs", "20"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "ward_agent=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward-agent run");
        let (tx, rx) = channel::<String>();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                eprint!("[agent] {line}");
                let _ = tx.send(line.clone());
                all.push_str(&line);
                line.clear();
            }
            all
        });
        let (metrics, ready) = wait_ready(&rx);
        let mut agent = RunAgent {
            child,
            stderr: Some(stderr),
            metrics: metrics.unwrap_or_else(|| "0.0.0.0:0".parse().unwrap()),
        };
        if metrics.is_none() || !ready {
            let _ = agent.child.kill();
            let _ = agent.child.wait();
            let stderr = agent.stderr();
            panic!("ward-agent run did not become ready; stderr:\n{stderr}");
        }
        agent
    }

    fn stderr(&mut self) -> String {
        let echo = self.stderr.take().expect("stderr taken once");
        echo.join().unwrap_or_default()
    }

    fn metric(&self, name: &str) -> u64 {
        let text = http_get(self.metrics, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"))
    }

    /// SIGINT, then the exit status and the whole stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait ward-agent");
        (status, self.stderr())
    }
}

impl Drop for RunAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the agent's stderr until it is attached (`ready`) and says where its metrics are. The echo
/// thread keeps reading after this returns, so the agent never blocks on a full pipe.
fn wait_ready(lines: &Receiver<String>) -> (Option<SocketAddr>, bool) {
    let deadline = Instant::now() + WAIT;
    let (mut metrics, mut ready) = (None, false);
    while !(ready && metrics.is_some()) {
        let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            break;
        };
        if let Some(rest) = line.trim().strip_prefix("ward-agent: metrics on http://") {
            metrics = rest.strip_suffix("/metrics").and_then(|a| a.parse().ok());
        }
        ready |= line.contains("ward-agent: ready");
    }
    (metrics, ready)
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the agent's metrics");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Every event the collector has durably stored for the agent so far (a record still being appended
/// ends the scan; it is read on a later call).
fn stored(data: &Path) -> Vec<pb::Event> {
    let log = data.join("ingest.log");
    let batches = match read_log(&log) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", log.display()),
    };
    let mut out = Vec::new();
    for b in batches {
        assert_eq!(b.agent_id, AGENT_ID, "a batch of an unknown agent");
        let list = decode_stored(&b).expect("stored batch decodes");
        assert_eq!(list.events.len(), b.event_count as usize);
        out.extend(list.events);
    }
    out
}

fn proc_of(e: &pb::Event) -> &pb::Process {
    e.process.as_ref().expect("event names its process")
}

/// `process_exec 12` and the like from the agent's closing summary line: how many events of each type
/// the pipeline produced (and so handed to the transport, for the types asked for).
fn produced(stderr: &str, ty: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("ward-agent: stopped after"))
        .unwrap_or_else(|| panic!("no summary line in the agent's stderr:\n{stderr}"));
    line.split(['(', ')', ','])
        .find_map(|part| {
            part.trim()
                .strip_prefix(ty)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn real_agent_to_real_collector_exec_and_file_open_attributed() {
    if !ward_tests::can_load_ebpf("real_agent_to_real_collector_exec_and_file_open_attributed") {
        return;
    }
    let dir = TempDir::new("e2e");
    let pki = Pki::generate();
    pki.write_server_files(dir.path());
    let agent_pem = pki.ca.agent(AGENT_ID).unwrap();
    std::fs::write(dir.path().join(format!("{AGENT_ID}.pem")), agent_pem.cert).unwrap();
    std::fs::write(
        dir.path().join(format!("{AGENT_ID}-key.pem")),
        agent_pem.key,
    )
    .unwrap();
    let data = dir.path().join("data");
    let collector = CollectorProcess::start(dir.path(), &data, "127.0.0.1:0".parse().unwrap());
    let agent = RunAgent::start(collector.addr, dir.path(), &dir.path().join("spool"));
    wait_until("the agent's stream to the collector", WAIT, || {
        agent.metric("ward_agent_connected") == 1
    });

    // One process that is both: its exec carries the unique path as an argument, and it creates that
    // path (an open with O_CREAT).
    let marker = ward_tests::marker("e2e");
    let target: PathBuf = std::env::temp_dir().join(&marker);
    let target_str = target.to_str().unwrap().to_string();
    let mut touch = Command::new("touch").arg(&target).spawn().expect("touch");
    let touch_pid = touch.id();
    assert!(touch.wait().unwrap().success());
    let _ = std::fs::remove_file(&target);

    let mut exec = None;
    let mut open = None;
    let deadline = Instant::now() + WAIT;
    while exec.is_none() || open.is_none() {
        assert!(
            Instant::now() < deadline,
            "the collector did not store the exec ({}) and the file open ({}) of {target_str} within {WAIT:?}",
            exec.is_some(),
            open.is_some()
        );
        std::thread::sleep(Duration::from_millis(100));
        for e in stored(&data) {
            let Some(p) = &e.process else { continue };
            if p.pid != touch_pid {
                continue;
            }
            match &e.kind {
                Some(Kind::Exec(_)) if p.args.contains(&target_str) => exec = Some(e.clone()),
                Some(Kind::File(f)) if f.path == target_str && f.op == Op::Open as i32 => {
                    open = Some(e.clone())
                }
                _ => {}
            }
        }
    }
    let (exec, open) = (exec.unwrap(), open.unwrap());
    let test_pid = std::process::id();
    let p = proc_of(&exec);
    assert_eq!(p.name, "touch", "{exec:?}");
    assert!(p.executable.ends_with("/touch"), "{exec:?}");
    assert_eq!(p.args, ["touch", target_str.as_str()], "{exec:?}");
    assert_eq!(
        p.ppid, test_pid,
        "exec attributed to the test's child: {exec:?}"
    );
    assert_eq!(
        p.ancestors.first().map(|a| a.pid),
        Some(test_pid),
        "nearest ancestor is this test: {exec:?}"
    );
    let f = match &open.kind {
        Some(Kind::File(f)) => f,
        _ => unreachable!(),
    };
    let q = proc_of(&open);
    assert_eq!(
        (q.pid, q.ppid, q.name.as_str()),
        (touch_pid, test_pid, "touch")
    );
    assert_eq!(
        q.start_time_unix_nano, p.start_time_unix_nano,
        "same process instance"
    );
    assert_eq!(
        q.args, p.args,
        "the open carries the process's exec facts: {open:?}"
    );
    assert!(open.syscall.starts_with("open"), "{open:?}");
    assert!(open.result >= 0, "the create succeeded: {open:?}");
    assert_ne!(
        f.flags & libc::O_CREAT as u32,
        0,
        "created, not just opened: {open:?}"
    );

    // No loss anywhere on the way: kernel ring, transport spool.
    assert_eq!(agent.metric("ward_agent_events_evicted_total"), 0);
    assert_eq!(agent.metric("ward_agent_events_corrupt_total"), 0);
    let (status, stderr) = agent.stop();
    assert!(status.success(), "ward-agent run exited with {status}");
    assert!(
        stderr.contains("kernel drops 0,"),
        "the kernel dropped events:\n{stderr}"
    );
    // The agent drained before exiting: everything it produced of the sent types is in the log, once.
    let all = stored(&data);
    let losses: Vec<&pb::Event> = all
        .iter()
        .filter(|e| matches!(e.kind, Some(Kind::Loss(_))))
        .collect();
    assert!(losses.is_empty(), "loss reported: {losses:?}");
    let expected = produced(&stderr, "process_exec") + produced(&stderr, "file_open");
    assert!(expected >= 2, "summary counts nothing:\n{stderr}");
    assert_eq!(
        all.len() as u64,
        expected,
        "events produced by the agent vs stored by the collector"
    );
    collector.stop();
}
