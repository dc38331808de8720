//! `tledger bench commands`: the command path against its baseline
//! (docs/benchmarks.md).
//!
//! N `nominate` commands over HTTP, each answered after commit and
//! sequencing, at each concurrency, alternating with the baseline: N
//! single-row `INSERT` commits of a row of the same size into a plain table,
//! with prepared statements on one connection per client (what pgbench
//! does), both with `synchronous_commit = on`. Each command's event is
//! followed onto JetStream through a core NATS subscription, so the report
//! also says how long after the answer (and after sending) the event is
//! there. Medians over the rounds are reported, every round's raw numbers
//! are kept, and a profile of the command path's parts says where the time
//! goes.
//!
//! The benchmark never touches real data: it runs on its own database
//! (`tledger_bench_<timestamp>_<random>`, on the configured server, dropped
//! at the end unless kept) and its own prefix (`bench<random>`, whose
//! streams it deletes), with the service started in this process on a free
//! loopback port. It refuses to start with less than 1 GiB free in the
//! current directory (`df -Pk .`); the server's data directory may be
//! elsewhere, so the database's size after the run is reported too.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tledger_events::{AggregateKind, Fact, FactType};
use tledger_store::{Append, AppendError, EventMetadata, NewEvent, Sequencer, Store, StoreError};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use uuid::Uuid;

use tledger::access::{AccessError, Role};
use tledger::app;
use tledger::commands::CommandRequest;
use tledger::config::{redact_url, Settings};
use tledger::startup::{self, StartupError};
use tledger::Prefix;

/// Commands per round unless told otherwise (the issue's N).
pub const DEFAULT_COUNT: usize = 10_000;
/// Rounds unless told otherwise.
pub const DEFAULT_ROUNDS: usize = 3;
/// The issue's N: fewer commands per round make a smoke run, not a result.
pub const ISSUE_COUNT: usize = 10_000;
/// The least free space in the current directory the benchmark starts with.
pub const MIN_FREE_BYTES: u64 = 1 << 30;
/// The issue's targets: command throughput at least this share of the
/// baseline's, at every concurrency ...
pub const TARGET_THROUGHPUT_RATIO: f64 = 0.5;
/// ... and a p99 answer latency under this at concurrency 1.
pub const TARGET_P99_MS: f64 = 10.0;

/// Officials registered before measuring (each nominate picks one).
const OFFICIALS: usize = 1000;
/// Communes registered under the one district.
const COMMUNES: usize = 18;
/// Seeding commands in flight at once.
const SEED_CONCURRENCY: usize = 16;
/// Calls per phase of the profile.
const PROFILE_CALLS: usize = 1000;
/// How long to wait for a round's events to reach JetStream after its last
/// answer.
const ARRIVAL_WAIT: Duration = Duration::from_secs(30);
/// How long one HTTP request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Failure messages kept per round.
const FAILURE_EXAMPLES: usize = 5;
/// The cadre positions of the shipped taxonomy (nd92-2009).
const CADRE_POSITIONS: [&str; 11] = [
    "party_secretary",
    "deputy_party_secretary",
    "council_chair",
    "council_vice_chair",
    "committee_chair",
    "committee_vice_chair",
    "front_chair",
    "youth_union_secretary",
    "women_union_chair",
    "farmers_union_chair",
    "veterans_union_chair",
];

const BASELINE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_baseline (\
     id uuid PRIMARY KEY, \
     payload jsonb NOT NULL, \
     created_at timestamptz NOT NULL DEFAULT now())";
const BASELINE_INSERT: &str = "INSERT INTO bench_baseline (id, payload) VALUES ($1, $2::jsonb)";

/// What `tledger bench commands` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandsBench {
    /// Commands (and baseline inserts) per round and concurrency.
    pub count: usize,
    pub rounds: usize,
    /// The concurrencies, each measured in every round.
    pub concurrency: Vec<usize>,
    /// Where `commands.md` and `commands.json` go.
    pub out: PathBuf,
    /// Keep the benchmark's database (its streams are deleted either way).
    pub keep: bool,
}

impl Default for CommandsBench {
    fn default() -> Self {
        Self {
            count: DEFAULT_COUNT,
            rounds: DEFAULT_ROUNDS,
            concurrency: vec![1, 16],
            out: PathBuf::from("./bench-results"),
            keep: false,
        }
    }
}

/// Why the benchmark could not run (or ran with failures).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Options(String),
    #[error(
        "only {free_mib} MiB are free on {mount} (df -Pk .); the benchmark needs at least \
         1024 MiB: free some space or run it from a directory on another disk"
    )]
    LowDisk { mount: String, free_mib: u64 },
    #[error("cannot check the free disk space with `df -Pk .`: {0}")]
    Df(String),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("PostgreSQL: {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("appending a nomination for the profile: {0}")]
    Append(#[from] AppendError),
    #[error("creating the benchmark's admin token: {0}")]
    Access(#[from] AccessError),
    #[error("building the HTTP client: {0}")]
    Http(String),
    #[error("seeding the benchmark's ledger: {0}")]
    Seed(String),
    #[error("subscribing to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the in-process service stopped during the benchmark: {0}")]
    Service(String),
    #[error(
        "{failed} of {total} benchmark commands, inserts or JetStream arrivals failed; the \
         report in {} has each round's count and examples",
        out.display()
    )]
    Failures {
        failed: usize,
        total: usize,
        out: PathBuf,
    },
}

impl BenchError {
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> BenchError {
        move |source| BenchError::Database { context, source }
    }
}

// --- the report ------------------------------------------------------------

/// Latencies of one set of calls, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Calls that took 100 ms or more (stalls, not queueing).
    pub over_100ms: usize,
}

impl Latency {
    pub(crate) fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Self {
            samples: samples.len(),
            p50_ms: ms(percentile(&samples, 0.50)),
            p99_ms: ms(percentile(&samples, 0.99)),
            mean_ms: round3(total.as_secs_f64() * 1000.0 / samples.len() as f64),
            max_ms: ms(samples[samples.len() - 1]),
            over_100ms: samples
                .iter()
                .filter(|d| **d >= Duration::from_millis(100))
                .count(),
        }
    }
}

/// The nearest-rank percentile of sorted, non-empty `samples`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// How long the events took to reach JetStream.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Arrivals {
    /// Events seen on `<prefix>.events.enrollment.>`.
    pub arrived: usize,
    /// Events answered 201 but not seen within 30 s of the last answer.
    pub missing: usize,
    /// From the command's answer (committed and sequenced) to arrival.
    pub after_answer: Latency,
    /// From sending the command to arrival.
    pub after_send: Latency,
}

/// One round of commands at one concurrency.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CommandRound {
    pub commands: usize,
    pub wall_seconds: f64,
    /// Commands answered 201 per second of wall time.
    pub throughput_per_s: f64,
    /// Answer latency of the commands answered 201.
    pub latency: Latency,
    /// Commands not answered 201 (including transport errors).
    pub failures: usize,
    pub failure_examples: Vec<String>,
    pub jetstream: Arrivals,
    /// Sequencer batches that gave this round's events their positions
    /// (distinct `recorded_at`), and events per batch.
    pub sequencer_batches: u64,
    pub events_per_batch: f64,
    /// Where the CPU went while the round ran (Linux, PostgreSQL local).
    pub cpu: Option<CpuUse>,
    pub wal: Option<WalUse>,
}

/// One round of baseline inserts at one concurrency.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BaselineRound {
    pub inserts: usize,
    pub payload_bytes: usize,
    pub wall_seconds: f64,
    /// Rows committed per second of wall time.
    pub throughput_per_s: f64,
    pub latency: Latency,
    pub failures: usize,
    pub failure_examples: Vec<String>,
    /// `SHOW synchronous_commit` on the baseline's connection.
    pub synchronous_commit: String,
    pub cpu: Option<CpuUse>,
    pub wal: Option<WalUse>,
}

/// One round at one concurrency: the commands, then the baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    pub round: usize,
    pub concurrency: usize,
    pub command: CommandRound,
    pub baseline: BaselineRound,
}

