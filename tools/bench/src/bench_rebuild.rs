//! `tledger bench rebuild`: rebuilding every read model from position 0
//! against what PostgreSQL does to move the same facts without the
//! projector (docs/benchmarks.md).
//!
//! The ledger holds N synthetic facts, a quarter each of
//! `official.registered`, `training.nominated`, `training.enrolled` and
//! `training.completed` (refresher courses, so that no completion implies a
//! qualification the policy would have recorded), after the units they
//! name and the shipped reference facts; it is bulk-loaded (see
//! `bench_ledger`). Each round runs the real rebuild
//! (`tledger_projections::projector::rebuild`, what `tledger projections
//! rebuild` runs: into `rm_next` beside the live schema, then swapped in),
//! then the baseline: `COPY … TO STDOUT` of the same facts in position
//! order streamed into `COPY … FROM STDIN` of one row per fact into a plain
//! table without indexes.
//!
//! Peak memory is this process's: before each rebuild the kernel's
//! high-water mark is reset (`5` into `/proc/self/clear_refs`), and after
//! it `VmHWM` (the peak resident set since the reset) is read from
//! `/proc/self/status`; the growth is that peak less `VmRSS` before the
//! rebuild. The rebuild runs in this process with nothing else going on in
//! it. PostgreSQL's memory is not counted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::json;
use tledger_events::{Fact, FactType};
use tledger_projections::projector;
use tledger_store::Store;

use crate::bench::{self, BenchError};
use crate::bench_ledger::{
    self, date, day, fact, ChainWriter, Country, LedgerBenchError, LedgerEnvironment, Loaded,
    POSTS, RESULTS,
};
use tledger::config::Settings;

/// Facts unless told otherwise (the "at least 1,000,000").
pub const DEFAULT_FACTS: usize = 1_000_000;
pub const DEFAULT_ROUNDS: usize = 3;
/// The targets: at least this share of the baseline's rate ...
pub const TARGET_RATIO: f64 = 0.5;
/// ... and a peak memory growth under this.
pub const TARGET_PEAK_BYTES: u64 = 1 << 30;
/// Provinces and communes of the units the facts name.
pub(crate) const COUNTRY: Country = Country {
    provinces: 34,
    communes: 3300,
};
/// Disk per fact: the event row and its indexes, two copies of the read
/// models during a rebuild, the baseline's table, and WAL; measured about
/// 1.7 kB on a full run, with a margin.
const DISK_PER_FACT: u64 = 3 * 1024;

const BASELINE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_rebuild_baseline (\
     position bigint, event_id uuid, event_type text, effective_date date, data jsonb)";
const BASELINE_OUT: &str = "COPY (SELECT position, event_id, event_type, effective_date, data \
     FROM events WHERE position IS NOT NULL ORDER BY position) TO STDOUT";
const BASELINE_IN: &str = "COPY bench_rebuild_baseline FROM STDIN";

/// What `tledger bench rebuild` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RebuildBench {
    /// Facts of the four types together (a quarter each, rounded down).
    pub facts: usize,
    pub rounds: usize,
    pub out: PathBuf,
    pub keep: bool,
}

impl Default for RebuildBench {
    fn default() -> Self {
        Self {
            facts: DEFAULT_FACTS,
            rounds: DEFAULT_ROUNDS,
            out: PathBuf::from("./bench-results"),
            keep: false,
        }
    }
}

/// This process's memory around one measured step, from
/// `/proc/self/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Memory {
    /// `VmRSS` before the step.
    pub rss_before_bytes: u64,
    /// `VmHWM` after it: the peak since the reset (or since the process
    /// started, when the reset was refused).
    pub peak_rss_bytes: u64,
    /// The peak less the resident set before.
    pub growth_bytes: u64,
    /// Whether the high-water mark could be reset before the step.
    pub peak_reset: bool,
}

/// One measured pass over the ledger.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pass {
    /// Facts read (the rebuild) or rows copied (the baseline).
    pub facts: u64,
    pub seconds: f64,
    pub facts_per_s: f64,
    pub memory: Memory,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RebuildRound {
    pub round: usize,
    pub rebuild: Pass,
    pub baseline: Pass,
}

/// A target and whether the medians meet it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub figure: &'static str,
    pub value: f64,
    pub target: String,
    pub met: bool,
}

