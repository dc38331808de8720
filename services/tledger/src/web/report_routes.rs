//! The reports over HTTP: `GET /v1/reports/<name>` (docs/contract.md, Reports),
//! JSON or CSV (`Accept: text/csv`), with the contract's common parameters
//! and read access by role and unit scope. A read for a unit is recorded in
//! the access log before it is answered ([`crate::access_log`]).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tledger_domain::ErrorCode;
use tledger_events::Date;
use tledger_projections::reports::{ReadModels, ReportError};

use crate::access::{Caller, Role};
use crate::access_log::{self, Read};
use crate::calendar::{five_years_ending, today};
use crate::commands::Refusal;
use crate::presentation::report_csv::to_csv;
use crate::web::state::WebState;

/// How long `min_position` (or an `at_position` the read models have not
/// reached) may wait.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

pub(crate) fn routes() -> Router<WebState> {
    Router::new().route("/v1/reports/{name}", get(report))
}

const PARAMETERS: &[&str] = &[
    "unit",
    "from",
    "to",
    "as_of",
    "at_position",
    "known_at",
    "min_position",
];

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal::new(code, message)
}

fn field(mut refusal: Refusal, name: &str) -> Refusal {
    refusal.field = Some(format!("/{name}"));
    refusal
}

impl From<ReportError> for Refusal {
    fn from(error: ReportError) -> Self {
        match &error {
            ReportError::UnknownUnit(_) => {
                field(refuse(ErrorCode::NotFound, error.to_string()), "unit")
            }
            ReportError::NoReferenceData { .. } => {
                refuse(ErrorCode::InvalidValue, error.to_string())
            }
            ReportError::BadReferenceData { .. }
            | ReportError::FundingSum { .. }
            | ReportError::Database { .. } => {
                tracing::error!(%error, "report failed");
                refuse(
                    ErrorCode::NotReady,
                    "the read models are not available; retry later",
                )
            }
        }
    }
}

fn date_param(params: &HashMap<String, String>, name: &str) -> Result<Option<Date>, Refusal> {
    params
        .get(name)
        .map(|v| {
            v.parse::<Date>().map_err(|_| {
                field(
                    refuse(
                        ErrorCode::Malformed,
                        format!("{name} must be a date YYYY-MM-DD, not {v:?}"),
                    ),
                    name,
                )
            })
        })
        .transpose()
}

fn position_param(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, Refusal> {
    params
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                field(
                    refuse(
                        ErrorCode::Malformed,
                        format!("{name} must be a ledger position (a whole number), not {v:?}"),
                    ),
                    name,
                )
            })
        })
        .transpose()
}

/// The checked query of a report.
struct ReportQuery {
    unit: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    as_of: Option<Date>,
    at_position: Option<u64>,
    known_at: Option<DateTime<Utc>>,
    min_position: Option<u64>,
}

/// The query's parameters, each given at most once (a repeated one would
/// be ambiguous: which value counts?).
fn once_each(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, Refusal> {
    let mut params = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if params.contains_key(&name) {
            return Err(field(
                refuse(ErrorCode::Malformed, format!("give {name} once")),
                &name,
            ));
        }
        params.insert(name, value);
    }
    Ok(params)
}

fn parse_query(params: &HashMap<String, String>) -> Result<ReportQuery, Refusal> {
    if let Some(unknown) = params.keys().find(|k| !PARAMETERS.contains(&k.as_str())) {
        return Err(field(
            refuse(
                ErrorCode::Malformed,
                format!(
                    "unknown parameter {unknown:?}; the parameters are {}",
                    PARAMETERS.join(", ")
                ),
            ),
            unknown,
        ));
    }
    let known_at = params
        .get("known_at")
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    field(
                        refuse(
                            ErrorCode::Malformed,
                            format!("known_at must be an RFC 3339 instant, not {v:?}"),
                        ),
                        "known_at",
                    )
                })
        })
        .transpose()?;
    let query = ReportQuery {
        unit: params.get("unit").filter(|u| !u.is_empty()).cloned(),
        from: date_param(params, "from")?,
        to: date_param(params, "to")?,
        as_of: date_param(params, "as_of")?,
        at_position: position_param(params, "at_position")?,
        known_at,
        min_position: position_param(params, "min_position")?,
    };
    if query.at_position.is_some() && query.known_at.is_some() {
        return Err(refuse(
            ErrorCode::Malformed,
            "give known_at or at_position, not both",
        ));
    }
    Ok(query)
}

