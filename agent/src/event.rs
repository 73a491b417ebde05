//! The agent's output event: the envelope (type, time, process snapshot, call) around the facts of
//! the shared event model (`ward_event`, README "Event schema"), one JSON object per event.

use std::sync::Arc;

use serde::Serialize;

pub use ward_event::{
    BpfFacts, DnsAnswer, DnsFacts, DnsQuestion, Endpoint, EventType, ExecFacts, ExitFacts,
    FileFacts, Ids, LossFacts, MemfdFacts, MemoryFacts, ModuleFacts, MountFacts, NamespaceFacts,
    PrivilegeFacts, SocketFacts, TargetFacts, Text,
};

use crate::proctable::Process;

#[derive(Debug, Serialize)]
pub struct AgentEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the kernel saw it, RFC 3339 UTC with nanoseconds.
    pub time: String,
    /// For exec, the process after the exec; for fork, the new child (its first ancestor is the parent).
    /// Absent only for `event_loss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Arc<Process>>,
    /// The system call behind the event, its return value and, when it failed, the error name.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub call: Option<Call>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

#[derive(Debug, Serialize)]
pub struct Call {
    pub syscall: &'static str,
    pub result: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// What the event is about, beyond its process. Serialised as one key named after the variant.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Details {
    Exit(ExitFacts),
    Exec(ExecFacts),
    File(FileFacts),
    Socket(SocketFacts),
    Dns(DnsFacts),
    Privilege(PrivilegeFacts),
    Target(TargetFacts),
    Memfd(MemfdFacts),
    Module(ModuleFacts),
    Bpf(BpfFacts),
    Mount(MountFacts),
    Namespace(NamespaceFacts),
    Memory(MemoryFacts),
    Loss(LossFacts),
}
