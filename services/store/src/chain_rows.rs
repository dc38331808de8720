//! The sequenced ledger as the chain hashes it, for verification.
//!
//! Why not [`LedgerEvent`](crate::LedgerEvent): recomputing the chain over
//! a million events is bound by decoding. Here the rows of a position range
//! stay as PostgreSQL sent them until [`ChainRows::record`] borrows each
//! column in place (on whatever thread hashes them), and `data` and
//! `metadata` stay JSON text, canonicalised without a `serde_json::Value`
//! ([`JsonText`]).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;
use tledger_events::chain::{format_instant, ChainRecord, JsonText};
use uuid::Uuid;

use crate::append::to_i64;
use crate::{Store, StoreError};

/// The sequenced events of one position range, undecoded.
#[derive(Debug)]
pub struct ChainRows {
    rows: Vec<PgRow>,
}

/// One event of [`ChainRows`]: what its hash covers, and the stored hash.
#[derive(Debug)]
pub struct ChainRow<'r> {
    pub position: u64,
    pub record: ChainRecord<'r, JsonText<'r>>,
    pub hash: &'r [u8],
    /// The row's columns that copy hashed content and disagree with it
    /// (who recorded it, the schema version), comma-separated; empty when
    /// all agree.
    pub disagreeing_copies: &'r str,
}

/// The columns outside the hash that copy what it covers, each named when
/// it differs from its hashed form: `publisher`, `actor`, `command_id` and
/// `correlation_id` copy the metadata's members, `schema_version` the
/// `.v<n>` ending of the type. Nothing the ledger shows reads them, but
/// other code may: an edited copy is damage even though the chain holds.
/// (One comparison of the whole row first: the names are worked out only
/// for a row that disagrees, which keeps `tledger verify`'s read cheap.)
const COPIES_THAT_DISAGREE: &str = "CASE WHEN \
    (publisher, actor, command_id, correlation_id) IS DISTINCT FROM \
    (metadata->>'publisher', metadata->>'actor', metadata->>'command_id', \
     metadata->>'correlation_id') \
    OR event_type NOT LIKE ('%.v' || schema_version) \
THEN concat_ws(', ', \
    CASE WHEN publisher IS DISTINCT FROM metadata->>'publisher' THEN 'publisher' END, \
    CASE WHEN actor IS DISTINCT FROM metadata->>'actor' THEN 'actor' END, \
    CASE WHEN command_id IS DISTINCT FROM metadata->>'command_id' THEN 'command_id' END, \
    CASE WHEN correlation_id IS DISTINCT FROM metadata->>'correlation_id' \
         THEN 'correlation_id' END, \
    CASE WHEN event_type NOT LIKE ('%.v' || schema_version) THEN 'schema_version' END) \
ELSE '' END";

impl ChainRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `index`th event of the range, in position order.
    pub fn record(&self, index: usize) -> Result<ChainRow<'_>, StoreError> {
        let row = &self.rows[index];
        let decoded = (|| {
            let position = u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0);
            let event_id: Uuid = row.try_get(1)?;
            let stream: &str = row.try_get(2)?;
            let version: i64 = row.try_get(3)?;
            let event_type: &str = row.try_get(4)?;
            let effective_date: NaiveDate = row.try_get(5)?;
            let recorded_at: DateTime<Utc> = row.try_get(6)?;
            let data: &str = row.try_get(7)?;
            let metadata: &str = row.try_get(8)?;
            let hash: &[u8] = row.try_get(9)?;
            let disagreeing_copies: &str = row.try_get(10)?;
            Ok::<_, sqlx::Error>(ChainRow {
                position,
                record: ChainRecord {
                    position,
                    event_id,
                    stream,
                    version: u64::try_from(version).unwrap_or(0),
                    event_type,
                    effective_date: effective_date.into(),
                    recorded_at: format_instant(recorded_at),
                    data: JsonText(data),
                    metadata: JsonText(metadata),
                },
                hash,
                disagreeing_copies,
            })
        })();
        decoded.map_err(StoreError::db("decoding a ledger row"))
    }
}

impl Store {
    /// The sequenced events with `after < position <= through`, in order,
    /// as [`ChainRows`], each with the copies of hashed content that
    /// disagree with it.
    #[tracing::instrument(
        level = "debug",
        name = "store.read_chain",
        skip_all,
        fields(after, through)
    )]
    pub async fn read_chain(&self, after: u64, through: u64) -> Result<ChainRows, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT position, event_id, aggregate_type || '-' || aggregate_id, version, \
                    event_type, effective_date, recorded_at, data::text, metadata::text, hash, \
                    {COPIES_THAT_DISAGREE} \
             FROM events WHERE position > $1 AND position <= $2 ORDER BY position",
        ))
        .bind(to_i64(after))
        .bind(to_i64(through))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading the ledger"))?;
        Ok(ChainRows { rows })
    }
}

/// How far the ledger reaches, read in one statement: the last position
/// the events table holds, and the head's position and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerExtent {
    pub last_event: u64,
    pub head: u64,
    pub head_hash: [u8; 32],
}

impl Store {
    /// See [`LedgerExtent`].
    #[tracing::instrument(level = "debug", name = "store.ledger_extent", skip_all)]
    pub async fn ledger_extent(&self) -> Result<LedgerExtent, StoreError> {
        let read = StoreError::db("reading the ledger head");
        let row = sqlx::query(
            "SELECT (SELECT coalesce(max(position), 0) FROM events), position, hash \
             FROM ledger_head",
        )
        .fetch_one(self.pool())
        .await;
        let (last_event, head, hash) = row
            .and_then(|row| {
                Ok::<(i64, i64, Vec<u8>), _>((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .map_err(read)?;
        Ok(LedgerExtent {
            last_event: u64::try_from(last_event).unwrap_or(0),
            head: u64::try_from(head).unwrap_or(0),
            // A damaged head hash matches no chain.
            head_hash: hash.try_into().unwrap_or([0xff; 32]),
        })
    }
}
