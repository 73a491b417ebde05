//! The transport's counters, rendered as Prometheus text on `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ward_metrics::{Buckets, Histogram, write_scalar};

/// Upper bounds (seconds) of the batch-latency histogram: seal to acknowledgement.
pub struct SealToAck;

impl Buckets for SealToAck {
    const UPPER: &'static [f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];
}

#[derive(Default)]
pub struct Metrics {
    /// Events handed to the transport by the pipeline.
    pub events_received: AtomicU64,
    /// Events sealed into batches and written to the spool.
    pub events_spooled: AtomicU64,
    pub batches_spooled: AtomicU64,
    /// Events sent on the stream (a batch resent after a reconnect counts again).
    pub events_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    /// Events the collector acknowledged as durably stored.
    pub events_acked: AtomicU64,
    pub batches_acked: AtomicU64,
    /// Events deleted from a full spool before the collector had them.
    pub events_evicted: AtomicU64,
    pub batches_evicted: AtomicU64,
    /// Events lost because a spooled batch could not be read back.
    pub events_corrupt: AtomicU64,
    pub reconnects: AtomicU64,
    pub connected: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_batches: AtomicU64,
    pub batch_latency: Histogram<SealToAck>,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &AtomicU64); 12] = [
            (
                "ward_agent_events_received_total",
                "Events handed to the transport.",
                &self.events_received,
            ),
            (
                "ward_agent_events_spooled_total",
                "Events sealed into batches and spooled.",
                &self.events_spooled,
            ),
            (
                "ward_agent_batches_spooled_total",
                "Batches sealed and spooled.",
                &self.batches_spooled,
            ),
            (
                "ward_agent_events_sent_total",
                "Events sent to the collector (resends count again).",
                &self.events_sent,
            ),
            (
                "ward_agent_batches_sent_total",
                "Batches sent to the collector (resends count again).",
                &self.batches_sent,
            ),
            (
                "ward_agent_events_acked_total",
                "Events the collector acknowledged as stored.",
                &self.events_acked,
            ),
            (
                "ward_agent_batches_acked_total",
                "Batches the collector acknowledged as stored.",
                &self.batches_acked,
            ),
            (
                "ward_agent_events_evicted_total",
                "Events evicted from the full spool (lost).",
                &self.events_evicted,
            ),
            (
                "ward_agent_batches_evicted_total",
                "Batches evicted from the full spool (lost).",
                &self.batches_evicted,
            ),
            (
                "ward_agent_events_corrupt_total",
                "Events in spooled batches that could not be read back (lost).",
                &self.events_corrupt,
            ),
            (
                "ward_agent_reconnects_total",
                "Connections to the collector after the first.",
                &self.reconnects,
            ),
            (
                "ward_agent_connected",
                "1 while a stream to the collector is open.",
                &self.connected,
            ),
        ];
        for (name, help, v) in counters {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            write_scalar(&mut out, name, help, kind, v.load(Relaxed));
        }
        for (name, help, v) in [
            (
                "ward_agent_spool_bytes",
                "Bytes of unacknowledged batches on disk.",
                &self.spool_bytes,
            ),
            (
                "ward_agent_spool_batches",
                "Unacknowledged batches on disk.",
                &self.spool_batches,
            ),
        ] {
            write_scalar(&mut out, name, help, "gauge", v.load(Relaxed));
        }
        self.batch_latency.render(
            &mut out,
            "ward_agent_batch_latency_seconds",
            "From sealing a batch to its acknowledgement.",
        );
        out
    }
}
