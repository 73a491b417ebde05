//! `cargo xtask bench agent`: what the agent costs the host and what it delivers, next to the tools a user
//! would otherwise pick.
//!
//! Each workload runs once per configuration in every round: no observer (the baseline), `ward-agent
//! watch` (JSON to /dev/null), the count-only floor (Ward's syscall hooks doing nothing but counting: what
//! any syscall-tracepoint sensor pays), and, when installed, bpftrace printing one line per event and auditd
//! with execve/openat/connect rules. Slowdowns are ratios to the baseline of the same round, and the
//! reported figure is the median over rounds, so machine noise hits both sides alike. The agent's CPU comes
//! from its /proc stat ticks during the workload; events and drops from its shutdown summary.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Rounds per workload; medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Execs per exec-storm round.
    #[arg(long, default_value_t = 500)]
    execs: usize,
    /// Processes per fork-storm round (fork + immediate exit, two forking threads).
    #[arg(long, default_value_t = 5_000)]
    forks: usize,
    /// open+close pairs per open-storm and write-open-storm round.
    #[arg(long, default_value_t = 200_000)]
    opens: usize,
    /// TCP connections per connect-storm round (to a loopback listener).
    #[arg(long, default_value_t = 5_000)]
    connects: usize,
    /// Only these workloads (exec, fork, open, write, connect).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also run Ward limited to these event types (`watch --types`): next to the full agent, it
    /// prices the types left out.
    #[arg(long, value_name = "TYPES")]
    compare_types: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Exec,
    Fork,
    Open,
    WriteOpen,
    Connect,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::Exec,
        Workload::Fork,
        Workload::Open,
        Workload::WriteOpen,
        Workload::Connect,
    ];

    fn key(self) -> &'static str {
        match self {
            Workload::Exec => "exec",
            Workload::Fork => "fork",
            Workload::Open => "open",
            Workload::WriteOpen => "write",
            Workload::Connect => "connect",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Exec => "exec storm (fork+exec /bin/true)",
            Workload::Fork => "fork storm (fork+exit, 2 threads)",
            Workload::Open => "open storm (read-only open+close)",
            Workload::WriteOpen => "write-open storm (O_CREAT|O_TRUNC open+close)",
            Workload::Connect => "connect storm (TCP connect+close, loopback)",
        }
    }

    /// Runs the workload once; returns its wall time and the number of operations.
    fn run(self, args: &Args) -> anyhow::Result<(Duration, usize)> {
        let start = Instant::now();
        let ops = match self {
            Workload::Exec => {
                for _ in 0..args.execs {
                    Command::new("/bin/true").status()?;
                }
                args.execs
            }
            Workload::Fork => {
                let per_thread = args.forks / 2;
                let threads: Vec<_> = (0..2)
                    .map(|_| std::thread::spawn(move || fork_exit(per_thread)))
                    .collect();
                for t in threads {
                    t.join().expect("fork thread")?;
                }
                per_thread * 2
            }
            Workload::Open => open_close(Path::new("/etc/hostname"), libc::O_RDONLY, args.opens)?,
            Workload::WriteOpen => {
                let path = std::env::temp_dir().join(format!("ward-bench-{}", std::process::id()));
                let ops = open_close(
                    &path,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                    args.opens,
                )?;
                std::fs::remove_file(&path).ok();
                ops
            }
            Workload::Connect => {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let n = args.connects;
                let server = std::thread::spawn(move || {
                    for _ in 0..n {
                        if listener.accept().is_err() {
                            break;
                        }
                    }
                });
                for _ in 0..n {
                    let stream = TcpStream::connect(addr)?;
                    // Close with a reset: thousands of TIME_WAIT sockets would exhaust the ephemeral ports
                    // and make later rounds measure the port search instead of the observer.
                    let linger = libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    };
                    // SAFETY: a valid socket fd and a correctly sized option value.
                    unsafe {
                        libc::setsockopt(
                            std::os::fd::AsRawFd::as_raw_fd(&stream),
                            libc::SOL_SOCKET,
                            libc::SO_LINGER,
                            (&linger as *const libc::linger).cast(),
                            size_of::<libc::linger>() as u32,
                        )
                    };
                }
                server.join().expect("accept thread");
                n
            }
        };
        Ok((start.elapsed(), ops))
    }
}

