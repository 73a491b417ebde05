//! The field paths rules may test, each resolved straight from the typed event (no JSON tree at
//! evaluation time). A path names the event member as the agent prints it (`file.path`,
//! `process.ancestors.name`); a few derived fields make common rules short:
//! `process.exe_name` (file name of the executable), `process.cmdline` (argv joined by spaces),
//! `process.in_container`, and `process.parent.*` (the nearest ancestor).
//!
//! A field can yield several values (`process.args`, `dns.questions.name`); a test passes when any
//! value passes. A missing member yields no value.

use super::event::{Ancestor, Endpoint, EventType, Family, RuntimeEvent, basename};

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Num,
    Bool,
}

/// One value of a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
}

macro_rules! fields {
    ($($variant:ident = $path:literal, $kind:ident, $family:expr;)*) => {
        /// A rule-addressable field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $($variant,)* }

        impl Field {
            pub const ALL: &[Field] = &[$(Field::$variant,)*];

            pub fn path(self) -> &'static str {
                match self { $(Field::$variant => $path,)* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Field::$variant => Kind::$kind,)* }
            }

            /// The family object the field lives in; `None` for members every event has.
            pub fn family(self) -> Option<Family> {
                match self { $(Field::$variant => $family,)* }
            }
        }
    };
}

const EXEC: Option<Family> = Some(Family::Exec);
const FILE: Option<Family> = Some(Family::File);
const SOCKET: Option<Family> = Some(Family::Socket);
const DNS: Option<Family> = Some(Family::Dns);
const PRIV: Option<Family> = Some(Family::Privilege);
const TARGET: Option<Family> = Some(Family::Target);
const MEMFD: Option<Family> = Some(Family::Memfd);
const MODULE: Option<Family> = Some(Family::Module);
const BPF: Option<Family> = Some(Family::Bpf);
const MOUNT: Option<Family> = Some(Family::Mount);
const NS: Option<Family> = Some(Family::Namespace);
const MEMORY: Option<Family> = Some(Family::Memory);
const EXIT: Option<Family> = Some(Family::Exit);

