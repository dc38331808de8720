//! Reading the store: streams, events by id, the sequenced ledger.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row};
use tledger_events::upcasting::Upcasting;
use tledger_events::{AggregateKind, Fact};
use uuid::Uuid;

use crate::append::to_i64;
use crate::group_commit::{replicate, BatchAnswers};
use crate::history::Provenance;
use crate::{Store, StoreError};

/// How long to let other commits flush the log before forcing a flush.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// A fact of a stream as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub version: u64,
    pub fact: Fact,
    /// `None` until the sequencer reaches it.
    pub position: Option<u64>,
}

/// A sequenced event of the ledger, with everything the relay, the
/// projections and the verifier need.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEvent {
    pub position: u64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: u64,
    pub event_type: String,
    pub effective_date: NaiveDate,
    pub recorded_at: DateTime<Utc>,
    pub data: Value,
    pub metadata: Value,
    /// `metadata`'s publisher and correlation id (the chain covers them
    /// there, not in the columns of the same names).
    pub publisher: String,
    pub correlation_id: Option<String>,
    pub hash: Vec<u8>,
}

/// A sequenced fact with only what a projection reads of it.
#[derive(Clone, Debug, PartialEq)]
pub struct SequencedFact {
    pub position: u64,
    pub event_id: Uuid,
    pub event_type: String,
    /// The fact's data as the JSON text the ledger holds, for
    /// `Fact::from_recorded` to read without an intermediate `Value`.
    pub data: String,
}

impl LedgerEvent {
    /// `<aggregate>-<id>`.
    pub fn stream(&self) -> String {
        format!("{}-{}", self.aggregate_type, self.aggregate_id)
    }

    /// What the chain hashes of this event; `stream` is [`Self::stream`].
    pub fn chain_record<'a>(&'a self, stream: &'a str) -> tledger_events::chain::ChainRecord<'a> {
        tledger_events::chain::ChainRecord {
            position: self.position,
            event_id: self.event_id,
            stream,
            version: self.version,
            event_type: &self.event_type,
            effective_date: self.effective_date.into(),
            recorded_at: tledger_events::chain::format_instant(self.recorded_at),
            data: &self.data,
            metadata: &self.metadata,
        }
    }
}

/// Where an event is: its stream, version and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLocation {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: u64,
    pub event_type: String,
    pub position: Option<u64>,
}

/// A command answered before under the same idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorRequest {
    pub command: String,
    pub request_hash: Vec<u8>,
    pub event_ids: Vec<Uuid>,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A stream's stored row, before it is read as a typed fact.
#[derive(Debug)]
pub(crate) struct StoredRow {
    event_id: Uuid,
    version: u64,
    event_type: String,
    schema_version: i64,
    data: Value,
    position: Option<u64>,
}

impl StoredRow {
    fn from_row(row: &sqlx::postgres::PgRow) -> Self {
        Self {
            event_id: row.get("event_id"),
            version: to_u64(row.get("version")),
            event_type: row.get("event_type"),
            schema_version: i64::from(row.get::<i32, _>("schema_version")),
            data: row.get("data"),
            position: row.get::<Option<i64>, _>("position").map(to_u64),
        }
    }

    /// The row as a current fact: upcast from its stored version, then
    /// parsed strictly.
    fn into_event(self, upcasting: &Upcasting) -> Result<StoredEvent, StoreError> {
        let event_id = self.event_id;
        let (fact_type, data) = upcasting
            .to_current(&self.event_type, self.schema_version, self.data)
            .map_err(|source| StoreError::Upcast { event_id, source })?;
        let fact = Fact::from_data(fact_type, &data).map_err(|e| StoreError::Corrupt {
            event_id,
            event_type: self.event_type,
            reason: e.to_string(),
        })?;
        Ok(StoredEvent {
            event_id,
            version: self.version,
            fact,
            position: self.position,
        })
    }
}

impl Store {
    /// Every fact of a stream, in version order (sequenced or not). Loads
    /// asked for at the same time are answered by one statement (group
    /// commit); each sees at least every append that ended before it was
    /// asked for.
    #[tracing::instrument(level = "debug", name = "store.load_stream", skip_all, fields(aggregate = %aggregate, aggregate_id = %aggregate_id))]
    pub async fn load_stream(
        &self,
        aggregate: AggregateKind,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.batches()
            .loads
            .submit(self.pool(), (aggregate, aggregate_id.to_owned()))
            .await
            .unwrap_or_else(|unanswered| Err(unanswered.into_error("loading a stream", "")))?
            .into_iter()
            .map(|row| row.into_event(&self.upcasting))
            .collect()
    }

