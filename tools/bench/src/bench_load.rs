//! `tledger bench load`: a sustained mixed load on a running service, for a
//! configurable time (10 minutes by default): commands over HTTP, facts
//! published over NATS, and report queries, each from clients of its own
//! that send again as soon as they are answered. Every minute it records
//! the throughput and the p99 latency of each kind, and the service's
//! resident memory; at the end, the service's RSS must be at most 1.1 times
//! its RSS at minute 2 (no leak under load).
//!
//! The service is `tledger serve` (the binary beside this one, else on
//! PATH), started as a child process on the benchmark's own database and
//! prefix, so that its memory is its own and not the load generator's.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::bench::{
    load_average, progress, random_prefix, round3, write_files, BenchDatabase, BenchError, Latency,
};
use tledger::config::Settings;
use tledger::publishers::NewPublisher;

pub const DEFAULT_MINUTES: u64 = 10;
/// The target: RSS at the end at most this times RSS at minute 2.
pub const RSS_RATIO_TARGET: f64 = 1.1;
const ADMIN: &str = "tl_bench_load_admin";
const SOURCE: &str = "/bench/load";
const OFFICIALS: usize = 200;

#[derive(Clone, Debug)]
pub struct LoadBench {
    pub minutes: u64,
    pub command_clients: usize,
    pub publishers: usize,
    pub report_clients: usize,
    pub out: PathBuf,
    pub keep: bool,
}

/// One minute of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadMinute {
    pub minute: u64,
    pub commands_per_s: f64,
    pub commands: Latency,
    pub facts_per_s: f64,
    /// Published → accepted receipt.
    pub facts: Latency,
    pub reports_per_s: f64,
    pub reports: Latency,
    pub errors: u64,
    pub service_rss_mib: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadReport {
    pub minutes: Vec<LoadMinute>,
    pub rss_reference_minute: u64,
    pub rss_ratio: f64,
    pub load_average_before: String,
    pub load_average_after: String,
}

impl LoadReport {
    /// Whether the RSS check passed; it needs a run of 3 minutes or more
    /// (minute 2 against the end).
    pub fn met(&self) -> bool {
        self.minutes.len() >= 3 && self.rss_ratio > 0.0 && self.rss_ratio <= RSS_RATIO_TARGET
    }

    /// The figures for `tledger bench all`'s table.
    pub fn summary(&self) -> Vec<crate::bench_all::SummaryRow> {
        use crate::bench_all::SummaryRow;
        let last = self.minutes.last().cloned().unwrap_or_default();
        let mut rows = vec![SummaryRow {
            benchmark: "load",
            figure: format!(
                "service RSS at the end ÷ at minute {} ({} minutes)",
                self.rss_reference_minute,
                self.minutes.len()
            ),
            value: Some(self.rss_ratio),
            target: Some(format!("≤ {RSS_RATIO_TARGET}")),
            met: Some(self.met()),
            ..SummaryRow::default()
        }];
        for (figure, value) in [
            ("commands/s, last minute", last.commands_per_s),
            ("command p99 ms, last minute", last.commands.p99_ms),
            ("published facts/s, last minute", last.facts_per_s),
            ("published → receipt p99 ms, last minute", last.facts.p99_ms),
            ("reports/s, last minute", last.reports_per_s),
            ("report p99 ms, last minute", last.reports.p99_ms),
        ] {
            rows.push(SummaryRow {
                benchmark: "load",
                figure: figure.into(),
                value: Some(value),
                ..SummaryRow::default()
            });
        }
        rows
    }

    pub fn markdown(&self) -> String {
        let mut md = String::from("# tledger bench load\n\n");
        let _ = writeln!(
            md,
            "Load average before {} and after {}. RSS at the end / RSS at minute {}: {:.3} \
             (target at most {RSS_RATIO_TARGET}: {}).\n",
            self.load_average_before,
            self.load_average_after,
            self.rss_reference_minute,
            self.rss_ratio,
            match (self.met(), self.minutes.len() >= 3) {
                (true, _) => "met",
                (false, true) => "not met",
                (false, false) => "not checked: run 3 minutes or more",
            }
        );
        let _ = writeln!(md, "| minute | commands/s | p99 ms | facts/s | p99 ms (to receipt) | reports/s | p99 ms | errors | service RSS MiB |");
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in &self.minutes {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
                m.minute,
                m.commands_per_s,
                m.commands.p99_ms,
                m.facts_per_s,
                m.facts.p99_ms,
                m.reports_per_s,
                m.reports.p99_ms,
                m.errors,
                m.service_rss_mib
            );
        }
        md
    }
}

/// Latencies of the current minute, per kind.
#[derive(Default)]
struct Samples {
    commands: Vec<Duration>,
    facts: Vec<Duration>,
    reports: Vec<Duration>,
    errors: u64,
}

type Shared = Arc<Mutex<Samples>>;

fn record(shared: &Shared, f: impl FnOnce(&mut Samples)) {
    f(&mut shared.lock().unwrap_or_else(PoisonError::into_inner));
}

/// The resident memory of a process, from `/proc/<pid>/status`.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| round3(kb / 1024.0))
}

