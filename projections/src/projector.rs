//! The projector: reads the ledger in global order from the read models'
//! position and writes the read models, the position in the same
//! transaction as the rows (a crash replays nothing twice and skips
//! nothing). The position is kept in the table `<schema>.checkpoint`, whose
//! name the schema keeps; "checkpoint" elsewhere means a signed tree head
//! (`events/src/checkpoint.rs`).
//!
//! It reads the batch before its transaction writes anything, so the
//! transaction takes a transaction id only for its short write phase (a
//! transaction id held open would hold the sequencer back). One projector
//! per schema at a time: a transaction-scoped advisory lock.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use sqlx::{PgPool, Postgres};
use tledger_events::{Fact, FactType, FundingSource};
use tledger_store::{Cadence, SequencedFact, Store, StoreError};
use tokio::sync::Notify;

use crate::{daily_volume, schema, standing_table};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("PostgreSQL: {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task of the projector's (reading ahead, building an index) ended
    /// without answering: it panicked or was cancelled.
    #[error("{what} stopped before it finished: {reason}")]
    Stopped { what: &'static str, reason: String },
    #[error("the ledger event at position {position} ({event_type}) does not parse: {reason}")]
    Corrupt {
        position: u64,
        event_type: String,
        reason: String,
    },
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectionError {
    move |source| ProjectionError::Database { context, source }
}

fn lock_key(schema: &str) -> i64 {
    // A stable key per schema: FNV-1a, so both the projector and a rebuild
    // agree on it.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("tledger-projector-{schema}").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Creates the read-model tables of `schema` if missing. A schema written
/// by another version of the tables is dropped first, so that the projector
/// fills it again from position 0 (its figures would be wrong otherwise).
#[tracing::instrument(level = "debug", name = "projector.ensure_schema", skip_all, fields(schema = %schema))]
pub async fn ensure_schema(pool: &PgPool, schema: &str) -> Result<(), ProjectionError> {
    ensure_tables(pool, schema).await?;
    build_indexes(pool, schema, |_| true).await
}

/// [`ensure_schema`] without the indexes the projector does not read while
/// writing (`schema::INDEXES`): for a rebuild, which builds them once its
/// load is done.
async fn ensure_tables(pool: &PgPool, schema: &str) -> Result<(), ProjectionError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'checkpoint')",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .map_err(db("looking for the read models"))?;
    if exists {
        let version: Option<i32> =
            sqlx::query_scalar(&format!("SELECT version FROM {schema}.checkpoint"))
                .fetch_optional(pool)
                .await
                .map_err(db("reading the read models' version"))?;
        if version.is_some_and(|v| v != schema::VERSION) {
            tracing::warn!(
                schema,
                ?version,
                current = schema::VERSION,
                "the read models were written by another version of their tables; \
                 projecting them again from position 0"
            );
            sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(pool)
                .await
                .map_err(db("dropping read models of another version"))?;
        }
    }
    sqlx::raw_sql(&schema::tables(schema))
        .execute(pool)
        .await
        .map_err(db("creating the read-model tables"))?;
    Ok(())
}

/// Creates the indexes of `schema::INDEXES` (those of the tables whose
/// statements `tables` keeps) where missing, each table's in
/// a transaction of its own, `INDEX_BUILDERS` tables side by side; a build
/// may sort in memory up to `INDEX_BUILD_MEMORY`.
async fn build_indexes(
    pool: &PgPool,
    schema: &str,
    tables: impl Fn(&str) -> bool,
) -> Result<(), ProjectionError> {
    let builders = std::sync::Arc::new(tokio::sync::Semaphore::new(INDEX_BUILDERS));
    let builds = schema::INDEXES
        .iter()
        .filter(|statements| tables(statements))
        .map(|statements| {
            let pool = pool.clone();
            let builders = builders.clone();
            let statements = schema::indexes(schema, statements);
            tokio::spawn(async move {
                // The semaphore is never closed: a permit always comes.
                let _turn = builders.acquire().await.ok();
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT set_config('maintenance_work_mem', $1, true)")
                    .bind(INDEX_BUILD_MEMORY)
                    .execute(&mut *tx)
                    .await?;
                for statement in &statements {
                    sqlx::query(statement)
                        .persistent(false)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            })
        });
    let builds: Vec<_> = builds.collect();
    for build in builds {
        build
            .await
            .map_err(|e| ProjectionError::Stopped {
                what: "building an index of the read models",
                reason: e.to_string(),
            })?
            .map_err(db("building the read models' indexes"))?;
    }
    Ok(())
}

/// Tables whose indexes are built at the same time.
const INDEX_BUILDERS: usize = 3;

/// Memory one index build may sort in (PostgreSQL's default is 64 MB; the
/// largest read-model index of a national ledger is a few hundred MB).
const INDEX_BUILD_MEMORY: &str = "256MB";

/// The position the read models of `schema` have reached.
pub async fn position(pool: &PgPool, schema: &str) -> Result<u64, ProjectionError> {
    let position: i64 = sqlx::query_scalar(&format!("SELECT position FROM {schema}.checkpoint"))
        .fetch_one(pool)
        .await
        .map_err(db("reading the projection position"))?;
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Writes the read models of one schema.
#[derive(Clone, Debug)]
pub struct Projector {
    store: Store,
    schema: String,
    batch_size: u32,
    derived: Derived,
    /// Woken after each batch commits (the service's sequencer, ADR 18).
    after_commit: Option<std::sync::Arc<Notify>>,
}

/// When the projector writes the tables derived from other read-model
/// tables, `standing` and `enrolled_by_day` (ADR 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Derived {
    /// With each batch, for what it touches.
    EachBatch,
    /// Not at all: a rebuild's load fills them once, at the end, when the
    /// tables they are read from have all their rows but no indexes yet.
    AfterLoad,
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Projector {
    pub fn new(store: Store) -> Self {
        Self::for_schema(store, schema::LIVE)
    }

    pub fn for_schema(store: Store, schema: &str) -> Self {
        Self {
            store,
            schema: schema.to_owned(),
            batch_size: 2000,
            derived: Derived::EachBatch,
            after_commit: None,
        }
    }

    /// Wakes `sequencer` after each batch commits. A batch's transaction
    /// holds back every event appended while it is open (docs/architecture.md
    /// decision 4); told at once that it ended, the sequencer need not
    /// poll for it.
    #[must_use]
    pub fn waking_after_commit(mut self, sequencer: std::sync::Arc<Notify>) -> Self {
        self.after_commit = Some(sequencer);
        self
    }

    #[must_use]
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.max(1);
        self
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Projects the next batch; returns how many events it consumed.
    #[tracing::instrument(level = "debug", name = "projector.apply_batch", skip_all, fields(schema = %self.schema))]
    pub async fn step(&self) -> Result<usize, ProjectionError> {
        let mut tx = self.begin_batch().await?;
        let after = self.position_in(&mut tx).await?;
        let events = self.store.read_facts(after, self.batch_size).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            tx.rollback().await.map_err(db("ending an empty batch"))?;
            return Ok(0);
        };
        let rows = Rows::from_events(&events)?;
        self.finish_batch(tx, &rows, last).await?;
        Ok(events.len())
    }

    /// A batch's transaction, holding the schema's projector lock, with
    /// asynchronous commit: a batch lost with a PostgreSQL crash is
    /// projected again from the position committed with it
    /// (docs/adr/0008-asynchronous-sequencer-commit.md).
    #[tracing::instrument(level = "debug", name = "projector.begin_batch", skip_all, fields(schema = %self.schema))]
    async fn begin_batch(&self) -> Result<sqlx::Transaction<'static, Postgres>, ProjectionError> {
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(db("starting a projection batch"))?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1), set_config('synchronous_commit', 'off', true)",
        )
        .bind(lock_key(&self.schema))
        .execute(&mut *tx)
        .await
        .map_err(db("taking the projector lock"))?;
        Ok(tx)
    }

    async fn position_in(
        &self,
        tx: &mut sqlx::Transaction<'static, Postgres>,
    ) -> Result<u64, ProjectionError> {
        let at: i64 =
            sqlx::query_scalar(&format!("SELECT position FROM {}.checkpoint", self.schema))
                .fetch_one(&mut **tx)
                .await
                .map_err(db("reading the projection position"))?;
        Ok(u64::try_from(at).unwrap_or(0))
    }

    /// Writes a batch's rows and moves the position to `last`, in the
    /// batch's transaction.
    #[tracing::instrument(level = "debug", name = "projector.write_batch", skip_all, fields(schema = %self.schema, through = last))]
    async fn finish_batch(
        &self,
        mut tx: sqlx::Transaction<'static, Postgres>,
        rows: &Rows,
        last: u64,
    ) -> Result<(), ProjectionError> {
        rows.write(&mut tx, &self.schema).await?;
        if self.derived == Derived::EachBatch {
            let retracted = rows.retracted();
            standing_table::rewrite(&mut tx, &self.schema, rows.people_recorded(), &retracted)
                .await?;
            daily_volume::update(&mut tx, &self.schema, &rows.enrolled_steps(), &retracted).await?;
        }
        sqlx::query(&format!(
            "UPDATE {}.checkpoint SET position = $1, \
             units_position = GREATEST(units_position, $2)",
            self.schema
        ))
        .bind(i64_of(last))
        .bind(rows.last_unit_change())
        .execute(&mut *tx)
        .await
        .map_err(db("moving the projection position"))?;
        tx.commit()
            .await
            .map_err(db("committing a projection batch"))?;
        if let Some(sequencer) = &self.after_commit {
            sequencer.notify_one();
        }
        metrics_position(&self.schema, last);
        Ok(())
    }

    /// Like [`Projector::catch_up`], but the batches up to the head as it
    /// was at the start are read and parsed ahead, on tasks of their own
    /// and over connections of their own, while the batch before them is
    /// written: reading, parsing and writing overlap instead of taking
    /// turns. Positions are dense, so the batches' ranges are known before
    /// they are read. For a rebuild, where one projector fills a schema of
    /// its own; should the position not be where a batch starts all the
    /// same, it stops reading ahead and goes on batch by batch.
    #[tracing::instrument(level = "debug", name = "projector.catch_up_reading_ahead", skip_all, fields(schema = %self.schema))]
    pub async fn catch_up_reading_ahead(&self) -> Result<u64, ProjectionError> {
        let start = position(self.store.pool(), &self.schema).await?;
        let head = self.store.head().await?;
        let size = u64::from(self.batch_size);
        let mut ranges = (start..head).step_by(usize::try_from(size).unwrap_or(usize::MAX));
        let read = |after: u64| {
            let store = self.store.clone();
            let limit = u32::try_from(size.min(head - after)).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                let events = store.read_facts(after, limit).await?;
                let last = events.last().map_or(after, |e| e.position);
                Ok::<_, ProjectionError>(ReadBatch {
                    after,
                    last,
                    rows: Rows::from_events(&events)?,
                })
            })
        };
        let mut ahead: VecDeque<_> = ranges.by_ref().take(READ_AHEAD).map(read).collect();
        while let Some(reading) = ahead.pop_front() {
            if let Some(after) = ranges.next() {
                ahead.push_back(read(after));
            }
            let batch = reading.await.map_err(|e| ProjectionError::Stopped {
                what: "reading the ledger ahead of a rebuild",
                reason: e.to_string(),
            })??;
            let mut tx = self.begin_batch().await?;
            if batch.last == batch.after || self.position_in(&mut tx).await? != batch.after {
                tx.rollback()
                    .await
                    .map_err(db("ending a batch read ahead"))?;
                break;
            }
            self.finish_batch(tx, &batch.rows, batch.last).await?;
        }
        // Batches still being read are not needed any more.
        for reading in ahead {
            reading.abort();
        }
        self.catch_up().await
    }

    /// Projects until the ledger's head, then returns the position.
    #[tracing::instrument(level = "debug", name = "projector.catch_up", skip_all, fields(schema = %self.schema))]
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        while self.step().await? > 0 {}
        position(self.store.pool(), &self.schema).await
    }

    /// Runs until `shutdown`, projecting whenever woken and at least every
    /// `idle` interval, starting batches at least `least_gap` apart (ADR 18).
    pub async fn run(
        self,
        wake: std::sync::Arc<Notify>,
        idle: Duration,
        least_gap: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut cadence = Cadence::new(least_gap);
        let full = usize::try_from(self.batch_size).unwrap_or(usize::MAX);
        loop {
            cadence.before_batch().await;
            // A batch that was not full reached the head: the next one
            // waits for a wake-up (kept by `Notify` if it came meanwhile)
            // rather than asking for nothing.
            let more = match self.step().await {
                Ok(n) => n >= full,
                Err(error) => {
                    tracing::warn!(%error, "projection batch failed; retrying");
                    false
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
                () = &mut shutdown => return,
            }
        }
    }
}

