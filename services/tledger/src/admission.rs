//! What the service's door admits besides a fact's own data: the header
//! fields it stores (correlation id, idempotency key), the ids and strings
//! taken from paths and queries, and a fact's size once wrapped for
//! JetStream (docs/door-limits.md).
//!
//! Every rule here is a pure function of what arrived; the adapters and the
//! command pipeline call them before anything reaches PostgreSQL, so a
//! client's mistake is answered as one (400, 413, 422) and never as an
//! outage (503).

use tledger_domain::ErrorCode;
use tledger_events::ids::check_id;

use crate::commands::Refusal;

/// The header that carries a command's correlation id (HTTP and NATS).
pub const CORRELATION_HEADER: &str = "X-Correlation-Id";
/// The header that carries a command's idempotency key, as refusals name
/// it: the pipeline serves both adapters and names both.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key (Nats-Msg-Id over NATS)";
/// The most bytes of a correlation id: it is stored with every fact of the
/// command and shown in trails, so it stays a short reference.
pub const MAX_CORRELATION_ID: usize = 128;
/// The most bytes of an idempotency key: it is part of an index key, and
/// 255 bytes keep the index row far below PostgreSQL's limit.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `max_payload` assumed when no NATS server was asked (`tledger
/// import`, which runs without NATS): nats-server's own default, 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;
/// Bytes of `max_payload` a fact may not use: the reserve for what the size
/// estimate cannot know exactly (the ledger hands the relay the data back
/// from `jsonb`, whose form may differ a little from the one estimated).
pub const PUBLISH_RESERVE: usize = 256;

/// Why a stored header field is refused (400 `malformed`, naming it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the {header} header is empty; leave it out or give 1 to {max} characters")]
    Empty { header: &'static str, max: usize },
    #[error("the {header} header has {length} bytes; at most {max} are accepted")]
    TooLong {
        header: &'static str,
        length: usize,
        max: usize,
    },
    #[error("the {header} header may hold only printable ASCII (space to '~'), not {found:?}")]
    NotPrintable { header: &'static str, found: char },
    #[error("the {header} header must not start or end with a space")]
    Padded { header: &'static str },
}

/// A stored header value: 1 to `max` bytes of printable ASCII (0x20 to
/// 0x7E), without a leading or trailing space. Non-ASCII is refused rather
/// than dropped, so that a key is never silently ignored.
pub fn check_header(header: &'static str, value: &str, max: usize) -> Result<(), HeaderError> {
    if value.is_empty() {
        return Err(HeaderError::Empty { header, max });
    }
    if let Some(found) = value.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(HeaderError::NotPrintable { header, found });
    }
    if value.len() > max {
        return Err(HeaderError::TooLong {
            header,
            length: value.len(),
            max,
        });
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(HeaderError::Padded { header });
    }
    Ok(())
}

impl From<HeaderError> for Refusal {
    fn from(error: HeaderError) -> Self {
        // A header is not a JSON Pointer into the body: no field.
        Refusal::new(ErrorCode::Malformed, error.to_string())
    }
}

/// A fact that would not fit the NATS server's `max_payload` once wrapped
/// as the relay publishes it (413 `too_large`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the fact, as published on JetStream, would be {size} bytes, over the {room} bytes that \
     the server's max_payload of {max_payload} bytes leaves for it ({PUBLISH_RESERVE} are kept \
     in reserve)"
)]
pub struct TooLargeToPublish {
    pub size: usize,
    pub room: usize,
    pub max_payload: usize,
}

/// Whether a fact whose wrapped message (headers and payload, as the
/// server counts them) is `size` bytes may be recorded under `max_payload`:
/// a recorded fact that cannot be published would stop the relay for good.
pub fn check_publishable(size: usize, max_payload: usize) -> Result<(), TooLargeToPublish> {
    let room = max_payload.saturating_sub(PUBLISH_RESERVE);
    if size > room {
        return Err(TooLargeToPublish {
            size,
            room,
            max_payload,
        });
    }
    Ok(())
}

impl From<TooLargeToPublish> for Refusal {
    fn from(error: TooLargeToPublish) -> Self {
        Refusal::new(ErrorCode::TooLarge, error.to_string())
    }
}