/// One figure of the summary: the median over rounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// `throughput_per_s`, `p50_ms`, `p99_ms`,
    /// `jetstream_p99_after_answer_ms` or `jetstream_p99_after_send_ms`.
    pub figure: &'static str,
    pub concurrency: usize,
    pub command: Option<f64>,
    pub baseline: Option<f64>,
    /// command ÷ baseline.
    pub ratio: Option<f64>,
    pub target: Option<String>,
    pub met: Option<bool>,
}

/// One phase of the command path, timed on its own at concurrency 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    pub phase: String,
    pub latency: Latency,
    pub note: Option<String>,
}

/// Where and with what the benchmark ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Environment {
    pub cpus: usize,
    pub postgres_version: String,
    pub nats_version: String,
    /// `SHOW synchronous_commit` on the service's pool.
    pub synchronous_commit_commands: String,
    pub synchronous_commit_baseline: String,
    pub fsync: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) before and after: other work on
    /// the machine shows here.
    pub load_average_before: String,
    pub load_average_after: String,
    pub free_disk_bytes_before: u64,
    pub free_disk_mount: String,
    pub database: String,
    /// With any password replaced by `***`.
    pub database_url: String,
    pub prefix: String,
    /// `pg_database_size` after the run.
    pub database_size_bytes: i64,
    pub database_kept: bool,
    pub seed_units: usize,
    pub seed_officials: usize,
    pub seed_seconds: f64,
}

/// Everything one `tledger bench commands` run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandsReport {
    pub benchmark: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub options: CommandsBench,
    pub environment: Environment,
    pub rounds: Vec<Round>,
    pub medians: Vec<Figure>,
    pub profile: Vec<Phase>,
    /// Failed commands, failed inserts and missing JetStream arrivals.
    pub failures: usize,
    pub attempted: usize,
    pub targets_met: bool,
}

impl CommandsReport {
    /// `(concurrency, measure, per command, per insert)`: medians over the
    /// rounds of what each operation cost.
    pub fn costs(&self) -> Vec<(usize, &'static str, f64, f64)> {
        type Pick = fn(&CpuUse) -> f64;
        type PickWal = fn(&WalUse) -> f64;
        let cpu: [(&'static str, Pick); 4] = [
            ("CPU ms, this process", |c| c.this_process_ms_per_op),
            ("CPU ms, PostgreSQL", |c| c.postgres_ms_per_op),
            ("CPU ms, the rest of the machine", |c| c.rest_ms_per_op),
            ("machine busy %", |c| c.machine_busy_percent),
        ];
        let wal: [(&'static str, PickWal); 2] = [
            ("WAL bytes", |w| w.wal_bytes_per_op),
            ("write transactions", |w| w.write_transactions_per_op),
        ];
        let mut rows = Vec::new();
        for &c in &self.options.concurrency {
            let at: Vec<&Round> = self.rounds.iter().filter(|r| r.concurrency == c).collect();
            for (measure, pick) in cpu {
                let command = median(
                    at.iter()
                        .filter_map(|r| r.command.cpu.as_ref().map(pick))
                        .collect(),
                );
                let baseline = median(
                    at.iter()
                        .filter_map(|r| r.baseline.cpu.as_ref().map(pick))
                        .collect(),
                );
                if let (Some(command), Some(baseline)) = (command, baseline) {
                    rows.push((c, measure, round3(command), round3(baseline)));
                }
            }
            for (measure, pick) in wal {
                let command = median(
                    at.iter()
                        .filter_map(|r| r.command.wal.as_ref().map(pick))
                        .collect(),
                );
                let baseline = median(
                    at.iter()
                        .filter_map(|r| r.baseline.wal.as_ref().map(pick))
                        .collect(),
                );
                if let (Some(command), Some(baseline)) = (command, baseline) {
                    rows.push((c, measure, round3(command), round3(baseline)));
                }
            }
        }
        rows
    }

    /// The report as markdown: the medians table, then where the time goes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let env = &self.environment;
        let o = &self.options;
        let _ = writeln!(out, "# tledger bench commands, {}\n", self.started_at);
        let _ = writeln!(
            out,
            "{} `nominate` commands over HTTP per round and concurrency (each answered after \
             commit and sequencing) against {} single-row INSERT commits of a {}-byte row into \
             a plain table (prepared, one connection per client), alternating, {} round(s); \
             medians over the rounds.{}\n",
            o.count,
            o.count,
            self.rounds.first().map_or(0, |r| r.baseline.payload_bytes),
            o.rounds,
            if o.count < ISSUE_COUNT {
                format!(" **A smoke run: the issue asks for N ≥ {ISSUE_COUNT}.**")
            } else {
                String::new()
            },
        );
        let _ = writeln!(
            out,
            "Machine: {} CPU(s); PostgreSQL {} (synchronous_commit: commands {}, baseline {}; \
             fsync {}); NATS {}; service, clients and subscriber in one process; load average \
             {} before, {} after.\n",
            env.cpus,
            env.postgres_version,
            env.synchronous_commit_commands,
            env.synchronous_commit_baseline,
            env.fsync,
            env.nats_version,
            env.load_average_before,
            env.load_average_after,
        );
        let _ = writeln!(
            out,
            "| figure | concurrency | command | baseline | ratio | target | met? |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
        for f in &self.medians {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                figure_label(f.figure),
                f.concurrency,
                number(f.command),
                number(f.baseline),
                f.ratio.map_or("—".into(), |r| format!("{r:.2}")),
                f.target.as_deref().unwrap_or("—"),
                match f.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "—",
                },
            );
        }
        let _ = writeln!(
            out,
            "\nTargets {}. Failures: {} of {}.{}\n",
            if self.targets_met {
                "met"
            } else {
                "**missed**"
            },
            self.failures,
            self.attempted,
            if self.failures > 0 {
                " **This run had failures: its numbers do not count.**"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "## Rounds\n");
        let _ = writeln!(
            out,
            "| round | concurrency | commands/s | p50 ms | p99 ms | answers ≥ 100 ms | JetStream \
             p99 ms after answer | events per sequencer batch | baseline rows/s | baseline p50 \
             ms | baseline p99 ms |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.rounds {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {:.1} | {:.0} | {:.2} | {:.2} |",
                r.round,
                r.concurrency,
                r.command.throughput_per_s,
                r.command.latency.p50_ms,
                r.command.latency.p99_ms,
                r.command.latency.over_100ms,
                r.command.jetstream.after_answer.p99_ms,
                r.command.events_per_batch,
                r.baseline.throughput_per_s,
                r.baseline.latency.p50_ms,
                r.baseline.latency.p99_ms,
            );
        }
        let costs = self.costs();
        if !costs.is_empty() {
            let _ = writeln!(out, "\n## Cost per operation (medians over the rounds)\n");
            let _ = writeln!(
                out,
                "CPU from /proc while the round ran: this process is the service with its HTTP \
                 clients and subscriber for commands, only the clients for inserts; PostgreSQL is \
                 every process of the local server (other databases' work included); the rest \
                 is NATS and anything else on the machine. WAL and write transactions are \
                 server-wide too: other work on the server shows as a higher figure.\n"
            );
            let _ = writeln!(
                out,
                "| concurrency | measure | per command | per baseline insert | ratio |"
            );
            let _ = writeln!(out, "|---:|---|---:|---:|---:|");
            for (c, measure, command, baseline) in costs {
                let ratio = if baseline > 0.0 {
                    format!("{:.1}", command / baseline)
                } else {
                    "—".into()
                };
                let _ = writeln!(
                    out,
                    "| {c} | {measure} | {} | {} | {ratio} |",
                    number(Some(command)),
                    number(Some(baseline)),
                );
            }
        }
        let _ = writeln!(out, "\n## Where the time goes (concurrency 1)\n");
        let _ = writeln!(
            out,
            "| phase | calls | p50 ms | p99 ms | mean ms | calls ≥ 100 ms | note |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        for p in &self.profile {
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {:.3} | {} | {} |",
                p.phase,
                p.latency.samples,
                p.latency.p50_ms,
                p.latency.p99_ms,
                p.latency.mean_ms,
                p.latency.over_100ms,
                p.note.as_deref().unwrap_or(""),
            );
        }
        let _ = writeln!(
            out,
            "\nDatabase {} on {}: {:.1} MiB after the run ({}). Free disk before: {} MiB on {}.",
            env.database,
            redact_url(&env.database_url)
                .rsplit_once('/')
                .map_or("", |(server, _)| server),
            env.database_size_bytes as f64 / (1024.0 * 1024.0),
            if env.database_kept { "kept" } else { "dropped" },
            env.free_disk_bytes_before / (1024 * 1024),
            env.free_disk_mount,
        );
        out
    }
}