/// Everything one `tledger bench rebuild` run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RebuildReport {
    pub benchmark: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub options: RebuildBench,
    pub environment: LedgerEnvironment,
    pub country: Country,
    /// The bulk load (not timed against anything).
    pub load: Loaded,
    pub rounds: Vec<RebuildRound>,
    /// Medians over the rounds.
    pub rebuild_facts_per_s: f64,
    pub baseline_rows_per_s: f64,
    pub ratio: f64,
    pub rebuild_seconds: f64,
    pub baseline_seconds: f64,
    /// The largest growth of any round (the target is judged on it).
    pub peak_growth_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Rows of the live read models after the last rebuild.
    pub read_models: BTreeMap<String, i64>,
    pub profile: RebuildProfile,
    /// Checks of the results (positions reached, rows copied); a failed one
    /// makes the run fail.
    pub checks: Vec<Check>,
    pub targets: Vec<Target>,
    pub targets_met: bool,
}

/// One check of the results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub check: String,
    pub expected: i64,
    pub actual: i64,
    pub ok: bool,
}

impl RebuildReport {
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let o = &self.options;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let _ = writeln!(out, "# tledger bench rebuild, {}\n", self.started_at);
        let _ =
            writeln!(
            out,
            "Rebuilding every read model (`projector::rebuild`, into `rm_next`, then swapped in) \
             over a ledger of {} facts ({} of the four measured types, a quarter each; {} units \
             and {} shipped reference facts before them), against the baseline `COPY … TO \
             STDOUT` of the same facts in position order streamed into `COPY … FROM STDIN` of one \
             row per fact into a plain table, alternating, {} round(s); medians over the \
             rounds.{}\n",
            self.load.head,
            self.measured_facts(),
            self.load.by_type.get("unit.registered.v1").copied().unwrap_or(0)
                + self.load.by_type.get("unit.reorganised.v1").copied().unwrap_or(0),
            self.load.head.saturating_sub(self.load.facts),
            o.rounds,
            if o.facts < DEFAULT_FACTS {
                format!(" **A smoke run: the issue asks for at least {DEFAULT_FACTS} facts.**")
            } else {
                String::new()
            },
        );
        let _ = writeln!(
            out,
            "{}\n",
            bench_ledger::environment_markdown(&self.environment)
        );
        let _ = writeln!(
            out,
            "| figure | rebuild | baseline | ratio | target | met? |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
        let met = |m: bool| if m { "yes" } else { "**no**" };
        let ratio_met = self.targets.iter().any(|t| t.figure == "ratio" && t.met);
        let memory_met = self
            .targets
            .iter()
            .any(|t| t.figure == "peak_growth_bytes" && t.met);
        let _ = writeln!(
            out,
            "| facts/s (rows/s for the baseline) | {:.0} | {:.0} | {:.2} | ≥ {TARGET_RATIO} × baseline | {} |",
            self.rebuild_facts_per_s,
            self.baseline_rows_per_s,
            self.ratio,
            met(ratio_met),
        );
        let _ = writeln!(
            out,
            "| seconds for the whole ledger | {:.1} | {:.1} | — | — | — |",
            self.rebuild_seconds, self.baseline_seconds
        );
        let _ = writeln!(
            out,
            "| peak RSS growth of this process (MiB, largest round) | {:.0} | {:.0} | — | < 1024 MiB | {} |",
            mib(self.peak_growth_bytes),
            mib(self
                .rounds
                .iter()
                .map(|r| r.baseline.memory.growth_bytes)
                .max()
                .unwrap_or(0)),
            met(memory_met),
        );
        let _ = writeln!(
            out,
            "\nTargets {}. Checks: {} of {} failed.{}\n",
            if self.targets_met {
                "met"
            } else {
                "**missed**"
            },
            self.failures(),
            self.checks.len(),
            if self.failures() > 0 {
                " **This run had failed checks: its numbers do not count.**"
            } else {
                ""
            },
        );
        let _ = writeln!(out, "## Rounds\n");
        let _ = writeln!(
            out,
            "| round | rebuild s | facts/s | RSS before MiB | peak RSS MiB | growth MiB | baseline s | rows/s | baseline growth MiB |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.rounds {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} |",
                r.round,
                r.rebuild.seconds,
                r.rebuild.facts_per_s,
                mib(r.rebuild.memory.rss_before_bytes),
                mib(r.rebuild.memory.peak_rss_bytes),
                mib(r.rebuild.memory.growth_bytes),
                r.baseline.seconds,
                r.baseline.facts_per_s,
                mib(r.baseline.memory.growth_bytes),
            );
        }
        let reset = self.rounds.iter().all(|r| r.rebuild.memory.peak_reset);
        let _ = writeln!(
            out,
            "\nMemory: this process's resident set from /proc/self/status; {}. PostgreSQL's \
             memory is not counted.\n",
            if reset {
                "the high-water mark was reset before each step (/proc/self/clear_refs), so the \
                 peak is the step's own"
            } else {
                "**the high-water mark could not be reset, so the peak is since the process \
                 started (an upper bound)**"
            }
        );
        let _ = writeln!(
            out,
            "Bulk load (not measured against anything): {} facts in {:.1} s ({:.0} facts/s), \
             chain hashes of {} facts read back and checked.\n",
            self.load.facts, self.load.seconds, self.load.facts_per_s, self.load.chain_checked
        );
        let p = &self.profile;
        let _ = writeln!(
            out,
            "Where the rebuild's time goes (once, after the rounds): reading the {} facts with \
             `Store::read_facts` in batches of 5,000, one after the other, took {:.1} s; reading \
             and parsing each with `Fact::from_recorded` {:.1} s. The rebuild's {:.1} s (median) \
             overlap that with building the rows and writing them into the read-model tables \
             (three batches are read and parsed ahead, on tasks and connections of their own, \
             while one is written), then build the tables' indexes.\n",
            p.facts, p.read_seconds, p.read_and_parse_seconds, self.rebuild_seconds
        );
        let _ = writeln!(out, "Read models after the last rebuild:");
        for (table, rows) in &self.read_models {
            let _ = writeln!(out, "- rm.{table}: {rows} rows");
        }
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.ok).collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "\nFailed checks:");
            for c in failed {
                let _ = writeln!(
                    out,
                    "- {}: expected {}, got {}",
                    c.check, c.expected, c.actual
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{}",
            bench_ledger::database_markdown(&self.environment)
        );
        out
    }

    fn measured_facts(&self) -> u64 {
        [
            "official.registered.v1",
            "training.nominated.v1",
            "training.enrolled.v1",
            "training.completed.v1",
        ]
        .iter()
        .map(|t| self.load.by_type.get(*t).copied().unwrap_or(0))
        .sum()
    }
}

