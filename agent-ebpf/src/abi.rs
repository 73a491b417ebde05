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
    /// Number of per-kind drop counters.
    pub const COUNT: u32 = 32;
}

/// `enum ward_exec_flags`.
pub mod exec_flags {
    pub const ARGS_TRUNCATED: u16 = 1 << 0;
    pub const FILENAME_TRUNCATED: u16 = 1 << 1;
    pub const CWD_TRUNCATED: u16 = 1 << 2;
    pub const CGROUP_TRUNCATED: u16 = 1 << 3;
    pub const CGROUP_V1_TRUNCATED: u16 = 1 << 4;
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
unsafe impl Record for ForkEvent {}
unsafe impl Record for ExitEvent {}