/// Batches a rebuild reads ahead of the one it writes.
const READ_AHEAD: usize = 3;

/// A batch read and parsed ahead: the rows of the events after `after` up
/// to `last`.
struct ReadBatch {
    after: u64,
    last: u64,
    rows: Rows,
}

fn metrics_position(schema: &str, position: u64) {
    tracing::trace!(schema, position, "projected");
}

/// Rebuilds the read models from position 0 into `rm_next` beside the live
/// ones (reports keep answering from `rm`), builds its indexes once it has
/// caught up (ADR 16), then swaps them in atomically. Returns the position
/// reached.
#[tracing::instrument(level = "debug", name = "projector.rebuild", skip_all)]
pub async fn rebuild(store: &Store) -> Result<u64, ProjectionError> {
    let pool = store.pool();
    let next = "rm_next";
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {next} CASCADE"))
        .execute(pool)
        .await
        .map_err(db("dropping an unfinished rebuild"))?;
    ensure_tables(pool, next).await?;
    let projector = Projector::for_schema(store.clone(), next).with_batch_size(5000);
    let started = std::time::Instant::now();
    let loaded = Projector {
        derived: Derived::AfterLoad,
        ..projector.clone()
    }
    .catch_up_reading_ahead()
    .await?;
    let load_seconds = started.elapsed().as_secs_f64();
    // The derived tables are filled while the other tables' indexes are
    // built: each is a statement or two on a connection of its own, and
    // only `standing`'s indexes wait for its rows.
    let standing = |statements: &str| statements.contains(".standing ");
    let (standing_rows, (), ()) = tokio::try_join!(
        standing_table::fill(pool, next),
        daily_volume::fill(pool, next),
        build_indexes(pool, next, |statements| !standing(statements)),
    )?;
    build_indexes(pool, next, standing).await?;
    tracing::info!(
        loaded,
        load_seconds,
        standing_rows,
        derive_and_index_seconds = started.elapsed().as_secs_f64() - load_seconds,
        "read models rebuilt beside the live ones; swapping them in"
    );
    // Swap under the live projector's lock, after a last catch-up inside it.
    let mut tx = pool.begin().await.map_err(db("starting the swap"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(schema::LIVE))
        .execute(&mut *tx)
        .await
        .map_err(db("taking the projector lock"))?;
    let live_at: Option<i64> = sqlx::query_scalar(
        "SELECT position FROM rm.checkpoint WHERE EXISTS \
         (SELECT 1 FROM information_schema.tables WHERE table_schema = 'rm' AND table_name = 'checkpoint')",
    )
    .fetch_optional(&mut *tx)
    .await
    .unwrap_or(None);
    let reached = projector.catch_up().await?;
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS rm_old CASCADE; \
         ALTER SCHEMA {live} RENAME TO rm_old; \
         ALTER SCHEMA {next} RENAME TO {live}; \
         DROP SCHEMA rm_old CASCADE;",
        live = schema::LIVE
    ))
    .execute(&mut *tx)
    .await
    .map_err(db("swapping in the rebuilt read models"))?;
    tx.commit().await.map_err(db("committing the swap"))?;
    tracing::info!(reached, live_was_at = ?live_at, "read models rebuilt and swapped in");
    Ok(reached)
}

