//! Execution:Runtime/NewBinaryExecuted and NewLibraryLoaded: code that was not part of the workload.
//!
//! NewLibraryLoaded: a file created, written or moved into place by a process of a container is then
//! mapped executable (`library_load`: ld.so or dlopen loading it) by a process of the same container.
//! The finding names the library (`context.libraryPath`), its writer and when it was written.
//!
//! NewBinaryExecuted has two signs, per container (and per host when `container_rules_on_hosts` is on, since GuardDuty
//! raises this type for containers only):
//! * written then run: a file created, written or moved into place by a process of the same
//!   container is executed. The finding names the writer (`context.modifyingProcess`) and when
//!   (`context.modifiedAt`). This fires at any time, learning period or not: containers are
//!   built from images, so a binary that appears at run time is the anomaly.
//! * first seen after learning: an executable (path and hash) never run in this container or on
//!   this host during its first `learning_period_ms` of event time runs afterwards.
//!
//! The agent reports no image name, so the baseline is per container instance, not per image.

use std::collections::{HashMap, HashSet};

use super::{DetectContext, Detector, bound};
use crate::detect::event::{EventType, Process, RuntimeEvent};
use crate::detect::signal::{Signal, process_details};
use crate::findings::time::format_millis;
use crate::findings::{FindingType, RuntimeContext};

const MAX_WRITTEN: usize = 100_000;
const MAX_SCOPES: usize = 10_000;
const MAX_EXECUTABLES_PER_SCOPE: usize = 20_000;

struct Written {
    by: Process,
    at: i64,
}

struct Baseline {
    started: i64,
    executables: HashSet<String>,
}

#[derive(Default)]
pub struct NewBinary {
    /// (scope, path) → the latest write.
    written: HashMap<(String, String), Written>,
    baselines: HashMap<String, Baseline>,
}

/// The container id, or "" for the host; `None` when the process is out of scope.
fn scope(p: &Process, ctx: &DetectContext<'_>) -> Option<String> {
    match p.container_id() {
        Some(id) => Some(id.to_owned()),
        None if ctx.config.container_rules_on_hosts => Some(String::new()),
        None => None,
    }
}

impl Detector for NewBinary {
    fn name(&self) -> &'static str {
        "new-binary"
    }

    fn event_types(&self) -> &'static [EventType] {
        &[
            EventType::FileOpen,
            EventType::FileRename,
            EventType::FileLink,
            EventType::ProcessExec,
            EventType::LibraryLoad,
        ]
    }

    fn on_event(&mut self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(p) = &ev.process else { return };
        let Some(scope) = scope(p, ctx) else { return };
        let Some(now) = ev.time_millis() else { return };
        if ev.kind == EventType::LibraryLoad {
            self.library_loaded(ev, p, scope, out);
            return;
        }
        if ev.kind != EventType::ProcessExec {
            let Some(file) = &ev.file else { return };
            if ev.failed() {
                return;
            }
            let path = match ev.kind {
                EventType::FileOpen if file.opens_for_write() => &file.path,
                EventType::FileRename | EventType::FileLink => match &file.target {
                    Some(t) => t,
                    None => return,
                },
                _ => return,
            };
            bound(&mut self.written, MAX_WRITTEN);
            let mut writer = p.clone();
            writer.args.truncate(16);
            self.written.insert(
                (scope, path.clone()),
                Written {
                    by: writer,
                    at: now,
                },
            );
            return;
        }
        if let Some(w) = self.written.get(&(scope.clone(), p.executable.clone())) {
            let context = RuntimeContext {
                modifying_process: Some(Box::new(process_details(&w.by))),
                modified_at: Some(format_millis(w.at)),
                ..RuntimeContext::default()
            };
            out.push(
                Signal::new(
                    FindingType::ExecutionRuntimeNewBinaryExecuted,
                    "detector.new-binary.written",
                )
                .context(context)
                .description(format!(
                    "{} was written by {} (pid {}) in this workload and then executed.",
                    p.executable, w.by.name, w.by.pid
                )),
            );
            return;
        }
        bound(&mut self.baselines, MAX_SCOPES);
        let baseline = self.baselines.entry(scope).or_insert_with(|| Baseline {
            started: now,
            executables: HashSet::new(),
        });
        let identity = format!("{}\0{}", p.executable, p.sha256.get().unwrap_or(""));
        if baseline.executables.contains(&identity) {
            return;
        }
        let learning = now - baseline.started < ctx.config.learning_period_ms;
        if baseline.executables.len() < MAX_EXECUTABLES_PER_SCOPE {
            baseline.executables.insert(identity);
        }
        if !learning {
            out.push(
                Signal::new(
                    FindingType::ExecutionRuntimeNewBinaryExecuted,
                    "detector.new-binary.first-seen",
                )
                .description(format!(
                    "{} had not run in this workload during its learning period.",
                    p.executable
                )),
            );
        }
    }
}

