//! What every view shows of who recorded a fact is what the chain covers.
//!
//! The events table keeps `publisher`, `actor`, `command_id`,
//! `correlation_id` and `schema_version` beside the hashed `metadata` and
//! type, as copies the hash does not cover. Each stored column of one row
//! is changed alone by SQL; then either `tledger verify` names that row's
//! position, or every view (the trail as JSON and CSV over HTTP and from the
//! command line, the dashboard's page and CSV of the person, the ledger's
//! own CloudEvents, an export) is unchanged, and for the copies both hold.

use crate::support;

use std::io::{BufRead as _, BufReader};

use serde_json::{json, Value};
use support::{spawn_app, Ledger};
use tledger::audit_trail::{render, HistoryRequest, Trail};
use tledger::inspection::{verify_ledger, Verification};
use tledger::presentation::Format;
use tledger::relay::ledger_cloud_event;
use tledger_events::checkpoint::CheckpointSigner;
use uuid::Uuid;

async fn ok(ledger: &Ledger, name: &str, body: Value, correlation: &str) -> Value {
    let response = ledger
        .http
        .post(format!("{}/v1/commands/{name}", ledger.base))
        .header("authorization", format!("Bearer {}", ledger.admin))
        .header("x-correlation-id", correlation)
        .json(&body)
        .send()
        .await
        .expect("HTTP");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{name}: {answer}");
    answer
}

fn first(answer: &Value, key: &str) -> Value {
    answer["events"][0][key].clone()
}

/// Everything a reader is shown of the ledger, each view as text.
#[derive(Debug, PartialEq)]
struct Views {
    trail_json: String,
    trail_csv: String,
    place_json: String,
    place_csv: String,
    cli_json: String,
    cli_csv: String,
    cli_table: String,
    page_csv: String,
    cloud_events: String,
    export_events: String,
}

/// The dashboard's page of the person (compared by what it says of the
/// tampered value, as the page carries more than the facts).
async fn page(ledger: &Ledger) -> String {
    let response = ledger
        .http
        .get(format!(
            "{}/people/o-1?unit=dai-loc&as_of=2011-12-31&lang=en",
            ledger.base
        ))
        .header("authorization", format!("Bearer {}", ledger.admin))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.expect("page")
}

async fn text(ledger: &Ledger, path: &str, csv: bool) -> String {
    let (status, body) = ledger.get(path, Some(&ledger.admin), csv).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn cli(ledger: &Ledger, format: Format) -> String {
    render(
        &ledger.store,
        &HistoryRequest {
            trail: Trail::Official,
            id: "o-1".into(),
            from: None,
            to: None,
            types: Vec::new(),
            format,
        },
    )
    .await
    .expect("tledger history")
}

/// The event lines of an export (the header and the digest carry the time
/// of the export).
async fn export_events(ledger: &Ledger, signer: &CheckpointSigner) -> String {
    let path = std::env::temp_dir().join(format!("trail-{}.tledger", Uuid::new_v4()));
    tledger::export::export(&ledger.store, signer, tledger::export::Until::Head, &path)
        .await
        .expect("export");
    let file = std::fs::File::open(&path).expect("archive");
    let lines: Vec<String> = BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| l.expect("line"))
        .filter(|l| l.starts_with("{\"event\""))
        .collect();
    let _ = std::fs::remove_file(&path);
    lines.join("\n")
}

async fn views(ledger: &Ledger, signer: &CheckpointSigner) -> Views {
    let prefix = ledger.commands.prefix().clone();
    let events = ledger.store.read_ledger(0, 10_000).await.expect("ledger");
    let cloud_events: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(ledger_cloud_event(&prefix, e)).expect("CloudEvent"))
        .collect();
    Views {
        trail_json: text(ledger, "/v1/officials/o-1/history", false).await,
        trail_csv: text(ledger, "/v1/officials/o-1/history", true).await,
        place_json: text(ledger, "/v1/enrollments/e-1/history", false).await,
        place_csv: text(ledger, "/v1/enrollments/e-1/history", true).await,
        cli_json: cli(ledger, Format::Json).await,
        cli_csv: cli(ledger, Format::Csv).await,
        cli_table: cli(ledger, Format::Table).await,
        page_csv: text(ledger, "/people/o-1/history.csv", false).await,
        cloud_events: json!(cloud_events).to_string(),
        export_events: export_events(ledger, signer).await,
    }
}

async fn verify(ledger: &Ledger, signer: &CheckpointSigner) -> Verification {
    verify_ledger(&ledger.store, &signer.verifier(), None)
        .await
        .expect("verify runs")
}

async fn sql(ledger: &Ledger, statement: &str) {
    let done = sqlx::raw_sql(statement)
        .execute(ledger.store.pool())
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    assert_eq!(done.rows_affected(), 1, "{statement}");
}

async fn counts(ledger: &Ledger) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT event_type, count(*) FROM events GROUP BY event_type ORDER BY event_type",
    )
    .fetch_all(ledger.store.pool())
    .await
    .expect("counts")
}

/// One stored column of one row changed alone, and put back.
struct Edit {
    column: &'static str,
    tamper: String,
    restore: String,
    /// For a copy the hash does not cover, the forged text: every view
    /// must still show the hashed value, and the page never the forgery.
    copy: Option<&'static str>,
}

