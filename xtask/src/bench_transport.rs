//! `cargo xtask bench transport`: events per second from one agent process to one collector process over
//! loopback with acknowledgements, and the collector's CPU per 100k events — with mTLS, and in the same
//! run over plain TCP (`--insecure`) and serialisation only (convert-free encode + LZ4), as baselines.
//!
//! The agent side is this program rebuilt in release mode (`bench transport --agent-side`): it pushes
//! synthetic exec events through the real `TransportSink` → batcher → disk spool → gRPC client, and
//! stops when the collector has acknowledged every event. Events are pre-built and pushed by reference,
//! so the headline measures the transport; the `mTLS+clone` line adds one clone per event on the
//! pipeline thread, a stand-in for the agent's conversion to the wire model (what the pipeline really
//! pays before the transport). The collector is the release
//! `ward-collector serve` binary, storing into its fsync'd log in a temporary directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Events to send per run.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Runs per mode (the best is reported, with all runs listed).
    #[arg(long, default_value_t = 2)]
    runs: u32,
    /// Internal: run the agent side against this collector URL.
    #[arg(long, hide = true)]
    agent_side: Option<String>,
    /// Internal: certificate directory for the agent side (absent: plain text).
    #[arg(long, hide = true)]
    certs: Option<PathBuf>,
    /// Internal: spool directory for the agent side.
    #[arg(long, hide = true)]
    spool: Option<PathBuf>,
    /// Internal: measure encode + compress only.
    #[arg(long, hide = true)]
    serialize_only: bool,
    /// Internal: clone each event before pushing it (stand-in for conversion).
    #[arg(long, hide = true)]
    clone_events: bool,
    /// Internal: fsync every spooled batch (`ward-agent run --spool-fsync`).
    #[arg(long, hide = true)]
    spool_fsync: bool,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.serialize_only {
        return serialize_only(args.events);
    }
    if let Some(url) = &args.agent_side {
        return agent_side(url, &args);
    }
    crate::cargo(
        &[
            "build",
            "--release",
            "-p",
            "ward-collector",
            "-p",
            "xtask",
            "--bins",
        ],
        &[],
    )?;
    let release = target_dir().join("release");
    let tmp = std::env::temp_dir().join(format!("ward-bench-transport-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let certs = tmp.join("certs");
    ward_collector::ingest::devcerts::write_dev_pki(
        &certs,
        &["localhost", "127.0.0.1"],
        &["bench-agent"],
    )?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench transport: {} events per run, {} runs per mode, {cpus} CPUs, loopback",
        args.events, args.runs
    );

    let ser = child_rate(&release, &["--serialize-only".into()], args.events)?;
    println!(
        "  serialise only (encode + LZ4, one thread): {:>9.0} events/s",
        ser.rate
    );

    let mut results = Vec::new();
    for (name, tls, extra) in [
        ("mTLS", true, None),
        ("plain TCP", false, None),
        ("mTLS+clone", true, Some("--clone-events")),
        ("mTLS+fsync", true, Some("--spool-fsync")),
    ] {
        let mut runs = Vec::new();
        for r in 0..args.runs {
            let dir = tmp.join(format!("{}-{r}", name.replace([' ', '+'], "-")));
            runs.push(one_run(&release, &certs, &dir, tls, extra, args.events)?);
            let _ = std::fs::remove_dir_all(&dir);
        }
        let best = runs
            .iter()
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .cloned()
            .expect("at least one run");
        println!(
            "  {name:<10}: {:>9.0} events/s with acks (runs: {}), collector CPU {:.3} s per 100k events, agent CPU {:.3} s per 100k events, {:.1} MB on the wire",
            best.rate,
            runs.iter()
                .map(|r| format!("{:.0}", r.rate))
                .collect::<Vec<_>>()
                .join(", "),
            best.collector_cpu / best.events as f64 * 1e5,
            best.agent_cpu / best.events as f64 * 1e5,
            best.wire_bytes as f64 / 1e6,
        );
        results.push((name, best));
    }
    let [tls, plain, cloned, synced] = [0, 1, 2, 3].map(|i| &results[i].1);
    println!(
        "  mTLS / plain TCP: {:.2}x the rate; mTLS / serialise-only: {:.2}x; mTLS+clone / mTLS: {:.2}x; mTLS+fsync / mTLS: {:.2}x; target 500000 events/s: {}",
        tls.rate / plain.rate,
        tls.rate / ser.rate,
        cloned.rate / tls.rate,
        synced.rate / tls.rate,
        if tls.rate >= 500_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

#[derive(Clone)]
struct RunResult {
    events: u64,
    rate: f64,
    collector_cpu: f64,
    agent_cpu: f64,
    wire_bytes: u64,
}

fn one_run(
    release: &Path,
    certs: &Path,
    dir: &Path,
    tls: bool,
    extra_flag: Option<&str>,
    events: u64,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new(release.join("ward-collector"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"));
    if tls {
        cmd.arg("--tls-cert").arg(certs.join("collector.pem"));
        cmd.arg("--tls-key").arg(certs.join("collector-key.pem"));
        cmd.arg("--client-ca").arg(certs.join("ca.pem"));
    } else {
        cmd.arg("--insecure");
    }
    let mut collector = cmd
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .context("start ward-collector")?;
    let stderr = collector.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("ward-collector: listening on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .context("collector did not start")?;
    let port = addr.rsplit(':').next().unwrap_or_default().to_string();
    let url = if tls {
        format!("https://localhost:{port}")
    } else {
        format!("http://127.0.0.1:{port}")
    };
    let cpu_before = crate::cpu::process_secs(collector.id())?;
    let mut extra = vec![
        "--agent-side".to_string(),
        url,
        "--spool".into(),
        dir.join("spool").display().to_string(),
    ];
    if tls {
        extra.push("--certs".into());
        extra.push(certs.display().to_string());
    }
    extra.extend(extra_flag.map(String::from));
    let result = child_rate(release, &extra, events);
    let cpu_after = crate::cpu::process_secs(collector.id())?;
    let _ = collector.kill();
    let _ = collector.wait();
    let r = result?;
    let log = std::fs::metadata(dir.join("data/ingest.log")).map_or(0, |m| m.len());
    Ok(RunResult {
        events,
        rate: r.rate,
        collector_cpu: cpu_after - cpu_before,
        agent_cpu: r.cpu,
        wire_bytes: log,
    })
}

struct ChildRate {
    rate: f64,
    cpu: f64,
}

/// Runs the release xtask's agent side and parses its `rate <events/s> cpu <s>` line.
fn child_rate(release: &Path, extra: &[String], events: u64) -> anyhow::Result<ChildRate> {
    let out = Command::new(release.join("xtask"))
        .args(["bench", "transport", "--events", &events.to_string()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .context("run the agent side")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("agent side failed: {text}");
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("rate "))
        .context("no rate line from the agent side")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Ok(ChildRate {
        rate: f.get(1).and_then(|v| v.parse().ok()).context("rate")?,
        cpu: f.get(3).and_then(|v| v.parse().ok()).context("cpu")?,
    })
}

fn self_cpu_secs() -> f64 {
    crate::cpu::process_secs(std::process::id()).unwrap_or(0.0)
}

/// A synthetic exec event like the agent's (process with args, cwd, cgroup, hash and two ancestors).
// The event message grows fields as event families are added; the bench sets what an exec has.
#[allow(clippy::needless_update)]
fn event(i: u64) -> ward_proto::v1::Event {
    use ward_proto::v1 as pb;
    let ancestor = |pid, name: &str, exe: &str| pb::Ancestor {
        pid,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        name: name.into(),
        executable: exe.into(),
        uid: 1000,
        euid: 1000,
        ..Default::default()
    };
    pb::Event {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        process: Some(pb::Process {
            pid: 10_000 + (i % 30_000) as u32,
            ppid: 4242,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i,
            start_ticks: 100 + i,
            name: "curl".into(),
            executable: "/usr/bin/curl".into(),
            args: vec![
                "curl".into(),
                "-sS".into(),
                format!("https://api.example.invalid/v1/items/{i}"),
            ],
            cwd: "/home/builder/src".into(),
            uid: 1000,
            euid: 1000,
            gid: 1000,
            egid: 1000,
            namespaces: Some(pb::Namespaces {
                pid: 4026531836,
                mnt: 4026531841,
                net: 4026531840,
            }),
            cgroup_id: 8123,
            cgroup: "/user.slice/user-1000.slice/session-3.scope".into(),
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            ancestors: vec![
                ancestor(4242, "bash", "/usr/bin/bash"),
                ancestor(1201, "sshd", "/usr/sbin/sshd"),
            ],
            ..Default::default()
        }),
        kind: Some(pb::event::Kind::Exec(pb::ProcessExec {})),
        ..Default::default()
    }
}

/// Pre-built events, pushed by reference (or cloned first with `--clone-events`).
fn corpus() -> Vec<ward_proto::v1::Event> {
    (0..4096).map(event).collect()
}

/// The agent's per-event and per-batch CPU work without I/O: encode each event as a list entry
/// (what the sink does) and LZ4 each batch of 4096 (what the batcher does).
fn serialize_only(n: u64) -> anyhow::Result<()> {
    let corpus = corpus();
    let cpu0 = self_cpu_secs();
    let start = Instant::now();
    let mut buf = Vec::with_capacity(4 << 20);
    let (mut bytes, mut in_batch) = (0usize, 0);
    for i in 0..n {
        ward_proto::framing::append(&mut buf, &corpus[(i % 4096) as usize]);
        in_batch += 1;
        if in_batch == 4096 || i + 1 == n {
            bytes += lz4_flex::block::compress_prepend_size(&buf).len();
            buf.clear();
            in_batch = 0;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("serialise only: {bytes} compressed bytes");
    println!(
        "rate {:.0} cpu {:.3}",
        n as f64 / secs,
        self_cpu_secs() - cpu0
    );
    Ok(())
}

fn agent_side(url: &str, args: &Args) -> anyhow::Result<()> {
    use ward_agent::transport::{self, ClientTls, TransportConfig};
    let tls = match &args.certs {
        Some(d) => Some(ClientTls {
            ca_pem: std::fs::read(d.join("ca.pem"))?,
            cert_pem: std::fs::read(d.join("bench-agent.pem"))?,
            key_pem: std::fs::read(d.join("bench-agent-key.pem"))?,
            server_name: Some("localhost".into()),
        }),
        None => None,
    };
    let host = ward_proto::v1::HostIdentity {
        agent_id: "bench-agent".into(),
        ..Default::default()
    };
    let spool = args.spool.clone().context("--spool")?;
    let mut cfg = TransportConfig::new(url.to_string(), tls, host, spool);
    if args.spool_fsync {
        cfg.spool_sync = transport::SpoolSync::Always;
    }
    cfg.drain_timeout = Duration::from_secs(600);
    let corpus = corpus();
    let cpu0 = self_cpu_secs();
    let start = Instant::now();
    let (mut sink, handle) = transport::start(cfg)?;
    let metrics = handle.metrics.clone();
    for i in 0..args.events {
        let event = &corpus[(i % 4096) as usize];
        if args.clone_events {
            sink.push(&event.clone())?;
        } else {
            sink.push(event)?;
        }
    }
    drop(sink);
    handle.join()?;
    let secs = start.elapsed().as_secs_f64();
    let acked = metrics
        .events_acked
        .load(std::sync::atomic::Ordering::Relaxed);
    if acked != args.events {
        bail!("only {acked} of {} events acknowledged", args.events);
    }
    println!(
        "rate {:.0} cpu {:.3}",
        args.events as f64 / secs,
        self_cpu_secs() - cpu0
    );
    Ok(())
}
