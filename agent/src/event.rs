//! The agent's output event model (one JSON object per event, documented in README "Event schema").

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::proctable::{Ancestor, Process};

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum EventType {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl EventType {
            pub const ALL: &[EventType] = &[$(EventType::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    ProcessExec => "process_exec",
    ProcessFork => "process_fork",
    ProcessExit => "process_exit",
    FileOpen => "file_open",
    FileUnlink => "file_unlink",
    FileRename => "file_rename",
    FileLink => "file_link",
    FileSymlink => "file_symlink",
    FileChmod => "file_chmod",
    FileChown => "file_chown",
    FileTruncate => "file_truncate",
    FileSetxattr => "file_setxattr",
    NetConnect => "net_connect",
    NetAccept => "net_accept",
    NetBind => "net_bind",
    NetListen => "net_listen",
    NetStdioSocket => "net_stdio_socket",
    DnsQuery => "dns_query",
    DnsResponse => "dns_response",
    PrivSetid => "priv_setid",
    PrivCapset => "priv_capset",
    Ptrace => "ptrace",
    ProcessVmAccess => "process_vm_access",
    MemfdCreate => "memfd_create",
    Userfaultfd => "userfaultfd",
    ModuleLoad => "module_load",
    BpfLoad => "bpf_load",
    Mount => "mount",
    Namespace => "namespace",
    MemoryExec => "memory_exec",
    LibraryLoad => "library_load",
    EventLoss => "event_loss",
}

impl EventType {
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Index into per-type counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Serialize)]
pub struct AgentEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the kernel saw it, RFC 3339 UTC with nanoseconds.
    pub time: String,
    /// For exec, the process after the exec; for fork, the new child (its first ancestor is the parent).
    /// Absent only for `event_loss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Arc<Process>>,
    /// The system call behind the event, its return value and, when it failed, the error name.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub call: Option<Call>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

#[derive(Debug, Serialize)]
pub struct Call {
    pub syscall: &'static str,
    pub result: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// What the event is about, beyond its process. Serialised as one key named after the variant.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Details {
    Exit(ExitStatus),
    Exec(ExecFacts),
    File(FileFacts),
    Socket(SocketFacts),
    Dns(DnsFacts),
    Privilege(PrivilegeFacts),
    Target(TargetFacts),
    Memfd(MemfdFacts),
    Module(ModuleFacts),
    Bpf(BpfFacts),
    Mount(MountFacts),
    Namespace(NamespaceFacts),
    Memory(MemoryFacts),
    Loss(LossFacts),
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ExitStatus {
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
    pub core_dumped: bool,
}

impl ExitStatus {
    /// From a raw wait status as the kernel keeps it in `task->exit_code`.
    pub fn from_wait_status(status: u32) -> Self {
        let signal = status & 0x7f;
        ExitStatus {
            code: (status >> 8) & 0xff,
            signal: (signal != 0).then_some(signal),
            core_dumped: status & 0x80 != 0,
        }
    }
}

/// Facts about an exec beyond the process itself.
#[derive(Debug, Default, Serialize)]
pub struct ExecFacts {
    /// The executable was deleted or is a memfd (fileless execution).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fileless: bool,
    /// A setuid or setgid binary that changed the effective uid or gid.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub setuid: bool,
    /// Which of stdin, stdout, stderr are sockets, and the first such socket.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stdio_sockets: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdio_socket: Option<SocketFacts>,
}

impl ExecFacts {
    pub fn is_empty(&self) -> bool {
        !self.fileless && !self.setuid && self.stdio_sockets.is_empty()
    }
}

#[derive(Debug, Default, Serialize)]
pub struct FileFacts {
    /// Absolute path (resolved by the kernel when the file was open, else joined from the call's arguments).
    pub path: String,
    /// The path exactly as the process passed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// For rename and link: the new name; for symlink: what the link points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Open flags as names (`O_WRONLY`, `O_CREAT`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
    #[serde(skip)]
    pub flag_bits: u64,
    /// chmod: the new mode; open with O_CREAT: the mode asked for. Written in octal.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "octal")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xattr: Option<String>,
    /// Inode and device of the file the call acted on, when the kernel saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub path_truncated: bool,
}

fn octal<S: serde::Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{:o}", mode.unwrap_or_default()))
}

/// Capability sets in hex, as /proc/<pid>/status shows them: [before, after].
fn hex_pair<S: serde::Serializer>(caps: &Option<[u64; 2]>, s: S) -> Result<S::Ok, S::Error> {
    let [before, after] = caps.unwrap_or_default();
    [format!("{before:016x}"), format!("{after:016x}")].serialize(s)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SocketFacts {
    /// `inet`, `inet6`, `unix` or the family number.
    pub family: String,
    /// `tcp`, `udp`, `stream`, `dgram`, ...
    pub protocol: String,
    #[serde(skip)]
    pub family_code: u16,
    /// IANA protocol number (6 TCP, 17 UDP); 0 for unix sockets.
    #[serde(skip)]
    pub protocol_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Endpoint>,
    /// AF_UNIX: the socket path (`@name` for abstract sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// dup2/dup3 onto stdio: which fd the socket now occupies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdio_fd: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct DnsFacts {
    pub id: u16,
    pub response: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    #[serde(skip)]
    pub rcode_code: u8,
    pub questions: Vec<DnsQuestion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<DnsAnswer>,
    pub server: Endpoint,
    pub transport: &'static str,
    /// The message was longer than the captured bytes (answers may be missing).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated_capture: bool,
    /// Set when the message could not be parsed; the error says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DnsQuestion {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub class: String,
    #[serde(skip)]
    pub qtype_code: u16,
}

#[derive(Debug, Serialize)]
pub struct DnsAnswer {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
    #[serde(skip)]
    pub rtype_code: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

#[derive(Debug, Serialize)]
pub struct PrivilegeFacts {
    /// set*id: the ids before and after; capset: the capability sets before and after (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Ids>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Ids>,
    /// The ids asked for (-1 = unchanged), in argument order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hex_pair")]
    pub effective_caps: Option<[u64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hex_pair")]
    pub permitted_caps: Option<[u64; 2]>,
}

/// ptrace and process_vm_readv/writev: the process acted on.
#[derive(Debug, Serialize)]
pub struct TargetFacts {
    pub pid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip)]
    pub request_code: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Arc<Ancestor>>,
}

#[derive(Debug, Serialize)]
pub struct MemfdFacts {
    pub name: String,
    pub flags: u64,
}

#[derive(Debug, Serialize)]
pub struct ModuleFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BpfFacts {
    pub prog_type: u32,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct MountFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    pub flags: u64,
}

#[derive(Debug, Serialize)]
pub struct NamespaceFacts {
    /// CLONE_NEW* names (unshare flags, or setns nstype).
    pub namespaces: Vec<&'static str>,
    /// setns: what the fd refers to (e.g. `/proc/1/ns/mnt` as the kernel names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd_path: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MemoryFacts {
    pub address: String,
    pub length: u64,
    /// PROT_* names asked for.
    pub protection: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct LossFacts {
    /// Records the kernel could not fit in the ring since the last report, by event family.
    pub dropped: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_decoding() {
        assert_eq!(
            ExitStatus::from_wait_status(3 << 8),
            ExitStatus {
                code: 3,
                signal: None,
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus {
                code: 0,
                signal: Some(9),
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(0x80 | 11),
            ExitStatus {
                code: 0,
                signal: Some(11),
                core_dumped: true
            }
        );
    }

    #[test]
    fn type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
        assert_eq!(EventType::parse("process_spawn"), None);
    }
}
