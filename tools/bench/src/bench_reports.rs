//! `tledger bench reports`: the `standards` and `training-volume` reports
//! at national scale, for one province and for the whole country, at a
//! recent and at a ten-year-old date (docs/benchmarks.md).
//!
//! The data: provinces, districts of ten communes (the communes move
//! directly under their province in the 2025 reform), officials in the
//! communes' cadre and civil-servant posts registered from 1995 on, with
//! their prior qualifications, some reassigned and some leaving, and their
//! training places (nominated, then mostly enrolled and completed; a
//! completed degree programme records the qualification, as the policy
//! does). The ledger is bulk-loaded (`bench_ledger`) and the real projector
//! catches the read models up from it, so the read models are what the
//! service would hold. While generating, the benchmark counts what the
//! answers must say (people in post, places enrolled in the window, per
//! province and date); every answer is checked against those counts.
//!
//! The reports are timed over HTTP, through the service's router (the same
//! handler, token check and JSON as `tledger serve`) served in this process
//! on a loopback port, one request at a time; only the HTTP server runs (no
//! sequencer, relay, projector or policies: nothing is written while
//! measuring, and NATS is not needed). The baseline, in the same rounds,
//! is one SQL statement per request that counts the rows the report reads,
//! with the same filter (the date, and the units of the province as the
//! report's hierarchy gives them), without the cut, retractions, "latest
//! per person", the figures, the hierarchy or HTTP: the floor PostgreSQL
//! sets for touching those rows (for the volume, the units' enrolled
//! places in the window; for the standards, the units' standing rows in
//! force on the date, ADR 17).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use serde_json::{json, Value};
use tledger_events::{AggregateKind, Date, FactType};
use tledger_projections::projector::Projector;
use tledger_projections::reports::ReadModels;
use tledger_store::Store;
use tokio::sync::oneshot;

use crate::bench::{self, BenchError, Latency};
use crate::bench_ledger::{
    self, date, day, fact, ChainWriter, Country, LedgerBenchError, LedgerEnvironment, Loaded,
    POSTS, RESULTS,
};
use tledger::access::Role;
use tledger::config::Settings;
use tledger::web::{router, WebState};

pub const DEFAULT_OFFICIALS: usize = 300_000;
pub const DEFAULT_PLACES: usize = 2_000_000;
pub const DEFAULT_PROVINCES: usize = 34;
pub const DEFAULT_COMMUNES: usize = 3_300;
pub const DEFAULT_ROUNDS: usize = 3;
/// Requests per report, scope and date in each round.
pub const DEFAULT_REQUESTS: usize = 50;
/// The targets for the p99 of one province and of the country.
pub const TARGET_PROVINCE_P99_MS: f64 = 50.0;
pub const TARGET_COUNTRY_P99_MS: f64 = 500.0;
/// Disk per fact: the event row and its indexes, the read models and WAL;
/// about 1.5 kB on a full run, with a margin.
const DISK_PER_FACT: u64 = 2560;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Mismatching answers kept per case and round.
const MISMATCH_EXAMPLES: usize = 3;

/// The last day of the generated history, the recent report date.
fn recent() -> NaiveDate {
    date(2025, 12, 31)
}

/// Ten years before it.
fn ten_years_ago() -> NaiveDate {
    date(2015, 12, 31)
}

/// What `tledger bench reports` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportsBench {
    pub officials: usize,
    pub places: usize,
    pub provinces: usize,
    pub communes: usize,
    pub rounds: usize,
    /// Requests per report, scope and date in each round (and as many
    /// baseline statements).
    pub requests: usize,
    pub out: PathBuf,
    pub keep: bool,
}

impl Default for ReportsBench {
    fn default() -> Self {
        Self {
            officials: DEFAULT_OFFICIALS,
            places: DEFAULT_PLACES,
            provinces: DEFAULT_PROVINCES,
            communes: DEFAULT_COMMUNES,
            rounds: DEFAULT_ROUNDS,
            requests: DEFAULT_REQUESTS,
            out: PathBuf::from("./bench-results"),
            keep: false,
        }
    }
}

impl ReportsBench {
    fn check(&self) -> Result<(), BenchError> {
        let fail = |m: &str| Err(BenchError::Options(m.into()));
        if self.provinces == 0 || self.provinces > 99 {
            return fail("--provinces must be between 1 and 99");
        }
        if self.communes < self.provinces || self.communes > 9999 {
            return fail("--communes must be at least --provinces and at most 9999");
        }
        if self.officials == 0 || self.officials > 9_999_999 {
            return fail("--officials must be between 1 and 9,999,999");
        }
        if self.places > 99_999_999 {
            return fail("--places must be at most 99,999,999");
        }
        if self.rounds == 0 || self.requests == 0 {
            return fail("--rounds and --requests must be at least 1");
        }
        Ok(())
    }

    fn smoke(&self) -> bool {
        self.officials < DEFAULT_OFFICIALS
            || self.places < DEFAULT_PLACES
            || self.communes < DEFAULT_COMMUNES
            || self.provinces < DEFAULT_PROVINCES
    }
}

