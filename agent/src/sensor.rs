//! Loads Ward's eBPF object into the kernel and attaches its programs, with errors that name what the
//! kernel lacks rather than a raw errno.
//!
//! The process programs are required: without them there is no process table. Every other sensor is
//! optional: a hook this kernel does not have (e.g. `init_module` on a kernel built without modules) is
//! reported in [`Sensor::missing`] and the rest runs.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError,
};
use aya::{Btf, Ebpf, EbpfLoader, VerifierLogLevel};
use ward_agent_ebpf::{
    DNS_PROGRAMS, OBJECT, PROCESS_PROGRAMS, SYSCALL_HOOKS, SYSCALL_PROGRAMS, abi, names,
};

use crate::hash::file_key;
use crate::mounts::{self, Mounts};

/// Which reads are worth reporting and which paths are noise, for the file sensor.
#[derive(Clone, Debug)]
pub struct FileWatch {
    /// Files, and directories whose direct children, are sensitive: read opens of them are reported.
    /// Shell-style globs, expanded at start.
    pub sensitive: Vec<String>,
    /// Absolute path prefixes treated as sensitive even when nothing exists there yet (a failed read of
    /// `/etc/shadow` by a user is worth knowing).
    pub sensitive_prefixes: Vec<String>,
    /// Absolute path prefixes whose opens are never reported.
    pub ignore_prefixes: Vec<String>,
}

impl Default for FileWatch {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        FileWatch {
            sensitive: list(&[
                "/etc/shadow",
                "/etc/gshadow",
                "/etc/sudoers",
                "/etc/sudoers.d",
                "/etc/ssh",
                "/root/.ssh",
                "/home/*/.ssh",
                "/root/.aws",
                "/home/*/.aws",
                "/root/.kube",
                "/home/*/.kube",
                "/root/.docker/config.json",
                "/home/*/.docker/config.json",
                "/etc/kubernetes",
                "/etc/kubernetes/pki",
                "/var/run/secrets/kubernetes.io/serviceaccount/*",
                "/var/lib/kubelet/pki",
                "/root/.bash_history",
                "/home/*/.bash_history",
            ]),
            sensitive_prefixes: list(&[
                "/etc/shadow",
                "/etc/gshadow",
                "/etc/sudoers",
                "/root/.ssh/",
                "/root/.aws/",
            ]),
            ignore_prefixes: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SensorConfig {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Pending bytes that trigger a reader wake-up (the reader also polls on a short tick).
    pub wakeup_bytes: u64,
    /// This process: its own activity is filtered out in the kernel.
    pub agent_tgid: u32,
    /// Bit k set: kernel event kind k is recorded. Process kinds are always recorded.
    pub kind_mask: u64,
    pub files: FileWatch,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            ring_bytes: 16 << 20,
            wakeup_bytes: 1 << 20,
            agent_tgid: std::process::id(),
            kind_mask: u64::MAX,
            files: FileWatch::default(),
        }
    }
}

pub struct Sensor {
    ebpf: Ebpf,
    pub mounts: Mounts,
    /// Hooks that could not be attached, each with the reason.
    pub missing: Vec<String>,
    /// Programs attached.
    pub attached: usize,
    /// Sensitive files and directories found on this host.
    pub sensitive_files: usize,
}

/// Checks what every sensor needs before touching the kernel, so the error names the missing piece.
fn preflight(config: &SensorConfig) -> anyhow::Result<()> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): Ward needs CONFIG_DEBUG_INFO_BTF=y"
        );
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!(
            "loading eBPF needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); running as uid {euid}"
        );
    }
    let size = config.ring_bytes;
    if !size.is_power_of_two() || size < 4096 {
        bail!("ring buffer size must be a power of two of at least 4096 bytes, got {size}");
    }
    Ok(())
}

