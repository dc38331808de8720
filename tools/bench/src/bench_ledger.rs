//! What `tledger bench rebuild` and `tledger bench reports` share
//! (docs/benchmarks.md): the benchmark's own database with its free-space
//! check, a synthetic country of provinces, districts and communes, and a
//! bulk loader that writes facts straight into the event table with the
//! positions, `recorded_at` and chain hashes the sequencer would have given
//! them.
//!
//! Sending millions of commands would take hours on the machines these
//! benchmarks run on, and what they measure (the projector, the reports)
//! reads the ledger, not the command path; so the ledger is loaded with
//! `COPY`. It stays a ledger the command path could have written: every
//! fact is built as a command would carry it and parsed with
//! `Fact::from_data`, units and officials are registered before the facts
//! that name them, each stream's versions follow on from 1, each
//! enrollment's steps keep their order and dates, and the chain hashes are
//! computed with `tledger_events::chain` (a sample is read back and
//! checked).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use tledger_events::chain::{self, ChainRecord, Hash};
use tledger_events::{AggregateKind, Fact, FactType};
use tledger_projections::projector::ProjectionError;
use tledger_store::{EventMetadata, Store, StoreError};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::bench::{self, BenchDatabase, BenchError};
use tledger::config::{redact_url, Settings};
use tledger::startup::{self, StartupError};

/// Why `bench rebuild` or `bench reports` could not run (or ran with wrong
/// answers).
#[derive(Debug, thiserror::Error)]
pub enum LedgerBenchError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(
        "only {free_mib} MiB are free on {mount} ({what}); this run needs about {need_mib} MiB: \
         free some space, choose smaller sizes, or run it where more space is free"
    )]
    LowDisk {
        what: &'static str,
        mount: String,
        free_mib: u64,
        need_mib: u64,
    },
    #[error("the benchmark's private PostgreSQL cluster: {0}")]
    Cluster(String),
    #[error("generating the synthetic ledger: {0}")]
    Generate(String),
    #[error("the loaded ledger's chain does not verify at position {position}: {reason}")]
    Chain { position: u64, reason: String },
    #[error(
        "{failed} of {total} checks of the benchmark's results failed; the report in {} says \
         which",
        out.display()
    )]
    Failures {
        failed: usize,
        total: usize,
        out: PathBuf,
    },
}

/// Communes per district before the 2025 reform.
const COMMUNES_PER_DISTRICT: usize = 10;
/// Facts per `recorded_at`, as the sequencer's batches give them.
const SEQUENCER_BATCH: usize = 1000;
/// Bytes of `COPY` text handed to PostgreSQL at a time.
const CHUNK_BYTES: usize = 4 << 20;
/// Facts read back to check the chain, at the start and at the end.
const CHAIN_SAMPLE: u32 = 200;

/// The cadre and civil-servant posts of the shipped taxonomy (nd92-2009),
/// with their staff category.
pub(crate) const POSTS: [(&str, &str); 18] = [
    ("party_secretary", "cadre"),
    ("deputy_party_secretary", "cadre"),
    ("council_chair", "cadre"),
    ("council_vice_chair", "cadre"),
    ("committee_chair", "cadre"),
    ("committee_vice_chair", "cadre"),
    ("front_chair", "cadre"),
    ("youth_union_secretary", "cadre"),
    ("women_union_chair", "cadre"),
    ("farmers_union_chair", "cadre"),
    ("veterans_union_chair", "cadre"),
    ("police_chief", "civil_servant"),
    ("military_commander", "civil_servant"),
    ("office_statistics", "civil_servant"),
    ("land_construction", "civil_servant"),
    ("finance_accounting", "civil_servant"),
    ("justice_civil_status", "civil_servant"),
    ("culture_social", "civil_servant"),
];

/// The results a completion may record.
pub(crate) const RESULTS: [&str; 4] = ["excellent", "good", "fair", "pass"];

/// The date of the 2025 reform that abolished the district level.
pub(crate) fn reform_date() -> NaiveDate {
    date(2025, 7, 1)
}

/// A valid calendar date (the benchmarks only name such dates).
pub(crate) fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Provinces, each with districts of ten communes until the 2025 reform,
/// when the communes move directly under their province.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Country {
    pub provinces: usize,
    pub communes: usize,
}

impl Country {
    /// The province a commune is in: communes are spread evenly, in order.
    pub(crate) fn province_of(&self, commune: usize) -> usize {
        commune * self.provinces / self.communes
    }