fn open_close(path: &Path, flags: i32, n: usize) -> anyhow::Result<usize> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    for _ in 0..n {
        // SAFETY: a valid path; the fd is closed right away.
        let fd = unsafe { libc::open(path.as_ptr(), flags, 0o600) };
        if fd < 0 {
            bail!("open: {}", std::io::Error::last_os_error());
        }
        // SAFETY: fd was just opened by us.
        unsafe { libc::close(fd) };
    }
    Ok(n)
}

/// fork() children that exit at once: the cheapest way to make process events.
fn fork_exit(n: usize) -> anyhow::Result<()> {
    for _ in 0..n {
        // SAFETY: the child only calls _exit, which is async-signal-safe.
        match unsafe { libc::fork() } {
            0 => unsafe { libc::_exit(0) },
            -1 => bail!("fork: {}", std::io::Error::last_os_error()),
            pid => {
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Config {
    Baseline,
    Ward,
    /// Ward with `--compare-types`.
    WardTypes,
    CountOnly,
    Bpftrace,
    Auditd,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Baseline => "no observer",
            Config::Ward => "Ward",
            Config::WardTypes => "Ward, --compare-types only",
            Config::CountOnly => "count-only floor",
            Config::Bpftrace => "bpftrace (line per event)",
            Config::Auditd => "auditd (execve/openat/connect rules)",
        }
    }
}

const BPFTRACE_SCRIPT: &str = r#"
tracepoint:syscalls:sys_enter_execve { printf("exec %d %s %s\n", pid, comm, str(args->filename)); }
tracepoint:sched:sched_process_fork { printf("fork %d %d\n", args->parent_pid, args->child_pid); }
tracepoint:syscalls:sys_enter_openat { printf("open %d %s %s\n", pid, comm, str(args->filename)); }
tracepoint:syscalls:sys_enter_connect { printf("connect %d %s\n", pid, comm); }
"#;

/// A running observer (nothing for the baseline).
struct Observer {
    config: Config,
    child: Option<Child>,
    stderr: Option<BufReader<ChildStderr>>,
}

/// What the agent reported when it stopped.
#[derive(Default)]
struct AgentReport {
    events: u64,
    drops: u64,
    cpu_secs: f64,
}

fn wait_for_line(reader: &mut impl BufRead, needle: &str, what: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("{what} exited before it was ready");
        }
    }
    Ok(())
}

fn auditctl(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("auditctl")
        .args(args)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("auditctl {} failed", args.join(" "));
    }
    Ok(())
}

