//! `tledger bench ingest`: published facts end to end (published on NATS →
//! receipt) and `tledger import` of the same kind of facts, against two
//! baselines measured in the same run, alternating, round after round:
//!
//! - (a) PostgreSQL: transactions of 1,000 facts, each inserting the fact's
//!   row and its `(source, id)` dedup row into plain tables with prepared
//!   statements, `synchronous_commit = on`;
//! - (b) JetStream: the same messages published to a stream of their own and
//!   consumed with a pull consumer that acks each one.
//!
//! The facts are a quarter each of `official.registered`,
//! `training.nominated`, `training.enrolled` and `training.completed`, all
//! valid, person after person; every round uses ids of its own. The service
//! runs in this process on the benchmark's own database and prefix; the
//! import rounds run after it stopped, so that the import's own sequencer
//! answers it (as when a backfill is loaded before the service starts).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Connection as _, PgConnection};

use crate::bench::{
    load_average, median, progress, random_prefix, round3, write_files, BenchDatabase, BenchError,
};
use tledger::commands::CommandRequest;
use tledger::config::Settings;
use tledger::publishers::NewPublisher;
use tledger::Prefix;

/// The N.
pub const DEFAULT_FACTS: usize = 1_000_000;
pub const DEFAULT_ROUNDS: usize = 3;
/// The target: at least this share of the slower baseline's rate.
pub const TARGET_RATIO: f64 = 0.5;
const SOURCE: &str = "/bench/ingest";
const PUBLISHER: &str = "bench";
/// Publish acknowledgements awaited at once.
const IN_FLIGHT: usize = 4096;

/// What to run.
#[derive(Clone, Debug)]
pub struct IngestBench {
    pub facts: usize,
    pub rounds: usize,
    pub out: PathBuf,
    pub keep: bool,
}

/// One round's rates, facts per second.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IngestRound {
    pub ingest_per_s: f64,
    pub import_per_s: f64,
    pub postgres_baseline_per_s: f64,
    pub jetstream_baseline_per_s: f64,
    /// Receipts by status in the ingest round (all should be accepted).
    pub ingest_accepted: u64,
    pub ingest_other: u64,
    pub import_accepted: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IngestReport {
    pub facts: usize,
    pub rounds: Vec<IngestRound>,
    pub load_average_before: String,
    pub load_average_after: String,
}

impl IngestReport {
    fn med(&self, f: impl Fn(&IngestRound) -> f64) -> f64 {
        median(self.rounds.iter().map(f).collect()).unwrap_or(0.0)
    }

    /// The slower baseline's median rate.
    pub fn slower_baseline(&self) -> f64 {
        self.med(|r| r.postgres_baseline_per_s)
            .min(self.med(|r| r.jetstream_baseline_per_s))
    }

    /// The figures for `tledger bench all`'s table.
    pub fn summary(&self) -> Vec<crate::bench_all::SummaryRow> {
        let slower = self.slower_baseline();
        let ratio = |x: f64| (slower > 0.0).then(|| x / slower);
        [
            (
                "published → receipt, facts/s (baseline: the slower of PostgreSQL and JetStream)",
                self.med(|r| r.ingest_per_s),
            ),
            (
                "tledger import, facts/s (same baseline)",
                self.med(|r| r.import_per_s),
            ),
        ]
        .into_iter()
        .map(|(figure, value)| crate::bench_all::SummaryRow {
            benchmark: "ingest",
            figure: figure.into(),
            value: Some(value),
            baseline: Some(slower),
            ratio: ratio(value),
            target: Some(format!("ratio ≥ {TARGET_RATIO}")),
            met: Some(ratio(value).is_some_and(|r| r >= TARGET_RATIO)),
        })
        .collect()
    }

