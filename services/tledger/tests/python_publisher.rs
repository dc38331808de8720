//! The example publisher (`examples/publisher/publisher.py`, the official
//! CloudEvents SDK and nats-py) against the service, end to end: a ledger
//! served in-process with its ingest consumer on the machine's nats-server
//! (a prefix of the test's own), a publisher registered with a signing key,
//! and the Python client run as a body's system would run it. Its receipts
//! must be the contract's, and the ledger must hold each accepted fact
//! exactly once, at the positions the receipts give.
//!
//! The Python interpreter is the one of the virtual environment `ops/test`
//! makes (`TLEDGER_PUBLISHER_PYTHON`); without it the test fails, never
//! skips: a skipped end-to-end test would look like a passing one.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use tledger::ingest::stream as ingest_stream;
use tledger::publishers::{NewPublisher, Publishers};

const NATS_URL: &str = "nats://127.0.0.1:4222";
const PUBLISHER: &str = "dai-loc";
const SOURCE: &str = "/bodies/dai-loc";
const RUN: &str = "py";

fn python() -> PathBuf {
    match std::env::var_os("TLEDGER_PUBLISHER_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "TLEDGER_PUBLISHER_PYTHON is not set: run `bash ops/test`, which makes the \
             virtual environment .venv-publisher from examples/publisher/requirements.txt \
             and sets it, or set it to a python with those packages"
        ),
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/publisher/publisher.py")
}

#[tokio::test]
async fn the_python_publisher_gets_the_contracts_receipts_and_the_ledger_holds_each_fact_once() {
    let python = python();
    assert!(
        python.exists(),
        "TLEDGER_PUBLISHER_PYTHON={} does not exist: run `bash ops/test` to make the \
         virtual environment",
        python.display()
    );
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let key = SigningKey::from_bytes(&[7; 32]);
    let publishers = Publishers::new(ledger.store.clone());
    publishers
        .add(&NewPublisher {
            id: PUBLISHER.into(),
            source: SOURCE.into(),
            unit: Some("dai-loc".into()),
            types: Some(vec![
                "training.nominated.v1".into(),
                "training.enrolled.v1".into(),
            ]),
            key_hex: Some(hex::encode(key.verifying_key().to_bytes())),
        })
        .await
        .expect("publisher");
    let (_intake, _client, jetstream, stop) = support::serve_ingest(
        &ledger,
        NATS_URL,
        publishers,
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let prefix = ledger.commands.prefix().clone();

    let publish = || {
        let run = tokio::process::Command::new(&python)
            .arg(script())
            .args(["--nats-url", NATS_URL, "--prefix", prefix.as_str()])
            .args(["--publisher", PUBLISHER, "--source", SOURCE])
            .args(["--official", "o-1", "--unit", "dai-loc-dai-an"])
            .args(["--run", RUN, "--timeout", "10"])
            .args(["--signing-key", &hex::encode(key.to_bytes())])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        async move {
            tokio::time::timeout(Duration::from_secs(120), run)
                .await
                .expect("the publisher finishes within two minutes")
                .expect("the publisher runs")
        }
    };
    let output = publish().await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // Shown with --nocapture, and with the failure otherwise.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the publisher failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l == "ok: 5 facts, 6 receipts as expected"),
        "{stdout}\n{stderr}"
    );

    // What it printed: every receipt, in arrival order, by fact id.
    let mut receipts: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(json) = line.strip_prefix("receipt ") {
            let receipt: Value = serde_json::from_str(json).expect("receipt JSON");
            assert_eq!(receipt["source"], SOURCE, "{receipt}");
            let id = receipt["id"].as_str().expect("id").to_owned();
            receipts.entry(id).or_default().push(receipt);
        }
    }
    let statuses = |id: &str| -> Vec<&str> {
        receipts
            .get(id)
            .map(|r| r.iter().filter_map(|r| r["status"].as_str()).collect())
            .unwrap_or_default()
    };
    assert_eq!(statuses("nom-py-1"), ["accepted"], "{stdout}");
    assert_eq!(statuses("enr-py-1"), ["accepted"], "{stdout}");
    assert_eq!(statuses("enr-py-2"), ["parked", "accepted"], "{stdout}");
    assert_eq!(statuses("nom-py-2"), ["accepted"], "{stdout}");
    assert_eq!(statuses("nom-py-3"), ["rejected"], "{stdout}");
    let parked = &receipts["enr-py-2"][0];
    assert_eq!(parked["field"], "/data/enrollment_id", "{parked}");
    let rejected = &receipts["nom-py-3"][0];
    assert_eq!(
        rejected["field"], "/data/funding/0/amount_vnd",
        "{rejected}"
    );

    // The ledger: each accepted fact once, at the position of its receipt,
    // with the publisher's source and the CloudEvent id.
    let position = |id: &str| -> i64 {
        let last = receipts[id].last().expect("a receipt");
        let position = last["position"].as_u64().expect("position");
        i64::try_from(position).expect("position fits")
    };
    for (id, enrollment, kind) in [
        ("nom-py-1", "e-py-1", "training.nominated.v1"),
        ("enr-py-1", "e-py-1", "training.enrolled.v1"),
        ("nom-py-2", "e-py-2", "training.nominated.v1"),
        ("enr-py-2", "e-py-2", "training.enrolled.v1"),
    ] {
        let recorded: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT position, aggregate_id, event_type, publisher FROM events \
             WHERE command_id = $1",
        )
        .bind(id)
        .fetch_all(ledger.store.pool())
        .await
        .expect("facts by id");
        assert_eq!(
            recorded,
            [(
                position(id),
                enrollment.to_owned(),
                kind.to_owned(),
                SOURCE.to_owned()
            )],
            "{id}"
        );
    }
    // The parked enrolment was recorded after the nomination it waited for.
    assert!(position("enr-py-2") > position("nom-py-2"));
    let from_publisher: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE publisher = $1")
            .bind(SOURCE)
            .fetch_one(ledger.store.pool())
            .await
            .expect("count");
    assert_eq!(from_publisher, 4);

    // The bad fact is kept in quarantine with its reason.
    let (code, body) = ledger
        .get(
            &format!("/v1/quarantine?publisher={PUBLISHER}"),
            Some(&ledger.admin),
            false,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).expect("JSON");
    let items = listing["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{listing}");
    assert_eq!(items[0]["field"], "/data/funding/0/amount_vnd", "{listing}");

    // The same history again (same ids, new envelope times, so JetStream
    // passes it on): the ledger answers duplicate with the first positions,
    // the client reports receipts other than it expected, and nothing is
    // recorded twice.
    let again = publish().await;
    let stdout = String::from_utf8_lossy(&again.stdout).into_owned();
    assert_eq!(again.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("problem: nom-py-1: receipts ['duplicate'], expected ['accepted']"),
        "{stdout}"
    );
    let duplicate = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("receipt "))
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .find(|r| r["id"] == "nom-py-1")
        .expect("a receipt for nom-py-1");
    assert_eq!(
        duplicate["position"].as_i64(),
        Some(position("nom-py-1")),
        "{stdout}"
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE publisher = $1")
        .bind(SOURCE)
        .fetch_one(ledger.store.pool())
        .await
        .expect("count");
    assert_eq!(after, 4, "{stdout}");

    let _ = stop.send(true);
    let _ = jetstream
        .delete_stream(format!("{}_INGEST", prefix.as_str().to_uppercase()))
        .await;
}
