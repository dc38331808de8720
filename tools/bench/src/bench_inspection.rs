//! `tledger bench verify` and `tledger bench replay`: what an inspector
//! waits for over a ledger of N facts (docs/benchmarks.md), against what
//! reading the same archive costs without any checking.
//!
//! The ledger is `bench rebuild`'s (N facts, a quarter each of
//! registrations, nominations, enrolments and completions, after their
//! units and the shipped reference facts), bulk-loaded into a PostgreSQL
//! cluster of the benchmark's own (`bench_cluster`; `--shared-server` uses
//! a throwaway database on the configured server instead), then signed
//! every 10,000 positions and at the head with a key made for the run, as
//! the checkpointer would have signed it. Each round:
//!
//! - **export**: `tledger export` of the whole ledger into the output
//!   directory (facts/s);
//! - `bench verify`: **verify (database)**, `tledger verify` over the table,
//!   and **verify (archive)**, the archive's checks alone (facts/s);
//! - `bench replay`: **replay**, `tledger replay`'s load of the archive
//!   (the checks, and every fact into the in-memory report engine) and one
//!   national `standards` report (seconds, peak memory);
//! - the **baselines**, over the same archive: gunzip and a JSON parse of
//!   every line into `serde_json::Value`, and gunzip and SHA-256 over the
//!   decompressed bytes, which is what reading costs before anything is
//!   checked.
//!
//! Peak memory is this process's, as `bench rebuild` measures it (the
//! high-water mark reset before the pass, `VmHWM` after it).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::read::GzDecoder;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tledger_events::chain;
use tledger_events::checkpoint::CheckpointSigner;
use tledger_events::merkle::Frontier;
use tledger_store::Store;

use crate::bench::{self, BenchError};
use crate::bench_cluster::PrivateCluster;
use crate::bench_ledger::{self, LedgerBenchError, LedgerEnvironment, Loaded};
use crate::bench_rebuild::{self, Memory, MemoryProbe, Target};
use tledger::config::Settings;
use tledger::export::{self, Until};
use tledger::inspection;
use tledger::replay::{self, ReplayReport};

pub const DEFAULT_FACTS: usize = 1_000_000;
pub const DEFAULT_ROUNDS: usize = 3;
/// The targets: verify at least this many facts a second ...
pub const TARGET_VERIFY_FACTS_PER_S: f64 = 200_000.0;
/// ... and replay a million facts in less than this, ...
pub const TARGET_REPLAY_SECONDS_PER_MILLION: f64 = 10.0;
/// ... with a peak resident set under this.
pub const TARGET_PEAK_BYTES: u64 = 1 << 30;
/// Positions between signed checkpoints (the service's default).
const CHECKPOINT_EVERY: u64 = 10_000;
/// Disk per fact: the event row and its indexes, WAL, the archive.
const DISK_PER_FACT: u64 = 3 * 1024;

/// Which of the two benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    Verify,
    Replay,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Verify => "verify",
            Which::Replay => "replay",
        }
    }
}

/// What `tledger bench verify|replay` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectionBench {
    pub facts: usize,
    pub rounds: usize,
    pub out: PathBuf,
    /// Keep the archive (and, with `shared_server`, the database).
    pub keep: bool,
    /// A throwaway database on the configured server instead of a cluster
    /// of the benchmark's own.
    pub shared_server: bool,
}

impl Default for InspectionBench {
    fn default() -> Self {
        Self {
            facts: DEFAULT_FACTS,
            rounds: DEFAULT_ROUNDS,
            out: PathBuf::from("./bench-results"),
            keep: false,
            shared_server: false,
        }
    }
}

/// One measured pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pass {
    pub facts: u64,
    pub seconds: f64,
    pub facts_per_s: f64,
    pub memory: Memory,
}

/// One round: the passes by name, in the order they ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InspectionRound {
    pub round: usize,
    pub passes: Vec<(String, Pass)>,
}

/// One check of the results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub check: String,
    pub expected: u64,
    pub actual: u64,
    pub ok: bool,
}

