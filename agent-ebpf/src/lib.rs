//! Ward's kernel side, as the agent sees it: the compiled CO-RE object (built from `bpf/*.bpf.c` by
//! `cargo xtask build-ebpf` and committed, so building the agent needs no clang) and the `#[repr(C)]`
//! mirrors of its event ABI (`bpf/ward_abi.h`).

pub mod abi;

/// The compiled eBPF object, aligned as aya's ELF parser needs.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!("../ward.bpf.o");

/// Names of the programs in [`OBJECT`] and the tp_btf hook each attaches to.
pub const PROCESS_PROGRAMS: [(&str, &str); 3] = [
    ("ward_exec", "sched_process_exec"),
    ("ward_fork", "sched_process_fork"),
    ("ward_exit", "sched_process_exit"),
];

/// Map and global names shared with the C side.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const DROPS: &str = "DROPS";
    pub const AGENT_TGID: &str = "agent_tgid";
    pub const WAKEUP_BYTES: &str = "wakeup_bytes";
}
