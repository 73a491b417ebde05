//! Event types and the family of facts each carries.

use serde::{Deserialize, Serialize};

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// The event types. `Other` is never produced by the agent: it keeps, when reading, events
        /// of types this build does not know.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType {
            $(#[serde(rename = $name)] $variant,)*
            #[serde(other, rename = "other")]
            Other,
        }

        impl EventType {
            /// Every known type (not `Other`), in schema order.
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

/// Slots a per-type table needs (`Other` included).
pub const EVENT_TYPE_SLOTS: usize = EventType::ALL.len() + 1;

impl EventType {
    /// A known type by its schema name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Slot in per-type tables: the schema position, `Other` last.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_table_is_consistent() {
        for (i, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(EventType::parse(t.name()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
            let back: EventType = serde_json::from_value(t.name().into()).unwrap();
            assert_eq!(back, *t);
        }
        assert_eq!(EventType::Other.index(), EVENT_TYPE_SLOTS - 1);
        assert_eq!(EventType::parse("process_spawn"), None);
        let unknown: EventType = serde_json::from_str(r#""gpu_hang""#).unwrap();
        assert_eq!(unknown, EventType::Other);
    }
}