    /// The communes of province `p`, by index.
    pub(crate) fn communes_of(&self, p: usize) -> Range<usize> {
        let first = |p: usize| (p * self.communes).div_ceil(self.provinces);
        first(p)..first(p + 1)
    }

    pub(crate) fn province_id(p: usize) -> String {
        format!("p{:02}", p + 1)
    }

    fn district_id(p: usize, local: usize) -> String {
        format!("p{:02}-d{:03}", p + 1, local + 1)
    }

    pub(crate) fn commune_id(&self, commune: usize) -> String {
        format!("p{:02}-c{:04}", self.province_of(commune) + 1, commune + 1)
    }

    pub(crate) fn districts(&self) -> usize {
        (0..self.provinces)
            .map(|p| self.communes_of(p).len().div_ceil(COMMUNES_PER_DISTRICT))
            .sum()
    }

    /// Registers every province, district and commune (effective
    /// 1997-01-01) and, with `reform`, moves each commune under its
    /// province on 2025-07-01.
    pub(crate) fn emit_units(
        &self,
        writer: &mut ChainWriter,
        reform: bool,
    ) -> Result<(), LedgerBenchError> {
        let registered = "1997-01-01";
        for p in 0..self.provinces {
            let data = json!({"unit_id": Self::province_id(p), "name": format!("Tỉnh {:02}", p + 1),
                "level": "province", "effective_date": registered});
            writer.push(&fact(FactType::UnitRegistered, &data)?, 1)?;
        }
        for p in 0..self.provinces {
            let districts = self.communes_of(p).len().div_ceil(COMMUNES_PER_DISTRICT);
            for d in 0..districts {
                let data = json!({"unit_id": Self::district_id(p, d),
                    "name": format!("Huyện {:03} ({:02})", d + 1, p + 1), "level": "district",
                    "parent_id": Self::province_id(p), "effective_date": registered});
                writer.push(&fact(FactType::UnitRegistered, &data)?, 1)?;
            }
        }
        for p in 0..self.provinces {
            let communes = self.communes_of(p);
            let first = communes.start;
            for c in communes {
                let data = json!({"unit_id": self.commune_id(c), "name": format!("Xã {:04}", c + 1),
                    "level": "commune",
                    "parent_id": Self::district_id(p, (c - first) / COMMUNES_PER_DISTRICT),
                    "effective_date": registered});
                writer.push(&fact(FactType::UnitRegistered, &data)?, 1)?;
            }
        }
        if reform {
            for c in 0..self.communes {
                let data = json!({"unit_id": self.commune_id(c),
                    "parent_id": Self::province_id(self.province_of(c)),
                    "effective_date": day(reform_date())});
                writer.push(&fact(FactType::UnitReorganised, &data)?, 2)?;
            }
        }
        Ok(())
    }
}

/// Parses `data` as a fact of `fact_type`, as a command's body would be.
pub(crate) fn fact(fact_type: FactType, data: &Value) -> Result<Fact, LedgerBenchError> {
    Fact::from_data(fact_type, data).map_err(|e| {
        LedgerBenchError::Generate(format!("a {fact_type} fact does not parse: {e}: {data}"))
    })
}

/// Turns facts into `COPY` rows of the event table with their positions,
/// `recorded_at` and chain hashes, and hands them to the loader in chunks.
/// Runs on a blocking thread, beside the `COPY` it feeds.
pub(crate) struct ChainWriter {
    position: u64,
    previous: Hash,
    last_recorded: Option<DateTime<Utc>>,
    recorded_text: String,
    batch_left: usize,
    buffer: Vec<u8>,
    sender: mpsc::Sender<Vec<u8>>,
    metadata: Value,
    metadata_text: String,
    counts: BTreeMap<String, u64>,
}

/// Where the chain ended.
struct ChainEnd {
    position: u64,
    hash: Hash,
    recorded_at: Option<DateTime<Utc>>,
    counts: BTreeMap<String, u64>,
}

const PUBLISHER: &str = "/tledger/bench";

impl ChainWriter {
    fn new(
        position: u64,
        previous: Hash,
        last_recorded: Option<DateTime<Utc>>,
        sender: mpsc::Sender<Vec<u8>>,
    ) -> Result<Self, LedgerBenchError> {
        let metadata = EventMetadata {
            publisher: PUBLISHER.into(),
            actor: "bench".into(),
            ..EventMetadata::default()
        };
        let metadata_text = serde_json::to_string(&metadata)
            .map_err(|e| LedgerBenchError::Generate(format!("metadata: {e}")))?;
        let metadata = serde_json::from_str(&metadata_text)
            .map_err(|e| LedgerBenchError::Generate(format!("metadata: {e}")))?;
        Ok(Self {
            position,
            previous,
            last_recorded,
            recorded_text: String::new(),
            batch_left: 0,
            buffer: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            sender,
            metadata,
            metadata_text,
            counts: BTreeMap::new(),
        })
    }

