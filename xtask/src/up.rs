//! `cargo xtask up`: Ward on this host in one command. Builds the agent and the collector (debug:
//! a fraction of the release build time, and fast enough for one host), creates development
//! certificates, starts `ward-collector serve` and `ward-agent run` over mTLS on loopback, serves
//! the query API over mTLS (client certificates for `wardctl` with the admin and the read role),
//! and prints one line per finding as the collector raises it. Ctrl-C (SIGINT) or SIGTERM stops the
//! agent, then the collector, and exits 0 once both have exited.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// Address the collector accepts agents on.
    #[arg(long, default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// Address of the query API (HTTPS, client certificates) that `wardctl` calls.
    #[arg(long, default_value = "127.0.0.1:8443")]
    api_listen: SocketAddr,
    /// Directory for the certificates, the collector's data and the logs (default: target/ward-up).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run the binaries in this directory instead of building them.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

const AGENT_ID: &str = "dev-agent";
/// `wardctl`'s client certificates (file names) and the role each names.
const API_CLIENTS: [(&str, &str); 2] = [("wardctl-admin", "admin"), ("wardctl-read", "read")];

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// What the children report to the main loop.
enum Report {
    Listening(SocketAddr),
    AgentReady,
    Finding(String),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the agent loads eBPF programs: run `cargo xtask up` as root");
    }
    let bins = match args.bin_dir {
        Some(d) => d,
        None => {
            crate::cargo(
                &[
                    "build",
                    "--bins",
                    "-p",
                    "ward-agent",
                    "-p",
                    "ward-collector",
                    "-p",
                    "wardctl",
                ],
                &[],
            )?;
            crate::target_dir().join("debug")
        }
    };
    let dir = args
        .dir
        .unwrap_or_else(|| crate::target_dir().join("ward-up"));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).with_context(|| format!("{}", certs.display()))?;
    ward_collector::ingest::devcerts::write_dev_pki_with_api_clients(
        &certs,
        &["localhost", "127.0.0.1", "::1"],
        &[AGENT_ID],
        &API_CLIENTS,
    )?;
    // A handler (not SIG_IGN, which children would inherit): the children see the terminal's
    // Ctrl-C themselves; this process only notes it and waits for them.
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let (tx, reports) = channel();
    let collector = start_collector(
        &bins,
        &dir,
        &certs,
        (args.listen, args.api_listen),
        tx.clone(),
    )?;
    let mut running = Running {
        collector: Some(collector),
        agent: None,
    };
    let addr = match wait_for(&reports, Duration::from_secs(60), |r| match r {
        Report::Listening(a) => Some(*a),
        _ => None,
    }) {
        Some(a) => a,
        None => {
            running.stop();
            bail!(
                "the collector did not start; see {}",
                dir.join("collector.log").display()
            );
        }
    };
    running.agent = Some(start_agent(&bins, &dir, &certs, addr, tx)?);
    if wait_for(&reports, Duration::from_secs(60), |r| {
        matches!(r, Report::AgentReady).then_some(())
    })
    .is_none()
    {
        running.stop();
        bail!(
            "the agent did not attach; see {}",
            dir.join("agent.log").display()
        );
    }
    println!(
        "Ward is up: collector on {addr} (pid {}), agent {AGENT_ID:?} (pid {}) over mTLS.",
        running.collector.as_ref().map_or(0, Child::id),
        running.agent.as_ref().map_or(0, Child::id),
    );
    println!(
        "Logs: {0}/collector.log, {0}/agent.log. Run `cargo xtask scenarios` in another terminal; Ctrl-C stops.",
        dir.display()
    );
    print!("{}", wardctl_hint(&bins, &certs, args.api_listen));
    println!(
        "{:<24}  {:<8}  {:<48}  {:<32}  CONTAINER",
        "TIME", "SEVERITY", "TYPE", "PROCESS"
    );
    let _ = std::io::stdout().flush();
    let mut failed = None;
    while !STOP.load(Ordering::SeqCst) {
        match reports.recv_timeout(Duration::from_millis(200)) {
            Ok(Report::Finding(line)) => {
                println!("{}", finding_line(&line));
                let _ = std::io::stdout().flush();
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {}
        }
        if let Some(which) = running.exited() {
            failed = Some(which);
            break;
        }
    }
    running.stop();
    if let Some(which) = failed {
        bail!(
            "{which} exited on its own; see {}",
            dir.join(format!("{which}.log")).display()
        );
    }
    println!("Ward stopped.");
    Ok(())
}

struct Running {
    collector: Option<Child>,
    agent: Option<Child>,
}

