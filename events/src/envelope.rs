//! The CloudEvents 1.0 envelope, structured JSON mode.
//!
//! Integrating bodies publish facts in it (`content-type:
//! application/cloudevents+json`); the ledger publishes its committed facts
//! in it too, with its extension attributes (`position`, `recordedat`,
//! `effectivedate`, `publisher`, `correlationid`). Plain serde types: the
//! `cloudevents-sdk` crate pins an old NATS client.

use chrono::DateTime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::strict;
use crate::error::FactError;
use crate::facts::{Fact, FactType};

/// The structured-mode content type.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

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
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| FactError::malformed("", format!("the message is not JSON: {e}")))?;
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
        if self.source.is_empty() {
            return Err(FactError::malformed("/source", "source must not be empty"));
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