/// Waits until the read models reach `position` (10 s at most).
async fn reach(models: &ReadModels, position: u64) -> Result<u64, Refusal> {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let at = models.position().await?;
        if at >= position {
            return Ok(at);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(refuse(
                ErrorCode::NotReady,
                format!("the read models are at position {at}, not yet at {position}; retry"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cut a report uses: `at_position`, the last position recorded by
/// `known_at`, or the latest the read models hold.
async fn cut(state: &WebState, models: &ReadModels, query: &ReportQuery) -> Result<u64, Refusal> {
    if let Some(min) = query.min_position {
        reach(models, min).await?;
    }
    match (query.at_position, query.known_at) {
        (Some(at), _) => {
            reach(models, at).await?;
            Ok(at)
        }
        (None, Some(known_at)) => {
            let position = state.store.position_known_at(known_at).await?;
            reach(models, position).await?;
            Ok(position)
        }
        (None, None) => Ok(models.position().await?),
    }
}

async fn report(
    State(state): State<WebState>,
    Path(name): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
    caller: Caller,
) -> Response {
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let params = params
        .map_err(|e| refuse(ErrorCode::Malformed, e.body_text()))
        .and_then(|Query(pairs)| once_each(pairs));
    match answer(&state, caller, &name, params, path).await {
        Ok(body) if csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            to_csv(&name, &body),
        )
            .into_response(),
        Ok(body) => Json(body).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn answer(
    state: &WebState,
    caller: Caller,
    name: &str,
    params: Result<HashMap<String, String>, Refusal>,
    path: &str,
) -> Result<Value, Refusal> {
    if caller.role == Role::Publisher {
        return Err(refuse(
            ErrorCode::Forbidden,
            "a publisher token reads only its own receipts and quarantine",
        ));
    }
    if !["training-volume", "standards", "alignment"].contains(&name) {
        return Err(refuse(
            ErrorCode::NotFound,
            format!(
                "unknown report {name:?}; the reports are training-volume, standards, alignment"
            ),
        ));
    }
    let query = parse_query(&params?)?;
    if let Some(unit) = &query.unit {
        crate::admission::check_id_param("unit", unit)?;
    }
    let models = state.read_models.clone();
    let date = match name {
        "training-volume" => query.to.unwrap_or_else(today),
        _ => query.as_of.unwrap_or_else(today),
    };
    let cut = cut(state, &models, &query).await?;
    let unit = query.unit.as_deref();
    if caller.role == Role::UnitOfficer {
        let root = caller
            .unit_id
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        let Some(unit) = unit else {
            return Err(refuse(
                ErrorCode::Forbidden,
                format!("a unit officer reads within {root}: give unit"),
            ));
        };
        let hierarchy = models.unit_tree(cut).await?;
        if !hierarchy.contains(unit) {
            return Err(ReportError::UnknownUnit(unit.to_owned()).into());
        }
        if !hierarchy.within(unit, &root, date) {
            return Err(field(
                refuse(
                    ErrorCode::Forbidden,
                    format!("unit {unit} is outside this token's scope ({root})"),
                ),
                "unit",
            ));
        }
    }
    let body = match name {
        "training-volume" => {
            let to = date;
            let from = query.from.unwrap_or_else(|| five_years_ending(to));
            if from > to {
                return Err(field(
                    refuse(
                        ErrorCode::InvalidValue,
                        format!("from {from} is after to {to}"),
                    ),
                    "from",
                ));
            }
            models.training_volume(unit, from, to, cut).await?.to_json()
        }
        "standards" => models.standards(unit, date, cut).await?.to_json(),
        _ => models.alignment(unit, date, cut).await?.to_json(),
    };
    // A unit's figures are about its people: the read is recorded first.
    if let Some(unit) = unit {
        let read = Read {
            path,
            unit_id: Some(unit),
            ..Read::default()
        };
        access_log::record_or_refuse(&state.store, &caller, &read).await?;
    }
    Ok(body)
}
