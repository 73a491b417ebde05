//! `cargo xtask bench agent`: what the agent costs the host and what it delivers.
//!
//! Each workload runs alternately without and with `ward-agent watch` (output to /dev/null), several rounds
//! in the same run, so the slowdown is a ratio of medians measured under the same machine noise. The agent's
//! CPU comes from its own /proc stat ticks between "ready" and the end of the workload; events and drops
//! from its shutdown summary.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Rounds of (baseline, agent) per workload; medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Execs per exec-storm round.
    #[arg(long, default_value_t = 1_000)]
    execs: usize,
    /// Processes per fork-storm round (fork + immediate exit, two forking threads).
    #[arg(long, default_value_t = 10_000)]
    forks: usize,
    /// open+close pairs per open-storm round.
    #[arg(long, default_value_t = 200_000)]
    opens: usize,
}

#[derive(Clone, Copy)]
enum Workload {
    Exec,
    Fork,
    Open,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Exec => "exec storm",
            Workload::Fork => "fork storm",
            Workload::Open => "open storm",
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
            Workload::Open => {
                let path = std::ffi::CString::new("/etc/hostname")?;
                for _ in 0..args.opens {
                    // SAFETY: valid path; the fd is closed right away.
                    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
                    if fd < 0 {
                        bail!("open /etc/hostname: {}", std::io::Error::last_os_error());
                    }
                    // SAFETY: fd was just opened by us.
                    unsafe { libc::close(fd) };
                }
                args.opens
            }
        };
        Ok((start.elapsed(), ops))
    }
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

struct AgentRun {
    child: Child,
    stderr: BufReader<std::process::ChildStderr>,
}

impl AgentRun {
    fn start(bin: &PathBuf) -> anyhow::Result<AgentRun> {
        let mut child = Command::new(bin)
            .arg("watch")
            .stdout(Stdio::from(std::fs::File::create("/dev/null")?))
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        while !line.contains("ward-agent: ready") {
            line.clear();
            if stderr.read_line(&mut line)? == 0 {
                bail!("ward-agent exited before it was ready (run as root)");
            }
        }
        Ok(AgentRun { child, stderr })
    }

    /// User+system CPU ticks the agent has used so far.
    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let after_comm = &stat[stat.rfind(')').context("malformed stat")? + 2..];
        let fields: Vec<&str> = after_comm.split(' ').collect();
        Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
    }

    /// Stops the agent and returns (events, drops) from its summary line.
    fn stop(mut self) -> anyhow::Result<(u64, u64)> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest)?;
        self.child.wait()?;
        let summary = rest
            .lines()
            .find(|l| l.contains("stopped after"))
            .context("no summary from ward-agent")?;
        let number_before = |tag: &str| -> anyhow::Result<u64> {
            let at = summary
                .find(tag)
                .with_context(|| format!("{tag:?} missing in {summary:?}"))?;
            let digits: String = summary[..at]
                .trim_end()
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect();
            Ok(digits.chars().rev().collect::<String>().parse()?)
        };
        let drops_at =
            summary.find("kernel drops ").context("drops missing")? + "kernel drops ".len();
        let drops: String = summary[drops_at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Ok((number_before(" events (")?, drops.parse()?))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench agent loads eBPF: run it as root");
    }
    let root = crate::workspace_root();
    crate::cargo(&["build", "--release", "-p", "ward-agent"], &[])?;
    let bin = root.join("target/release/ward-agent");
    // SAFETY: sysconf has no preconditions.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;

    println!(
        "| workload | ops/s without agent | ops/s with agent | slowdown (median ratio) | events delivered/s | drops | agent CPU ms per 1k events | agent CPU at 10k events/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for workload in [Workload::Exec, Workload::Fork, Workload::Open] {
        let (mut base, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut events, mut drops, mut cpu_s, mut agent_secs) = (0u64, 0u64, 0f64, 0f64);
        for _ in 0..args.rounds {
            let (t0, ops) = workload.run(&args)?;
            let agent = AgentRun::start(&bin)?;
            let cpu_before = agent.cpu_ticks()?;
            let (t1, _) = workload.run(&args)?;
            let cpu_after = agent.cpu_ticks()?;
            let (n, d) = agent.stop()?;
            base.push(ops as f64 / t0.as_secs_f64());
            with.push(ops as f64 / t1.as_secs_f64());
            ratios.push(t1.as_secs_f64() / t0.as_secs_f64());
            events += n;
            drops += d;
            cpu_s += (cpu_after - cpu_before) as f64 / ticks_per_sec;
            agent_secs += t1.as_secs_f64();
        }
        let cpu_ms_per_1k = cpu_s * 1000.0 / (events.max(1) as f64 / 1000.0);
        println!(
            "| {} | {:.0} | {:.0} | {:.3}x | {:.0} | {} | {:.1}% | {:.2} ms | {:.1}% of a core |",
            workload.name(),
            median(base),
            median(with),
            median(ratios),
            events as f64 / agent_secs,
            drops,
            cpu_s / agent_secs * 100.0,
            cpu_ms_per_1k,
            // 10k events/s cost 10 x (ms per 1k) ms of CPU each second.
            cpu_ms_per_1k * 10.0 / 1000.0 * 100.0,
        );
    }
    println!(
        "\nrounds: {}; events include everything else the host did meanwhile; CPU from /proc ticks ({}/s)",
        args.rounds, ticks_per_sec
    );
    Ok(())
}
