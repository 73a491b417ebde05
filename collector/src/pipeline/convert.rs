//! Wire events (`ward.v1.Event`, as agents send them) into the detection engine's [`RuntimeEvent`]:
//! the one place that maps between the two models.
//!
//! The typed part of the wire event (time, process with ancestry and container, call result) is
//! mapped field by field. The family facts (`file`, `socket`, `dns`, ...) travel in `details_json`
//! exactly as `ward-agent watch` prints them, so they are read straight into the detection model's
//! own fact structs (`detect::event`); no JSON text is built for the event, and there is no second
//! copy of the facts model here. The event type is not on the wire: it follows from the oneof kind
//! and its op (and, for families without a typed message, from the `details_json` key).

use serde::Deserialize;
use ward_proto::v1::{self as pb, event::Kind};

use crate::detect::event::{
    Ancestor, BpfFacts, Container, DnsFacts, EventType, ExecFacts, ExitFacts, FileFacts, LossFacts,
    MemfdFacts, MemoryFacts, ModuleFacts, MountFacts, NamespaceFacts, Namespaces, PrivilegeFacts,
    Process, RuntimeEvent, SocketFacts, TargetFacts,
};
use crate::findings::time::format_nanos;

/// The family keys of `details_json`, each read into the detection model's type for it.
#[derive(Default, Deserialize)]
struct Families {
    exec: Option<ExecFacts>,
    file: Option<FileFacts>,
    socket: Option<SocketFacts>,
    dns: Option<DnsFacts>,
    privilege: Option<PrivilegeFacts>,
    target: Option<TargetFacts>,
    memfd: Option<MemfdFacts>,
    module: Option<ModuleFacts>,
    bpf: Option<BpfFacts>,
    mount: Option<MountFacts>,
    namespace: Option<NamespaceFacts>,
    memory: Option<MemoryFacts>,
    loss: Option<LossFacts>,
}

/// The detection model's view of one wire event. Fails only when `details_json` is not the agent's
/// JSON or the event has no time (detections run on event time).
pub fn runtime_event(e: &pb::Event) -> Result<RuntimeEvent, String> {
    if e.time_unix_nano == 0 {
        return Err("event has no time".into());
    }
    let facts: Families = if e.details_json.is_empty() {
        Families::default()
    } else {
        serde_json::from_str(&e.details_json).map_err(|err| format!("details_json: {err}"))?
    };
    let kind = event_type(e, &facts);
    let exit = match &e.kind {
        Some(Kind::Exit(x)) => Some(ExitFacts {
            code: x.code,
            signal: (x.signal != 0).then_some(x.signal),
            core_dumped: x.core_dumped,
        }),
        _ => None,
    };
    Ok(RuntimeEvent {
        kind,
        time: format_nanos(e.time_unix_nano),
        process: e.process.as_ref().map(process),
        syscall: non_empty(&e.syscall),
        // The wire has no "absent": a call always has a result, lifecycle events have no call.
        result: (!e.syscall.is_empty()).then_some(e.result),
        error: non_empty(&e.error),
        exit,
        exec: facts.exec,
        file: facts.file,
        socket: facts.socket,
        dns: facts.dns,
        privilege: facts.privilege,
        target: facts.target,
        memfd: facts.memfd,
        module: facts.module,
        bpf: facts.bpf,
        mount: facts.mount,
        namespace: facts.namespace,
        memory: facts.memory,
        loss: facts.loss,
    })
}

