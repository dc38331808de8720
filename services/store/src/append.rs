//! Appending a command's events: one statement, one round trip.

use serde::Serialize;
use sqlx::error::DatabaseError;
use tledger_events::{AggregateKind, Fact};
use uuid::Uuid;

use crate::{Store, StoreError};

/// Who recorded a fact, and on whose behalf (stored, and covered by the
/// chain hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventMetadata {
    /// The original source (an integrating body's URI) or
    /// `/commands/<token name>`.
    pub publisher: String,
    /// The token (or system reader) that caused the write.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The event that caused this one (policies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
}

/// One event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub fact: Fact,
    pub metadata: EventMetadata,
}

/// The idempotency record written with the events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub token_id: Uuid,
    pub key: String,
    pub command: String,
    /// SHA-256 of the command name and body: the same key with another body
    /// is a conflict.
    pub request_hash: Vec<u8>,
}

/// Events for one stream, expected to follow `expected_version`.
#[derive(Clone, Debug, PartialEq)]
pub struct Append {
    pub aggregate: AggregateKind,
    pub aggregate_id: String,
    pub expected_version: u64,
    pub events: Vec<NewEvent>,
    pub idempotency: Option<Idempotency>,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("stream {aggregate}-{aggregate_id} has moved past version {expected_version}")]
    VersionConflict {
        aggregate: AggregateKind,
        aggregate_id: String,
        expected_version: u64,
    },
    #[error("idempotency key {0:?} was used by a concurrent request")]
    IdempotencyKeyTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const APPEND: &str = r#"
WITH request AS (
    INSERT INTO command_requests (token_id, idempotency_key, command, request_hash, event_ids)
    SELECT $1, $2, $3, $4, $5
    WHERE $1::uuid IS NOT NULL
)
INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, schema_version,
                    data, metadata, effective_date, publisher, actor, command_id, correlation_id)
SELECT e.event_id, $6, $7, e.version, e.event_type, 1, e.data::jsonb, e.metadata::jsonb,
       e.effective_date, e.publisher, e.actor, e.command_id, e.correlation_id
FROM UNNEST($5::uuid[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::date[],
            $13::text[], $14::text[], $15::text[], $16::text[])
     AS e(event_id, version, event_type, data, metadata, effective_date, publisher, actor,
          command_id, correlation_id)
"#;

impl Store {
    /// Appends `append.events` at the versions after `expected_version`, with
    /// the idempotency record if any, in one statement. The events are
    /// unsequenced until the sequencer reaches them.
    pub async fn append(&self, append: &Append) -> Result<(), AppendError> {
        let n = append.events.len();
        let mut event_ids = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut data = Vec::with_capacity(n);
        let mut metadata = Vec::with_capacity(n);
        let mut dates = Vec::with_capacity(n);
        let mut publishers = Vec::with_capacity(n);
        let mut actors = Vec::with_capacity(n);
        let mut command_ids = Vec::with_capacity(n);
        let mut correlation_ids = Vec::with_capacity(n);
        for (i, event) in append.events.iter().enumerate() {
            event_ids.push(event.event_id);
            versions.push(to_i64(append.expected_version + 1 + i as u64));
            types.push(event.fact.fact_type().as_str());
            data.push(event.fact.data().to_string());
            metadata.push(serde_json::to_string(&event.metadata).unwrap_or_else(|_| "{}".into()));
            dates.push(event.fact.effective_date().naive());
            publishers.push(event.metadata.publisher.as_str());
            actors.push(event.metadata.actor.as_str());
            command_ids.push(event.metadata.command_id.as_deref());
            correlation_ids.push(event.metadata.correlation_id.as_deref());
        }
        let idempotency = append.idempotency.as_ref();
        let result = sqlx::query(APPEND)
            .bind(idempotency.map(|i| i.token_id))
            .bind(idempotency.map(|i| i.key.as_str()))
            .bind(idempotency.map(|i| i.command.as_str()))
            .bind(idempotency.map(|i| i.request_hash.as_slice()))
            .bind(&event_ids)
            .bind(append.aggregate.as_str())
            .bind(&append.aggregate_id)
            .bind(&versions)
            .bind(&types)
            .bind(&data)
            .bind(&metadata)
            .bind(&dates)
            .bind(&publishers)
            .bind(&actors)
            .bind(&command_ids)
            .bind(&correlation_ids)
            .execute(self.pool())
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e))
                if is_constraint(e.as_ref(), "events_aggregate_type_aggregate_id_version_key") =>
            {
                Err(AppendError::VersionConflict {
                    aggregate: append.aggregate,
                    aggregate_id: append.aggregate_id.clone(),
                    expected_version: append.expected_version,
                })
            }
            Err(sqlx::Error::Database(e)) if is_constraint(e.as_ref(), "command_requests_pkey") => {
                Err(AppendError::IdempotencyKeyTaken(
                    idempotency.map(|i| i.key.clone()).unwrap_or_default(),
                ))
            }
            Err(e) => Err(StoreError::db("appending events")(e).into()),
        }
    }
}

fn is_constraint(error: &dyn DatabaseError, name: &str) -> bool {
    error.is_unique_violation() && error.constraint() == Some(name)
}

/// Versions and positions are `bigint`; they stay far below `i64::MAX`.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