    /// Appends `fact` at `version` of its stream, as the next position;
    /// returns its event id.
    pub(crate) fn push(&mut self, fact: &Fact, version: u64) -> Result<Uuid, LedgerBenchError> {
        let stream = fact.stream().ok_or_else(|| {
            LedgerBenchError::Generate("a retraction names the stream it goes to".into())
        })?;
        self.push_to(fact, stream.aggregate, &stream.id, version)
    }

    /// Appends `fact` at `version` of the stream `<aggregate>-<id>` (a
    /// retraction goes to the stream of the fact it retracts).
    pub(crate) fn push_to(
        &mut self,
        fact: &Fact,
        aggregate: AggregateKind,
        id: &str,
        version: u64,
    ) -> Result<Uuid, LedgerBenchError> {
        if self.batch_left == 0 {
            // recorded_at never decreases, as the sequencer keeps it.
            let now = Utc::now().trunc_subsecs(6);
            let recorded = self.last_recorded.map_or(now, |last| last.max(now));
            self.last_recorded = Some(recorded);
            self.recorded_text = chain::format_instant(recorded);
            self.batch_left = SEQUENCER_BATCH;
        }
        self.batch_left -= 1;
        self.position += 1;
        let data = fact.data();
        let event_id = Uuid::now_v7();
        let event_type = fact.fact_type().as_str();
        let aggregate = aggregate.as_str();
        let stream_name = format!("{aggregate}-{id}");
        let record = ChainRecord {
            position: self.position,
            event_id,
            stream: &stream_name,
            version,
            event_type,
            effective_date: fact.effective_date(),
            recorded_at: self.recorded_text.clone(),
            data: &data,
            metadata: &self.metadata,
        };
        let hash = chain::event_hash(&self.previous, &record)
            .map_err(|e| LedgerBenchError::Generate(e.to_string()))?;
        self.previous = hash;

        // event_id, aggregate_type, aggregate_id, version, event_type,
        // schema_version, data, metadata, effective_date, publisher, actor,
        // position, recorded_at, hash (COPY's text format).
        let b = &mut self.buffer;
        push_text(b, &event_id.to_string());
        b.push(b'\t');
        push_text(b, aggregate);
        b.push(b'\t');
        push_text(b, id);
        b.push(b'\t');
        b.extend_from_slice(version.to_string().as_bytes());
        b.push(b'\t');
        push_text(b, event_type);
        b.extend_from_slice(b"\t1\t");
        push_text(b, &data.to_string());
        b.push(b'\t');
        push_text(b, &self.metadata_text);
        b.push(b'\t');
        b.extend_from_slice(fact.effective_date().to_string().as_bytes());
        b.push(b'\t');
        push_text(b, PUBLISHER);
        b.extend_from_slice(b"\tbench\t");
        b.extend_from_slice(self.position.to_string().as_bytes());
        b.push(b'\t');
        b.extend_from_slice(self.recorded_text.as_bytes());
        b.extend_from_slice(b"\t\\\\x");
        b.extend_from_slice(hex::encode(hash).as_bytes());
        b.push(b'\n');
        *self.counts.entry(event_type.to_owned()).or_insert(0) += 1;
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(event_id)
    }

    fn flush(&mut self) -> Result<(), LedgerBenchError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
        );
        self.sender
            .blocking_send(chunk)
            .map_err(|_| LedgerBenchError::Generate("the COPY into events stopped".into()))
    }

    fn finish(mut self) -> Result<ChainEnd, LedgerBenchError> {
        self.flush()?;
        Ok(ChainEnd {
            position: self.position,
            hash: self.previous,
            recorded_at: self.last_recorded,
            counts: std::mem::take(&mut self.counts),
        })
    }
}

/// `text` escaped for `COPY`'s text format.
fn push_text(buffer: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        match b {
            b'\\' => buffer.extend_from_slice(b"\\\\"),
            b'\t' => buffer.extend_from_slice(b"\\t"),
            b'\n' => buffer.extend_from_slice(b"\\n"),
            b'\r' => buffer.extend_from_slice(b"\\r"),
            _ => buffer.push(b),
        }
    }
}

