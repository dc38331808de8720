//! `GET /v1/officials/<id>/history` and `GET /v1/enrollments/<id>/history`
//! (docs/contract.md, Audit and inspection): the query checked, the trail
//! built by [`crate::audit_trail`], the read recorded in the access log, in
//! the contract's order of errors (401, 403 role, 400, 404, 403 scope, 422).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tledger_domain::ErrorCode;
use tledger_events::Date;

use crate::access::{Caller, Role};
use crate::access_log::{self, Read};
use crate::audit_trail::{FilterError, History, HistoryError, HistoryFilter, Trail};
use crate::commands::Refusal;
use crate::web::state::WebState;

const PARAMETERS: &[&str] = &["from", "to", "type"];

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/v1/officials/{id}/history", get(official_history))
        .route("/v1/enrollments/{id}/history", get(enrollment_history))
}

/// The query of an HTTP trail, its syntax checked (400).
struct HistoryQuery {
    from: Option<Date>,
    to: Option<Date>,
    types: Vec<String>,
}

fn malformed(name: &str, message: String) -> Refusal {
    let mut refusal = Refusal::new(ErrorCode::Malformed, message);
    refusal.field = Some(format!("/{name}"));
    refusal
}

fn parse_query(params: &[(String, String)]) -> Result<HistoryQuery, Refusal> {
    let mut query = HistoryQuery {
        from: None,
        to: None,
        types: Vec::new(),
    };
    for (name, value) in params {
        let date = |slot: &mut Option<Date>| -> Result<(), Refusal> {
            if slot.is_some() {
                return Err(malformed(name, format!("give {name} once")));
            }
            *slot = Some(value.parse().map_err(|_| {
                malformed(
                    name,
                    format!("{name} must be a date YYYY-MM-DD, not {value:?}"),
                )
            })?);
            Ok(())
        };
        match name.as_str() {
            "from" => date(&mut query.from)?,
            "to" => date(&mut query.to)?,
            "type" => query.types.push(value.clone()),
            _ => {
                return Err(malformed(
                    name,
                    format!(
                        "unknown parameter {name:?}; the parameters are {}",
                        PARAMETERS.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(query)
}

impl From<FilterError> for Refusal {
    fn from(error: FilterError) -> Self {
        let field = match error {
            FilterError::Range { .. } => "/from",
            FilterError::UnknownType(_) => "/type",
        };
        let mut refusal = Refusal::new(ErrorCode::InvalidValue, error.to_string());
        refusal.field = Some(field.into());
        refusal
    }
}

/// `GET /v1/officials/<id>/history`.
async fn official_history(
    State(state): State<WebState>,
    Path(id): Path<String>,
    uri: Uri,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    caller: Caller,
) -> Response {
    respond(&state, caller, Trail::Official, &id, &uri, params, &headers).await
}

/// `GET /v1/enrollments/<id>/history`.
async fn enrollment_history(
    State(state): State<WebState>,
    Path(id): Path<String>,
    uri: Uri,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    caller: Caller,
) -> Response {
    respond(
        &state,
        caller,
        Trail::Enrollment,
        &id,
        &uri,
        params,
        &headers,
    )
    .await
}

async fn respond(
    state: &WebState,
    caller: Caller,
    trail: Trail,
    id: &str,
    uri: &Uri,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: &HeaderMap,
) -> Response {
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    match answer(state, caller, trail, id, uri, params).await {
        Ok((history, filter)) if csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            history.to_csv(&filter),
        )
            .into_response(),
        Ok((history, filter)) => Json(history.to_json(&filter)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn answer(
    state: &WebState,
    caller: Caller,
    trail: Trail,
    id: &str,
    uri: &Uri,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(History, HistoryFilter), Refusal> {
    if caller.role == Role::Publisher {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "a publisher token reads only its own receipts and quarantine",
        ));
    }
    let Query(params) = params.map_err(|e| Refusal::new(ErrorCode::Malformed, e.body_text()))?;
    let query = parse_query(&params)?;
    let history = History::load(&state.store, trail, id)
        .await?
        .ok_or_else(|| {
            let mut refusal = Refusal::new(
                ErrorCode::NotFound,
                HistoryError::NotFound {
                    trail,
                    id: id.to_owned(),
                }
                .to_string(),
            );
            refusal.field = Some(format!("/{}", trail.id_key()));
            refusal
        })?;
    if caller.role == Role::UnitOfficer {
        let root = caller
            .unit_id
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        let hierarchy = state.commands.unit_tree(&[]).await?;
        if !history.within_scope(&hierarchy, &root) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "{} {id} was never within this token's scope ({root} and the units below it)",
                    trail
                ),
            ));
        }
    }
    let filter = HistoryFilter::new(query.from, query.to, &query.types)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let read = Read {
        path,
        official_id: history.person(),
        enrollment_id: (trail == Trail::Enrollment).then_some(id),
        unit_id: None,
    };
    access_log::record_or_refuse(&state.store, &caller, &read).await?;
    Ok((history, filter))
}
