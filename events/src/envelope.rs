//! The CloudEvents 1.0 envelope, structured JSON mode.
//!
//! Integrating bodies publish facts in it (`content-type:
//! application/cloudevents+json`); the ledger publishes its committed facts
//! in it too, with its extension attributes (`position`, `recordedat`,
//! `effectivedate`, `publisher`, `correlationid`). Plain serde types: the
//! `cloudevents-sdk` crate pins an old NATS client.

use chrono::DateTime;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::strict;
use crate::error::FactError;
use crate::facts::{Fact, FactType};

/// The structured-mode content type.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The longest CloudEvent `id` a publisher may use: it is kept for ever as
/// a deduplication key and travels in `Nats-Msg-Id`. 64 characters are at
/// most 256 bytes, so with [`MAX_SOURCE_BYTES`] a receipt's key stays far
/// below PostgreSQL's btree row limit.
pub const MAX_ID_CHARS: usize = 64;

/// The longest CloudEvent `source`, in bytes: it is half of the key of the
/// receipts and parked facts (`(source, id)`, a PostgreSQL btree index,
/// whose rows hold at most about 2,700 bytes) and travels in `Nats-Msg-Id`.
/// A registered URI needs far fewer.
pub const MAX_SOURCE_BYTES: usize = 255;

/// A CloudEvent in structured JSON mode, with the ledger's extensions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Unique per `source`.
    pub id: String,
    /// The publisher's registered URI (for the ledger's own stream,
    /// `/tledger/<prefix>`).
    pub source: String,
    /// A fact type of the catalogue, e.g. `training.nominated.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `application/json` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    /// The fact's data.
    pub data: Value,
    /// Hex ed25519 signature over the RFC 8785 canonical JSON of the event
    /// without this attribute (publishers with a registered key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlsignature: Option<String>,
    /// Ledger extension: the global position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Ledger extension: when the ledger recorded the fact (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recordedat: Option<String>,
    /// Ledger extension: the fact's effective date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effectivedate: Option<String>,
    /// Ledger extension: the original source, or `/commands/<token name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Ledger extension: the correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
}

impl CloudEvent {
    /// A new published-fact envelope (no ledger extensions, no signature).
    pub fn for_fact(
        source: impl Into<String>,
        id: impl Into<String>,
        time: impl Into<String>,
        fact: &Fact,
    ) -> Self {
        Self {
            specversion: "1.0".into(),
            id: id.into(),
            source: source.into(),
            event_type: fact.fact_type().as_str().into(),
            time: Some(time.into()),
            datacontenttype: Some("application/json".into()),
            subject: None,
            dataschema: None,
            data: fact.data(),
            tlsignature: None,
            position: None,
            recordedat: None,
            effectivedate: None,
            publisher: None,
            correlationid: None,
        }
    }

    /// Parses a message an integrating body published: the envelope, then
    /// the fact in its `data`. Ledger extension attributes are refused here:
    /// only the ledger sets them. Pointers are relative to the whole message.
    pub fn parse_published(body: &[u8]) -> Result<(CloudEvent, Fact), FactError> {
        // Duplicate member names and U+0000 are refused anywhere in the
        // message, envelope and data alike (see `json_text`).
        let value = crate::json_text::parse(body, "message")?;
        let event: CloudEvent = strict(&value)?;
        event.check_published()?;
        let fact_type: FactType = event
            .event_type
            .parse()
            .map_err(|e| FactError::invalid("/type", format!("{e}")))?;
        let fact = Fact::from_data(fact_type, &event.data).map_err(|e| e.under("/data"))?;
        Ok((event, fact))
    }

    fn check_published(&self) -> Result<(), FactError> {
        if self.specversion != "1.0" {
            return Err(FactError::malformed(
                "/specversion",
                format!(
                    "only CloudEvents 1.0 is accepted, not {:?}",
                    self.specversion
                ),
            ));
        }
        if self.id.is_empty() {
            return Err(FactError::malformed("/id", "id must not be empty"));
        }
        if self.id.chars().count() > MAX_ID_CHARS {
            return Err(FactError::invalid(
                "/id",
                format!("id must be at most {MAX_ID_CHARS} characters"),
            ));
        }
        if self.source.is_empty() {
            return Err(FactError::malformed("/source", "source must not be empty"));
        }
        if self.source.len() > MAX_SOURCE_BYTES {
            return Err(FactError::invalid(
                "/source",
                format!(
                    "source must be at most {MAX_SOURCE_BYTES} bytes, this has {}",
                    self.source.len()
                ),
            ));
        }
        if let Some(t) = &self.time {
            DateTime::parse_from_rfc3339(t).map_err(|_| {
                FactError::malformed(
                    "/time",
                    format!("time must be an RFC 3339 timestamp, not {t:?}"),
                )
            })?;
        }
        if let Some(ct) = &self.datacontenttype {
            if ct != "application/json" {
                return Err(FactError::malformed(
                    "/datacontenttype",
                    format!("data must be application/json, not {ct:?}"),
                ));
            }
        }
        let ledger_only = [
            ("/position", self.position.is_some()),
            ("/recordedat", self.recordedat.is_some()),
            ("/effectivedate", self.effectivedate.is_some()),
            ("/publisher", self.publisher.is_some()),
            ("/correlationid", self.correlationid.is_some()),
        ];
        if let Some((pointer, _)) = ledger_only.iter().find(|(_, set)| *set) {
            return Err(FactError::malformed(
                *pointer,
                "this attribute is set by the ledger, not by a publisher",
            ));
        }
        Ok(())
    }
}

