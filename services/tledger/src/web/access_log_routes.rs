//! `GET /v1/access-log` (docs/contract.md, Access): the listing's
//! parameters checked in the contract's order, then the records from
//! [`crate::access_log`].

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tledger_domain::ErrorCode;

use crate::access::{Caller, Role};
use crate::access_log::{list, AccessRecord, DEFAULT_LIMIT, MAX_LIMIT};
use crate::commands::Refusal;
use crate::web::state::WebState;

const PARAMETERS: &[&str] = &["since", "after", "limit"];

pub(crate) fn routes() -> Router<WebState> {
    Router::new().route("/v1/access-log", get(access_log))
}

fn malformed(name: &str, message: String) -> Refusal {
    let mut refusal = Refusal::new(ErrorCode::Malformed, message);
    refusal.field = Some(format!("/{name}"));
    refusal
}

/// The checked parameters of a listing.
struct Listing {
    since: Option<DateTime<Utc>>,
    after: u64,
    limit: u32,
}

fn parse_listing(params: &[(String, String)]) -> Result<Listing, Refusal> {
    let mut listing = Listing {
        since: None,
        after: 0,
        limit: DEFAULT_LIMIT,
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in params {
        if !PARAMETERS.contains(&name.as_str()) {
            return Err(malformed(
                name,
                format!(
                    "unknown parameter {name:?}; the parameters are {}",
                    PARAMETERS.join(", ")
                ),
            ));
        }
        if seen.contains(&name.as_str()) {
            return Err(malformed(name, format!("give {name} once")));
        }
        seen.push(name);
        match name.as_str() {
            "since" => {
                let since = DateTime::parse_from_rfc3339(value).map_err(|_| {
                    malformed(
                        name,
                        format!("since must be an RFC 3339 instant, not {value:?}"),
                    )
                })?;
                listing.since = Some(since.with_timezone(&Utc));
            }
            "after" => {
                listing.after = value.parse().map_err(|_| {
                    malformed(
                        name,
                        format!("after must be a record id (a whole number), not {value:?}"),
                    )
                })?;
            }
            _ => {
                listing.limit = value.parse().map_err(|_| {
                    malformed(name, format!("limit must be a whole number, not {value:?}"))
                })?;
            }
        }
    }
    if listing.limit == 0 || listing.limit > MAX_LIMIT {
        let mut refusal = Refusal::new(
            ErrorCode::InvalidValue,
            format!("limit must be from 1 to {MAX_LIMIT}, not {}", listing.limit),
        );
        refusal.field = Some("/limit".into());
        return Err(refusal);
    }
    Ok(listing)
}

/// `GET /v1/access-log`: admins and inspectors only.
async fn access_log(
    State(state): State<WebState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    caller: Caller,
) -> Result<Json<Value>, Refusal> {
    if !matches!(caller.role, Role::Admin | Role::Inspector) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!(
                "a {} token may not read the access log (admins and inspectors do)",
                caller.role
            ),
        ));
    }
    let Query(params) = params.map_err(|e| Refusal::new(ErrorCode::Malformed, e.body_text()))?;
    let listing = parse_listing(&params)?;
    let page = list(&state.store, listing.since, listing.after, listing.limit).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(AccessRecord::to_json).collect::<Vec<_>>(),
        "next": page.next,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tledger_events::chain::format_instant;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn listing_parameters_are_checked_in_the_contracts_order() {
        let parsed = parse_listing(&params(&[
            ("since", "2026-11-25T10:00:00+07:00"),
            ("after", "12"),
            ("limit", "50"),
        ]))
        .expect("valid");
        assert_eq!(
            parsed.since.map(format_instant).as_deref(),
            Some("2026-11-25T03:00:00.000000Z")
        );
        assert_eq!((parsed.after, parsed.limit), (12, 50));
        let code = |pairs: &[(&str, &str)]| {
            parse_listing(&params(pairs))
                .err()
                .map(|r| (r.code, r.field))
        };
        assert_eq!(
            code(&[("since", "yesterday")]),
            Some((ErrorCode::Malformed, Some("/since".into())))
        );
        assert_eq!(
            code(&[("after", "-1")]),
            Some((ErrorCode::Malformed, Some("/after".into())))
        );
        assert_eq!(
            code(&[("who", "me")]),
            Some((ErrorCode::Malformed, Some("/who".into())))
        );
        assert_eq!(
            code(&[("limit", "1"), ("limit", "2")]),
            Some((ErrorCode::Malformed, Some("/limit".into())))
        );
        assert_eq!(
            code(&[("limit", "0")]),
            Some((ErrorCode::InvalidValue, Some("/limit".into())))
        );
        assert_eq!(
            code(&[("limit", "1001")]),
            Some((ErrorCode::InvalidValue, Some("/limit".into())))
        );
        assert_eq!(code(&[]), None);
    }
}