/// An id from a query (`name` is the parameter, and the refusal's field is
/// `/<name>`): the ids' rule, else 422 `invalid_value`. (An id in a path
/// that breaks the rule names nothing: the handler answers 404.)
pub fn check_id_param(name: &str, value: &str) -> Result<(), Refusal> {
    check_id(value).map_err(|error| {
        let mut refusal = Refusal::new(
            ErrorCode::InvalidValue,
            format!("{name}: {error}: {value:?}"),
        );
        refusal.field = Some(format!("/{name}"));
        refusal
    })
}

/// A free string from a query (a URI, a CloudEvent id): no control
/// characters (NUL among them, which PostgreSQL cannot store), else 400
/// `malformed`.
pub fn check_text_param(name: &str, value: &str) -> Result<(), Refusal> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(found) => {
            let mut refusal = Refusal::new(
                ErrorCode::Malformed,
                format!("{name} must not hold control characters, such as {found:?}"),
            );
            refusal.field = Some(format!("/{name}"));
            Err(refusal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Idempotency-Key";

    #[test]
    fn a_header_is_printable_ascii_up_to_its_limit() {
        assert_eq!(check_header(KEY, "k-1 of 2", 255), Ok(()));
        assert_eq!(check_header(KEY, &"k".repeat(255), 255), Ok(()));
        assert_eq!(
            check_header(KEY, &"k".repeat(256), 255),
            Err(HeaderError::TooLong {
                header: KEY,
                length: 256,
                max: 255
            })
        );
        assert_eq!(
            check_header(KEY, "khóa-1", 255),
            Err(HeaderError::NotPrintable {
                header: KEY,
                found: 'ó'
            })
        );
        assert_eq!(
            check_header(KEY, "a\tb", 255),
            Err(HeaderError::NotPrintable {
                header: KEY,
                found: '\t'
            })
        );
        assert_eq!(
            check_header(KEY, " k", 255),
            Err(HeaderError::Padded { header: KEY })
        );
        assert_eq!(
            check_header(KEY, "", 255),
            Err(HeaderError::Empty {
                header: KEY,
                max: 255
            })
        );
    }

    #[test]
    fn a_refused_header_is_malformed_and_names_the_header() {
        let refusal = Refusal::from(
            check_header(CORRELATION_HEADER, &"c".repeat(129), MAX_CORRELATION_ID)
                .expect_err("too long"),
        );
        assert_eq!(refusal.code, ErrorCode::Malformed);
        assert_eq!(refusal.field, None);
        assert!(refusal.message.contains("X-Correlation-Id"), "{refusal:?}");
    }

    #[test]
    fn a_fact_fits_when_its_size_leaves_the_reserve() {
        let max = 1 << 20;
        assert_eq!(check_publishable(max - PUBLISH_RESERVE, max), Ok(()));
        let over = check_publishable(max - PUBLISH_RESERVE + 1, max).expect_err("over");
        assert_eq!(
            over.to_string(),
            "the fact, as published on JetStream, would be 1048321 bytes, over the 1048320 \
             bytes that the server's max_payload of 1048576 bytes leaves for it (256 are kept \
             in reserve)"
        );
        assert_eq!(Refusal::from(over).code, ErrorCode::TooLarge);
        assert!(
            check_publishable(1, 10).is_err(),
            "a tiny limit admits nothing"
        );
    }

    #[test]
    fn path_and_query_values_are_checked_before_the_database_sees_them() {
        assert_eq!(check_id_param("unit", "dai-loc"), Ok(()));
        let bad = check_id_param("unit", "a\0b").expect_err("NUL");
        assert_eq!(
            (bad.code, bad.field.as_deref()),
            (ErrorCode::InvalidValue, Some("/unit"))
        );
        assert_eq!(check_text_param("source", "/bodies/dai-loc"), Ok(()));
        let bad = check_text_param("source", "/bodies\0").expect_err("NUL");
        assert_eq!(
            (bad.code, bad.field.as_deref()),
            (ErrorCode::Malformed, Some("/source"))
        );
    }
}