/// The bytes a publisher signs: the RFC 8785 canonical JSON of the message
/// without its `tlsignature` attribute.
pub fn signing_input(message: &Value) -> Result<Vec<u8>, FactError> {
    let mut unsigned = message.clone();
    if let Some(object) = unsigned.as_object_mut() {
        object.remove("tlsignature");
    }
    crate::chain::canonical_json(&unsigned)
        .map_err(|e| FactError::malformed("", format!("the message has no canonical form: {e}")))
}

/// Signs a message as a publisher with a registered key does: sets
/// `tlsignature` to the hex ed25519 signature of [`signing_input`].
pub fn sign_published(message: &mut Value, key: &SigningKey) -> Result<(), FactError> {
    let signature = key.sign(&signing_input(message)?);
    if let Some(object) = message.as_object_mut() {
        object.insert(
            "tlsignature".into(),
            Value::String(hex::encode(signature.to_bytes())),
        );
    }
    Ok(())
}

/// Checks `tlsignature` against the publisher's key: missing, not hex, or
/// not the key's signature of [`signing_input`] is an error at
/// `/tlsignature`.
pub fn verify_published(message: &Value, key: &VerifyingKey) -> Result<(), FactError> {
    let Some(signature) = message.get("tlsignature") else {
        return Err(FactError::invalid(
            "/tlsignature",
            "this publisher signs its facts: tlsignature is missing",
        ));
    };
    let bytes = signature
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| {
            FactError::invalid(
                "/tlsignature",
                "tlsignature must be 128 hex digits (an ed25519 signature)",
            )
        })?;
    key.verify(&signing_input(message)?, &Signature::from_bytes(&bytes))
        .map_err(|_| {
            FactError::invalid(
                "/tlsignature",
                "the signature does not match the publisher's registered key and the message",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message() -> Value {
        json!({
            "specversion": "1.0",
            "id": "nom-1",
            "source": "/bodies/dai-loc",
            "type": "training.enrolled.v1",
            "time": "2011-03-01T00:00:00Z",
            "datacontenttype": "application/json",
            "data": {"enrollment_id": "e-1", "effective_date": "2011-03-01"}
        })
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_message_verifies_under_its_key_only() {
        let mut m = message();
        sign_published(&mut m, &key(7)).expect("signs");
        assert_eq!(m["tlsignature"].as_str().map(str::len), Some(128));
        assert!(verify_published(&m, &key(7).verifying_key()).is_ok());
        let other = verify_published(&m, &key(8).verifying_key()).expect_err("wrong key");
        assert_eq!(other.pointer, "/tlsignature");
    }

    #[test]
    fn the_signature_covers_every_attribute_but_itself_in_any_key_order() {
        let mut m = message();
        sign_published(&mut m, &key(7)).expect("signs");
        // Key order and whitespace do not matter: the input is canonical.
        let reordered: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&m).expect("json")).expect("json");
        assert!(verify_published(&reordered, &key(7).verifying_key()).is_ok());
        let mut changed = m.clone();
        changed["data"]["effective_date"] = json!("2011-03-02");
        let error = verify_published(&changed, &key(7).verifying_key()).expect_err("tampered");
        assert!(error.to_string().contains("does not match"), "{error}");
    }

    #[test]
    fn a_missing_or_garbled_signature_names_the_attribute() {
        let error = verify_published(&message(), &key(7).verifying_key()).expect_err("unsigned");
        assert_eq!(error.pointer, "/tlsignature");
        assert!(error.to_string().contains("missing"), "{error}");
        let mut garbled = message();
        garbled["tlsignature"] = json!("zz");
        let error = verify_published(&garbled, &key(7).verifying_key()).expect_err("garbled");
        assert!(error.to_string().contains("128 hex digits"), "{error}");
    }

    #[test]
    fn an_id_longer_than_64_characters_is_an_invalid_value() {
        let mut m = message();
        m["id"] = json!("x".repeat(65));
        let error = CloudEvent::parse_published(m.to_string().as_bytes()).expect_err("too long");
        assert_eq!(error.pointer, "/id");
        assert_eq!(error.kind.code(), "invalid_value");
        m["id"] = json!("x".repeat(64));
        assert!(CloudEvent::parse_published(m.to_string().as_bytes()).is_ok());
    }
}
