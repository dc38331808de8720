//! Appending a command's events: one statement, one round trip.

use serde::Serialize;
use sqlx::error::DatabaseError;
use sqlx::PgPool;
use tledger_events::{AggregateKind, Fact};
use uuid::Uuid;

use crate::group_commit::{replicate, BatchAnswers};
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

/// Commands' appends in one statement (one command's alone, or several
/// gathered by group commit): the events in order, `append_no` naming the
/// append each belongs to, and each append's idempotency record listing
/// its own events.
const APPEND: &str = r#"
WITH e AS (
    SELECT * FROM UNNEST($1::int[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                         $7::text[], $8::text[], $9::date[], $10::text[], $11::text[],
                         $12::text[], $13::text[])
         WITH ORDINALITY AS e(append_no, event_id, aggregate_type, aggregate_id, version,
                              event_type, data, metadata, effective_date, publisher, actor,
                              command_id, correlation_id, ord)
), request AS (
    INSERT INTO command_requests (token_id, idempotency_key, command, request_hash, event_ids)
    SELECT r.token_id, r.idempotency_key, r.command, r.request_hash,
           ARRAY(SELECT e.event_id FROM e WHERE e.append_no = r.append_no ORDER BY e.ord)
    FROM UNNEST($14::int[], $15::uuid[], $16::text[], $17::text[], $18::bytea[])
         AS r(append_no, token_id, idempotency_key, command, request_hash)
)
INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, schema_version,
                    data, metadata, effective_date, publisher, actor, command_id, correlation_id)
SELECT event_id, aggregate_type, aggregate_id, version, event_type, 1, data::jsonb,
       metadata::jsonb, effective_date, publisher, actor, command_id, correlation_id
FROM e ORDER BY ord
"#;

/// The most appends gathered into one statement.
pub(crate) const MAX_APPENDS_PER_STATEMENT: usize = 256;

/// The columns of events to append, one vector per column.
#[derive(Default)]
struct EventColumns<'a> {
    append_no: Vec<i32>,
    event_ids: Vec<Uuid>,
    aggregate_types: Vec<&'a str>,
    aggregate_ids: Vec<&'a str>,
    versions: Vec<i64>,
    types: Vec<&'a str>,
    data: Vec<String>,
    metadata: Vec<String>,
    dates: Vec<chrono::NaiveDate>,
    publishers: Vec<&'a str>,
    actors: Vec<&'a str>,
    command_ids: Vec<Option<&'a str>>,
    correlation_ids: Vec<Option<&'a str>>,
}

impl<'a> EventColumns<'a> {
    fn push(&mut self, append_no: usize, append: &'a Append) {
        for (i, event) in append.events.iter().enumerate() {
            self.append_no
                .push(i32::try_from(append_no).unwrap_or(i32::MAX));
            self.event_ids.push(event.event_id);
            self.aggregate_types.push(append.aggregate.as_str());
            self.aggregate_ids.push(&append.aggregate_id);
            self.versions
                .push(to_i64(append.expected_version + 1 + i as u64));
            self.types.push(event.fact.fact_type().as_str());
            self.data.push(event.fact.data().to_string());
            self.metadata
                .push(serde_json::to_string(&event.metadata).unwrap_or_else(|_| "{}".into()));
            self.dates.push(event.fact.effective_date().naive());
            self.publishers.push(event.metadata.publisher.as_str());
            self.actors.push(event.metadata.actor.as_str());
            self.command_ids.push(event.metadata.command_id.as_deref());
            self.correlation_ids
                .push(event.metadata.correlation_id.as_deref());
        }
    }
}

impl Store {
    /// Appends `append.events` at the versions after `expected_version`, with
    /// the idempotency record if any, in one statement: gathered with the
    /// appends other tasks make at the same time (group commit), and with
    /// exactly the answer it would get alone. The events are unsequenced
    /// until the sequencer reaches them.
    #[tracing::instrument(level = "debug", name = "store.append", skip_all, fields(aggregate = %append.aggregate, aggregate_id = %append.aggregate_id, expected_version = append.expected_version, events = append.events.len()))]
    pub async fn append(&self, append: &Append) -> Result<(), AppendError> {
        match self
            .batches()
            .appends
            .submit(self.pool(), append.clone())
            .await
        {
            Ok(answer) => answer,
            Err(unanswered) => Err(unanswered
                .into_error(
                    "appending events",
                    "; whether it was recorded is unknown: retry with the same idempotency key",
                )
                .into()),
        }
    }
}

/// Runs gathered appends: all in one statement when none conflicts; when
/// the statement fails on a conflict, each on its own, so that each gets
/// the answer it would have got alone (only the conflicting ones fail).
pub(crate) fn append_batch(
    pool: PgPool,
    appends: Vec<Append>,
) -> BatchAnswers<Result<(), AppendError>> {
    Box::pin(async move {
        if appends.len() == 1 {
            return vec![append_one(&pool, &appends[0]).await];
        }
        match append_many(&pool, &appends).await {
            Ok(()) => appends.iter().map(|_| Ok(())).collect(),
            // The server refused the statement (a version taken, a key in
            // use, a value out of range): find out whose append it was.
            Err(sqlx::Error::Database(_)) => {
                let mut answers = Vec::with_capacity(appends.len());
                for append in &appends {
                    answers.push(append_one(&pool, append).await);
                }
                answers
            }
            Err(e) => appends
                .iter()
                .map(|_| Err(StoreError::db("appending events")(replicate(&e)).into()))
                .collect(),
        }
    })
}

async fn append_many(pool: &PgPool, appends: &[Append]) -> Result<(), sqlx::Error> {
    let mut events = EventColumns::default();
    let mut request_no = Vec::new();
    let mut token_ids = Vec::new();
    let mut keys = Vec::new();
    let mut commands = Vec::new();
    let mut hashes: Vec<&[u8]> = Vec::new();
    for (no, append) in appends.iter().enumerate() {
        events.push(no, append);
        if let Some(idempotency) = &append.idempotency {
            request_no.push(i32::try_from(no).unwrap_or(i32::MAX));
            token_ids.push(idempotency.token_id);
            keys.push(idempotency.key.as_str());
            commands.push(idempotency.command.as_str());
            hashes.push(&idempotency.request_hash);
        }
    }
    sqlx::query(APPEND)
        .bind(&events.append_no)
        .bind(&events.event_ids)
        .bind(&events.aggregate_types)
        .bind(&events.aggregate_ids)
        .bind(&events.versions)
        .bind(&events.types)
        .bind(&events.data)
        .bind(&events.metadata)
        .bind(&events.dates)
        .bind(&events.publishers)
        .bind(&events.actors)
        .bind(&events.command_ids)
        .bind(&events.correlation_ids)
        .bind(&request_no)
        .bind(&token_ids)
        .bind(&keys)
        .bind(&commands)
        .bind(&hashes)
        .execute(pool)
        .await
        .map(|_| ())
}

/// One command's append, alone, with its conflicts told apart.
async fn append_one(pool: &PgPool, append: &Append) -> Result<(), AppendError> {
    let result = append_many(pool, std::slice::from_ref(append)).await;
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
                append
                    .idempotency
                    .as_ref()
                    .map(|i| i.key.clone())
                    .unwrap_or_default(),
            ))
        }
        Err(e) => Err(StoreError::db("appending events")(e).into()),
    }
}

fn is_constraint(error: &dyn DatabaseError, name: &str) -> bool {
    error.is_unique_violation() && error.constraint() == Some(name)
}

/// Versions and positions are `bigint`; they stay far below `i64::MAX`.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
