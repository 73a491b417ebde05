//! Raw ring-buffer records to typed kernel events. Every record is checked against its kind's size before
//! it is read; a record that does not fit is an error the caller counts, never a panic.

use std::fmt;

use ward_agent_ebpf::abi::{
    self, DnsEvent, ExecEvent, ExitEvent, FileId, ForkEvent, Header, Record, SyscallEvent,
    exec_flags, kind, syscall_flags,
};

#[derive(Debug)]
pub enum KernelEvent {
    Exec(Box<Exec>),
    Fork(Fork),
    Exit(Exit),
    Syscall(Box<Syscall>),
    Dns(Box<Dns>),
}

/// A watched syscall with its result (see `ward_syscall_event`).
#[derive(Debug)]
pub struct Syscall {
    pub hdr: Header,
    pub ret: i64,
    pub args: [u64; 6],
    pub nr: u32,
    /// uid, euid, gid, egid after the call.
    pub creds: [u32; 4],
    /// User strings; `raw` holds string 0 when it is a struct (a sockaddr, a bpf attribute).
    pub strs: [Option<String>; 3],
    pub raw: Option<Vec<u8>>,
    pub resolved: Option<Resolved>,
    pub socket: Option<abi::Socket>,
}

/// What the kernel resolved for a syscall: the file acted on, or the directory a relative path is under.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub path: String,
    pub is_base: bool,
    pub truncated: bool,
    pub mode: u32,
    pub ino: u64,
    pub dev: u32,
}

