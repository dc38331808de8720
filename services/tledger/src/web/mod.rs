//! The HTTP side of the service (axum). [`state`] holds what the handlers
//! share and the [`Caller`](crate::access::Caller) extractor; each feature
//! exports its own routes (`*_routes`, [`dashboard`]); [`router`] alone
//! merges them; [`server`] serves them with the deadlines every connection
//! has. Features import `web::state`, never the router.

mod access_log_routes;
mod audit_trail_routes;
pub(crate) mod browser_policy;
mod command_routes;
pub mod dashboard;
mod health_routes;
mod ledger_routes;
mod quarantine_routes;
mod report_routes;
mod router;
pub mod server;
pub(crate) mod state;

pub use command_routes::MAX_BODY;
pub use router::router;
pub use server::{
    serve, serve_with_deadlines, BodyReadError, Deadlines, BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT,
};
pub use state::{bearer, WebState};
