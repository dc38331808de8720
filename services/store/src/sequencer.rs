//! The sequencer (docs/architecture.md decision 4).
//!
//! Sequence values drawn at insert become visible at commit, so a reader
//! that checkpoints "highest seen" would skip a late commit. Writers
//! therefore insert events without a position, stamped with their
//! transaction id, and commit in parallel. The sequencer takes only rows
//! whose transaction id is below the xmin of a fresh snapshot (every such
//! transaction has ended), in (transaction id, insert order), and gives each
//! its dense `position`, a never-decreasing `recorded_at` and its chain hash.
//! It never skips on a timeout: a transaction held open anywhere in the
//! cluster holds it back (watch the oldest open transaction's age).
//!
//! One sequencer at a time, by an advisory lock, which (unlike `SELECT …
//! FOR UPDATE`) takes no transaction id, so the sequencer never holds back
//! its own snapshot. The service's sequencer ([`Sequencer::run`]) keeps a
//! connection of its own holding the lock for as long as it lives, so a
//! batch is two round trips; one-off batches ([`Sequencer::sequence_batch`])
//! take it for their transaction and give way when it is held.
//!
//! Its commits are asynchronous (docs/adr/0008): the positions it assigns
//! are a function of committed, durable input (the events in transaction id
//! and insert order), so a batch lost with a PostgreSQL crash is assigned
//! again identically; only `recorded_at`, and with it the hash, may differ,
//! which is why the relay publishes only what is flushed
//! ([`crate::Store::read_ledger_durable`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::{Connection as _, PgConnection, Row};
use tledger_events::chain::{self, ChainRecord, Hash};
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use crate::append::to_i64;
use crate::{Store, StoreError};

/// The advisory lock key of the sequencer ("tledger-s" in ASCII, shortened).
const SEQUENCER_LOCK: i64 = 0x746c_6564_6765_7273;

/// The first pause before looking again at events held back by an open
/// transaction (it doubles up to the idle interval).
const HELD_BACK_FIRST_WAIT: Duration = Duration::from_millis(1);

/// What one batch sequenced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequenced {
    /// `(event id, position)` of each event sequenced, in position order.
    pub events: Vec<(Uuid, u64)>,
    /// The ledger head after the batch.
    pub head: u64,
    /// Committed events wait behind a transaction still open: look again
    /// soon rather than at the next wake-up.
    pub held_back: bool,
}

/// Assigns positions, `recorded_at` and hashes to committed events.
#[derive(Clone, Debug)]
pub struct Sequencer {
    store: Store,
    batch_size: u32,
}

