//! Counters of one output, updated by its worker and read by anyone (metrics, shutdown summary).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::ingest::metrics::write_labelled;

#[derive(Debug, Default)]
pub struct OutputStats {
    sent: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    dropped: AtomicU64,
    coalesced: AtomicU64,
    archived_skipped: AtomicU64,
    throttled: AtomicU64,
    queued: AtomicU64,
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
    /// Updates held for their finding's update interval (sent later, as the latest state).
    pub throttled: u64,
    /// Changes waiting in the queue now.
    pub queued: u64,
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
            throttled: self.throttled.load(Relaxed),
            queued: self.queued.load(Relaxed),
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
    pub(super) fn add_throttled(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }
    /// A change entered the queue.
    pub(super) fn add_queued(&self) {
        self.queued.fetch_add(1, Relaxed);
    }
    /// The worker took a change off the queue.
    pub(super) fn take_queued(&self) {
        // Never below zero, even if a take is counted before its add.
        let _ = self
            .queued
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }
}

/// One family's name, help text, type and reader.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StatsSnapshot) -> u64,
);

/// Every output's counters in Prometheus text (the shared encoder of `crate::ingest::metrics`),
/// one `output` label per output: `ward_output_*_total` counters and `ward_output_queued`.
pub fn render(out: &mut String, outputs: &[(String, StatsSnapshot)]) {
    let metrics: [Metric; 8] = [
        ("sent_total", "Finding states delivered.", "counter", |s| {
            s.sent
        }),
        (
            "retried_total",
            "Sends tried again after a retryable failure.",
            "counter",
            |s| s.retried,
        ),
        (
            "dead_lettered_total",
            "Finding states written to the dead-letter file.",
            "counter",
            |s| s.dead_lettered,
        ),
        (
            "dropped_total",
            "Changes dropped because the output queue was full.",
            "counter",
            |s| s.dropped,
        ),
        (
            "throttled_total",
            "Updates held for their finding's update interval.",
            "counter",
            |s| s.throttled,
        ),
        (
            "coalesced_total",
            "Pending updates replaced by a later state inside the update interval.",
            "counter",
            |s| s.coalesced,
        ),
        (
            "archived_skipped_total",
            "Changes not sent because the finding was archived.",
            "counter",
            |s| s.archived_skipped,
        ),
        (
            "queued",
            "Changes waiting in the output's queue.",
            "gauge",
            |s| s.queued,
        ),
    ];
    for (name, help, kind, get) in metrics {
        write_labelled(
            out,
            &format!("ward_output_{name}"),
            help,
            kind,
            "output",
            outputs.iter().map(|(o, s)| (o.as_str(), get(s))),
        );
    }
}

/// [`render`] into a new string.
pub fn prometheus_text(outputs: &[(String, StatsSnapshot)]) -> String {
    let mut out = String::new();
    render(&mut out, outputs);
    out
}