impl NewBinary {
    fn library_loaded(&self, ev: &RuntimeEvent, p: &Process, scope: String, out: &mut Vec<Signal>) {
        let Some(file) = &ev.file else { return };
        let Some(w) = self.written.get(&(scope, file.path.clone())) else {
            return;
        };
        let context = RuntimeContext {
            library_path: Some(file.path.clone()),
            modifying_process: Some(Box::new(process_details(&w.by))),
            modified_at: Some(format_millis(w.at)),
            ..RuntimeContext::default()
        };
        out.push(
            Signal::new(
                FindingType::ExecutionRuntimeNewLibraryLoaded,
                "detector.new-binary.library",
            )
            .context(context)
            .description(format!(
                "{} was written by {} (pid {}) in this workload and then loaded by {} (pid {}).",
                file.path, w.by.name, w.by.pid, p.name, p.pid
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::detect::config::EngineConfig;
    use crate::intel::IntelIndex;

    const CONTAINER: &str = r#""container":{"id":"c0ffee","runtime":"containerd"}"#;

    fn exec(exe: &str, secs: u32, extra: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"process_exec","time":"2026-01-01T00:{:02}:{:02}Z","process":{},"exec":{{}}}}"#,
            secs / 60,
            secs % 60,
            process(70, "x", exe, extra)
        ))
    }