impl Observer {
    fn start(config: Config, agent: &Path, types: Option<&str>) -> anyhow::Result<Observer> {
        let mut observer = Observer {
            config,
            child: None,
            stderr: None,
        };
        match config {
            Config::Baseline => {}
            Config::Ward | Config::WardTypes | Config::CountOnly => {
                let mut command = Command::new(agent);
                match config {
                    Config::CountOnly => command.arg("count-only"),
                    Config::WardTypes => command
                        .args(["watch", "--types"])
                        .arg(types.context("--compare-types")?),
                    _ => command.arg("watch"),
                };
                let mut child = command
                    .stdout(Stdio::from(std::fs::File::create("/dev/null")?))
                    .stderr(Stdio::piped())
                    .spawn()?;
                let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
                wait_for_line(&mut stderr, "ward-agent: ready", "ward-agent")?;
                observer.child = Some(child);
                observer.stderr = Some(stderr);
            }
            Config::Bpftrace => {
                let mut child = Command::new("bpftrace")
                    .args(["-e", BPFTRACE_SCRIPT])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()?;
                let mut out = BufReader::new(child.stdout.take().expect("piped"));
                wait_for_line(&mut out, "Attaching", "bpftrace")?;
                // Someone has to read what it prints, as a user piping it somewhere would.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut out, &mut std::io::sink());
                });
                observer.child = Some(child);
            }
            Config::Auditd => {
                auditctl(&["-D"])?;
                auditctl(&[
                    "-a",
                    "always,exit",
                    "-F",
                    "arch=b64",
                    "-S",
                    "execve,openat,connect",
                    "-k",
                    "ward-bench",
                ])?;
            }
        }
        Ok(observer)
    }

    fn cpu_secs(&self) -> f64 {
        self.child
            .as_ref()
            .and_then(|c| crate::cpu::process_secs(c.id()).ok())
            .unwrap_or(0.0)
    }

    fn stop(mut self) -> anyhow::Result<AgentReport> {
        if self.config == Config::Auditd {
            auditctl(&["-D"])?;
        }
        let Some(mut child) = self.child.take() else {
            return Ok(AgentReport::default());
        };
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let mut rest = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            stderr.read_to_string(&mut rest)?;
        }
        child.wait()?;
        if self.config != Config::Ward {
            return Ok(AgentReport::default());
        }
        let summary = rest
            .lines()
            .find(|l| l.contains("stopped after"))
            .context("no summary from ward-agent")?;
        let number_after = |tag: &str| -> anyhow::Result<u64> {
            let at = summary
                .find(tag)
                .with_context(|| format!("{tag:?} missing in {summary:?}"))?
                + tag.len();
            Ok(summary[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()?)
        };
        Ok(AgentReport {
            events: number_after("s: ")?,
            drops: number_after("kernel drops ")?,
            cpu_secs: 0.0,
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn available(tool: &str, probe: &[&str]) -> bool {
    Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts auditd when its tools are installed and it is not running; true when rules can be loaded.
fn auditd_ready() -> bool {
    if !available("auditctl", &["-s"]) {
        return false;
    }
    let running = Command::new("pidof")
        .arg("auditd")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !running {
        let _ = Command::new("auditd").status();
        std::thread::sleep(Duration::from_millis(500));
    }
    Command::new("pidof")
        .arg("auditd")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench agent loads eBPF: run it as root");
    }
    crate::cargo(&["build", "--release", "-p", "ward-agent"], &[])?;
    let agent: PathBuf = crate::target_dir().join("release/ward-agent");
    let ticks_per_sec = crate::cpu::ticks_per_sec();

    let mut configs = vec![Config::Baseline, Config::Ward, Config::CountOnly];
    if args.compare_types.is_some() {
        configs.push(Config::WardTypes);
    }
    let mut skipped = Vec::new();
    if available("bpftrace", &["--version"]) {
        configs.push(Config::Bpftrace);
    } else {
        skipped.push("bpftrace (not installed: apt install bpftrace)");
    }
    if auditd_ready() {
        configs.push(Config::Auditd);
    } else {
        skipped.push("auditd (not installed or not running: apt install auditd)");
    }
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| args.only.is_empty() || args.only.iter().any(|o| o == w.key()))
        .collect();

    for workload in workloads {
        println!("\n### {}\n", workload.name());
        println!(
            "| observer | ops/s (median) | slowdown vs no observer (median of per-round ratios) |"
        );
        println!("|---|---|---|");
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        let mut ward = AgentReport::default();
        let mut ward_secs = 0.0;
        for _ in 0..args.rounds {
            let mut base_time = 0.0;
            for (i, config) in configs.iter().enumerate() {
                let observer = Observer::start(*config, &agent, args.compare_types.as_deref())?;
                let cpu_before = observer.cpu_secs();
                let (elapsed, ops) = workload.run(&args)?;
                let cpu_after = observer.cpu_secs();
                let report = observer.stop()?;
                let secs = elapsed.as_secs_f64();
                if *config == Config::Baseline {
                    base_time = secs;
                }
                rates[i].push(ops as f64 / secs);
                ratios[i].push(secs / base_time);
                if *config == Config::Ward {
                    ward.events += report.events;
                    ward.drops += report.drops;
                    ward.cpu_secs += cpu_after - cpu_before;
                    ward_secs += secs;
                }
            }
        }
        let floor = median(ratios[2].clone());
        for (i, config) in configs.iter().enumerate() {
            let ratio = median(ratios[i].clone());
            let vs_floor = if matches!(config, Config::Ward | Config::WardTypes) {
                format!(" ({:.2}x the floor's)", ratio / floor)
            } else {
                String::new()
            };
            println!(
                "| {} | {:.0} | {:.3}x{vs_floor} |",
                config.name(),
                median(rates[i].clone()),
                ratio
            );
        }
        let per_second = ward.events as f64 / ward_secs;
        let cost = if ward.events >= 1000 {
            let per_1k = ward.cpu_secs * 1000.0 / (ward.events as f64 / 1000.0);
            format!("{per_1k:.2} ms per 1k events ({per_1k:.1}% of a core at 10k events/s)")
        } else {
            "too few events to price them".to_string()
        };
        println!(
            "\nWard delivered {per_second:.0} events/s with {} drops; agent CPU {:.1}% of a core during the run, {cost}.",
            ward.drops,
            ward.cpu_secs / ward_secs * 100.0,
        );
    }
    println!(
        "\nrounds: {}; events include everything else the host did meanwhile; CPU from /proc ticks ({ticks_per_sec}/s)",
        args.rounds
    );
    for s in skipped {
        println!("skipped: {s}");
    }
    Ok(())
}