    /// Where the event `event_id` is, if it exists.
    #[tracing::instrument(level = "debug", name = "store.locate", skip_all, fields(event_id = %event_id))]
    pub async fn locate(&self, event_id: Uuid) -> Result<Option<EventLocation>, StoreError> {
        let row = sqlx::query(
            "SELECT aggregate_type, aggregate_id, version, event_type, position FROM events \
             WHERE event_id = $1",
        )
        .bind(event_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("locating an event"))?;
        Ok(row.map(|row| EventLocation {
            aggregate_type: row.get("aggregate_type"),
            aggregate_id: row.get("aggregate_id"),
            version: to_u64(row.get("version")),
            event_type: row.get("event_type"),
            position: row.get::<Option<i64>, _>("position").map(to_u64),
        }))
    }

    /// The positions of `event_ids` (absent: not sequenced yet, or unknown).
    #[tracing::instrument(level = "debug", name = "store.positions", skip_all, fields(events = event_ids.len()))]
    pub async fn positions(&self, event_ids: &[Uuid]) -> Result<HashMap<Uuid, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, position FROM events \
             WHERE event_id = ANY($1) AND position IS NOT NULL",
        )
        .bind(event_ids)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading positions"))?;
        Ok(rows
            .iter()
            .map(|row| (row.get("event_id"), to_u64(row.get("position"))))
            .collect())
    }

    /// Like [`Store::read_ledger`], but returns only once the events read
    /// are flushed to disk: the sequencer commits asynchronously (ADR 8),
    /// and what leaves the ledger for the outside (the relay) must be what a
    /// crash of PostgreSQL keeps.
    #[tracing::instrument(
        level = "debug",
        name = "store.read_ledger_durable",
        skip_all,
        fields(after, limit)
    )]
    pub async fn read_ledger_durable(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, StoreError> {
        let events = self.read_ledger(after, limit).await?;
        if !events.is_empty() {
            self.flush_commits().await?;
        }
        Ok(events)
    }

    /// Waits until every commit that ended before the call is flushed to
    /// disk. Usually another command's synchronous commit has done it, or
    /// does within a moment; otherwise a small write with a synchronous
    /// commit forces it.
    #[tracing::instrument(level = "debug", name = "store.flush_commits", skip_all)]
    pub async fn flush_commits(&self) -> Result<(), StoreError> {
        let db = StoreError::db;
        let (inserted, flushed): (i64, i64) = sqlx::query_as(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint, \
                    pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint",
        )
        .fetch_one(self.pool())
        .await
        .map_err(db("reading the write-ahead log's positions"))?;
        if flushed >= inserted {
            return Ok(());
        }
        tokio::time::sleep(FLUSH_GRACE).await;
        let flushed: i64 =
            sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint")
                .fetch_one(self.pool())
                .await
                .map_err(db("reading the write-ahead log's flush position"))?;
        if flushed >= inserted {
            return Ok(());
        }
        sqlx::query(
            "WITH durable AS (SELECT set_config('synchronous_commit', 'on', true)) \
             INSERT INTO durability_barrier (flushed_at) SELECT clock_timestamp() FROM durable \
             ON CONFLICT (singleton) DO UPDATE SET flushed_at = EXCLUDED.flushed_at",
        )
        .execute(self.pool())
        .await
        .map_err(db("flushing the write-ahead log"))?;
        Ok(())
    }

    /// Sequenced events after `after`, in position order, at most `limit`.
    #[tracing::instrument(
        level = "debug",
        name = "store.read_ledger",
        skip_all,
        fields(after, limit)
    )]
    pub async fn read_ledger(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, event_id, aggregate_type, aggregate_id, version, event_type, \
                    effective_date, recorded_at, data, metadata, hash \
             FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(to_i64(after))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading the ledger"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let metadata: Value = row.get("metadata");
                // What is published is what the chain covers (see
                // `history`): the hashed metadata, not the column copies.
                let by = Provenance::recorded_in(&metadata);
                LedgerEvent {
                    position: to_u64(row.get("position")),
                    event_id: row.get("event_id"),
                    aggregate_type: row.get("aggregate_type"),
                    aggregate_id: row.get("aggregate_id"),
                    version: to_u64(row.get("version")),
                    event_type: row.get("event_type"),
                    effective_date: row.get("effective_date"),
                    recorded_at: row.get("recorded_at"),
                    data: row.get("data"),
                    metadata,
                    publisher: by.publisher,
                    correlation_id: by.correlation_id,
                    hash: row.get("hash"),
                }
            })
            .collect())
    }

    /// Sequenced facts after `after`, in position order, at most `limit`,
    /// with only the columns the read models are made of: no metadata, and
    /// the data as text rather than decoded JSON (see [`SequencedFact`]).
    #[tracing::instrument(
        level = "debug",
        name = "store.read_facts",
        skip_all,
        fields(after, limit)
    )]
    pub async fn read_facts(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SequencedFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, event_id, event_type, schema_version, data::text AS data \
             FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(to_i64(after))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading the ledger's facts"))?;
        rows.iter()
            .map(|row| {
                let event_id: Uuid = row.get("event_id");
                let event_type: String = row.get("event_type");
                let schema_version = i64::from(row.get::<i32, _>("schema_version"));
                let (fact_type, data) = self
                    .upcasting
                    .to_current_text(&event_type, schema_version, row.get("data"))
                    .map_err(|source| StoreError::Upcast { event_id, source })?;
                Ok(SequencedFact {
                    position: to_u64(row.get("position")),
                    event_id,
                    // A current fact keeps the stored type's text.
                    event_type: if fact_type.as_str() == event_type {
                        event_type
                    } else {
                        fact_type.as_str().to_owned()
                    },
                    data,
                })
            })
            .collect()
    }

    /// The last position recorded by `instant` (0 when none was): the cut
    /// of "as known at".
    #[tracing::instrument(level = "debug", name = "store.position_known_at", skip_all, fields(instant = %instant))]
    pub async fn position_known_at(&self, instant: DateTime<Utc>) -> Result<u64, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT max(position) FROM events WHERE recorded_at <= $1")
                .bind(instant)
                .fetch_one(self.pool())
                .await
                .map_err(StoreError::db("finding the position known at an instant"))?;
        Ok(position.map_or(0, to_u64))
    }

    /// How many committed events wait for a position.
    #[tracing::instrument(level = "debug", name = "store.unsequenced_count", skip_all)]
    pub async fn unsequenced_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("counting unsequenced events"))?;
        Ok(to_u64(n))
    }

    /// The last sequenced position (0 for an empty ledger).
    #[tracing::instrument(level = "debug", name = "store.head", skip_all)]
    pub async fn head(&self) -> Result<u64, StoreError> {
        let position: i64 = sqlx::query_scalar("SELECT position FROM ledger_head")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("reading the ledger head"))?;
        Ok(to_u64(position))
    }

    /// The command answered before under `(token_id, key)`, if any.
    #[tracing::instrument(level = "debug", name = "store.prior_request", skip_all)]
    pub async fn prior_request(
        &self,
        token_id: Uuid,
        key: &str,
    ) -> Result<Option<PriorRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT command, request_hash, event_ids FROM command_requests \
             WHERE token_id = $1 AND idempotency_key = $2",
        )
        .bind(token_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading an idempotency key"))?;
        Ok(row.map(|row| PriorRequest {
            command: row.get("command"),
            request_hash: row.get("request_hash"),
            event_ids: row.get("event_ids"),
        }))
    }
}

