//! Seeding the demo district through the command path: every step is a
//! command handled exactly as one over HTTP or NATS (same checks, same
//! idempotency), under the fixed `demo` identity, so that running the demo
//! again replays the recorded answers and records nothing twice.
//!
//! Steps run in phases by kind (units, people, their facts, nominations,
//! enrolments, outcomes); inside a phase, the steps of one stream keep their
//! order and different streams run side by side.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::access::{Caller, Role};
use crate::commands::{CommandRequest, CommandService};
use tledger_demo_plan::DemoCommand;

/// The identity the demo records under (its idempotency keys are its own).
pub const DEMO_TOKEN: Uuid = Uuid::from_u128(0x6465_6d6f_0000_0000_0000_0000_0000_0001);

/// Commands in flight at once.
const CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("demo step {index} ({name}) was refused with {status}: {body}")]
pub struct SeedError {
    pub index: usize,
    pub name: String,
    pub status: u16,
    pub body: String,
}

fn phase(name: &str) -> u8 {
    match name {
        "publish_reference" => 0,
        "register_unit" => 1,
        "reorganise_unit" => 2,
        "register_official" => 3,
        "record_qualification" | "assign_position" | "plan" | "rate" | "record_leaving" => 4,
        "nominate" => 5,
        "enroll" => 6,
        "complete" | "fail" | "withdraw" | "cancel" => 7,
        _ => 8,
    }
}

/// The stream a step writes to: its steps keep their order. Units form one
/// group (a unit's parent is registered before it).
fn stream_key(step: &DemoCommand) -> String {
    if matches!(
        step.name,
        "register_unit" | "reorganise_unit" | "publish_reference"
    ) {
        return "units".into();
    }
    for field in [
        "enrollment_id",
        "official_id",
        "unit_id",
        "event_id",
        "name",
    ] {
        if let Some(id) = step.body.get(field).and_then(|v| v.as_str()) {
            return format!("{field}:{id}");
        }
    }
    step.key.clone()
}

pub fn demo_caller() -> Caller {
    Caller {
        token_id: DEMO_TOKEN,
        name: "demo".into(),
        role: Role::Admin,
        unit_id: None,
        publisher_id: None,
    }
}

/// Runs every step; `progress` draws a progress bar on standard error.
pub async fn seed(
    commands: &CommandService,
    steps: &[DemoCommand],
    progress: bool,
) -> Result<u64, SeedError> {
    let bar = if progress {
        let bar = ProgressBar::new(steps.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} commands ({per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("seeding");
        bar
    } else {
        ProgressBar::hidden()
    };
    type Streams<'a> = BTreeMap<String, Vec<(usize, &'a DemoCommand)>>;
    let mut phases: BTreeMap<u8, Streams> = BTreeMap::new();
    for (index, step) in steps.iter().enumerate() {
        phases
            .entry(phase(step.name))
            .or_default()
            .entry(stream_key(step))
            .or_default()
            .push((index, step));
    }
    let caller = demo_caller();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut recorded = 0u64;
    for (_, streams) in phases {
        let mut tasks: JoinSet<Result<u64, SeedError>> = JoinSet::new();
        for (_, group) in streams {
            let group: Vec<(usize, DemoCommand)> =
                group.into_iter().map(|(i, s)| (i, s.clone())).collect();
            let commands = commands.clone();
            let caller = caller.clone();
            let permits = permits.clone();
            let bar = bar.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut n = 0;
                for (index, step) in group {
                    let reply = commands
                        .execute_as(
                            &caller,
                            CommandRequest {
                                name: step.name.to_owned(),
                                body: Bytes::from(step.body.to_string()),
                                bearer: None,
                                idempotency_key: Some(step.key.clone()),
                                correlation_id: Some("demo".into()),
                            },
                        )
                        .await;
                    if reply.status != 201 {
                        return Err(SeedError {
                            index,
                            name: step.name.to_owned(),
                            status: reply.status,
                            body: reply.body.to_string(),
                        });
                    }
                    n += 1;
                    bar.inc(1);
                }
                Ok(n)
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(n)) => recorded += n,
                Ok(Err(e)) => {
                    bar.abandon();
                    return Err(e);
                }
                Err(join) => {
                    bar.abandon();
                    return Err(SeedError {
                        index: 0,
                        name: "task".into(),
                        status: 500,
                        body: join.to_string(),
                    });
                }
            }
        }
    }
    bar.finish_with_message("seeded");
    Ok(recorded)
}

