//! `GET /v1/receipts` and `GET /v1/quarantine` (docs/contract.md, Access):
//! the parameters checked, then who may read what as
//! [`crate::quarantine`] decides it.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tledger_domain::ErrorCode;

use crate::access::{Caller, Role};
use crate::admission::{check_id_param, check_text_param};
use crate::commands::Refusal;
use crate::quarantine::{item_json, may_read, receipt_json};
use crate::web::state::WebState;

/// Items listed at most, by default and at most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/v1/receipts", get(receipt))
        .route("/v1/quarantine", get(quarantine))
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::Forbidden, message)
}

fn malformed(field: &str, message: impl Into<String>) -> Refusal {
    let mut refusal = Refusal::new(ErrorCode::Malformed, message);
    refusal.field = Some(format!("/{field}"));
    refusal
}

fn params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    known: &[&str],
) -> Result<HashMap<String, String>, Refusal> {
    let Query(pairs) = query.map_err(|e| Refusal::new(ErrorCode::Malformed, e.body_text()))?;
    let mut map = HashMap::new();
    for (name, value) in pairs {
        if !known.contains(&name.as_str()) {
            return Err(malformed(
                &name,
                format!("unknown parameter {name:?}; expected {}", known.join(", ")),
            ));
        }
        if map.insert(name.clone(), value).is_some() {
            return Err(malformed(&name, format!("give {name} once")));
        }
    }
    Ok(map)
}

/// `GET /v1/receipts?source=&id=`: the latest receipt.
async fn receipt(
    State(state): State<WebState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    caller: Caller,
) -> Result<Json<Value>, Refusal> {
    let params = params(query, &["source", "id"])?;
    let source = params
        .get("source")
        .ok_or_else(|| malformed("source", "give source (the publisher's URI)"))?;
    let id = params
        .get("id")
        .ok_or_else(|| malformed("id", "give id (the CloudEvent id)"))?;
    check_text_param("source", source)?;
    check_text_param("id", id)?;
    let not_found = || {
        Refusal::new(
            ErrorCode::NotFound,
            format!("no receipt for id {id:?} from {source}"),
        )
    };
    let receipt = state
        .store
        .receipt(source, id)
        .await?
        .ok_or_else(not_found)?;
    if !may_read(&state.store, &caller, &receipt.publisher_id).await? {
        return Err(forbidden(format!(
            "{} may not read the receipts of publisher {}",
            caller.name, receipt.publisher_id
        )));
    }
    Ok(Json(receipt_json(&receipt)))
}

/// `GET /v1/quarantine?publisher=&limit=`: quarantined messages, oldest
/// first (a publisher token sees its own without naming it).
async fn quarantine(
    State(state): State<WebState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    caller: Caller,
) -> Result<Json<Value>, Refusal> {
    let params = params(query, &["publisher", "limit"])?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                let mut r = Refusal::new(
                    ErrorCode::InvalidValue,
                    format!("limit must be 1-{MAX_LIMIT}"),
                );
                r.field = Some("/limit".into());
                r
            })?,
    };
    if let Some(publisher) = params.get("publisher") {
        check_id_param("publisher", publisher)?;
    }
    let publisher = match (params.get("publisher"), &caller.publisher_id) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(own)) if caller.role == Role::Publisher => Some(own.to_string()),
        (None, _) => None,
    };
    match &publisher {
        Some(p) if !may_read(&state.store, &caller, p).await? => {
            return Err(forbidden(format!(
                "{} may not read the quarantine of publisher {p}",
                caller.name
            )))
        }
        None if !matches!(caller.role, Role::Admin | Role::Inspector) => {
            return Err(forbidden(format!(
                "a {} token reads the quarantine of one publisher: give publisher",
                caller.role
            )))
        }
        _ => {}
    }
    let items = state
        .store
        .quarantine_items(publisher.as_deref(), limit)
        .await?;
    Ok(Json(
        json!({ "items": items.iter().map(item_json).collect::<Vec<_>>() }),
    ))
}