fn figure_label(figure: &str) -> &'static str {
    match figure {
        "throughput_per_s" => "throughput (commands/s vs rows/s)",
        "p50_ms" => "p50 latency of the answer (ms)",
        "p99_ms" => "p99 latency of the answer (ms)",
        "jetstream_p99_after_answer_ms" => "p99 delay until on JetStream, after the answer (ms)",
        "jetstream_p99_after_send_ms" => "p99 delay until on JetStream, after sending (ms)",
        _ => "?",
    }
}

pub(crate) fn number(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The summary figures: medians over the rounds at each concurrency.
fn medians(rounds: &[Round], concurrency: &[usize]) -> Vec<Figure> {
    let mut figures = Vec::new();
    for &c in concurrency {
        let at: Vec<&Round> = rounds.iter().filter(|r| r.concurrency == c).collect();
        let of =
            |f: &dyn Fn(&Round) -> Option<f64>| median(at.iter().filter_map(|r| f(r)).collect());
        let mut push = |figure, command: Option<f64>, baseline: Option<f64>, target| {
            let ratio = match (command, baseline) {
                (Some(a), Some(b)) if b > 0.0 => Some(round3(a / b)),
                _ => None,
            };
            let met = match figure {
                "throughput_per_s" => ratio.map(|r| r >= TARGET_THROUGHPUT_RATIO),
                "p99_ms" if c == 1 => command.map(|p| p < TARGET_P99_MS),
                _ => None,
            };
            figures.push(Figure {
                figure,
                concurrency: c,
                command: command.map(round3),
                baseline: baseline.map(round3),
                ratio,
                target,
                met,
            });
        };
        push(
            "throughput_per_s",
            of(&|r| Some(r.command.throughput_per_s)),
            of(&|r| Some(r.baseline.throughput_per_s)),
            Some(format!("≥ {TARGET_THROUGHPUT_RATIO} × baseline")),
        );
        push(
            "p50_ms",
            of(&|r| Some(r.command.latency.p50_ms)),
            of(&|r| Some(r.baseline.latency.p50_ms)),
            None,
        );
        push(
            "p99_ms",
            of(&|r| Some(r.command.latency.p99_ms)),
            of(&|r| Some(r.baseline.latency.p99_ms)),
            (c == 1).then(|| format!("< {TARGET_P99_MS} ms")),
        );
        push(
            "jetstream_p99_after_answer_ms",
            of(&|r| {
                (r.command.jetstream.arrived > 0).then_some(r.command.jetstream.after_answer.p99_ms)
            }),
            None,
            None,
        );
        push(
            "jetstream_p99_after_send_ms",
            of(&|r| {
                (r.command.jetstream.arrived > 0).then_some(r.command.jetstream.after_send.p99_ms)
            }),
            None,
            None,
        );
    }
    figures
}

// --- cost accounting --------------------------------------------------------

/// WAL written and transactions that wrote, per operation, server-wide
/// (other databases' writes during the round count too).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WalUse {
    pub wal_bytes_per_op: f64,
    pub write_transactions_per_op: f64,
}

/// `(WAL position in bytes, next transaction id)` of the server.
async fn wal_mark(store: &Store) -> Option<(i64, i64)> {
    sqlx::query_as(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, \
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
    )
    .fetch_one(store.pool())
    .await
    .ok()
}

async fn wal_use(store: &Store, before: Option<(i64, i64)>, ops: usize) -> Option<WalUse> {
    let (wal_before, xid_before) = before?;
    let (wal_after, xid_after) = wal_mark(store).await?;
    let ops = ops.max(1) as f64;
    Some(WalUse {
        wal_bytes_per_op: round3((wal_after - wal_before) as f64 / ops),
        write_transactions_per_op: round3((xid_after - xid_before) as f64 / ops),
    })
}

/// Where the CPU went during a round, per operation (command or insert),
/// from `/proc`: this process (service, clients and subscriber, or the
/// baseline's clients), the local PostgreSQL server's processes, and the
/// rest of the machine (NATS, anything else running).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuUse {
    pub machine_busy_percent: f64,
    pub this_process_ms_per_op: f64,
    pub postgres_ms_per_op: f64,
    pub rest_ms_per_op: f64,
}

/// CPU times in clock ticks (USER_HZ, 100 a second on Linux).
#[derive(Clone, Copy, Debug, Default)]
struct CpuTicks {
    machine_busy: u64,
    machine_total: u64,
    this_process: u64,
    postgres: u64,
}

const TICK_MS: f64 = 10.0;

/// Reads CPU use from `/proc`; `None` where there is no `/proc` or the
/// server is not on this machine (`postmaster` is then `None`).
fn cpu_ticks(postmaster: Option<u32>) -> Option<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let total = busy + at(3) + at(4);
    let this_process = process_ticks("self").map_or(0, |p| p.own);
    let postmaster = postmaster?;
    let mut postgres = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(p) = process_ticks(&pid.to_string()) else {
            continue;
        };
        if pid == postmaster {
            // Backends that ended are counted in their parent's children.
            postgres += p.own + p.children;
        } else if p.parent == postmaster {
            postgres += p.own;
        }
    }
    Some(CpuTicks {
        machine_busy: busy,
        machine_total: total,
        this_process,
        postgres,
    })
}

struct ProcessTicks {
    parent: u32,
    own: u64,
    children: u64,
}

fn process_ticks(pid: &str) -> Option<ProcessTicks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let at = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // Fields from the state (3rd in proc(5)): ppid is the 4th, utime the
    // 14th, stime 15th, cutime 16th, cstime 17th.
    Some(ProcessTicks {
        parent: u32::try_from(at(1)?).ok()?,
        own: at(11)? + at(12)?,
        children: at(13)? + at(14)?,
    })
}

/// The CPU used between `before` and now, per one of `ops` operations.
fn cpu_use(postmaster: Option<u32>, before: Option<CpuTicks>, ops: usize) -> Option<CpuUse> {
    let before = before?;
    let after = cpu_ticks(postmaster)?;
    let ops = ops.max(1) as f64;
    let busy = after.machine_busy.saturating_sub(before.machine_busy);
    let total = after
        .machine_total
        .saturating_sub(before.machine_total)
        .max(1);
    let this_process = after.this_process.saturating_sub(before.this_process);
    let postgres = after.postgres.saturating_sub(before.postgres);
    let rest = busy.saturating_sub(this_process + postgres);
    let per_op = |ticks: u64| round3(ticks as f64 * TICK_MS / ops);
    Some(CpuUse {
        machine_busy_percent: round3(100.0 * busy as f64 / total as f64),
        this_process_ms_per_op: per_op(this_process),
        postgres_ms_per_op: per_op(postgres),
        rest_ms_per_op: per_op(rest),
    })
}

/// The local PostgreSQL server's main process: the parent of one of our
/// backends, when `/proc` shows it (the server is on this machine).
async fn postmaster_pid(store: &Store) -> Option<u32> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .ok()?;
    let parent = process_ticks(&backend.to_string())?.parent;
    // A backend's parent is the postmaster; make sure it is PostgreSQL's.
    let comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).ok()?;
    (comm.trim() == "postgres").then_some(parent)
}

// --- running ----------------------------------------------------------------