fields! {
    Type = "type", Str, None;
    Syscall = "syscall", Str, None;
    Result = "result", Num, None;
    Error = "error", Str, None;
    Pid = "process.pid", Num, None;
    Ppid = "process.ppid", Num, None;
    NsPid = "process.ns_pid", Num, None;
    Name = "process.name", Str, None;
    Executable = "process.executable", Str, None;
    ExeName = "process.exe_name", Str, None;
    Args = "process.args", Str, None;
    Cmdline = "process.cmdline", Str, None;
    ArgsTruncated = "process.args_truncated", Bool, None;
    Cwd = "process.cwd", Str, None;
    Uid = "process.uid", Num, None;
    Euid = "process.euid", Num, None;
    Gid = "process.gid", Num, None;
    Egid = "process.egid", Num, None;
    LoginUid = "process.login_uid", Num, None;
    Cgroup = "process.cgroup", Str, None;
    Sha256 = "process.sha256", Str, None;
    ContainerId = "process.container.id", Str, None;
    ContainerRuntime = "process.container.runtime", Str, None;
    PodUid = "process.container.pod_uid", Str, None;
    InContainer = "process.in_container", Bool, None;
    ParentName = "process.parent.name", Str, None;
    ParentExecutable = "process.parent.executable", Str, None;
    ParentExeName = "process.parent.exe_name", Str, None;
    ParentUid = "process.parent.uid", Num, None;
    ParentEuid = "process.parent.euid", Num, None;
    AncestorName = "process.ancestors.name", Str, None;
    AncestorExecutable = "process.ancestors.executable", Str, None;
    AncestorExeName = "process.ancestors.exe_name", Str, None;
    AncestorUid = "process.ancestors.uid", Num, None;
    AncestorEuid = "process.ancestors.euid", Num, None;
    ExitCode = "exit.code", Num, EXIT;
    ExitSignal = "exit.signal", Num, EXIT;
    ExecFileless = "exec.fileless", Bool, EXEC;
    ExecSetuid = "exec.setuid", Bool, EXEC;
    ExecStdioSockets = "exec.stdio_sockets", Num, EXEC;
    ExecStdioFamily = "exec.stdio_socket.family", Str, EXEC;
    ExecStdioRemoteIp = "exec.stdio_socket.remote.ip", Str, EXEC;
    ExecStdioRemotePort = "exec.stdio_socket.remote.port", Num, EXEC;
    FilePath = "file.path", Str, FILE;
    FileName = "file.name", Str, FILE;
    FileGiven = "file.given", Str, FILE;
    FileTarget = "file.target", Str, FILE;
    FileFlags = "file.flags", Str, FILE;
    FileMode = "file.mode", Num, FILE;
    FileUid = "file.uid", Num, FILE;
    FileGid = "file.gid", Num, FILE;
    FileXattr = "file.xattr", Str, FILE;
    FileWrite = "file.write", Bool, FILE;
    SocketFamily = "socket.family", Str, SOCKET;
    SocketProtocol = "socket.protocol", Str, SOCKET;
    SocketLocalIp = "socket.local.ip", Str, SOCKET;
    SocketLocalPort = "socket.local.port", Num, SOCKET;
    SocketRemoteIp = "socket.remote.ip", Str, SOCKET;
    SocketRemotePort = "socket.remote.port", Num, SOCKET;
    SocketPath = "socket.path", Str, SOCKET;
    SocketBacklog = "socket.backlog", Num, SOCKET;
    SocketStdioFd = "socket.stdio_fd", Num, SOCKET;
    DnsQuestionName = "dns.questions.name", Str, DNS;
    DnsQuestionType = "dns.questions.type", Str, DNS;
    DnsAnswerName = "dns.answers.name", Str, DNS;
    DnsAnswerType = "dns.answers.type", Str, DNS;
    DnsAnswerData = "dns.answers.data", Str, DNS;
    DnsRcode = "dns.rcode", Str, DNS;
    DnsServerIp = "dns.server.ip", Str, DNS;
    DnsServerPort = "dns.server.port", Num, DNS;
    DnsTransport = "dns.transport", Str, DNS;
    DnsResponse = "dns.response", Bool, DNS;
    BeforeUid = "privilege.before.uid", Num, PRIV;
    BeforeEuid = "privilege.before.euid", Num, PRIV;
    BeforeGid = "privilege.before.gid", Num, PRIV;
    BeforeEgid = "privilege.before.egid", Num, PRIV;
    AfterUid = "privilege.after.uid", Num, PRIV;
    AfterEuid = "privilege.after.euid", Num, PRIV;
    AfterGid = "privilege.after.gid", Num, PRIV;
    AfterEgid = "privilege.after.egid", Num, PRIV;
    Requested = "privilege.requested", Num, PRIV;
    TargetPid = "target.pid", Num, TARGET;
    TargetRequest = "target.request", Str, TARGET;
    TargetWrite = "target.write", Bool, TARGET;
    TargetName = "target.process.name", Str, TARGET;
    TargetExecutable = "target.process.executable", Str, TARGET;
    TargetUid = "target.process.uid", Num, TARGET;
    TargetEuid = "target.process.euid", Num, TARGET;
    MemfdName = "memfd.name", Str, MEMFD;
    MemfdFlags = "memfd.flags", Num, MEMFD;
    ModulePath = "module.path", Str, MODULE;
    ModuleSize = "module.size", Num, MODULE;
    ModuleParams = "module.params", Str, MODULE;
    BpfProgType = "bpf.prog_type", Num, BPF;
    BpfName = "bpf.name", Str, BPF;
    MountSource = "mount.source", Str, MOUNT;
    MountTarget = "mount.target", Str, MOUNT;
    MountFstype = "mount.fstype", Str, MOUNT;
    MountFlags = "mount.flags", Num, MOUNT;
    Namespaces = "namespace.namespaces", Str, NS;
    NamespaceFdPath = "namespace.fd_path", Str, NS;
    MemoryAddress = "memory.address", Str, MEMORY;
    MemoryLength = "memory.length", Num, MEMORY;
    MemoryProtection = "memory.protection", Str, MEMORY;
}

