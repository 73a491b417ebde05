//! The query API: findings, suppression rules and lists over HTTP/JSON and gRPC on one port
//! (contract: `docs/api.md`).
//!
//! [`start`] binds the listener and serves until [`ApiHandle::shutdown`]. [`ops`] holds the
//! operations both front ends share ([`http`], [`grpc`]); [`auth`] the bearer tokens and roles;
//! [`tls`] the listener (plain, TLS, or mTLS with roles from client certificates).
//!
//! Every request passes [`identify`] first: its token and its connection's certificate role become
//! a [`Verdict`] in the request's extensions, which each route checks against the role it needs.

pub mod auth;
pub mod grpc;
pub mod http;
pub mod ops;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ingest::Metrics as IngestMetrics;
use crate::pipeline::live::Generation;
use crate::store::Store;

pub use auth::{Access, Role, Verdict};
pub use tls::{ApiTls, Peer};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 << 20;

pub struct ApiConfig {
    pub listen: SocketAddr,
    pub access: Access,
    /// TLS (and mTLS) on the API port; `None`: plain HTTP.
    pub tls: Option<ApiTls>,
    /// Counters of the rest of the collector to include on `/metrics` (ingest, detection
    /// pipeline, outputs), when the API runs inside `serve`.
    pub metrics: Vec<Arc<dyn MetricsSource>>,
    /// Bumped after a list or suppression rule is written, so the running detections rebuild.
    pub changes: Arc<Generation>,
}

impl ApiConfig {
    /// Plain HTTP, no other metrics, a generation nobody follows.
    pub fn new(listen: SocketAddr, access: Access) -> Self {
        Self {
            listen,
            access,
            tls: None,
            metrics: Vec::new(),
            changes: Arc::default(),
        }
    }
}

/// Counters that append themselves to `/metrics` in Prometheus text (written with the encoder of
/// `crate::ingest::metrics`).
pub trait MetricsSource: Send + Sync {
    fn render_metrics(&self, out: &mut String);
}

impl MetricsSource for IngestMetrics {
    fn render_metrics(&self, out: &mut String) {
        out.push_str(&self.render());
    }
}

impl MetricsSource for crate::outputs::OutputMetrics {
    fn render_metrics(&self, out: &mut String) {
        self.render(out);
    }
}

impl MetricsSource for crate::pipeline::PipelineStats {
    fn render_metrics(&self, out: &mut String) {
        self.render(out);
    }
}

impl MetricsSource for crate::pipeline::cloud::CloudStats {
    fn render_metrics(&self, out: &mut String) {
        self.render(out);
    }
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
    pub sources: Vec<Arc<dyn MetricsSource>>,
    pub changes: Arc<Generation>,
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

/// Puts the caller's [`Verdict`] (token, else client certificate role) into the request.
async fn identify(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verdict = state.access.check(presented, peer.cert_role);
    request.extensions_mut().insert(verdict);
    next.run(request).await
}

/// Binds `config.listen` and serves the API on it.
pub async fn start(store: Store, config: ApiConfig) -> anyhow::Result<ApiHandle> {
    if matches!(config.access, Access::Open) && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "the query API on {} needs --api-tokens or --api-client-ca: without them it only \
             listens on loopback",
            config.listen
        );
    }
    let tls = match &config.tls {
        Some(tls) => Some(Arc::new(tls::server_config(tls)?)),
        None => None,
    };
    if tls.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(
            "the query API on {} is plain HTTP: tokens cross the network in clear text \
             (give --api-tls-cert and --api-tls-key)",
            config.listen
        );
    }
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("query API: binding {}", config.listen))?;
    let addr = tcp.local_addr()?;
    let listener = tls::listen(tcp, tls);
    let (stop, shutdown) = watch::channel(false);
    let state = Arc::new(ApiState {
        store,
        access: config.access,
        metrics: ApiMetrics::default(),
        sources: config.metrics,
        changes: config.changes,
        shutdown: shutdown.clone(),
    });
    let grpc = tonic::service::Routes::new(ward_proto::v1::query_server::QueryServer::new(
        grpc::QueryService {
            state: state.clone(),
        },
    ))
    .into_axum_router();
    let app = http::router(state.clone())
        .merge(grpc)
        .fallback(http::not_found)
        .layer(axum::middleware::from_fn_with_state(state, identify));
    let mut signal = shutdown;
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(ApiHandle { addr, stop, task })
}
