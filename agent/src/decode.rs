//! Raw ring-buffer records to typed kernel events. Every record is checked against its kind's size before
//! it is read; a record that does not fit is an error the caller counts, never a panic.

use std::fmt;

use ward_agent_ebpf::abi::{
    self, ExecEvent, ExitEvent, FileId, ForkEvent, Header, Record, exec_flags, kind,
};

#[derive(Debug)]
pub enum KernelEvent {
    Exec(Box<Exec>),
    Fork(Fork),
    Exit(Exit),
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
        other => Err(DecodeError::UnknownKind(other)),
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
        hdr[0] = 31;
        assert_eq!(decode(&hdr).unwrap_err(), DecodeError::UnknownKind(31));
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