const COPY_EVENTS: &str = "COPY events (event_id, aggregate_type, aggregate_id, version, \
     event_type, schema_version, data, metadata, effective_date, publisher, actor, position, \
     recorded_at, hash) FROM STDIN";

/// What a bulk load wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Loaded {
    /// Facts loaded now.
    pub facts: u64,
    /// The ledger head afterwards (the shipped reference facts included).
    pub head: u64,
    /// Facts loaded now, by type.
    pub by_type: BTreeMap<String, u64>,
    pub seconds: f64,
    pub facts_per_s: f64,
    /// Bytes of `COPY` text sent.
    pub copy_bytes: u64,
    /// Facts whose chain hash was read back and recomputed.
    pub chain_checked: u64,
}

/// Loads the facts `generate` pushes after the ledger's head, in one
/// transaction: one `COPY` into `events`, fed while the facts are made on
/// a blocking thread, then the head; returns what was loaded and what
/// `generate` returned. No sequencer may run meanwhile (none does: the
/// benchmarks do not start the service while loading).
pub(crate) async fn bulk_load<G, T>(
    store: &Store,
    generate: G,
) -> Result<(Loaded, T), LedgerBenchError>
where
    G: FnOnce(&mut ChainWriter) -> Result<T, LedgerBenchError> + Send + 'static,
    T: Send + 'static,
{
    let started = Instant::now();
    let mut tx = store
        .pool()
        .begin()
        .await
        .map_err(BenchError::db("starting the bulk load"))?;
    let head = sqlx::query("SELECT position, recorded_at, hash FROM ledger_head FOR UPDATE")
        .fetch_one(&mut *tx)
        .await
        .map_err(BenchError::db("reading the ledger head"))?;
    let before = u64::try_from(head.get::<i64, _>("position")).unwrap_or(0);
    let last_recorded: Option<DateTime<Utc>> = head.get("recorded_at");
    let previous: Hash = head
        .get::<Vec<u8>, _>("hash")
        .try_into()
        .unwrap_or(chain::GENESIS);

    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(4);
    let writer = ChainWriter::new(before, previous, last_recorded, sender)?;
    let producer = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let generated = generate(&mut writer)?;
        Ok::<_, LedgerBenchError>((writer.finish()?, generated))
    });
    let mut copy = tx
        .copy_in_raw(COPY_EVENTS)
        .await
        .map_err(BenchError::db("starting the COPY into events"))?;
    let mut copy_bytes = 0u64;
    let mut sent = Ok(());
    while let Some(chunk) = receiver.recv().await {
        copy_bytes += chunk.len() as u64;
        if let Err(e) = copy.send(chunk).await {
            sent = Err(e);
            break;
        }
    }
    // The generator stops once the channel is gone.
    drop(receiver);
    let end = producer
        .await
        .map_err(|e| LedgerBenchError::Generate(format!("the generator failed: {e}")));
    let (end, generated) = match (sent, end) {
        (Ok(()), Ok(Ok(end))) => end,
        (Err(e), _) => {
            return Err(BenchError::db("copying facts into events")(e).into());
        }
        (Ok(()), Ok(Err(e)) | Err(e)) => {
            let _ = copy.abort("the generator failed").await;
            return Err(e);
        }
    };
    copy.finish()
        .await
        .map_err(BenchError::db("finishing the COPY into events"))?;
    sqlx::query("UPDATE ledger_head SET position = $1, recorded_at = $2, hash = $3")
        .bind(i64::try_from(end.position).unwrap_or(i64::MAX))
        .bind(end.recorded_at)
        .bind(end.hash.to_vec())
        .execute(&mut *tx)
        .await
        .map_err(BenchError::db("moving the ledger head"))?;
    tx.commit()
        .await
        .map_err(BenchError::db("committing the bulk load"))?;
    let seconds = started.elapsed().as_secs_f64();
    let facts = end.position - before;

    let mut chain_checked = check_chain(store, before, CHAIN_SAMPLE).await?;
    if end.position > before + u64::from(CHAIN_SAMPLE) {
        chain_checked +=
            check_chain(store, end.position - u64::from(CHAIN_SAMPLE), CHAIN_SAMPLE).await?;
    }
    let loaded = Loaded {
        facts,
        head: end.position,
        by_type: end.counts,
        seconds: bench::round3(seconds),
        facts_per_s: bench::round3(facts as f64 / seconds.max(1e-9)),
        copy_bytes,
        chain_checked,
    };
    Ok((loaded, generated))
}

