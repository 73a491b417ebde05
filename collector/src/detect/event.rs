//! The collector's view of one agent event: the JSON objects `ward-agent watch` prints (README
//! "Event schema"), read back. Field names are the agent's; unknown members are ignored and every
//! family object is optional, so a newer agent with more facts still parses.

use serde::{Deserialize, Serialize};

pub use ward_event::{
    Ancestor, BpfFacts, Container, DnsAnswer, DnsFacts, DnsQuestion, EVENT_TYPE_SLOTS, Endpoint,
    EventType, ExeHash, ExecFacts, ExitFacts, Family, FileFacts, Ids, LossFacts, MemfdFacts,
    MemoryFacts, ModuleFacts, MountFacts, NamespaceFacts, Namespaces, PrivilegeFacts, Process,
    SocketFacts, TargetFacts, basename,
};

use crate::findings::time::{EpochMillis, parse_millis};

/// One event as `ward-agent watch` prints it. Written back out it is the same JSON (members in
/// the agent's order, absent ones left out): one family key at most is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RuntimeEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339 UTC with nanoseconds, as the kernel saw it.
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<SocketFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privilege: Option<PrivilegeFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memfd: Option<MemfdFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<BpfFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<MountFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossFacts>,
}

/// Why a line could not be read as an event.
#[derive(Debug)]
pub struct EventParseError(pub String);

impl std::fmt::Display for EventParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EventParseError {}

impl RuntimeEvent {
    /// Parses one JSON line. The time must be RFC 3339: detections run on event time only.
    pub fn from_json(line: &str) -> Result<Self, EventParseError> {
        let event: Self = serde_json::from_str(line)
            .map_err(|e| EventParseError(format!("not an agent event: {e}")))?;
        if event.time_millis().is_none() {
            return Err(EventParseError(format!(
                "event time {:?} is not an RFC 3339 timestamp",
                event.time
            )));
        }
        Ok(event)
    }

    /// Event time in epoch milliseconds.
    pub fn time_millis(&self) -> Option<EpochMillis> {
        parse_millis(&self.time)
    }

    /// True when the system call behind the event failed (a negative result).
    pub fn failed(&self) -> bool {
        self.result.is_some_and(|r| r < 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_exec_with_unknown_members_and_types() {
        let line = r#"{"type":"process_exec","time":"2026-01-02T03:04:05.123456789Z","future":1,
            "process":{"pid":7,"name":"bash","executable":"/usr/bin/bash","args":["bash","-i"],
              "uid":1000,"euid":1000,"container":{"id":"abc","runtime":"docker"},
              "ancestors":[{"pid":1,"name":"systemd","executable":"/sbin/init","uid":0,"euid":0,"extra":true}]},
            "exec":{"stdio_sockets":[0,1,2],"stdio_socket":{"family":"inet","protocol":"tcp",
              "remote":{"ip":"127.0.0.1","port":1337}}}}"#;
        let ev = RuntimeEvent::from_json(line).unwrap();
        assert_eq!(ev.kind, EventType::ProcessExec);
        assert_eq!(ev.time_millis(), Some(1_767_323_045_123));
        let p = ev.process.as_ref().unwrap();
        assert_eq!(p.container_id(), Some("abc"));
        assert_eq!(p.ancestors[0].name, "systemd");
        assert_eq!(ev.exec.unwrap().stdio_sockets, [0, 1, 2]);

        let other = RuntimeEvent::from_json(r#"{"type":"gpu_hang","time":"2026-01-02T03:04:05Z"}"#)
            .unwrap();
        assert_eq!(other.kind, EventType::Other);
    }

    #[test]
    fn refuses_events_without_a_usable_time() {
        let err =
            RuntimeEvent::from_json(r#"{"type":"process_exec","time":"yesterday"}"#).unwrap_err();
        assert!(err.0.contains("RFC 3339"), "{err}");
        assert!(RuntimeEvent::from_json("[1]").is_err());
    }

    #[test]
    fn file_mode_is_read_as_octal() {
        let ev = RuntimeEvent::from_json(
            r#"{"type":"file_chmod","time":"2026-01-02T03:04:05Z","file":{"path":"/x","mode":"4755"}}"#,
        )
        .unwrap();
        assert_eq!(ev.file.unwrap().mode, Some(0o4755));
    }

    #[test]
    fn type_table_is_consistent() {
        for (i, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(EventType::parse(t.name()), Some(*t));
        }
        assert_eq!(EventType::Other.index(), EVENT_TYPE_SLOTS - 1);
    }
}
