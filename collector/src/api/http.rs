//! HTTP/JSON front end (axum): routes, authentication per route, JSON errors, the NDJSON change
//! stream, health and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use super::auth::{Role, Verdict};
use super::ops::{self, ApiError};
use super::{ApiState, MAX_BODY_BYTES};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({"error": {"code": self.code(), "message": self.message()}});
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("valid header"),
            );
        }
        response
    }
}

type Shared = Arc<ApiState>;

/// Checks the caller's verdict (set by `super::identify`) against the role the route needs.
fn authorize(caller: Verdict, needs: Role) -> Result<(), ApiError> {
    match caller {
        Verdict::Unauthenticated => Err(ApiError::Unauthenticated),
        Verdict::Allowed(role) if role >= needs => Ok(()),
        Verdict::Allowed(_) => Err(ApiError::Forbidden),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

fn ok_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

/// Runs a handler body and counts the response's status.
async fn counted(
    state: &ApiState,
    work: impl std::future::Future<Output = Result<Response, ApiError>>,
) -> Response {
    let response = match work.await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    state.metrics.count(response.status().as_u16());
    response
}

async fn list_findings(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    body: Bytes,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Read)?;
        let query = ops::parse_list_request(&parse_body(&body)?)?;
        Ok(ok_json(
            StatusCode::OK,
            &ops::list_findings(&s.store, query).await?,
        ))
    })
    .await
}

async fn get_finding(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    Path(id): Path<String>,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Read)?;
        Ok(ok_json(
            StatusCode::OK,
            &ops::get_finding(&s.store, id).await?,
        ))
    })
    .await
}

async fn archive(s: Shared, caller: Verdict, body: Bytes, archived: bool) -> Response {
    counted(&s, async {
        authorize(caller, Role::Admin)?;
        let ids = ops::parse_finding_ids(&parse_body(&body)?)?;
        Ok(ok_json(
            StatusCode::OK,
            &ops::archive(&s.store, ids, archived).await?,
        ))
    })
    .await
}

async fn archive_findings(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    body: Bytes,
) -> Response {
    archive(s, caller, body, true).await
}

async fn unarchive_findings(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    body: Bytes,
) -> Response {
    archive(s, caller, body, false).await
}

async fn list_rules(State(s): State<Shared>, Extension(caller): Extension<Verdict>) -> Response {
    counted(&s, async {
        authorize(caller, Role::Read)?;
        let rules = ops::list_rules(&s.store).await?;
        Ok(ok_json(StatusCode::OK, &json!({ "rules": rules })))
    })
    .await
}

async fn put_rule(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    body: Bytes,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Admin)?;
        let name = ops::put_rule(&s, parse_body(&body)?).await?;
        Ok(ok_json(StatusCode::CREATED, &json!({ "name": name })))
    })
    .await
}

async fn delete_rule(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    Path(name): Path<String>,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Admin)?;
        ops::delete_rule(&s, name).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn list_lists(State(s): State<Shared>, Extension(caller): Extension<Verdict>) -> Response {
    counted(&s, async {
        authorize(caller, Role::Read)?;
        let lists = ops::list_lists(&s.store).await?;
        Ok(ok_json(StatusCode::OK, &json!({ "lists": lists })))
    })
    .await
}

async fn put_list(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    body: Bytes,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Admin)?;
        let record = ops::put_list(&s, &parse_body(&body)?).await?;
        Ok(ok_json(
            StatusCode::CREATED,
            &json!({"name": record.name, "entries": record.entries, "rejectedLines": record.rejected_lines}),
        ))
    })
    .await
}

async fn delete_list(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
    Path(name): Path<String>,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Admin)?;
        ops::delete_list(&s, name).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// Interval of the empty keep-alive lines on the change stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Forwards committed changes as JSON lines until the client goes away or the API shuts down.
pub(super) fn change_lines(s: &ApiState) -> mpsc::Receiver<String> {
    let mut changes = s.store.subscribe();
    let mut shutdown: watch::Receiver<bool> = s.shutdown.clone();
    let (tx, rx) = mpsc::channel::<String>(256);
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            let line = tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => ops::change_json(&change).to_string(),
                    Err(RecvError::Lagged(missed)) => json!({"change": "lagged", "missed": missed}).to_string(),
                    Err(RecvError::Closed) => break,
                },
                _ = keepalive.tick() => String::new(),
                _ = shutdown.changed() => break,
                _ = tx.closed() => break,
            };
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}

async fn stream_findings(
    State(s): State<Shared>,
    Extension(caller): Extension<Verdict>,
) -> Response {
    counted(&s, async {
        authorize(caller, Role::Read)?;
        let lines = tokio_stream::wrappers::ReceiverStream::new(change_lines(&s));
        let body = Body::from_stream(tokio_stream::StreamExt::map(lines, |mut line| {
            line.push('\n');
            Ok::<_, std::convert::Infallible>(line)
        }));
        Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
    })
    .await
}

async fn healthz(State(s): State<Shared>) -> Response {
    match s.store.read_async(|r| r.finding_count()).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
    }
}

async fn metrics(State(s): State<Shared>, Extension(caller): Extension<Verdict>) -> Response {
    counted(&s, async {
        authorize(caller, Role::Read)?;
        let mut out = String::with_capacity(4096);
        s.store.metrics().render(&mut out);
        s.metrics.render(&mut out);
        for source in &s.sources {
            source.render_metrics(&mut out);
        }
        Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
    })
    .await
}

/// Unknown paths: a JSON 404 (set after merging the gRPC routes, whose own fallback it replaces).
pub async fn not_found() -> Response {
    ApiError::NotFound("no such API path (see docs/api.md)".into()).into_response()
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/findings/list", post(list_findings))
        .route("/v1/findings/archive", post(archive_findings))
        .route("/v1/findings/unarchive", post(unarchive_findings))
        .route("/v1/findings/stream", get(stream_findings))
        .route("/v1/findings/{id}", get(get_finding))
        .route("/v1/suppression-rules", get(list_rules).post(put_rule))
        .route("/v1/suppression-rules/{name}", delete(delete_rule))
        .route("/v1/lists", get(list_lists).post(put_list))
        .route("/v1/lists/{name}", delete(delete_list))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
