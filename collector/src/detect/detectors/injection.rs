//! Process injection and anti-debugging:
//! * DefenseEvasion:Runtime/ProcessInjection.Ptrace: ptrace requests that write another process
//!   (POKE*, SETREGS*), attaching to one (ATTACH, SEIZE; not from debuggers), or a process that asked
//!   to be traced (TRACEME) and then executed a program, handing the new program to its tracer —
//!   the GuardDuty tester's scenario.
//! * DefenseEvasion:Runtime/PtraceAntiDebugging: TRACEME by a process that never executes
//!   afterwards (it traces itself so no debugger can attach); reported when it exits, the first
//!   moment "never" is known.
//! * DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite: process_vm_writev on another
//!   process; attempts count, failed or not.
//! * DefenseEvasion:Runtime/ProcessInjection.Proc: opening another process's /proc/<pid>/mem for
//!   writing.
//!
//! "Another process" needs comparing two fields of one event, which is why these are Rust.

use std::collections::HashMap;

use super::{DetectContext, Detector, ProcKey, bound, proc_key};
use crate::detect::event::{EventType, Process, RuntimeEvent};
use crate::detect::signal::{Signal, ancestor_details};
use crate::findings::{FindingType, RuntimeContext};

/// Tracers whose ATTACH / SEIZE is debugging, not injection.
pub const DEBUGGERS: &[&str] = &[
    "gdb",
    "gdbserver",
    "lldb",
    "lldb-server",
    "strace",
    "ltrace",
    "perf",
    "valgrind",
    "rr",
];

const MAX_PENDING: usize = 16_384;

#[derive(Default)]
pub struct Injection {
    /// Processes that called PTRACE_TRACEME and have not executed or exited since.
    traceme: HashMap<ProcKey, ()>,
}

fn is_other(p: &Process, pid: u64) -> bool {
    pid != u64::from(p.pid) && pid != u64::from(p.ns_pid) && pid != 0
}

fn target_context(ev: &RuntimeEvent) -> RuntimeContext {
    RuntimeContext {
        target_process: ev.target.as_ref().map(|t| {
            let mut details = t.process.as_ref().map(ancestor_details).unwrap_or_default();
            details.pid.get_or_insert(t.pid as i64);
            Box::new(details)
        }),
        ..RuntimeContext::default()
    }
}

/// `/proc/<pid>/mem` or `/proc/<pid>/task/<tid>/mem` → pid.
fn proc_mem_pid(path: &str) -> Option<u64> {
    let rest = path.strip_prefix("/proc/")?;
    let (pid, tail) = rest.split_once('/')?;
    let pid: u64 = pid.parse().ok()?;
    let is_mem = tail == "mem"
        || tail
            .strip_prefix("task/")
            .and_then(|t| t.split_once('/'))
            .is_some_and(|(tid, m)| m == "mem" && tid.parse::<u64>().is_ok());
    is_mem.then_some(pid)
}