    pub fn markdown(&self) -> String {
        let slower = self.slower_baseline();
        let ratio = |x: f64| if slower > 0.0 { x / slower } else { 0.0 };
        let mut md = String::new();
        let _ = writeln!(md, "# tledger bench ingest\n");
        let _ = writeln!(
            md,
            "{} facts per round, {} rounds (medians); load average before {} and after {}.\n",
            self.facts,
            self.rounds.len(),
            self.load_average_before,
            self.load_average_after
        );
        let _ = writeln!(
            md,
            "| figure | facts/s | ratio to the slower baseline | target | met? |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---|");
        for (name, value, target) in [
            (
                "published → receipt",
                self.med(|r| r.ingest_per_s),
                Some(TARGET_RATIO),
            ),
            (
                "tledger import",
                self.med(|r| r.import_per_s),
                Some(TARGET_RATIO),
            ),
            (
                "baseline (a) PostgreSQL, 1,000 facts per transaction",
                self.med(|r| r.postgres_baseline_per_s),
                None,
            ),
            (
                "baseline (b) JetStream publish + pull consumer ack",
                self.med(|r| r.jetstream_baseline_per_s),
                None,
            ),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {:.0} | {:.3} | {} | {} |",
                value,
                ratio(value),
                target.map_or("".into(), |t| format!("{t}")),
                target.map_or("", |t| if ratio(value) >= t { "yes" } else { "no" }),
            );
        }
        let _ = writeln!(md, "\nEvery round:\n");
        let _ = writeln!(md, "| round | ingest | import | (a) PostgreSQL | (b) JetStream | ingest accepted / other | import accepted |");
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---|---:|");
        for (i, r) in self.rounds.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {} / {} | {} |",
                i + 1,
                r.ingest_per_s,
                r.import_per_s,
                r.postgres_baseline_per_s,
                r.jetstream_baseline_per_s,
                r.ingest_accepted,
                r.ingest_other,
                r.import_accepted
            );
        }
        md
    }
}

