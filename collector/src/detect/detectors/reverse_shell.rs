//! Execution:Runtime/ReverseShell: a shell whose standard input and output are a network socket.
//!
//! Two ways in: an exec whose stdio the agent reports as sockets (`exec.stdio_sockets`, the
//! `bash -i >& /dev/tcp/…` and `nc -e` cases), or a shell that moves a socket onto its own stdin and
//! stdout (`net_stdio_socket`, e.g. `exec 0<>/dev/tcp/…` typed into an interactive shell).
//!
//! A shell is recognised by its executable name or by its binary's hash: every exec of a
//! shell-named binary teaches the detector that binary's SHA-256, so a renamed copy of bash (the
//! GuardDuty tester's `<epoch>-reverseShell`) is still a shell. Loopback peers are not exempt: the
//! tester's listener is on 127.0.0.1, and a local port forward is a common reverse-shell relay.
//! UNIX sockets are exempt: services under systemd and inetd-style supervisors legitimately get
//! UNIX-socket stdio.

use std::collections::{HashMap, HashSet};

use super::{DetectContext, Detector, ProcKey, bound, proc_key};
use crate::detect::event::{EventType, Process, RuntimeEvent, SocketFacts};
use crate::detect::signal::Signal;
use crate::findings::{
    Action, FindingType, LocalIpDetails, NetworkConnectionAction, PortDetails, RemoteIpDetails,
    RuntimeContext,
};

pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "tcsh", "csh", "yash",
];

const MAX_HASHES: usize = 4096;
const MAX_PROCESSES: usize = 65_536;

#[derive(Default)]
pub struct ReverseShell {
    shell_hashes: HashSet<String>,
    /// Bit n set: fd n of the process was replaced by an inet socket.
    stdio: HashMap<ProcKey, u8>,
}

impl ReverseShell {
    fn is_shell(&self, p: &Process) -> bool {
        SHELLS.contains(&p.exe_basename())
            || SHELLS.contains(&p.name.as_str())
            || p.sha256
                .get()
                .is_some_and(|h| self.shell_hashes.contains(h))
    }

    fn signal(p: &Process, socket: Option<&SocketFacts>, how: &str) -> Signal {
        let mut context = RuntimeContext::default();
        let mut action = None;
        if let Some(s) = socket {
            context.address_family = Some(match s.family.as_str() {
                "inet6" => "AF_INET6".to_owned(),
                _ => "AF_INET".to_owned(),
            });
            context.iana_protocol_number = match s.protocol.as_str() {
                "tcp" => Some(6),
                "udp" => Some(17),
                _ => None,
            };
            let ip = |e: &Option<crate::detect::event::Endpoint>| e.as_ref().map(|e| e.ip.clone());
            let v6 = s.family == "inet6";
            action = Some(Action::network_connection(NetworkConnectionAction {
                blocked: Some(false),
                connection_direction: Some("UNKNOWN".into()),
                protocol: Some(s.protocol.to_ascii_uppercase()),
                local_ip_details: Some(LocalIpDetails {
                    ip_address_v4: ip(&s.local).filter(|_| !v6),
                    ip_address_v6: ip(&s.local).filter(|_| v6),
                }),
                remote_ip_details: Some(RemoteIpDetails {
                    ip_address_v4: ip(&s.remote).filter(|_| !v6),
                    ip_address_v6: ip(&s.remote).filter(|_| v6),
                    ..RemoteIpDetails::default()
                }),
                local_port_details: s.local.as_ref().map(|e| PortDetails {
                    port: Some(e.port.into()),
                    port_name: None,
                }),
                remote_port_details: s.remote.as_ref().map(|e| PortDetails {
                    port: Some(e.port.into()),
                    port_name: None,
                }),
                ..NetworkConnectionAction::default()
            }));
        }
        let mut signal = Signal::new(
            FindingType::ExecutionRuntimeReverseShell,
            "detector.reverse-shell",
        )
        .context(context)
        .description(format!(
            "Shell {} has its standard input and output on a network socket ({how}).",
            p.exe_basename()
        ));
        signal.action = action;
        signal
    }
}