/// Reads `count` events after `after` back from the table and recomputes
/// their chain from the stored hash at `after`, as `tledger verify` would:
/// what was written is what was hashed.
async fn check_chain(store: &Store, after: u64, count: u32) -> Result<u64, LedgerBenchError> {
    let previous: Hash = if after == 0 {
        chain::GENESIS
    } else {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT hash FROM events WHERE position = $1")
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .fetch_one(store.pool())
            .await
            .map_err(BenchError::db("reading a stored hash"))?
            .try_into()
            .map_err(|_| LedgerBenchError::Chain {
                position: after,
                reason: "the stored hash is not 32 bytes".into(),
            })?
    };
    let events = store.read_ledger(after, count).await?;
    let mut previous = previous;
    for event in &events {
        let stream = event.stream();
        let record = event.chain_record(&stream);
        let hash = chain::event_hash(&previous, &record).map_err(|e| LedgerBenchError::Chain {
            position: event.position,
            reason: e.to_string(),
        })?;
        if hash.as_slice() != event.hash.as_slice() {
            return Err(LedgerBenchError::Chain {
                position: event.position,
                reason: "the recomputed hash differs from the stored one".into(),
            });
        }
        previous = hash;
    }
    Ok(events.len() as u64)
}

/// Where and with what a benchmark ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LedgerEnvironment {
    pub cpus: usize,
    pub postgres_version: String,
    pub shared_buffers: String,
    pub synchronous_commit: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) before and after: other work on
    /// the machine shows here.
    pub load_average_before: String,
    pub load_average_after: String,
    /// Free space in the current directory before the run.
    pub free_disk_bytes_before: u64,
    pub free_disk_mount: String,
    /// The server's data directory and its free space, when the server is
    /// on this machine and says where it is.
    pub server_data_directory: Option<String>,
    pub server_free_disk_bytes: Option<u64>,
    /// The estimate the free-space check used.
    pub disk_needed_bytes: u64,
    pub database: String,
    /// With any password replaced by `***`.
    pub database_url: String,
    /// `pg_database_size` at the end of the run.
    pub database_size_bytes: i64,
    pub database_kept: bool,
}

/// The benchmark's own database, migrated (the shipped reference facts
/// recorded, as `tledger migrate` does), with the live read-model schema.
pub(crate) struct Prepared {
    pub(crate) database: BenchDatabase,
    pub(crate) store: Store,
    pub(crate) environment: LedgerEnvironment,
}

/// Checks the free space (the current directory, then the server's data
/// directory where it can be seen), creates and migrates the benchmark's
/// database.
pub(crate) async fn prepare(
    settings: &Settings,
    started_at: &DateTime<Utc>,
    need_bytes: u64,
    keep: bool,
) -> Result<Prepared, LedgerBenchError> {
    let mib = |bytes: u64| bytes / (1024 * 1024);
    let (mount, free) = bench::free_disk().await?;
    if free < bench::MIN_FREE_BYTES {
        return Err(LedgerBenchError::LowDisk {
            what: "the current directory, df -Pk .",
            mount,
            free_mib: mib(free),
            need_mib: mib(bench::MIN_FREE_BYTES),
        });
    }
    let database = BenchDatabase::create(&settings.database_url, started_at).await?;
    let prepared = async {
        let store = startup::ensure_database(&database.url).await?;
        let data_directory: Option<String> = sqlx::query_scalar("SHOW data_directory")
            .fetch_one(store.pool())
            .await
            .ok();
        let mut server_free = None;
        if let Some(directory) = data_directory.as_deref().map(Path::new) {
            if directory.exists() {
                if let Ok((server_mount, available)) = bench::free_disk_at(directory).await {
                    server_free = Some(available);
                    if available < need_bytes {
                        return Err(LedgerBenchError::LowDisk {
                            what: "PostgreSQL's data directory",
                            mount: server_mount,
                            free_mib: mib(available),
                            need_mib: mib(need_bytes),
                        });
                    }
                }
            }
        }
        // The server's disk cannot be seen: the current directory's must do.
        if server_free.is_none() && free < need_bytes {
            return Err(LedgerBenchError::LowDisk {
                what: "the current directory, df -Pk .; the server's data directory is not visible",
                mount: mount.clone(),
                free_mib: mib(free),
                need_mib: mib(need_bytes),
            });
        }
        startup::migrate(&store).await?;
        tledger_projections::projector::ensure_schema(
            store.pool(),
            tledger_projections::schema::LIVE,
        )
        .await?;
        let environment = LedgerEnvironment {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            postgres_version: bench::show(&store, "server_version").await?,
            shared_buffers: bench::show(&store, "shared_buffers").await?,
            synchronous_commit: bench::show(&store, "synchronous_commit").await?,
            load_average_before: bench::load_average(),
            load_average_after: String::new(),
            free_disk_bytes_before: free,
            free_disk_mount: mount.clone(),
            server_data_directory: data_directory,
            server_free_disk_bytes: server_free,
            disk_needed_bytes: need_bytes,
            database: database.name.clone(),
            database_url: redact_url(&database.url),
            database_size_bytes: 0,
            database_kept: keep,
        };
        Ok::<_, LedgerBenchError>((store, environment))
    }
    .await;
    match prepared {
        Ok((store, environment)) => Ok(Prepared {
            database,
            store,
            environment,
        }),
        Err(e) => {
            if let Err(dropped) = database.drop().await {
                bench::progress(&format!(
                    "warning: could not drop the database {}: {dropped}",
                    database.name
                ));
            }
            Err(e)
        }
    }
}

