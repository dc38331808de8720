//! The HTTP adapter (axum): commands, the ledger head, reports, audit
//! trails, the access log, receipts and the quarantine, health, readiness,
//! metrics and the dashboard pages ([`crate::web::dashboard`]). Thin: every
//! command goes to [`CommandService::execute`].

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tledger_domain::ErrorCode;
use tledger_store::Store;

use crate::commands::{CommandReply, CommandRequest, CommandService, Refusal};

/// The largest command body accepted (CONTRACT.md: 413 above 1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// How long a client has to send its request head: a client trickling it
/// (or sending nothing) would otherwise hold a connection for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has, once its request head is in, to send the whole
/// body: a client trickling it (a byte every few seconds) would otherwise
/// hold its connection and a handler for as long as it likes. 30 s is over
/// three times what the largest body (1 MiB) needs at 1 Mbit/s. A late body
/// is answered `408` with the contract's `malformed` error and the
/// connection is closed.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The time limits of every request on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// For the request head, from the connection's start or the previous
    /// answer.
    pub head: Duration,
    /// For the whole body, from the end of the head.
    pub body: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then lets the connections
/// in flight finish. Unlike `axum::serve`, every connection has a deadline
/// for its request head ([`HEADER_READ_TIMEOUT`] in the service) and for
/// its body ([`BODY_READ_TIMEOUT`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let deadlines = Deadlines {
        head: header_timeout,
        body: BODY_READ_TIMEOUT,
    };
    serve_with_deadlines(listener, app, deadlines, shutdown).await;
}

/// [`serve`] with both deadlines chosen (tests play slow clients).
pub async fn serve_with_deadlines(
    listener: tokio::net::TcpListener,
    app: Router,
    deadlines: Deadlines,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(deadlines.head);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            within_body_deadline(app.clone(), request, deadlines.body)
        });
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers `request` with `app`, its body cut off `limit` after the head
/// came in. A handler sees a late body as a failed read; its answer is then
/// replaced by a `408` (it could not know why the read failed) and the
/// connection is closed, since the rest of the body would still come.
async fn within_body_deadline(
    app: Router,
    request: axum::http::Request<hyper::body::Incoming>,
    limit: Duration,
) -> Result<Response, std::convert::Infallible> {
    use hyper::service::Service as _;
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        axum::body::Body::new(TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            late: late.clone(),
        })
    });
    let response = hyper_util::service::TowerToHyperService::new(app)
        .call(request)
        .await?;
    if !late.load(Ordering::Relaxed) {
        return Ok(response);
    }
    let refusal = Refusal::new(
        ErrorCode::Malformed,
        format!(
            "the request body did not arrive within {} s of its head",
            limit.as_secs_f64()
        ),
    );
    Ok((
        StatusCode::REQUEST_TIMEOUT,
        [(axum::http::header::CONNECTION, "close")],
        Json(refusal.reply().body),
    )
        .into_response())
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("the request body did not arrive within {} s", .0.as_secs_f64())]
    TooSlow(Duration),
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
}

/// A request body that fails once its deadline has passed.
struct TimedBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    /// Set when the deadline cut the body off.
    late: Arc<AtomicBool>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        // The deadline first: data that keeps trickling in must not keep
        // the body alive past it.
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyReadError::TooSlow(this.limit))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(BodyReadError::Read)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub commands: CommandService,
    pub store: Store,
    pub metrics: PrometheusHandle,
    /// For `published_position`; `None` when NATS is not configured.
    pub jetstream: Option<async_nats::jetstream::Context>,
    /// The dashboard's cached ledger verification.
    pub dashboard: crate::web::dashboard::DashboardState,
    /// The read models for reports and the dashboard: their clones share
    /// what they keep between requests (the unit hierarchy).
    pub read_models: tledger_projections::reports::ReadModels,
    /// Whether this process's relay is stuck, and why.
    pub relay: crate::relay::RelayWatch,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/v1/commands/{name}", post(command))
        .route("/v1/ledger/head", get(head))
        .route(
            "/v1/ledger/checkpoint",
            get(crate::inspection::latest_checkpoint),
        )
        .route("/v1/ledger/proof/{position}", get(crate::inspection::proof))
        .route("/v1/reports/{name}", get(crate::web::report_routes::report))
        .route(
            "/v1/officials/{id}/history",
            get(crate::audit_trail::official_history),
        )
        .route(
            "/v1/enrollments/{id}/history",
            get(crate::audit_trail::enrollment_history),
        )
        .route("/v1/access-log", get(crate::access_log::access_log))
        .route("/v1/receipts", get(crate::quarantine::receipt))
        .route("/v1/quarantine", get(crate::quarantine::quarantine))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(crate::web::dashboard::routes())
        // Bodies are limited in the handler, to answer with the contract's
        // error body; this only stops axum's own default (2 MiB) getting in
        // the way.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(
            crate::web::browser_policy::apply,
        ))
        .with_state(state)
}

