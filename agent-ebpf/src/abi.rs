//! `#[repr(C)]` mirrors of `bpf/ward_abi.h`. The `abi_layout` test checks sizes and field offsets against
//! the BTF of the compiled object, so the two cannot drift apart silently.

pub const COMM_LEN: usize = 16;
pub const FILENAME_LEN: usize = 512;
pub const ARGS_LEN: usize = 4096;
pub const PATH_LEN: usize = 1024;
pub const CGROUP_LEN: usize = 512;

/// `enum ward_event_kind`.
pub mod kind {
    pub const EXEC: u16 = 1;
    pub const FORK: u16 = 2;
    pub const EXIT: u16 = 3;
    pub const DNS: u16 = 4;
    pub const OPEN: u16 = 8;
    pub const UNLINK: u16 = 9;
    pub const RENAME: u16 = 10;
    pub const LINK: u16 = 11;
    pub const SYMLINK: u16 = 12;
    pub const CHMOD: u16 = 13;
    pub const CHOWN: u16 = 14;
    pub const TRUNCATE: u16 = 15;
    pub const SETXATTR: u16 = 16;
    pub const CONNECT: u16 = 17;
    pub const ACCEPT: u16 = 18;
    pub const BIND: u16 = 19;
    pub const LISTEN: u16 = 20;
    pub const DUP: u16 = 21;
    pub const SETID: u16 = 22;
    pub const CAPSET: u16 = 23;
    pub const PTRACE: u16 = 24;
    pub const VM_ACCESS: u16 = 25;
    pub const MEMFD: u16 = 26;
    pub const USERFAULTFD: u16 = 27;
    pub const MODULE: u16 = 28;
    pub const BPF: u16 = 29;
    pub const MOUNT: u16 = 30;
    pub const NAMESPACE: u16 = 31;
    pub const MEMORY_EXEC: u16 = 32;
    pub const LIBRARY_LOAD: u16 = 33;
    /// Number of per-kind drop counters (and bits of the kind mask).
    pub const COUNT: u32 = 64;
    /// Syscall-record kinds.
    pub const SYSCALLS: std::ops::RangeInclusive<u16> = OPEN..=LIBRARY_LOAD;
}

/// `enum ward_exec_flags`.
pub mod exec_flags {
    pub const ARGS_TRUNCATED: u16 = 1 << 0;
    pub const FILENAME_TRUNCATED: u16 = 1 << 1;
    pub const CWD_TRUNCATED: u16 = 1 << 2;
    pub const CGROUP_TRUNCATED: u16 = 1 << 3;
    pub const CGROUP_V1_TRUNCATED: u16 = 1 << 4;
    pub const STDIO_SOCKET: u16 = 1 << 5;
}

/// `enum ward_syscall_flags`.
pub mod syscall_flags {
    pub const RESOLVED_FILE: u16 = 1 << 0;
    pub const RESOLVED_BASE: u16 = 1 << 1;
    pub const RESOLVED_TRUNCATED: u16 = 1 << 2;
    pub const SOCKET: u16 = 1 << 3;
    pub const STR0_RAW: u16 = 1 << 4;
}

pub const STR_LEN: usize = 256;
pub const DNS_PAYLOAD: usize = 512;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Socket {
    pub family: u16,
    pub sock_type: u16,
    pub protocol: u16,
    pub sport: u16,
    pub dport: u16,
    pub _pad: [u16; 3],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub kind: u16,
    pub flags: u16,
    pub cpu: u32,
    pub time_ns: u64,
    pub pid: u32,
    pub tgid: u32,
    pub start_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Task {
    pub ppid: u32,
    pub ns_pid: u32,
    pub parent_start_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub loginuid: u32,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    pub net_ns: u32,
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    /// Kernel dev_t: major in the top 12 bits, minor in the low 20.
    pub dev: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub hdr: Header,
    pub task: Task,
    pub exe: FileId,
    pub exe_mode: u32,
    pub exe_nlink: u32,
    pub exe_fs_magic: u64,
    pub stdio_sockets: u32,
    pub _pad2: u32,
    pub stdio_socket: Socket,
    pub filename_len: u32,
    pub args_len: u32,
    pub cwd_len: u32,
    pub cgroup_len: u32,
    pub cgroup_v1_len: u32,
    pub _pad: u32,
    pub filename: [u8; FILENAME_LEN],
    pub cwd: [u8; PATH_LEN],
    pub cgroup: [u8; CGROUP_LEN],
    pub cgroup_v1: [u8; CGROUP_LEN],
    pub args: [u8; ARGS_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub hdr: Header,
    pub parent_pid: u32,
    pub parent_tgid: u32,
    pub parent_start_ns: u64,
    pub ns_pid: u32,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    pub net_ns: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub hdr: Header,
    pub exit_code: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallEvent {
    pub hdr: Header,
    pub ret: i64,
    pub args: [u64; 6],
    pub syscall: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub str_len: [u32; 3],
    pub resolved_len: u32,
    pub file_mode: u32,
    pub file_ino: u64,
    pub file_dev: u32,
    pub _pad: u32,
    pub sock: Socket,
    pub str: [[u8; STR_LEN]; 3],
    pub resolved: [u8; PATH_LEN],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct DnsEvent {
    pub hdr: Header,
    pub cookie: u64,
    pub egress: u32,
    pub len: u32,
    pub captured: u32,
    pub _pad: u32,
    pub sock: Socket,
    pub payload: [u8; DNS_PAYLOAD],
}

/// A record type that may be read from raw ring-buffer bytes: plain integers and byte arrays, no padding
/// with meaning, any bit pattern valid.
///
/// # Safety
/// Implementors must be `#[repr(C)]` and consist only of integer fields and integer arrays.
pub unsafe trait Record: Copy {
    /// Copies a record out of `bytes`, or `None` when they are too short.
    fn read(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<Self>() {
            return None;
        }
        // SAFETY: length checked above; read_unaligned copes with the ring's 8-byte alignment; every bit
        // pattern is a valid value for the implementing types (see the trait's safety contract).
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

// SAFETY: all four are repr(C) structs of integers and integer arrays.
unsafe impl Record for Header {}
unsafe impl Record for ExecEvent {}
unsafe impl Record for FileId {}
unsafe impl Record for SyscallEvent {}
unsafe impl Record for DnsEvent {}
unsafe impl Record for ForkEvent {}
unsafe impl Record for ExitEvent {}
