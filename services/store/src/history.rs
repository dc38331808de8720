//! Reading one stream's sequenced facts with who recorded them: what an
//! audit trail shows (docs/contract.md "Audit and inspection").
//!
//! Who recorded a fact is read from the `metadata` the chain hashes, never
//! from the `publisher`, `actor`, `command_id` and `correlation_id` columns:
//! those are copies the hash does not cover, so an edited copy would pass
//! the chain and be shown as if recorded (`tledger verify` flags a copy
//! that disagrees with the metadata, for any other reader of the columns).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::Row;
use tledger_events::AggregateKind;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A sequenced fact of one stream, with the provenance the ledger keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedFact {
    pub position: u64,
    pub event_id: Uuid,
    pub version: u64,
    pub event_type: String,
    pub effective_date: NaiveDate,
    pub recorded_at: DateTime<Utc>,
    pub publisher: String,
    pub actor: String,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    pub hash: Vec<u8>,
    pub data: Value,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Who recorded a fact, as its hashed metadata says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Provenance {
    pub publisher: String,
    pub actor: String,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl Provenance {
    /// Read from the metadata the chain covers. A member it lacks (or holds
    /// as something other than a string) is shown empty, not taken from the
    /// unhashed columns: what a view shows must be what the chain covers,
    /// and `tledger verify` names such a row.
    pub(crate) fn recorded_in(metadata: &Value) -> Self {
        let text = |key: &str| metadata.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            publisher: text("publisher").unwrap_or_default(),
            actor: text("actor").unwrap_or_default(),
            command_id: text("command_id"),
            correlation_id: text("correlation_id"),
        }
    }
}

impl Store {
    /// Every sequenced fact of the stream `<aggregate>-<id>`, in ledger
    /// order. Facts not yet given a position are left out: they have no
    /// `recorded_at` or hash to show yet, and within a stream they can only
    /// follow the sequenced ones.
    #[tracing::instrument(level = "debug", name = "store.recorded_facts", skip_all, fields(aggregate = %aggregate, aggregate_id = %aggregate_id))]
    pub async fn recorded_facts(
        &self,
        aggregate: AggregateKind,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, event_id, version, event_type, effective_date, recorded_at, \
                    metadata, hash, data \
             FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND position IS NOT NULL \
             ORDER BY position",
        )
        .bind(aggregate.as_str())
        .bind(aggregate_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading a stream's recorded facts"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let by = Provenance::recorded_in(&row.get::<Value, _>("metadata"));
                RecordedFact {
                    position: to_u64(row.get("position")),
                    event_id: row.get("event_id"),
                    version: to_u64(row.get("version")),
                    event_type: row.get("event_type"),
                    effective_date: row.get("effective_date"),
                    recorded_at: row.get("recorded_at"),
                    publisher: by.publisher,
                    actor: by.actor,
                    command_id: by.command_id,
                    correlation_id: by.correlation_id,
                    hash: row.get("hash"),
                    data: row.get("data"),
                }
            })
            .collect())
    }
}
