//! The HTTP side of the service (axum): the state the handlers share, the
//! routes of each feature, the router that merges them, the server with its
//! deadlines, the browser policy on every answer, and the dashboard's pages.

pub mod browser_policy;
pub mod dashboard;
pub mod report_routes;
pub mod server;