/// Runs `tledger bench commands` with `settings`' PostgreSQL server and NATS
/// (but a database and prefix of its own), writes `<out>/commands.md` and
/// `<out>/commands.json`, and returns the report. Failed commands do not
/// make this fail: the report counts them (see
/// [`CommandsReport::failures`]).
pub async fn commands(
    settings: &Settings,
    options: &CommandsBench,
) -> Result<CommandsReport, BenchError> {
    check_options(options)?;
    let started_at = chrono::Utc::now();
    let (mount, free) = free_disk().await?;
    if free < MIN_FREE_BYTES {
        return Err(BenchError::LowDisk {
            mount,
            free_mib: free / (1024 * 1024),
        });
    }
    progress(&format!(
        "{} MiB free on {mount}; {} nominate commands per round, {} round(s), concurrency {:?}",
        free / (1024 * 1024),
        options.count,
        options.rounds,
        options.concurrency
    ));
    // Our own NATS connection: the subscriber, and the clean-up at the end.
    let (nats, _) = startup::connect_nats(&settings.nats_url).await?;
    let database = BenchDatabase::create(&settings.database_url, &started_at).await?;
    let prefix = random_prefix()?;
    progress(&format!(
        "database {} and prefix {prefix} (streams {})",
        database.name,
        prefix.events_stream()
    ));
    let bench_settings = Settings {
        database_url: database.url.clone(),
        http_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        prefix: prefix.clone(),
        admin_token: None,
        // Checkpoints of a throwaway ledger are signed with a throwaway key.
        signing_key_path: std::env::temp_dir().join(format!("{prefix}-signing.key")),
        ..settings.clone()
    };
    let mut environment = Environment {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        nats_version: nats.server_info().version,
        load_average_before: load_average(),
        free_disk_bytes_before: free,
        free_disk_mount: mount,
        database: database.name.clone(),
        database_url: redact_url(&database.url),
        prefix: prefix.to_string(),
        database_kept: options.keep,
        ..Environment::default()
    };

    let measured = measure(&bench_settings, options, &nats, &mut environment).await;
    environment.load_average_after = load_average();

    // Clean up whatever happened.
    let jetstream = async_nats::jetstream::new(nats.clone());
    for stream in [prefix.events_stream(), prefix.ingest_stream()] {
        match jetstream.delete_stream(&stream).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => progress(&format!(
                "warning: could not delete the stream {stream}: {e}"
            )),
        }
    }
    let _ = std::fs::remove_file(&bench_settings.signing_key_path);
    if options.keep {
        progress(&format!("kept the database {}", database.name));
    } else if let Err(e) = database.drop().await {
        progress(&format!(
            "warning: could not drop the database {}: {e}",
            database.name
        ));
    }
    let (rounds, profile) = measured?;

    let medians = medians(&rounds, &options.concurrency);
    let failures = rounds
        .iter()
        .map(|r| r.command.failures + r.command.jetstream.missing + r.baseline.failures)
        .sum();
    let attempted = rounds.len() * options.count * 2;
    let targets_met = medians.iter().all(|f| f.met != Some(false));
    let report = CommandsReport {
        benchmark: "commands",
        started_at: started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        finished_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        options: options.clone(),
        environment,
        rounds,
        medians,
        profile,
        failures,
        attempted,
        targets_met,
    };
    write_report(&options.out, &report)?;
    Ok(report)
}

fn check_options(options: &CommandsBench) -> Result<(), BenchError> {
    if options.count == 0 {
        return Err(BenchError::Options("--count must be at least 1".into()));
    }
    if options.rounds == 0 {
        return Err(BenchError::Options("--rounds must be at least 1".into()));
    }
    if options.concurrency.is_empty() || options.concurrency.contains(&0) {
        return Err(BenchError::Options(
            "--concurrency must list clients per run, each at least 1, like 1,16".into(),
        ));
    }
    if options.concurrency.iter().any(|&c| c > 256) {
        return Err(BenchError::Options(
            "--concurrency above 256 needs more PostgreSQL connections than a default server \
             allows"
                .into(),
        ));
    }
    Ok(())
}

/// The 1, 5 and 15-minute load averages (empty where `/proc` is missing).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub(crate) fn progress(line: &str) {
    eprintln!("bench: {line}");
}

/// `(mount point, bytes available)` of the current directory, from
/// `df -Pk .`.
pub(crate) async fn free_disk() -> Result<(String, u64), BenchError> {
    free_disk_at(Path::new(".")).await
}

/// `(mount point, bytes available)` of the file system holding `path`, from
/// `df -Pk <path>`.
pub(crate) async fn free_disk_at(path: &Path) -> Result<(String, u64), BenchError> {
    let output = tokio::process::Command::new("df")
        .arg("-Pk")
        .arg(path)
        .output()
        .await
        .map_err(|e| BenchError::Df(e.to_string()))?;
    if !output.status.success() {
        return Err(BenchError::Df(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    parse_df(&String::from_utf8_lossy(&output.stdout))
}

/// Parses POSIX `df -Pk` output: a header, then `filesystem blocks used
/// available capacity mount`.
fn parse_df(text: &str) -> Result<(String, u64), BenchError> {
    let line = text
        .lines()
        .nth(1)
        .ok_or_else(|| BenchError::Df(format!("unexpected output {text:?}")))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let available = fields
        .get(3)
        .and_then(|k| k.parse::<u64>().ok())
        .ok_or_else(|| BenchError::Df(format!("unexpected output {text:?}")))?;
    let mount = fields.get(5..).map_or(String::new(), |m| m.join(" "));
    Ok((mount, available.saturating_mul(1024)))
}

/// A loopback port free right now (for a service the benchmark starts).
pub(crate) fn free_loopback_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::Http(format!("finding a free loopback port: {e}")))
}

/// `bench` and 8 random hex digits.
pub(crate) fn random_prefix() -> Result<Prefix, BenchError> {
    let suffix = hex::encode(Uuid::new_v4().as_bytes().get(..4).unwrap_or_default());
    Prefix::from_str(&format!("bench{suffix}")).map_err(|e| BenchError::Options(e.to_string()))
}

/// The benchmark's own database on the configured server.
pub(crate) struct BenchDatabase {
    pub(crate) name: String,
    pub(crate) url: String,
    maintenance: PgConnectOptions,
}

impl BenchDatabase {
    /// Creates `tledger_bench_<timestamp>_<random>` with
    /// `synchronous_commit = on` as its default.
    pub(crate) async fn create(
        url: &str,
        started_at: &chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, BenchError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StartupError::DatabaseUrl(e.to_string()))?
            .disable_statement_logging();
        let maintenance = options.clone().database("postgres");
        let name = format!(
            "tledger_bench_{}_{}",
            started_at.format("%Y%m%d_%H%M%S"),
            hex::encode(Uuid::new_v4().as_bytes().get(..2).unwrap_or_default())
        );
        let mut connection = connect_maintenance(&maintenance).await?;
        let quoted = quote_ident(&name);
        let created = async {
            sqlx::raw_sql(&format!("CREATE DATABASE {quoted} TEMPLATE template0"))
                .execute(&mut connection)
                .await
                .map_err(BenchError::db("creating the benchmark's database"))?;
            // Both sides of the comparison commit synchronously, whatever the
            // server's default is.
            sqlx::raw_sql(&format!(
                "ALTER DATABASE {quoted} SET synchronous_commit = on"
            ))
            .execute(&mut connection)
            .await
            .map_err(BenchError::db(
                "setting synchronous_commit on the benchmark's database",
            ))
        }
        .await;
        let _ = connection.close().await;
        created?;
        Ok(Self {
            url: with_database(url, &name),
            name,
            maintenance,
        })
    }

    pub(crate) async fn drop(&self) -> Result<(), BenchError> {
        let mut connection = connect_maintenance(&self.maintenance).await?;
        let dropped = sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        ))
        .execute(&mut connection)
        .await
        .map_err(BenchError::db("dropping the benchmark's database"));
        let _ = connection.close().await;
        dropped.map(drop)
    }
}

async fn connect_maintenance(options: &PgConnectOptions) -> Result<PgConnection, BenchError> {
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let connected = tokio::time::timeout(
        startup::CONNECT_TIMEOUT,
        PgConnection::connect_with(options),
    )
    .await;
    match connected {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(sqlx::Error::Database(e))) => Err(StartupError::PostgresRefused {
            at,
            reason: e.message().to_owned(),
        }
        .into()),
        Ok(Err(e)) => Err(StartupError::PostgresUnreachable {
            at,
            reason: e.to_string(),
        }
        .into()),
        Err(_) => Err(StartupError::PostgresUnreachable {
            at,
            reason: format!("no answer within {} s", startup::CONNECT_TIMEOUT.as_secs()),
        }
        .into()),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with its database replaced by `database` (the query kept).
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = authority_start + rest.find(['/', '?']).unwrap_or(rest.len());
    let after = &url[authority_end..];
    let query = after.find('?').map_or("", |i| &after[i..]);
    format!("{}/{database}{query}", &url[..authority_end])
}