impl Sequencer {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            batch_size: 1000,
        }
    }

    #[must_use]
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sequences one batch of committed events (none when nothing is ready,
    /// or when another sequencer holds the lock: it sequences them). Public
    /// so that tests, benchmarks and `migrate` can drive the sequencer step
    /// by step; the service's sequencer runs [`Sequencer::run`].
    #[tracing::instrument(level = "debug", name = "store.sequence_batch", skip_all)]
    pub async fn sequence_batch(&self) -> Result<Sequenced, StoreError> {
        let db = StoreError::db;
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(db("starting a sequencer batch"))?;
        // One round trip: asynchronous commit (ADR 8) and the lock, which
        // (unlike `SELECT … FOR UPDATE`) takes no transaction id.
        let locked: bool = sqlx::query_scalar(
            "SELECT set_config('synchronous_commit', 'off', true) IS NOT NULL \
                    AND pg_try_advisory_xact_lock($1)",
        )
        .bind(SEQUENCER_LOCK)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("taking the sequencer lock"))?;
        if !locked {
            tx.rollback().await.map_err(db("ending an empty batch"))?;
            return Ok(Sequenced::default());
        }
        let batch = sequence_on(&mut tx, self.batch_size).await?;
        tx.commit()
            .await
            .map_err(db("committing a sequencer batch"))?;
        Ok(batch)
    }

    /// Opens the sequencer's own session: a connection of its own (outside
    /// the pool) with asynchronous commit, holding the sequencer lock for
    /// as long as it lives, so that a batch is two round trips. `None` while
    /// another session holds the lock (another instance is the sequencer).
    async fn open_session(&self) -> Result<Option<PgConnection>, StoreError> {
        let db = StoreError::db;
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(db("connecting the sequencer"))?
            .detach();
        // Generic plans for its two statements: planned for each batch's
        // values, binding its UPDATE took two thirds as long as running it.
        let locked: bool = sqlx::query_scalar(
            "SELECT set_config('synchronous_commit', 'off', false) IS NOT NULL \
                    AND set_config('plan_cache_mode', 'force_generic_plan', false) IS NOT NULL \
                    AND pg_try_advisory_lock($1)",
        )
        .bind(SEQUENCER_LOCK)
        .fetch_one(&mut conn)
        .await
        .map_err(db("taking the sequencer lock"))?;
        if locked {
            Ok(Some(conn))
        } else {
            // Closing the connection is all the clean-up there is.
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Runs until `shutdown` completes, sequencing whenever woken (after a
    /// commit) and at least every `idle` interval, and announcing each batch
    /// on `announce`. While another instance holds the sequencer lock it
    /// stands by, trying again every `idle`. At shutdown it sequences what
    /// is committed, then stops.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        announce: broadcast::Sender<Arc<Sequenced>>,
        idle: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut session: Option<PgConnection> = None;
        let mut held_back_wait = HELD_BACK_FIRST_WAIT;
        loop {
            if session.is_none() {
                session = match self.open_session().await {
                    Ok(session) => session,
                    Err(error) => {
                        tracing::warn!(%error, "sequencer cannot start a session; retrying");
                        None
                    }
                };
            }
            let (full, held_back) = match session.as_mut() {
                None => (false, false),
                Some(conn) => match sequence_on(conn, self.batch_size).await {
                    Ok(batch) => {
                        let full = batch.events.len() as u64 >= u64::from(self.batch_size);
                        let held_back = batch.held_back;
                        if !batch.events.is_empty() {
                            // Nobody listening is fine: waiters fall back to reading positions.
                            let _ = announce.send(Arc::new(batch));
                        }
                        (full, held_back)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "sequencer batch failed; reconnecting");
                        // A broken session releases the lock with it; start afresh.
                        session = None;
                        (false, false)
                    }
                },
            };
            if full {
                continue;
            }
            // Nothing wakes the sequencer when a transaction that held
            // committed events back ends: poll, backing off, meanwhile.
            let wait = if held_back {
                let wait = held_back_wait;
                held_back_wait = (held_back_wait * 2).min(idle);
                wait
            } else {
                held_back_wait = HELD_BACK_FIRST_WAIT;
                idle
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => break,
            }
        }
        // Drain: whatever committed before shutdown gets its position.
        if let Some(mut conn) = session {
            while let Ok(batch) = sequence_on(&mut conn, self.batch_size).await {
                if batch.events.is_empty() {
                    break;
                }
                let _ = announce.send(Arc::new(batch));
            }
            let _ = conn.close().await;
        }
    }
}