#[derive(Debug)]
pub struct Dns {
    pub hdr: Header,
    pub egress: bool,
    pub len: u32,
    pub socket: abi::Socket,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct Exec {
    pub hdr: Header,
    pub task: abi::Task,
    /// Identity of the executed file (the hash cache key).
    pub exe: FileId,
    pub comm: String,
    pub filename: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub cgroup: String,
    /// The memory controller's cgroup path (differs from `cgroup` on hybrid v1+v2 hosts).
    pub cgroup_v1: String,
    pub exe_mode: u32,
    pub exe_nlink: u32,
    /// The socket on stdin, stdout or stderr (the first of them), and which of the three are sockets.
    pub stdio_socket: Option<abi::Socket>,
    pub stdio_sockets: u32,
    pub args_truncated: bool,
    pub filename_truncated: bool,
    pub cwd_truncated: bool,
    pub cgroup_truncated: bool,
}

#[derive(Debug)]
pub struct Fork {
    pub hdr: Header,
    pub parent_tgid: u32,
    pub parent_start_ns: u64,
    pub ns_pid: u32,
    pub namespaces: [u32; 3],
    pub comm: String,
}

#[derive(Debug)]
pub struct Exit {
    pub hdr: Header,
    pub status: u32,
    pub comm: String,
}

impl KernelEvent {
    pub fn header(&self) -> &Header {
        match self {
            KernelEvent::Exec(e) => &e.hdr,
            KernelEvent::Fork(e) => &e.hdr,
            KernelEvent::Exit(e) => &e.hdr,
            KernelEvent::Syscall(e) => &e.hdr,
            KernelEvent::Dns(e) => &e.hdr,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    Short { kind: u16, len: usize, need: usize },
    UnknownKind(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short { kind, len, need } => {
                write!(f, "record of kind {kind} is {len} bytes, need {need}")
            }
            DecodeError::UnknownKind(k) => write!(f, "unknown record kind {k}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn read<T: Record>(bytes: &[u8], kind: u16) -> Result<T, DecodeError> {
    T::read(bytes).ok_or(DecodeError::Short {
        kind,
        len: bytes.len(),
        need: size_of::<T>(),
    })
}

pub fn decode(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let hdr: Header = read(bytes, 0)?;
    match hdr.kind {
        kind::EXEC => {
            let e: ExecEvent = read(bytes, hdr.kind)?;
            Ok(KernelEvent::Exec(Box::new(Exec {
                hdr,
                task: e.task,
                exe: e.exe,
                comm: c_string(&e.task.comm),
                filename: lossy(bounded(&e.filename, e.filename_len)),
                args: split_nul(bounded(&e.args, e.args_len)),
                cwd: leaf_first_path(bounded(&e.cwd, e.cwd_len)),
                cgroup: leaf_first_path(bounded(&e.cgroup, e.cgroup_len)),
                cgroup_v1: leaf_first_path(bounded(&e.cgroup_v1, e.cgroup_v1_len)),
                exe_mode: e.exe_mode,
                exe_nlink: e.exe_nlink,
                stdio_socket: (hdr.flags & exec_flags::STDIO_SOCKET != 0).then_some(e.stdio_socket),
                stdio_sockets: e.stdio_sockets,
                args_truncated: hdr.flags & exec_flags::ARGS_TRUNCATED != 0,
                filename_truncated: hdr.flags & exec_flags::FILENAME_TRUNCATED != 0,
                cwd_truncated: hdr.flags & exec_flags::CWD_TRUNCATED != 0,
                cgroup_truncated: hdr.flags & exec_flags::CGROUP_TRUNCATED != 0,
            })))
        }
        kind::FORK => {
            let e: ForkEvent = read(bytes, hdr.kind)?;
            Ok(KernelEvent::Fork(Fork {
                hdr,
                parent_tgid: e.parent_tgid,
                parent_start_ns: e.parent_start_ns,
                ns_pid: e.ns_pid,
                namespaces: [e.pid_ns, e.mnt_ns, e.net_ns],
                comm: c_string(&e.comm),
            }))
        }
        kind::EXIT => {
            let e: ExitEvent = read(bytes, hdr.kind)?;
            Ok(KernelEvent::Exit(Exit {
                hdr,
                status: e.exit_code,
                comm: c_string(&e.comm),
            }))
        }
        kind::DNS => {
            let e: DnsEvent = read(bytes, hdr.kind)?;
            let payload = bounded(&e.payload, e.captured).to_vec();
            Ok(KernelEvent::Dns(Box::new(Dns {
                hdr,
                egress: e.egress != 0,
                len: e.len,
                socket: e.sock,
                payload,
            })))
        }
        k if kind::SYSCALLS.contains(&k) => Ok(KernelEvent::Syscall(Box::new(syscall(
            hdr,
            read(bytes, k)?,
        )))),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

fn syscall(hdr: Header, e: SyscallEvent) -> Syscall {
    let raw0 = hdr.flags & syscall_flags::STR0_RAW != 0;
    let text = |i: usize| (e.str_len[i] > 0).then(|| lossy(bounded(&e.str[i], e.str_len[i])));
    let resolved_flags = syscall_flags::RESOLVED_FILE | syscall_flags::RESOLVED_BASE;
    Syscall {
        hdr,
        ret: e.ret,
        args: e.args,
        nr: e.syscall,
        creds: [e.uid, e.euid, e.gid, e.egid],
        strs: [if raw0 { None } else { text(0) }, text(1), text(2)],
        raw: raw0.then(|| bounded(&e.str[0], e.str_len[0]).to_vec()),
        resolved: (hdr.flags & resolved_flags != 0).then(|| Resolved {
            path: leaf_first_path(bounded(&e.resolved, e.resolved_len)),
            is_base: hdr.flags & syscall_flags::RESOLVED_BASE != 0,
            truncated: hdr.flags & syscall_flags::RESOLVED_TRUNCATED != 0,
            mode: e.file_mode,
            ino: e.file_ino,
            dev: e.file_dev,
        }),
        socket: (hdr.flags & syscall_flags::SOCKET != 0).then_some(e.sock),
    }
}

/// The first `len` bytes of a fixed buffer, never past its end whatever the kernel wrote in `len`.
fn bounded(buf: &[u8], len: u32) -> &[u8] {
    &buf[..buf.len().min(len as usize)]
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A NUL-terminated string in a fixed buffer.
pub fn c_string(buf: &[u8]) -> String {
    lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(buf.len())])
}

/// argv as the kernel lays it out: strings back to back, each NUL-terminated (the last may be cut short).
pub fn split_nul(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(lossy).collect()
}

/// Joins leaf-first NUL-separated components into an absolute path (`/` when there are none).
pub fn leaf_first_path(bytes: &[u8]) -> String {
    let mut path = String::with_capacity(bytes.len() + 1);
    for component in bytes.split(|&b| b == 0).filter(|c| !c.is_empty()).rev() {
        path.push('/');
        path.push_str(&String::from_utf8_lossy(component));
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_splitting() {
        assert_eq!(split_nul(b"ls\0-la\0/tmp\0"), ["ls", "-la", "/tmp"]);
        assert_eq!(split_nul(b"sh\0\0x\0"), ["sh", "", "x"]);
        assert_eq!(split_nul(b"cut-sho"), ["cut-sho"]);
        assert!(split_nul(b"").is_empty());
    }

    #[test]
    fn leaf_first_paths() {
        assert_eq!(leaf_first_path(b"c\0b\0a\0"), "/a/b/c");
        assert_eq!(leaf_first_path(b""), "/");
        assert_eq!(leaf_first_path(b"only\0"), "/only");
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(
            decode(&[0u8; 4]),
            Err(DecodeError::Short { kind: 0, .. })
        ));
        let mut hdr = [0u8; size_of::<Header>()];
        hdr[0] = kind::EXEC as u8;
        assert!(matches!(
            decode(&hdr),
            Err(DecodeError::Short {
                kind: kind::EXEC,
                ..
            })
        ));
        for unknown in [5, 63] {
            hdr[0] = unknown;
            assert_eq!(
                decode(&hdr).unwrap_err(),
                DecodeError::UnknownKind(unknown as u16)
            );
        }
    }

    #[test]
    fn lengths_beyond_the_buffer_are_clamped() {
        // SAFETY: ExecEvent is plain integers and arrays; all-zero is a valid value.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.hdr.kind = kind::EXEC;
        e.filename_len = u32::MAX;
        e.filename[..4].copy_from_slice(b"/bin");
        // SAFETY: reading the bytes of a repr(C) value of the size we pass.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&e as *const ExecEvent).cast::<u8>(),
                size_of::<ExecEvent>(),
            )
        };
        let KernelEvent::Exec(exec) = decode(bytes).unwrap() else {
            panic!("not an exec")
        };
        assert_eq!(exec.filename.len(), abi::FILENAME_LEN);
        assert!(exec.filename.starts_with("/bin"));
    }
}
