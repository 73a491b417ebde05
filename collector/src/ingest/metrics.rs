//! The ingest service's counters, rendered as Prometheus text on `GET /metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

const BOUNDS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        if let Some(i) = BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Relaxed);
    }

    /// Appends the histogram in Prometheus text format.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in BOUNDS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

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

/// Appends one unlabelled counter or gauge in Prometheus text format.
pub fn write_scalar(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Appends one labelled counter or gauge family: a `name{label="value"} n` line per series, label
/// values escaped as the text format requires.
pub fn write_labelled<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    label: &str,
    series: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value, n) in series {
        let value = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// Serves `GET /metrics` until the task is dropped: one request per connection, anything else is 404.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let mut n = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
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
                ("200 OK", metrics.render())
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
