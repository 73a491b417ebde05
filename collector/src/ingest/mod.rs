//! Agent ingest (`ward-collector serve`): the gRPC service agents stream their batches to, over mTLS.
//!
//! - [`service`]: the stream handler (authenticate, Welcome, validate, de-duplicate, acknowledge);
//! - [`store`]: durable acceptance behind [`store::BatchStore`] (the fsync'd [`store::FileLog`] for now);
//! - [`limits`]: per-batch limits and per-agent rate;
//! - [`identity`]: the agent id from the client certificate;
//! - [`metrics`]: Prometheus text on `/metrics`;
//! - [`devcerts`]: a development CA and certificates.
//!
//! Delivery is exactly-once as seen downstream: a batch is acknowledged only once stored, the agent
//! resends what was not acknowledged, and the service stores a batch only when its sequence is above the
//! agent's highest stored one (recovered from the store at start).

pub mod devcerts;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use ward_proto::tonic::transport::server::TcpIncoming;
use ward_proto::tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use ward_proto::v1::ingest_server::IngestServer;

pub use limits::Limits;
pub use metrics::Metrics;
pub use service::HelloHook;

/// Server side of mutual TLS: the collector's certificate and key, and the CA that signs agents'.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Vec<u8>,
}

#[derive(Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// `None` is plain text (`--insecure`): agent ids are then taken from what agents claim.
    pub tls: Option<ServerTls>,
    /// Where the batch log lives (`ingest.log`).
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub metrics_listen: Option<SocketAddr>,
}

/// A running ingest server.
pub struct IngestHandle {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    /// The batch log's committed length (with the default [`store::FileLog`]), for readers that tail it.
    pub committed: Option<Arc<store::Committed>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
    metrics_task: Option<JoinHandle<()>>,
}

impl IngestHandle {
    /// Stops accepting, closes streams, and waits for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(m) = self.metrics_task.take() {
            m.abort();
        }
        // Open streams hold the graceful shutdown; they are not waited for longer than this.
        match tokio::time::timeout(Duration::from_secs(5), &mut self.server).await {
            Ok(r) => r.context("ingest server task")?,
            Err(_) => {
                self.server.abort();
                Ok(())
            }
        }
    }

    /// Runs until the server fails (or forever).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        (&mut self.server).await.context("ingest server task")?
    }
}

/// Starts the service with the default store (`<data_dir>/ingest.log`).
pub async fn start(cfg: ServeConfig) -> anyhow::Result<IngestHandle> {
    start_hooked(cfg, None).await
}

/// Where [`start`] keeps the batch log.
pub fn log_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("ingest.log")
}

/// [`start`], calling `on_hello` for every authenticated Hello.
pub async fn start_hooked(
    cfg: ServeConfig,
    on_hello: Option<HelloHook>,
) -> anyhow::Result<IngestHandle> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data directory {}", cfg.data_dir.display()))?;
    let log = store::FileLog::new(&log_path(&cfg.data_dir));
    let committed = log.committed();
    let mut handle = start_with_store(cfg, Box::new(log), on_hello).await?;
    handle.committed = Some(committed);
    Ok(handle)
}

pub async fn start_with_store(
    cfg: ServeConfig,
    store: Box<dyn store::BatchStore>,
    on_hello: Option<HelloHook>,
) -> anyhow::Result<IngestHandle> {
    let metrics = Arc::new(Metrics::default());
    let (committer, recovered) =
        store::Committer::start(store, metrics.clone()).context("recovering the ingest store")?;
    if !recovered.is_empty() {
        tracing::info!("ingest store recovered: {} agents", recovered.len());
    }
    let insecure = cfg.tls.is_none();
    let service =
        service::IngestService::new(committer, recovered, cfg.limits, metrics.clone(), insecure)
            .with_hello_hook(on_hello);
    let mut builder = Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(15)))
        .http2_keepalive_timeout(Some(Duration::from_secs(15)))
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20));
    match &cfg.tls {
        Some(tls) => {
            builder = builder
                .tls_config(
                    ServerTlsConfig::new()
                        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
                        .client_ca_root(Certificate::from_pem(&tls.client_ca_pem))
                        // A client without a certificate is refused during the handshake.
                        .client_auth_optional(false)
                        .timeout(Duration::from_secs(10)),
                )
                .context("TLS configuration")?;
        }
        None => tracing::warn!(
            "ingest is running WITHOUT TLS (--insecure): traffic is readable and agents are identified only by what they claim"
        ),
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let svc = IngestServer::new(service)
        .max_decoding_message_size(cfg.limits.max_message_bytes)
        .max_encoding_message_size(1 << 20);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        builder
            .serve_with_incoming_shutdown(svc, TcpIncoming::from(listener), async {
                let _ = shutdown_rx.await;
            })
            .await
            .context("ingest server")
    });
    let (metrics_addr, metrics_task) = match cfg.metrics_listen {
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .with_context(|| format!("metrics listener {a}"))?;
            let addr = l.local_addr()?;
            (
                Some(addr),
                Some(tokio::spawn(ward_metrics::serve(l, {
                    let metrics = metrics.clone();
                    Arc::new(move || metrics.render())
                }))),
            )
        }
        None => (None, None),
    };
    tracing::info!(
        "ingest listening on {addr}{}",
        if insecure { " (plain text)" } else { " (mTLS)" }
    );
    Ok(IngestHandle {
        addr,
        metrics_addr,
        metrics,
        committed: None,
        shutdown: Some(shutdown_tx),
        server,
        metrics_task,
    })
}