fn event_type(e: &pb::Event, facts: &Families) -> EventType {
    use EventType as T;
    use pb::{file_event, injection_event, network_event, privilege_event};
    match &e.kind {
        Some(Kind::Exec(_)) => T::ProcessExec,
        Some(Kind::Fork(_)) => T::ProcessFork,
        Some(Kind::Exit(_)) => T::ProcessExit,
        Some(Kind::File(f)) => match file_event::Op::try_from(f.op) {
            Ok(file_event::Op::Open) => T::FileOpen,
            Ok(file_event::Op::Unlink) => T::FileUnlink,
            Ok(file_event::Op::Rename) => T::FileRename,
            Ok(file_event::Op::Link) => T::FileLink,
            Ok(file_event::Op::Symlink) => T::FileSymlink,
            Ok(file_event::Op::Chmod) => T::FileChmod,
            Ok(file_event::Op::Chown) => T::FileChown,
            Ok(file_event::Op::Truncate) => T::FileTruncate,
            Ok(file_event::Op::Setxattr) => T::FileSetxattr,
            Ok(file_event::Op::Mount) => T::Mount,
            Ok(file_event::Op::MemfdCreate) => T::MemfdCreate,
            Ok(file_event::Op::ModuleLoad) => T::ModuleLoad,
            Ok(file_event::Op::LibraryLoad) => T::LibraryLoad,
            _ => T::Other,
        },
        Some(Kind::Network(n)) => match network_event::Op::try_from(n.op) {
            Ok(network_event::Op::Connect) => T::NetConnect,
            Ok(network_event::Op::Accept) => T::NetAccept,
            Ok(network_event::Op::Listen) => T::NetListen,
            Ok(network_event::Op::Bind) => T::NetBind,
            Ok(network_event::Op::Socket) => T::NetStdioSocket,
            _ => T::Other,
        },
        Some(Kind::Dns(d)) if d.response => T::DnsResponse,
        Some(Kind::Dns(_)) => T::DnsQuery,
        Some(Kind::Privilege(p)) => match privilege_event::Op::try_from(p.op) {
            Ok(privilege_event::Op::Capset) => T::PrivCapset,
            _ => T::PrivSetid,
        },
        Some(Kind::Injection(i)) => match injection_event::Op::try_from(i.op) {
            Ok(injection_event::Op::Ptrace) => T::Ptrace,
            Ok(injection_event::Op::ProcessVmWritev | injection_event::Op::ProcMemWrite) => {
                T::ProcessVmAccess
            }
            Ok(injection_event::Op::MprotectExec) => T::MemoryExec,
            Ok(injection_event::Op::Userfaultfd) => T::Userfaultfd,
            _ => T::Other,
        },
        Some(Kind::Loss(_)) => T::EventLoss,
        // Families without a typed message: named by their details key.
        None if facts.bpf.is_some() => T::BpfLoad,
        None if facts.namespace.is_some() => T::Namespace,
        None => T::Other,
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Process start times: the agent's text form, or empty when the wire has none.
fn start_time(nanos: u64) -> String {
    if nanos == 0 {
        String::new()
    } else {
        format_nanos(nanos)
    }
}

fn process(p: &pb::Process) -> Process {
    let ns = p.namespaces.as_ref();
    Process {
        pid: p.pid,
        ppid: p.ppid,
        ns_pid: p.ns_pid,
        start_time: start_time(p.start_time_unix_nano),
        name: p.name.clone(),
        executable: p.executable.clone(),
        args: p.args.clone(),
        args_truncated: p.args_truncated,
        cwd: p.cwd.clone(),
        uid: p.uid,
        euid: p.euid,
        gid: p.gid,
        egid: p.egid,
        login_uid: p.login_uid,
        namespaces: Namespaces {
            pid: ns.map_or(0, |n| n.pid),
            mnt: ns.map_or(0, |n| n.mnt),
            net: ns.map_or(0, |n| n.net),
        },
        cgroup_id: p.cgroup_id,
        cgroup: p.cgroup.clone(),
        container: p.container.as_ref().map(|c| Container {
            id: c.id.clone(),
            runtime: c.runtime.clone().into(),
            pod_uid: non_empty(&c.pod_uid),
        }),
        sha256: non_empty(&p.sha256).into(),
        ancestors: p
            .ancestors
            .iter()
            .map(|a| Ancestor {
                pid: a.pid,
                ns_pid: a.ns_pid,
                start_time: start_time(a.start_time_unix_nano),
                name: a.name.clone(),
                executable: a.executable.clone(),
                uid: a.uid,
                euid: a.euid,
            })
            .collect(),
        ..Process::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_event() -> pb::Event {
        pb::Event {
            time_unix_nano: 1_767_323_045_123_456_789,
            process: Some(pb::Process {
                pid: 7,
                ppid: 1,
                start_time_unix_nano: 1_767_323_000_000_000_001,
                name: "bash".into(),
                executable: "/usr/bin/bash".into(),
                args: vec!["bash".into(), "-i".into()],
                uid: 1000,
                euid: 1000,
                container: Some(pb::Container {
                    id: "abc".into(),
                    runtime: "docker".into(),
                    ..Default::default()
                }),
                ancestors: vec![pb::Ancestor {
                    pid: 1,
                    name: "systemd".into(),
                    executable: "/sbin/init".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            details_json: r#"{"exec":{"stdio_sockets":[0,1,2],"stdio_socket":{"family":"inet","protocol":"tcp","remote":{"ip":"127.0.0.1","port":1337}}}}"#.into(),
            kind: Some(Kind::Exec(pb::ProcessExec {})),
            ..Default::default()
        }
    }

    /// The same event read from the wire and from `ward-agent watch` JSON is the same event.
    #[test]
    fn wire_exec_reads_like_the_watch_json() {
        let wire = runtime_event(&exec_event()).unwrap();
        let json = RuntimeEvent::from_json(
            r#"{"type":"process_exec","time":"2026-01-02T03:04:05.123456789Z",
            "process":{"pid":7,"ppid":1,"start_time":"2026-01-02T03:03:20.000000001Z","name":"bash",
              "executable":"/usr/bin/bash","args":["bash","-i"],"uid":1000,"euid":1000,
              "container":{"id":"abc","runtime":"docker"},
              "ancestors":[{"pid":1,"name":"systemd","executable":"/sbin/init"}]},
            "exec":{"stdio_sockets":[0,1,2],"stdio_socket":{"family":"inet","protocol":"tcp",
              "remote":{"ip":"127.0.0.1","port":1337}}}}"#,
        )
        .unwrap();
        assert_eq!(format!("{wire:?}"), format!("{json:?}"));
        assert_eq!(wire.process.as_ref().unwrap().cmdline(), "bash -i");
    }

    #[test]
    fn types_follow_the_kind_and_op() {
        let mut e = exec_event();
        e.details_json = r#"{"file":{"path":"/etc/shadow","flags":["O_WRONLY"]}}"#.into();
        e.syscall = "openat".into();
        e.result = 3;
        e.kind = Some(Kind::File(pb::FileEvent {
            op: pb::file_event::Op::Open as i32,
            ..Default::default()
        }));
        let ev = runtime_event(&e).unwrap();
        assert_eq!(ev.kind, EventType::FileOpen);
        assert!(ev.file.as_ref().unwrap().opens_for_write());
        assert_eq!(
            (ev.syscall.as_deref(), ev.result),
            (Some("openat"), Some(3))
        );

        e.kind = Some(Kind::Dns(pb::DnsEvent {
            response: true,
            ..Default::default()
        }));
        assert_eq!(runtime_event(&e).unwrap().kind, EventType::DnsResponse);

        e.kind = None;
        e.details_json = r#"{"bpf":{"prog_type":2,"name":"x"}}"#.into();
        assert_eq!(runtime_event(&e).unwrap().kind, EventType::BpfLoad);

        e.kind = Some(Kind::Exit(pb::ProcessExit {
            code: 0,
            signal: 9,
            core_dumped: false,
        }));
        e.details_json.clear();
        let ev = runtime_event(&e).unwrap();
        assert_eq!(ev.kind, EventType::ProcessExit);
        assert_eq!(ev.exit.unwrap().signal, Some(9));
    }

    #[test]
    fn bad_details_are_an_error_not_a_panic() {
        let mut e = exec_event();
        e.details_json = "{not json".into();
        assert!(runtime_event(&e).unwrap_err().contains("details_json"));
        e.details_json.clear();
        e.time_unix_nano = 0;
        assert!(runtime_event(&e).is_err());
    }
}