/// The rows one batch adds, per table.
#[derive(Default)]
struct Rows {
    retractions: Vec<(uuid::Uuid, i64, uuid::Uuid)>,
    references: Vec<(
        uuid::Uuid,
        i64,
        String,
        String,
        chrono::NaiveDate,
        serde_json::Value,
    )>,
    units: Vec<UnitRow>,
    placements: Vec<PlacementRow>,
    qualifications: Vec<QualificationRow>,
    plans: Vec<PlanRow>,
    ratings: Vec<(uuid::Uuid, i64, String, chrono::NaiveDate, i32, String)>,
    places: Vec<PlaceRow>,
    steps: Vec<(uuid::Uuid, i64, String, chrono::NaiveDate, &'static str)>,
}

struct UnitRow {
    event_id: uuid::Uuid,
    position: i64,
    unit_id: String,
    effective_date: chrono::NaiveDate,
    registered: bool,
    name: Option<String>,
    level: Option<String>,
    parent_id: Option<String>,
    dissolved_into: Option<String>,
}

struct PlacementRow {
    event_id: uuid::Uuid,
    position: i64,
    official_id: String,
    effective_date: chrono::NaiveDate,
    kind: &'static str,
    unit_id: Option<String>,
    staff_category: Option<&'static str>,
    post: Option<String>,
}

struct QualificationRow {
    event_id: uuid::Uuid,
    position: i64,
    official_id: String,
    effective_date: chrono::NaiveDate,
    track: &'static str,
    level: String,
    rank: Option<i16>,
    specialty: Option<String>,
    source_enrollment_id: Option<String>,
}

struct PlanRow {
    event_id: uuid::Uuid,
    position: i64,
    official_id: String,
    effective_date: chrono::NaiveDate,
    target_position: String,
    period_from: i32,
    period_to: i32,
    planned_specialty: Option<String>,
}

struct PlaceRow {
    event_id: uuid::Uuid,
    position: i64,
    enrollment_id: String,
    official_id: String,
    nominating_unit_id: String,
    effective_date: chrono::NaiveDate,
    track: &'static str,
    level: Option<String>,
    rank: Option<i16>,
    specialty: Option<String>,
    institution_id: String,
    in_province: bool,
    /// Exact: a recorded nomination may hold more than `i64` (its lines are
    /// each at most 2^53 − 1, their number unbounded before the door's bound).
    funding: [i128; 5],
}

impl Rows {
    /// The people whose placements or qualifications this batch records.
    fn people_recorded(&self) -> Vec<String> {
        self.placements
            .iter()
            .map(|p| p.official_id.clone())
            .chain(self.qualifications.iter().map(|q| q.official_id.clone()))
            .collect()
    }