/// Runs the load and writes `<out>/load.md` and `<out>/load.json`.
pub async fn load(settings: &Settings, options: &LoadBench) -> Result<LoadReport, BenchError> {
    if options.minutes == 0 {
        return Err(BenchError::Options("--minutes must be at least 1".into()));
    }
    let database = BenchDatabase::create(&settings.database_url, &chrono::Utc::now()).await?;
    let prefix = random_prefix()?;
    let outcome = run(settings, options, &database, &prefix).await;
    if let Ok((client, _)) = tledger::startup::connect_nats(&settings.nats_url).await {
        let js = async_nats::jetstream::new(client);
        for stream in [prefix.events_stream(), prefix.ingest_stream()] {
            let _ = js.delete_stream(&stream).await;
        }
    }
    if !options.keep {
        database.drop().await?;
    }
    let report = outcome?;
    write_files(&options.out, "load", &report.markdown(), &report)?;
    Ok(report)
}

async fn run(
    settings: &Settings,
    options: &LoadBench,
    database: &BenchDatabase,
    prefix: &tledger::Prefix,
) -> Result<LoadReport, BenchError> {
    let port = crate::bench::free_loopback_port()?;
    let key = std::env::temp_dir().join(format!("bench-load-{}.key", prefix.as_str()));
    let binary = service_binary();
    let mut child = tokio::process::Command::new(&binary)
        .arg("serve")
        .env_remove("TLEDGER_CONFIG")
        .env("TLEDGER_DATABASE_URL", &database.url)
        .env("TLEDGER_NATS_URL", &settings.nats_url)
        .env("TLEDGER_PREFIX", prefix.as_str())
        .env("TLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("TLEDGER_ADMIN_TOKEN", ADMIN)
        .env("TLEDGER_SIGNING_KEY", &key)
        .env("TLEDGER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            BenchError::Service(format!(
                "starting {} serve: {e} (build it with `cargo build --release -p tledger`)",
                binary.display()
            ))
        })?;
    let pid = child.id().unwrap_or(0);
    let outcome = drive(settings, options, database, prefix, port, pid).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_file(&key);
    outcome
}