/// The benchmark's facts for one round: `facts` CloudEvents, a person's
/// four facts after one another.
pub fn messages(round: &str, facts: usize) -> Vec<Vec<u8>> {
    let people = facts.div_ceil(4);
    let mut out = Vec::with_capacity(people * 4);
    for i in 0..people {
        let (o, e) = (format!("{round}-o{i}"), format!("{round}-e{i}"));
        let four = [
            (
                "official.registered.v1",
                json!({
                    "official_id": o, "full_name": "Nguyễn Văn A", "birth_year": 1975,
                    "gender": "male", "ethnic_minority": false, "unit_id": "bench-commune",
                    "staff_category": "cadre", "position": "committee_chair",
                    "effective_date": "2005-01-01"
                }),
            ),
            (
                "training.nominated.v1",
                json!({
                    "enrollment_id": e, "official_id": o, "nominating_unit_id": "bench-commune",
                    "program": {"track": "professional", "level": "intermediate",
                                "specialty": "public_admin", "title": "Trung cấp Hành chính"},
                    "institution": {"institution_id": "bench-school", "name": "Trường Chính trị",
                                    "in_province": true},
                    "planned_start": "2008-09-01", "planned_end": "2010-06-30",
                    "funding": [{"source": "district", "amount_vnd": 4500000}],
                    "decision_no": "45/QĐ-UBND", "effective_date": "2008-08-01"
                }),
            ),
            (
                "training.enrolled.v1",
                json!({"enrollment_id": e, "effective_date": "2008-09-01"}),
            ),
            (
                "training.completed.v1",
                json!({"enrollment_id": e, "result": "good",
                       "certificate": {"kind": "diploma", "number": format!("TC-{i}")},
                       "effective_date": "2010-06-30"}),
            ),
        ];
        for (k, (kind, data)) in four.into_iter().enumerate() {
            let message = json!({
                "specversion": "1.0", "id": format!("{round}-{i}-{k}"), "source": SOURCE,
                "type": kind, "time": "2011-01-01T00:00:00Z",
                "datacontenttype": "application/json", "data": data
            });
            out.push(message.to_string().into_bytes());
        }
    }
    out.truncate(facts);
    out
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    round3(n as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// Runs the benchmark and writes `<out>/ingest.md` and `<out>/ingest.json`.
pub async fn ingest(
    settings: &Settings,
    options: &IngestBench,
) -> Result<IngestReport, BenchError> {
    if options.facts == 0 || options.rounds == 0 {
        return Err(BenchError::Options(
            "--facts and --rounds must be at least 1".into(),
        ));
    }
    let started_at = chrono::Utc::now();
    let database = BenchDatabase::create(&settings.database_url, &started_at).await?;
    let prefix = random_prefix()?;
    let outcome = run(settings, options, &database, &prefix).await;
    if let Ok((client, _)) = tledger::startup::connect_nats(&settings.nats_url).await {
        let js = jetstream::new(client);
        for stream in [
            prefix.events_stream(),
            prefix.ingest_stream(),
            baseline_stream(&prefix),
        ] {
            let _ = js.delete_stream(&stream).await;
        }
    }
    if !options.keep {
        database.drop().await?;
    }
    let report = outcome?;
    write_files(&options.out, "ingest", &report.markdown(), &report)?;
    Ok(report)
}

fn baseline_stream(prefix: &Prefix) -> String {
    format!("{}_BASELINE", prefix.as_str().to_uppercase())
}

async fn run(
    settings: &Settings,
    options: &IngestBench,
    database: &BenchDatabase,
    prefix: &Prefix,
) -> Result<IngestReport, BenchError> {
    let mut service_settings = settings.clone();
    service_settings.database_url = database.url.clone();
    service_settings.prefix = prefix.clone();
    service_settings.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let signing = tempfile_path("bench-ingest-signing.key");
    service_settings.signing_key_path = signing.clone();
    let mut report = IngestReport {
        facts: options.facts,
        load_average_before: load_average(),
        ..IngestReport::default()
    };
    let app = tledger::app::build(&service_settings).await?;
    let store = app.store().clone();
    let client = app
        .nats()
        .cloned()
        .ok_or_else(|| BenchError::Options("the service was built without NATS".into()))?;
    let commands = app.commands().clone();
    app.intake()
        .publishers()
        .add(&NewPublisher {
            id: PUBLISHER.into(),
            source: SOURCE.into(),
            unit: None,
            types: None,
            key_hex: None,
        })
        .await
        .map_err(|e| BenchError::Seed(e.to_string()))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    for (id, parent, level) in [
        ("bench-province", None, "province"),
        ("bench-district", Some("bench-province"), "district"),
        ("bench-commune", Some("bench-district"), "commune"),
    ] {
        let mut body =
            json!({"unit_id": id, "name": id, "level": level, "effective_date": "1997-01-01"});
        if let Some(parent) = parent {
            body["parent_id"] = json!(parent);
        }
        let reply = commands
            .execute_as(
                &tledger::seeding::demo_caller(),
                CommandRequest {
                    name: "register_unit".into(),
                    body: body.to_string().into(),
                    ..CommandRequest::default()
                },
            )
            .await;
        if reply.status != 201 {
            return Err(BenchError::Seed(reply.body.to_string()));
        }
    }
    let js = jetstream::new(client.clone());
    let mut connection = PgConnection::connect(&database.url)
        .await
        .map_err(BenchError::db("connecting for the baseline"))?;
    sqlx::raw_sql(
        "CREATE TABLE bench_ingest_facts (fact_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,          source text NOT NULL, id text NOT NULL, type text NOT NULL, data jsonb NOT NULL);          CREATE TABLE bench_ingest_dedup (source text, id text, PRIMARY KEY (source, id))",
    )
    .execute(&mut connection)
    .await
    .map_err(BenchError::db("creating the baseline's tables"))?;

    let mut imports = Vec::new();
    for round in 0..options.rounds {
        let mut result = IngestRound::default();
        let messages = messages(&format!("r{round}"), options.facts);
        progress(&format!("round {}: baseline (a) PostgreSQL", round + 1));
        result.postgres_baseline_per_s =
            postgres_baseline(&mut connection, &format!("r{round}"), &messages).await?;
        progress(&format!("round {}: baseline (b) JetStream", round + 1));
        result.jetstream_baseline_per_s = jetstream_baseline(&js, prefix, round, &messages).await?;
        progress(&format!("round {}: published → receipt", round + 1));
        let (per_s, accepted, other) = published(&client, &js, prefix, &messages).await?;
        result.ingest_per_s = per_s;
        result.ingest_accepted = accepted;
        result.ingest_other = other;
        report.rounds.push(result);
        // The import's lines: the same kinds of facts under ids of their own.
        imports.push(messages_file(&format!("i{round}"), options.facts)?);
    }
    let _ = stop.send(());
    match serving.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(BenchError::Service(e.to_string())),
        Err(e) => return Err(BenchError::Service(e.to_string())),
    }
    for (round, file) in imports.iter().enumerate() {
        progress(&format!("round {}: tledger import", round + 1));
        let started = Instant::now();
        let summary = tledger::import::import(&store, prefix, file.path(), Some(PUBLISHER), false)
            .await
            .map_err(|e| BenchError::Seed(e.to_string()))?;
        report.rounds[round].import_per_s = rate(summary.answered() as usize, started.elapsed());
        report.rounds[round].import_accepted = summary.accepted;
    }
    let _ = std::fs::remove_file(&signing);
    report.load_average_after = load_average();
    Ok(report)
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", uuid::Uuid::new_v4()))
}

fn messages_file(round: &str, facts: usize) -> Result<tempfile::NamedTempFile, BenchError> {
    use std::io::Write as _;
    let write_error = |source| BenchError::Write {
        path: std::env::temp_dir(),
        source,
    };
    let mut file = tempfile::NamedTempFile::new().map_err(write_error)?;
    {
        let mut writer = std::io::BufWriter::new(file.as_file_mut());
        for message in messages(round, facts) {
            writer.write_all(&message).map_err(write_error)?;
            writer.write_all(b"\n").map_err(write_error)?;
        }
        writer.flush().map_err(write_error)?;
    }
    Ok(file)
}

/// (a): transactions of 1,000 facts, each its fact row and its dedup row.
async fn postgres_baseline(
    connection: &mut PgConnection,
    round: &str,
    messages: &[Vec<u8>],
) -> Result<f64, BenchError> {
    let parsed: Vec<Value> = messages
        .iter()
        .map(|m| serde_json::from_slice(m).unwrap_or(Value::Null))
        .collect();
    let started = Instant::now();
    for chunk in parsed.chunks(1000) {
        let mut tx = connection
            .begin()
            .await
            .map_err(BenchError::db("baseline transaction"))?;
        for message in chunk {
            let id = format!("{round}-{}", message["id"].as_str().unwrap_or(""));
            sqlx::query(
                "INSERT INTO bench_ingest_facts (source, id, type, data) VALUES ($1, $2, $3, $4)",
            )
            .bind(SOURCE)
            .bind(&id)
            .bind(message["type"].as_str().unwrap_or(""))
            .bind(&message["data"])
            .execute(&mut *tx)
            .await
            .map_err(BenchError::db("baseline fact row"))?;
            sqlx::query("INSERT INTO bench_ingest_dedup (source, id) VALUES ($1, $2)")
                .bind(SOURCE)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(BenchError::db("baseline dedup row"))?;
        }
        tx.commit()
            .await
            .map_err(BenchError::db("baseline commit"))?;
    }
    Ok(rate(messages.len(), started.elapsed()))
}

/// Publishes every message, keeping at most [`IN_FLIGHT`] acks pending.
async fn publish_all(
    js: &jetstream::Context,
    subject: &str,
    messages: &[Vec<u8>],
) -> Result<(), BenchError> {
    let mut pending = futures::stream::FuturesUnordered::new();
    for message in messages {
        let ack = js
            .publish(subject.to_owned(), message.clone().into())
            .await
            .map_err(|e| BenchError::Service(format!("publishing: {e}")))?;
        pending.push(std::future::IntoFuture::into_future(ack));
        while pending.len() >= IN_FLIGHT {
            if let Some(acked) = pending.next().await {
                acked.map_err(|e| BenchError::Service(format!("publish ack: {e}")))?;
            }
        }
    }
    while let Some(acked) = pending.next().await {
        acked.map_err(|e| BenchError::Service(format!("publish ack: {e}")))?;
    }
    Ok(())
}

/// (b): the same messages through a stream of their own and a pull
/// consumer that acks each.
async fn jetstream_baseline(
    js: &jetstream::Context,
    prefix: &Prefix,
    round: usize,
    messages: &[Vec<u8>],
) -> Result<f64, BenchError> {
    let name = baseline_stream(prefix);
    let _ = js.delete_stream(&name).await;
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.baseline.>", prefix.as_str())],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .map_err(|e| BenchError::Service(format!("baseline stream: {e}")))?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(format!("baseline-{round}")),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 8192,
            ..Default::default()
        })
        .await
        .map_err(|e| BenchError::Service(format!("baseline consumer: {e}")))?;
    let subject = format!("{}.baseline.{PUBLISHER}", prefix.as_str());
    let started = Instant::now();
    let n = messages.len();
    let consuming = tokio::spawn(async move {
        let mut acked = 0usize;
        while acked < n {
            let mut batch = consumer
                .fetch()
                .max_messages(1024)
                .expires(Duration::from_millis(200))
                .messages()
                .await
                .map_err(|e| e.to_string())?;
            while let Some(message) = batch.next().await {
                message
                    .map_err(|e| e.to_string())?
                    .ack()
                    .await
                    .map_err(|e| e.to_string())?;
                acked += 1;
            }
        }
        Ok::<_, String>(())
    });
    publish_all(js, &subject, messages).await?;
    consuming
        .await
        .map_err(|e| BenchError::Service(e.to_string()))?
        .map_err(BenchError::Service)?;
    let per_s = rate(n, started.elapsed());
    let _ = js.delete_stream(&name).await;
    Ok(per_s)
}