fn reply(reply: CommandReply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(reply.body)).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A header whose value is stored with the facts (idempotency key,
/// correlation id): read whatever its bytes, so that a value the command
/// pipeline refuses is refused there and never silently dropped.
fn stored_header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The caller of a request: the token of its `Authorization: Bearer`
/// header, verified (401 when missing or unknown).
pub async fn caller(
    state: &HttpState,
    headers: &HeaderMap,
) -> Result<crate::access::Caller, Refusal> {
    let token = bearer(
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    Ok(state
        .commands
        .access()
        .authenticate(token.as_deref())
        .await?)
}

/// `Authorization: Bearer <token>` → the token. The scheme's name is
/// case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` are the same.
pub fn bearer(authorization: Option<&str>) -> Option<String> {
    let (scheme, token) = authorization?.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn command(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return reply(
                Refusal::new(
                    ErrorCode::TooLarge,
                    format!("the body is over {MAX_BODY} bytes (1 MiB)"),
                )
                .reply(),
            )
        }
        Err(rejection) => {
            return reply(Refusal::new(ErrorCode::Malformed, rejection.body_text()).reply())
        }
    };
    let request = CommandRequest {
        name,
        body,
        bearer: bearer(header(&headers, "authorization").as_deref()),
        idempotency_key: stored_header(&headers, "idempotency-key"),
        correlation_id: stored_header(&headers, "x-correlation-id"),
    };
    reply(state.commands.execute(request).await)
}

/// The last published position (the stream's last sequence), if NATS answers.
async fn published_position(state: &HttpState) -> Option<u64> {
    let jetstream = state.jetstream.as_ref()?;
    let name = state.commands.prefix().events_stream();
    let lookup = async {
        let mut stream = jetstream.get_stream(&name).await.ok()?;
        stream
            .info()
            .await
            .ok()
            .map(|info| info.state.last_sequence)
    };
    tokio::time::timeout(Duration::from_secs(1), lookup)
        .await
        .ok()
        .flatten()
}

async fn head(State(state): State<HttpState>) -> Response {
    match state.store.head().await {
        Ok(position) => {
            let published = published_position(&state).await;
            let mut body = json!({"position": position, "published_position": published});
            // Present only while the relay is stuck (the contract's keys stay).
            if let Some(stuck) = state.relay.stuck() {
                body["relay"] = stuck.to_json();
            }
            Json(body).into_response()
        }
        Err(e) => reply(Refusal::from(e).reply()),
    }
}

async fn ready(State(state): State<HttpState>) -> Response {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(state.store.pool());
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        // Ready while PostgreSQL answers: commands go on when publishing
        // is stuck, but the body says why it is.
        Ok(Ok(_)) => {
            let mut body = json!({"status": "ready"});
            if let Some(stuck) = state.relay.stuck() {
                body["relay"] = stuck.to_json();
            }
            Json(body).into_response()
        }
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "PostgreSQL does not answer"})),
        )
            .into_response(),
    }
}

/// Prometheus text: counters kept by the handlers, plus gauges read now from
/// the database and the stream (ledger head, unsequenced events, the oldest
/// open transaction that holds the sequencer back, relay lag).
async fn metrics(State(state): State<HttpState>) -> Response {
    let pool = state.store.pool();
    if let Ok(head) = state.store.head().await {
        metrics::gauge!("tledger_ledger_head_position").set(head as f64);
        if let Some(published) = published_position(&state).await {
            metrics::gauge!("tledger_published_position").set(published as f64);
            metrics::gauge!("tledger_relay_lag_events").set(head.saturating_sub(published) as f64);
        }
    }
    if let Ok(n) =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE position IS NULL")
            .fetch_one(pool)
            .await
    {
        metrics::gauge!("tledger_sequencer_lag_events").set(n as f64);
    }
    let oldest = "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(xact_start)), 0)::float8 \
                  FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL";
    if let Ok(age) = sqlx::query_scalar::<_, f64>(oldest).fetch_one(pool).await {
        metrics::gauge!("tledger_oldest_transaction_seconds").set(age);
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
