//! What every handler shares ([`WebState`]), who is asking ([`Caller`] as
//! an extractor), and how the command pipeline's answers become HTTP
//! answers: the contract's status and JSON body (docs/contract.md, Errors).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::PrometheusHandle;
use tledger_store::Store;

use crate::access::Caller;
use crate::commands::{CommandReply, CommandService, Refusal};

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    pub commands: CommandService,
    pub store: Store,
    pub metrics: PrometheusHandle,
    /// For `published_position`; `None` when NATS is not configured.
    pub jetstream: Option<async_nats::jetstream::Context>,
    /// The dashboard's cached ledger verification.
    pub dashboard: crate::web::dashboard::verification::DashboardState,
    /// The read models for reports and the dashboard: their clones share
    /// what they keep between requests (the unit hierarchy).
    pub read_models: tledger_projections::reports::ReadModels,
    /// Whether this process's relay is stuck, and why.
    pub relay: crate::relay::RelayWatch,
}

impl WebState {
    /// The last published position (the stream's last sequence), if NATS
    /// answers within a second.
    pub(crate) async fn published_position(&self) -> Option<u64> {
        let jetstream = self.jetstream.as_ref()?;
        let name = self.commands.prefix().events_stream();
        let lookup = async {
            let mut stream = jetstream.get_stream(&name).await.ok()?;
            stream
                .info()
                .await
                .ok()
                .map(|info| info.state.last_sequence)
        };
        tokio::time::timeout(Duration::from_secs(1), lookup)
            .await
            .ok()
            .flatten()
    }
}

/// The caller of a request: the token of its `Authorization: Bearer`
/// header, verified (401 when missing or unknown). Handlers take it after
/// their path, so that a bad path is still answered before the token.
impl FromRequestParts<WebState> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Refusal> {
        let token = bearer(
            parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        Ok(state
            .commands
            .access()
            .authenticate(token.as_deref())
            .await?)
    }
}

/// `Authorization: Bearer <token>` → the token. The scheme's name is
/// case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` are the same.
pub fn bearer(authorization: Option<&str>) -> Option<String> {
    let (scheme, token) = authorization?.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl IntoResponse for CommandReply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body)).into_response()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.reply().into_response()
    }
}