/// A registered official a nomination can name.
#[derive(Clone, Debug)]
struct Official {
    id: String,
    unit: String,
}

/// What the measuring tasks share.
struct Context {
    http: reqwest::Client,
    base: String,
    bearer: String,
    officials: Vec<Official>,
    /// When each event id was seen on JetStream.
    arrivals: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

type Measured = (Vec<Round>, Vec<Phase>);

/// Starts the service, seeds, runs the rounds and the profile, stops the
/// service.
async fn measure(
    settings: &Settings,
    options: &CommandsBench,
    nats: &async_nats::Client,
    environment: &mut Environment,
) -> Result<Measured, BenchError> {
    let app = app::build(settings).await?;
    let base = format!("http://{}", app.address());
    let store = app.store().clone();
    let service = app.commands().clone();
    let (_, token) = app
        .access()
        .create(Role::Admin, None, None, "bench")
        .await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let mut running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let subject = format!("{}.events.enrollment.>", settings.prefix);
    let subscribe_error = |reason: String| BenchError::Subscribe {
        subject: subject.clone(),
        reason,
    };
    let mut subscriber = nats
        .subscribe(subject.clone())
        .await
        .map_err(|e| subscribe_error(e.to_string()))?;
    nats.flush()
        .await
        .map_err(|e| subscribe_error(e.to_string()))?;
    let arrivals: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let listener = tokio::spawn(async move {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Uuid,
        }
        while let Some(message) = subscriber.next().await {
            let now = Instant::now();
            if let Ok(Id { id }) = serde_json::from_slice(&message.payload) {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id, now);
            }
        }
    });

    let work = async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| BenchError::Http(e.to_string()))?;
        let seed_started = Instant::now();
        let officials = seed(&http, &base, &token).await?;
        environment.seed_units = 2 + COMMUNES;
        environment.seed_officials = officials.len();
        environment.seed_seconds = round3(seed_started.elapsed().as_secs_f64());
        progress(&format!(
            "seeded {} units and {} officials in {:.1} s",
            2 + COMMUNES,
            officials.len(),
            environment.seed_seconds
        ));
        let context = Arc::new(Context {
            http,
            base: base.clone(),
            bearer: format!("Bearer {token}"),
            officials,
            arrivals,
        });
        let first = context
            .officials
            .first()
            .ok_or_else(|| BenchError::Seed("no official was registered".into()))?;
        let payload: Arc<str> = baseline_payload(first)?.into();
        let baseline_options = PgConnectOptions::from_str(&settings.database_url)
            .map_err(|e| StartupError::DatabaseUrl(e.to_string()))?
            .disable_statement_logging();
        prepare_baseline(&store).await?;
        environment.synchronous_commit_commands = show(&store, "synchronous_commit").await?;
        environment.fsync = show(&store, "fsync").await?;
        environment.postgres_version = show(&store, "server_version").await?;

        let postmaster = postmaster_pid(&store).await;
        let mut rounds = Vec::new();
        for round in 1..=options.rounds {
            for &c in &options.concurrency {
                progress(&format!(
                    "round {round}/{}, concurrency {c}: {} nominate commands",
                    options.rounds, options.count
                ));
                let command =
                    command_round(&context, &store, postmaster, round, c, options.count).await?;
                progress(&format!(
                    "  {:.0} commands/s, p50 {:.2} ms, p99 {:.2} ms, JetStream p99 {:.2} ms \
                     after the answer, {} failure(s)",
                    command.throughput_per_s,
                    command.latency.p50_ms,
                    command.latency.p99_ms,
                    command.jetstream.after_answer.p99_ms,
                    command.failures + command.jetstream.missing
                ));
                progress(&format!(
                    "round {round}/{}, concurrency {c}: {} baseline inserts",
                    options.rounds, options.count
                ));
                let baseline = baseline_round(
                    &baseline_options,
                    &store,
                    postmaster,
                    c,
                    options.count,
                    payload.clone(),
                )
                .await?;
                progress(&format!(
                    "  {:.0} rows/s, p50 {:.2} ms, p99 {:.2} ms, {} failure(s)",
                    baseline.throughput_per_s,
                    baseline.latency.p50_ms,
                    baseline.latency.p99_ms,
                    baseline.failures
                ));
                environment.synchronous_commit_baseline = baseline.synchronous_commit.clone();
                rounds.push(Round {
                    round,
                    concurrency: c,
                    command,
                    baseline,
                });
            }
        }
        progress("profile: the command path's parts, one at a time");
        let mut profile = profile_running(&context, &service, &token).await?;
        let profile = profile_rounds(&rounds, &mut profile);
        Ok::<_, BenchError>((rounds, profile))
    };

    let outcome = tokio::select! {
        outcome = work => outcome,
        ended = &mut running => Err(BenchError::Service(match ended {
            Ok(Ok(())) => "it stopped by itself".into(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        })),
    };
    let _ = stop.send(());
    if !running.is_finished() {
        match running.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => progress(&format!("warning: the service stopped with: {e}")),
            Err(e) => progress(&format!("warning: the service task failed: {e}")),
        }
    }
    listener.abort();
    let (rounds, mut profile) = outcome?;

    // With the service stopped, nothing else sequences: time the store's
    // parts on their own.
    let officials = seeded_officials();
    profile.push(profile_bare_service(&store, &settings.prefix, &token, &officials).await?);
    let ids: Vec<String> = officials.into_iter().map(|o| o.id).collect();
    profile.extend(profile_store(&store, &ids).await?);
    profile.push(profile_floor(&store).await?);
    environment.database_size_bytes =
        sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(store.pool())
            .await
            .map_err(BenchError::db("reading the database's size"))?;
    store.pool().close().await;
    Ok((rounds, profile))
}

fn official_id(i: usize) -> String {
    format!("bench-official-{i:04}")
}

fn commune_id(i: usize) -> String {
    format!("bench-commune-{i:02}")
}

pub(crate) async fn show(store: &Store, setting: &'static str) -> Result<String, BenchError> {
    sqlx::query_scalar(&format!("SHOW {setting}"))
        .fetch_one(store.pool())
        .await
        .map_err(BenchError::db("reading a server setting"))
}