/// Runs `tledger bench rebuild` on a database of its own on `settings`'
/// server, writes `<out>/rebuild.md` and `<out>/rebuild.json`, and returns
/// the report. Failed checks do not make this fail: the report counts them
/// (see [`RebuildReport::failures`]).
pub async fn rebuild(
    settings: &Settings,
    options: &RebuildBench,
) -> Result<RebuildReport, LedgerBenchError> {
    if options.facts < 4 {
        return Err(BenchError::Options("--facts must be at least 4".into()).into());
    }
    if options.rounds == 0 {
        return Err(BenchError::Options("--rounds must be at least 1".into()).into());
    }
    let started_at = chrono::Utc::now();
    let need = (options.facts as u64).saturating_mul(DISK_PER_FACT) + bench::MIN_FREE_BYTES;
    let prepared = bench_ledger::prepare(settings, &started_at, need, options.keep).await?;
    bench::progress(&format!(
        "database {}; {} facts, {} round(s)",
        prepared.database.name, options.facts, options.rounds
    ));
    let measured = measure(&prepared.store, options).await;
    let environment = bench_ledger::clean_up(prepared, options.keep).await;
    let (load, rounds, read_models, checks, profile) = measured?;

    let median_of = |pick: &dyn Fn(&RebuildRound) -> f64| {
        bench::median(rounds.iter().map(pick).collect()).unwrap_or(0.0)
    };
    let rebuild_facts_per_s = bench::round3(median_of(&|r| r.rebuild.facts_per_s));
    let baseline_rows_per_s = bench::round3(median_of(&|r| r.baseline.facts_per_s));
    let ratio = if baseline_rows_per_s > 0.0 {
        bench::round3(rebuild_facts_per_s / baseline_rows_per_s)
    } else {
        0.0
    };
    let peak_growth_bytes = rounds
        .iter()
        .map(|r| r.rebuild.memory.growth_bytes)
        .max()
        .unwrap_or(0);
    let peak_rss_bytes = rounds
        .iter()
        .map(|r| r.rebuild.memory.peak_rss_bytes)
        .max()
        .unwrap_or(0);
    let targets = vec![
        Target {
            figure: "ratio",
            value: ratio,
            target: format!("≥ {TARGET_RATIO} × the baseline's rows/s"),
            met: ratio >= TARGET_RATIO,
        },
        Target {
            figure: "peak_growth_bytes",
            value: peak_growth_bytes as f64,
            target: "< 1 GiB".into(),
            met: peak_growth_bytes < TARGET_PEAK_BYTES,
        },
    ];
    let report = RebuildReport {
        benchmark: "rebuild",
        started_at: started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        finished_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        options: options.clone(),
        environment,
        country: COUNTRY,
        load,
        rebuild_seconds: bench::round3(median_of(&|r| r.rebuild.seconds)),
        baseline_seconds: bench::round3(median_of(&|r| r.baseline.seconds)),
        rounds,
        rebuild_facts_per_s,
        baseline_rows_per_s,
        ratio,
        peak_growth_bytes,
        peak_rss_bytes,
        read_models,
        profile,
        targets_met: targets.iter().all(|t| t.met),
        targets,
        checks,
    };
    bench::write_files(&options.out, "rebuild", &report.markdown(), &report)?;
    Ok(report)
}

