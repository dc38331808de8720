//! `tledger bench commands` through the real binary (`tledger-bench`, which
//! `tledger bench` runs), small: against the machine's PostgreSQL and
//! NATS, on the benchmark's own database and prefix, which it must remove
//! afterwards.

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

const FIGURES: [&str; 5] = [
    "throughput_per_s",
    "p50_ms",
    "p99_ms",
    "jetstream_p99_after_answer_ms",
    "jetstream_p99_after_send_ms",
];

#[tokio::test]
async fn a_small_run_reports_every_figure_for_commands_and_baseline_and_cleans_up() {
    let out = std::env::temp_dir().join(format!("tledger-bench-{}", unique_prefix()));
    let mut command = Command::new(BIN);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
        .args(["commands", "--count", "200", "--rounds", "1"])
        .args(["--concurrency", "1,4", "--out"])
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("| figure | concurrency | command | baseline | ratio | target | met? |")
    );
    assert!(stdout.contains("## Where the time goes"), "{stdout}");

    let json = std::fs::read_to_string(out.join("commands.json")).expect("commands.json");
    let markdown = std::fs::read_to_string(out.join("commands.md")).expect("commands.md");
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(markdown, stdout, "the markdown is what was printed");
    let report: Value = serde_json::from_str(&json).expect("JSON");

    assert_eq!(report["failures"], 0, "{json}");
    assert_eq!(
        report["attempted"], 800,
        "2 concurrencies × (200 commands + 200 inserts)"
    );
    assert_eq!(report["environment"]["synchronous_commit_commands"], "on");
    assert_eq!(report["environment"]["synchronous_commit_baseline"], "on");
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    for round in rounds {
        assert_eq!(round["command"]["failures"], 0, "{round}");
        assert_eq!(round["command"]["latency"]["samples"], 200, "{round}");
        assert_eq!(round["command"]["jetstream"]["arrived"], 200, "{round}");
        assert_eq!(round["command"]["jetstream"]["missing"], 0, "{round}");
        assert_eq!(round["baseline"]["failures"], 0, "{round}");
        assert_eq!(round["baseline"]["latency"]["samples"], 200, "{round}");
        assert!(round["baseline"]["payload_bytes"].as_u64().unwrap_or(0) > 300);
    }
    let medians = report["medians"].as_array().expect("medians");
    for concurrency in [1, 4] {
        for figure in FIGURES {
            let row = medians
                .iter()
                .find(|m| m["figure"] == figure && m["concurrency"] == concurrency)
                .unwrap_or_else(|| panic!("{figure} at {concurrency}: {json}"));
            assert!(row["command"].as_f64().is_some_and(|v| v >= 0.0), "{row}");
        }
        let throughput = medians
            .iter()
            .find(|m| m["figure"] == "throughput_per_s" && m["concurrency"] == concurrency)
            .expect("throughput");
        assert!(
            throughput["command"].as_f64().unwrap_or(0.0) > 0.0,
            "{throughput}"
        );
        assert!(
            throughput["baseline"].as_f64().unwrap_or(0.0) > 0.0,
            "{throughput}"
        );
        assert!(throughput["ratio"].as_f64().is_some(), "{throughput}");
        assert!(throughput["met"].as_bool().is_some(), "{throughput}");
    }
    let p99_at_1 = medians
        .iter()
        .find(|m| m["figure"] == "p99_ms" && m["concurrency"] == 1)
        .expect("p99 at 1");
    assert!(
        p99_at_1["met"].as_bool().is_some(),
        "a target at 1: {p99_at_1}"
    );
    let phases = report["profile"].as_array().expect("profile");
    for phase in ["(a) ", "(b) ", "(c) ", "(d) ", "(e) ", "(f) ", "(g) "] {
        let found = phases
            .iter()
            .find(|p| p["phase"].as_str().is_some_and(|n| n.starts_with(phase)))
            .unwrap_or_else(|| panic!("profile phase {phase}: {json}"));
        assert!(
            found["latency"]["samples"].as_u64().unwrap_or(0) > 0,
            "{found}"
        );
    }

    // Its database is gone and so are its streams.
    let database = report["environment"]["database"].as_str().expect("name");
    assert!(database.starts_with("tledger_bench_"), "{database}");
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("admin connection");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_one(&mut admin)
        .await
        .expect("pg_database");
    assert_eq!(left, 0, "{database} was dropped");
    let prefix = report["environment"]["prefix"].as_str().expect("prefix");
    let client = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("NATS");
    let jetstream = async_nats::jetstream::new(client);
    let stream = format!("{}_EVENTS", prefix.to_uppercase());
    assert!(
        jetstream.get_stream(&stream).await.is_err(),
        "{stream} was deleted"
    );
}

#[tokio::test]
async fn it_should_not_accept_zero_clients() {
    let mut command = Command::new(BIN);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .args(["commands", "--concurrency", "0"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: --concurrency must list clients per run"),
        "{stderr}"
    );
}
