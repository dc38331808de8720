//! `tledger bench rebuild` and `tledger bench reports` through the real
//! binary (`tledger-bench`, which `tledger bench` runs), tiny: against the machine's PostgreSQL, on each benchmark's own
//! database, which it must drop afterwards. They test the benchmarks (the
//! figures and checks in their reports), not the machine's speed.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection as _;
use tledger_tests::{admin_url, unique_prefix};
use tokio::process::Command;

// What `tledger bench` runs, with the same arguments.
const BIN: &str = env!("CARGO_BIN_EXE_tledger-bench");

/// Every variable the binary reads; the tests' own environment must not
/// leak into the run.
const VARIABLES: &[&str] = &[
    "TLEDGER_CONFIG",
    "TLEDGER_DATABASE_URL",
    "TLEDGER_NATS_URL",
    "TLEDGER_HTTP_ADDR",
    "TLEDGER_PREFIX",
    "TLEDGER_ADMIN_TOKEN",
    "TLEDGER_SIGNING_KEY",
    "TLEDGER_LOG",
    "TLEDGER_LOG_FORMAT",
];

/// Runs `tledger bench <args> --out <dir>` and returns its report (JSON)
/// after checking that the markdown file is what was printed.
async fn run(name: &str, args: &[&str]) -> Value {
    let out = std::env::temp_dir().join(format!("tledger-bench-{name}-{}", unique_prefix()));
    let mut command = Command::new(BIN);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
        .arg(name)
        .args(args)
        .arg("--out")
        .arg(&out)
        // The server of the test harness; the benchmark makes its own
        // database there and never touches this one.
        .env("TLEDGER_DATABASE_URL", admin_url())
        .env("TLEDGER_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the benchmark finishes within five minutes")
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let read = |file: &str| std::fs::read_to_string(out.join(file)).expect(file);
    let markdown = read(&format!("{name}.md"));
    let json = read(&format!("{name}.json"));
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(markdown, stdout, "the markdown is what was printed");
    serde_json::from_str(&json).expect("JSON")
}

async fn assert_dropped(report: &Value) {
    let database = report["environment"]["database"].as_str().expect("name");
    assert!(database.starts_with("tledger_bench_"), "{database}");
    assert_eq!(report["environment"]["database_kept"], false);
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("admin connection");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_one(&mut admin)
        .await
        .expect("pg_database");
    assert_eq!(left, 0, "{database} was dropped");
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("a number: {value}"))
}

#[tokio::test]
async fn a_small_rebuild_run_rebuilds_every_fact_and_copies_as_many_rows() {
    let report = run("rebuild", &["--facts", "2000", "--rounds", "2"]).await;
    let json = report.to_string();

    // 500 of each measured type, after 34 provinces, 340 districts and
    // 3,300 communes and the 3 shipped reference facts.
    let units = 34 + 340 + 3300;
    let load = &report["load"];
    for fact_type in [
        "official.registered.v1",
        "training.nominated.v1",
        "training.enrolled.v1",
        "training.completed.v1",
    ] {
        assert_eq!(load["by_type"][fact_type], 500, "{fact_type}: {json}");
    }
    assert_eq!(load["by_type"]["unit.registered.v1"], units, "{json}");
    assert_eq!(load["facts"], 2000 + units, "{json}");
    assert_eq!(load["head"], 2000 + units + 3, "{json}");
    assert_eq!(load["chain_checked"], 400, "{json}");
    let head = load["head"].as_u64().expect("head");

    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    for round in rounds {
        assert_eq!(round["rebuild"]["facts"], head, "{round}");
        assert_eq!(round["baseline"]["facts"], head, "{round}");
        assert!(number(&round["rebuild"]["facts_per_s"]) > 0.0, "{round}");
        assert!(number(&round["baseline"]["facts_per_s"]) > 0.0, "{round}");
        let memory = &round["rebuild"]["memory"];
        assert_eq!(memory["peak_reset"], true, "{round}");
        assert!(
            number(&memory["peak_rss_bytes"]) >= number(&memory["rss_before_bytes"]),
            "{round}"
        );
        assert!(number(&memory["rss_before_bytes"]) > 0.0, "{round}");
    }
    // The profile read (and parsed) the whole ledger.
    assert_eq!(report["profile"]["facts"], head, "{json}");
    assert!(number(&report["profile"]["read_seconds"]) > 0.0, "{json}");
    assert!(
        number(&report["profile"]["read_and_parse_seconds"]) > 0.0,
        "{json}"
    );
    // The read models hold what the facts say.
    let models = &report["read_models"];
    assert_eq!(models["placements"], 500, "{json}");
    assert_eq!(models["places"], 500, "{json}");
    assert_eq!(models["place_steps"], 1000, "{json}");
    assert_eq!(models["enrolled_places"], 500, "{json}");
    assert_eq!(models["unit_facts"], units, "{json}");
    assert_eq!(models["reference_data"], 3, "{json}");
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.len() >= 9, "{json}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{json}");

    // The medians are the rounds' and the targets are judged on them.
    let ratio = number(&report["ratio"]);
    let expected = number(&report["rebuild_facts_per_s"]) / number(&report["baseline_rows_per_s"]);
    assert!((ratio - expected).abs() < 0.01, "{json}");
    let targets = report["targets"].as_array().expect("targets");
    let ratio_target = targets
        .iter()
        .find(|t| t["figure"] == "ratio")
        .expect("ratio target");
    assert_eq!(ratio_target["met"], ratio >= 0.5, "{json}");
    let memory_target = targets
        .iter()
        .find(|t| t["figure"] == "peak_growth_bytes")
        .expect("memory target");
    assert_eq!(
        memory_target["met"],
        number(&report["peak_growth_bytes"]) < 1024.0 * 1024.0 * 1024.0
    );
    assert_dropped(&report).await;
}