type Measured = (
    Loaded,
    Vec<RebuildRound>,
    BTreeMap<String, i64>,
    Vec<Check>,
    RebuildProfile,
);

/// Where a rebuild's time goes: the projector's reading and parsing,
/// timed on their own once after the rounds (the rest is writing).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RebuildProfile {
    /// `Store::read_facts` over the whole ledger in batches of 5,000, as
    /// the rebuild reads it (there, three batches at a time).
    pub read_seconds: f64,
    /// The same, and each fact parsed with `Fact::from_recorded`, as the
    /// projector does before writing.
    pub read_and_parse_seconds: f64,
    pub facts: u64,
}

async fn profile(store: &Store) -> Result<RebuildProfile, LedgerBenchError> {
    let mut timed = [0.0; 2];
    let mut facts = 0;
    for (pass, seconds) in timed.iter_mut().enumerate() {
        let started = Instant::now();
        let mut after = 0;
        facts = 0;
        loop {
            let events = store.read_facts(after, 5000).await?;
            let Some(last) = events.last() else {
                break;
            };
            after = last.position;
            facts += events.len() as u64;
            if pass == 1 {
                for e in &events {
                    let parsed = e
                        .event_type
                        .parse::<FactType>()
                        .map_err(|err| err.to_string())
                        .and_then(|t| {
                            Fact::from_recorded(t, &e.data).map_err(|err| err.to_string())
                        });
                    parsed.map_err(|reason| {
                        LedgerBenchError::Generate(format!(
                            "the fact at position {} does not parse: {reason}",
                            e.position
                        ))
                    })?;
                }
            }
        }
        *seconds = bench::round3(started.elapsed().as_secs_f64());
    }
    Ok(RebuildProfile {
        read_seconds: timed[0],
        read_and_parse_seconds: timed[1],
        facts,
    })
}

