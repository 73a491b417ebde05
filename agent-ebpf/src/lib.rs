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

/// Every syscall the `ward_sys_enter`/`ward_sys_exit` programs watch, and the event kind it records.
pub const SYSCALL_HOOKS: &[(&str, u16)] = {
    use abi::kind::*;
    &[
        ("open", OPEN),
        ("openat", OPEN),
        ("openat2", OPEN),
        ("creat", OPEN),
        ("unlink", UNLINK),
        ("unlinkat", UNLINK),
        ("rename", RENAME),
        ("renameat", RENAME),
        ("renameat2", RENAME),
        ("link", LINK),
        ("linkat", LINK),
        ("symlink", SYMLINK),
        ("symlinkat", SYMLINK),
        ("chmod", CHMOD),
        ("fchmod", CHMOD),
        ("fchmodat", CHMOD),
        ("fchmodat2", CHMOD),
        ("chown", CHOWN),
        ("lchown", CHOWN),
        ("fchown", CHOWN),
        ("fchownat", CHOWN),
        ("truncate", TRUNCATE),
        ("ftruncate", TRUNCATE),
        ("setxattr", SETXATTR),
        ("lsetxattr", SETXATTR),
        ("fsetxattr", SETXATTR),
        ("connect", CONNECT),
        ("accept", ACCEPT),
        ("accept4", ACCEPT),
        ("bind", BIND),
        ("listen", LISTEN),
        ("dup2", DUP),
        ("dup3", DUP),
        ("setuid", SETID),
        ("setgid", SETID),
        ("setreuid", SETID),
        ("setregid", SETID),
        ("setresuid", SETID),
        ("setresgid", SETID),
        ("setfsuid", SETID),
        ("setfsgid", SETID),
        ("capset", CAPSET),
        ("ptrace", PTRACE),
        ("process_vm_readv", VM_ACCESS),
        ("process_vm_writev", VM_ACCESS),
        ("memfd_create", MEMFD),
        ("userfaultfd", USERFAULTFD),
        ("init_module", MODULE),
        ("finit_module", MODULE),
        ("bpf", BPF),
        ("mount", MOUNT),
        ("unshare", NAMESPACE),
        ("setns", NAMESPACE),
        ("mprotect", MEMORY_EXEC),
        ("mmap", MEMORY_EXEC),
        ("mmap", LIBRARY_LOAD),
    ]
};

/// The syscall sensor's programs and the tp_btf hooks they attach to, exit first: an argument kept at enter
/// must always have an exit to consume it.
pub const SYSCALL_PROGRAMS: [(&str, &str); 2] = [
    ("ward_sys_exit", "sys_exit"),
    ("ward_sys_enter", "sys_enter"),
];

/// The cgroup_skb programs of the DNS sensor: (program, true for egress).
pub const DNS_PROGRAMS: [(&str, bool); 2] =
    [("ward_dns_egress", true), ("ward_dns_ingress", false)];

/// Map and global names shared with the C side.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const DROPS: &str = "DROPS";
    pub const AGENT_TGID: &str = "agent_tgid";
    pub const WAKEUP_BYTES: &str = "wakeup_bytes";
    pub const KIND_MASK: &str = "kind_mask";
    pub const SENSITIVE_FILES: &str = "SENSITIVE_FILES";
    pub const PATH_RULES: &str = "PATH_RULES";
}
