//! The event schema is one model: a sample of every event type, made by the agent, printed as
//! `ward-agent watch` prints it, read back by the collector's detection input and written out again
//! is the same JSON byte for byte; and sent over the wire instead, it reaches the detection engine as
//! the same event. No kernel needed: the events are built the way the agent's enricher builds them.

use std::collections::BTreeMap;
use std::sync::Arc;

use ward_agent::event::{
    AgentEvent, BpfFacts, Call, Details, DnsAnswer, DnsFacts, DnsQuestion, Endpoint, EventType,
    ExecFacts, ExitFacts, FileFacts, Ids, LossFacts, MemfdFacts, MemoryFacts, ModuleFacts,
    MountFacts, NamespaceFacts, PrivilegeFacts, SocketFacts, TargetFacts,
};
use ward_agent::proctable::{ProcKey, Process};
use ward_collector::detect::event::RuntimeEvent;
use ward_event::{Ancestor, Container, ExeHash, Family, Namespaces};

fn ancestor(pid: u32, name: &str) -> Ancestor {
    Ancestor {
        pid,
        ns_pid: pid,
        start_time: "2026-01-02T03:00:00.000000001Z".into(),
        name: name.into(),
        executable: format!("/usr/bin/{name}"),
        uid: 0,
        euid: 0,
    }
}

fn process() -> Arc<Process> {
    let sha256 = ExeHash::pending();
    sha256.set("0123456789abcdef".repeat(4));
    Arc::new(Process {
        key: ProcKey {
            pid: 4242,
            start_ticks: 77,
        },
        parent: ProcKey {
            pid: 4000,
            start_ticks: 70,
        },
        info: ward_event::Process {
            pid: 4242,
            ns_pid: 12,
            ppid: 4000,
            start_time: "2026-01-02T03:04:00.123456789Z".into(),
            name: "curl".into(),
            executable: "/usr/bin/curl".into(),
            args: vec!["curl".into(), "-s".into(), "http://x".into()],
            args_truncated: true,
            cwd: "/tmp".into(),
            uid: 1000,
            euid: 0,
            gid: 1000,
            egid: 1000,
            login_uid: Some(1000),
            namespaces: Namespaces {
                pid: 4026531836,
                mnt: 4026531841,
                net: 4026531840,
            },
            cgroup_id: 9876,
            cgroup: "/system.slice/docker-abc.scope".into(),
            container: Some(Container {
                id: "ab".repeat(32),
                runtime: "docker".into(),
                pod_uid: Some("0b1f5e2c-7d4a-4c3e-9a8b-1234567890ab".into()),
            }),
            sha256,
            ancestors: vec![ancestor(4000, "bash"), ancestor(1, "systemd")],
            ..Default::default()
        },
    })
}

fn endpoint(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.into(),
        port,
    }
}

fn socket() -> SocketFacts {
    SocketFacts {
        family: "inet6".into(),
        protocol: "tcp".into(),
        family_code: 10,
        protocol_code: 6,
        local: Some(endpoint("::1", 40000)),
        remote: Some(endpoint("2001:db8::7", 443)),
        path: None,
        backlog: Some(128),
        stdio_fd: Some(1),
    }
}

