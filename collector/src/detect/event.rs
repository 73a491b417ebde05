//! The collector's view of one agent event: the JSON objects `ward-agent watch` prints (README
//! "Event schema"), read back. Field names are the agent's; unknown members are ignored and every
//! family object is optional, so a newer agent with more facts still parses.

use serde::Deserialize;

use crate::findings::time::{EpochMillis, parse_millis};

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// The agent's event types. `Other` keeps events of types this collector does not know.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
        pub enum EventType {
            $(#[serde(rename = $name)] $variant,)*
            #[serde(other)]
            Other,
        }

        impl EventType {
            /// Every known type (not `Other`), in the agent's order.
            pub const ALL: &[EventType] = &[$(EventType::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                    EventType::Other => "other",
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

/// Number of slots a per-type table needs (`Other` included).
pub const EVENT_TYPE_SLOTS: usize = EventType::ALL.len() + 1;

impl EventType {
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Slot in per-type tables.
    pub fn index(self) -> usize {
        match self {
            Self::Other => Self::ALL.len(),
            known => known as usize,
        }
    }

    /// The family object events of this type carry (README: "one family key").
    pub fn family(self) -> Option<Family> {
        use EventType as T;
        Some(match self {
            T::ProcessExec => Family::Exec,
            T::ProcessExit => Family::Exit,
            T::FileOpen
            | T::FileUnlink
            | T::FileRename
            | T::FileLink
            | T::FileSymlink
            | T::FileChmod
            | T::FileChown
            | T::FileTruncate
            | T::FileSetxattr
            | T::LibraryLoad => Family::File,
            T::NetConnect | T::NetAccept | T::NetBind | T::NetListen | T::NetStdioSocket => {
                Family::Socket
            }
            T::DnsQuery | T::DnsResponse => Family::Dns,
            T::PrivSetid | T::PrivCapset => Family::Privilege,
            T::Ptrace | T::ProcessVmAccess => Family::Target,
            T::MemfdCreate => Family::Memfd,
            T::ModuleLoad => Family::Module,
            T::BpfLoad => Family::Bpf,
            T::Mount => Family::Mount,
            T::Namespace => Family::Namespace,
            T::MemoryExec => Family::Memory,
            T::EventLoss => Family::Loss,
            T::ProcessFork | T::Userfaultfd | T::Other => return None,
        })
    }
}

/// The family keys of the event schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Exit,
    Exec,
    File,
    Socket,
    Dns,
    Privilege,
    Target,
    Memfd,
    Module,
    Bpf,
    Mount,
    Namespace,
    Memory,
    Loss,
}

impl Family {
    pub fn key(self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Exec => "exec",
            Self::File => "file",
            Self::Socket => "socket",
            Self::Dns => "dns",
            Self::Privilege => "privilege",
            Self::Target => "target",
            Self::Memfd => "memfd",
            Self::Module => "module",
            Self::Bpf => "bpf",
            Self::Mount => "mount",
            Self::Namespace => "namespace",
            Self::Memory => "memory",
            Self::Loss => "loss",
        }
    }
}

/// One event as `ward-agent watch` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339 UTC with nanoseconds, as the kernel saw it.
    pub time: String,
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub syscall: Option<String>,
    #[serde(default)]
    pub result: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub exit: Option<ExitFacts>,
    #[serde(default)]
    pub exec: Option<ExecFacts>,
    #[serde(default)]
    pub file: Option<FileFacts>,
    #[serde(default)]
    pub socket: Option<SocketFacts>,
    #[serde(default)]
    pub dns: Option<DnsFacts>,
    #[serde(default)]
    pub privilege: Option<PrivilegeFacts>,
    #[serde(default)]
    pub target: Option<TargetFacts>,
    #[serde(default)]
    pub memfd: Option<MemfdFacts>,
    #[serde(default)]
    pub module: Option<ModuleFacts>,
    #[serde(default)]
    pub bpf: Option<BpfFacts>,
    #[serde(default)]
    pub mount: Option<MountFacts>,
    #[serde(default)]
    pub namespace: Option<NamespaceFacts>,
    #[serde(default)]
    pub memory: Option<MemoryFacts>,
}

/// Why a line could not be read as an event.
#[derive(Debug)]
pub struct EventParseError(pub String);

impl std::fmt::Display for EventParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EventParseError {}

impl RuntimeEvent {
    /// Parses one JSON line. The time must be RFC 3339: detections run on event time only.
    pub fn from_json(line: &str) -> Result<Self, EventParseError> {
        let event: Self = serde_json::from_str(line)
            .map_err(|e| EventParseError(format!("not an agent event: {e}")))?;
        if event.time_millis().is_none() {
            return Err(EventParseError(format!(
                "event time {:?} is not an RFC 3339 timestamp",
                event.time
            )));
        }
        Ok(event)
    }

    /// Event time in epoch milliseconds.
    pub fn time_millis(&self) -> Option<EpochMillis> {
        parse_millis(&self.time)
    }

    /// True when the system call behind the event failed (a negative result).
    pub fn failed(&self) -> bool {
        self.result.is_some_and(|r| r < 0)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Namespaces {
    #[serde(default)]
    pub pid: u64,
    #[serde(default)]
    pub mnt: u64,
    #[serde(default)]
    pub net: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub pod_uid: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Ancestor {
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub ns_pid: u32,
    #[serde(default)]
    pub start_time: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub executable: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub euid: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Process {
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub ppid: u32,
    #[serde(default)]
    pub ns_pid: u32,
    #[serde(default)]
    pub start_time: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub executable: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub args_truncated: bool,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub euid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub egid: u32,
    #[serde(default)]
    pub login_uid: Option<u32>,
    #[serde(default)]
    pub namespaces: Namespaces,
    #[serde(default)]
    pub cgroup_id: u64,
    #[serde(default)]
    pub cgroup: String,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub ancestors: Vec<Ancestor>,
    /// `args` joined by spaces, built on first use (rules that search the whole command line).
    /// Crate-visible so the wire-event conversion (`pipeline::convert`) can build a `Process`.
    #[serde(skip)]
    pub(crate) cmdline: std::sync::OnceLock<String>,
}

impl Process {
    /// The command line as one string: argv joined by single spaces.
    pub fn cmdline(&self) -> &str {
        self.cmdline.get_or_init(|| self.args.join(" "))
    }

    /// The container id, when the process runs in one.
    pub fn container_id(&self) -> Option<&str> {
        self.container
            .as_ref()
            .map(|c| c.id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The executable's file name (what a renamed copy changes), falling back to `comm`.
    pub fn exe_basename(&self) -> &str {
        basename(&self.executable).unwrap_or(&self.name)
    }
}

/// The last path component, if any.
pub fn basename(path: &str) -> Option<&str> {
    path.rsplit('/').next().filter(|b| !b.is_empty())
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExitFacts {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub signal: Option<u32>,
    #[serde(default)]
    pub core_dumped: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExecFacts {
    #[serde(default)]
    pub fileless: bool,
    #[serde(default)]
    pub setuid: bool,
    #[serde(default)]
    pub stdio_sockets: Vec<u32>,
    #[serde(default)]
    pub stdio_socket: Option<SocketFacts>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileFacts {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub given: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    /// Octal text on the wire (`"4755"`), the mode bits here.
    #[serde(default, deserialize_with = "octal")]
    pub mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub xattr: Option<String>,
    #[serde(default)]
    pub inode: Option<u64>,
    #[serde(default)]
    pub path_truncated: bool,
}

impl FileFacts {
    /// The open asked to write, create or truncate (the agent also reports sensitive reads).
    pub fn opens_for_write(&self) -> bool {
        self.flags
            .iter()
            .any(|f| matches!(f.as_str(), "O_WRONLY" | "O_RDWR" | "O_CREAT" | "O_TRUNC"))
    }
}

fn octal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Text(String),
        Number(u32),
    }
    Ok(match Option::<Mode>::deserialize(d)? {
        None => None,
        Some(Mode::Number(n)) => Some(n),
        Some(Mode::Text(t)) => Some(
            u32::from_str_radix(&t, 8)
                .map_err(|_| serde::de::Error::custom(format!("mode {t:?} is not octal")))?,
        ),
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Endpoint {
    /// Kept as text: compared as text by rules, parsed only by the intel lookup.
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub port: u16,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SocketFacts {
    /// `inet`, `inet6`, `unix` or the family number.
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub local: Option<Endpoint>,
    #[serde(default)]
    pub remote: Option<Endpoint>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub backlog: Option<u64>,
    #[serde(default)]
    pub stdio_fd: Option<u64>,
}

impl SocketFacts {
    pub fn is_inet(&self) -> bool {
        matches!(self.family.as_str(), "inet" | "inet6")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DnsQuestion {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub qtype: String,
    #[serde(default)]
    pub class: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DnsAnswer {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DnsFacts {
    #[serde(default)]
    pub id: u16,
    #[serde(default)]
    pub response: bool,
    #[serde(default)]
    pub rcode: Option<String>,
    #[serde(default)]
    pub questions: Vec<DnsQuestion>,
    #[serde(default)]
    pub answers: Vec<DnsAnswer>,
    #[serde(default)]
    pub server: Option<Endpoint>,
    #[serde(default)]
    pub transport: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Ids {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub euid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub egid: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PrivilegeFacts {
    #[serde(default)]
    pub before: Option<Ids>,
    #[serde(default)]
    pub after: Option<Ids>,
    #[serde(default)]
    pub requested: Vec<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TargetFacts {
    #[serde(default)]
    pub pid: u64,
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub write: Option<bool>,
    #[serde(default)]
    pub process: Option<Ancestor>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemfdFacts {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub flags: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModuleFacts {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub params: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BpfFacts {
    #[serde(default)]
    pub prog_type: u32,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MountFacts {
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub flags: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamespaceFacts {
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub fd_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemoryFacts {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub length: u64,
    #[serde(default)]
    pub protection: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_exec_with_unknown_members_and_types() {
        let line = r#"{"type":"process_exec","time":"2026-01-02T03:04:05.123456789Z","future":1,
            "process":{"pid":7,"name":"bash","executable":"/usr/bin/bash","args":["bash","-i"],
              "uid":1000,"euid":1000,"container":{"id":"abc","runtime":"docker"},
              "ancestors":[{"pid":1,"name":"systemd","executable":"/sbin/init","uid":0,"euid":0,"extra":true}]},
            "exec":{"stdio_sockets":[0,1,2],"stdio_socket":{"family":"inet","protocol":"tcp",
              "remote":{"ip":"127.0.0.1","port":1337}}}}"#;
        let ev = RuntimeEvent::from_json(line).unwrap();
        assert_eq!(ev.kind, EventType::ProcessExec);
        assert_eq!(ev.time_millis(), Some(1_767_323_045_123));
        let p = ev.process.as_ref().unwrap();
        assert_eq!(p.container_id(), Some("abc"));
        assert_eq!(p.ancestors[0].name, "systemd");
        assert_eq!(ev.exec.unwrap().stdio_sockets, [0, 1, 2]);

        let other = RuntimeEvent::from_json(r#"{"type":"gpu_hang","time":"2026-01-02T03:04:05Z"}"#)
            .unwrap();
        assert_eq!(other.kind, EventType::Other);
    }

    #[test]
    fn refuses_events_without_a_usable_time() {
        let err =
            RuntimeEvent::from_json(r#"{"type":"process_exec","time":"yesterday"}"#).unwrap_err();
        assert!(err.0.contains("RFC 3339"), "{err}");
        assert!(RuntimeEvent::from_json("[1]").is_err());
    }

    #[test]
    fn file_mode_is_read_as_octal() {
        let ev = RuntimeEvent::from_json(
            r#"{"type":"file_chmod","time":"2026-01-02T03:04:05Z","file":{"path":"/x","mode":"4755"}}"#,
        )
        .unwrap();
        assert_eq!(ev.file.unwrap().mode, Some(0o4755));
    }

    #[test]
    fn type_table_is_consistent() {
        for (i, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(EventType::parse(t.name()), Some(*t));
        }
        assert_eq!(EventType::Other.index(), EVENT_TYPE_SLOTS - 1);
    }
}
