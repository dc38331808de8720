//! `POST /v1/commands/<name>`: the body and headers handed to the command
//! pipeline ([`CommandService::execute`](crate::commands::CommandService::execute)),
//! which authenticates, checks and answers; this file only reads HTTP.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tledger_domain::ErrorCode;

use crate::commands::{CommandRequest, Refusal};
use crate::web::state::{bearer, WebState};

/// The largest command body accepted (docs/contract.md: 413 above 1 MiB).
pub const MAX_BODY: usize = 1 << 20;

pub(crate) fn routes() -> Router<WebState> {
    Router::new().route("/v1/commands/{name}", post(command))
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

async fn command(
    State(state): State<WebState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Refusal::new(
                ErrorCode::TooLarge,
                format!("the body is over {MAX_BODY} bytes (1 MiB)"),
            )
            .into_response()
        }
        Err(rejection) => {
            return Refusal::new(ErrorCode::Malformed, rejection.body_text()).into_response()
        }
    };
    let request = CommandRequest {
        name,
        body,
        bearer: bearer(header(&headers, "authorization").as_deref()),
        idempotency_key: stored_header(&headers, "idempotency-key"),
        correlation_id: stored_header(&headers, "x-correlation-id"),
    };
    state.commands.execute(request).await.into_response()
}
