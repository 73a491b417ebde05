//! Prometheus text exposition (format 0.0.4) shared by Ward's agent and collector: counters,
//! latency histograms, the `# HELP`/`# TYPE` families, and a minimal `GET /metrics` responder.
//! Small enough that a client library's registry and derive macros would cost more compile time
//! than they save.

use std::fmt::Write as _;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A counter (or gauge, with [`Counter::dec`]) shared between tasks.
#[derive(Debug, Default)]
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

/// The bucket upper bounds (seconds, ascending, at most [`MAX_BUCKETS`]) of one kind of
/// histogram. A type rather than a value so a struct of metrics can still derive `Default`.
pub trait Buckets {
    const UPPER: &'static [f64];
}

pub const MAX_BUCKETS: usize = 16;

/// A latency histogram in seconds; bucket counts are cumulative only when rendered.
#[derive(Debug)]
pub struct Histogram<B> {
    buckets: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    sum_micros: AtomicU64,
    bounds: PhantomData<fn() -> B>,
}

impl<B: Buckets> Default for Histogram<B> {
    fn default() -> Self {
        const { assert!(B::UPPER.len() <= MAX_BUCKETS) };
        Self {
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            bounds: PhantomData,
        }
    }
}

impl<B: Buckets> Histogram<B> {
    pub fn observe(&self, secs: f64) {
        if let Some(i) = B::UPPER.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Relaxed);
    }

    /// Appends the histogram family.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in B::UPPER.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Appends one unlabelled counter or gauge family.
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

/// Serves `GET /metrics` with what `render` returns until the task is dropped. A deliberately
/// small HTTP/1.1 responder: one request per connection, anything else is 404, a client that
/// does not finish its request head within 5 s is dropped.
pub async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Test;
    impl Buckets for Test {
        const UPPER: &'static [f64] = &[0.01, 0.1, 1.0];
    }

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::<Test>::default();
        for secs in [0.005, 0.05, 0.05, 0.5, 7.0] {
            h.observe(secs);
        }
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "Test.");
        assert_eq!(
            out,
            "# HELP x_seconds Test.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.01\"} 1\nx_seconds_bucket{le=\"0.1\"} 3\n\
             x_seconds_bucket{le=\"1\"} 4\nx_seconds_bucket{le=\"+Inf\"} 5\n\
             x_seconds_sum 7.605\nx_seconds_count 5\n"
        );
    }

    #[test]
    fn families_and_label_escaping() {
        let c = Counter::default();
        c.add(5);
        c.inc();
        c.dec();
        let mut out = String::new();
        write_scalar(&mut out, "a_total", "A.", "counter", c.get());
        write_labelled(
            &mut out,
            "b",
            "B.",
            "gauge",
            "name",
            [("q\"x\\y\nz", 2), ("plain", 3)],
        );
        assert_eq!(
            out,
            "# HELP a_total A.\n# TYPE a_total counter\na_total 5\n\
             # HELP b B.\n# TYPE b gauge\nb{name=\"q\\\"x\\\\y\\nz\"} 2\nb{name=\"plain\"} 3\n"
        );
    }

    #[tokio::test]
    async fn serves_metrics_and_404s_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Arc::new(|| "m 1\n".to_owned())));
        let get = |path: &'static str| async move {
            let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
            sock.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            sock.read_to_string(&mut response).await.unwrap();
            response
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("content-length: 4\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nm 1\n"), "{ok}");
        let missing = get("/other").await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        server.abort();
    }
}