/// How the demo prints its reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    pub seed: u64,
    pub seed_only: bool,
    pub format: crate::presentation::Format,
    pub lang: crate::presentation::Lang,
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Report(#[from] crate::report_cli::ReportCliError),
    #[error(transparent)]
    Store(#[from] tledger_store::StoreError),
    #[error("the ledger did not settle within {0} s (sequencer, policies, projections)")]
    NotSettled(u64),
    #[error("the service stopped: {0}")]
    Service(String),
}

/// Waits until every committed event is sequenced, the policies have read
/// the whole ledger and the read models have reached its head.
pub async fn settle(
    store: &tledger_store::Store,
    limit: std::time::Duration,
) -> Result<u64, DemoError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let pool = store.pool();
        let unsequenced: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
                .fetch_one(pool)
                .await
                .map_err(tledger_store::StoreError::db("counting unsequenced events"))?;
        let head = store.head().await?;
        let policy: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM reader_checkpoints WHERE reader = 'qualification-policy'",
        )
        .fetch_optional(pool)
        .await
        .map_err(tledger_store::StoreError::db(
            "reading the policy checkpoint",
        ))?;
        let projected: i64 = sqlx::query_scalar("SELECT position FROM rm.checkpoint")
            .fetch_one(pool)
            .await
            .map_err(tledger_store::StoreError::db(
                "reading the projection checkpoint",
            ))?;
        let head_i = i64::try_from(head).unwrap_or(i64::MAX);
        if unsequenced == 0 && policy.unwrap_or(0) >= head_i && projected >= head_i {
            return Ok(head);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError::NotSettled(limit.as_secs()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The demo's printout: the standards and volume reports the seed article
/// states, and the 2006 baseline it compares with.
pub async fn demo_reports(
    store: &tledger_store::Store,
    options: &DemoOptions,
) -> Result<String, DemoError> {
    use crate::presentation::Format;
    use crate::report_cli::{render, report_json, ReportRequest};
    let expected = tledger_demo_plan::expected();
    let date = |s: &str| s.parse::<tledger_events::Date>().ok();
    let request = |name: &str, as_of: &str| ReportRequest {
        name: name.to_owned(),
        unit: Some(expected.unit_id.to_owned()),
        as_of: date(as_of),
        from: date(expected.volume_from),
        to: date(expected.volume_to),
        at_position: None,
        format: options.format,
        lang: options.lang,
    };
    let standards = request("standards", expected.as_of);
    let baseline = request("standards", expected.baseline_as_of);
    let volume = request("training-volume", expected.as_of);
    if options.format == Format::Json {
        let body = serde_json::json!({
            "standards": report_json(store, &standards).await?,
            "standards_baseline": report_json(store, &baseline).await?,
            "training_volume": report_json(store, &volume).await?,
        });
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        ));
    }
    let mut out = String::new();
    out.push_str(&render(store, &volume).await?);
    out.push('\n');
    out.push_str(&render(store, &standards).await?);
    out.push('\n');
    out.push_str(&render(store, &baseline).await?);
    let now = report_json(store, &standards).await?;
    let then = report_json(store, &baseline).await?;
    if let (Some(now), Some(then)) = (
        now["meets_all_standards"]["rate"].as_f64(),
        then["meets_all_standards"]["rate"].as_f64(),
    ) {
        let increase = (now / then - 1.0) * 100.0;
        let text = match options.lang {
            crate::presentation::Lang::Vi => {
                format!("\nTỷ lệ đạt chuẩn tăng {:.1}% so với năm 2006\n", increase)
                    .replace('.', ",")
            }
            crate::presentation::Lang::En => {
                format!("\nMeets-all rate up {increase:.1}% on 2006\n")
            }
        };
        out.push_str(&text);
    }
    Ok(out)
}

/// `tledger demo`: builds the service, seeds the demo district through the
/// command path, prints the reports, then serves until a signal (or exits
/// with `seed_only`).
pub async fn run_demo(
    settings: &crate::config::Settings,
    options: DemoOptions,
) -> Result<(), DemoError> {
    let app = crate::app::build(settings).await?;
    crate::startup::admin_token(app.access(), settings).await?;
    let commands = app.commands().clone();
    let store = app.store().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = crate::app::shutdown_signal();
    let serving = tokio::spawn(async move {
        app.run_until_stopped(async move {
            tokio::select! {
                _ = stopped => {}
                () = signal => {}
            }
        })
        .await
    });
    let plan = tledger_demo_plan::plan(options.seed);
    seed(&commands, &plan.steps, options.progress).await?;
    settle(&store, std::time::Duration::from_secs(300)).await?;
    print!("{}", demo_reports(&store, &options).await?);
    if options.seed_only {
        let _ = stop.send(());
    } else {
        eprintln!("serving; stop with Ctrl-C");
    }
    match serving.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DemoError::Service(e.to_string())),
        Err(e) => Err(DemoError::Service(e.to_string())),
    }
}
