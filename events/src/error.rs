//! Parse errors: what was wrong, where (a JSON Pointer), and why.

/// The contract's two classes of bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactErrorKind {
    /// Not JSON, wrong JSON type, missing or unknown field (HTTP 400 `malformed`).
    Malformed,
    /// Well-formed but not allowed: id charset or length, unknown code,
    /// negative amount, a range the wrong way round (HTTP 422 `invalid_value`).
    InvalidValue,
}

impl FactErrorKind {
    /// The contract's error code.
    pub fn code(self) -> &'static str {
        match self {
            FactErrorKind::Malformed => "malformed",
            FactErrorKind::InvalidValue => "invalid_value",
        }
    }
}

/// A fact (or envelope, or reference file) that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at `{pointer}`)")]
pub struct FactError {
    pub kind: FactErrorKind,
    /// JSON Pointer (RFC 6901) to the offending member; `""` is the whole document.
    pub pointer: String,
    /// A sentence a person can act on.
    pub message: String,
}

impl FactError {
    pub fn malformed(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: FactErrorKind::Malformed,
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: FactErrorKind::InvalidValue,
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The same error, located under `prefix` (e.g. `/data`).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
}

/// Escapes one reference token of a JSON Pointer (RFC 6901 §3).
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
