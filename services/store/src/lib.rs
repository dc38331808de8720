//! The PostgreSQL event store of training-ledger (docs/architecture.md,
//! decisions 1, 3 and 4).
//!
//! - [`Store::append`] writes a command's events (and its idempotency record)
//!   in one statement, unsequenced and stamped with the writer's transaction
//!   id; the unique `(aggregate, id, version)` key is the optimistic
//!   concurrency check.
//! - The [`sequencer`] alone gives committed events their dense global
//!   `position`, a never-decreasing `recorded_at` and the chain hash, taking
//!   only rows whose transaction has ended, so a late commit is never
//!   skipped.
//! - Reads: a stream, an event by id, the sequenced ledger from a position,
//!   a stream's sequenced facts with who recorded them (audit trails). Every
//!   stored fact read as a typed fact (streams, the read models' facts)
//!   passes through the store's [`Upcasting`] first; what the chain covers
//!   (the ledger, chain rows, audit trails) is read as stored.
//!
//! Must not depend on NATS, HTTP or the domain crate: it stores facts.

mod append;
pub mod cadence;
mod chain_rows;
mod checkpoints;
mod group_commit;
mod history;
mod read;
mod reader_positions;
mod receipts;
pub mod sequencer;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tledger_events::upcasting::{UpcastError, Upcasting};

pub use append::{Append, AppendError, EventMetadata, Idempotency, NewEvent};
pub use cadence::Cadence;
pub use chain_rows::{ChainRow, ChainRows, LedgerExtent};
pub use history::RecordedFact;
pub use read::{EventLocation, LedgerEvent, PriorRequest, SequencedFact, StoredEvent};
pub use receipts::{ParkedAhead, ParkedFact, PublisherRecord, QuarantineItem, ReceiptRecord};
pub use sequencer::{Sequenced, Sequencer};

/// A pooled connection idle this long is checked before it is used again.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// Errors of the store other than the append conflicts.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("PostgreSQL: {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the ledger head moved from {expected} while sequencing ({written} events written): \
         two sequencers ran at once"
    )]
    HeadMoved { expected: u64, written: u64 },
    #[error("the stored checkpoint at position {position} is damaged: {reason}")]
    CorruptCheckpoint { position: u64, reason: String },
    #[error("the stored event {event_id} cannot be read as a current fact: {source}")]
    Upcast {
        event_id: uuid::Uuid,
        #[source]
        source: UpcastError,
    },
    #[error("the stored event {event_id} does not parse as {event_type}: {reason}")]
    Corrupt {
        event_id: uuid::Uuid,
        event_type: String,
        reason: String,
    },
}

impl StoreError {
    /// Wraps a sqlx error with what was being done.
    pub fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { context, source }
    }

    /// Whether the error means PostgreSQL could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            StoreError::Database {
                source: sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_),
                ..
            }
        )
    }
}

/// The event store: a connection pool to the ledger's database, and the
/// queues that gather concurrent writes and loads into one statement each
/// ([`group_commit`]).
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    batches: Arc<Batches>,
    /// How a stored fact of an older version is read as the current one.
    upcasting: Arc<Upcasting>,
}

/// The group-commit queues of a store.
#[derive(Debug)]
struct Batches {
    appends: group_commit::BatchQueue<Append, Result<(), AppendError>>,
    receipts: group_commit::BatchQueue<ReceiptRecord, Result<(), StoreError>>,
    loads: group_commit::BatchQueue<read::StreamKey, Result<Vec<read::StoredRow>, StoreError>>,
}

impl Batches {
    fn new() -> Self {
        // Two workers each: one runs a batch while the other gathers the
        // next.
        Self {
            appends: group_commit::BatchQueue::new(
                append::append_batch,
                append::MAX_APPENDS_PER_STATEMENT,
                2,
            ),
            receipts: group_commit::BatchQueue::new(
                receipts::receipt_batch,
                receipts::MAX_RECEIPTS_PER_STATEMENT,
                2,
            ),
            loads: group_commit::BatchQueue::new(read::load_batch, read::MAX_STREAMS_PER_LOAD, 2),
        }
    }
}

impl Store {
    /// Connects to `url` with a pool of `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(StoreError::db("parsing the database URL"))?
            // Every statement here is short and waited for. PostgreSQL
            // compiles a plan whose estimated cost passes `jit_above_cost`,
            // which coarse statistics on a table of millions of events
            // reach for a count of three reference facts: the compile then
            // took longer than the query, at every registration.
            .options([("jit", "off")])
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // A ping before every use is a round trip per query: check only
            // connections that sat idle long enough to have gone stale (a
            // busy one that breaks fails its query, and is replaced).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for < STALE_AFTER {
                        return Ok(true);
                    }
                    Ok(sqlx::Connection::ping(conn).await.is_ok())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::db("connecting"))?;
        Ok(Self::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            batches: Arc::new(Batches::new()),
            upcasting: Arc::new(Upcasting::shipped()),
        }
    }

    /// The same store, reading stored facts through `upcasting` instead of
    /// the shipped steps (a synthetic older version, in tests).
    pub fn with_upcasting(self, upcasting: Upcasting) -> Self {
        Self {
            upcasting: Arc::new(upcasting),
            ..self
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn batches(&self) -> &Batches {
        &self.batches
    }

    /// Applies the migrations in `services/store/migrations` that the
    /// database lacks.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }
}
