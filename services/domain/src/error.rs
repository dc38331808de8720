//! The contract's error table, and how every domain error maps onto it.
//!
//! Each aggregate has its own error enum (a variant per rule it enforces);
//! each variant maps to exactly one [`ErrorCode`], so the HTTP and NATS
//! adapters never guess a status.

use std::fmt;

use tledger_events::{FactError, FactErrorKind};

/// The error codes of docs/contract.md, with their HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: not JSON, wrong JSON type, missing or unknown field, bad query.
    Malformed,
    /// 401: no or bad token.
    Unauthenticated,
    /// 403: role or scope does not allow.
    Forbidden,
    /// 404: unknown command, unit, official, enrollment, report, event.
    NotFound,
    /// 409: illegal transition, date order, after leaving, id registered
    /// twice, hierarchy cycle, retraction not allowed, idempotency key
    /// reused with another body, concurrency retries exhausted.
    Conflict,
    /// 413: body over 1 MiB.
    TooLarge,
    /// 422: id charset or length, unknown code, category not matching
    /// position, negative amount, `from` after `to`, no reference data in force.
    InvalidValue,
    /// 503: position not reached in time, PostgreSQL down.
    NotReady,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::NotReady => "not_ready",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Malformed => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::InvalidValue => 422,
            ErrorCode::NotReady => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error the caller sees: its contract code and, where one member of the
/// input is at fault, that member as a JSON Pointer.
pub trait ContractError: std::error::Error {
    fn code(&self) -> ErrorCode;
    fn field(&self) -> Option<String> {
        None
    }
}

impl ContractError for FactError {
    fn code(&self) -> ErrorCode {
        match self.kind {
            FactErrorKind::Malformed => ErrorCode::Malformed,
            FactErrorKind::InvalidValue => ErrorCode::InvalidValue,
        }
    }

    fn field(&self) -> Option<String> {
        Some(self.pointer.clone())
    }
}
