//! Stateful detections written in Rust: behaviours that need more than one event (a shell whose
//! stdio was switched to a socket, a binary written then executed, a process that asked to be
//! traced and then executed), a comparison between two fields of one event (a process writing
//! another process's memory), or lookups in the threat-intel index.
//!
//! Each detector sees only the event types it names, keeps bounded state, and reads time only
//! from events.

pub mod injection;
pub mod intel;
pub mod new_binary;
pub mod reverse_shell;

use super::config::EngineConfig;
use super::event::{EventType, Process, RuntimeEvent};
use super::signal::Signal;
use crate::intel::IntelIndex;

/// What a detector may consult besides the event.
pub struct DetectContext<'a> {
    pub config: &'a EngineConfig,
    pub intel: &'a IntelIndex,
}

pub trait Detector: Send {
    /// `detector.<name>`, recorded in `additionalInfo.ward.ruleId`.
    fn name(&self) -> &'static str;
    /// The event types `on_event` wants; the engine indexes detectors by them.
    fn event_types(&self) -> &'static [EventType];
    /// Looks at one event and appends what it detects to `out` (appending rather than returning a
    /// vector keeps the common no-detection case free of allocation).
    fn on_event(&mut self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>);
}

/// Every built-in detector.
pub fn builtin() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(reverse_shell::ReverseShell::default()),
        Box::new(new_binary::NewBinary::default()),
        Box::new(injection::Injection::default()),
        Box::new(intel::Intel),
    ]
}

/// (pid, start time): a process instance; pids alone are reused.
pub(crate) type ProcKey = (u32, String);

pub(crate) fn proc_key(p: &Process) -> ProcKey {
    (p.pid, p.start_time.clone())
}

/// Drops all entries of a map that outgrew its bound: detectors keep state for live processes,
/// and losing it at the bound only costs detections in flight, never a false finding.
pub(crate) fn bound<K, V>(map: &mut std::collections::HashMap<K, V>, max: usize) {
    if map.len() > max {
        map.clear();
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::findings::FindingType;

    pub fn event(json: &str) -> RuntimeEvent {
        RuntimeEvent::from_json(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// A process object with the given name/executable, pid and extra members (JSON fragment).
    pub fn process(pid: u32, name: &str, exe: &str, extra: &str) -> String {
        let sep = if extra.is_empty() { "" } else { "," };
        format!(
            r#"{{"pid":{pid},"start_time":"2026-01-01T00:00:00Z","name":"{name}","executable":"{exe}","args":["{name}"],"uid":1000,"euid":1000,"ancestors":[{{"pid":1,"name":"systemd","executable":"/sbin/init"}}]{sep}{extra}}}"#
        )
    }

    pub fn run(
        detector: &mut dyn Detector,
        config: &EngineConfig,
        intel: &IntelIndex,
        events: &[RuntimeEvent],
    ) -> Vec<FindingType> {
        let ctx = DetectContext { config, intel };
        let mut out = Vec::new();
        for ev in events {
            if detector.event_types().contains(&ev.kind) {
                detector.on_event(ev, &ctx, &mut out);
            }
        }
        out.into_iter().map(|s| s.finding_type).collect()
    }
}