/// Publishes on the ingest subject and waits for every receipt.
async fn published(
    client: &async_nats::Client,
    js: &jetstream::Context,
    prefix: &Prefix,
    messages: &[Vec<u8>],
) -> Result<(f64, u64, u64), BenchError> {
    let receipts_subject = format!("{}.receipts.{PUBLISHER}", prefix.as_str());
    let mut receipts = client
        .subscribe(receipts_subject.clone())
        .await
        .map_err(|e| BenchError::Subscribe {
            subject: receipts_subject,
            reason: e.to_string(),
        })?;
    client
        .flush()
        .await
        .map_err(|e| BenchError::Service(e.to_string()))?;
    let n = messages.len();
    let started = Instant::now();
    let counting = tokio::spawn(async move {
        let (mut accepted, mut other) = (0u64, 0u64);
        // A generous bound: far beyond any rate seen, so a stall shows.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120 + n as u64 / 50);
        while ((accepted + other) as usize) < n {
            match tokio::time::timeout_at(deadline, receipts.next()).await {
                Ok(Some(message)) => {
                    let receipt: Value =
                        serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
                    match receipt["status"].as_str() {
                        Some("accepted") => accepted += 1,
                        // A parked fact gets a second receipt later.
                        Some("parked") => {}
                        _ => other += 1,
                    }
                }
                _ => break,
            }
        }
        (accepted, other, Instant::now())
    });
    publish_all(
        js,
        &format!("{}.ingest.{PUBLISHER}", prefix.as_str()),
        messages,
    )
    .await?;
    let (accepted, other, finished) = counting
        .await
        .map_err(|e| BenchError::Service(e.to_string()))?;
    if (accepted + other) as usize != n {
        return Err(BenchError::Service(format!(
            "only {} of {n} receipts arrived",
            accepted + other
        )));
    }
    Ok((rate(n, finished - started), accepted, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_a_quarter_of_each_type_and_every_message_parses() {
        let messages = messages("t", 8);
        assert_eq!(messages.len(), 8);
        let mut types: Vec<String> = Vec::new();
        for m in &messages {
            let (event, _) = tledger_events::CloudEvent::parse_published(m).expect("valid");
            types.push(event.event_type);
        }
        for kind in [
            "official.registered.v1",
            "training.nominated.v1",
            "training.enrolled.v1",
            "training.completed.v1",
        ] {
            assert_eq!(types.iter().filter(|t| *t == kind).count(), 2, "{kind}");
        }
    }
}
