//! Foundational detections: GuardDuty's agentless findings (EC2, IAM, S3) from CloudTrail
//! management events, VPC Flow Logs and Route 53 Resolver query logs.
//!
//! Every detector sees normalised cloud-log [`Event`]s in event-time order (within a bounded
//! lateness) and turns what it recognises into aggregation [`Occurrence`]s; the engine that drives
//! them folds occurrences into findings, applies suppression and persists learned state. Time is
//! always the record's, never the clock, so a week of replayed logs gives the same findings as the
//! same records received live.

use crate::event::{Event, SourceKind};
use crate::findings::{Occurrence, Scope};
use crate::intel::IntelIndex;

/// What every detector may consult: threat/trusted lists and the account/Region findings are filed
/// under.
pub struct LogContext<'a> {
    pub intel: &'a IntelIndex,
    pub scope: &'a Scope,
}

/// One foundational detection (or a family of closely related ones).
pub trait LogDetector: Send {
    /// Stable name, used as `additionalInfo.ward.ruleId` and as the key of persisted state.
    fn name(&self) -> &'static str;

    /// The sources whose records this detector wants.
    fn sources(&self) -> &'static [SourceKind];

    /// One record; push zero or more occurrences.
    fn on_event(&mut self, event: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>);

    /// Event time has advanced to `now_ms` (Unix milliseconds, the newest record time minus the
    /// allowed lateness): windowed detectors close the windows that ended before it.
    fn on_time(&mut self, _now_ms: i64, _ctx: &LogContext<'_>, _out: &mut Vec<Occurrence>) {}

    /// Learned state (baselines, learning-period start) to persist across restarts.
    fn save_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// State saved by [`LogDetector::save_state`] in an earlier run.
    fn restore_state(&mut self, _state: serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}
