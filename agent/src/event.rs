//! The agent's output event model (one JSON object per event, documented in README "Event schema").

use std::sync::Arc;

use serde::Serialize;

use crate::proctable::Process;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    ProcessExec,
    ProcessFork,
    ProcessExit,
}

impl EventType {
    pub const ALL: [EventType; 3] = [
        EventType::ProcessExec,
        EventType::ProcessFork,
        EventType::ProcessExit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::ProcessExec => "process_exec",
            EventType::ProcessFork => "process_fork",
            EventType::ProcessExit => "process_exit",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[derive(Debug, Serialize)]
pub struct AgentEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the kernel saw it, RFC 3339 UTC with nanoseconds.
    pub time: String,
    /// For exec, the process after the exec; for fork, the new child (its first ancestor is the parent).
    pub process: Arc<Process>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ExitStatus {
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
    pub core_dumped: bool,
}

impl ExitStatus {
    /// From a raw wait status as the kernel keeps it in `task->exit_code`.
    pub fn from_wait_status(status: u32) -> Self {
        let signal = status & 0x7f;
        ExitStatus {
            code: (status >> 8) & 0xff,
            signal: (signal != 0).then_some(signal),
            core_dumped: status & 0x80 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_decoding() {
        assert_eq!(
            ExitStatus::from_wait_status(3 << 8),
            ExitStatus {
                code: 3,
                signal: None,
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus {
                code: 0,
                signal: Some(9),
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(0x80 | 11),
            ExitStatus {
                code: 0,
                signal: Some(11),
                core_dumped: true
            }
        );
    }

    #[test]
    fn type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
        assert_eq!(EventType::parse("process_spawn"), None);
    }
}