impl Field {
    /// Looks a path up; the error names close matches so typos are quick to fix.
    pub fn parse(path: &str) -> Result<Self, String> {
        if let Some(field) = Self::ALL.iter().copied().find(|f| f.path() == path) {
            return Ok(field);
        }
        let prefix = path.split('.').next().unwrap_or(path);
        let siblings: Vec<&str> = Self::ALL
            .iter()
            .map(|f| f.path())
            .filter(|p| p.split('.').next() == Some(prefix))
            .collect();
        let hint = if siblings.is_empty() {
            "paths start with type, syscall, result, error, process, exec, exit, file, socket, dns, privilege, target, memfd, module, bpf, mount, namespace or memory".to_owned()
        } else {
            format!("known {prefix}.* paths: {}", siblings.join(", "))
        };
        Err(format!("unknown field path {path:?} ({hint})"))
    }

    /// Whether an event of this type can carry the field at all.
    pub fn applies_to(self, event: EventType) -> bool {
        match self.family() {
            None => true,
            Some(family) => event.family() == Some(family),
        }
    }

    /// Calls `f` on each value until it returns true; returns whether it did.
    pub fn any(self, ev: &RuntimeEvent, f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
        use Field as F;
        match self {
            F::Type => s(ev.kind.name(), f),
            F::Syscall => opt_s(ev.syscall.as_deref(), f),
            F::Result => opt_n(ev.result.map(|r| r as f64), f),
            F::Error => opt_s(ev.error.as_deref(), f),
            F::ExitCode => opt_n(ev.exit.as_ref().map(|e| e.code.into()), f),
            F::ExitSignal => opt_n(ev.exit.as_ref().and_then(|e| e.signal).map(f64::from), f),
            _ if self.family().is_none() => process_field(self, ev, f),
            F::ExecFileless
            | F::ExecSetuid
            | F::ExecStdioSockets
            | F::ExecStdioFamily
            | F::ExecStdioRemoteIp
            | F::ExecStdioRemotePort => {
                let Some(exec) = &ev.exec else { return false };
                let sock = exec.stdio_socket.as_ref();
                match self {
                    F::ExecFileless => b(exec.fileless, f),
                    F::ExecSetuid => b(exec.setuid, f),
                    F::ExecStdioSockets => exec.stdio_sockets.iter().any(|&fd| n(fd.into(), f)),
                    F::ExecStdioFamily => opt_s(sock.map(|s| s.family.as_str()), f),
                    F::ExecStdioRemoteIp => opt_s(
                        sock.and_then(|s| s.remote.as_ref()).map(|r| r.ip.as_str()),
                        f,
                    ),
                    _ => opt_n(
                        sock.and_then(|s| s.remote.as_ref()).map(|r| r.port.into()),
                        f,
                    ),
                }
            }
            _ if self.family() == FILE => {
                let Some(file) = &ev.file else { return false };
                match self {
                    F::FilePath => s(&file.path, f),
                    F::FileName => opt_s(basename(&file.path), f),
                    F::FileGiven => opt_s(file.given.as_deref(), f),
                    F::FileTarget => opt_s(file.target.as_deref(), f),
                    F::FileFlags => file.flags.iter().any(|x| s(x, f)),
                    F::FileMode => opt_n(file.mode.map(f64::from), f),
                    F::FileUid => opt_n(file.uid.map(f64::from), f),
                    F::FileGid => opt_n(file.gid.map(f64::from), f),
                    F::FileXattr => opt_s(file.xattr.as_deref(), f),
                    _ => b(ev.kind != EventType::FileOpen || file.opens_for_write(), f),
                }
            }
            _ if self.family() == SOCKET => {
                let Some(sock) = &ev.socket else { return false };
                match self {
                    F::SocketFamily => s(&sock.family, f),
                    F::SocketProtocol => s(&sock.protocol, f),
                    F::SocketLocalIp => opt_s(ep_ip(&sock.local), f),
                    F::SocketLocalPort => opt_n(ep_port(&sock.local), f),
                    F::SocketRemoteIp => opt_s(ep_ip(&sock.remote), f),
                    F::SocketRemotePort => opt_n(ep_port(&sock.remote), f),
                    F::SocketPath => opt_s(sock.path.as_deref(), f),
                    F::SocketBacklog => opt_n(sock.backlog.map(|v| v as f64), f),
                    _ => opt_n(sock.stdio_fd.map(|v| v as f64), f),
                }
            }
            _ if self.family() == DNS => {
                let Some(dns) = &ev.dns else { return false };
                match self {
                    F::DnsQuestionName => dns.questions.iter().any(|q| s(&q.name, f)),
                    F::DnsQuestionType => dns.questions.iter().any(|q| s(&q.qtype, f)),
                    F::DnsAnswerName => dns.answers.iter().any(|a| s(&a.name, f)),
                    F::DnsAnswerType => dns.answers.iter().any(|a| s(&a.rtype, f)),
                    F::DnsAnswerData => dns.answers.iter().any(|a| s(&a.data, f)),
                    F::DnsRcode => opt_s(dns.rcode.as_deref(), f),
                    F::DnsServerIp => opt_s(dns.server.as_ref().map(|e| e.ip.as_str()), f),
                    F::DnsServerPort => opt_n(dns.server.as_ref().map(|e| e.port.into()), f),
                    F::DnsTransport => s(&dns.transport, f),
                    _ => b(dns.response, f),
                }
            }
            _ if self.family() == PRIV => {
                let Some(p) = &ev.privilege else { return false };
                let id = |ids: Option<super::event::Ids>, pick: fn(&super::event::Ids) -> u32| {
                    ids.as_ref().map(|i| f64::from(pick(i)))
                };
                match self {
                    F::BeforeUid => opt_n(id(p.before, |i| i.uid), f),
                    F::BeforeEuid => opt_n(id(p.before, |i| i.euid), f),
                    F::BeforeGid => opt_n(id(p.before, |i| i.gid), f),
                    F::BeforeEgid => opt_n(id(p.before, |i| i.egid), f),
                    F::AfterUid => opt_n(id(p.after, |i| i.uid), f),
                    F::AfterEuid => opt_n(id(p.after, |i| i.euid), f),
                    F::AfterGid => opt_n(id(p.after, |i| i.gid), f),
                    F::AfterEgid => opt_n(id(p.after, |i| i.egid), f),
                    _ => p.requested.iter().any(|&r| n(r as f64, f)),
                }
            }
            _ if self.family() == TARGET => {
                let Some(t) = &ev.target else { return false };
                let tp = t.process.as_ref();
                match self {
                    F::TargetPid => n(t.pid as f64, f),
                    F::TargetRequest => opt_s(t.request.as_deref(), f),
                    F::TargetWrite => t.write.is_some_and(|w| b(w, f)),
                    F::TargetName => opt_s(tp.map(|p| p.name.as_str()), f),
                    F::TargetExecutable => opt_s(tp.map(|p| p.executable.as_str()), f),
                    F::TargetUid => opt_n(tp.map(|p| p.uid.into()), f),
                    _ => opt_n(tp.map(|p| p.euid.into()), f),
                }
            }
            F::MemfdName => opt_s(ev.memfd.as_ref().map(|m| m.name.as_str()), f),
            F::MemfdFlags => opt_n(ev.memfd.as_ref().map(|m| m.flags as f64), f),
            F::ModulePath => opt_s(ev.module.as_ref().and_then(|m| m.path.as_deref()), f),
            F::ModuleSize => opt_n(ev.module.as_ref().and_then(|m| m.size).map(|v| v as f64), f),
            F::ModuleParams => opt_s(ev.module.as_ref().and_then(|m| m.params.as_deref()), f),
            F::BpfProgType => opt_n(ev.bpf.as_ref().map(|m| m.prog_type.into()), f),
            F::BpfName => opt_s(ev.bpf.as_ref().map(|m| m.name.as_str()), f),
            F::MountSource => opt_s(ev.mount.as_ref().and_then(|m| m.source.as_deref()), f),
            F::MountTarget => opt_s(ev.mount.as_ref().and_then(|m| m.target.as_deref()), f),
            F::MountFstype => opt_s(ev.mount.as_ref().and_then(|m| m.fstype.as_deref()), f),
            F::MountFlags => opt_n(ev.mount.as_ref().map(|m| m.flags as f64), f),
            F::Namespaces => ev
                .namespace
                .as_ref()
                .is_some_and(|m| m.namespaces.iter().any(|x| s(x, f))),
            F::NamespaceFdPath => {
                opt_s(ev.namespace.as_ref().and_then(|m| m.fd_path.as_deref()), f)
            }
            F::MemoryAddress => opt_s(ev.memory.as_ref().map(|m| m.address.as_str()), f),
            F::MemoryLength => opt_n(ev.memory.as_ref().map(|m| m.length as f64), f),
            F::MemoryProtection => ev
                .memory
                .as_ref()
                .is_some_and(|m| m.protection.iter().any(|x| s(x, f))),
            _ => unreachable!("every family arm is listed above: {self:?}"),
        }
    }

