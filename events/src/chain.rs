//! The ledger's hash chain, as docs/contract.md defines its bytes.
//!
//! Each event's hash is SHA-256 over the previous event's hash (32 raw
//! bytes; 32 zero bytes before position 1) followed by the RFC 8785
//! canonical JSON of `{position, event_id, stream, version, type,
//! effective_date, recorded_at, data, metadata}`. `recorded_at` is written
//! RFC 3339 in UTC with microseconds (`2011-12-31T08:00:00.000000Z`), the
//! precision PostgreSQL keeps. Anyone holding the events can recompute the
//! chain with this module alone.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::values::Date;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash before the first event.
pub const GENESIS: Hash = [0; 32];

/// The hashed content of one ledger event. `data` and `metadata` are parsed
/// values by default, or [`JsonText`] when they come straight from storage.
#[derive(Clone, Debug, Serialize)]
pub struct ChainRecord<'a, J = &'a Value> {
    pub position: u64,
    pub event_id: Uuid,
    pub stream: &'a str,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub effective_date: Date,
    pub recorded_at: String,
    pub data: J,
    pub metadata: J,
}

/// JSON text, canonicalised from the text itself (no `serde_json::Value`
/// is built): how the verifier hashes `data` and `metadata` read from the
/// database.
#[derive(Clone, Copy, Debug)]
pub struct JsonText<'a>(pub &'a str);

/// What a [`ChainRecord`]'s `data` and `metadata` can be.
pub trait CanonicalMember {
    /// Appends the member's RFC 8785 form to `out`.
    fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), CanonicalError>;
}

impl CanonicalMember for &Value {
    fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        crate::canonical::value(out, self)
    }
}

impl CanonicalMember for JsonText<'_> {
    fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        crate::canonical::text(out, self.0)
    }
}

/// JSON that RFC 8785 cannot canonicalise (a number outside what an IEEE
/// double holds exactly is the only way our facts could get there).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot write canonical JSON (RFC 8785): {0}")]
pub struct CanonicalError(pub(crate) String);

/// RFC 8785 canonical JSON of `value`.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| CanonicalError(e.to_string()))
}

/// `recorded_at` as the chain writes it.
pub fn format_instant(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The hash of `record`, chained to `previous`.
pub fn event_hash(previous: &Hash, record: &ChainRecord<'_>) -> Result<Hash, CanonicalError> {
    Ok(chained(previous, &record_bytes(record)?))
}

/// The canonical JSON of `record`, the bytes its hash covers (the same as
/// [`canonical_json`] gives, written faster: `canonical`).
pub fn record_bytes<J: CanonicalMember>(
    record: &ChainRecord<'_, J>,
) -> Result<Vec<u8>, CanonicalError> {
    crate::canonical::record_bytes(record)
}

/// [`record_bytes`] appended to `out` (unchanged on an error).
pub fn write_record<J: CanonicalMember>(
    out: &mut Vec<u8>,
    record: &ChainRecord<'_, J>,
) -> Result<(), CanonicalError> {
    crate::canonical::write_record(out, record)
}

/// The hash of an event whose canonical JSON is `canonical`, chained to
/// `previous`: split from [`event_hash`] so that the canonical form can be
/// written on other threads while the chain is followed in order.
pub fn chained(previous: &Hash, canonical: &[u8]) -> Hash {
    let mut digest = Sha256::new();
    digest.update(previous);
    digest.update(canonical);
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn record<'a>(data: &'a Value, metadata: &'a Value) -> ChainRecord<'a> {
        ChainRecord {
            position: 1,
            event_id: Uuid::from_u128(1),
            stream: "unit-dai-loc",
            version: 1,
            event_type: "unit.registered.v1",
            effective_date: "1990-01-01".parse().expect("date"),
            recorded_at: format_instant(
                Utc.with_ymd_and_hms(2026, 11, 25, 3, 4, 5)
                    .single()
                    .expect("instant"),
            ),
            data,
            metadata,
        }
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_whitespace() {
        let data = json!({"name": "Đại Lộc", "level": "district", "amount": 2500000});
        let metadata = json!({"actor": "admin"});
        let bytes = canonical_json(&record(&data, &metadata)).expect("canonical");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "{\"data\":{\"amount\":2500000,\"level\":\"district\",\"name\":\"Đại Lộc\"},\
             \"effective_date\":\"1990-01-01\",\"event_id\":\"00000000-0000-0000-0000-000000000001\",\
             \"metadata\":{\"actor\":\"admin\"},\"position\":1,\
             \"recorded_at\":\"2026-11-25T03:04:05.000000Z\",\"stream\":\"unit-dai-loc\",\
             \"type\":\"unit.registered.v1\",\"version\":1}"
        );
    }

    #[test]
    fn the_hash_covers_the_previous_hash_and_every_member() {
        let data = json!({"name": "Đại Lộc"});
        let metadata = json!({});
        let first = event_hash(&GENESIS, &record(&data, &metadata)).expect("hash");
        // Recomputing gives the same bytes; another predecessor or another
        // member gives another hash.
        assert_eq!(
            first,
            event_hash(&GENESIS, &record(&data, &metadata)).expect("hash")
        );
        assert_ne!(
            first,
            event_hash(&[1; 32], &record(&data, &metadata)).expect("hash")
        );
        let edited = json!({"name": "Đại Lộc 2"});
        assert_ne!(
            first,
            event_hash(&GENESIS, &record(&edited, &metadata)).expect("hash")
        );
        let mut later = record(&data, &metadata);
        later.position = 2;
        assert_ne!(first, event_hash(&GENESIS, &later).expect("hash"));
    }

    #[test]
    fn the_hash_is_sha256_of_the_predecessor_then_the_canonical_json() {
        let data = json!({});
        let metadata = json!({});
        let r = record(&data, &metadata);
        let mut expected = Sha256::new();
        expected.update(GENESIS);
        expected.update(canonical_json(&r).expect("canonical"));
        let expected: Hash = expected.finalize().into();
        assert_eq!(event_hash(&GENESIS, &r).expect("hash"), expected);
    }
}