/// A pass's medians over the rounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub pass: String,
    pub seconds: f64,
    pub facts_per_s: f64,
    /// Against the gunzip-and-parse baseline's facts/s.
    pub ratio_to_parse: f64,
    pub peak_rss_bytes: u64,
    pub growth_bytes: u64,
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InspectionReport {
    pub benchmark: Which,
    pub started_at: String,
    pub finished_at: String,
    pub options: InspectionBench,
    pub cluster: &'static str,
    pub environment: LedgerEnvironment,
    pub load: Loaded,
    pub checkpoints: u64,
    pub archive_bytes: u64,
    pub archive_decompressed_bytes: u64,
    pub rounds: Vec<InspectionRound>,
    pub summary: Vec<Summary>,
    pub checks: Vec<Check>,
    pub targets: Vec<Target>,
    pub targets_met: bool,
}

const EXPORT: &str = "export";
const VERIFY_DATABASE: &str = "verify (database)";
const VERIFY_ARCHIVE: &str = "verify (archive)";
const REPLAY: &str = "replay (verify, load, one report)";
const BASELINE_PARSE: &str = "baseline: gunzip + JSON parse";
const BASELINE_SHA: &str = "baseline: gunzip + SHA-256";

impl InspectionReport {
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            out,
            "# tledger bench {}, {}\n",
            self.benchmark.name(),
            self.started_at
        );
        let _ = writeln!(
            out,
            "A ledger of {} facts ({} bulk-loaded, {} signed checkpoints), on {}; archive {:.1} \
             MiB gzip, {:.1} MiB of JSON lines; {} round(s), medians.{}\n",
            self.load.head,
            self.load.facts,
            self.checkpoints,
            self.cluster,
            mib(self.archive_bytes),
            mib(self.archive_decompressed_bytes),
            self.options.rounds,
            if self.options.facts < DEFAULT_FACTS {
                format!(" **A smoke run: the issue asks for {DEFAULT_FACTS} facts.**")
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
            "| pass | seconds | facts/s | × gunzip + parse | peak RSS MiB | growth MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for s in &self.summary {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} |",
                s.pass,
                s.seconds,
                s.facts_per_s,
                s.ratio_to_parse,
                mib(s.peak_rss_bytes),
                mib(s.growth_bytes)
            );
        }
        let _ = writeln!(out, "\n| target | value | target | met? |");
        let _ = writeln!(out, "|---|---:|---|---|");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.figure,
                bench::number(Some(t.value)),
                t.target,
                if t.met { "yes" } else { "**no**" }
            );
        }
        let failed = self.failures();
        let _ = writeln!(
            out,
            "\nChecks: {} of {} hold{}.",
            self.checks.len() - failed,
            self.checks.len(),
            if failed > 0 { " (**failures**)" } else { "" }
        );
        for c in self.checks.iter().filter(|c| !c.ok) {
            let _ = writeln!(
                out,
                "- **failed**: {}: expected {}, got {}",
                c.check, c.expected, c.actual
            );
        }
        let _ = writeln!(
            out,
            "\n{}",
            bench_ledger::database_markdown(&self.environment)
        );
        out
    }
}

