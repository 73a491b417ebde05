//! Counters of one output, updated by its worker and read by anyone (metrics, shutdown summary).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct OutputStats {
    sent: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    dropped: AtomicU64,
    coalesced: AtomicU64,
    archived_skipped: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Finding states delivered.
    pub sent: u64,
    /// Sends tried again after a retryable failure.
    pub retried: u64,
    /// Finding states written to the dead-letter file after the last attempt failed.
    pub dead_lettered: u64,
    /// Changes not queued because this output's queue was full.
    pub dropped: u64,
    /// Pending updates replaced by a later state of the same finding inside its window.
    pub coalesced: u64,
    /// Changes not sent because the finding was archived.
    pub archived_skipped: u64,
}

impl OutputStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sent: self.sent.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            coalesced: self.coalesced.load(Relaxed),
            archived_skipped: self.archived_skipped.load(Relaxed),
        }
    }

    pub(super) fn add_sent(&self) {
        self.sent.fetch_add(1, Relaxed);
    }
    pub(super) fn add_retried(&self) {
        self.retried.fetch_add(1, Relaxed);
    }
    pub(super) fn add_dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Relaxed);
    }
    /// Returns the new total.
    pub(super) fn add_dropped(&self) -> u64 {
        self.dropped.fetch_add(1, Relaxed) + 1
    }
    pub(super) fn add_coalesced(&self) {
        self.coalesced.fetch_add(1, Relaxed);
    }
    pub(super) fn add_archived_skipped(&self) {
        self.archived_skipped.fetch_add(1, Relaxed);
    }
}

/// One counter's name, help text and reader.
type Metric = (&'static str, &'static str, fn(&StatsSnapshot) -> u64);

/// Prometheus text exposition of every output's counters, one `output` label per output.
pub fn prometheus_text(outputs: &[(String, StatsSnapshot)]) -> String {
    let metrics: [Metric; 6] = [
        ("sent", "Finding states delivered.", |s| s.sent),
        (
            "retried",
            "Sends tried again after a retryable failure.",
            |s| s.retried,
        ),
        (
            "dead_lettered",
            "Finding states written to the dead-letter file.",
            |s| s.dead_lettered,
        ),
        (
            "dropped",
            "Changes dropped because the output queue was full.",
            |s| s.dropped,
        ),
        (
            "coalesced",
            "Pending updates replaced by a later state inside the update interval.",
            |s| s.coalesced,
        ),
        (
            "archived_skipped",
            "Changes not sent because the finding was archived.",
            |s| s.archived_skipped,
        ),
    ];
    let mut out = String::new();
    for (name, help, get) in metrics {
        let _ = writeln!(out, "# HELP ward_output_{name}_total {help}");
        let _ = writeln!(out, "# TYPE ward_output_{name}_total counter");
        for (output, snapshot) in outputs {
            let label = output
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(
                out,
                "ward_output_{name}_total{{output=\"{label}\"}} {}",
                get(snapshot)
            );
        }
    }
    out
}