/// Sends one command; `Ok(body)` when answered 201, else why not.
async fn post(
    http: &reqwest::Client,
    base: &str,
    bearer: &str,
    name: &str,
    body: Bytes,
) -> Result<Bytes, String> {
    let response = http
        .post(format!("{base}/v1/commands/{name}"))
        .header("authorization", bearer)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status == 201 {
        Ok(body)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// Registers one province, one district, the communes and the officials
/// through commands.
async fn seed(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Vec<Official>, BenchError> {
    let bearer = format!("Bearer {token}");
    let mut units = vec![
        json!({"unit_id": "bench-province", "name": "Tỉnh Thử", "level": "province", "effective_date": "1997-01-01"}),
        json!({"unit_id": "bench-district", "name": "Huyện Thử", "level": "district", "parent_id": "bench-province", "effective_date": "1997-01-01"}),
    ];
    units.extend((1..=COMMUNES).map(|i| {
        json!({"unit_id": commune_id(i), "name": format!("Xã {i}"), "level": "commune", "parent_id": "bench-district", "effective_date": "1997-01-01"})
    }));
    for unit in units {
        post(
            http,
            base,
            &bearer,
            "register_unit",
            unit.to_string().into(),
        )
        .await
        .map_err(|e| BenchError::Seed(format!("register_unit: {e}")))?;
    }
    let officials = seeded_officials();
    let registered: Vec<Result<Bytes, String>> =
        futures::stream::iter(officials.iter().enumerate().map(|(i, o)| {
            let body = json!({
                "official_id": o.id, "full_name": format!("Cán bộ {}", i + 1),
                "birth_year": 1960 + (i % 30), "gender": if i % 2 == 0 { "male" } else { "female" },
                "ethnic_minority": i % 7 == 0, "unit_id": o.unit, "staff_category": "cadre",
                "position": CADRE_POSITIONS[i % CADRE_POSITIONS.len()], "effective_date": "2005-01-01"
            });
            post(http, base, &bearer, "register_official", body.to_string().into())
        }))
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    if let Some(Err(e)) = registered.into_iter().find(Result::is_err) {
        return Err(BenchError::Seed(format!("register_official: {e}")));
    }
    Ok(officials)
}

/// The officials [`seed`] registers, each in one of the communes.
fn seeded_officials() -> Vec<Official> {
    (1..=OFFICIALS)
        .map(|i| Official {
            id: official_id(i),
            unit: commune_id((i - 1) % COMMUNES + 1),
        })
        .collect()
}

/// A realistic nomination of `official` (its commune nominates).
fn nomination(enrollment_id: &str, official: &Official) -> Value {
    json!({
        "enrollment_id": enrollment_id, "official_id": official.id,
        "nominating_unit_id": official.unit,
        "program": {"track": "professional", "level": "intermediate", "specialty": "public_admin", "title": "Trung cấp Hành chính"},
        "institution": {"institution_id": "qn-school", "name": "Trường Chính trị Quảng Nam", "in_province": true},
        "planned_start": "2008-09-01", "planned_end": "2010-06-30",
        "funding": [{"source": "district", "amount_vnd": 4500000}],
        "decision_no": "45/QĐ-UBND", "effective_date": "2008-08-15"
    })
}

/// The data of one nomination as the event store keeps it: the baseline's
/// row payload.
fn baseline_payload(official: &Official) -> Result<String, BenchError> {
    let fact = Fact::from_data(
        FactType::TrainingNominated,
        &nomination("r0c0-000000", official),
    )
    .map_err(|e| BenchError::Seed(format!("the nomination does not parse: {e}")))?;
    Ok(fact.data().to_string())
}

/// A small, fast pseudo-random sequence (splitmix64), seeded from a UUID;
/// it only spreads nominations over officials.
pub(crate) struct Spread(pub(crate) u64);

impl Spread {
    fn new() -> Self {
        Self(Uuid::new_v4().as_u64_pair().0)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n.max(1) as u64) as usize
    }
}

/// What one command of a round did.
struct Sample {
    sent: Instant,
    answered: Instant,
    outcome: Result<Uuid, String>,
}

async fn command_round(
    context: &Arc<Context>,
    store: &Store,
    postmaster: Option<u32>,
    round: usize,
    concurrency: usize,
    count: usize,
) -> Result<CommandRound, BenchError> {
    // Bodies are built before the clock starts.
    let tag = format!("r{round}c{concurrency}-");
    let mut spread = Spread::new();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..count)
            .map(|i| {
                let official = &context.officials[spread.below(context.officials.len())];
                Bytes::from(nomination(&format!("{tag}{i:06}"), official).to_string())
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let wal_before = wal_mark(store).await;
    let cpu_before = cpu_ticks(postmaster);
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..concurrency {
        let (context, bodies, next) = (context.clone(), bodies.clone(), next.clone());
        clients.spawn(async move {
            let mut samples = Vec::with_capacity(count / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let answer = post(
                    &context.http,
                    &context.base,
                    &context.bearer,
                    "nominate",
                    body.clone(),
                )
                .await;
                let answered = Instant::now();
                let outcome = answer.and_then(|body| event_id(&body));
                samples.push(Sample {
                    sent,
                    answered,
                    outcome,
                });
            }
            samples
        });
    }
    let mut samples = Vec::with_capacity(count);
    while let Some(done) = clients.join_next().await {
        samples.extend(done.map_err(|e| BenchError::Service(format!("a client task: {e}")))?);
    }
    let wall = started.elapsed();
    let cpu = cpu_use(postmaster, cpu_before, count);
    let wal = wal_use(store, wal_before, count).await;

    let mut latencies = Vec::with_capacity(count);
    let mut failures = 0;
    let mut failure_examples = Vec::new();
    let mut answered = Vec::with_capacity(count);
    for sample in &samples {
        match &sample.outcome {
            Ok(id) => {
                latencies.push(sample.answered - sample.sent);
                answered.push((*id, sample.sent, sample.answered));
            }
            Err(e) => {
                failures += 1;
                if failure_examples.len() < FAILURE_EXAMPLES {
                    failure_examples.push(e.chars().take(300).collect());
                }
            }
        }
    }
    let jetstream = wait_for_arrivals(&context.arrivals, &answered).await;
    let (events, batches): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT recorded_at) FROM events \
         WHERE aggregate_type = 'enrollment' AND aggregate_id LIKE $1",
    )
    .bind(format!("{tag}%"))
    .fetch_one(store.pool())
    .await
    .map_err(BenchError::db("counting the sequencer's batches"))?;
    let ok = latencies.len();
    Ok(CommandRound {
        commands: count,
        wall_seconds: round3(wall.as_secs_f64()),
        throughput_per_s: round3(ok as f64 / wall.as_secs_f64()),
        latency: Latency::of(latencies),
        failures,
        failure_examples,
        jetstream,
        sequencer_batches: u64::try_from(batches).unwrap_or(0),
        events_per_batch: if batches > 0 {
            round3(events as f64 / batches as f64)
        } else {
            0.0
        },
        cpu,
        wal,
    })
}

/// The id of the one event a 201 answer lists.
fn event_id(body: &[u8]) -> Result<Uuid, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("201, not JSON: {e}"))?;
    answer["events"][0]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| format!("201 without an event id: {answer}"))
}