/// Facts in other streams that name a unit or official, not retracted: what
/// a registration has depending on it outside its own stream.
const DEPENDENTS: &str = r#"
SELECT count(*) FROM events e
WHERE e.event_type <> 'fact.retracted.v1'
  AND NOT (e.aggregate_type = $1 AND e.aggregate_id = $2)
  AND (
        ($1 = 'unit' AND (e.data->>'unit_id' = $2 OR e.data->>'parent_id' = $2
                          OR e.data->>'dissolved_into' = $2 OR e.data->>'nominating_unit_id' = $2))
     OR ($1 = 'official' AND e.data->>'official_id' = $2)
  )
  AND NOT EXISTS (
        SELECT 1 FROM events r
        WHERE r.event_type = 'fact.retracted.v1'
          AND r.aggregate_type = e.aggregate_type AND r.aggregate_id = e.aggregate_id
          AND r.data->>'event_id' = e.event_id::text
  )
"#;

impl Store {
    /// Every stream of one aggregate type, each in version order (units and
    /// reference data: small sets read whole for the hierarchy and the
    /// reference data in force).
    #[tracing::instrument(level = "debug", name = "store.load_streams", skip_all, fields(aggregate = %aggregate))]
    pub async fn load_streams(
        &self,
        aggregate: AggregateKind,
    ) -> Result<Vec<(String, Vec<StoredEvent>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT aggregate_id, event_id, version, event_type, schema_version, data, position \
             FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, version",
        )
        .bind(aggregate.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("loading streams"))?;
        let mut streams: Vec<(String, Vec<StoredEvent>)> = Vec::new();
        for row in &rows {
            let aggregate_id: String = row.get("aggregate_id");
            let event = StoredRow::from_row(row).into_event(&self.upcasting)?;
            match streams.last_mut() {
                Some((id, events)) if *id == aggregate_id => events.push(event),
                _ => streams.push((aggregate_id, vec![event])),
            }
        }
        Ok(streams)
    }

    /// How many live facts in other streams name the unit or official
    /// `aggregate_id` (`aggregate` is `unit` or `official`).
    #[tracing::instrument(level = "debug", name = "store.dependents", skip_all, fields(aggregate = %aggregate, aggregate_id = %aggregate_id))]
    pub async fn dependents(
        &self,
        aggregate: AggregateKind,
        aggregate_id: &str,
    ) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(DEPENDENTS)
            .bind(aggregate.as_str())
            .bind(aggregate_id)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("counting dependent facts"))?;
        Ok(to_u64(n))
    }

    /// Where each of `event_ids` is, in the order given (unknown ids left out).
    #[tracing::instrument(level = "debug", name = "store.locate_many", skip_all, fields(events = event_ids.len()))]
    pub async fn locate_many(
        &self,
        event_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, EventLocation)>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, aggregate_type, aggregate_id, version, event_type, position \
             FROM events WHERE event_id = ANY($1)",
        )
        .bind(event_ids)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("locating events"))?;
        let mut found: HashMap<Uuid, EventLocation> = rows
            .iter()
            .map(|row| {
                (
                    row.get("event_id"),
                    EventLocation {
                        aggregate_type: row.get("aggregate_type"),
                        aggregate_id: row.get("aggregate_id"),
                        version: to_u64(row.get("version")),
                        event_type: row.get("event_type"),
                        position: row.get::<Option<i64>, _>("position").map(to_u64),
                    },
                )
            })
            .collect();
        Ok(event_ids
            .iter()
            .filter_map(|id| found.remove(id).map(|l| (*id, l)))
            .collect())
    }
}