/// The facts of a type's family, every member set.
fn details(kind: EventType, family: Family) -> Details {
    match family {
        Family::Exit => Details::Exit(ExitFacts::from_wait_status(0x80 | 11)),
        Family::Exec => Details::Exec(ExecFacts {
            fileless: true,
            setuid: true,
            stdio_sockets: vec![0, 1, 2],
            stdio_socket: Some(socket()),
        }),
        Family::File => Details::File(FileFacts {
            path: "/etc/cron.d/job".into(),
            given: Some("job".into()),
            target: Some("/etc/cron.d/job2".into()),
            flags: vec!["O_WRONLY".into(), "O_CREAT".into()],
            flag_bits: 0o101,
            mode: Some(0o4755),
            uid: Some(0),
            gid: Some(0),
            xattr: Some("security.capability".into()),
            inode: Some(123456),
            path_truncated: true,
        }),
        Family::Socket => Details::Socket(socket()),
        Family::Dns => Details::Dns(DnsFacts {
            id: 0x1234,
            response: kind == EventType::DnsResponse,
            rcode: Some("NoError".into()),
            rcode_code: 0,
            questions: vec![DnsQuestion {
                name: "pool.example.com".into(),
                qtype: "A".into(),
                class: "IN".into(),
                qtype_code: 1,
            }],
            answers: vec![DnsAnswer {
                name: "pool.example.com".into(),
                rtype: "A".into(),
                ttl: 60,
                data: "198.51.100.7".into(),
                rtype_code: 1,
            }],
            server: Some(endpoint("127.0.0.53", 53)),
            transport: "udp".into(),
            truncated_capture: true,
            parse_error: Some("short".into()),
        }),
        Family::Privilege => Details::Privilege(PrivilegeFacts {
            before: Some(Ids {
                uid: 1000,
                euid: 1000,
                gid: 1000,
                egid: 1000,
            }),
            after: Some(Ids {
                uid: 0,
                euid: 0,
                gid: 1000,
                egid: 1000,
            }),
            requested: vec![0, -1],
            effective_caps: Some([0, 0x1ff_ffff_ffff]),
            permitted_caps: Some([0x20, 0x1ff_ffff_ffff]),
        }),
        Family::Target => Details::Target(TargetFacts {
            pid: 4000,
            request: Some("PTRACE_POKETEXT".into()),
            request_code: 4,
            write: Some(true),
            process: Some(ancestor(4000, "sshd")),
        }),
        Family::Memfd => Details::Memfd(MemfdFacts {
            name: "x".into(),
            flags: 1,
        }),
        Family::Module => Details::Module(ModuleFacts {
            path: Some("/tmp/rk.ko".into()),
            size: Some(4096),
            params: Some("hide=1".into()),
        }),
        Family::Bpf => Details::Bpf(BpfFacts {
            prog_type: 2,
            name: "probe".into(),
        }),
        Family::Mount => Details::Mount(MountFacts {
            source: Some("/dev/sda1".into()),
            target: Some("/mnt".into()),
            fstype: Some("ext4".into()),
            flags: 0,
        }),
        Family::Namespace => Details::Namespace(NamespaceFacts {
            namespaces: vec!["CLONE_NEWNS".into(), "CLONE_NEWPID".into()],
            fd_path: Some("mnt:[4026531841]".into()),
        }),
        Family::Memory => Details::Memory(MemoryFacts {
            address: "0x7f0000001000".into(),
            length: 8192,
            protection: vec!["PROT_READ".into(), "PROT_EXEC".into()],
        }),
        Family::Loss => Details::Loss(LossFacts {
            dropped: BTreeMap::from([("file".into(), 3), ("dns".into(), 1)]),
        }),
    }
}

/// One event of a type, as the agent's enricher makes it: lifecycle and DNS events have no call.
fn sample(kind: EventType) -> AgentEvent {
    let no_call = matches!(
        kind.family(),
        Some(Family::Exec | Family::Exit | Family::Dns)
    ) || kind == EventType::ProcessFork;
    AgentEvent {
        kind,
        time: "2026-01-02T03:04:05.123456789Z".into(),
        process: (kind != EventType::EventLoss).then(process),
        call: (!no_call).then_some(Call {
            syscall: "openat",
            result: -13,
            error: Some("EACCES"),
        }),
        details: kind.family().map(|family| details(kind, family)),
    }
}

#[test]
fn every_type_reads_back_as_the_same_json() {
    for &kind in EventType::ALL {
        let agent_json = serde_json::to_string(&sample(kind)).unwrap();
        let read = RuntimeEvent::from_json(&agent_json)
            .unwrap_or_else(|e| panic!("{}: {e}\n{agent_json}", kind.name()));
        assert_eq!(read.kind, kind);
        let written = serde_json::to_string(&read).unwrap();
        assert_eq!(written, agent_json, "{} changed on the way", kind.name());
        if let Some(family) = kind.family() {
            let key = format!(r#""{}":{{"#, family.key());
            assert!(agent_json.contains(&key), "{}: no {key}", kind.name());
        }
    }
}

#[test]
fn the_samples_exercise_every_member() {
    // Optional members the agent leaves out when empty are all present in the samples, so the
    // byte comparison above covers them.
    let exec = serde_json::to_string(&sample(EventType::ProcessExec)).unwrap();
    for member in [
        "args_truncated",
        "login_uid",
        "pod_uid",
        "sha256",
        "stdio_socket",
    ] {
        assert!(exec.contains(member), "{member} missing: {exec}");
    }
    let file = serde_json::to_string(&sample(EventType::FileChmod)).unwrap();
    assert!(file.contains(r#""mode":"4755""#), "{file}");
    assert!(
        !file.contains("flag_bits"),
        "agent-side numbers stay out: {file}"
    );
}

/// The wire carries the typed part and the facts as the agent's JSON: the detection engine sees the
/// same event either way (the wire does not carry `event_loss` facts: losses have their own message).
#[test]
fn every_type_sent_over_the_wire_reaches_detection_unchanged() {
    for &kind in EventType::ALL {
        if kind == EventType::EventLoss {
            continue;
        }
        let event = sample(kind);
        let from_json = RuntimeEvent::from_json(&serde_json::to_string(&event).unwrap()).unwrap();
        let wire = ward_agent::transport::convert::event(&event);
        let from_wire = ward_collector::pipeline::convert::runtime_event(&wire)
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        assert_eq!(
            serde_json::to_string(&from_wire).unwrap(),
            serde_json::to_string(&from_json).unwrap(),
            "{}",
            kind.name()
        );
    }
}