/// Waits until every answered event is seen on JetStream (or
/// [`ARRIVAL_WAIT`] has passed), then measures the delays.
async fn wait_for_arrivals(
    arrivals: &Mutex<HashMap<Uuid, Instant>>,
    answered: &[(Uuid, Instant, Instant)],
) -> Arrivals {
    let deadline = Instant::now() + ARRIVAL_WAIT;
    loop {
        let all = {
            let seen = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
            answered.iter().all(|(id, _, _)| seen.contains_key(id))
        };
        if all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
    let mut after_answer = Vec::with_capacity(answered.len());
    let mut after_send = Vec::with_capacity(answered.len());
    for (id, sent, answered_at) in answered {
        if let Some(arrived) = seen.get(id) {
            // An event may arrive a hair before the client has read the
            // whole answer: that counts as no delay.
            after_answer.push(arrived.saturating_duration_since(*answered_at));
            after_send.push(arrived.saturating_duration_since(*sent));
        }
    }
    Arrivals {
        arrived: after_answer.len(),
        missing: answered.len() - after_answer.len(),
        after_answer: Latency::of(after_answer),
        after_send: Latency::of(after_send),
    }
}

async fn prepare_baseline(store: &Store) -> Result<(), BenchError> {
    sqlx::raw_sql(BASELINE_TABLE)
        .execute(store.pool())
        .await
        .map_err(BenchError::db("creating the baseline table"))?;
    Ok(())
}

/// N single-row INSERT commits of `payload` into `bench_baseline`, with
/// `concurrency` clients, each on its own connection of one pool, with the
/// statement prepared (sqlx prepares and caches it per connection; one
/// untimed insert per connection prepares it).
async fn baseline_round(
    options: &PgConnectOptions,
    store: &Store,
    postmaster: Option<u32>,
    concurrency: usize,
    count: usize,
    payload: Arc<str>,
) -> Result<BaselineRound, BenchError> {
    let size = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
        .map_err(BenchError::db("connecting the baseline's pool"))?;
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut connection = pool
            .acquire()
            .await
            .map_err(BenchError::db("opening the baseline's connections"))?;
        sqlx::query(BASELINE_INSERT)
            .bind(Uuid::now_v7())
            .bind(&*payload)
            .execute(&mut *connection)
            .await
            .map_err(BenchError::db("preparing the baseline's INSERT"))?;
        connections.push(connection);
    }
    let synchronous_commit: String = match connections.first_mut() {
        Some(connection) => sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut **connection)
            .await
            .map_err(BenchError::db("reading synchronous_commit"))?,
        None => String::new(),
    };

    let next = Arc::new(AtomicUsize::new(0));
    let wal_before = wal_mark(store).await;
    let cpu_before = cpu_ticks(postmaster);
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for mut connection in connections {
        let (next, payload) = (next.clone(), payload.clone());
        clients.spawn(async move {
            let mut latencies = Vec::with_capacity(count / concurrency + 1);
            let mut errors = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let id = Uuid::now_v7();
                let sent = Instant::now();
                let inserted = sqlx::query(BASELINE_INSERT)
                    .bind(id)
                    .bind(&*payload)
                    .execute(&mut *connection)
                    .await;
                match inserted {
                    Ok(_) => latencies.push(sent.elapsed()),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::with_capacity(count);
    let mut failures = 0;
    let mut failure_examples = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (l, errors) =
            done.map_err(|e| BenchError::Service(format!("a baseline client task: {e}")))?;
        latencies.extend(l);
        failures += errors.len();
        failure_examples.extend(
            errors
                .into_iter()
                .take(FAILURE_EXAMPLES.saturating_sub(failure_examples.len())),
        );
    }
    let wall = started.elapsed();
    let cpu = cpu_use(postmaster, cpu_before, count);
    let wal = wal_use(store, wal_before, count).await;
    pool.close().await;
    let ok = latencies.len();
    Ok(BaselineRound {
        inserts: count,
        payload_bytes: payload.len(),
        wall_seconds: round3(wall.as_secs_f64()),
        throughput_per_s: round3(ok as f64 / wall.as_secs_f64()),
        latency: Latency::of(latencies),
        failures,
        failure_examples,
        synchronous_commit,
        cpu,
        wal,
    })
}

/// Times `call` `PROFILE_CALLS` times, one at a time.
async fn time_calls<F, Fut>(mut call: F) -> Result<Latency, BenchError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), BenchError>>,
{
    let mut samples = Vec::with_capacity(PROFILE_CALLS);
    for i in 0..PROFILE_CALLS {
        let started = Instant::now();
        call(i).await?;
        samples.push(started.elapsed());
    }
    Ok(Latency::of(samples))
}

/// The parts timed with the service running: an HTTP round trip without
/// the database, and the command handler without HTTP.
async fn profile_running(
    context: &Arc<Context>,
    service: &tledger::commands::CommandService,
    token: &str,
) -> Result<Vec<Phase>, BenchError> {
    let healthz = format!("{}/healthz", context.base);
    let http = time_calls(|_| {
        let request = context.http.get(&healthz).send();
        async move {
            let response = request
                .await
                .map_err(|e| BenchError::Http(format!("GET /healthz: {e}")))?;
            response
                .bytes()
                .await
                .map_err(|e| BenchError::Http(format!("GET /healthz: {e}")))?;
            Ok(())
        }
    })
    .await?;
    let mut spread = Spread::new();
    let bodies: Vec<Bytes> = (0..PROFILE_CALLS)
        .map(|i| {
            let official = &context.officials[spread.below(context.officials.len())];
            Bytes::from(nomination(&format!("p-execute-{i:06}"), official).to_string())
        })
        .collect();
    let execute = time_calls(|i| {
        let request = CommandRequest {
            name: "nominate".into(),
            body: bodies.get(i).cloned().unwrap_or_default(),
            bearer: Some(token.to_owned()),
            idempotency_key: None,
            correlation_id: None,
        };
        async move {
            let reply = service.execute(request).await;
            if reply.status == 201 {
                Ok(())
            } else {
                Err(BenchError::Seed(format!(
                    "an in-process nominate answered {}: {}",
                    reply.status, reply.body
                )))
            }
        }
    })
    .await?;
    Ok(vec![
        Phase {
            phase: "(d) HTTP round trip of GET /healthz".into(),
            latency: http,
            note: Some("client, loopback TCP, axum; no database".into()),
        },
        Phase {
            phase: "(e) nominate in process (CommandService::execute, no HTTP)".into(),
            latency: execute,
            note: Some(
                "authenticate (cached), two stream loads, decide, append, wait for the \
                 sequencer's announcement"
                    .into(),
            ),
        },
    ])
}

/// The command handler in process with only a sequencer beside it (no
/// relay, no policies, no HTTP), as `services/tledger/tests/api/commands.rs` runs it: what the
/// service's background work costs a command shows against phase (e).
async fn profile_bare_service(
    store: &Store,
    prefix: &Prefix,
    token: &str,
    officials: &[Official],
) -> Result<Phase, BenchError> {
    // The service's own write side, without the rest of its wiring.
    let tledger::app::WriteSide {
        commands: service,
        wake,
        sequenced,
        ..
    } = tledger::app::write_side(store, prefix);
    let (stop, stopped) = oneshot::channel::<()>();
    let sequencer = tokio::spawn(Sequencer::new(store.clone()).run(
        wake,
        sequenced,
        Duration::from_millis(200),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut spread = Spread::new();
    let bodies: Vec<Bytes> = (0..PROFILE_CALLS)
        .map(|i| {
            let official = &officials[spread.below(officials.len())];
            Bytes::from(nomination(&format!("p-bare-{i:06}"), official).to_string())
        })
        .collect();
    let timed = time_calls(|i| {
        let request = CommandRequest {
            name: "nominate".into(),
            body: bodies.get(i).cloned().unwrap_or_default(),
            bearer: Some(token.to_owned()),
            idempotency_key: None,
            correlation_id: None,
        };
        let service = service.clone();
        async move {
            let reply = service.execute(request).await;
            if reply.status == 201 {
                Ok(())
            } else {
                Err(BenchError::Seed(format!(
                    "an in-process nominate answered {}: {}",
                    reply.status, reply.body
                )))
            }
        }
    })
    .await;
    let _ = stop.send(());
    let _ = sequencer.await;
    Ok(Phase {
        phase: "(f) nominate in process with only a sequencer (no relay, no policies)".into(),
        latency: timed?,
        note: Some(
            "the service stopped; as services/tledger/tests/api/commands.rs runs the handler"
                .into(),
        ),
    })
}

/// Puts the HTTP nominate at concurrency 1 (median over the rounds) first,
/// for comparison with its parts.
fn profile_rounds(rounds: &[Round], running: &mut Vec<Phase>) -> Vec<Phase> {
    let at_one: Vec<&Round> = rounds.iter().filter(|r| r.concurrency == 1).collect();
    let mut phases = Vec::new();
    if !at_one.is_empty() {
        let pick = |f: &dyn Fn(&Latency) -> f64| {
            median(at_one.iter().map(|r| f(&r.command.latency)).collect()).unwrap_or(0.0)
        };
        phases.push(Phase {
            phase: "nominate over HTTP (the rounds at concurrency 1, medians)".into(),
            latency: Latency {
                samples: at_one.iter().map(|r| r.command.latency.samples).sum(),
                p50_ms: pick(&|l| l.p50_ms),
                p99_ms: pick(&|l| l.p99_ms),
                mean_ms: pick(&|l| l.mean_ms),
                max_ms: pick(&|l| l.max_ms),
                over_100ms: at_one.iter().map(|r| r.command.latency.over_100ms).sum(),
            },
            note: Some("the whole path, as the table above".into()),
        });
    }
    phases.append(running);
    phases
}

/// The store's parts, timed with the service stopped (nothing else
/// sequences): a round trip, a stream load, an append, a sequencer batch.
async fn profile_store(store: &Store, officials: &[String]) -> Result<Vec<Phase>, BenchError> {
    let ping = time_calls(|_| async {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(store.pool())
            .await
            .map_err(BenchError::db("SELECT 1"))?;
        Ok(())
    })
    .await?;
    let mut spread = Spread::new();
    let picks: Vec<String> = (0..PROFILE_CALLS)
        .map(|_| officials[spread.below(officials.len())].clone())
        .collect();
    let load = time_calls(|i| {
        let id = picks.get(i).cloned().unwrap_or_default();
        async move {
            store.load_stream(AggregateKind::Official, &id).await?;
            Ok(())
        }
    })
    .await?;

    // An append, then the sequencer batch that takes it, a thousand times.
    let official = Official {
        id: official_id(1),
        unit: commune_id(1),
    };
    let mut appends = Vec::with_capacity(PROFILE_CALLS);
    let mut batches = Vec::with_capacity(PROFILE_CALLS);
    let mut held_back = 0usize;
    let mut extra = 0usize;
    let sequencer = Sequencer::new(store.clone());
    // Anything the stopped service left unsequenced goes first, untimed.
    while !sequencer.sequence_batch().await?.events.is_empty() {}
    for i in 0..PROFILE_CALLS {
        let append = nomination_append(format!("p-append-{i:06}"), &official)?;
        let started = Instant::now();
        store.append(&append).await?;
        appends.push(started.elapsed());
        // A transaction open elsewhere in the cluster can hold the
        // sequencer back: the timed batch is the one that sequenced.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let started = Instant::now();
            let batch = sequencer.sequence_batch().await?;
            let took = started.elapsed();
            if !batch.events.is_empty() {
                extra += batch.events.len() - 1;
                batches.push(took);
                break;
            }
            held_back += 1;
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut sequence_note =
        "BEGIN, lock and asynchronous commit, head and ready events, hash, one UPDATE, COMMIT (the running service keeps the lock on its own connection and needs only the two statements)".to_owned();
    if held_back > 0 || extra > 0 {
        let _ = write!(
            sequence_note,
            "; {held_back} empty batch(es) while another transaction held xmin back, {extra} \
             extra event(s)"
        );
    }
    Ok(vec![
        Phase {
            phase: "PostgreSQL round trip (SELECT 1 on the pool)".into(),
            latency: ping,
            note: None,
        },
        Phase {
            phase: "(a) Store::load_stream of an official (1 event)".into(),
            latency: load,
            note: Some("a nominate makes two of these, in parallel".into()),
        },
        Phase {
            phase: "(b) Store::append of a nomination (autocommit)".into(),
            latency: Latency::of(appends),
            note: Some("one statement, one synchronous commit".into()),
        },
        Phase {
            phase: "(c) Sequencer::sequence_batch with one event".into(),
            latency: Latency::of(batches),
            note: Some(sequence_note),
        },
    ])
}

/// The append of one nomination by the benchmark, as a command makes it.
fn nomination_append(enrollment: String, official: &Official) -> Result<Append, BenchError> {
    let fact = Fact::from_data(
        FactType::TrainingNominated,
        &nomination(&enrollment, official),
    )
    .map_err(|e| BenchError::Seed(format!("the nomination does not parse: {e}")))?;
    Ok(Append {
        aggregate: AggregateKind::Enrollment,
        aggregate_id: enrollment,
        expected_version: 0,
        events: vec![NewEvent {
            event_id: Uuid::now_v7(),
            fact,
            metadata: EventMetadata {
                publisher: "/commands/bench".into(),
                actor: "bench".into(),
                command_id: Some(Uuid::now_v7().to_string()),
                correlation_id: None,
                causation_id: None,
            },
        }],
        idempotency: None,
    })
}

/// The least a command can wait under docs/architecture.md, decision 4: its
/// append's commit, then the running sequencer's batch that gives it a
/// position, with nothing else (no HTTP, no loads, no decision, no relay,
/// projector or policy). One over its mean bounds the commands per
/// second of one client, whatever the rest of the path costs.
async fn profile_floor(store: &Store) -> Result<Phase, BenchError> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let (announce, _) = tokio::sync::broadcast::channel(1024);
    let (stop, stopped) = oneshot::channel::<()>();
    let sequencer = tokio::spawn(Sequencer::new(store.clone()).run(
        wake.clone(),
        announce.clone(),
        Duration::from_millis(200),
        async move {
            let _ = stopped.await;
        },
    ));
    let official = Official {
        id: official_id(1),
        unit: commune_id(1),
    };
    let mut samples = Vec::with_capacity(PROFILE_CALLS);
    let mut outcome = Ok(());
    for i in 0..PROFILE_CALLS {
        let append = match nomination_append(format!("p-floor-{i:06}"), &official) {
            Ok(append) => append,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        let event_id = append.events[0].event_id;
        let mut announced = announce.subscribe();
        let started = Instant::now();
        if let Err(e) = store.append(&append).await {
            outcome = Err(e.into());
            break;
        }
        wake.notify_one();
        let sequenced = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(batch) = announced.recv().await {
                if batch.events.iter().any(|(id, _)| *id == event_id) {
                    return true;
                }
            }
            false
        })
        .await;
        if sequenced != Ok(true) {
            outcome = Err(BenchError::Seed(format!(
                "the floor's event {event_id} was not sequenced within 10 s"
            )));
            break;
        }
        samples.push(started.elapsed());
    }
    let _ = stop.send(());
    let _ = sequencer.await;
    outcome?;
    Ok(Phase {
        phase: "(g) the floor: Store::append, then the running sequencer's announcement".into(),
        latency: Latency::of(samples),
        note: Some(
            "what every command waits for under decision 4, and nothing else; one client \
             can send at most 1,000 ÷ its mean commands/s"
                .into(),
        ),
    })
}

/// Writes `<out>/commands.md` and `<out>/commands.json`.
fn write_report(out: &Path, report: &CommandsReport) -> Result<(), BenchError> {
    write_files(out, "commands", &report.markdown(), report)
}

/// Writes `<out>/<stem>.md` and `<out>/<stem>.json` (pretty-printed).
pub(crate) fn write_files(
    out: &Path,
    stem: &str,
    markdown: &str,
    report: &impl Serialize,
) -> Result<(), BenchError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| BenchError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(write_error(out))?;
    let markdown_path = out.join(format!("{stem}.md"));
    std::fs::write(&markdown_path, markdown).map_err(write_error(&markdown_path))?;
    let json_path = out.join(format!("{stem}.json"));
    let json = serde_json::to_string_pretty(report).map_err(|e| BenchError::Write {
        path: json_path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&json_path, json + "\n").map_err(write_error(&json_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(samples);
        assert_eq!(latency.samples, 100);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert_eq!(latency.mean_ms, 50.5);
        let one = Latency::of(vec![Duration::from_micros(1500)]);
        assert_eq!((one.p50_ms, one.p99_ms), (1.5, 1.5));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_twos_mean() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn df_output_gives_the_mount_and_the_bytes_available() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/vda         264212084 24063540  71222348      26% /\n";
        assert_eq!(
            parse_df(text).expect("parses"),
            ("/".to_owned(), 71_222_348 * 1024)
        );
        assert!(parse_df("garbage").is_err());
    }

    #[test]
    fn with_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/tledger", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u@h:1/db?sslmode=disable", "b"),
            "postgres://u@h:1/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "b"), "postgres://u@h:1/b");
    }

    #[test]
    fn the_baseline_payload_is_a_nominations_data() {
        let official = Official {
            id: official_id(7),
            unit: commune_id(3),
        };
        let payload = baseline_payload(&official).expect("parses");
        let value: Value = serde_json::from_str(&payload).expect("JSON");
        assert_eq!(value["official_id"], "bench-official-0007");
        assert_eq!(value["nominating_unit_id"], "bench-commune-03");
        assert!(payload.len() > 300, "{}", payload.len());
    }

    fn round(concurrency: usize, throughput: f64, baseline: f64, p99: f64) -> Round {
        Round {
            round: 1,
            concurrency,
            command: CommandRound {
                throughput_per_s: throughput,
                latency: Latency {
                    p99_ms: p99,
                    ..Latency::default()
                },
                ..CommandRound::default()
            },
            baseline: BaselineRound {
                throughput_per_s: baseline,
                ..BaselineRound::default()
            },
        }
    }

    #[test]
    fn targets_are_judged_on_the_medians() {
        let rounds = vec![
            round(1, 100.0, 1000.0, 20.0),
            round(1, 600.0, 1000.0, 5.0),
            round(1, 700.0, 1000.0, 6.0),
            round(16, 900.0, 2000.0, 30.0),
        ];
        let figures = medians(&rounds, &[1, 16]);
        let find = |figure: &str, c: usize| {
            figures
                .iter()
                .find(|f| f.figure == figure && f.concurrency == c)
                .cloned()
                .expect("figure")
        };
        let throughput = find("throughput_per_s", 1);
        assert_eq!(throughput.command, Some(600.0));
        assert_eq!(throughput.ratio, Some(0.6));
        assert_eq!(throughput.met, Some(true));
        assert_eq!(find("p99_ms", 1).met, Some(true), "median 6 ms");
        assert_eq!(find("p99_ms", 16).met, None, "no latency target at 16");
        assert_eq!(find("throughput_per_s", 16).met, Some(false), "0.45");
        assert_eq!(find("jetstream_p99_after_answer_ms", 1).command, None);
    }

    #[test]
    fn the_spread_stays_in_range() {
        let mut spread = Spread::new();
        assert!((0..10_000).all(|_| spread.below(18) < 18));
        assert_eq!(spread.below(0), 0);
    }
}
