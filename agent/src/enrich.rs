//! Kernel records to enriched agent events: keeps the process table and attaches process, ancestry,
//! container and (once hashed) the executable's SHA-256.

use std::sync::Arc;

use ward_event::ExeHash;

use crate::clock::{Clock, rfc3339};
use crate::container;
use crate::decode::{Dns, Exec, Exit, Fork, KernelEvent, Syscall};
use crate::event::{AgentEvent, Details, EventType, ExecFacts, ExitFacts};
use crate::hash::{ExeHasher, OpenExe};
use crate::interpret::{self, socket_facts};
use crate::proctable::{Ancestor, Namespaces, ProcKey, Process, ProcessTable};

/// An executable still to be hashed; whoever runs it sets `cell` (a pending hash).
pub struct HashJob {
    pub exe: OpenExe,
    pub cell: ExeHash,
}

pub struct Enriched {
    pub event: AgentEvent,
    pub hash_job: Option<HashJob>,
}

pub struct Enricher {
    pub table: ProcessTable,
    clock: Clock,
    hasher: Arc<ExeHasher>,
}

impl Enricher {
    pub fn new(table: ProcessTable, clock: Clock, hasher: Arc<ExeHasher>) -> Self {
        Enricher {
            table,
            clock,
            hasher,
        }
    }

    fn key(&self, pid: u32, start_ns: u64) -> ProcKey {
        ProcKey {
            pid,
            start_ticks: self.clock.ticks(start_ns),
        }
    }

    pub fn apply(&mut self, event: KernelEvent) -> Enriched {
        let time = rfc3339(self.clock.wall(event.header().time_ns));
        match event {
            KernelEvent::Exec(e) => self.exec(*e, time),
            KernelEvent::Fork(e) => self.fork(e, time),
            KernelEvent::Exit(e) => self.exit(e, time),
            KernelEvent::Syscall(e) => self.syscall(*e, time),
            KernelEvent::Dns(e) => self.dns(*e, time),
        }
    }

    /// The process behind a record, known or (when the agent never saw it) built from the record itself.
    fn process_of(&self, key: ProcKey, start_ns: u64, comm: &str) -> Arc<Process> {
        self.table.get(key).cloned().unwrap_or_else(|| {
            let start_time = rfc3339(self.clock.wall(start_ns));
            let unknown_parent = ProcKey {
                pid: 0,
                start_ticks: 0,
            };
            Arc::new(minimal(
                key,
                unknown_parent,
                start_time,
                comm.to_string(),
                Vec::new(),
            ))
        })
    }

    fn syscall(&mut self, e: Syscall, time: String) -> Enriched {
        let key = self.key(e.hdr.tgid, e.hdr.start_ns);
        let process = self.process_of(key, e.hdr.start_ns, "");
        let table = &self.table;
        let details = interpret::details(&e, |pid| table.live(pid).map(|p| p.summary()));
        let event = AgentEvent {
            kind: interpret::event_type(&e),
            time,
            process: Some(process),
            call: Some(interpret::call(&e)),
            details,
        };
        Enriched {
            event,
            hash_job: None,
        }
    }

    fn dns(&mut self, e: Dns, time: String) -> Enriched {
        // The kernel could not read the owner's start time in socket context: the pid's live process is it
        // (the packet was sent or received moments ago).
        let process = self.table.by_pid(e.hdr.tgid).cloned();
        let facts = crate::dns::facts(&e);
        let kind = if facts.response {
            EventType::DnsResponse
        } else {
            EventType::DnsQuery
        };
        let event = AgentEvent {
            kind,
            time,
            process,
            call: None,
            details: Some(Details::Dns(facts)),
        };
        Enriched {
            event,
            hash_job: None,
        }
    }