async fn measure(store: &Store, options: &RebuildBench) -> Result<Measured, LedgerBenchError> {
    let people = options.facts / 4;
    bench::progress(&format!(
        "loading {} units and {} facts",
        COUNTRY.provinces + COUNTRY.districts() + COUNTRY.communes,
        people * 4
    ));
    let (load, ()) = bench_ledger::bulk_load(store, move |writer| generate(writer, people)).await?;
    bench::progress(&format!(
        "loaded {} facts in {:.1} s ({:.0} facts/s); head {}",
        load.facts, load.seconds, load.facts_per_s, load.head
    ));
    sqlx::raw_sql(&format!("{BASELINE_TABLE}; ANALYZE events"))
        .execute(store.pool())
        .await
        .map_err(BenchError::db("creating the baseline table"))?;

    let mut rounds = Vec::new();
    let mut checks = Vec::new();
    let head = i64::try_from(load.head).unwrap_or(i64::MAX);
    for round in 1..=options.rounds {
        bench::progress(&format!(
            "round {round}/{}: rebuilding the read models",
            options.rounds
        ));
        let memory = MemoryProbe::start();
        let started = Instant::now();
        let reached = projector::rebuild(store).await?;
        let seconds = started.elapsed().as_secs_f64();
        let rebuild = Pass {
            facts: reached,
            seconds: bench::round3(seconds),
            facts_per_s: bench::round3(reached as f64 / seconds.max(1e-9)),
            memory: memory.finish(),
        };
        bench::progress(&format!(
            "  {:.1} s, {:.0} facts/s, peak RSS growth {:.0} MiB",
            rebuild.seconds,
            rebuild.facts_per_s,
            rebuild.memory.growth_bytes as f64 / (1024.0 * 1024.0)
        ));
        checks.push(check(
            format!("round {round}: the rebuild reached the head"),
            head,
            i64::try_from(reached).unwrap_or(i64::MAX),
        ));

        bench::progress(&format!(
            "round {round}/{}: baseline COPY out and in",
            options.rounds
        ));
        sqlx::raw_sql("TRUNCATE bench_rebuild_baseline")
            .execute(store.pool())
            .await
            .map_err(BenchError::db("emptying the baseline table"))?;
        let memory = MemoryProbe::start();
        let started = Instant::now();
        let copied = copy_through(store).await?;
        let seconds = started.elapsed().as_secs_f64();
        let baseline = Pass {
            facts: copied,
            seconds: bench::round3(seconds),
            facts_per_s: bench::round3(copied as f64 / seconds.max(1e-9)),
            memory: memory.finish(),
        };
        bench::progress(&format!(
            "  {:.1} s, {:.0} rows/s",
            baseline.seconds, baseline.facts_per_s
        ));
        checks.push(check(
            format!("round {round}: the baseline copied every fact"),
            head,
            i64::try_from(copied).unwrap_or(i64::MAX),
        ));
        rounds.push(RebuildRound {
            round,
            rebuild,
            baseline,
        });
    }
    bench::progress("profile: reading, then reading and parsing, the whole ledger");
    let profile = profile(store).await?;
    let read_models = bench_ledger::read_model_rows(store).await?;
    let people = i64::try_from(people).unwrap_or(i64::MAX);
    for (table, expected) in [
        ("placements", people),
        ("places", people),
        ("place_steps", 2 * people),
        ("enrolled_places", people),
        ("qualifications", 0),
        // One stretch per person: registered once, never qualified.
        ("standing", people),
    ] {
        checks.push(check(
            format!("rm.{table} rows"),
            expected,
            read_models.get(table).copied().unwrap_or(-1),
        ));
    }
    let live: i64 = sqlx::query_scalar("SELECT position FROM rm.checkpoint")
        .fetch_one(store.pool())
        .await
        .map_err(BenchError::db("reading the live checkpoint"))?;
    checks.push(check("the live read models' checkpoint".into(), head, live));
    Ok((load, rounds, read_models, checks, profile))
}

fn check(check: String, expected: i64, actual: i64) -> Check {
    Check {
        check,
        expected,
        actual,
        ok: expected == actual,
    }
}

/// The baseline: every sequenced fact out in position order with `COPY …
/// TO STDOUT` on one connection, streamed as it arrives into `COPY … FROM
/// STDIN` on another. Returns the rows written.
async fn copy_through(store: &Store) -> Result<u64, LedgerBenchError> {
    let mut reader = store
        .pool()
        .acquire()
        .await
        .map_err(BenchError::db("connecting the baseline's reader"))?;
    let mut writer = store
        .pool()
        .acquire()
        .await
        .map_err(BenchError::db("connecting the baseline's writer"))?;
    let mut copy_in = writer
        .copy_in_raw(BASELINE_IN)
        .await
        .map_err(BenchError::db("starting the baseline's COPY FROM STDIN"))?;
    let mut out = reader
        .copy_out_raw(BASELINE_OUT)
        .await
        .map_err(BenchError::db("starting the baseline's COPY TO STDOUT"))?;
    let mut failed = None;
    while let Some(chunk) = out.next().await {
        let sent = match chunk {
            Ok(chunk) => copy_in.send(chunk).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            failed = Some(e);
            break;
        }
    }
    // A stream left unread would keep the reader busy; it is dropped with
    // its connection instead.
    drop(out);
    if let Some(e) = failed {
        let _ = copy_in.abort("the baseline's COPY TO STDOUT failed").await;
        reader.close_on_drop();
        return Err(BenchError::db("copying the baseline's rows")(e).into());
    }
    let rows = copy_in
        .finish()
        .await
        .map_err(BenchError::db("finishing the baseline's COPY FROM STDIN"))?;
    Ok(rows)
}

