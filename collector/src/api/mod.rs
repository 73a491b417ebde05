//! The query API: findings, suppression rules and lists over HTTP/JSON and gRPC on one port
//! (contract: `docs/api.md`).
//!
//! [`start`] binds the listener and serves until [`ApiHandle::shutdown`]. [`ops`] holds the
//! operations both front ends share ([`http`], [`grpc`]); [`auth`] the bearer tokens and roles.

pub mod auth;
pub mod grpc;
pub mod http;
pub mod ops;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ingest::Metrics as IngestMetrics;
use crate::store::Store;

pub use auth::{Access, Role};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 << 20;

pub struct ApiConfig {
    pub listen: SocketAddr,
    pub access: Access,
    /// Ingest counters to include on `/metrics`, when the API runs inside `serve`.
    pub ingest_metrics: Option<Arc<IngestMetrics>>,
}

/// Responses by status code.
#[derive(Default)]
pub struct ApiMetrics {
    by_status: Mutex<BTreeMap<u16, u64>>,
}

impl ApiMetrics {
    fn count(&self, status: u16) {
        if let Ok(mut m) = self.by_status.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let name = "ward_api_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Query API responses, by HTTP status.\n# TYPE {name} counter"
        );
        if let Ok(m) = self.by_status.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
            }
        }
    }
}

pub struct ApiState {
    pub store: Store,
    pub access: Access,
    pub metrics: ApiMetrics,
    pub ingest_metrics: Option<Arc<IngestMetrics>>,
    /// Flips to true on shutdown: ends open change streams.
    shutdown: watch::Receiver<bool>,
}

pub struct ApiHandle {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ApiHandle {
    /// Stops accepting, ends change streams and waits for requests in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("query API task")??;
        Ok(())
    }
}

/// Binds `config.listen` and serves the API on it.
pub async fn start(store: Store, config: ApiConfig) -> anyhow::Result<ApiHandle> {
    if matches!(config.access, Access::Open) && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "the query API on {} needs --api-tokens: without tokens it only listens on loopback",
            config.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("query API: binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = watch::channel(false);
    let state = Arc::new(ApiState {
        store,
        access: config.access,
        metrics: ApiMetrics::default(),
        ingest_metrics: config.ingest_metrics,
        shutdown: shutdown.clone(),
    });
    let grpc = tonic::service::Routes::new(ward_proto::v1::query_server::QueryServer::new(
        grpc::QueryService {
            state: state.clone(),
        },
    ))
    .into_axum_router();
    let app = http::router(state).merge(grpc).fallback(http::not_found);
    let mut signal = shutdown;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(ApiHandle { addr, stop, task })
}
