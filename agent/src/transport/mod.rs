//! `ward-agent run`: enriched events go to the collector over one long-lived bidirectional gRPC stream
//! (mTLS), in compressed batches with per-agent sequence numbers, through a bounded disk spool.
//!
//! ```text
//!  pipeline thread                    transport thread (own runtime)
//!  ───────────────                    ──────────────────────────────
//!  TransportSink ── chunks ──▶ batcher: size/time bound → encode → lz4 → spool (disk) ─┐
//!  (convert only)   (flume)                                                            ▼
//!                                     client: Hello/Welcome, send window, acks ◀─▶ collector
//! ```
//!
//! The sink only converts and hands off, so the pipeline never waits on the network: when the collector
//! is slow or down, batches accumulate in the spool, whose oldest batches are evicted past its size limit
//! and reported as an `event_loss` event. A batch leaves the spool only when the collector acknowledges
//! it as durably stored; after a reconnect everything unacknowledged is resent, and the collector drops
//! what it already has, so each batch is stored once.

pub mod batcher;
pub mod client;
pub mod convert;
pub mod identity;
pub mod imds;
pub mod metrics;
pub mod spool;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ward_proto::v1::{self as pb, HostIdentity};

use crate::event::AgentEvent;
use crate::output::Sink;
pub use metrics::Metrics;
pub use spool::{SpoolLimits, SpoolSync};

/// Client side of mutual TLS: the CA that signed the collector's certificate, and the agent's own
/// certificate and key (its common name is the agent id the collector records).
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// Name to verify in the collector's certificate; defaults to the URL's host.
    pub server_name: Option<String>,
}

#[derive(Clone)]
pub struct TransportConfig {
    /// `https://HOST:PORT` (or `http://` with `tls: None`).
    pub collector: String,
    /// `None` is plain text (`--insecure`).
    pub tls: Option<ClientTls>,
    pub host: HostIdentity,
    pub spool_dir: PathBuf,
    pub spool: SpoolLimits,
    /// Whether spooled batches are fsync'd (power-loss safe) or left to the page cache (crash safe).
    pub spool_sync: SpoolSync,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub max_batch_delay: Duration,
    /// Batches sent but not yet acknowledged, at most.
    pub window: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// After the pipeline stops: how long to keep trying to deliver what is spooled (the rest stays in
    /// the spool for the next run).
    pub drain_timeout: Duration,
    pub metrics_addr: Option<SocketAddr>,
}

impl TransportConfig {
    pub fn new(
        collector: String,
        tls: Option<ClientTls>,
        host: HostIdentity,
        spool_dir: PathBuf,
    ) -> Self {
        TransportConfig {
            collector,
            tls,
            host,
            spool_dir,
            spool: SpoolLimits {
                max_bytes: 512 << 20,
                max_memory: 64 << 20,
            },
            spool_sync: SpoolSync::Never,
            // Large batches: the per-batch costs (a spool file, a gRPC message, an acknowledgement, a
            // log record) are paid once per 4096 events at full rate; at low rates `max_batch_delay`
            // seals them long before they fill.
            max_batch_events: 4096,
            max_batch_bytes: 4 << 20,
            max_batch_delay: Duration::from_millis(200),
            window: 64,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            metrics_addr: None,
        }
    }
}

/// Events per hand-off from the pipeline to the transport thread, at most (also handed off at every
/// flush, and when [`CHUNK_BYTES`] is reached first).
const CHUNK: u32 = 256;
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks queued between the sink and the batcher before the sink waits (only when disk stalls).
const QUEUE: usize = 256;

/// Events already encoded as entries of an `EventList` ([`ward_proto::framing`]), on their way from
/// the sink to the batcher.
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub events: u32,
}

/// The pipeline's end: converts events to the wire model, encodes them, and hands them to the
/// transport thread. Encoding here, on the pipeline's thread, splits the work between the two threads
/// and keeps every event's allocations on the thread that made them; the transport thread only
/// compresses, spools and sends.
pub struct TransportSink {
    chunk: Chunk,
    tx: flume::Sender<Chunk>,
    metrics: Arc<Metrics>,
}