/// Peak resident memory of this process around a step.
pub(crate) struct MemoryProbe {
    rss_before: u64,
    reset: bool,
}

impl MemoryProbe {
    pub(crate) fn start() -> Self {
        // "5" resets the peak resident set size to the current one
        // (proc(5), Linux 4.0 and later).
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Self {
            rss_before: status_bytes("VmRSS:").unwrap_or(0),
            reset,
        }
    }

    pub(crate) fn finish(self) -> Memory {
        let peak = status_bytes("VmHWM:").unwrap_or(0);
        Memory {
            rss_before_bytes: self.rss_before,
            peak_rss_bytes: peak,
            growth_bytes: peak.saturating_sub(self.rss_before),
            peak_reset: self.reset,
        }
    }
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The units, then `people` blocks of four facts: an official registered
/// in a commune, nominated by it for a refresher course, enrolled and
/// completed.
pub(crate) fn generate(writer: &mut ChainWriter, people: usize) -> Result<(), LedgerBenchError> {
    COUNTRY.emit_units(writer, false)?;
    let mut spread = bench::Spread(0x0072_6562_7569_6c64);
    let first = date(2000, 1, 1);
    for i in 0..people {
        let official = format!("o{:07}", i + 1);
        let enrollment = format!("e{:07}", i + 1);
        let commune = COUNTRY.commune_id(i % COUNTRY.communes);
        let (post, category) = POSTS[i % POSTS.len()];
        let registered = first + chrono::Duration::days(spread.below(5000) as i64);
        let nominated = registered + chrono::Duration::days(30 + spread.below(2000) as i64);
        let enrolled = nominated + chrono::Duration::days(7 + spread.below(40) as i64);
        let completed = enrolled + chrono::Duration::days(5 + spread.below(25) as i64);
        let registration = json!({
            "official_id": official, "full_name": format!("Cán bộ {}", i + 1),
            "birth_year": 1960 + spread.below(35), "gender": if i % 2 == 0 { "male" } else { "female" },
            "ethnic_minority": i % 7 == 0, "unit_id": commune, "staff_category": category,
            "position": post, "effective_date": day(registered),
        });
        writer.push(&fact(FactType::OfficialRegistered, &registration)?, 1)?;
        let nomination = json!({
            "enrollment_id": enrollment, "official_id": official, "nominating_unit_id": commune,
            "program": {"track": "refresher", "title": "Bồi dưỡng kỹ năng quản lý nhà nước"},
            "institution": {"institution_id": format!("school-{:02}", COUNTRY.province_of(i % COUNTRY.communes) + 1),
                            "name": "Trường Chính trị tỉnh", "in_province": true},
            "planned_start": day(enrolled), "planned_end": day(completed),
            "funding": [{"source": "province", "amount_vnd": 100_000 * (5 + spread.below(40))}],
            "effective_date": day(nominated),
        });
        writer.push(&fact(FactType::TrainingNominated, &nomination)?, 1)?;
        let step = json!({"enrollment_id": enrollment, "effective_date": day(enrolled)});
        writer.push(&fact(FactType::TrainingEnrolled, &step)?, 2)?;
        let completion = json!({
            "enrollment_id": enrollment, "result": RESULTS[spread.below(4)],
            "certificate": {"kind": "certificate", "number": format!("CC-{enrollment}")},
            "effective_date": day(completed),
        });
        writer.push(&fact(FactType::TrainingCompleted, &completion)?, 3)?;
    }
    Ok(())
}
