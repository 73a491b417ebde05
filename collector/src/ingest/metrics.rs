//! The ingest service's counters, rendered as Prometheus text on `GET /metrics`.

use std::fmt::Write as _;

use ward_metrics::Buckets;

pub use ward_metrics::{Counter, write_labelled, write_scalar};

/// Upper bounds (seconds) of the collector's latency histograms (group commit, batch receipt to
/// acknowledgement).
pub struct Latency;

impl Buckets for Latency {
    const UPPER: &'static [f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
    ];
}

pub type Histogram = ward_metrics::Histogram<Latency>;

/// Why a batch or a stream was refused (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a Hello first, unknown protocol, bad agent id.
    BadHello,
    /// Certificate names another agent than the Hello claims.
    IdentityMismatch,
    /// Over the message-size limit (compressed or decompressed) or the event-count limit.
    Oversized,
    /// Undecodable protobuf, LZ4 or framing.
    Malformed,
    /// Declared event count differs from the payload.
    CountMismatch,
    /// Sequence 0 or going backwards within a stream.
    BadSequence,
    /// The store could not make the batch durable.
    StoreFailed,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::BadHello,
        Refusal::IdentityMismatch,
        Refusal::Oversized,
        Refusal::Malformed,
        Refusal::CountMismatch,
        Refusal::BadSequence,
        Refusal::StoreFailed,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Refusal::BadHello => "bad_hello",
            Refusal::IdentityMismatch => "identity_mismatch",
            Refusal::Oversized => "oversized",
            Refusal::Malformed => "malformed",
            Refusal::CountMismatch => "count_mismatch",
            Refusal::BadSequence => "bad_sequence",
            Refusal::StoreFailed => "store_failed",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub streams_total: Counter,
    pub streams_active: Counter,
    pub batches_accepted: Counter,
    pub events_accepted: Counter,
    pub bytes_accepted: Counter,
    /// Batches the agent resent that were already stored (acknowledged again, not stored twice).
    pub batches_duplicate: Counter,
    pub events_duplicate: Counter,
    pub refused: [Counter; Refusal::ALL.len()],
    /// Streams that ended with a transport error (reset, truncated frame, TLS failure mid-stream).
    pub stream_errors: Counter,
    /// Time streams spent waiting for their agent's rate limit, in microseconds.
    pub throttled_micros: Counter,
    /// Older streams of an agent closed because the agent reconnected.
    pub streams_replaced: Counter,
    pub commits: Counter,
    pub commit_latency: Histogram,
    /// From receiving a batch to acknowledging it.
    pub batch_latency: Histogram,
}

impl Metrics {
    pub fn refuse(&self, r: Refusal) {
        self.refused[r as usize].inc();
    }

    pub fn refused(&self, r: Refusal) -> u64 {
        self.refused[r as usize].get()
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let simple: [(&str, &str, &Counter, &str); 11] = [
            (
                "ward_ingest_streams_total",
                "Agent streams opened.",
                &self.streams_total,
                "counter",
            ),
            (
                "ward_ingest_streams_active",
                "Agent streams open now.",
                &self.streams_active,
                "gauge",
            ),
            (
                "ward_ingest_batches_accepted_total",
                "Batches durably stored.",
                &self.batches_accepted,
                "counter",
            ),
            (
                "ward_ingest_events_accepted_total",
                "Events durably stored.",
                &self.events_accepted,
                "counter",
            ),
            (
                "ward_ingest_bytes_accepted_total",
                "Compressed payload bytes stored.",
                &self.bytes_accepted,
                "counter",
            ),
            (
                "ward_ingest_batches_duplicate_total",
                "Resent batches already stored (acknowledged, not stored again).",
                &self.batches_duplicate,
                "counter",
            ),
            (
                "ward_ingest_events_duplicate_total",
                "Events in duplicate batches.",
                &self.events_duplicate,
                "counter",
            ),
            (
                "ward_ingest_stream_errors_total",
                "Streams ended by a transport or framing error.",
                &self.stream_errors,
                "counter",
            ),
            (
                "ward_ingest_throttled_microseconds_total",
                "Time streams waited for their agent's rate limit.",
                &self.throttled_micros,
                "counter",
            ),
            (
                "ward_ingest_streams_replaced_total",
                "Streams closed because their agent reconnected.",
                &self.streams_replaced,
                "counter",
            ),
            (
                "ward_ingest_commits_total",
                "Group commits (fsyncs) of the store.",
                &self.commits,
                "counter",
            ),
        ];
        for (name, help, c, kind) in simple {
            write_scalar(&mut out, name, help, kind, c.get());
        }
        let name = "ward_ingest_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Batches or streams refused, by reason.\n# TYPE {name} counter"
        );
        for r in Refusal::ALL {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", r.name(), self.refused(r));
        }
        self.commit_latency.render(
            &mut out,
            "ward_ingest_commit_seconds",
            "Duration of a group commit (write + fsync).",
        );
        self.batch_latency.render(
            &mut out,
            "ward_ingest_batch_latency_seconds",
            "From receiving a batch to acknowledging it.",
        );
        out
    }
}