/// `tledger bench verify` or `tledger bench replay`: writes
/// `<out>/<which>.md` and `<out>/<which>.json`, returns the report. Failed
/// checks do not make this fail (see [`InspectionReport::failures`]).
pub async fn run(
    which: Which,
    settings: &Settings,
    options: &InspectionBench,
) -> Result<InspectionReport, LedgerBenchError> {
    if options.facts < 4 {
        return Err(BenchError::Options("--facts must be at least 4".into()).into());
    }
    if options.rounds == 0 {
        return Err(BenchError::Options("--rounds must be at least 1".into()).into());
    }
    let started_at = chrono::Utc::now();
    let (cluster, settings, cluster_name) = if options.shared_server {
        (
            None,
            settings.clone(),
            "a throwaway database on the configured server",
        )
    } else {
        bench::progress("starting a private PostgreSQL cluster");
        let cluster = PrivateCluster::start()?;
        let mut private = settings.clone();
        private.database_url = cluster.url("postgres");
        (
            Some(cluster),
            private,
            "a private PostgreSQL cluster (fsync off)",
        )
    };
    let need = (options.facts as u64).saturating_mul(DISK_PER_FACT) + bench::MIN_FREE_BYTES;
    // A private cluster is thrown away whole: only the archive can be kept.
    let keep_database = options.keep && options.shared_server;
    let prepared = bench_ledger::prepare(&settings, &started_at, need, keep_database).await?;
    bench::progress(&format!(
        "database {}; {} facts, {} round(s)",
        prepared.database.name, options.facts, options.rounds
    ));
    let archive = options
        .out
        .join(format!("{}-ledger.jsonl.gz", which.name()));
    let measured = measure(which, &prepared.store, options, &archive).await;
    let environment = bench_ledger::clean_up(prepared, keep_database).await;
    if !options.keep {
        let _ = std::fs::remove_file(&archive);
    }
    drop(cluster);
    let measured = measured?;

    let summary = summarise(&measured.rounds);
    let head = measured.load.head;
    let mut targets = Vec::new();
    let find = |name: &str| summary.iter().find(|s| s.pass == name);
    if let Some(v) = find(VERIFY_ARCHIVE) {
        targets.push(Target {
            figure: "verify (archive), facts/s",
            value: v.facts_per_s,
            target: format!("≥ {TARGET_VERIFY_FACTS_PER_S}"),
            met: v.facts_per_s >= TARGET_VERIFY_FACTS_PER_S,
        });
    }
    if let Some(v) = find(VERIFY_DATABASE) {
        targets.push(Target {
            figure: "verify (database), facts/s",
            value: v.facts_per_s,
            target: format!("≥ {TARGET_VERIFY_FACTS_PER_S}"),
            met: v.facts_per_s >= TARGET_VERIFY_FACTS_PER_S,
        });
    }
    if let Some(r) = find(REPLAY) {
        let limit = TARGET_REPLAY_SECONDS_PER_MILLION * head as f64 / 1e6;
        targets.push(Target {
            figure: "replay, seconds",
            value: r.seconds,
            target: format!("< {limit:.2} ({TARGET_REPLAY_SECONDS_PER_MILLION} s a million)"),
            met: r.seconds < limit,
        });
        targets.push(Target {
            figure: "replay, peak RSS bytes",
            value: r.peak_rss_bytes as f64,
            target: "< 1 GiB".into(),
            met: r.peak_rss_bytes < TARGET_PEAK_BYTES,
        });
    }
    let report = InspectionReport {
        benchmark: which,
        started_at: started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        finished_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        options: options.clone(),
        cluster: cluster_name,
        environment,
        load: measured.load,
        checkpoints: measured.checkpoints,
        archive_bytes: measured.archive_bytes,
        archive_decompressed_bytes: measured.decompressed_bytes,
        rounds: measured.rounds,
        summary,
        checks: measured.checks,
        targets_met: targets.iter().all(|t| t.met),
        targets,
    };
    bench::write_files(&options.out, which.name(), &report.markdown(), &report)?;
    Ok(report)
}

fn summarise(rounds: &[InspectionRound]) -> Vec<Summary> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    let median_of = |name: &str, pick: &dyn Fn(&Pass) -> f64| {
        let values = rounds
            .iter()
            .flat_map(|r| r.passes.iter().filter(|(n, _)| n == name))
            .map(|(_, p)| pick(p))
            .collect();
        bench::median(values).unwrap_or(0.0)
    };
    let parse_rate = median_of(BASELINE_PARSE, &|p| p.facts_per_s);
    first
        .passes
        .iter()
        .map(|(name, _)| {
            let facts_per_s = bench::round3(median_of(name, &|p| p.facts_per_s));
            let max_of = |pick: &dyn Fn(&Pass) -> u64| {
                rounds
                    .iter()
                    .flat_map(|r| r.passes.iter().filter(|(n, _)| n == name))
                    .map(|(_, p)| pick(p))
                    .max()
                    .unwrap_or(0)
            };
            Summary {
                pass: name.clone(),
                seconds: bench::round3(median_of(name, &|p| p.seconds)),
                facts_per_s,
                ratio_to_parse: if parse_rate > 0.0 {
                    bench::round3(facts_per_s / parse_rate)
                } else {
                    0.0
                },
                peak_rss_bytes: max_of(&|p| p.memory.peak_rss_bytes),
                growth_bytes: max_of(&|p| p.memory.growth_bytes),
            }
        })
        .collect()
}

struct Measured {
    load: Loaded,
    checkpoints: u64,
    archive_bytes: u64,
    decompressed_bytes: u64,
    rounds: Vec<InspectionRound>,
    checks: Vec<Check>,
}

fn check(checks: &mut Vec<Check>, check: String, expected: u64, actual: u64) {
    checks.push(Check {
        check,
        expected,
        actual,
        ok: expected == actual,
    });
}

