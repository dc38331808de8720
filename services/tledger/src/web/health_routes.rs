//! `GET /healthz`, `/readyz` and `/metrics`: open, for the platform that
//! runs the service.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::web::state::WebState;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<WebState>) -> Response {
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
async fn metrics(State(state): State<WebState>) -> Response {
    let pool = state.store.pool();
    if let Ok(head) = state.store.head().await {
        metrics::gauge!("tledger_ledger_head_position").set(head as f64);
        if let Some(published) = state.published_position().await {
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