/// Turns a program error into one line: the verifier's last lines when it rejected the program.
fn describe(err: &ProgramError) -> String {
    match err {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            format!(
                "{io_error}; verifier: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
        other => {
            // The io error behind a failed syscall is in the source chain, not in Display.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn enabled(mask: u64, kind: u16) -> bool {
    mask >> kind & 1 == 1
}

impl Sensor {
    pub fn load(config: SensorConfig) -> anyhow::Result<Sensor> {
        let started = std::time::Instant::now();
        preflight(&config)?;
        let mounts = mounts::ensure();
        let btf =
            Btf::from_sys_fs().context("reading the kernel's BTF from /sys/kernel/btf/vmlinux")?;
        let process_kinds =
            (1 << abi::kind::EXEC) | (1 << abi::kind::FORK) | (1 << abi::kind::EXIT);
        let kind_mask = config.kind_mask | process_kinds;
        let ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            // aya's default asks the verifier for its full instruction log, which for these programs is
            // megabytes each and multiplies start-up time; statistics are enough.
            .verifier_log_level(VerifierLogLevel::STATS)
            .map_max_entries(names::EVENTS, config.ring_bytes)
            .override_global(names::AGENT_TGID, &config.agent_tgid, true)
            .override_global(names::WAKEUP_BYTES, &config.wakeup_bytes, true)
            .override_global(names::KIND_MASK, &kind_mask, true)
            .load(OBJECT)
            .context("loading Ward's eBPF object (maps and CO-RE relocations)")?;
        let mut sensor = Sensor {
            ebpf,
            mounts,
            missing: Vec::new(),
            attached: 0,
            sensitive_files: 0,
        };
        tracing::debug!("object loaded after {:?}", started.elapsed());
        sensor.attach_process(&btf)?;
        sensor.sensitive_files = sensor.configure_files(&config.files)?;
        tracing::debug!("process programs attached after {:?}", started.elapsed());
        sensor.attach_syscalls(&btf, kind_mask);
        tracing::debug!("syscall programs attached after {:?}", started.elapsed());
        if enabled(kind_mask, abi::kind::DNS) {
            sensor.attach_dns();
        }
        tracing::debug!("sensor ready after {:?}", started.elapsed());
        Ok(sensor)
    }

    fn attach_process(&mut self, btf: &Btf) -> anyhow::Result<()> {
        for (name, hook) in PROCESS_PROGRAMS {
            let program: &mut BtfTracePoint = self
                .ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} missing from the object"))?
                .try_into()
                .with_context(|| format!("program {name} is not a tp_btf program"))?;
            program.load(hook, btf).map_err(|e| {
                anyhow::anyhow!("this kernel cannot load tp_btf/{hook} (BTF-enabled tracepoints, Linux 5.5+): {}", describe(&e))
            })?;
            program
                .attach()
                .map_err(|e| anyhow::anyhow!("cannot attach tp_btf/{hook}: {}", describe(&e)))?;
            self.attached += 1;
        }
        Ok(())
    }

    /// The syscall sensor, when any of its kinds is wanted.
    fn attach_syscalls(&mut self, btf: &Btf, kind_mask: u64) {
        if !SYSCALL_HOOKS
            .iter()
            .any(|(_, kind)| enabled(kind_mask, *kind))
        {
            return;
        }
        for (name, hook) in SYSCALL_PROGRAMS {
            let attached = (|| -> Result<(), String> {
                let program: &mut BtfTracePoint = self
                    .ebpf
                    .program_mut(name)
                    .ok_or("missing from the object")?
                    .try_into()
                    .map_err(|e: ProgramError| e.to_string())?;
                program.load(hook, btf).map_err(|e| describe(&e))?;
                program.attach().map_err(|e| describe(&e))?;
                Ok(())
            })();
            match attached {
                Ok(()) => self.attached += 1,
                Err(reason) => {
                    self.missing.push(format!(
                        "tp_btf/{hook} (file, network, privilege sensors): {reason}"
                    ));
                    return;
                }
            }
        }
    }

    fn attach_dns(&mut self) {
        let Some(root) = self.mounts.cgroup2.clone() else {
            self.missing
                .push("DNS sensor: no cgroup2 mount to attach cgroup_skb programs to".into());
            return;
        };
        let cgroup = match File::open(&root) {
            Ok(f) => f,
            Err(e) => {
                self.missing
                    .push(format!("DNS sensor: cannot open {}: {e}", root.display()));
                return;
            }
        };
        for (name, egress) in DNS_PROGRAMS {
            let direction = if egress {
                CgroupSkbAttachType::Egress
            } else {
                CgroupSkbAttachType::Ingress
            };
            let attached = (|| -> Result<(), String> {
                let program: &mut CgroupSkb = self
                    .ebpf
                    .program_mut(name)
                    .ok_or("missing from the object")?
                    .try_into()
                    .map_err(|e: ProgramError| e.to_string())?;
                program.load().map_err(|e| describe(&e))?;
                // Single: aya 0.14 passes other modes as link flags, which the kernel rejects; links
                // attached to the same cgroup coexist anyway.
                program
                    .attach(&cgroup, direction, CgroupAttachMode::Single)
                    .map_err(|e| describe(&e))?;
                Ok(())
            })();
            match attached {
                Ok(()) => self.attached += 1,
                Err(reason) => self
                    .missing
                    .push(format!("cgroup_skb {name} on {}: {reason}", root.display())),
            }
        }
    }

    /// Fills the file sensor's maps; returns how many sensitive files and directories exist here.
    fn configure_files(&mut self, files: &FileWatch) -> anyhow::Result<usize> {
        let mut sensitive: BpfHashMap<&mut MapData, [u64; 2], u8> = BpfHashMap::try_from(
            self.ebpf
                .map_mut(names::SENSITIVE_FILES)
                .context("SENSITIVE_FILES map")?,
        )?;
        let mut count = 0;
        for pattern in &files.sensitive {
            let Ok(paths) = glob::glob(pattern) else {
                bail!("invalid sensitive-file pattern {pattern:?}");
            };
            for path in paths.flatten() {
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let id = file_key(&meta);
                // struct file_key { u32 dev; u32 pad; u64 ino; } as two u64 words, little-endian.
                sensitive.insert([u64::from(id.dev), id.ino], 1, 0)?;
                count += 1;
            }
        }
        let mut rules: LpmTrie<&mut MapData, [u8; abi::STR_LEN], u8> = LpmTrie::try_from(
            self.ebpf
                .map_mut(names::PATH_RULES)
                .context("PATH_RULES map")?,
        )?;
        let rules_of = [
            (&files.sensitive_prefixes, 1u8),
            (&files.ignore_prefixes, 2u8),
        ];
        for (prefixes, rule) in rules_of {
            for prefix in prefixes {
                if !prefix.starts_with('/') || prefix.len() >= abi::STR_LEN {
                    bail!(
                        "path prefix {prefix:?} must be absolute and shorter than {} bytes",
                        abi::STR_LEN
                    );
                }
                let mut data = [0u8; abi::STR_LEN];
                data[..prefix.len()].copy_from_slice(prefix.as_bytes());
                rules.insert(&Key::new(8 * prefix.len() as u32, data), rule, 0)?;
            }
        }
        Ok(count)
    }

    /// The ring buffer the programs write into (can be taken once).
    pub fn take_ring(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(names::EVENTS)
            .context("ring buffer already taken")?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Records the kernel could not fit in the ring, per event kind, summed over CPUs.
    pub fn drops(&self) -> anyhow::Result<Vec<u64>> {
        let map = self
            .ebpf
            .map(names::DROPS)
            .context("drop counter map missing")?;
        let drops: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)?;
        (0..abi::kind::COUNT)
            .map(|k| Ok(drops.get(&k, 0)?.iter().sum()))
            .collect()
    }
}

/// The benchmark floor: the syscall sensor's hooks doing nothing but counting (`ward-agent count-only`).
pub struct CountOnly {
    ebpf: Ebpf,
}

impl CountOnly {
    pub fn load() -> anyhow::Result<CountOnly> {
        preflight(&SensorConfig::default())?;
        let btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .verifier_log_level(VerifierLogLevel::STATS)
            .load(OBJECT)?;
        for (name, hook) in [
            ("ward_floor_exit", "sys_exit"),
            ("ward_floor_enter", "sys_enter"),
        ] {
            let program: &mut BtfTracePoint = ebpf.program_mut(name).context(name)?.try_into()?;
            program
                .load(hook, &btf)
                .map_err(|e| anyhow::anyhow!("{name}: {}", describe(&e)))?;
            program.attach()?;
        }
        Ok(CountOnly { ebpf })
    }

    /// Syscall entries and exits counted so far.
    pub fn counts(&self) -> anyhow::Result<[u64; 2]> {
        let map = self.ebpf.map("FLOOR_COUNTS").context("FLOOR_COUNTS map")?;
        let counts: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)?;
        Ok([
            counts.get(&0, 0)?.iter().sum(),
            counts.get(&1, 0)?.iter().sum(),
        ])
    }
}