impl TransportSink {
    /// Queues an event already in the wire model (synthetic events in tests and benchmarks, or event
    /// families converted elsewhere).
    pub fn push(&mut self, event: &pb::Event) -> io::Result<()> {
        ward_proto::framing::append(&mut self.chunk.bytes, event);
        self.chunk.events += 1;
        if self.chunk.events >= CHUNK || self.chunk.bytes.len() >= CHUNK_BYTES {
            self.hand_off()?;
        }
        Ok(())
    }

    fn hand_off(&mut self) -> io::Result<()> {
        if self.chunk.events == 0 {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, new_chunk());
        self.metrics.events_received.fetch_add(
            u64::from(chunk.events),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.tx
            .send(chunk)
            .map_err(|_| io::Error::other("the transport has stopped (see its error above)"))
    }
}

fn new_chunk() -> Chunk {
    Chunk {
        // Room for a chunk of typical events (a few hundred bytes each) without regrowing.
        bytes: Vec::with_capacity(128 << 10),
        events: 0,
    }
}

impl Sink for TransportSink {
    fn write(&mut self, event: &AgentEvent) -> io::Result<()> {
        self.push(&convert::event(event))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_off()
    }
}

impl Drop for TransportSink {
    fn drop(&mut self) {
        let _ = self.hand_off();
    }
}

/// The running transport thread.
pub struct TransportHandle {
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    pub metrics: Arc<Metrics>,
    /// Where `/metrics` is served, when enabled.
    pub metrics_addr: Option<SocketAddr>,
}

impl TransportHandle {
    /// Waits until the transport has delivered what it could (the sink must be dropped first).
    pub fn join(self) -> anyhow::Result<()> {
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("transport thread panicked"))?
    }
}

/// Opens the spool and starts the transport thread. Errors that can be found now (spool directory,
/// certificates, collector URL, metrics address) are returned now.
pub fn start(config: TransportConfig) -> anyhow::Result<(TransportSink, TransportHandle)> {
    use anyhow::Context;
    let spool = spool::Spool::open_with(&config.spool_dir, config.spool, config.spool_sync)
        .with_context(|| format!("spool {}", config.spool_dir.display()))?;
    if !spool.is_empty() {
        tracing::info!(
            "spool holds {} unacknowledged batches ({} bytes) from a previous run; they are sent first",
            spool.len(),
            spool.bytes()
        );
    }
    let endpoint = client::endpoint(&config)?;
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = flume::bounded(QUEUE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Bound here with std (the caller may be inside a runtime), handed to tokio on the transport thread.
    let metrics_listener = match config.metrics_addr {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("metrics listener {addr}"))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let m = metrics.clone();
    let thread = std::thread::Builder::new()
        .name("ward-transport".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Some(listener) = metrics_listener {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let m = m.clone();
                    tokio::spawn(ward_metrics::serve(listener, Arc::new(move || m.render())));
                }
                let spool = Arc::new(Mutex::new(spool));
                let sealed = Arc::new(tokio::sync::Notify::new());
                let (draining_tx, draining_rx) = tokio::sync::watch::channel(false);
                let collector_max_events = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let batcher = tokio::spawn(batcher::run(
                    rx,
                    spool.clone(),
                    sealed.clone(),
                    m.clone(),
                    batcher::Bounds {
                        max_events: config.max_batch_events,
                        max_bytes: config.max_batch_bytes,
                        max_delay: config.max_batch_delay,
                    },
                    collector_max_events.clone(),
                ));
                let client = tokio::spawn(client::run(
                    config,
                    endpoint,
                    spool,
                    sealed,
                    draining_rx,
                    m,
                    collector_max_events,
                ));
                let batched = batcher.await;
                let _ = draining_tx.send(true);
                let sent = client.await;
                batched??;
                sent?
            })
        })?;
    Ok((
        TransportSink {
            chunk: new_chunk(),
            tx,
            metrics: metrics.clone(),
        },
        TransportHandle {
            thread,
            metrics,
            metrics_addr,
        },
    ))
}