    fn exec(&mut self, e: Exec, time: String) -> Enriched {
        let key = self.key(e.hdr.tgid, e.hdr.start_ns);
        let parent = self.key(e.task.ppid, e.task.parent_start_ns);
        let executable = absolute(&e.filename, &e.cwd);
        // On hybrid (v1+v2) hosts runtimes name the container in the v1 hierarchies only.
        let container = container::from_cgroup_path(&e.cgroup)
            .or_else(|| container::from_cgroup_path(&e.cgroup_v1));
        let sha256 = ExeHash::pending();
        let hash_job = match self.hasher.cached(&e.exe) {
            Some(hex) => {
                sha256.set(hex);
                None
            }
            None => self
                .hasher
                .open(key.pid, &executable, e.exe)
                .map(|exe| HashJob {
                    exe,
                    cell: sha256.clone(),
                }),
        };
        let process = Arc::new(Process {
            key,
            parent,
            info: ward_event::Process {
                pid: key.pid,
                ns_pid: e.task.ns_pid,
                ppid: e.task.ppid,
                start_time: rfc3339(self.clock.wall(e.hdr.start_ns)),
                name: e.comm,
                executable,
                args: e.args,
                args_truncated: e.args_truncated,
                cwd: e.cwd,
                uid: e.task.uid,
                euid: e.task.euid,
                gid: e.task.gid,
                egid: e.task.egid,
                login_uid: (e.task.loginuid != u32::MAX).then_some(e.task.loginuid),
                namespaces: namespaces([e.task.pid_ns, e.task.mnt_ns, e.task.net_ns]),
                cgroup_id: e.task.cgroup_id,
                cgroup: e.cgroup,
                container,
                sha256,
                ancestors: self.table.ancestry(parent),
                ..ward_event::Process::default()
            },
        });
        self.table.insert(process.clone());
        let facts = ExecFacts {
            fileless: e.exe_nlink == 0,
            setuid: (e.exe_mode & 0o4000 != 0 && e.task.euid != e.task.uid)
                || (e.exe_mode & 0o2000 != 0 && e.task.egid != e.task.gid),
            stdio_sockets: (0..3)
                .filter(|fd| e.stdio_sockets & (1 << fd) != 0)
                .collect(),
            stdio_socket: e.stdio_socket.as_ref().map(socket_facts),
        };
        let details = (!facts.is_empty()).then_some(Details::Exec(facts));
        let event = AgentEvent {
            kind: EventType::ProcessExec,
            time,
            process: Some(process),
            call: None,
            details,
        };
        Enriched { event, hash_job }
    }

    fn fork(&mut self, e: Fork, time: String) -> Enriched {
        let key = self.key(e.hdr.tgid, e.hdr.start_ns);
        let parent_key = self.key(e.parent_tgid, e.parent_start_ns);
        let start_time = rfc3339(self.clock.wall(e.hdr.start_ns));
        let process = match self.table.child_of(parent_key) {
            Some(child) => Process {
                key,
                parent: parent_key,
                info: ward_event::Process {
                    pid: key.pid,
                    ns_pid: e.ns_pid,
                    ppid: parent_key.pid,
                    start_time,
                    name: e.comm,
                    namespaces: namespaces(e.namespaces),
                    ..child
                },
            },
            None => minimal(key, parent_key, start_time, e.comm, Vec::new()),
        };
        let process = Arc::new(process);
        self.table.insert(process.clone());
        let event = AgentEvent {
            kind: EventType::ProcessFork,
            time,
            process: Some(process),
            call: None,
            details: None,
        };
        Enriched {
            event,
            hash_job: None,
        }
    }

    fn exit(&mut self, e: Exit, time: String) -> Enriched {
        let key = self.key(e.hdr.tgid, e.hdr.start_ns);
        let process = match self.table.exit(key) {
            Some(p) => p,
            None => self.process_of(key, e.hdr.start_ns, &e.comm),
        };
        let details = Some(Details::Exit(ExitFacts::from_wait_status(e.status)));
        let event = AgentEvent {
            kind: EventType::ProcessExit,
            time,
            process: Some(process),
            call: None,
            details,
        };
        Enriched {
            event,
            hash_job: None,
        }
    }
}

/// A process known only from one event (it started before the agent and vanished before the scan read it).
fn minimal(
    key: ProcKey,
    parent: ProcKey,
    start_time: String,
    name: String,
    ancestors: Vec<Ancestor>,
) -> Process {
    Process {
        key,
        parent,
        info: ward_event::Process {
            pid: key.pid,
            ppid: parent.pid,
            start_time,
            name,
            ancestors,
            ..ward_event::Process::default()
        },
    }
}

/// Namespace inodes in the kernel record's order: pid, mnt, net.
fn namespaces([pid, mnt, net]: [u32; 3]) -> Namespaces {
    Namespaces { pid, mnt, net }
}

/// The exec path as given, made absolute against the working directory when it is relative.
fn absolute(filename: &str, cwd: &str) -> String {
    if filename.starts_with('/') || filename.is_empty() {
        return filename.to_string();
    }
    let rel = filename.trim_start_matches("./");
    format!("{}/{}", cwd.trim_end_matches('/'), rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_exec_paths_are_made_absolute() {
        assert_eq!(absolute("/bin/ls", "/tmp"), "/bin/ls");
        assert_eq!(absolute("./a.out", "/home/u"), "/home/u/a.out");
        assert_eq!(absolute("bin/x", "/"), "/bin/x");
    }
}