/// Times `step`, with this process's peak memory around it.
fn timed<T>(facts: u64, step: impl FnOnce() -> T) -> (Pass, T) {
    let memory = MemoryProbe::start();
    let started = Instant::now();
    let value = step();
    let seconds = started.elapsed().as_secs_f64();
    (
        Pass {
            facts,
            seconds: bench::round3(seconds),
            facts_per_s: bench::round3(facts as f64 / seconds.max(1e-9)),
            memory: memory.finish(),
        },
        value,
    )
}

fn report_pass(name: &str, pass: &Pass) {
    bench::progress(&format!(
        "  {name}: {:.2} s, {:.0} facts/s, peak RSS {:.0} MiB",
        pass.seconds,
        pass.facts_per_s,
        pass.memory.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    ));
}

async fn measure(
    which: Which,
    store: &Store,
    options: &InspectionBench,
    archive: &Path,
) -> Result<Measured, LedgerBenchError> {
    let people = options.facts / 4;
    bench::progress(&format!("loading {} facts", people * 4));
    let (load, ()) =
        bench_ledger::bulk_load(store, move |writer| bench_rebuild::generate(writer, people))
            .await?;
    bench::progress(&format!(
        "loaded {} facts in {:.1} s; head {}",
        load.facts, load.seconds, load.head
    ));
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| LedgerBenchError::Generate(format!("a signing key: {e}")))?;
    let signer = CheckpointSigner::from_secret(secret);
    let key = signer.verifier();
    let checkpoints = sign_checkpoints(store, &signer, load.head).await?;
    // With --keep, the archive can be checked again by hand with this key.
    bench::progress(&format!(
        "signed {checkpoints} checkpoints; public key {}",
        signer.public_hex()
    ));
    std::fs::create_dir_all(&options.out).map_err(|source| BenchError::Write {
        path: options.out.clone(),
        source,
    })?;
    let head = load.head;
    let mut rounds = Vec::new();
    let mut checks = Vec::new();
    let (mut archive_bytes, mut decompressed_bytes) = (0, 0);
    for round in 1..=options.rounds {
        bench::progress(&format!("round {round}/{}", options.rounds));
        let mut passes = Vec::new();
        if which == Which::Verify {
            let memory = MemoryProbe::start();
            let started = Instant::now();
            let found = inspection::verify_ledger(store, &key, None)
                .await
                .map_err(|e| LedgerBenchError::Generate(format!("tledger verify: {e}")))?;
            let seconds = started.elapsed().as_secs_f64();
            let pass = Pass {
                facts: found.events,
                seconds: bench::round3(seconds),
                facts_per_s: bench::round3(found.events as f64 / seconds.max(1e-9)),
                memory: memory.finish(),
            };
            report_pass(VERIFY_DATABASE, &pass);
            check(
                &mut checks,
                format!("round {round}: tledger verify found no damage"),
                0,
                u64::from(found.first_bad.is_some()),
            );
            check(
                &mut checks,
                format!("round {round}: tledger verify reached the head"),
                head,
                found.events,
            );
            passes.push((VERIFY_DATABASE.to_owned(), pass));
        }

        let memory = MemoryProbe::start();
        let started = Instant::now();
        let exported = export::export(store, &signer, Until::Head, archive)
            .await
            .map_err(|e| LedgerBenchError::Generate(format!("tledger export: {e}")))?;
        let seconds = started.elapsed().as_secs_f64();
        let pass = Pass {
            facts: exported.events,
            seconds: bench::round3(seconds),
            facts_per_s: bench::round3(exported.events as f64 / seconds.max(1e-9)),
            memory: memory.finish(),
        };
        report_pass(EXPORT, &pass);
        check(
            &mut checks,
            format!("round {round}: the export holds every fact"),
            head,
            exported.events,
        );
        passes.push((EXPORT.to_owned(), pass));
        archive_bytes = std::fs::metadata(archive).map_or(0, |m| m.len());

        match which {
            Which::Verify => {
                let (pass, read) = timed(head, || export::read_archive(archive, &key));
                report_pass(VERIFY_ARCHIVE, &pass);
                check(
                    &mut checks,
                    format!(
                        "round {round}: the archive verifies{}",
                        read.as_ref()
                            .err()
                            .map_or(String::new(), |e| format!(" ({e})"))
                    ),
                    head,
                    read.map_or(0, |r| r.events),
                );
                passes.push((VERIFY_ARCHIVE.to_owned(), pass));
            }
            Which::Replay => {
                let request = ReplayReport {
                    name: "standards".into(),
                    as_of: Some(tledger_events::Date::from(bench_ledger::date(2020, 1, 1))),
                    ..ReplayReport::default()
                };
                let (pass, replayed) = timed(head, || {
                    let (replayed, ledger) = replay::load(archive, &key)?;
                    replay::report_json(&ledger, &request).map(|json| (replayed, json))
                });
                report_pass(REPLAY, &pass);
                let (events, at_position) = match &replayed {
                    Ok((r, json)) => (
                        r.events,
                        json.get("position").and_then(|p| p.as_u64()).unwrap_or(0),
                    ),
                    Err(e) => {
                        bench::progress(&format!("  replay failed: {e}"));
                        (0, 0)
                    }
                };
                check(
                    &mut checks,
                    format!("round {round}: the replay took every fact"),
                    head,
                    events,
                );
                check(
                    &mut checks,
                    format!("round {round}: the replayed report is at the archive's last position"),
                    head,
                    at_position,
                );
                passes.push((REPLAY.to_owned(), pass));
            }
        }

        let (pass, parsed) = timed(head, || baseline(archive, Baseline::Parse));
        report_pass(BASELINE_PARSE, &pass);
        let (lines, bytes) = parsed?;
        decompressed_bytes = bytes;
        check(
            &mut checks,
            format!("round {round}: the baseline parsed every line"),
            head + exported.checkpoints + 2,
            lines,
        );
        passes.push((BASELINE_PARSE.to_owned(), pass));
        let (pass, hashed) = timed(head, || baseline(archive, Baseline::Sha256));
        report_pass(BASELINE_SHA, &pass);
        hashed?;
        passes.push((BASELINE_SHA.to_owned(), pass));
        rounds.push(InspectionRound { round, passes });
    }
    Ok(Measured {
        load,
        checkpoints,
        archive_bytes,
        decompressed_bytes,
        rounds,
        checks,
    })
}