/// Records the database's size and the load average, closes the pool and
/// drops the database unless it is kept.
pub(crate) async fn clean_up(prepared: Prepared, keep: bool) -> LedgerEnvironment {
    let Prepared {
        database,
        store,
        mut environment,
    } = prepared;
    environment.load_average_after = bench::load_average();
    environment.database_size_bytes =
        sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(store.pool())
            .await
            .unwrap_or(0);
    store.pool().close().await;
    if keep {
        bench::progress(&format!("kept the database {}", database.name));
    } else if let Err(e) = database.drop().await {
        bench::progress(&format!(
            "warning: could not drop the database {}: {e}",
            database.name
        ));
    }
    environment
}

/// Row counts of the live read models.
pub(crate) async fn read_model_rows(
    store: &Store,
) -> Result<BTreeMap<String, i64>, LedgerBenchError> {
    let mut rows = BTreeMap::new();
    for table in [
        "unit_facts",
        "reference_data",
        "placements",
        "qualifications",
        "places",
        "place_steps",
        "enrolled_places",
        "retractions",
        "standing",
        "enrolled_by_day",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM rm.{table}"))
            .fetch_one(store.pool())
            .await
            .map_err(BenchError::db("counting read-model rows"))?;
        rows.insert(table.to_owned(), n);
    }
    Ok(rows)
}

/// The environment lines every report starts with.
pub(crate) fn environment_markdown(env: &LedgerEnvironment) -> String {
    format!(
        "Machine: {} CPU(s), shared with other work; PostgreSQL {} (shared_buffers {}, \
         synchronous_commit {}); load average {} before, {} after.",
        env.cpus,
        env.postgres_version,
        env.shared_buffers,
        env.synchronous_commit,
        env.load_average_before,
        env.load_average_after,
    )
}

/// The closing line of every report: the database and the disk.
pub(crate) fn database_markdown(env: &LedgerEnvironment) -> String {
    format!(
        "Database {}: {:.1} MiB at the end of the run ({}). Free disk before: {} MiB on {}{}.",
        env.database,
        env.database_size_bytes as f64 / (1024.0 * 1024.0),
        if env.database_kept { "kept" } else { "dropped" },
        env.free_disk_bytes_before / (1024 * 1024),
        env.free_disk_mount,
        match (&env.server_data_directory, env.server_free_disk_bytes) {
            (Some(dir), Some(free)) => format!(
                "; {} MiB where the server keeps its data ({dir})",
                free / (1024 * 1024)
            ),
            _ => String::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communes_are_spread_evenly_over_the_provinces() {
        let country = Country {
            provinces: 34,
            communes: 3300,
        };
        let mut total = 0;
        for p in 0..34 {
            let communes = country.communes_of(p);
            assert!((97..=98).contains(&communes.len()), "{communes:?}");
            assert!(communes.clone().all(|c| country.province_of(c) == p));
            total += communes.len();
        }
        assert_eq!(total, 3300);
        assert_eq!(country.commune_id(0), "p01-c0001");
        assert_eq!(country.commune_id(3299), "p34-c3300");
        assert_eq!(country.districts(), 34 * 10);
    }

    #[test]
    fn copy_text_escapes_backslashes_and_control_characters() {
        let mut buffer = Vec::new();
        push_text(&mut buffer, "a\\\"b\tc\nd");
        assert_eq!(buffer, b"a\\\\\"b\\tc\\nd");
    }
}