    fn write(path: &str, extra: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"file_open","time":"2026-01-01T00:00:01Z","result":3,"process":{},"file":{{"path":"{path}","flags":["O_WRONLY","O_CREAT","O_TRUNC"]}}}}"#,
            process(71, "wget", "/usr/bin/wget", extra)
        ))
    }

    fn load(path: &str, extra: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"library_load","time":"2026-01-01T00:00:05Z","syscall":"mmap","result":140000000,"process":{},"file":{{"path":"{path}","inode":42}}}}"#,
            process(72, "python3", "/usr/bin/python3", extra)
        ))
    }

    fn detect(config: &EngineConfig, events: &[RuntimeEvent]) -> Vec<FindingType> {
        run(
            &mut NewBinary::default(),
            config,
            &IntelIndex::default(),
            events,
        )
    }

    #[test]
    fn binary_written_in_a_container_then_run() {
        let found = detect(
            &EngineConfig::default(),
            &[
                write("/tmp/xmrig", CONTAINER),
                exec("/tmp/xmrig", 2, CONTAINER),
            ],
        );
        assert_eq!(found, [FindingType::ExecutionRuntimeNewBinaryExecuted]);
        let mut d = NewBinary::default();
        let ctx = DetectContext {
            config: &EngineConfig::default(),
            intel: &IntelIndex::default(),
        };
        let mut out = Vec::new();
        d.on_event(&write("/tmp/xmrig", CONTAINER), &ctx, &mut out);
        d.on_event(&exec("/tmp/xmrig", 2, CONTAINER), &ctx, &mut out);
        let modifier = out[0].context.modifying_process.as_ref().unwrap();
        assert_eq!(modifier.name.as_deref(), Some("wget"));
        assert_eq!(
            out[0].context.modified_at.as_deref(),
            Some("2026-01-01T00:00:01.000Z")
        );
    }

    #[test]
    fn other_containers_and_hosts_do_not_count_unless_switched_on() {
        let other = r#""container":{"id":"beef","runtime":"containerd"}"#;
        assert!(
            detect(
                &EngineConfig::default(),
                &[write("/tmp/x", other), exec("/tmp/x", 2, CONTAINER)]
            )
            .is_empty()
        );
        assert!(
            detect(
                &EngineConfig::default(),
                &[write("/tmp/x", ""), exec("/tmp/x", 2, "")]
            )
            .is_empty()
        );
        let hosts = EngineConfig {
            container_rules_on_hosts: true,
            ..EngineConfig::default()
        };
        assert_eq!(
            detect(&hosts, &[write("/tmp/x", ""), exec("/tmp/x", 2, "")]),
            [FindingType::ExecutionRuntimeNewBinaryExecuted]
        );
    }

    #[test]
    fn first_seen_after_learning_only() {
        let config = EngineConfig {
            learning_period_ms: 60_000,
            ..EngineConfig::default()
        };
        let found = detect(
            &config,
            &[
                exec("/usr/bin/entry", 0, CONTAINER),
                exec("/usr/bin/learned", 30, CONTAINER),
                exec("/usr/bin/learned", 90, CONTAINER),
                exec("/usr/bin/entry", 100, CONTAINER),
            ],
        );
        assert!(found.is_empty(), "{found:?}");
        let found = detect(
            &config,
            &[
                exec("/usr/bin/entry", 0, CONTAINER),
                exec("/usr/bin/late", 61, CONTAINER),
                exec("/usr/bin/late", 62, CONTAINER),
            ],
        );
        assert_eq!(
            found,
            [FindingType::ExecutionRuntimeNewBinaryExecuted],
            "once per binary"
        );
    }

    #[test]
    fn library_written_in_a_container_then_loaded() {
        let mut d = NewBinary::default();
        let ctx = DetectContext {
            config: &EngineConfig::default(),
            intel: &IntelIndex::default(),
        };
        let mut out = Vec::new();
        d.on_event(&write("/tmp/libevil.so", CONTAINER), &ctx, &mut out);
        d.on_event(&load("/tmp/libevil.so", CONTAINER), &ctx, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].finding_type,
            FindingType::ExecutionRuntimeNewLibraryLoaded
        );
        let c = &out[0].context;
        assert_eq!(c.library_path.as_deref(), Some("/tmp/libevil.so"));
        assert_eq!(
            c.modifying_process.as_ref().unwrap().name.as_deref(),
            Some("wget")
        );
        assert_eq!(c.modified_at.as_deref(), Some("2026-01-01T00:00:01.000Z"));
    }

    #[test]
    fn libraries_not_written_here_or_elsewhere_do_not_fire() {
        let other = r#""container":{"id":"beef","runtime":"containerd"}"#;
        let none = detect(
            &EngineConfig::default(),
            &[
                // A library from the image, never written at run time.
                load("/usr/lib/x86_64-linux-gnu/libc.so.6", CONTAINER),
                // Written in another container.
                write("/tmp/libx.so", other),
                load("/tmp/libx.so", CONTAINER),
                // Written and loaded on the host, with the host switch off.
                write("/tmp/liby.so", ""),
                load("/tmp/liby.so", ""),
                // A different file was written.
                write("/tmp/libz.so.tmp", CONTAINER),
                load("/tmp/libz.so", CONTAINER),
            ],
        );
        assert!(none.is_empty(), "{none:?}");
        let hosts = EngineConfig {
            container_rules_on_hosts: true,
            ..EngineConfig::default()
        };
        assert_eq!(
            detect(
                &hosts,
                &[write("/tmp/liby.so", ""), load("/tmp/liby.so", "")]
            ),
            [FindingType::ExecutionRuntimeNewLibraryLoaded]
        );
    }
}
