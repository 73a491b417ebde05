//! What goes into the store in one transaction, and what comes out of a commit.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::findings::Finding;

/// Everything in one batch commits atomically: after a crash either all of it is in the store or
/// none of it. The pipeline puts a source's findings, its raw events and its new checkpoint in one
/// batch, so a restart resumes exactly where the committed findings end.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Inserted, or replacing the stored finding of the same id (a new occurrence / update). The
    /// store keeps a history version per upsert and applies suppression rules.
    pub findings: Vec<Finding>,
    /// Raw events for the context window; an event id already stored is ignored.
    pub events: Vec<StoredEvent>,
    /// `(finding id, event id)` links beyond the ids in the findings' `service.additionalInfo.ward.eventIds`.
    pub finding_events: Vec<(String, String)>,
    /// Source checkpoints: name -> position (any JSON: offset, S3 key, ...).
    pub checkpoints: Vec<(String, Value)>,
    /// Detector state (learned baselines): name -> JSON.
    pub detector_state: Vec<(String, Value)>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
            && self.events.is_empty()
            && self.finding_events.is_empty()
            && self.checkpoints.is_empty()
            && self.detector_state.is_empty()
    }

    /// Rows this batch writes (for group-commit sizing).
    pub fn rows(&self) -> usize {
        self.findings.len()
            + self.events.len()
            + self.finding_events.len()
            + self.checkpoints.len()
            + self.detector_state.len()
    }
}

/// One raw event kept for context (agent event or cloud-log record).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Unique id; the same id a finding's `ward.eventIds` lists.
    pub id: String,
    /// Event time, epoch ms.
    pub time_ms: i64,
    /// `agent`, `cloudtrail`, `vpcflow`, `dns`.
    pub source: String,
    /// Agent id / hostname for agent events.
    pub host: Option<String>,
    pub pid: Option<i64>,
    /// Process start time (ISO-8601); with `pid` the process identity.
    pub process_start_time: Option<String>,
    pub event: Value,
}

/// What one committed batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    pub findings_created: usize,
    pub findings_updated: usize,
    /// Findings a suppression rule archived as they were stored.
    pub findings_suppressed: usize,
    /// Events stored (ids already present are not counted).
    pub events_stored: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Updated,
    Archived,
    Unarchived,
}

/// A committed change to a finding, as published to [`super::Store::subscribe`] (after the commit
/// is durable, in commit order).
#[derive(Debug, Clone)]
pub struct FindingChange {
    pub kind: ChangeKind,
    pub finding: Arc<Finding>,
    /// The suppression rule that archived the finding as it was stored.
    pub suppressed_by: Option<String>,
}

/// Result of archiving or unarchiving a set of ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveOutcome {
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub unknown: Vec<String>,
}