/// Signs a checkpoint every [`CHECKPOINT_EVERY`] positions and at `head`
/// over the stored hashes, as the checkpointer does while the ledger grows.
async fn sign_checkpoints(
    store: &Store,
    signer: &CheckpointSigner,
    head: u64,
) -> Result<u64, LedgerBenchError> {
    let public = hex::decode(signer.public_hex()).unwrap_or_default();
    let mut frontier = Frontier::new();
    let mut signed = 0;
    while frontier.size() < head {
        let hashes = store.event_hashes(frontier.size(), 50_000).await?;
        if hashes.is_empty() {
            break;
        }
        for (position, hash) in hashes {
            frontier.push_event(&hash);
            if position % CHECKPOINT_EVERY == 0 || position == head {
                let checkpoint = signer
                    .sign(
                        position,
                        hash,
                        frontier.root(),
                        chain::format_instant(chrono::Utc::now()),
                    )
                    .map_err(|e| LedgerBenchError::Generate(format!("a checkpoint: {e}")))?;
                store.record_checkpoint(&checkpoint, &public).await?;
                signed += 1;
            }
        }
    }
    Ok(signed)
}

#[derive(Clone, Copy)]
enum Baseline {
    Parse,
    Sha256,
}

/// Reads the archive without checking anything: gunzip, then each line
/// parsed into a `serde_json::Value`, or every byte through SHA-256.
/// Returns the lines and the decompressed bytes.
fn baseline(archive: &Path, what: Baseline) -> Result<(u64, u64), LedgerBenchError> {
    let failed = |e: String| LedgerBenchError::Generate(format!("the baseline: {e}"));
    let file = File::open(archive).map_err(|e| failed(e.to_string()))?;
    let mut reader = BufReader::with_capacity(1 << 16, GzDecoder::new(BufReader::new(file)));
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut digest = Sha256::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        lines += 1;
        bytes += n as u64;
        match what {
            Baseline::Parse => {
                let value: serde_json::Value =
                    serde_json::from_slice(&line).map_err(|e| failed(e.to_string()))?;
                std::hint::black_box(value);
            }
            Baseline::Sha256 => digest.update(&line),
        }
    }
    std::hint::black_box(digest.finalize());
    Ok((lines, bytes))
}
