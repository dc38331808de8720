//! The projector: reads the ledger in global order from its checkpoint and
//! writes the read models, the checkpoint in the same transaction as the
//! rows (a crash replays nothing twice and skips nothing).
//!
//! It reads the batch before its transaction writes anything, so the
//! transaction takes a transaction id only for its short write phase (a
//! transaction id held open would hold the sequencer back). One projector
//! per schema at a time: a transaction-scoped advisory lock.

use std::future::Future;
use std::time::Duration;

use sqlx::{PgPool, Postgres, QueryBuilder};
use tledger_events::{Fact, FactType, FundingSource};
use tledger_store::{LedgerEvent, Store, StoreError};
use tokio::sync::Notify;

use crate::schema::{self, ddl};

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
pub async fn ensure_schema(pool: &PgPool, schema: &str) -> Result<(), ProjectionError> {
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
    sqlx::raw_sql(&ddl(schema))
        .execute(pool)
        .await
        .map_err(db("creating the read-model tables"))?;
    Ok(())
}

/// The position the read models of `schema` have reached.
pub async fn checkpoint(pool: &PgPool, schema: &str) -> Result<u64, ProjectionError> {
    let position: i64 = sqlx::query_scalar(&format!("SELECT position FROM {schema}.checkpoint"))
        .fetch_one(pool)
        .await
        .map_err(db("reading the projection checkpoint"))?;
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Writes the read models of one schema.
#[derive(Clone, Debug)]
pub struct Projector {
    store: Store,
    schema: String,
    batch_size: u32,
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
        }
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
    pub async fn step(&self) -> Result<usize, ProjectionError> {
        let pool = self.store.pool();
        let mut tx = pool
            .begin()
            .await
            .map_err(db("starting a projection batch"))?;
        // Asynchronous commit: a batch lost with a PostgreSQL crash is
        // projected again from the checkpoint committed with it (ADR 8).
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1), set_config('synchronous_commit', 'off', true)",
        )
        .bind(lock_key(&self.schema))
        .execute(&mut *tx)
        .await
        .map_err(db("taking the projector lock"))?;
        let after: i64 =
            sqlx::query_scalar(&format!("SELECT position FROM {}.checkpoint", self.schema))
                .fetch_one(&mut *tx)
                .await
                .map_err(db("reading the projection checkpoint"))?;
        let events = self
            .store
            .read_ledger(u64::try_from(after).unwrap_or(0), self.batch_size)
            .await?;
        let Some(last) = events.last().map(|e| e.position) else {
            tx.rollback().await.map_err(db("ending an empty batch"))?;
            return Ok(0);
        };
        let rows = Rows::from_events(&events)?;
        rows.write(&mut tx, &self.schema).await?;
        sqlx::query(&format!(
            "UPDATE {}.checkpoint SET position = $1",
            self.schema
        ))
        .bind(i64_of(last))
        .execute(&mut *tx)
        .await
        .map_err(db("moving the projection checkpoint"))?;
        tx.commit()
            .await
            .map_err(db("committing a projection batch"))?;
        metrics_position(&self.schema, last);
        Ok(events.len())
    }

    /// Projects until the ledger's head, then returns the checkpoint.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        while self.step().await? > 0 {}
        checkpoint(self.store.pool(), &self.schema).await
    }

    /// Runs until `shutdown`, projecting whenever woken and at least every
    /// `idle` interval.
    pub async fn run(
        self,
        wake: std::sync::Arc<Notify>,
        idle: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let progressed = match self.step().await {
                Ok(n) => n > 0,
                Err(error) => {
                    tracing::warn!(%error, "projection batch failed; retrying");
                    false
                }
            };
            if progressed {
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

fn metrics_position(schema: &str, position: u64) {
    tracing::trace!(schema, position, "projected");
}

/// Rebuilds the read models from position 0 into `rm_next` beside the live
/// ones (reports keep answering from `rm`), then swaps them in atomically
/// once caught up. Returns the position reached.
pub async fn rebuild(store: &Store) -> Result<u64, ProjectionError> {
    let pool = store.pool();
    let next = "rm_next";
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {next} CASCADE"))
        .execute(pool)
        .await
        .map_err(db("dropping an unfinished rebuild"))?;
    ensure_schema(pool, next).await?;
    let projector = Projector::for_schema(store.clone(), next).with_batch_size(5000);
    projector.catch_up().await?;
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
    funding: [i64; 5],
}

impl Rows {
    fn from_events(events: &[LedgerEvent]) -> Result<Self, ProjectionError> {
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
                Fact::from_data(fact_type, &e.data).map_err(|err| corrupt(err.to_string()))?;
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
                    let mut funding = [0i64; 5];
                    for line in &n.funding {
                        let slot = match line.source {
                            FundingSource::Province => 0,
                            FundingSource::District => 1,
                            FundingSource::Agency => 2,
                            FundingSource::SelfFunded => 3,
                            FundingSource::Other => 4,
                        };
                        funding[slot] = funding[slot].saturating_add(line.amount_vnd.amount());
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

    async fn write(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        s: &str,
    ) -> Result<(), ProjectionError> {
        // Each table in chunks that stay far below PostgreSQL's 65,535
        // parameters per statement.
        const CHUNK: usize = 2000;
        for chunk in self.retractions.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.retractions (event_id, position, retraction_id) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.0).push_bind(r.1).push_bind(r.2);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing retractions"))?;
        }
        for chunk in self.references.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.reference_data (event_id, position, kind, name, effective_date, content) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(&r.2)
                    .push_bind(&r.3)
                    .push_bind(r.4)
                    .push_bind(&r.5);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing reference data"))?;
        }
        for chunk in self.units.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.unit_facts (event_id, position, unit_id, effective_date, registered, name, level, parent_id, dissolved_into) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.event_id)
                    .push_bind(r.position)
                    .push_bind(&r.unit_id)
                    .push_bind(r.effective_date)
                    .push_bind(r.registered)
                    .push_bind(&r.name)
                    .push_bind(&r.level)
                    .push_bind(&r.parent_id)
                    .push_bind(&r.dissolved_into);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing unit facts"))?;
        }
        for chunk in self.placements.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.placements (event_id, position, official_id, effective_date, kind, unit_id, staff_category, post) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.event_id)
                    .push_bind(r.position)
                    .push_bind(&r.official_id)
                    .push_bind(r.effective_date)
                    .push_bind(r.kind)
                    .push_bind(&r.unit_id)
                    .push_bind(r.staff_category)
                    .push_bind(&r.post);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing placements"))?;
        }
        for chunk in self.qualifications.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.qualifications (event_id, position, official_id, effective_date, track, level, rank, specialty, source_enrollment_id) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.event_id)
                    .push_bind(r.position)
                    .push_bind(&r.official_id)
                    .push_bind(r.effective_date)
                    .push_bind(r.track)
                    .push_bind(&r.level)
                    .push_bind(r.rank)
                    .push_bind(&r.specialty)
                    .push_bind(&r.source_enrollment_id);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing qualifications"))?;
        }
        for chunk in self.plans.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.plans (event_id, position, official_id, effective_date, target_position, period_from, period_to, planned_specialty) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.event_id)
                    .push_bind(r.position)
                    .push_bind(&r.official_id)
                    .push_bind(r.effective_date)
                    .push_bind(&r.target_position)
                    .push_bind(r.period_from)
                    .push_bind(r.period_to)
                    .push_bind(&r.planned_specialty);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing plans"))?;
        }
        for chunk in self.ratings.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.ratings (event_id, position, official_id, effective_date, year, rating) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(&r.2)
                    .push_bind(r.3)
                    .push_bind(r.4)
                    .push_bind(&r.5);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing ratings"))?;
        }
        for chunk in self.places.chunks(CHUNK / 2) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.places (event_id, position, enrollment_id, official_id, nominating_unit_id, effective_date, track, level, rank, specialty, institution_id, in_province, funding_province, funding_district, funding_agency, funding_self, funding_other) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.event_id)
                    .push_bind(r.position)
                    .push_bind(&r.enrollment_id)
                    .push_bind(&r.official_id)
                    .push_bind(&r.nominating_unit_id)
                    .push_bind(r.effective_date)
                    .push_bind(r.track)
                    .push_bind(&r.level)
                    .push_bind(r.rank)
                    .push_bind(&r.specialty)
                    .push_bind(&r.institution_id)
                    .push_bind(r.in_province);
                for amount in r.funding {
                    b.push_bind(amount);
                }
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing training places"))?;
        }
        for chunk in self.steps.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO {s}.place_steps (event_id, position, enrollment_id, effective_date, state) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(&r.2)
                    .push_bind(r.3)
                    .push_bind(r.4);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(db("writing training steps"))?;
        }
        // Each enrolled step with its place: the enrollment's latest place
        // row before it (written above when in the same batch).
        let enrolled: Vec<_> = self.steps.iter().filter(|r| r.4 == "enrolled").collect();
        for chunk in enrolled.chunks(CHUNK) {
            let ids: Vec<uuid::Uuid> = chunk.iter().map(|r| r.0).collect();
            let positions: Vec<i64> = chunk.iter().map(|r| r.1).collect();
            let enrollments: Vec<&str> = chunk.iter().map(|r| r.2.as_str()).collect();
            let dates: Vec<chrono::NaiveDate> = chunk.iter().map(|r| r.3).collect();
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
