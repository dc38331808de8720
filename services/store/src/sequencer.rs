//! The sequencer (ARCHITECTURE.md decision 4).
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
//! One sequencer at a time: each batch holds a transaction-scoped advisory
//! lock, which (unlike `SELECT … FOR UPDATE`) takes no transaction id, so
//! the sequencer never holds back its own snapshot.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::Row;
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

    /// Sequences one batch of committed events (none when nothing is ready).
    /// Public so that tests and benchmarks can drive the sequencer step by
    /// step.
    pub async fn sequence_batch(&self) -> Result<Sequenced, StoreError> {
        let db = StoreError::db;
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(db("starting a sequencer batch"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db("taking the sequencer lock"))?;
        // One round trip: the head, the committed events ready to sequence,
        // and whether committed events wait behind an open transaction.
        let rows = sqlx::query(
            "SELECT h.position AS head_position, h.recorded_at AS head_recorded_at,                     h.hash AS head_hash,                     EXISTS (SELECT 1 FROM events w WHERE w.position IS NULL                             AND w.xid >= pg_snapshot_xmin(pg_current_snapshot())) AS held_back,                     e.event_id, e.aggregate_type, e.aggregate_id, e.version, e.event_type,                     e.effective_date, e.data, e.metadata              FROM ledger_head h              LEFT JOIN LATERAL (                  SELECT event_id, aggregate_type, aggregate_id, version, event_type, effective_date,                         data, metadata, xid, insert_order                  FROM events                  WHERE position IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())                  ORDER BY xid, insert_order LIMIT $1) e ON true              ORDER BY e.xid, e.insert_order",
        )
        .bind(i64::from(self.batch_size))
        .fetch_all(&mut *tx)
        .await
        .map_err(db("reading committed events"))?;
        let Some(head) = rows.first() else {
            tx.rollback().await.map_err(db("ending an empty batch"))?;
            return Ok(Sequenced::default());
        };
        let mut position = u64::try_from(head.get::<i64, _>("head_position")).unwrap_or(0);
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
            tx.rollback().await.map_err(db("ending an empty batch"))?;
            return Ok(Sequenced {
                events: Vec::new(),
                head: position,
                held_back,
            });
        }

        // recorded_at never decreases, whatever the clock does.
        let now = Utc::now().trunc_subsecs(6);
        let recorded_at = last_recorded.map_or(now, |last| last.max(now));
        let recorded_text = chain::format_instant(recorded_at);

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

        // One round trip for the events and the head.
        sqlx::query(
            "WITH sequenced AS (                  UPDATE events AS e SET position = u.position, recorded_at = $3, hash = u.hash                  FROM UNNEST($1::uuid[], $2::bigint[], $4::bytea[]) AS u(event_id, position, hash)                  WHERE e.event_id = u.event_id RETURNING 1)              UPDATE ledger_head SET position = $5, recorded_at = $3, hash = $6",
        )
        .bind(&ids)
        .bind(&positions)
        .bind(recorded_at)
        .bind(&hashes)
        .bind(to_i64(position))
        .bind(previous.to_vec())
        .execute(&mut *tx)
        .await
        .map_err(db("sequencing events"))?;
        tx.commit()
            .await
            .map_err(db("committing a sequencer batch"))?;

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

    /// Runs until `shutdown` completes, sequencing whenever woken (after a
    /// commit) and at least every `idle` interval, and announcing each batch
    /// on `announce`. At shutdown it sequences what is committed, then stops.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        announce: broadcast::Sender<Arc<Sequenced>>,
        idle: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut held_back_wait = HELD_BACK_FIRST_WAIT;
        loop {
            let (full, held_back) = match self.sequence_batch().await {
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
                    tracing::warn!(%error, "sequencer batch failed; retrying");
                    (false, false)
                }
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
        while let Ok(batch) = self.sequence_batch().await {
            if batch.events.is_empty() {
                break;
            }
            let _ = announce.send(Arc::new(batch));
        }
    }
}
