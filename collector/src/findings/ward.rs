//! Ward's additions to a GuardDuty finding, carried in `service.additionalInfo.ward`.
//!
//! Why there and not in a new top-level `ward` object:
//! * `additionalInfo` is GuardDuty's own open-ended bag. Tools written against GuardDuty's finding
//!   schema (typed SDK structs, EventBridge schema-registry bindings, SIEM field mappings) already
//!   accept arbitrary keys there; an unknown top-level member is the kind of thing a strict
//!   consumer rejects.
//! * Filters and suppression rules already address `service.additionalInfo.*`, so a rule such as
//!   `service.additionalInfo.ward.container.image Matches ["*/build-runner:*"]` works unchanged.
//! * One sub-key named `ward` keeps Ward's fields apart from AWS's keys (`threatListName`,
//!   `agentDetails`, …) so neither can shadow the other.
//!
//! What goes here is what GuardDuty's schema has no place for: the ids of the events that caused
//! the latest occurrence (for drill-down), the full command line, process ancestry on findings that
//! are not runtime findings (network findings attributed to a process), and container identity when
//! the resource is the host instance.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WardDetails {
    /// Ids of the normalised events behind the latest occurrence, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    /// The agent that observed a runtime occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The acting process, with what GuardDuty's `ProcessDetails` lacks (argv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<WardProcess>,
    /// Ancestors of `process`, nearest first, up to the agent's process-table root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestry: Vec<WardProcess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<WardContainer>,
    /// The cloud-log record behind the latest occurrence of a foundational finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_record: Option<LogRecordRef>,
    /// The detection that raised the latest occurrence: a rule id from a rule file
    /// (`ward.miner.known-names`) or a built-in detector's name (`detector.reverse-shell`), so
    /// suppression rules can target one detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The EC2 instance the finding is about when the resource is not the instance itself (an
    /// access key whose credentials were taken from that instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// How `process` was matched to a flow-log or DNS-log finding (see `crate::correlate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<WardAttribution>,
    /// Ids of findings about the same issue seen by another source (the runtime twin of a DNS-log
    /// finding and the other way round), or the findings a cross-layer finding joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_finding_ids: Vec<String>,
    /// Set on a finding that duplicates one already sent (its twin from another source): the id of
    /// the finding that went out. Such a finding is stored archived, not alerted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// API calls made with the credentials a cross-layer finding is about, oldest first (capped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_calls: Vec<WardApiCall>,
}

/// Which runtime event a log finding's process came from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WardAttribution {
    /// The agent event type matched: `dns_query`, `net_connect`, `net_accept`.
    pub event_type: String,
    /// What was matched: the query name, or `ip:port` of the remote end.
    pub matched_on: String,
    /// Time of the matched runtime event (ISO-8601, ms).
    pub event_time: String,
    /// Matching events in the window (several processes may have made the same query).
    pub candidates: u32,
}

/// One CloudTrail call, as a cross-layer finding lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WardApiCall {
    pub event_time: String,
    pub event_source: String,
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WardProcess {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// Process start time (ISO-8601, ms); with `pid`, the process's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Same value as `runtimeDetails.process.uuid` / `lineage[].uuid` for the same process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_line: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euid: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WardContainer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
}

/// Where a cloud-log record was read: the source, the object (file path or `s3://bucket/key`), the
/// 1-based line its JSON value / text line starts on and, inside an array, its 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecordRef {
    pub source: String,
    pub object: String,
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}