    /// The position of this batch's last unit fact or retraction (of
    /// anything: retractions are rare, and one of a unit fact changes the
    /// hierarchy), 0 for none.
    fn last_unit_change(&self) -> i64 {
        self.units
            .iter()
            .map(|u| u.position)
            .chain(self.retractions.iter().map(|r| r.1))
            .max()
            .unwrap_or(0)
    }

    /// The event ids of this batch's enrolled steps.
    fn enrolled_steps(&self) -> Vec<uuid::Uuid> {
        self.steps
            .iter()
            .filter(|s| s.4 == "enrolled")
            .map(|s| s.0)
            .collect()
    }

    /// Each event this batch retracts, with the retraction's position.
    fn retracted(&self) -> Vec<(uuid::Uuid, i64)> {
        self.retractions.iter().map(|r| (r.0, r.1)).collect()
    }

    fn from_events(events: &[SequencedFact]) -> Result<Self, ProjectionError> {
        let mut rows = Rows::default();
        for e in events {
            let corrupt = |reason: String| ProjectionError::Corrupt {
                position: e.position,
                event_type: e.event_type.clone(),
                reason,
            };
            let fact_type: FactType = e
                .event_type
                .parse()
                .map_err(|err| corrupt(format!("{err}")))?;
            let fact =
                Fact::from_recorded(fact_type, &e.data).map_err(|err| corrupt(err.to_string()))?;
            let (id, pos, date) = (
                e.event_id,
                i64_of(e.position),
                fact.effective_date().naive(),
            );
            match fact {
                Fact::FactRetracted(r) => rows.retractions.push((r.event_id, pos, id)),
                Fact::ReferencePublished(r) => rows.references.push((
                    id,
                    pos,
                    r.kind.as_str().to_owned(),
                    r.name.to_string(),
                    date,
                    serde_json::Value::Object(r.content),
                )),
                Fact::UnitRegistered(u) => rows.units.push(UnitRow {
                    event_id: id,
                    position: pos,
                    unit_id: u.unit_id.to_string(),
                    effective_date: date,
                    registered: true,
                    name: Some(u.name),
                    level: Some(u.level.as_str().to_owned()),
                    parent_id: u.parent_id.map(|p| p.to_string()),
                    dissolved_into: None,
                }),
                Fact::UnitReorganised(u) => rows.units.push(UnitRow {
                    event_id: id,
                    position: pos,
                    unit_id: u.unit_id.to_string(),
                    effective_date: date,
                    registered: false,
                    name: u.name,
                    level: None,
                    parent_id: u.parent_id.map(|p| p.to_string()),
                    dissolved_into: u.dissolved_into.map(|p| p.to_string()),
                }),
                Fact::OfficialRegistered(o) => rows.placements.push(PlacementRow {
                    event_id: id,
                    position: pos,
                    official_id: o.official_id.to_string(),
                    effective_date: date,
                    kind: "registered",
                    unit_id: Some(o.unit_id.to_string()),
                    staff_category: Some(o.staff_category.as_str()),
                    post: Some(o.position.to_string()),
                }),
                Fact::PositionAssigned(a) => rows.placements.push(PlacementRow {
                    event_id: id,
                    position: pos,
                    official_id: a.official_id.to_string(),
                    effective_date: date,
                    kind: "assigned",
                    unit_id: Some(a.unit_id.to_string()),
                    staff_category: Some(a.staff_category.as_str()),
                    post: Some(a.position.to_string()),
                }),
                Fact::Left(l) => rows.placements.push(PlacementRow {
                    event_id: id,
                    position: pos,
                    official_id: l.official_id.to_string(),
                    effective_date: date,
                    kind: "left",
                    unit_id: None,
                    staff_category: None,
                    post: None,
                }),
                Fact::QualificationRecorded(q) => rows.qualifications.push(QualificationRow {
                    event_id: id,
                    position: pos,
                    official_id: q.official_id.to_string(),
                    effective_date: date,
                    track: q.track.as_str(),
                    rank: q.track.rank(&q.level).map(i16::from),
                    level: q.level.to_string(),
                    specialty: q.specialty.map(|s| s.to_string()),
                    source_enrollment_id: q.source_enrollment_id.map(|s| s.to_string()),
                }),
                Fact::Planned(p) => rows.plans.push(PlanRow {
                    event_id: id,
                    position: pos,
                    official_id: p.official_id.to_string(),
                    effective_date: date,
                    target_position: p.target_position.to_string(),
                    period_from: p.period_from.value(),
                    period_to: p.period_to.value(),
                    planned_specialty: p.planned_specialty.map(|s| s.to_string()),
                }),
                Fact::Rated(r) => rows.ratings.push((
                    id,
                    pos,
                    r.official_id.to_string(),
                    date,
                    r.year.value(),
                    r.rating.as_str().to_owned(),
                )),
                Fact::TrainingNominated(n) => {
                    let mut funding = [0i128; 5];
                    for line in &n.funding {
                        let slot = match line.source {
                            FundingSource::Province => 0,
                            FundingSource::District => 1,
                            FundingSource::Agency => 2,
                            FundingSource::SelfFunded => 3,
                            FundingSource::Other => 4,
                        };
                        // At most 2^53 lines of 2^53 each fit in i128.
                        funding[slot] += i128::from(line.amount_vnd.amount());
                    }
                    rows.places.push(PlaceRow {
                        event_id: id,
                        position: pos,
                        enrollment_id: n.enrollment_id.to_string(),
                        official_id: n.official_id.to_string(),
                        nominating_unit_id: n.nominating_unit_id.to_string(),
                        effective_date: date,
                        track: n.program.track.as_str(),
                        rank: n
                            .program
                            .level
                            .as_ref()
                            .and_then(|l| n.program.track.rank(l))
                            .map(i16::from),
                        level: n.program.level.map(|l| l.to_string()),
                        specialty: n.program.specialty.map(|s| s.to_string()),
                        institution_id: n.institution.institution_id.to_string(),
                        in_province: n.institution.in_province,
                        funding,
                    });
                }
                Fact::TrainingEnrolled(s) => {
                    rows.steps
                        .push((id, pos, s.enrollment_id.to_string(), date, "enrolled"))
                }
                Fact::TrainingCompleted(s) => {
                    rows.steps
                        .push((id, pos, s.enrollment_id.to_string(), date, "completed"))
                }
                Fact::TrainingFailed(s) => {
                    rows.steps
                        .push((id, pos, s.enrollment_id.to_string(), date, "failed"))
                }
                Fact::TrainingWithdrawn(s) => {
                    rows.steps
                        .push((id, pos, s.enrollment_id.to_string(), date, "withdrawn"))
                }
                Fact::TrainingCancelled(s) => {
                    rows.steps
                        .push((id, pos, s.enrollment_id.to_string(), date, "cancelled"))
                }
            }
        }
        Ok(rows)
    }

