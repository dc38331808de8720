//! `tledger demo --seed-only --format json` through the real binary against
//! the machine's PostgreSQL and NATS: it seeds the Đại Lộc district through
//! the command path and prints the seed article's figures exactly; running
//! it again records nothing twice.

use std::process::Command;

use serde_json::Value;
use tledger_demo_plan::expected;
use tledger_tests::{unique_prefix, TestDatabase};

fn demo(db: &TestDatabase, prefix: &str) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tledger"))
        .args(["demo", "--seed-only", "--format", "json"])
        .env("TLEDGER_DATABASE_URL", db.url())
        .env("TLEDGER_PREFIX", prefix)
        .env("TLEDGER_HTTP_ADDR", "127.0.0.1:0")
        // Never the source tree's directory; the same key for both runs.
        .env(
            "TLEDGER_SIGNING_KEY",
            std::env::temp_dir().join(format!("{prefix}-signing.key")),
        )
        .env("TLEDGER_LOG", "warn")
        .output()
        .expect("the tledger binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The first start prints the admin token line before the JSON.
    let json = &stdout[stdout.find('{').expect("JSON on stdout")..];
    serde_json::from_str(json).expect("the demo prints JSON")
}

fn figure(report: &Value, name: &str) -> (u64, u64) {
    (
        report[name]["count"].as_u64().expect("count"),
        report[name]["of"].as_u64().expect("of"),
    )
}

async fn events(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool().await)
        .await
        .expect("count")
}

#[tokio::test]
async fn the_demo_reproduces_the_seed_article_and_a_second_run_records_nothing() {
    let db = TestDatabase::create().await;
    let prefix = unique_prefix();
    let want = expected();
    let printed = demo(&db, &prefix);

    let volume = &printed["training_volume"];
    assert_eq!(volume["unit_id"], "dai-loc");
    assert_eq!(volume["total"], want.total);
    assert_eq!(
        volume["headline"]["professional_intermediate_plus"],
        want.professional_intermediate_plus
    );
    assert_eq!(
        volume["headline"]["political_theory_intermediate_plus"],
        want.political_theory_intermediate_plus
    );
    assert_eq!(volume["headline"]["refresher"], want.refresher);
    for (level, n) in want.professional_by_level {
        assert_eq!(
            volume["by_track"]["professional"]["by_level"][level], *n,
            "{level}"
        );
    }

    let standards = &printed["standards"];
    assert_eq!(standards["ruleset"], want.ruleset);
    assert_eq!(standards["population"], want.population);
    assert_eq!(figure(standards, "meets_all_standards"), want.meets_all);
    assert_eq!(standards["meets_all_standards"]["rate"], 0.6222);
    assert_eq!(
        figure(standards, "professional_college_plus"),
        want.professional_college_plus
    );
    assert_eq!(standards["professional_college_plus"]["rate"], 0.2317);
    assert_eq!(
        figure(standards, "key_leaders_college_plus"),
        want.key_leaders_college_plus
    );
    assert_eq!(standards["key_leaders_college_plus"]["rate"], 0.5743);
    assert_eq!(
        figure(standards, "political_theory_intermediate_plus"),
        want.political_theory_intermediate_plus_people
    );
    assert_eq!(
        standards["political_theory_intermediate_plus"]["rate"],
        0.8067
    );

    let baseline = &printed["standards_baseline"];
    assert_eq!(
        figure(baseline, "meets_all_standards"),
        want.baseline_meets_all
    );
    let now = standards["meets_all_standards"]["rate"]
        .as_f64()
        .expect("rate");
    let then = baseline["meets_all_standards"]["rate"]
        .as_f64()
        .expect("rate");
    assert_eq!(
        ((now / then - 1.0) * 1000.0).round() as i64,
        want.meets_all_increase_permille
    );

    let recorded = events(&db).await;
    let again = demo(&db, &prefix);
    assert_eq!(
        again["standards"]["meets_all_standards"],
        printed["standards"]["meets_all_standards"]
    );
    assert_eq!(
        events(&db).await,
        recorded,
        "the second run replayed, recording nothing"
    );
}