#[tokio::test]
async fn an_edited_column_is_caught_by_verify_and_no_view_shows_it() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ok(
        &ledger,
        "nominate",
        support::nomination("e-1", "2008-08-01"),
        "nomination-7",
    )
    .await;
    let rated = ok(
        &ledger,
        "rate",
        json!({"official_id": "o-1", "year": 2009, "rating": "good", "effective_date": "2009-12-31"}),
        "rating-8",
    )
    .await;
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": first(&rated, "id"), "reason": "the rating was for 2010", "effective_date": "2011-01-10"}),
        "retraction-9",
    )
    .await;
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    ledger.projected().await;

    let signer = CheckpointSigner::from_secret([7; 32]);
    let clean = verify(&ledger, &signer).await;
    assert_eq!(clean.first_bad, None, "the untouched ledger verifies");
    let before = views(&ledger, &signer).await;
    let facts = counts(&ledger).await;
    let page_before = page(&ledger).await;
    assert!(page_before.contains("by admin through /commands/admin"));

    let rating = first(&rated, "position").as_u64().expect("position");
    let rating_id = first(&rated, "id").as_str().expect("id").to_owned();
    let taken_back = first(&retraction, "position").as_u64().expect("position");
    let at = |p: u64, set: &str| format!("UPDATE events SET {set} WHERE position = {p}");
    let edits = vec![
        (
            rating,
            Edit {
                column: "actor",
                tamper: at(rating, "actor = 'mallory'"),
                restore: at(rating, "actor = metadata->>'actor'"),
                copy: Some("mallory"),
            },
        ),
        (
            taken_back,
            Edit {
                column: "actor",
                tamper: at(taken_back, "actor = 'mallory'"),
                restore: at(taken_back, "actor = metadata->>'actor'"),
                copy: Some("mallory"),
            },
        ),
        (
            rating,
            Edit {
                column: "publisher",
                tamper: at(rating, "publisher = '/commands/mallory'"),
                restore: at(rating, "publisher = metadata->>'publisher'"),
                copy: Some("/commands/mallory"),
            },
        ),
        (
            rating,
            Edit {
                column: "command_id",
                tamper: at(rating, "command_id = 'forged-command'"),
                restore: at(rating, "command_id = metadata->>'command_id'"),
                copy: Some("forged-command"),
            },
        ),
        (
            rating,
            Edit {
                column: "correlation_id",
                tamper: at(rating, "correlation_id = 'forged-correlation'"),
                restore: at(rating, "correlation_id = metadata->>'correlation_id'"),
                copy: Some("forged-correlation"),
            },
        ),
        (
            rating,
            Edit {
                column: "correlation_id",
                tamper: at(rating, "correlation_id = NULL"),
                restore: at(rating, "correlation_id = metadata->>'correlation_id'"),
                copy: Some("\"correlation_id\":null"),
            },
        ),
        (
            rating,
            Edit {
                column: "schema_version",
                tamper: at(rating, "schema_version = 2"),
                restore: at(rating, "schema_version = 1"),
                copy: Some("schema_version"),
            },
        ),
        (
            rating,
            Edit {
                column: "metadata",
                tamper: at(
                    rating,
                    "metadata = jsonb_set(metadata, '{actor}', '\"mallory\"'), actor = 'mallory'",
                ),
                restore: at(
                    rating,
                    "metadata = jsonb_set(metadata, '{actor}', '\"admin\"'), actor = 'admin'",
                ),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "event_type",
                tamper: at(rating, "event_type = 'official.left.v1'"),
                restore: at(rating, "event_type = 'official.rated.v1'"),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "effective_date",
                tamper: at(rating, "effective_date = effective_date + 1"),
                restore: at(rating, "effective_date = effective_date - 1"),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "recorded_at",
                tamper: at(rating, "recorded_at = recorded_at + interval '1 second'"),
                restore: at(rating, "recorded_at = recorded_at - interval '1 second'"),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "aggregate_id",
                tamper: at(rating, "aggregate_id = 'o-2'"),
                restore: at(rating, "aggregate_id = 'o-1'"),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "aggregate_type",
                tamper: at(rating, "aggregate_type = 'enrollment'"),
                restore: at(rating, "aggregate_type = 'official'"),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "version",
                tamper: at(rating, "version = version + 1000"),
                restore: at(rating, "version = version - 1000"),
                copy: None,
            },
        ),
        (
            rating,
            Edit {
                column: "event_id",
                tamper: at(rating, &format!("event_id = '{}'", Uuid::now_v7())),
                restore: at(rating, &format!("event_id = '{rating_id}'")),
                copy: None,
            },
        ),
    ];

    let mut caught = Vec::new();
    for (position, edit) in &edits {
        sql(&ledger, &edit.tamper).await;
        let found = verify(&ledger, &signer).await;
        let bad = found
            .first_bad
            .clone()
            .unwrap_or_else(|| panic!("{}: verify passed an edited row", edit.column));
        assert_eq!(
            bad.position, *position,
            "{}: verify names the edited row: {}",
            edit.column, bad.reason
        );
        if let Some(shown) = edit.copy {
            assert!(
                bad.reason.contains(edit.column),
                "{}: the reason names the column: {}",
                edit.column,
                bad.reason
            );
            let after = views(&ledger, &signer).await;
            assert_eq!(
                after, before,
                "{}: every view shows what the chain covers",
                edit.column
            );
            let page_after = page(&ledger).await;
            assert!(
                !page_after.contains("mallory") && !page_after.contains(shown),
                "{}: the dashboard's page shows what the chain covers",
                edit.column
            );
            assert!(page_after.contains("by admin through /commands/admin"));
        }
        sql(&ledger, &edit.restore).await;
        let restored = verify(&ledger, &signer).await;
        assert_eq!(
            restored.first_bad, None,
            "{}: put back, the ledger verifies again",
            edit.column
        );
        caught.push(edit.column);
    }
    assert_eq!(caught.len(), edits.len());
    assert_eq!(
        views(&ledger, &signer).await,
        before,
        "put back, every view is as it was"
    );
    assert_eq!(counts(&ledger).await, facts, "no fact was lost or doubled");
}