impl Running {
    /// The child that has exited, if any.
    fn exited(&mut self) -> Option<&'static str> {
        for (name, child) in [
            ("agent", &mut self.agent),
            ("collector", &mut self.collector),
        ] {
            if let Some(c) = child
                && !matches!(c.try_wait(), Ok(None))
            {
                return Some(name);
            }
        }
        None
    }

    /// The agent first (it hands its last batches to the collector), then the collector.
    fn stop(&mut self) {
        for child in [self.agent.take(), self.collector.take()]
            .into_iter()
            .flatten()
        {
            stop_child(child);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGINT, then SIGKILL if it is still running 15 s later.
fn stop_child(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_for<T>(
    reports: &Receiver<Report>,
    timeout: Duration,
    want: impl Fn(&Report) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if STOP.load(Ordering::SeqCst) {
            return None;
        }
        match reports.recv_timeout(Duration::from_millis(200)) {
            Ok(r) => {
                if let Some(t) = want(&r) {
                    return Some(t);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

/// Copies a child's stderr into a log file, reporting the line that `signal` recognises.
fn log_stderr(
    child: &mut Child,
    log: &Path,
    tx: Sender<Report>,
    signal: fn(&str) -> Option<Report>,
) -> anyhow::Result<()> {
    let stderr = child.stderr.take().expect("piped");
    let mut file = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
            if let Some(r) = signal(&line) {
                let _ = tx.send(r);
            }
        }
    });
    Ok(())
}

/// How to call the query API from another terminal (the admin certificate; `wardctl-read` has
/// the read role).
fn wardctl_hint(bins: &Path, certs: &Path, api: SocketAddr) -> String {
    format!(
        "Query API on https://{api} (mTLS). In another terminal:\n  \
         export WARD_SERVER=https://{api} WARD_CA={0}/ca.pem WARD_CERT={0}/wardctl-admin.pem WARD_KEY={0}/wardctl-admin-key.pem\n  \
         {1} findings list    # also: findings get|archive ID, suppress ..., lists ..., tail\n",
        certs.display(),
        bins.join("wardctl").display()
    )
}

fn start_collector(
    bins: &Path,
    dir: &Path,
    certs: &Path,
    (listen, api_listen): (SocketAddr, SocketAddr),
    tx: Sender<Report>,
) -> anyhow::Result<Child> {
    let mut child = Command::new(bins.join("ward-collector"))
        .arg("serve")
        .args(["--listen", &listen.to_string()])
        .arg("--tls-cert")
        .arg(certs.join("collector.pem"))
        .arg("--tls-key")
        .arg(certs.join("collector-key.pem"))
        .arg("--client-ca")
        .arg(certs.join("ca.pem"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        // The query API with the same development CA: wardctl's certificates name its role.
        .args(["--api-listen", &api_listen.to_string()])
        .arg("--api-tls-cert")
        .arg(certs.join("collector.pem"))
        .arg("--api-tls-key")
        .arg(certs.join("collector-key.pem"))
        .arg("--api-client-ca")
        .arg(certs.join("ca.pem"))
        // Every change of a finding, as it happens (no update rate limit in a terminal).
        .args(["--output", "stdout", "--output-update-interval", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bins.join("ward-collector").display()))?;
    log_stderr(&mut child, &dir.join("collector.log"), tx.clone(), |l| {
        l.strip_prefix("ward-collector: listening on ")
            .and_then(|a| a.trim().parse().ok())
            .map(Report::Listening)
    })?;
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(Report::Finding(line)).is_err() {
                break;
            }
        }
    });
    Ok(child)
}

fn start_agent(
    bins: &Path,
    dir: &Path,
    certs: &Path,
    collector: SocketAddr,
    tx: Sender<Report>,
) -> anyhow::Result<Child> {
    let mut child = Command::new(bins.join("ward-agent"))
        .arg("run")
        .args([
            "--collector",
            &format!("https://localhost:{}", collector.port()),
        ])
        .arg("--ca")
        .arg(certs.join("ca.pem"))
        .arg("--cert")
        .arg(certs.join(format!("{AGENT_ID}.pem")))
        .arg("--key")
        .arg(certs.join(format!("{AGENT_ID}-key.pem")))
        .args(["--agent-id", AGENT_ID])
        // No cloud metadata on a developer machine; the collector names the host by agent id.
        .args(["--imds", "off"])
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .args(["--batch-delay-ms", "50", "--drain-secs", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bins.join("ward-agent").display()))?;
    log_stderr(&mut child, &dir.join("agent.log"), tx, |l| {
        l.contains("ward-agent: ready")
            .then_some(Report::AgentReady)
    })?;
    Ok(child)
}

/// One readable line for a finding (JSON as the collector prints it): time, severity, type,
/// process, container.
pub fn finding_line(json: &str) -> String {
    let Ok(f) = serde_json::from_str::<Value>(json) else {
        return format!("(unreadable finding) {json}");
    };
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let severity = f["severity"].as_f64().unwrap_or(0.0);
    let label = match severity {
        s if s >= 9.0 => "CRITICAL",
        s if s >= 7.0 => "HIGH",
        s if s >= 4.0 => "MEDIUM",
        _ => "LOW",
    };
    let process = &f["service"]["runtimeDetails"]["process"];
    let process = if process.is_object() {
        format!(
            "{}[{}] {}",
            s(&process["name"]),
            process["pid"].as_i64().unwrap_or(0),
            s(&process["executablePath"])
        )
    } else {
        "-".to_string()
    };
    let ward = &f["service"]["additionalInfo"]["ward"];
    let container = ward["container"]["id"]
        .as_str()
        .map(|id| id.chars().take(12).collect())
        .unwrap_or_else(|| "host".to_string());
    let count = f["service"]["count"].as_u64().unwrap_or(1);
    let mut line = format!(
        "{:<24}  {:<8}  {:<48}  {:<32}  {container}",
        s(&f["service"]["eventLastSeen"]),
        label,
        s(&f["type"]),
        process
    );
    if count > 1 {
        line.push_str(&format!("  (seen {count} times)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_reads_as_one_line() {
        let json = r#"{"type":"Impact:Runtime/CryptoMinerExecuted","severity":8,
            "service":{"eventLastSeen":"2026-11-29T15:00:00.123Z","count":2,
              "runtimeDetails":{"process":{"name":"xmrig","pid":42,"executablePath":"/tmp/xmrig"}},
              "additionalInfo":{"ward":{"container":{"id":"0123456789abcdef0123"}}}}}"#;
        let line = finding_line(json);
        for part in [
            "2026-11-29T15:00:00.123Z",
            "HIGH",
            "Impact:Runtime/CryptoMinerExecuted",
            "xmrig[42] /tmp/xmrig",
            "0123456789ab ",
            "(seen 2 times)",
        ] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
        assert!(finding_line(r#"{"type":"X","severity":2}"#).contains("host"));
    }
}