    /// One statement per table, its rows passed as one array per column:
    /// the statement's text does not depend on the batch, so PostgreSQL
    /// parses and plans it once per connection instead of a VALUES list of
    /// thousands of parameters per batch.
    async fn write(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        s: &str,
    ) -> Result<(), ProjectionError> {
        if !self.retractions.is_empty() {
            let r = &self.retractions;
            sqlx::query(&format!(
                "INSERT INTO {s}.retractions (event_id, position, retraction_id) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[])"
            ))
            .bind(r.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.2).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db("writing retractions"))?;
        }
        if !self.references.is_empty() {
            let r = &self.references;
            sqlx::query(&format!(
                "INSERT INTO {s}.reference_data (event_id, position, kind, name, effective_date, content) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::date[], $6::jsonb[])"
            ))
            .bind(r.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.3.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.4).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.5.clone()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db("writing reference data"))?;
        }
        if !self.units.is_empty() {
            let r = &self.units;
            sqlx::query(&format!(
                "INSERT INTO {s}.unit_facts (event_id, position, unit_id, effective_date, registered, \
                     name, level, parent_id, dissolved_into) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[], $5::bool[], \
                     $6::text[], $7::text[], $8::text[], $9::text[])"
            ))
            .bind(r.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.unit_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.effective_date).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.registered).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.name.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.level.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.parent_id.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.dissolved_into.as_deref()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db("writing unit facts"))?;
        }
        if !self.placements.is_empty() {
            let r = &self.placements;
            sqlx::query(&format!(
                "INSERT INTO {s}.placements (event_id, position, official_id, effective_date, kind, \
                     unit_id, staff_category, post) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[], $5::text[], \
                     $6::text[], $7::text[], $8::text[])"
            ))
            .bind(r.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.official_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.effective_date).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.kind).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.unit_id.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.staff_category).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.post.as_deref()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db("writing placements"))?;
        }
        if !self.qualifications.is_empty() {
            let r = &self.qualifications;
            sqlx::query(&format!(
                "INSERT INTO {s}.qualifications (event_id, position, official_id, effective_date, \
                     track, level, rank, specialty, source_enrollment_id) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[], $5::text[], \
                     $6::text[], $7::smallint[], $8::text[], $9::text[])"
            ))
            .bind(r.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.official_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.effective_date).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.track).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.level.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.rank).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.specialty.as_deref()).collect::<Vec<_>>())
            .bind(
                r.iter()
                    .map(|r| r.source_enrollment_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **tx)
            .await
            .map_err(db("writing qualifications"))?;
        }
        if !self.plans.is_empty() {
            let r = &self.plans;
            sqlx::query(&format!(
                "INSERT INTO {s}.plans (event_id, position, official_id, effective_date, \
                     target_position, period_from, period_to, planned_specialty) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[], $5::text[], \
                     $6::int[], $7::int[], $8::text[])"
            ))
            .bind(r.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.official_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.effective_date).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.target_position.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.period_from).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.period_to).collect::<Vec<_>>())
            .bind(
                r.iter()
                    .map(|r| r.planned_specialty.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **tx)
            .await
            .map_err(db("writing plans"))?;
        }
        if !self.ratings.is_empty() {
            let r = &self.ratings;
            sqlx::query(&format!(
                "INSERT INTO {s}.ratings (event_id, position, official_id, effective_date, year, rating) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[], $5::int[], $6::text[])"
            ))
            .bind(r.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.3).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.4).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.5.as_str()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db("writing ratings"))?;
        }
        if !self.places.is_empty() {
            let r = &self.places;
            // Sent as decimal text into `numeric` (sqlx has no i128).
            let funding = |slot: usize| {
                r.iter()
                    .map(|r| r.funding[slot].to_string())
                    .collect::<Vec<String>>()
            };
            sqlx::query(&format!(
                "INSERT INTO {s}.places (event_id, position, enrollment_id, official_id, \
                     nominating_unit_id, effective_date, track, level, rank, specialty, \
                     institution_id, in_province, funding_province, funding_district, \
                     funding_agency, funding_self, funding_other) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                     $6::date[], $7::text[], $8::text[], $9::smallint[], $10::text[], $11::text[], \
                     $12::bool[], $13::text[]::numeric[], $14::text[]::numeric[], \
                     $15::text[]::numeric[], $16::text[]::numeric[], $17::text[]::numeric[])"
            ))
            .bind(r.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.enrollment_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.official_id.as_str()).collect::<Vec<_>>())
            .bind(
                r.iter()
                    .map(|r| r.nominating_unit_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(r.iter().map(|r| r.effective_date).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.track).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.level.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.rank).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.specialty.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.institution_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.in_province).collect::<Vec<_>>())
            .bind(funding(0))
            .bind(funding(1))
            .bind(funding(2))
            .bind(funding(3))
            .bind(funding(4))
            .execute(&mut **tx)
            .await
            .map_err(db("writing training places"))?;
        }
        if !self.steps.is_empty() {
            let r = &self.steps;
            sqlx::query(&format!(
                "INSERT INTO {s}.place_steps (event_id, position, enrollment_id, effective_date, state) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[], $5::text[])"
            ))
            .bind(r.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.3).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.4).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db("writing training steps"))?;
        }
        // Each enrolled step with its place: the enrollment's latest place
        // row before it (written above when in the same batch).
        let enrolled: Vec<_> = self.steps.iter().filter(|r| r.4 == "enrolled").collect();
        if !enrolled.is_empty() {
            let ids: Vec<uuid::Uuid> = enrolled.iter().map(|r| r.0).collect();
            let positions: Vec<i64> = enrolled.iter().map(|r| r.1).collect();
            let enrollments: Vec<&str> = enrolled.iter().map(|r| r.2.as_str()).collect();
            let dates: Vec<chrono::NaiveDate> = enrolled.iter().map(|r| r.3).collect();
            sqlx::query(&format!(
                "INSERT INTO {s}.enrolled_places (event_id, position, enrollment_id, effective_date, \
                     nominating_unit_id, track, level, funding_province, funding_district, \
                     funding_agency, funding_self, funding_other) \
                 SELECT u.event_id, u.position, u.enrollment_id, u.effective_date, \
                        p.nominating_unit_id, p.track, p.level, p.funding_province, \
                        p.funding_district, p.funding_agency, p.funding_self, p.funding_other \
                 FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::date[]) \
                      AS u(event_id, position, enrollment_id, effective_date) \
                 CROSS JOIN LATERAL (SELECT * FROM {s}.places p \
                     WHERE p.enrollment_id = u.enrollment_id AND p.position < u.position \
                     ORDER BY p.position DESC LIMIT 1) p"
            ))
            .bind(&ids)
            .bind(&positions)
            .bind(&enrollments)
            .bind(&dates)
            .execute(&mut **tx)
            .await
            .map_err(db("writing enrolled places"))?;
        }
        Ok(())
    }
}