/// What the generator recorded: per report date (recent, ten years ago)
/// and province, the people in post and the places enrolled in the
/// report's five-year window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Expected {
    pub in_post: [Vec<u64>; 2],
    pub enrolled_in_window: [Vec<u64>; 2],
    pub leavings: u64,
    pub assignments: u64,
    pub places_enrolled: u64,
    pub places_completed: u64,
    pub places_cancelled: u64,
    pub qualifications_from_training: u64,
    /// Qualifications recorded by mistake and retracted.
    pub retractions: u64,
}

impl Expected {
    fn figure(&self, report: Report, date: usize, province: Option<usize>) -> u64 {
        let by_province = match report {
            Report::Standards => &self.in_post[date],
            Report::TrainingVolume => &self.enrolled_in_window[date],
        };
        match province {
            Some(p) => by_province.get(p).copied().unwrap_or(0),
            None => by_province.iter().sum(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Report {
    Standards,
    TrainingVolume,
}

impl Report {
    pub fn name(self) -> &'static str {
        match self {
            Report::Standards => "standards",
            Report::TrainingVolume => "training-volume",
        }
    }

    /// The answer's figure the generator predicts.
    fn figure(self) -> &'static str {
        match self {
            Report::Standards => "population",
            Report::TrainingVolume => "total",
        }
    }
}

/// One report at one scope and date: measured in every round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Case {
    report: Report,
    country: bool,
    /// 0: recent, 1: ten years ago.
    date: usize,
}

const CASES: [Case; 8] = [
    Case {
        report: Report::Standards,
        country: false,
        date: 0,
    },
    Case {
        report: Report::Standards,
        country: false,
        date: 1,
    },
    Case {
        report: Report::Standards,
        country: true,
        date: 0,
    },
    Case {
        report: Report::Standards,
        country: true,
        date: 1,
    },
    Case {
        report: Report::TrainingVolume,
        country: false,
        date: 0,
    },
    Case {
        report: Report::TrainingVolume,
        country: false,
        date: 1,
    },
    Case {
        report: Report::TrainingVolume,
        country: true,
        date: 0,
    },
    Case {
        report: Report::TrainingVolume,
        country: true,
        date: 1,
    },
];

impl Case {
    fn scope(self) -> &'static str {
        if self.country {
            "country"
        } else {
            "province"
        }
    }

    fn as_of(self) -> NaiveDate {
        if self.date == 0 {
            recent()
        } else {
            ten_years_ago()
        }
    }

    fn target_ms(self) -> f64 {
        if self.country {
            TARGET_COUNTRY_P99_MS
        } else {
            TARGET_PROVINCE_P99_MS
        }
    }
}

/// One case in one round.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseRound {
    pub round: usize,
    pub report: Report,
    pub scope: &'static str,
    pub as_of: String,
    /// Report requests over HTTP.
    pub latency: Latency,
    /// Baseline statements.
    pub baseline: Latency,
    /// Answers that were not 200 or whose figure differed from the
    /// generator's count.
    pub mismatches: usize,
    pub mismatch_examples: Vec<String>,
}

/// The medians over the rounds of one case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseSummary {
    pub report: Report,
    pub scope: &'static str,
    pub as_of: String,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub baseline_p50_ms: f64,
    pub baseline_p99_ms: f64,
    /// Report p99 ÷ baseline p99.
    pub ratio_p99: Option<f64>,
    pub target_p99_ms: f64,
    pub met: bool,
    /// The figure the answers carried (the generator's count): people in
    /// post or places, for the country or summed over the provinces asked.
    pub expected_figure: String,
}

/// The generated data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataStats {
    pub country: Country,
    pub districts: usize,
    pub officials: usize,
    pub places: usize,
    pub expected: Expected,
    pub load: Loaded,
    /// The projector catching the live read models up from position 0.
    pub projector_seconds: f64,
    pub projector_facts_per_s: f64,
    pub read_models: BTreeMap<String, i64>,
}

/// Everything one `tledger bench reports` run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportsReport {
    pub benchmark: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub options: ReportsBench,
    pub environment: LedgerEnvironment,
    pub transport: &'static str,
    pub data: DataStats,
    pub rounds: Vec<CaseRound>,
    pub medians: Vec<CaseSummary>,
    pub answers: usize,
    pub mismatches: usize,
    pub targets_met: bool,
}

const TRANSPORT: &str = "HTTP GET /v1/reports/<name> through the service's router in this \
     process on a loopback port, one request at a time, admin token; only the HTTP server runs";

