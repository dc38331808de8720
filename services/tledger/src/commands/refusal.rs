//! The refusal of a command: the contract's error body (docs/contract.md,
//! Errors) and the conversions from the errors of the store, the facts and
//! access. Free of HTTP frameworks: the web layer turns a [`Refusal`] into
//! its response.

use serde_json::json;
use tledger_domain::{ContractError, ErrorCode};
use tledger_events::FactError;
use tledger_store::StoreError;

use super::pipeline::CommandReply;
use crate::access::AccessError;

/// A refused command: the contract's error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn from_contract(error: &impl ContractError) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
            field: error.field(),
        }
    }

    pub fn reply(&self) -> CommandReply {
        let mut error = json!({"code": self.code.as_str(), "message": self.message});
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        CommandReply {
            status: self.code.http_status(),
            body: json!({ "error": error }),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        // SQLSTATE class 22 (data exception: a NUL in a string, a number out
        // of range) is about a value the request carried, not about the
        // database: a client's mistake that the door should have refused.
        if let StoreError::Database {
            source: sqlx::Error::Database(db),
            ..
        } = &error
        {
            if db.code().is_some_and(|code| code.starts_with("22")) {
                tracing::error!(%error, "a value reached the database unchecked (a bug at the door); refused as malformed");
                return Refusal::new(
                    ErrorCode::Malformed,
                    format!("a value of the request cannot be stored: {}", db.message()),
                );
            }
        }
        tracing::error!(%error, "store error while handling a command");
        Refusal::new(
            ErrorCode::NotReady,
            "the ledger's database is not available; retry later",
        )
    }
}

impl From<FactError> for Refusal {
    fn from(error: FactError) -> Self {
        Refusal::from_contract(&error)
    }
}

impl From<AccessError> for Refusal {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Store(e) => e.into(),
            other => Refusal::new(ErrorCode::Unauthenticated, other.to_string()),
        }
    }
}

/// A refusal, and whether it came before anything was appended (then an
/// earlier request under the same idempotency key may answer instead).
pub(crate) enum Refused {
    Before(Refusal),
    After(Refusal),
    /// The store failed the append, so nothing was appended. Published
    /// facts tell a refusal of what the fact holds from an outage by the
    /// error itself; commands answer it as a refusal before appending.
    Store(StoreError),
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Refused::Before(refusal)
    }
}

/// A body whose fact is not of the command's type.
pub(super) fn wrong_type(expected: &str) -> Refusal {
    Refusal::new(
        ErrorCode::Malformed,
        format!("the body is not a {expected} fact"),
    )
}
