//! The transport's counters, rendered as Prometheus text on `GET /metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the batch-latency histogram: seal to acknowledgement.
const LATENCY_BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in LATENCY_BOUNDS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
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
    pub batch_latency: Histogram,
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
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
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
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                v.load(Relaxed)
            );
        }
        self.batch_latency.render(
            &mut out,
            "ward_agent_batch_latency_seconds",
            "From sealing a batch to its acknowledgement.",
        );
        out
    }
}

/// Serves `GET /metrics` until the task is dropped. A deliberately small HTTP/1.1 responder: one
/// request per connection, anything else is 404.
pub async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let mut n = 0;
            // Read the request head (bounded); a slow client gets 5 s.
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let (status, body) = if buf[..n].starts_with(b"GET /metrics ") {
                ("200 OK", render())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