#[tokio::test]
async fn a_small_reports_run_answers_what_the_generator_counted() {
    let report = run(
        "reports",
        &[
            "--officials",
            "600",
            "--places",
            "3000",
            "--provinces",
            "3",
            "--communes",
            "25",
            "--rounds",
            "1",
            "--requests",
            "4",
        ],
    )
    .await;
    let json = report.to_string();
    assert_eq!(report["mismatches"], 0, "{json}");
    assert_eq!(report["answers"], 8 * 4, "{json}");

    let data = &report["data"];
    // 3 provinces of 9, 8 and 8 communes: one district each; the reform
    // re-parents every commune.
    assert_eq!(data["districts"], 3, "{json}");
    let by_type = &data["load"]["by_type"];
    assert_eq!(by_type["unit.registered.v1"], 3 + 3 + 25, "{json}");
    assert_eq!(by_type["unit.reorganised.v1"], 25, "{json}");
    assert_eq!(by_type["official.registered.v1"], 600, "{json}");
    assert_eq!(by_type["training.nominated.v1"], 3000, "{json}");
    // Every hundredth official has a level recorded by mistake, retracted.
    assert_eq!(by_type["fact.retracted.v1"], 6, "{json}");
    assert_eq!(data["read_models"]["retractions"], 6, "{json}");
    assert_eq!(data["expected"]["retractions"], 6, "{json}");
    let expected = &data["expected"];
    let enrolled = expected["places_enrolled"].as_u64().expect("enrolled");
    let cancelled = expected["places_cancelled"].as_u64().expect("cancelled");
    assert_eq!(enrolled + cancelled, 3000, "{json}");
    assert_eq!(by_type["training.enrolled.v1"], enrolled, "{json}");
    assert_eq!(by_type["training.cancelled.v1"], cancelled, "{json}");
    // The read models are the projector's: one row per fact.
    let models = &data["read_models"];
    assert_eq!(models["places"], 3000, "{json}");
    assert_eq!(models["enrolled_places"], enrolled, "{json}");
    let qualifications = number(&by_type["official.qualification_recorded.v1"]);
    assert_eq!(number(&models["qualifications"]), qualifications, "{json}");
    assert!(
        number(&expected["qualifications_from_training"]) > 0.0,
        "{json}"
    );

    // Every case was measured, answered as counted, and judged.
    let medians = report["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), 8, "{json}");
    for m in medians {
        assert_eq!(m["requests"], 4, "{m}");
        assert!(number(&m["p99_ms"]) > 0.0, "{m}");
        assert!(number(&m["p99_ms"]) >= number(&m["p50_ms"]), "{m}");
        assert!(number(&m["baseline_p99_ms"]) > 0.0, "{m}");
        let target = if m["scope"] == "country" { 500.0 } else { 50.0 };
        assert_eq!(number(&m["target_p99_ms"]), target, "{m}");
        assert_eq!(m["met"], number(&m["p99_ms"]) < target, "{m}");
    }
    // The country's figures are the sums the generator made, and people
    // were in post at both dates.
    let in_post = |d: usize| -> u64 {
        expected["in_post"][d]
            .as_array()
            .expect("per province")
            .iter()
            .filter_map(Value::as_u64)
            .sum()
    };
    assert!(in_post(0) > in_post(1) && in_post(1) > 0, "{json}");
    let country_standards = medians
        .iter()
        .find(|m| {
            m["report"] == "standards" && m["scope"] == "country" && m["as_of"] == "2025-12-31"
        })
        .expect("standards for the country");
    assert_eq!(
        country_standards["expected_figure"],
        format!("{} in post", in_post(0)),
        "{json}"
    );
    assert_dropped(&report).await;
}

#[tokio::test]
async fn it_should_not_accept_too_few_facts() {
    let mut command = Command::new(BIN);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .args(["rebuild", "--facts", "3"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: --facts must be at least 4"),
        "{stderr}"
    );
}
