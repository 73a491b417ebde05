//! Loads Ward's eBPF object into the kernel and attaches its programs, with errors that name what the
//! kernel lacks rather than a raw errno.

use std::path::Path;

use anyhow::{Context, bail};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, ProgramError};
use aya::{Btf, Ebpf, EbpfLoader};
use ward_agent_ebpf::{OBJECT, PROCESS_PROGRAMS, abi, names};

use crate::mounts::{self, Mounts};

#[derive(Clone, Copy, Debug)]
pub struct SensorConfig {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Pending bytes that trigger a reader wake-up (the reader also polls on a short tick).
    pub wakeup_bytes: u64,
    /// This process: its own activity is filtered out in the kernel.
    pub agent_tgid: u32,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            ring_bytes: 16 << 20,
            wakeup_bytes: 1 << 20,
            agent_tgid: std::process::id(),
        }
    }
}

pub struct Sensor {
    ebpf: Ebpf,
    pub mounts: Mounts,
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
        other => other.to_string(),
    }
}

impl Sensor {
    pub fn load(config: SensorConfig) -> anyhow::Result<Sensor> {
        preflight(&config)?;
        let mounts = mounts::ensure();
        let btf =
            Btf::from_sys_fs().context("reading the kernel's BTF from /sys/kernel/btf/vmlinux")?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries(names::EVENTS, config.ring_bytes)
            .override_global(names::AGENT_TGID, &config.agent_tgid, true)
            .override_global(names::WAKEUP_BYTES, &config.wakeup_bytes, true)
            .load(OBJECT)
            .context("loading Ward's eBPF object (maps and CO-RE relocations)")?;
        for (name, hook) in PROCESS_PROGRAMS {
            let program: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} missing from the object"))?
                .try_into()
                .with_context(|| format!("program {name} is not a tp_btf program"))?;
            program.load(hook, &btf).map_err(|e| {
                anyhow::anyhow!("this kernel cannot load tp_btf/{hook} (BTF-enabled tracepoints, Linux 5.5+): {}", describe(&e))
            })?;
            program
                .attach()
                .map_err(|e| anyhow::anyhow!("cannot attach tp_btf/{hook}: {}", describe(&e)))?;
        }
        Ok(Sensor { ebpf, mounts })
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