/// One batch on a connection that holds the sequencer lock: one round trip
/// to read the head and the ready events, one to write their positions,
/// `recorded_at` and hashes with the new head. The write is guarded by the
/// head it started from, so a second sequencer could never interleave even
/// if the lock were lost.
async fn sequence_on(conn: &mut PgConnection, batch_size: u32) -> Result<Sequenced, StoreError> {
    let db = StoreError::db;
    let rows = sqlx::query(READY)
        .bind(i64::from(batch_size))
        .fetch_all(&mut *conn)
        .await
        .map_err(db("reading committed events"))?;
    let Some(head) = rows.first() else {
        return Ok(Sequenced::default());
    };
    let start = u64::try_from(head.get::<i64, _>("head_position")).unwrap_or(0);
    let last_recorded: Option<DateTime<Utc>> = head.get("head_recorded_at");
    let held_back: bool = head.get("held_back");
    let mut previous: Hash = head
        .get::<Vec<u8>, _>("head_hash")
        .try_into()
        .unwrap_or(chain::GENESIS);
    let ready: Vec<&sqlx::postgres::PgRow> = rows
        .iter()
        .filter(|r| r.get::<Option<Uuid>, _>("event_id").is_some())
        .collect();
    if ready.is_empty() {
        return Ok(Sequenced {
            events: Vec::new(),
            head: start,
            held_back,
        });
    }

    // recorded_at never decreases, whatever the clock does.
    let now = Utc::now().trunc_subsecs(6);
    let recorded_at = last_recorded.map_or(now, |last| last.max(now));
    let recorded_text = chain::format_instant(recorded_at);

    let mut position = start;
    let mut ids = Vec::with_capacity(ready.len());
    let mut positions = Vec::with_capacity(ready.len());
    let mut hashes = Vec::with_capacity(ready.len());
    for row in ready {
        position += 1;
        let event_id: Uuid = row.get("event_id");
        let stream = format!(
            "{}-{}",
            row.get::<&str, _>("aggregate_type"),
            row.get::<&str, _>("aggregate_id")
        );
        let data: Value = row.get("data");
        let metadata: Value = row.get("metadata");
        let record = ChainRecord {
            position,
            event_id,
            stream: &stream,
            version: u64::try_from(row.get::<i64, _>("version")).unwrap_or(0),
            event_type: row.get("event_type"),
            effective_date: row.get::<chrono::NaiveDate, _>("effective_date").into(),
            recorded_at: recorded_text.clone(),
            data: &data,
            metadata: &metadata,
        };
        let hash = chain::event_hash(&previous, &record).map_err(|e| StoreError::Corrupt {
            event_id,
            event_type: record.event_type.to_owned(),
            reason: e.to_string(),
        })?;
        previous = hash;
        ids.push(event_id);
        positions.push(to_i64(position));
        hashes.push(hash.to_vec());
    }

    let written: i64 = sqlx::query_scalar(SEQUENCE)
        .bind(&ids)
        .bind(&positions)
        .bind(recorded_at)
        .bind(&hashes)
        .bind(to_i64(position))
        .bind(previous.to_vec())
        .bind(to_i64(start))
        .fetch_one(&mut *conn)
        .await
        .map_err(db("sequencing events"))?;
    if written != to_i64(position - start) {
        return Err(StoreError::HeadMoved {
            expected: start,
            written: u64::try_from(written).unwrap_or(0),
        });
    }
    let events = ids
        .into_iter()
        .zip(positions)
        .map(|(id, p)| (id, u64::try_from(p).unwrap_or(0)))
        .collect();
    Ok(Sequenced {
        events,
        head: position,
        held_back,
    })
}

/// The head, the committed events ready to sequence (in transaction id and
/// insert order), and whether committed events wait behind an open
/// transaction.
const READY: &str = "\
SELECT h.position AS head_position, h.recorded_at AS head_recorded_at, h.hash AS head_hash,
       EXISTS (SELECT 1 FROM events w WHERE w.position IS NULL
               AND w.xid >= pg_snapshot_xmin(pg_current_snapshot())) AS held_back,
       e.event_id, e.aggregate_type, e.aggregate_id, e.version, e.event_type,
       e.effective_date, e.data, e.metadata
FROM ledger_head h
LEFT JOIN LATERAL (
    SELECT event_id, aggregate_type, aggregate_id, version, event_type, effective_date,
           data, metadata, xid, insert_order
    FROM events
    WHERE position IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid, insert_order LIMIT $1) e ON true
ORDER BY e.xid, e.insert_order";

/// Moves the head from `$7` to `$5` and gives the events their positions,
/// only if the head is still at `$7`; answers how many events it wrote.
const SEQUENCE: &str = "\
WITH head AS (
    UPDATE ledger_head SET position = $5, recorded_at = $3, hash = $6
    WHERE position = $7 RETURNING 1),
sequenced AS (
    UPDATE events AS e SET position = u.position, recorded_at = $3, hash = u.hash
    FROM UNNEST($1::uuid[], $2::bigint[], $4::bytea[]) AS u(event_id, position, hash)
    WHERE e.event_id = u.event_id AND e.position IS NULL AND EXISTS (SELECT 1 FROM head)
    RETURNING 1)
SELECT count(*) FROM sequenced";