impl ReportsReport {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let o = &self.options;
        let d = &self.data;
        let _ = writeln!(out, "# tledger bench reports, {}\n", self.started_at);
        let _ = writeln!(
            out,
            "{} officials in {} communes ({} districts until the 2025 reform) of {} provinces, \
             {} training places; {} facts in the ledger, projected by the real projector. \
             `standards` and `training-volume` for one province (a different one each \
             request) and for the whole country, as of {} and {} (the volume's window: the five \
             calendar years to that date), {} request(s) per case and round over {}, against a \
             baseline statement counting the same rows with the same filter, alternating, {} \
             round(s); medians over the rounds.{}\n",
            d.officials,
            d.country.communes,
            d.districts,
            d.country.provinces,
            d.places,
            d.load.head,
            day(recent()),
            day(ten_years_ago()),
            o.requests,
            self.transport,
            o.rounds,
            if o.smoke() {
                " **A smoke run: the issue asks for at least 300,000 officials in 3,300 \
                 communes of 34 provinces and 2,000,000 training places.**"
                    .to_owned()
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "{}\n",
            bench_ledger::environment_markdown(&self.environment)
        );
        let _ = writeln!(
            out,
            "| report | scope | as_of | p50 ms | p99 ms | baseline p50 ms | baseline p99 ms | p99 ratio | target | met? | answers say |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---|---|---|");
        for m in &self.medians {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | p99 < {:.0} ms | {} | {} |",
                m.report.name(),
                m.scope,
                m.as_of,
                m.p50_ms,
                m.p99_ms,
                m.baseline_p50_ms,
                m.baseline_p99_ms,
                m.ratio_p99.map_or("—".into(), |r| format!("{r:.1}")),
                m.target_p99_ms,
                if m.met { "yes" } else { "**no**" },
                m.expected_figure,
            );
        }
        let _ =
            writeln!(
            out,
            "\nTargets {}. Answers checked against the generator's counts: {} of {} differed.{}\n",
            if self.targets_met { "met" } else { "**missed**" },
            self.mismatches,
            self.answers,
            if self.mismatches > 0 {
                " **This run had wrong or failed answers: its numbers do not count.**"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "## Rounds\n");
        let _ = writeln!(
            out,
            "| round | report | scope | as_of | p50 ms | p99 ms | max ms | baseline p50 ms | baseline p99 ms | wrong answers |"
        );
        let _ = writeln!(out, "|---:|---|---|---|---:|---:|---:|---:|---:|---:|");
        for r in &self.rounds {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                r.round,
                r.report.name(),
                r.scope,
                r.as_of,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.latency.max_ms,
                r.baseline.p50_ms,
                r.baseline.p99_ms,
                r.mismatches,
            );
            for example in &r.mismatch_examples {
                let _ = writeln!(out, "\n> {example}\n");
            }
        }
        let _ = writeln!(out, "\n## Data\n");
        let e = &d.expected;
        let _ = writeln!(
            out,
            "- ledger: {} facts bulk-loaded in {:.1} s ({:.0} facts/s; chain hashes of {} read \
             back and checked), by type: {}",
            d.load.facts,
            d.load.seconds,
            d.load.facts_per_s,
            d.load.chain_checked,
            d.load
                .by_type
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "- projector (catch-up of the live read models from position 0): {:.1} s, {:.0} \
             facts/s",
            d.projector_seconds, d.projector_facts_per_s
        );
        let _ = writeln!(
            out,
            "- in post: {} on {}, {} on {}; {} leavings, {} reassignments, {} qualifications \
             recorded by mistake and retracted",
            e.in_post[0].iter().sum::<u64>(),
            day(recent()),
            e.in_post[1].iter().sum::<u64>(),
            day(ten_years_ago()),
            e.leavings,
            e.assignments,
            e.retractions
        );
        let _ = writeln!(
            out,
            "- places: {} enrolled ({} in the window to {}, {} in the window to {}), {} \
             completed, {} cancelled; {} qualifications from completed degree programmes",
            e.places_enrolled,
            e.enrolled_in_window[0].iter().sum::<u64>(),
            day(recent()),
            e.enrolled_in_window[1].iter().sum::<u64>(),
            day(ten_years_ago()),
            e.places_completed,
            e.places_cancelled,
            e.qualifications_from_training
        );
        let _ = writeln!(
            out,
            "- read models: {}",
            d.read_models
                .iter()
                .map(|(t, n)| format!("rm.{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "\nBaseline statements (in process, sqlx, no HTTP): standards counts the \
             units' standing rows in force on the date (rm.standing); training-volume counts the units' \
             enrolled places (rm.enrolled_places) in the window. One untimed request per case \
             warms the caches first.\n"
        );
        let _ = writeln!(
            out,
            "{}",
            bench_ledger::database_markdown(&self.environment)
        );
        out
    }
}

/// Runs `tledger bench reports` on a database of its own on `settings`'
/// server, writes `<out>/reports.md` and `<out>/reports.json`, and returns
/// the report. Wrong answers do not make this fail: the report counts them
/// (see [`ReportsReport::mismatches`]).
pub async fn reports(
    settings: &Settings,
    options: &ReportsBench,
) -> Result<ReportsReport, LedgerBenchError> {
    options.check()?;
    let started_at = chrono::Utc::now();
    // About three facts per place and per official.
    let facts = 3 * (options.places as u64 + options.officials as u64);
    let need = facts.saturating_mul(DISK_PER_FACT) + bench::MIN_FREE_BYTES;
    let prepared = bench_ledger::prepare(settings, &started_at, need, options.keep).await?;
    bench::progress(&format!(
        "database {}; {} officials, {} places, {} communes in {} provinces",
        prepared.database.name,
        options.officials,
        options.places,
        options.communes,
        options.provinces
    ));
    let measured = measure(&prepared.store, options).await;
    let environment = bench_ledger::clean_up(prepared, options.keep).await;
    let (data, rounds) = measured?;

    let mut medians = Vec::new();
    for case in CASES {
        let at: Vec<&CaseRound> = rounds
            .iter()
            .filter(|r| {
                r.report == case.report && r.scope == case.scope() && r.as_of == day(case.as_of())
            })
            .collect();
        let of = |pick: &dyn Fn(&CaseRound) -> f64| {
            bench::round3(bench::median(at.iter().map(|r| pick(r)).collect()).unwrap_or(0.0))
        };
        let p99 = of(&|r| r.latency.p99_ms);
        let baseline_p99 = of(&|r| r.baseline.p99_ms);
        medians.push(CaseSummary {
            report: case.report,
            scope: case.scope(),
            as_of: day(case.as_of()),
            requests: at.iter().map(|r| r.latency.samples).sum(),
            p50_ms: of(&|r| r.latency.p50_ms),
            p99_ms: p99,
            baseline_p50_ms: of(&|r| r.baseline.p50_ms),
            baseline_p99_ms: baseline_p99,
            ratio_p99: (baseline_p99 > 0.0).then(|| bench::round3(p99 / baseline_p99)),
            target_p99_ms: case.target_ms(),
            met: p99 < case.target_ms(),
            expected_figure: expected_label(&data, case),
        });
    }
    let answers = rounds
        .iter()
        .map(|r| r.latency.samples + r.mismatches)
        .sum();
    let mismatches = rounds.iter().map(|r| r.mismatches).sum();
    let report = ReportsReport {
        benchmark: "reports",
        started_at: started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        finished_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        options: options.clone(),
        environment,
        transport: TRANSPORT,
        data,
        targets_met: medians.iter().all(|m| m.met),
        rounds,
        medians,
        answers,
        mismatches,
    };
    bench::write_files(&options.out, "reports", &report.markdown(), &report)?;
    Ok(report)
}

fn expected_label(data: &DataStats, case: Case) -> String {
    let e = &data.expected;
    let what = match case.report {
        Report::Standards => "in post",
        Report::TrainingVolume => "places",
    };
    if case.country {
        format!("{} {what}", e.figure(case.report, case.date, None))
    } else {
        let per: Vec<u64> = (0..data.country.provinces)
            .map(|p| e.figure(case.report, case.date, Some(p)))
            .collect();
        format!(
            "{}–{} {what} per province",
            per.iter().min().copied().unwrap_or(0),
            per.iter().max().copied().unwrap_or(0)
        )
    }
}

async fn measure(
    store: &Store,
    options: &ReportsBench,
) -> Result<(DataStats, Vec<CaseRound>), LedgerBenchError> {
    let country = Country {
        provinces: options.provinces,
        communes: options.communes,
    };
    bench::progress(&format!(
        "loading the ledger: {} units, {} officials, {} places",
        country.provinces + country.districts() + country.communes * 2,
        options.officials,
        options.places
    ));
    let (officials, places) = (options.officials, options.places);
    let (load, expected) = bench_ledger::bulk_load(store, move |writer| {
        generate(writer, country, officials, places)
    })
    .await?;
    bench::progress(&format!(
        "loaded {} facts in {:.1} s ({:.0} facts/s); the projector catches up",
        load.facts, load.seconds, load.facts_per_s
    ));
    let started = Instant::now();
    let reached = Projector::new(store.clone())
        .with_batch_size(5000)
        .catch_up()
        .await?;
    let projector_seconds = started.elapsed().as_secs_f64();
    bench::progress(&format!(
        "projected {reached} facts in {projector_seconds:.1} s"
    ));
    // Autovacuum would get there on its own after such a load; done here
    // so that the timings do not depend on when it does.
    sqlx::raw_sql(
        "VACUUM (ANALYZE) rm.unit_facts, rm.reference_data, rm.placements, \
                   rm.qualifications, rm.places, rm.place_steps, rm.retractions, \
                   rm.enrolled_places, rm.standing",
    )
    .execute(store.pool())
    .await
    .map_err(BenchError::db("vacuuming the read models"))?;
    let read_models = bench_ledger::read_model_rows(store).await?;
    let data = DataStats {
        country,
        districts: country.districts(),
        officials,
        places,
        expected,
        projector_seconds: bench::round3(projector_seconds),
        projector_facts_per_s: bench::round3(reached as f64 / projector_seconds.max(1e-9)),
        load,
        read_models,
    };

    let server = Server::start(store).await?;
    let measured = measure_rounds(store, &server, &data, options, reached).await;
    server.stop().await;
    Ok((data, measured?))
}

/// The service's router on a loopback port, with an admin token.
struct Server {
    base: String,
    bearer: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(store: &Store) -> Result<Self, LedgerBenchError> {
        // The service's own write side; no sequencer or projector runs: the
        // ledger and its read models are loaded before the rounds.
        let tledger::app::WriteSide {
            access, commands, ..
        } = tledger::app::write_side(store, &bench::random_prefix()?);
        let (_, token) = access
            .create(Role::Admin, None, None, "bench")
            .await
            .map_err(BenchError::from)?;
        let app = router(WebState {
            commands,
            store: store.clone(),
            metrics: tledger::telemetry::metrics(),
            jetstream: None,
            dashboard: tledger::web::dashboard::DashboardState::new(None),
            read_models: ReadModels::new(store.pool().clone()),
            relay: tledger::relay::RelayWatch::default(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| BenchError::Http(format!("binding a loopback port: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| BenchError::Http(format!("binding a loopback port: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tledger::web::server::serve(
                listener,
                app,
                tledger::web::server::HEADER_READ_TIMEOUT,
                async move {
                    let _ = stopped.await;
                },
            )
            .await
        });
        Ok(Self {
            base: format!("http://{address}"),
            bearer: format!("Bearer {token}"),
            stop,
            task,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            bench::progress(&format!("warning: the HTTP server task failed: {e}"));
        }
    }
}

/// The units of each province on each report date, from the read models'
/// hierarchy (what the report computes for itself on every request).
type Scopes = [Vec<Vec<String>>; 2];

async fn scopes(store: &Store, country: Country, cut: u64) -> Result<Scopes, LedgerBenchError> {
    let hierarchy = ReadModels::new(store.pool().clone())
        .unit_tree(cut)
        .await
        .map_err(|e| BenchError::Seed(format!("reading the hierarchy: {e}")))?;
    let mut scopes: Scopes = [Vec::new(), Vec::new()];
    for (i, as_of) in [recent(), ten_years_ago()].into_iter().enumerate() {
        for p in 0..country.provinces {
            let mut units: Vec<String> = hierarchy
                .subtree_on(&Country::province_id(p), Date::from(as_of))
                .into_iter()
                .collect();
            units.sort();
            scopes[i].push(units);
        }
    }
    Ok(scopes)
}

async fn measure_rounds(
    store: &Store,
    server: &Server,
    data: &DataStats,
    options: &ReportsBench,
    cut: u64,
) -> Result<Vec<CaseRound>, LedgerBenchError> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let scopes = scopes(store, data.country, cut).await?;
    let provinces = data.country.provinces;
    bench::progress("warming up: one untimed request per case");
    for case in CASES {
        let _ = ask(&http, server, case, (!case.country).then_some(0)).await;
        let _ = baseline(store, case, (!case.country).then(|| &scopes[case.date][0])).await?;
    }
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        for case in CASES {
            bench::progress(&format!(
                "round {round}/{}: {} for {} as of {}, {} request(s)",
                options.rounds,
                case.report.name(),
                case.scope(),
                day(case.as_of()),
                options.requests
            ));
            // A different province each request, and another order each round.
            let province = |j: usize| (!case.country).then_some((j + round * 7) % provinces);
            let mut latencies = Vec::with_capacity(options.requests);
            let mut mismatches = 0;
            let mut examples = Vec::new();
            for j in 0..options.requests {
                let p = province(j);
                let sent = Instant::now();
                let answer = ask(&http, server, case, p).await;
                let took = sent.elapsed();
                let expected = data.expected.figure(case.report, case.date, p);
                let wrong = match &answer {
                    Ok(body) => {
                        let figure = body[case.report.figure()].as_u64();
                        let position = body["position"].as_u64();
                        (figure != Some(expected) || position != Some(cut)).then(|| {
                            format!(
                                "{} {} of {}: expected {} = {expected} at position {cut}, got {} \
                                 at position {}",
                                case.report.name(),
                                day(case.as_of()),
                                p.map_or("the country".into(), Country::province_id),
                                case.report.figure(),
                                figure.map_or("nothing".into(), |f| f.to_string()),
                                position.map_or("none".into(), |f| f.to_string()),
                            )
                        })
                    }
                    Err(e) => Some(e.clone()),
                };
                match wrong {
                    None => latencies.push(took),
                    Some(why) => {
                        mismatches += 1;
                        if examples.len() < MISMATCH_EXAMPLES {
                            examples.push(why);
                        }
                    }
                }
            }
            let mut baselines = Vec::with_capacity(options.requests);
            for j in 0..options.requests {
                let units = province(j).map(|p| &scopes[case.date][p]);
                let sent = Instant::now();
                baseline(store, case, units).await?;
                baselines.push(sent.elapsed());
            }
            let latency = Latency::of(latencies);
            let baseline = Latency::of(baselines);
            bench::progress(&format!(
                "  p50 {:.2} ms, p99 {:.2} ms; baseline p50 {:.2} ms, p99 {:.2} ms; {} wrong",
                latency.p50_ms, latency.p99_ms, baseline.p50_ms, baseline.p99_ms, mismatches
            ));
            rounds.push(CaseRound {
                round,
                report: case.report,
                scope: case.scope(),
                as_of: day(case.as_of()),
                latency,
                baseline,
                mismatches,
                mismatch_examples: examples,
            });
        }
    }
    Ok(rounds)
}

/// One report request; the answer's JSON when it is 200.
async fn ask(
    http: &reqwest::Client,
    server: &Server,
    case: Case,
    province: Option<usize>,
) -> Result<Value, String> {
    let date_parameter = match case.report {
        Report::Standards => "as_of",
        Report::TrainingVolume => "to",
    };
    let mut url = format!(
        "{}/v1/reports/{}?{date_parameter}={}",
        server.base,
        case.report.name(),
        day(case.as_of())
    );
    if let Some(p) = province {
        url.push_str("&unit=");
        url.push_str(&Country::province_id(p));
    }
    let response = http
        .get(&url)
        .header("authorization", &server.bearer)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if status != 200 {
        return Err(format!(
            "GET {url}: {status} {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// The baseline statement of `case` over `units` (the country when none):
/// the rows the report reads, counted with its filter. Like the reports,
/// one statement for a unit and another for the country.
async fn baseline(
    store: &Store,
    case: Case,
    units: Option<&Vec<String>>,
) -> Result<i64, LedgerBenchError> {
    let as_of = case.as_of();
    let counted = match case.report {
        // The standing rows of people in post on the date (ADR 17).
        Report::Standards => {
            let sql = format!(
                "SELECT count(*) FROM rm.standing t WHERE t.valid_from <= $1 AND t.valid_to > $1{}",
                if units.is_some() {
                    " AND t.unit_id = ANY($2)"
                } else {
                    ""
                }
            );
            let query = sqlx::query_scalar(&sql).bind(as_of);
            match units {
                Some(units) => query.bind(units.as_slice()),
                None => query,
            }
            .fetch_one(store.pool())
            .await
        }
        Report::TrainingVolume => {
            let sql = format!(
                "SELECT count(*) FROM rm.enrolled_places t \
                 WHERE t.effective_date BETWEEN $1 AND $2{}",
                if units.is_some() {
                    " AND t.nominating_unit_id = ANY($3)"
                } else {
                    ""
                }
            );
            let query = sqlx::query_scalar(&sql)
                .bind(five_years_to(as_of))
                .bind(as_of);
            match units {
                Some(units) => query.bind(units.as_slice()),
                None => query,
            }
            .fetch_one(store.pool())
            .await
        }
    };
    counted.map_err(|e| BenchError::db("running a baseline statement")(e).into())
}

/// The first day of the five calendar years ending with `to`'s year (the
/// volume report's default window).
fn five_years_to(to: NaiveDate) -> NaiveDate {
    date(to.year() - 4, 1, 1)
}

// --- the data ----------------------------------------------------------------

const TRAINING_START: i32 = 1995;
const PROFESSIONAL_SPECIALTIES: [&str; 8] = [
    "public_admin",
    "law",
    "accounting",
    "finance",
    "land_management",
    "construction",
    "culture",
    "agriculture",
];

/// A degree programme or refresher course, by share of the places.
fn programme(roll: usize, pick: usize) -> (Value, Option<(&'static str, &'static str)>) {
    let specialty = PROFESSIONAL_SPECIALTIES[pick % PROFESSIONAL_SPECIALTIES.len()];
    let degree = |track: &'static str, level: &'static str, title: &str| {
        let mut program = json!({"track": track, "level": level, "title": title});
        if track == "professional" {
            program["specialty"] = json!(specialty);
        }
        (program, Some((track, level)))
    };
    match roll {
        0..=69 => (
            json!({"track": "refresher", "title": "Bồi dưỡng kỹ năng lãnh đạo, quản lý cấp xã"}),
            None,
        ),
        70..=81 => {
            let level = ["intermediate", "college", "university"][pick % 3];
            degree("professional", level, "Đào tạo chuyên môn")
        }
        82..=91 => {
            let level = ["elementary", "intermediate", "advanced"][pick % 3];
            degree("political_theory", level, "Lý luận chính trị")
        }
        92..=95 => {
            let level = ["clerk", "specialist"][pick % 2];
            degree("state_management", level, "Quản lý nhà nước")
        }
        96..=97 => degree("it", "basic", "Tin học cơ bản"),
        _ => degree("foreign_language", "b1", "Tiếng Anh B1"),
    }
}

fn days(n: usize) -> chrono::Duration {
    chrono::Duration::days(i64::try_from(n).unwrap_or(0))
}

/// A day in [from, to] (from when the range is empty).
fn between(spread: &mut bench::Spread, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    if span <= 0 {
        return from;
    }
    from + days(spread.below(usize::try_from(span + 1).unwrap_or(1)))
}

/// The units (with the 2025 reform), then one block of facts per official:
/// the registration, prior qualifications, the official's training places
/// (each nominated, then enrolled or cancelled, then completed, failed or
/// withdrawn when it ended before the recent date; a completed degree
/// programme is followed by the qualification the policy records), maybe
/// a reassignment and maybe a leaving. Returns what the reports must say.
fn generate(
    writer: &mut ChainWriter,
    country: Country,
    officials: usize,
    places: usize,
) -> Result<Expected, LedgerBenchError> {
    country.emit_units(writer, true)?;
    let mut spread = bench::Spread(0x0072_6570_6f72_7473);
    let end = recent();
    let dates = [recent(), ten_years_ago()];
    let windows = [
        (five_years_to(dates[0]), dates[0]),
        (five_years_to(dates[1]), dates[1]),
    ];
    let mut expected = Expected {
        in_post: [vec![0; country.provinces], vec![0; country.provinces]],
        enrolled_in_window: [vec![0; country.provinces], vec![0; country.provinces]],
        ..Expected::default()
    };
    let mut place = 0usize;
    for i in 0..officials {
        let official = format!("o{:07}", i + 1);
        let commune = i % country.communes;
        let province = country.province_of(commune);
        let unit = country.commune_id(commune);
        let (post, category) = POSTS[spread.below(POSTS.len())];
        let registered = between(&mut spread, date(TRAINING_START, 1, 1), date(2024, 6, 30));
        let leaves = spread.below(100) < 12;
        let left = if leaves && registered + days(365) < end {
            Some(between(&mut spread, registered + days(365), end))
        } else {
            None
        };
        let last_day = left.map_or(end, |l| l - days(1));
        let mut version = 1;
        let registration = json!({
            "official_id": official, "full_name": format!("Cán bộ {}", i + 1),
            "birth_year": 1955 + spread.below(45), "gender": if spread.below(2) == 0 { "male" } else { "female" },
            "ethnic_minority": spread.below(10) == 0, "unit_id": unit, "staff_category": category,
            "position": post, "effective_date": day(registered),
        });
        writer.push(&fact(FactType::OfficialRegistered, &registration)?, version)?;

        // What the person brought: schooling, and for some a professional
        // or political-theory level.
        let schooling = match spread.below(100) {
            0..=2 => "primary",
            3..=14 => "lower_secondary",
            _ => "upper_secondary",
        };
        let mut prior = vec![("general_education", schooling)];
        if spread.below(100) < 45 {
            prior.push((
                "professional",
                ["elementary", "intermediate", "college", "university"][spread.below(4)],
            ));
        }
        if spread.below(100) < 35 {
            prior.push((
                "political_theory",
                ["elementary", "intermediate"][spread.below(2)],
            ));
        }
        // Now and then a level recorded by mistake, then retracted: real
        // ledgers have corrections, and the reports must leave them out.
        if i % 100 == 0 {
            version += 1;
            let wrong = json!({"official_id": official, "track": "professional", "level": "doctorate",
                "effective_date": day(registered)});
            let event_id = writer.push(&fact(FactType::QualificationRecorded, &wrong)?, version)?;
            version += 1;
            let retraction = json!({"event_id": event_id, "reason": "Ghi nhầm trình độ",
                "effective_date": day(registered)});
            writer.push_to(
                &fact(FactType::FactRetracted, &retraction)?,
                AggregateKind::Official,
                &official,
                version,
            )?;
            expected.retractions += 1;
        }
        for (track, level) in prior {
            version += 1;
            let mut q = json!({"official_id": official, "track": track, "level": level,
                "evidence": {"kind": "diploma", "number": format!("VB-{official}-{track}")},
                "effective_date": day(registered)});
            if track == "professional" {
                q["specialty"] =
                    json!(PROFESSIONAL_SPECIALTIES[spread.below(PROFESSIONAL_SPECIALTIES.len())]);
            }
            writer.push(&fact(FactType::QualificationRecorded, &q)?, version)?;
        }

        let mine = places * (i + 1) / officials - places * i / officials;
        let latest_nomination = last_day - days(60);
        for _ in 0..mine {
            place += 1;
            let enrollment = format!("e{place:08}");
            let nominated = between(&mut spread, registered, latest_nomination);
            let (program, grants) = programme(spread.below(100), spread.below(1000));
            let institution = if program["level"] == "advanced" {
                json!({"institution_id": "hcma", "name": "Học viện Chính trị quốc gia Hồ Chí Minh", "in_province": false})
            } else {
                json!({"institution_id": format!("school-{:02}", province + 1),
                       "name": format!("Trường Chính trị tỉnh {:02}", province + 1), "in_province": true})
            };
            let degree = grants.is_some();
            let start = nominated + days(7 + spread.below(40));
            let length = if degree {
                180 + spread.below(720)
            } else {
                5 + spread.below(25)
            };
            let finish = start + days(length);
            let source = ["province", "district", "agency", "self", "other"][spread.below(5)];
            let nomination = json!({
                "enrollment_id": enrollment, "official_id": official, "nominating_unit_id": unit,
                "program": program, "institution": institution,
                "planned_start": day(start), "planned_end": day(finish),
                "funding": [{"source": source, "amount_vnd": 100_000 * (5 + spread.below(200))}],
                "effective_date": day(nominated),
            });
            writer.push(&fact(FactType::TrainingNominated, &nomination)?, 1)?;
            if spread.below(100) < 3 {
                let cancelled = nominated + days(1 + spread.below(5));
                let step = json!({"enrollment_id": enrollment, "reason": "Không bố trí được thời gian",
                    "effective_date": day(cancelled)});
                writer.push(&fact(FactType::TrainingCancelled, &step)?, 2)?;
                expected.places_cancelled += 1;
                continue;
            }
            let step = json!({"enrollment_id": enrollment, "effective_date": day(start)});
            writer.push(&fact(FactType::TrainingEnrolled, &step)?, 2)?;
            expected.places_enrolled += 1;
            for (w, (from, to)) in windows.iter().enumerate() {
                if *from <= start && start <= *to {
                    expected.enrolled_in_window[w][province] += 1;
                }
            }
            if finish > end {
                continue;
            }
            match spread.below(100) {
                0..=91 => {
                    let kind = if degree { "diploma" } else { "certificate" };
                    let number = format!("CC-{enrollment}");
                    let completion = json!({
                        "enrollment_id": enrollment,
                        "result": RESULTS[spread.below(4)],
                        "certificate": {"kind": kind, "number": number},
                        "effective_date": day(finish),
                    });
                    writer.push(&fact(FactType::TrainingCompleted, &completion)?, 3)?;
                    expected.places_completed += 1;
                    if let Some((track, level)) = grants {
                        // What the qualification policy records.
                        version += 1;
                        let mut q = json!({"official_id": official, "track": track, "level": level,
                            "evidence": {"kind": kind, "number": number,
                                         "issued_by": nomination["institution"]["name"]},
                            "source_enrollment_id": enrollment, "effective_date": day(finish)});
                        if let Some(specialty) = nomination["program"].get("specialty") {
                            q["specialty"] = specialty.clone();
                        }
                        writer.push(&fact(FactType::QualificationRecorded, &q)?, version)?;
                        expected.qualifications_from_training += 1;
                    }
                }
                roll => {
                    let (fact_type, reason) = if roll < 96 {
                        (FactType::TrainingFailed, "Không đạt yêu cầu")
                    } else {
                        (FactType::TrainingWithdrawn, "Chuyển công tác")
                    };
                    let step = json!({"enrollment_id": enrollment, "reason": reason,
                        "effective_date": day(finish)});
                    writer.push(&fact(fact_type, &step)?, 3)?;
                }
            }
        }

        // Some change post within their commune (same staff category).
        if spread.below(100) < 8 && registered + days(60) < last_day {
            let same: Vec<&(&str, &str)> = POSTS
                .iter()
                .filter(|(p, c)| *c == category && *p != post)
                .collect();
            if let Some((new_post, _)) = same.get(spread.below(same.len().max(1))) {
                version += 1;
                let assigned = between(&mut spread, registered + days(30), last_day - days(30));
                let assignment = json!({"official_id": official, "unit_id": unit,
                    "staff_category": category, "position": new_post,
                    "decision_no": format!("{}/QĐ-UBND", i + 1), "effective_date": day(assigned)});
                writer.push(&fact(FactType::PositionAssigned, &assignment)?, version)?;
                expected.assignments += 1;
            }
        }
        if let Some(left) = left {
            version += 1;
            let reason = ["retired", "transferred", "resigned"][spread.below(3)];
            let leaving =
                json!({"official_id": official, "reason": reason, "effective_date": day(left)});
            writer.push(&fact(FactType::Left, &leaving)?, version)?;
            expected.leavings += 1;
        }
        for (d, on) in dates.iter().enumerate() {
            if registered <= *on && left.is_none_or(|l| l > *on) {
                expected.in_post[d][province] += 1;
            }
        }
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_window_is_five_calendar_years() {
        assert_eq!(five_years_to(recent()), date(2021, 1, 1));
        assert_eq!(five_years_to(ten_years_ago()), date(2011, 1, 1));
    }

    #[test]
    fn every_programme_parses_as_a_nomination() {
        for roll in 0..100 {
            let (program, grants) = programme(roll, roll * 7);
            let data = json!({
                "enrollment_id": "e1", "official_id": "o1", "nominating_unit_id": "p01-c0001",
                "program": program, "institution": {"institution_id": "s", "name": "S", "in_province": true},
                "planned_start": "2010-01-01", "planned_end": "2010-02-01",
                "funding": [{"source": "self", "amount_vnd": 1}], "effective_date": "2009-12-01",
            });
            fact(FactType::TrainingNominated, &data).expect("a valid nomination");
            assert_eq!(grants.is_some(), roll >= 70, "{roll}");
        }
    }

    #[test]
    fn a_case_is_judged_on_its_scopes_target() {
        assert_eq!(CASES.len(), 8);
        assert!(CASES
            .iter()
            .all(|c| c.target_ms() == if c.country { 500.0 } else { 50.0 }));
    }
}