impl Detector for ReverseShell {
    fn name(&self) -> &'static str {
        "reverse-shell"
    }

    fn event_types(&self) -> &'static [EventType] {
        &[
            EventType::ProcessExec,
            EventType::NetStdioSocket,
            EventType::ProcessExit,
        ]
    }

    fn on_event(&mut self, ev: &RuntimeEvent, _ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(p) = &ev.process else { return };
        match ev.kind {
            EventType::ProcessExec => {
                if SHELLS.contains(&p.exe_basename())
                    && let Some(h) = p.sha256.get()
                    && self.shell_hashes.len() < MAX_HASHES
                {
                    self.shell_hashes.insert(h.to_owned());
                }
                let Some(exec) = &ev.exec else { return };
                let socket = exec.stdio_socket.as_ref();
                let inet = socket.is_some_and(SocketFacts::is_inet);
                let fds = &exec.stdio_sockets;
                if inet && fds.contains(&0) && fds.contains(&1) && self.is_shell(p) {
                    out.push(Self::signal(p, socket, "inherited at exec"));
                }
            }
            EventType::NetStdioSocket => {
                let Some(s) = &ev.socket else { return };
                let Some(fd) = s.stdio_fd.filter(|fd| *fd <= 2) else {
                    return;
                };
                if !s.is_inet() || ev.failed() {
                    return;
                }
                bound(&mut self.stdio, MAX_PROCESSES);
                let bits = self.stdio.entry(proc_key(p)).or_default();
                let before = *bits;
                *bits |= 1 << fd;
                let complete = |b: u8| b & 0b11 == 0b11;
                if complete(*bits) && !complete(before) && self.is_shell(p) {
                    out.push(Self::signal(p, Some(s), "redirected with dup2"));
                }
            }
            EventType::ProcessExit if !self.stdio.is_empty() => {
                self.stdio.remove(&proc_key(p));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::detect::config::EngineConfig;
    use crate::intel::IntelIndex;

    fn exec(name: &str, exe: &str, sha: &str, stdio: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"process_exec","time":"2026-01-01T00:00:01Z","process":{},"exec":{stdio}}}"#,
            process(50, name, exe, &format!(r#""sha256":"{sha}""#))
        ))
    }

    const TCP_STDIO: &str = r#"{"stdio_sockets":[0,1,2],"stdio_socket":{"family":"inet","protocol":"tcp","local":{"ip":"127.0.0.1","port":40000},"remote":{"ip":"127.0.0.1","port":1337}}}"#;

    fn detect(events: &[RuntimeEvent]) -> Vec<FindingType> {
        run(
            &mut ReverseShell::default(),
            &EngineConfig::default(),
            &IntelIndex::default(),
            events,
        )
    }

    #[test]
    fn renamed_bash_with_loopback_socket_stdio_is_a_reverse_shell() {
        let found = detect(&[
            exec("bash", "/usr/bin/bash", "bashhash", "{}"),
            exec(
                "1700000000-reve",
                "/tmp/1700000000-reverseShell",
                "bashhash",
                TCP_STDIO,
            ),
        ]);
        assert_eq!(found, [FindingType::ExecutionRuntimeReverseShell]);
    }

    #[test]
    fn dup2_of_a_socket_onto_stdin_and_stdout_of_a_shell() {
        let dup = |fd: u32| {
            event(&format!(
                r#"{{"type":"net_stdio_socket","time":"2026-01-01T00:00:02Z","result":{fd},"process":{},"socket":{{"family":"inet6","protocol":"tcp","remote":{{"ip":"2001:db8::1","port":443}},"stdio_fd":{fd}}}}}"#,
                process(60, "sh", "/bin/sh", "")
            ))
        };
        assert_eq!(
            detect(&[dup(0), dup(1), dup(2)]),
            [FindingType::ExecutionRuntimeReverseShell]
        );
        assert!(
            detect(&[dup(0), dup(2)]).is_empty(),
            "stdout still a terminal"
        );
    }

    #[test]
    fn no_finding_for_non_shells_unix_sockets_or_pipes() {
        let unix = r#"{"stdio_sockets":[0,1],"stdio_socket":{"family":"unix","protocol":"stream","path":"/run/systemd/journal/stdout"}}"#;
        assert!(detect(&[exec("bash", "/usr/bin/bash", "h", unix)]).is_empty());
        assert!(detect(&[exec("python3", "/usr/bin/python3", "py", TCP_STDIO)]).is_empty());
        let only_stdout =
            r#"{"stdio_sockets":[1],"stdio_socket":{"family":"inet","protocol":"tcp"}}"#;
        assert!(detect(&[exec("bash", "/usr/bin/bash", "h", only_stdout)]).is_empty());
        assert!(detect(&[exec("bash", "/usr/bin/bash", "h", "{}")]).is_empty());
    }
}
