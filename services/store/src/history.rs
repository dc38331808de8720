//! Reading one stream's sequenced facts with who recorded them: what an
//! audit trail shows (CONTRACT.md "Audit and inspection").

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

impl Store {
    /// Every sequenced fact of the stream `<aggregate>-<id>`, in ledger
    /// order. Facts not yet given a position are left out: they have no
    /// `recorded_at` or hash to show yet, and within a stream they can only
    /// follow the sequenced ones.
    pub async fn recorded_facts(
        &self,
        aggregate: AggregateKind,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, event_id, version, event_type, effective_date, recorded_at, \
                    publisher, actor, command_id, correlation_id, hash, data \
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
            .map(|row| RecordedFact {
                position: to_u64(row.get("position")),
                event_id: row.get("event_id"),
                version: to_u64(row.get("version")),
                event_type: row.get("event_type"),
                effective_date: row.get("effective_date"),
                recorded_at: row.get("recorded_at"),
                publisher: row.get("publisher"),
                actor: row.get("actor"),
                command_id: row.get("command_id"),
                correlation_id: row.get("correlation_id"),
                hash: row.get("hash"),
                data: row.get("data"),
            })
            .collect())
    }
}