    /// The first value as text (aggregation facts, messages).
    pub fn first_text(self, ev: &RuntimeEvent) -> Option<String> {
        let mut out = None;
        self.any(ev, &mut |v| {
            out = Some(match v {
                Val::Str(s) => s.to_owned(),
                Val::Num(n) => format!("{n}"),
                Val::Bool(b) => b.to_string(),
            });
            true
        });
        out
    }
}

type Visit<'v> = dyn FnMut(Val<'_>) -> bool + 'v;

fn s(v: &str, f: &mut Visit<'_>) -> bool {
    f(Val::Str(v))
}

fn n(v: f64, f: &mut Visit<'_>) -> bool {
    f(Val::Num(v))
}

fn b(v: bool, f: &mut Visit<'_>) -> bool {
    f(Val::Bool(v))
}

fn opt_s(v: Option<&str>, f: &mut Visit<'_>) -> bool {
    v.is_some_and(|v| f(Val::Str(v)))
}

fn opt_n(v: Option<f64>, f: &mut Visit<'_>) -> bool {
    v.is_some_and(|v| f(Val::Num(v)))
}

fn ep_ip(e: &Option<Endpoint>) -> Option<&str> {
    e.as_ref().map(|e| e.ip.as_str())
}

fn ep_port(e: &Option<Endpoint>) -> Option<f64> {
    e.as_ref().map(|e| f64::from(e.port))
}