/// The service's binary: `tledger` beside this one (where cargo builds
/// both), else whichever `tledger` is on PATH.
fn service_binary() -> std::path::PathBuf {
    let name = format!("tledger{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| name.into())
}

async fn drive(
    settings: &Settings,
    options: &LoadBench,
    database: &BenchDatabase,
    prefix: &tledger::Prefix,
    port: u16,
    pid: u32,
) -> Result<LoadReport, BenchError> {
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = async {
        for _ in 0..600 {
            if http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    if !ready.await {
        return Err(BenchError::Service(
            "tledger serve did not get ready".into(),
        ));
    }
    progress("seeding units, officials and the publisher");
    let mut seed = vec![
        (
            "register_unit",
            json!({"unit_id": "load-p", "name": "P", "level": "province", "effective_date": "1997-01-01"}),
        ),
        (
            "register_unit",
            json!({"unit_id": "load-d", "name": "D", "level": "district", "parent_id": "load-p", "effective_date": "1997-01-01"}),
        ),
        (
            "register_unit",
            json!({"unit_id": "load-c", "name": "C", "level": "commune", "parent_id": "load-d", "effective_date": "1997-01-01"}),
        ),
    ];
    for i in 0..OFFICIALS {
        seed.push((
            "register_official",
            json!({"official_id": format!("o-{i}"), "full_name": "Nguyễn Văn A", "birth_year": 1975,
                   "gender": "male", "ethnic_minority": false, "unit_id": "load-c",
                   "staff_category": "cadre", "position": "committee_chair",
                   "effective_date": "2005-01-01"}),
        ));
    }
    for (i, (name, body)) in seed.iter().enumerate() {
        command(&http, &base, name, body, &format!("seed-{i}")).await?;
    }
    let store = tledger_store::Store::connect(&database.url, 2).await?;
    tledger::publishers::Publishers::new(store)
        .add(&NewPublisher {
            id: "load".into(),
            source: SOURCE.into(),
            unit: None,
            types: None,
            key_hex: None,
        })
        .await
        .map_err(|e| BenchError::Seed(e.to_string()))?;

    let shared: Shared = Arc::default();
    let started = Instant::now();
    let end = started + Duration::from_secs(options.minutes * 60);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..options.command_clients {
        let (http, base, shared) = (http.clone(), base.clone(), shared.clone());
        tasks.spawn(async move {
            let mut i = 0usize;
            while Instant::now() < end {
                let body = nomination(&format!("c{client}-{i}"), (client * 31 + i) % OFFICIALS);
                let sent = Instant::now();
                match command(&http, &base, "nominate", &body, &format!("c{client}-{i}")).await {
                    Ok(()) => record(&shared, |s| s.commands.push(sent.elapsed())),
                    Err(_) => record(&shared, |s| s.errors += 1),
                }
                i += 1;
            }
        });
    }
    let client = tledger::startup::connect_nats(&settings.nats_url).await?.0;
    for publisher in 0..options.publishers {
        let (client, shared, prefix) = (client.clone(), shared.clone(), prefix.clone());
        tasks.spawn(async move {
            let js = async_nats::jetstream::new(client.clone());
            let Ok(mut receipts) = client
                .subscribe(format!("{}.receipts.load", prefix.as_str()))
                .await
            else {
                return;
            };
            let mut i = 0usize;
            while Instant::now() < end {
                let id = format!("p{publisher}-{i}");
                let message = json!({
                    "specversion": "1.0", "id": id, "source": SOURCE,
                    "type": "training.nominated.v1", "time": "2011-01-01T00:00:00Z",
                    "datacontenttype": "application/json",
                    "data": nomination(&id, (publisher * 17 + i) % OFFICIALS),
                });
                let sent = Instant::now();
                let published = match js
                    .publish(
                        format!("{}.ingest.load", prefix.as_str()),
                        message.to_string().into(),
                    )
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                // Every publisher sees every receipt: wait for its own.
                let answered = published
                    && tokio::time::timeout(Duration::from_secs(30), async {
                        use futures::StreamExt as _;
                        while let Some(m) = receipts.next().await {
                            let r: Value =
                                serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                            if r["id"] == json!(id) {
                                return r["status"] == "accepted";
                            }
                        }
                        false
                    })
                    .await
                    .unwrap_or(false);
                if answered {
                    record(&shared, |s| s.facts.push(sent.elapsed()));
                } else {
                    record(&shared, |s| s.errors += 1);
                }
                i += 1;
            }
        });
    }
    for _ in 0..options.report_clients {
        let (http, base, shared) = (http.clone(), base.clone(), shared.clone());
        tasks.spawn(async move {
            let mut turn = 0usize;
            while Instant::now() < end {
                let path = if turn % 2 == 0 {
                    "/v1/reports/standards?unit=load-d&as_of=2011-12-31"
                } else {
                    "/v1/reports/training-volume?unit=load-d&from=2007-01-01&to=2011-12-31"
                };
                let sent = Instant::now();
                let ok = http
                    .get(format!("{base}{path}"))
                    .header("authorization", format!("Bearer {ADMIN}"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    record(&shared, |s| s.reports.push(sent.elapsed()));
                } else {
                    record(&shared, |s| s.errors += 1);
                }
                turn += 1;
            }
        });
    }

    let mut report = LoadReport {
        load_average_before: load_average(),
        ..LoadReport::default()
    };
    for minute in 1..=options.minutes {
        tokio::time::sleep_until((started + Duration::from_secs(minute * 60)).into()).await;
        let samples = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
        let per_s = |n: usize| round3(n as f64 / 60.0);
        let line = LoadMinute {
            minute,
            commands_per_s: per_s(samples.commands.len()),
            commands: Latency::of(samples.commands),
            facts_per_s: per_s(samples.facts.len()),
            facts: Latency::of(samples.facts),
            reports_per_s: per_s(samples.reports.len()),
            reports: Latency::of(samples.reports),
            errors: samples.errors,
            service_rss_mib: rss_mib(pid),
        };
        progress(&format!(
            "minute {minute}: {:.0} commands/s, {:.0} facts/s, {:.0} reports/s, RSS {:.1} MiB",
            line.commands_per_s, line.facts_per_s, line.reports_per_s, line.service_rss_mib
        ));
        report.minutes.push(line);
    }
    while tasks.join_next().await.is_some() {}
    report.rss_reference_minute = if options.minutes >= 3 { 2 } else { 1 };
    let reference = report
        .minutes
        .iter()
        .find(|m| m.minute == report.rss_reference_minute)
        .map_or(0.0, |m| m.service_rss_mib);
    let last = report.minutes.last().map_or(0.0, |m| m.service_rss_mib);
    report.rss_ratio = if reference > 0.0 {
        round3(last / reference)
    } else {
        0.0
    };
    report.load_average_after = load_average();
    Ok(report)
}

fn nomination(enrollment: &str, official: usize) -> Value {
    json!({
        "enrollment_id": enrollment, "official_id": format!("o-{official}"),
        "nominating_unit_id": "load-c",
        "program": {"track": "professional", "level": "intermediate", "specialty": "public_admin",
                    "title": "Trung cấp Hành chính"},
        "institution": {"institution_id": "load-school", "name": "Trường Chính trị", "in_province": true},
        "planned_start": "2008-09-01", "planned_end": "2010-06-30",
        "funding": [{"source": "district", "amount_vnd": 4500000}],
        "decision_no": "45/QĐ-UBND", "effective_date": "2008-08-01"
    })
}

/// One command, retried with its key while the service answers 503.
async fn command(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    body: &Value,
    key: &str,
) -> Result<(), BenchError> {
    for _ in 0..50 {
        let response = http
            .post(format!("{base}/v1/commands/{name}"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        match response.status().as_u16() {
            201 => return Ok(()),
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            status => {
                let text = response.text().await.unwrap_or_default();
                return Err(BenchError::Seed(format!("{name} {key}: {status} {text}")));
            }
        }
    }
    Err(BenchError::Seed(format!("{name} {key}: not answered")))
}
