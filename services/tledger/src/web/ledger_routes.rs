//! The ledger for anyone who checks it (docs/contract.md, Audit and
//! inspection): `GET /v1/ledger/head`, `/v1/ledger/checkpoint` and
//! `/v1/ledger/proof/<position>`. The proofs themselves are made in
//! [`crate::inspection`].

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tledger_domain::ErrorCode;
use tledger_events::proof::InclusionProof;

use crate::access::{Caller, Role};
use crate::commands::Refusal;
use crate::inspection::{inclusion_proof, ProofUnavailable};
use crate::web::state::WebState;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/v1/ledger/head", get(head))
        .route("/v1/ledger/checkpoint", get(latest_checkpoint))
        .route("/v1/ledger/proof/{position}", get(proof))
}

async fn head(State(state): State<WebState>) -> Response {
    match state.store.head().await {
        Ok(position) => {
            let published = state.published_position().await;
            let mut body = json!({"position": position, "published_position": published});
            // Present only while the relay is stuck (the contract's keys stay).
            if let Some(stuck) = state.relay.stuck() {
                body["relay"] = stuck.to_json();
            }
            Json(body).into_response()
        }
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// `GET /v1/ledger/checkpoint`: open, like the head (it holds no personal
/// data, and anyone may keep a copy as a trust anchor).
async fn latest_checkpoint(State(state): State<WebState>) -> Response {
    match state.store.latest_checkpoint().await {
        Ok(Some(checkpoint)) => Json(checkpoint).into_response(),
        Ok(None) => {
            Refusal::new(ErrorCode::NotFound, "no checkpoint has been signed yet").into_response()
        }
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// `GET /v1/ledger/proof/<position>`: the proof carries the fact itself,
/// so it is read like a person's history (admin or inspector).
async fn proof(
    State(state): State<WebState>,
    Path(position): Path<String>,
    caller: Caller,
) -> Result<Json<InclusionProof>, Refusal> {
    if !matches!(caller.role, Role::Admin | Role::Inspector) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "proofs carry the fact itself: an admin or inspector token reads them",
        ));
    }
    let position: u64 = position.parse().map_err(|_| {
        Refusal::new(
            ErrorCode::Malformed,
            format!("the position must be a whole number from 1 up, not {position:?}"),
        )
    })?;
    let proof = inclusion_proof(&state.store, position)
        .await
        .map_err(|e| match e {
            ProofUnavailable::Store(e) => Refusal::from(e),
            other => Refusal::new(ErrorCode::NotFound, other.to_string()),
        })?;
    Ok(Json(proof))
}
