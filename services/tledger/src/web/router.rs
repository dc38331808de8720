//! The one place that knows every feature: their routes merged, with what
//! applies to all of them (the body limit and the browser policy).

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::web::command_routes::MAX_BODY;
use crate::web::state::WebState;
use crate::web::{
    access_log_routes, audit_trail_routes, browser_policy, command_routes, dashboard,
    health_routes, ledger_routes, quarantine_routes, report_routes,
};

/// Every route of the service, ready to serve.
pub fn router(state: WebState) -> Router {
    Router::new()
        .merge(command_routes::routes())
        .merge(ledger_routes::routes())
        .merge(report_routes::routes())
        .merge(audit_trail_routes::routes())
        .merge(access_log_routes::routes())
        .merge(quarantine_routes::routes())
        .merge(health_routes::routes())
        .merge(dashboard::routes())
        // Bodies are limited in the handler, to answer with the contract's
        // error body; this only stops axum's own default (2 MiB) getting in
        // the way.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(browser_policy::apply))
        .with_state(state)
}