impl Detector for Injection {
    fn name(&self) -> &'static str {
        "injection"
    }

    fn event_types(&self) -> &'static [EventType] {
        &[
            EventType::Ptrace,
            EventType::ProcessVmAccess,
            EventType::FileOpen,
            EventType::ProcessExec,
            EventType::ProcessExit,
        ]
    }

    fn on_event(&mut self, ev: &RuntimeEvent, _ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(p) = &ev.process else { return };
        match ev.kind {
            EventType::Ptrace => {
                let Some(t) = &ev.target else { return };
                let request = t.request.as_deref().unwrap_or("");
                let writes = matches!(
                    request,
                    "PTRACE_POKETEXT"
                        | "PTRACE_POKEDATA"
                        | "PTRACE_POKEUSER"
                        | "PTRACE_SETREGS"
                        | "PTRACE_SETREGSET"
                );
                let attaches = matches!(request, "PTRACE_ATTACH" | "PTRACE_SEIZE")
                    && !DEBUGGERS.contains(&p.exe_basename());
                if request == "PTRACE_TRACEME" {
                    if !ev.failed() {
                        bound(&mut self.traceme, MAX_PENDING);
                        self.traceme.insert(proc_key(p), ());
                    }
                } else if (writes || attaches) && is_other(p, t.pid) {
                    out.push(
                        Signal::new(
                            FindingType::DefenseEvasionRuntimeProcessInjectionPtrace,
                            "detector.injection.ptrace",
                        )
                        .context(target_context(ev))
                        .description(format!("A process used {request} on process {}.", t.pid)),
                    );
                }
            }
            // Most processes never call TRACEME: skip building the key (an allocation) for them.
            EventType::ProcessExec
                if !self.traceme.is_empty() && self.traceme.remove(&proc_key(p)).is_some() =>
            {
                let tracer = p.ancestors.first();
                let mut signal = Signal::new(FindingType::DefenseEvasionRuntimeProcessInjectionPtrace, "detector.injection.traceme-exec")
                        .description(format!(
                            "A process asked to be traced (PTRACE_TRACEME) and then executed {}, handing the new program to its tracer {}.",
                            p.executable,
                            tracer.map(|a| format!("{} (pid {})", a.name, a.pid)).unwrap_or_else(|| "(unknown)".into())
                        ));
                if DEBUGGERS.contains(
                    &tracer
                        .map(|a| crate::detect::event::basename(&a.executable).unwrap_or(&a.name))
                        .unwrap_or(""),
                ) {
                    return;
                }
                signal.context.target_process =
                    Some(Box::new(crate::detect::signal::process_details(p)));
                out.push(signal);
            }
            EventType::ProcessExit
                if !self.traceme.is_empty() && self.traceme.remove(&proc_key(p)).is_some() =>
            {
                out.push(
                        Signal::new(FindingType::DefenseEvasionRuntimePtraceAntiDebugging, "detector.injection.anti-debugging")
                            .description("A process made itself traced with PTRACE_TRACEME, blocking debuggers, and never executed another program."),
                    );
            }
            EventType::ProcessVmAccess => {
                let Some(t) = &ev.target else { return };
                if t.write == Some(true) && is_other(p, t.pid) {
                    out.push(
                        Signal::new(
                            FindingType::DefenseEvasionRuntimeProcessInjectionVirtualMemoryWrite,
                            "detector.injection.vm-write",
                        )
                        .context(target_context(ev))
                        .description(format!(
                            "A process called process_vm_writev on process {}.",
                            t.pid
                        )),
                    );
                }
            }
            EventType::FileOpen => {
                let Some(file) = &ev.file else { return };
                let Some(pid) = proc_mem_pid(&file.path) else {
                    return;
                };
                if file.opens_for_write() && is_other(p, pid) {
                    let mut signal = Signal::new(
                        FindingType::DefenseEvasionRuntimeProcessInjectionProc,
                        "detector.injection.proc-mem",
                    )
                    .description(format!("A process opened {} for writing.", file.path));
                    signal.context.target_process =
                        Some(Box::new(crate::findings::ProcessDetails {
                            pid: Some(pid as i64),
                            ..Default::default()
                        }));
                    signal.context.file_path = Some(file.path.clone());
                    out.push(signal);
                }
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

    fn ev(kind: &str, name: &str, pid: u32, facts: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"{kind}","time":"2026-01-01T00:00:01Z","result":0,"process":{}{facts}}}"#,
            process(pid, name, &format!("/usr/bin/{name}"), "")
        ))
    }

    fn detect(events: &[RuntimeEvent]) -> Vec<FindingType> {
        run(
            &mut Injection::default(),
            &EngineConfig::default(),
            &IntelIndex::default(),
            events,
        )
    }

    #[test]
    fn ptrace_writes_and_attaches() {
        let poke = ev(
            "ptrace",
            "inject",
            10,
            r#","target":{"pid":20,"request":"PTRACE_POKETEXT","process":{"pid":20,"name":"victim"}}"#,
        );
        assert_eq!(
            detect(&[poke]),
            [FindingType::DefenseEvasionRuntimeProcessInjectionPtrace]
        );
        let attach = ev(
            "ptrace",
            "inject",
            10,
            r#","target":{"pid":20,"request":"PTRACE_ATTACH"}"#,
        );
        assert_eq!(
            detect(&[attach]),
            [FindingType::DefenseEvasionRuntimeProcessInjectionPtrace]
        );
        let gdb = ev(
            "ptrace",
            "gdb",
            10,
            r#","target":{"pid":20,"request":"PTRACE_ATTACH"}"#,
        );
        assert!(detect(&[gdb]).is_empty());
        let own = ev(
            "ptrace",
            "inject",
            10,
            r#","target":{"pid":10,"request":"PTRACE_POKEDATA"}"#,
        );
        assert!(detect(&[own]).is_empty());
    }

    #[test]
    fn traceme_then_exec_is_injection_and_traceme_then_exit_is_anti_debugging() {
        let traceme = || {
            ev(
                "ptrace",
                "ptrace",
                30,
                r#","target":{"pid":0,"request":"PTRACE_TRACEME"}"#,
            )
        };
        let exec = ev("process_exec", "ls", 30, r#","exec":{}"#);
        assert_eq!(
            detect(&[traceme(), exec]),
            [FindingType::DefenseEvasionRuntimeProcessInjectionPtrace]
        );
        let exit = ev("process_exit", "ptrace", 30, r#","exit":{"code":0}"#);
        assert_eq!(
            detect(&[traceme(), exit]),
            [FindingType::DefenseEvasionRuntimePtraceAntiDebugging]
        );
        let plain_exec = ev("process_exec", "ls", 30, r#","exec":{}"#);
        assert!(detect(&[plain_exec]).is_empty());
    }

    #[test]
    fn vm_writes_to_others_only() {
        let write = ev(
            "process_vm_access",
            "vmRwTest",
            40,
            r#","target":{"pid":41,"write":true}"#,
        );
        assert_eq!(
            detect(&[write]),
            [FindingType::DefenseEvasionRuntimeProcessInjectionVirtualMemoryWrite]
        );
        let read = ev(
            "process_vm_access",
            "vmRwTest",
            40,
            r#","target":{"pid":41,"write":false}"#,
        );
        assert!(detect(&[read]).is_empty());
    }

    #[test]
    fn proc_mem_writes_to_others_only() {
        let open = |path: &str, flags: &str| {
            ev(
                "file_open",
                "inj",
                50,
                &format!(r#","file":{{"path":"{path}","flags":{flags}}}"#),
            )
        };
        assert_eq!(
            detect(&[open("/proc/51/mem", r#"["O_RDWR"]"#)]),
            [FindingType::DefenseEvasionRuntimeProcessInjectionProc]
        );
        assert_eq!(
            detect(&[open("/proc/51/task/52/mem", r#"["O_WRONLY"]"#)]),
            [FindingType::DefenseEvasionRuntimeProcessInjectionProc]
        );
        assert!(detect(&[open("/proc/51/mem", r#"["O_RDONLY"]"#)]).is_empty());
        assert!(
            detect(&[open("/proc/50/mem", r#"["O_RDWR"]"#)]).is_empty(),
            "own memory"
        );
        assert!(detect(&[open("/proc/51/maps", r#"["O_RDWR"]"#)]).is_empty());
    }
}