/// A stream to load: its aggregate kind and id.
pub(crate) type StreamKey = (AggregateKind, String);

/// The most streams loaded by one statement.
pub(crate) const MAX_STREAMS_PER_LOAD: usize = 256;

/// Loads gathered streams in one statement, each answered with its own
/// rows in version order (each caller reads them as facts: a damaged event
/// spoils its own stream's load only).
pub(crate) fn load_batch(
    pool: PgPool,
    streams: Vec<StreamKey>,
) -> BatchAnswers<Result<Vec<StoredRow>, StoreError>> {
    Box::pin(async move {
        let kinds: Vec<&str> = streams.iter().map(|(k, _)| k.as_str()).collect();
        let ids: Vec<&str> = streams.iter().map(|(_, id)| id.as_str()).collect();
        // One stream: the plain statement. Several: each stream's events
        // from its own scan of the unique (aggregate, id, version) index;
        // `OFFSET 0` keeps the planner from turning the per-stream scans
        // into one join, whose plan, cached when the table was small, can
        // become a scan of the whole table.
        let rows =
            match (kinds.as_slice(), ids.as_slice()) {
                ([kind], [id]) => sqlx::query(
                    "SELECT 1::bigint AS n, event_id, version, event_type, schema_version, data, \
                            position \
                     FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY version",
                )
                .bind(kind)
                .bind(id)
                .fetch_all(&pool)
                .await,
                _ => sqlx::query(
                    "SELECT s.n, e.event_id, e.version, e.event_type, e.schema_version, e.data, \
                            e.position \
                     FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS s(kind, id, n) \
                     CROSS JOIN LATERAL (SELECT event_id, version, event_type, schema_version, \
                         data, position \
                         FROM events WHERE aggregate_type = s.kind AND aggregate_id = s.id \
                         ORDER BY version OFFSET 0) e \
                     ORDER BY s.n, e.version",
                )
                .bind(&kinds)
                .bind(&ids)
                .fetch_all(&pool)
                .await,
            };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                return streams
                    .iter()
                    .map(|_| Err(StoreError::db("loading a stream")(replicate(&e))))
                    .collect()
            }
        };
        let mut answers: Vec<Result<Vec<StoredRow>, StoreError>> =
            streams.iter().map(|_| Ok(Vec::new())).collect();
        for row in &rows {
            let n: i64 = row.get("n");
            let Some(Ok(events)) = usize::try_from(n - 1).ok().and_then(|i| answers.get_mut(i))
            else {
                continue;
            };
            events.push(StoredRow::from_row(row));
        }
        answers
    })
}