fn ancestor_any(
    ancestors: &[Ancestor],
    f: &mut dyn FnMut(Val<'_>) -> bool,
    pick: impl Fn(&Ancestor) -> Val<'_>,
) -> bool {
    ancestors.iter().any(|a| f(pick(a)))
}

fn process_field(field: Field, ev: &RuntimeEvent, f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
    use Field as F;
    let Some(p) = &ev.process else { return false };
    let num = |v: u32| Val::Num(v.into());
    let parent = p.ancestors.first();
    match field {
        F::Pid => f(num(p.pid)),
        F::Ppid => f(num(p.ppid)),
        F::NsPid => f(num(p.ns_pid)),
        F::Name => f(Val::Str(&p.name)),
        F::Executable => f(Val::Str(&p.executable)),
        F::ExeName => f(Val::Str(p.exe_basename())),
        F::Args => p.args.iter().any(|a| f(Val::Str(a))),
        F::Cmdline => f(Val::Str(p.cmdline())),
        F::ArgsTruncated => f(Val::Bool(p.args_truncated)),
        F::Cwd => f(Val::Str(&p.cwd)),
        F::Uid => f(num(p.uid)),
        F::Euid => f(num(p.euid)),
        F::Gid => f(num(p.gid)),
        F::Egid => f(num(p.egid)),
        F::LoginUid => p.login_uid.is_some_and(|u| f(num(u))),
        F::Cgroup => f(Val::Str(&p.cgroup)),
        F::Sha256 => p.sha256.get().is_some_and(|h| f(Val::Str(h))),
        F::ContainerId => p.container_id().is_some_and(|id| f(Val::Str(id))),
        F::ContainerRuntime => p
            .container
            .as_ref()
            .is_some_and(|c| f(Val::Str(&c.runtime))),
        F::PodUid => p
            .container
            .as_ref()
            .and_then(|c| c.pod_uid.as_deref())
            .is_some_and(|u| f(Val::Str(u))),
        F::InContainer => f(Val::Bool(p.container_id().is_some())),
        F::ParentName => parent.is_some_and(|a| f(Val::Str(&a.name))),
        F::ParentExecutable => parent.is_some_and(|a| f(Val::Str(&a.executable))),
        F::ParentExeName => {
            parent.is_some_and(|a| f(Val::Str(basename(&a.executable).unwrap_or(&a.name))))
        }
        F::ParentUid => parent.is_some_and(|a| f(num(a.uid))),
        F::ParentEuid => parent.is_some_and(|a| f(num(a.euid))),
        F::AncestorName => ancestor_any(&p.ancestors, f, |a| Val::Str(&a.name)),
        F::AncestorExecutable => ancestor_any(&p.ancestors, f, |a| Val::Str(&a.executable)),
        F::AncestorExeName => ancestor_any(&p.ancestors, f, |a| {
            Val::Str(basename(&a.executable).unwrap_or(&a.name))
        }),
        F::AncestorUid => ancestor_any(&p.ancestors, f, |a| num(a.uid)),
        F::AncestorEuid => ancestor_any(&p.ancestors, f, |a| num(a.euid)),
        other => unreachable!("{other:?} is not a process field"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(field: Field, ev: &RuntimeEvent) -> Vec<String> {
        let mut out = Vec::new();
        field.any(ev, &mut |v| {
            out.push(format!("{v:?}"));
            false
        });
        out
    }

    #[test]
    fn every_path_is_unique_and_resolves_without_panicking() {
        let ev = RuntimeEvent::from_json(
            r#"{"type":"file_open","time":"2026-01-01T00:00:00Z","process":{"name":"x","args":["a","b"],
               "ancestors":[{"name":"p","executable":"/bin/p"},{"name":"q","executable":""}]},
               "file":{"path":"/etc/shadow","flags":["O_RDONLY"]}}"#,
        )
        .unwrap();
        for (i, field) in Field::ALL.iter().enumerate() {
            assert!(
                !Field::ALL[..i].iter().any(|f| f.path() == field.path()),
                "{} twice",
                field.path()
            );
            assert_eq!(Field::parse(field.path()), Ok(*field));
            let _ = values(*field, &ev);
        }
        assert_eq!(values(Field::Args, &ev), ["Str(\"a\")", "Str(\"b\")"]);
        assert_eq!(values(Field::Cmdline, &ev), ["Str(\"a b\")"]);
        assert_eq!(
            values(Field::AncestorExeName, &ev),
            ["Str(\"p\")", "Str(\"q\")"]
        );
        assert_eq!(values(Field::FileWrite, &ev), ["Bool(false)"]);
        assert_eq!(values(Field::FileName, &ev), ["Str(\"shadow\")"]);
        assert!(values(Field::SocketPath, &ev).is_empty());
    }

    #[test]
    fn unknown_paths_name_their_siblings() {
        let err = Field::parse("file.pth").unwrap_err();
        assert!(err.contains("file.path"), "{err}");
        let err = Field::parse("proc.name").unwrap_err();
        assert!(err.contains("paths start with"), "{err}");
    }
}
