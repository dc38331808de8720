//! Facts published over NATS (docs/contract.md "Publishing facts"), against the
//! machine's nats-server with a stream prefix of the test's own and a fresh
//! database: every message gets one receipt (on NATS and at
//! `GET /v1/receipts`), and the ledger holds each accepted fact exactly
//! once; every bad input is rejected with a reason and a JSON Pointer and
//! kept in quarantine.

use crate::support;

use std::time::Duration;

use async_nats::jetstream;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tledger::access::Role;
use tledger::ingest::stream as ingest_stream;
use tledger::ingest::Intake;
use tledger::publishers::{NewPublisher, Publishers};
use tledger_events::envelope::sign_published;

const NATS_URL: &str = "nats://127.0.0.1:4222";
const SOURCE: &str = "/bodies/dai-loc";
const SCHOOL: &str = "/schools/quang-nam";

struct Bodies {
    ledger: support::Ledger,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    prefix: String,
    intake: Intake,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// A seeded ledger, two registered publishers (the district, unsigned, for
/// its subtree and the training facts; the school, signed with `key(1)`, for
/// enrolments and outcomes), the ingest consumer and the parked-fact loop.
async fn bodies(duplicate_window: Duration, park_for: Duration) -> Bodies {
    let prefix: tledger::Prefix = tledger_tests::unique_prefix().parse().expect("prefix");
    bodies_on(NATS_URL, &prefix, duplicate_window, park_for).await
}

async fn bodies_on(
    nats_url: &str,
    prefix: &tledger::Prefix,
    duplicate_window: Duration,
    park_for: Duration,
) -> Bodies {
    let ledger = support::spawn_app_with_prefix(prefix.clone()).await;
    ledger.seed().await;
    let publishers = Publishers::new(ledger.store.clone());
    publishers
        .add(&NewPublisher {
            id: "dai-loc".into(),
            source: SOURCE.into(),
            unit: Some("dai-loc".into()),
            types: Some(vec![
                "training.nominated.v1".into(),
                "training.enrolled.v1".into(),
                "official.rated.v1".into(),
            ]),
            key_hex: None,
        })
        .await
        .expect("publisher");
    publishers
        .add(&NewPublisher {
            id: "qn-school".into(),
            source: SCHOOL.into(),
            unit: None,
            types: Some(vec![
                "training.enrolled.v1".into(),
                "training.completed.v1".into(),
            ]),
            key_hex: Some(hex::encode(key(1).verifying_key().to_bytes())),
        })
        .await
        .expect("publisher");
    let (intake, client, jetstream, stop) =
        support::serve_ingest(&ledger, nats_url, publishers, duplicate_window, park_for).await;
    let prefix = ledger.commands.prefix().clone();
    Bodies {
        ledger,
        client,
        jetstream,
        prefix: prefix.as_str().to_owned(),
        intake,
        _stop: stop,
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn event(source: &str, id: &str, kind: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": source, "type": kind,
        "time": "2011-01-01T00:00:00Z", "datacontenttype": "application/json", "data": data
    })
}

fn nominated(id: &str, enrollment: &str) -> Value {
    event(
        SOURCE,
        id,
        "training.nominated.v1",
        support::nomination(enrollment, "2008-08-01"),
    )
}

fn enrolled(source: &str, id: &str, enrollment: &str) -> Value {
    event(
        source,
        id,
        "training.enrolled.v1",
        json!({"enrollment_id": enrollment, "effective_date": "2008-09-01"}),
    )
}

fn signed(mut message: Value, seed: u8) -> Value {
    sign_published(&mut message, &key(seed)).expect("sign");
    message
}

impl Bodies {
    /// Publishes raw bytes on a publisher's ingest subject with the
    /// contract's `Nats-Msg-Id`, and gives the publish ack's duplicate flag.
    async fn publish_bytes(&self, publisher: &str, body: Vec<u8>) -> bool {
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let msg_id = format!(
            "{}|{}|{}",
            value["source"].as_str().unwrap_or(""),
            value["id"].as_str().unwrap_or(""),
            hex::encode(Sha256::digest(&body))
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        headers.insert("content-type", "application/cloudevents+json");
        let ack = self
            .jetstream
            .publish_with_headers(
                format!("{}.ingest.{publisher}", self.prefix),
                headers,
                body.into(),
            )
            .await
            .expect("publish")
            .await
            .expect("publish ack");
        ack.duplicate
    }

    async fn publish(&self, publisher: &str, message: &Value) -> bool {
        self.publish_bytes(publisher, message.to_string().into_bytes())
            .await
    }

    async fn receipts(&self, publisher: &str) -> async_nats::Subscriber {
        let subscriber = self
            .client
            .subscribe(format!("{}.receipts.{publisher}", self.prefix))
            .await
            .expect("subscribe");
        self.client.flush().await.expect("flush");
        subscriber
    }

    /// The latest receipt over HTTP, once there is one with this status.
    async fn receipt_when(&self, source: &str, id: &str, status: &str) -> Value {
        let path = format!(
            "/v1/receipts?source={}&id={}",
            urlencode(source),
            urlencode(id)
        );
        for _ in 0..400 {
            let (code, body) = self
                .ledger
                .get(&path, Some(&self.ledger.admin), false)
                .await;
            if code == 200 {
                let receipt: Value = serde_json::from_str(&body).expect("JSON");
                if receipt["status"] == status {
                    return receipt;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let (_, last) = self
            .ledger
            .get(&path, Some(&self.ledger.admin), false)
            .await;
        panic!("no {status} receipt for {source} {id}; last: {last}");
    }

    async fn quarantine(&self, publisher: &str) -> Vec<Value> {
        let (code, body) = self
            .ledger
            .get(
                &format!("/v1/quarantine?publisher={publisher}"),
                Some(&self.ledger.admin),
                false,
            )
            .await;
        assert_eq!(code, 200, "{body}");
        let listing: Value = serde_json::from_str(&body).expect("JSON");
        listing["items"].as_array().cloned().unwrap_or_default()
    }

    async fn published_facts(&self, source: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE publisher = $1")
            .bind(source)
            .fetch_one(self.ledger.store.pool())
            .await
            .expect("count")
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn next_receipt(receipts: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(30), receipts.next())
        .await
        .expect("a receipt within 30 s")
        .expect("subscription open");
    serde_json::from_slice(&message.payload).expect("receipt JSON")
}

#[tokio::test]
async fn a_published_fact_is_recorded_once_and_answered_with_its_position() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut receipts = b.receipts("dai-loc").await;
    let before = b.ledger.events().await;

    let message = nominated("nom-1", "e-1");
    assert!(!b.publish("dai-loc", &message).await);
    let receipt = next_receipt(&mut receipts).await;
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    assert_eq!(receipt["source"], SOURCE);
    assert_eq!(receipt["id"], "nom-1");
    let position = receipt["position"].as_u64().expect("position");
    let recorded: (String, String, String, Option<String>) = sqlx::query_as(
        "SELECT aggregate_id, publisher, actor, command_id FROM events WHERE position = $1",
    )
    .bind(position as i64)
    .fetch_one(b.ledger.store.pool())
    .await
    .expect("the fact at its position");
    assert_eq!(
        recorded,
        (
            "e-1".to_owned(),
            SOURCE.to_owned(),
            "publisher:dai-loc".to_owned(),
            Some("nom-1".to_owned())
        )
    );
    assert_eq!(b.ledger.events().await, before + 1);

    // A byte-identical repeat inside JetStream's window never reaches the
    // service: the publish ack says duplicate.
    assert!(b.publish("dai-loc", &message).await);
    // The same fact with another envelope time is another message: it
    // reaches the service, which answers duplicate with the first position.
    let mut again = message.clone();
    again["time"] = json!("2011-01-02T00:00:00Z");
    assert!(!b.publish("dai-loc", &again).await);
    let receipt = next_receipt(&mut receipts).await;
    assert_eq!(
        (receipt["status"].clone(), receipt["position"].as_u64()),
        (json!("duplicate"), Some(position)),
        "{receipt}"
    );
    // Other content under the same id is rejected, and the first is kept.
    let mut other = message.clone();
    other["data"]["decision_no"] = json!("99/QĐ-UBND");
    b.publish("dai-loc", &other).await;
    let receipt = next_receipt(&mut receipts).await;
    assert_eq!(receipt["status"], "rejected", "{receipt}");
    assert_eq!(receipt["field"], "/id");
    assert!(
        receipt["reason"]
            .as_str()
            .unwrap_or("")
            .contains("the first is kept"),
        "{receipt}"
    );
    let kept: String =
        sqlx::query_scalar("SELECT data->>'decision_no' FROM events WHERE position = $1")
            .bind(position as i64)
            .fetch_one(b.ledger.store.pool())
            .await
            .expect("first fact");
    assert_eq!(kept, "45/QĐ-UBND");
    assert_eq!(b.ledger.events().await, before + 1);
    // The latest receipt over HTTP is the rejection.
    let latest = b.receipt_when(SOURCE, "nom-1", "rejected").await;
    assert_eq!(latest["field"], "/id");
    // The first content again, after that rejection: still a duplicate.
    let mut once_more = message.clone();
    once_more["time"] = json!("2011-01-03T00:00:00Z");
    assert!(!b.publish("dai-loc", &once_more).await);
    let receipt = next_receipt(&mut receipts).await;
    assert_eq!(
        (receipt["status"].clone(), receipt["position"].as_u64()),
        (json!("duplicate"), Some(position)),
        "{receipt}"
    );
    assert_eq!(b.ledger.events().await, before + 1);
}

#[tokio::test]
async fn after_jetstreams_window_a_repeat_is_answered_duplicate_by_the_ledger() {
    let b = bodies(Duration::from_millis(500), Duration::from_secs(3600)).await;
    let mut receipts = b.receipts("dai-loc").await;
    let message = nominated("nom-w", "e-w");
    assert!(!b.publish("dai-loc", &message).await);
    let first = next_receipt(&mut receipts).await;
    assert_eq!(first["status"], "accepted", "{first}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The same bytes, the same Nats-Msg-Id: JetStream has forgotten it.
    assert!(!b.publish("dai-loc", &message).await);
    let second = next_receipt(&mut receipts).await;
    assert_eq!(second["status"], "duplicate", "{second}");
    assert_eq!(second["position"], first["position"]);
    assert_eq!(b.published_facts(SOURCE).await, 1);
}

#[tokio::test]
async fn every_bad_input_is_rejected_with_a_reason_and_kept_in_quarantine() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut receipts = b.receipts("dai-loc").await;
    let before = b.ledger.events().await;
    let without = |name: &str| {
        let mut m = nominated("nom-x", "e-x");
        m.as_object_mut().expect("object").remove(name);
        m.to_string().into_bytes()
    };
    let with = |pointer: &str, value: Value| {
        let mut m = nominated("nom-y", "e-y");
        *m.pointer_mut(pointer).expect("pointer") = value;
        m.to_string().into_bytes()
    };
    let mut missing_field = nominated("nom-z", "e-z");
    missing_field["data"]
        .as_object_mut()
        .expect("data")
        .remove("official_id");
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("not JSON", b"{not json".to_vec(), "", "not JSON"),
        ("no specversion", without("specversion"), "/specversion", ""),
        ("no id", without("id"), "/id", ""),
        ("no type", without("type"), "/type", ""),
        (
            "unknown type",
            with("/type", json!("training.started.v1")),
            "/type",
            "",
        ),
        (
            "wrong datacontenttype",
            with("/datacontenttype", json!("text/xml")),
            "/datacontenttype",
            "application/json",
        ),
        (
            "wrong JSON type",
            with("/data/planned_start", json!(20080901)),
            "/data/planned_start",
            "",
        ),
        (
            "missing field",
            missing_field.to_string().into_bytes(),
            "/data/official_id",
            "",
        ),
        (
            "unknown level code",
            with("/data/program/level", json!("doctorate-ish")),
            "/data/program/level",
            "",
        ),
        (
            "negative amount",
            with("/data/funding/0/amount_vnd", json!(-1)),
            "/data/funding/0/amount_vnd",
            "",
        ),
        (
            "id over 64 characters",
            with("/id", json!("n".repeat(65))),
            "/id",
            "64",
        ),
        (
            "another publisher's source",
            with("/source", json!(SCHOOL)),
            "/source",
            "forbidden",
        ),
        (
            "a type the publisher may not publish",
            event(
                SOURCE,
                "done-1",
                "training.completed.v1",
                json!({"enrollment_id": "e-1", "effective_date": "2010-06-30", "result": "good"}),
            )
            .to_string()
            .into_bytes(),
            "/type",
            "forbidden",
        ),
        (
            "a unit outside the publisher's subtree",
            {
                let mut m = nominated("nom-out", "e-out");
                m["data"]["nominating_unit_id"] = json!("dien-ban");
                m.to_string().into_bytes()
            },
            "",
            "forbidden",
        ),
    ];
    for (what, body, field, words) in &cases {
        b.publish_bytes("dai-loc", body.clone()).await;
        let receipt = next_receipt(&mut receipts).await;
        assert_eq!(receipt["status"], "rejected", "{what}: {receipt}");
        if !field.is_empty() {
            assert_eq!(receipt["field"], *field, "{what}: {receipt}");
        }
        let reason = receipt["reason"].as_str().unwrap_or("");
        assert!(
            !reason.is_empty() && reason.contains(words),
            "{what}: {receipt}"
        );
    }
    let quarantined = b.quarantine("dai-loc").await;
    assert_eq!(quarantined.len(), cases.len(), "{quarantined:?}");
    // The quarantine keeps each message as received (the one that is not
    // JSON too), with its reason.
    assert!(quarantined
        .iter()
        .any(|i| i["message"] == "{not json" && i["status"] == "quarantined"));
    assert_eq!(
        b.ledger.events().await,
        before,
        "nothing bad reached the ledger"
    );
}

#[tokio::test]
async fn a_signing_publisher_needs_a_good_signature_and_a_legal_transition() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut district = b.receipts("dai-loc").await;
    let mut school = b.receipts("qn-school").await;
    b.publish("dai-loc", &nominated("nom-1", "e-1")).await;
    assert_eq!(next_receipt(&mut district).await["status"], "accepted");

    let unsigned = enrolled(SCHOOL, "enr-1", "e-1");
    b.publish("qn-school", &unsigned).await;
    let receipt = next_receipt(&mut school).await;
    assert_eq!(
        (receipt["status"].clone(), receipt["field"].clone()),
        (json!("rejected"), json!("/tlsignature"))
    );
    b.publish("qn-school", &signed(unsigned.clone(), 2)).await;
    let receipt = next_receipt(&mut school).await;
    assert!(
        receipt["reason"]
            .as_str()
            .unwrap_or("")
            .contains("does not match"),
        "{receipt}"
    );

    // The rejected id, sent again correctly signed, is accepted.
    b.publish("qn-school", &signed(unsigned.clone(), 1)).await;
    let receipt = next_receipt(&mut school).await;
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    // Enrolling the same place again is an illegal transition.
    b.publish("qn-school", &signed(enrolled(SCHOOL, "enr-2", "e-1"), 1))
        .await;
    let receipt = next_receipt(&mut school).await;
    assert_eq!(receipt["status"], "rejected", "{receipt}");
    assert_eq!(b.published_facts(SCHOOL).await, 1);
}

#[tokio::test]
async fn a_fact_arriving_before_what_it_refers_to_is_parked_then_recorded_in_order() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut district = b.receipts("dai-loc").await;
    let mut school = b.receipts("qn-school").await;
    b.publish(
        "qn-school",
        &signed(enrolled(SCHOOL, "enr-early", "e-9"), 1),
    )
    .await;
    let parked = next_receipt(&mut school).await;
    assert_eq!(parked["status"], "parked", "{parked}");
    assert_eq!(parked["field"], "/data/enrollment_id");
    assert!(
        parked["reason"]
            .as_str()
            .unwrap_or("")
            .contains("enrollment-e-9"),
        "{parked}"
    );
    assert_eq!(b.published_facts(SCHOOL).await, 0);

    b.publish("dai-loc", &nominated("nom-9", "e-9")).await;
    let nomination = next_receipt(&mut district).await;
    assert_eq!(nomination["status"], "accepted", "{nomination}");
    let enrolment = next_receipt(&mut school).await;
    assert_eq!(enrolment["status"], "accepted", "{enrolment}");
    assert!(enrolment["position"].as_u64() > nomination["position"].as_u64());
    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
}

#[tokio::test]
async fn a_fact_whose_stream_never_appears_is_rejected_after_the_parking_time() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(2),
    )
    .await;
    let mut district = b.receipts("dai-loc").await;
    let rating = event(
        SOURCE,
        "rate-1",
        "official.rated.v1",
        json!({"official_id": "o-404", "year": 2010, "rating": "good", "effective_date": "2010-12-31"}),
    );
    b.publish("dai-loc", &rating).await;
    let parked = next_receipt(&mut district).await;
    assert_eq!(parked["status"], "parked", "{parked}");
    let rejected = next_receipt(&mut district).await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(rejected["field"], "/data/official_id");
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap_or("")
            .contains("official-o-404"),
        "{rejected}"
    );
    assert_eq!(b.quarantine("dai-loc").await.len(), 1);
    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
}

#[tokio::test]
async fn a_quarantined_message_is_resubmitted_corrected_or_discarded_with_who_and_why() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut district = b.receipts("dai-loc").await;
    let mut bad = nominated("nom-q", "e-q");
    bad["data"]["program"]["level"] = json!("unknown-level");
    b.publish("dai-loc", &bad).await;
    assert_eq!(next_receipt(&mut district).await["status"], "rejected");
    b.publish_bytes("dai-loc", b"garbage".to_vec()).await;
    assert_eq!(next_receipt(&mut district).await["status"], "rejected");
    let items = b.quarantine("dai-loc").await;
    assert_eq!(items.len(), 2);
    let id_of = |needle: &str| -> uuid::Uuid {
        items
            .iter()
            .find(|i| i["message"].as_str().unwrap_or("").contains(needle))
            .and_then(|i| i["id"].as_str())
            .and_then(|s| s.parse().ok())
            .expect("item")
    };

    // Resubmitted unchanged, it is rejected again and stays a record.
    let (bad_item, garbage) = (id_of("unknown-level"), id_of("garbage"));
    let corrected = nominated("nom-q", "e-q");
    let receipt = tledger::quarantine::resubmit(
        &b.intake,
        bad_item,
        Some(corrected.to_string().into_bytes().into()),
        "clerk-lan",
    )
    .await
    .expect("resubmit");
    assert_eq!(receipt.status.as_str(), "accepted");
    assert_eq!(b.published_facts(SOURCE).await, 1);
    tledger::quarantine::discard(&b.ledger.store, garbage, "clerk-lan", "test garbage")
        .await
        .expect("discard");
    let items = b.quarantine("dai-loc").await;
    let status = |id: uuid::Uuid| {
        items
            .iter()
            .find(|i| i["id"] == json!(id))
            .cloned()
            .expect("still listed")
    };
    assert_eq!(status(bad_item)["status"], "resubmitted");
    assert_eq!(status(bad_item)["resolved"]["by"], "clerk-lan");
    assert_eq!(status(garbage)["status"], "discarded");
    assert_eq!(status(garbage)["resolved"]["note"], "test garbage");
    // A closed item cannot be discarded again.
    let again = tledger::quarantine::discard(&b.ledger.store, garbage, "x", "y").await;
    assert!(matches!(
        again,
        Err(tledger::quarantine::QuarantineError::Resolved(..))
    ));
    b.receipt_when(SOURCE, "nom-q", "accepted").await;
}

#[tokio::test]
async fn a_message_over_the_servers_max_payload_is_refused_to_the_client() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let before = b.ledger.events().await;
    let mut huge = nominated("nom-huge", "e-huge");
    huge["data"]["decision_no"] = json!("x".repeat(10 * 1024 * 1024));
    let refused = b
        .jetstream
        .publish(
            format!("{}.ingest.dai-loc", b.prefix),
            huge.to_string().into_bytes().into(),
        )
        .await;
    let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("payload"), "the client's error: {error:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.ledger.events().await, before);
    assert!(b.quarantine("dai-loc").await.is_empty());
}

#[tokio::test]
async fn receipts_and_quarantine_are_read_by_role_and_publisher() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut district = b.receipts("dai-loc").await;
    b.publish_bytes("dai-loc", b"nope".to_vec()).await;
    next_receipt(&mut district).await;
    let path = "/v1/quarantine?publisher=dai-loc";
    let (code, _) = b.ledger.get(path, None, false).await;
    assert_eq!(code, 401);
    let inspector = b.ledger.token(Role::Inspector, None).await;
    let (code, body) = b.ledger.get(path, Some(&inspector), false).await;
    assert_eq!(code, 200, "{body}");
    // The support's publisher token belongs to publisher "school".
    let other = b.ledger.token(Role::Publisher, None).await;
    let (code, body) = b.ledger.get(path, Some(&other), false).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = b.ledger.get("/v1/quarantine", Some(&other), false).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, r#"{"items":[]}"#);
    let (code, body) = b
        .ledger
        .get(
            "/v1/receipts?source=%2Fbodies%2Fdai-loc",
            Some(&inspector),
            false,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("/id"), "{body}");
}

#[tokio::test]
async fn an_import_goes_through_the_same_checks_and_resumes_without_doubling() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("history.jsonl");
    let mut lines = Vec::new();
    for i in 0..30 {
        lines.push(nominated(&format!("nom-{i}"), &format!("e-{i}")).to_string());
        lines.push(signed(enrolled(SCHOOL, &format!("enr-{i}"), &format!("e-{i}")), 1).to_string());
    }
    lines.push("not a fact".to_owned());
    lines.push(nominated("nom-0", "e-0").to_string()); // a repeat in the file
    std::fs::write(&file, lines.join("\n")).expect("write");
    let prefix = b.ledger.commands.prefix().clone();

    let first = tledger::import::import(&b.ledger.store, &prefix, &file, None, false)
        .await
        .expect("import");
    assert_eq!(
        (
            first.accepted,
            first.duplicate,
            first.rejected,
            first.parked
        ),
        (60, 1, 1, 0),
        "{first}"
    );
    assert_eq!(b.published_facts(SOURCE).await, 30);
    assert_eq!(b.published_facts(SCHOOL).await, 30);

    // Run again: the file is known and finished; nothing is answered again.
    let second = tledger::import::import(&b.ledger.store, &prefix, &file, None, false)
        .await
        .expect("import");
    assert_eq!(
        (second.answered(), second.resumed_after),
        (0, 62),
        "{second}"
    );

    // Interrupted before its progress was recorded: every line comes again
    // and is a duplicate; nothing is recorded twice.
    sqlx::query("DELETE FROM import_progress")
        .execute(b.ledger.store.pool())
        .await
        .expect("forget progress");
    let third = tledger::import::import(&b.ledger.store, &prefix, &file, None, false)
        .await
        .expect("import");
    assert_eq!((third.accepted, third.duplicate), (0, 61), "{third}");
    assert_eq!(
        b.published_facts(SOURCE).await + b.published_facts(SCHOOL).await,
        60
    );
}

/// A publishing body's own connection, with the custom inbox prefix its
/// permissions require; server errors (permission violations) are sent to
/// the returned channel.
async fn connect_as(
    url: &str,
    user: &str,
    password: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (errors, seen) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .custom_inbox_prefix(format!("_INBOX.{user}"))
        .event_callback(move |event| {
            let errors = errors.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = errors.send(error.to_string());
                }
            }
        })
        .connect(url)
        .await
        .expect("publisher connects");
    (client, seen)
}

async fn permission_error(seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>, subject: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let error = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .unwrap_or_else(|_| panic!("no permissions violation for {subject}"))
            .expect("events open");
        if error.to_lowercase().contains("permissions violation") && error.contains(subject) {
            return;
        }
    }
}

#[tokio::test]
async fn nats_permissions_keep_each_body_to_its_own_subjects() {
    let p: tledger::Prefix = tledger_tests::unique_prefix().parse().expect("prefix");
    let prefix = p.as_str().to_owned();
    let (a_password, b_password) = ("a-secret-1", "b-secret-2");
    let config = format!(
        "authorization {{\n  users: [\n    {{ user: \"tledger\", password: \"service-secret\", \
         permissions: {{ publish: [\">\"], subscribe: [\">\"] }} }}\n{}\n{}\n  ]\n}}\n",
        tledger::publishers::nats_user_block(&p, "dai-loc", a_password),
        tledger::publishers::nats_user_block(&p, "qn-school", b_password),
    );
    let nats = tledger_tests::PrivateNats::start(&config).await;
    let service_url = format!("nats://tledger:service-secret@127.0.0.1:{}", nats.port());
    let b = bodies_on(
        &service_url,
        &p,
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let (a, mut a_errors) = connect_as(&nats.url(), "dai-loc", a_password).await;
    let (school, _) = connect_as(&nats.url(), "qn-school", b_password).await;
    let a_js = jetstream::new(a.clone());

    // A publishes on its own subject and reads its own receipts.
    let mut a_receipts = a
        .subscribe(format!("{prefix}.receipts.dai-loc"))
        .await
        .expect("own receipts");
    let mut b_receipts = school
        .subscribe(format!("{prefix}.receipts.qn-school"))
        .await
        .expect("own receipts");
    a.flush().await.expect("flush");
    school.flush().await.expect("flush");
    let ack = a_js
        .publish(
            format!("{prefix}.ingest.dai-loc"),
            nominated("nom-a", "e-a").to_string().into_bytes().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack on A's own inbox");
    assert!(!ack.duplicate);
    assert_eq!(next_receipt(&mut a_receipts).await["status"], "accepted");

    // A may not publish on B's subject: the server refuses it.
    let b_subject = format!("{prefix}.ingest.qn-school");
    a.publish(
        b_subject.clone(),
        signed(enrolled(SCHOOL, "forged-1", "e-a"), 1)
            .to_string()
            .into_bytes()
            .into(),
    )
    .await
    .expect("sent");
    a.flush().await.expect("flush");
    permission_error(&mut a_errors, &b_subject).await;

    // A may not read B's receipts: the subscription is refused and gets
    // nothing, while B gets its own.
    let b_receipt_subject = format!("{prefix}.receipts.qn-school");
    let mut spying = a.subscribe(b_receipt_subject.clone()).await.expect("sent");
    a.flush().await.expect("flush");
    permission_error(&mut a_errors, &b_receipt_subject).await;
    jetstream::new(school.clone())
        .publish(b_subject.clone(), b"not json".to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!(next_receipt(&mut b_receipts).await["status"], "rejected");
    let spied = tokio::time::timeout(Duration::from_millis(500), spying.next()).await;
    assert!(!matches!(spied, Ok(Some(_))), "A read B's receipt");

    // A forged source on A's own subject is rejected.
    let mut forged = nominated("nom-forged", "e-f");
    forged["source"] = json!(SCHOOL);
    a_js.publish(
        format!("{prefix}.ingest.dai-loc"),
        forged.to_string().into_bytes().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("ack");
    let receipt = next_receipt(&mut a_receipts).await;
    assert_eq!(
        (receipt["status"].clone(), receipt["field"].clone()),
        (json!("rejected"), json!("/source"))
    );
    // Nothing A sent on B's subject reached the ledger or its receipts.
    assert_eq!(b.published_facts(SCHOOL).await, 0);
    let (code, _) = b
        .ledger
        .get(
            &format!("/v1/receipts?source={}&id=forged-1", urlencode(SCHOOL)),
            Some(&b.ledger.admin),
            false,
        )
        .await;
    assert_eq!(code, 404);
}

fn completed(source: &str, id: &str, enrollment: &str) -> Value {
    event(
        source,
        id,
        "training.completed.v1",
        json!({"enrollment_id": enrollment, "effective_date": "2010-06-30", "result": "good"}),
    )
}

/// The types of a place's facts in the order of its stream, with their
/// ledger positions.
async fn place_stream(b: &Bodies, enrollment: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT event_type, position FROM events \
         WHERE aggregate_type = 'enrollment' AND aggregate_id = $1 ORDER BY version",
    )
    .bind(enrollment)
    .fetch_all(b.ledger.store.pool())
    .await
    .expect("the place's stream")
}

/// The place's latest state in the read models.
async fn place_state(b: &Bodies, enrollment: &str) -> Option<String> {
    b.ledger.projected().await;
    sqlx::query_scalar(
        "SELECT state FROM rm.place_steps WHERE enrollment_id = $1 ORDER BY position DESC LIMIT 1",
    )
    .bind(enrollment)
    .fetch_optional(b.ledger.store.pool())
    .await
    .expect("read model")
}

/// Nomination, enrolment, completion: one fact each, in that order.
async fn assert_completed_in_order(b: &Bodies, enrollment: &str, ids: [&str; 3]) {
    let nomination = b.receipt_when(SOURCE, ids[0], "accepted").await;
    let enrolment = b.receipt_when(SCHOOL, ids[1], "accepted").await;
    let completion = b.receipt_when(SCHOOL, ids[2], "accepted").await;
    let positions: Vec<i64> = [&nomination, &enrolment, &completion]
        .iter()
        .map(|r| r["position"].as_i64().expect("position"))
        .collect();
    let stream = place_stream(b, enrollment).await;
    assert_eq!(
        stream,
        vec![
            ("training.nominated.v1".to_owned(), positions[0]),
            ("training.enrolled.v1".to_owned(), positions[1]),
            ("training.completed.v1".to_owned(), positions[2]),
        ],
        "{enrollment}: one fact each, at the positions answered, in the body's order"
    );
    assert_eq!(
        place_state(b, enrollment).await.as_deref(),
        Some("completed"),
        "{enrollment}"
    );
}

#[tokio::test]
async fn a_later_fact_of_a_parked_stream_waits_behind_it_and_is_decided_after_it() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    let mut school = b.receipts("qn-school").await;

    // Enrolment and completion both before the nomination.
    b.publish("qn-school", &signed(enrolled(SCHOOL, "enr-a1", "e-a1"), 1))
        .await;
    assert_eq!(next_receipt(&mut school).await["status"], "parked");
    b.publish(
        "qn-school",
        &signed(completed(SCHOOL, "done-a1", "e-a1"), 1),
    )
    .await;
    let behind = next_receipt(&mut school).await;
    assert_eq!(behind["status"], "parked", "{behind}");
    assert_eq!(behind["field"], "/data/enrollment_id", "{behind}");
    let reason = behind["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("enr-a1") && reason.contains("behind"),
        "the receipt names the fact it waits behind: {behind}"
    );
    b.publish("dai-loc", &nominated("nom-a1", "e-a1")).await;
    assert_completed_in_order(&b, "e-a1", ["nom-a1", "enr-a1", "done-a1"]).await;

    // The completion published after the nomination, while the enrolment
    // is still parked: it is decided after the enrolment all the same.
    b.publish("qn-school", &signed(enrolled(SCHOOL, "enr-a2", "e-a2"), 1))
        .await;
    b.receipt_when(SCHOOL, "enr-a2", "parked").await;
    b.publish("dai-loc", &nominated("nom-a2", "e-a2")).await;
    b.publish(
        "qn-school",
        &signed(completed(SCHOOL, "done-a2", "e-a2"), 1),
    )
    .await;
    assert_completed_in_order(&b, "e-a2", ["nom-a2", "enr-a2", "done-a2"]).await;

    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
    assert!(b.quarantine("qn-school").await.is_empty());
    assert_eq!(b.published_facts(SCHOOL).await, 4);
    assert_eq!(b.published_facts(SOURCE).await, 2);
}

/// A small seeded generator (xorshift64*): the same rounds on every run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[tokio::test]
async fn two_bodies_publishing_with_random_delays_end_with_every_fact_once_in_order() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    const ROUNDS: usize = 3;
    const PLACES: usize = 4;
    let mut dice = Dice(0x1905_2026);
    let run = async {
        for round in 0..ROUNDS {
            let places: Vec<String> = (0..PLACES).map(|p| format!("r{round}-p{p}")).collect();
            // Each body publishes in its own order, with its own pauses.
            let school_pauses: Vec<u64> = (0..2 * PLACES).map(|_| dice.below(150)).collect();
            let ministry_pauses: Vec<u64> = (0..PLACES).map(|_| dice.below(300)).collect();
            let school = async {
                for (i, place) in places.iter().enumerate() {
                    for (j, message) in [
                        enrolled(SCHOOL, &format!("enr-{place}"), &format!("e-{place}")),
                        completed(SCHOOL, &format!("done-{place}"), &format!("e-{place}")),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let pause = school_pauses[2 * i + j];
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        b.publish("qn-school", &signed(message, 1)).await;
                    }
                }
            };
            let ministry = async {
                for (i, place) in places.iter().enumerate() {
                    tokio::time::sleep(Duration::from_millis(ministry_pauses[i])).await;
                    b.publish(
                        "dai-loc",
                        &nominated(&format!("nom-{place}"), &format!("e-{place}")),
                    )
                    .await;
                }
            };
            tokio::join!(school, ministry);
            for place in &places {
                assert_completed_in_order(
                    &b,
                    &format!("e-{place}"),
                    [
                        &format!("nom-{place}"),
                        &format!("enr-{place}"),
                        &format!("done-{place}"),
                    ],
                )
                .await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the rounds finish in time");
    assert_eq!(
        b.published_facts(SCHOOL).await,
        (2 * ROUNDS * PLACES) as i64
    );
    assert_eq!(b.published_facts(SOURCE).await, (ROUNDS * PLACES) as i64);
    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
    assert!(b.quarantine("qn-school").await.is_empty());
}

#[tokio::test]
async fn facts_parked_in_order_stay_in_order_across_a_restart_of_the_ingest_worker() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    b.publish("qn-school", &signed(enrolled(SCHOOL, "enr-r1", "e-r1"), 1))
        .await;
    b.receipt_when(SCHOOL, "enr-r1", "parked").await;

    // The worker stops; what is published meanwhile waits in the stream.
    let Bodies {
        ledger,
        client,
        jetstream,
        prefix,
        intake,
        _stop: stop,
    } = b;
    drop(stop);
    // Past the last fetch's expiry, so no message goes to a stopped worker.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = Bodies {
        ledger,
        client,
        jetstream,
        prefix,
        intake,
        _stop: tokio::sync::watch::channel(false).0,
    };
    b.publish("dai-loc", &nominated("nom-r1", "e-r1")).await;
    b.publish(
        "qn-school",
        &signed(completed(SCHOOL, "done-r1", "e-r1"), 1),
    )
    .await;
    // A new worker on the same database.
    let (_, _, _, stop) = support::serve_ingest(
        &b.ledger,
        NATS_URL,
        Publishers::new(b.ledger.store.clone()),
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    assert_completed_in_order(&b, "e-r1", ["nom-r1", "enr-r1", "done-r1"]).await;
    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
    assert!(b.quarantine("qn-school").await.is_empty());
    drop(stop);
}

/// Whether the ingest consumer has nothing left to deliver or to be
/// acknowledged.
async fn ingest_drained(b: &Bodies) -> bool {
    let prefix: tledger::Prefix = b.prefix.parse().expect("prefix");
    let stream = b
        .jetstream
        .get_stream(prefix.ingest_stream())
        .await
        .expect("ingest stream");
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(ingest_stream::CONSUMER)
        .await
        .expect("consumer");
    let info = consumer.info().await.expect("consumer info");
    info.num_ack_pending == 0 && info.num_pending == 0
}

#[tokio::test]
async fn poison_messages_are_rejected_at_once_and_quarantined_and_the_stream_moves_on() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    // A refusal by PostgreSQL itself that no check before the store
    // foresees: a data exception raised for one marked message.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF NEW.data->>'decision_no' = 'refused-by-postgresql' THEN \
             RAISE EXCEPTION 'value refused' USING ERRCODE = '22023'; \
           END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER refuse_marked BEFORE INSERT ON events \
         FOR EACH ROW EXECUTE FUNCTION refuse_marked();",
    )
    .execute(b.ledger.store.pool())
    .await
    .expect("trigger");
    let mut receipts = b.receipts("dai-loc").await;
    let before = b.ledger.events().await;

    let text = |m: &Value| m.to_string().into_bytes();
    let mut nul_in_data = nominated("p-data", "e-p1");
    nul_in_data["data"]["decision_no"] = json!("45/QĐ\u{0}-UBND");
    let nul_in_id = nominated("p-\u{0}-id", "e-p2");
    let mut nul_in_subject = nominated("p-subject", "e-p3");
    nul_in_subject["subject"] = json!("place\u{0}");
    let mut nul_in_a_name = nominated("p-name", "e-p4");
    nul_in_a_name["data"]["program"]["ti\u{0}tle"] = json!("x");
    let surrogate = String::from_utf8(text(&nominated("p-surrogate", "e-p5")))
        .expect("UTF-8")
        .replace("45/QĐ-UBND", "\\ud800");
    let mut not_utf8 = text(&nominated("p-bytes", "e-p6"));
    let at = not_utf8
        .windows(4)
        .position(|w| w == b"45/Q")
        .expect("decision_no");
    not_utf8[at] = 0xff;
    let mut deep = nominated("p-deep", "e-p7");
    let mut nested = json!("bottom");
    for _ in 0..200 {
        nested = json!([nested]);
    }
    deep["data"]["program"]["title"] = nested;
    let big_number = String::from_utf8(text(&nominated("p-number", "e-p8")))
        .expect("UTF-8")
        .replace("4500000", "1e400");
    // An id far over the envelope's bound: rejected for its length, and
    // too long to key a stored receipt (a btree row holds ~2,700 bytes).
    let long_id = "p".repeat(6_000);
    let over_long_id = nominated(&long_id, "e-p10");
    let mut refused = nominated("p-refused", "e-p9");
    refused["data"]["decision_no"] = json!("refused-by-postgresql");

    // (message, its id in the receipt, the field named)
    let poison: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
        (text(&nul_in_data), Some("p-data"), "/data/decision_no"),
        (text(&nul_in_id), Some("p-\u{0}-id"), "/id"),
        (text(&nul_in_subject), Some("p-subject"), "/subject"),
        (text(&nul_in_a_name), Some("p-name"), "/data/program"),
        (surrogate.into_bytes(), None, ""),
        (not_utf8, None, ""),
        (text(&deep), None, ""),
        (big_number.into_bytes(), None, ""),
        (text(&refused), Some("p-refused"), ""),
        (text(&over_long_id), Some(long_id.as_str()), "/id"),
    ];
    let goods = poison.len();
    for (i, (message, _, _)) in poison.iter().enumerate() {
        b.publish("dai-loc", &nominated(&format!("g-{i}"), &format!("e-g{i}")))
            .await;
        b.publish_bytes("dai-loc", message.clone()).await;
    }
    let mut answers = Vec::new();
    for _ in 0..goods + poison.len() {
        answers.push(next_receipt(&mut receipts).await);
    }
    for i in 0..goods {
        let id = format!("g-{i}");
        let found: Vec<&Value> = answers.iter().filter(|r| r["id"] == id).collect();
        assert_eq!(found.len(), 1, "{id}: {answers:?}");
        assert_eq!(found[0]["status"], "accepted", "{id}: {}", found[0]);
    }
    for (_, id, field) in &poison {
        let Some(id) = id else { continue };
        let found: Vec<&Value> = answers.iter().filter(|r| r["id"] == *id).collect();
        assert_eq!(found.len(), 1, "{id:?}: {answers:?}");
        let receipt = found[0];
        assert_eq!(receipt["status"], "rejected", "{id:?}: {receipt}");
        assert_eq!(receipt["source"], SOURCE, "{id:?}: {receipt}");
        if field.is_empty() {
            assert!(receipt.get("field").is_none(), "{id:?}: {receipt}");
        } else {
            assert_eq!(receipt["field"], *field, "{id:?}: {receipt}");
        }
        assert!(
            !receipt["reason"].as_str().unwrap_or("").is_empty(),
            "{receipt}"
        );
    }
    let unparsed: Vec<&Value> = answers.iter().filter(|r| r["id"].is_null()).collect();
    assert_eq!(unparsed.len(), 4, "{answers:?}");
    for receipt in unparsed {
        assert_eq!(receipt["status"], "rejected", "{receipt}");
        assert_eq!(receipt["field"], "", "{receipt}");
    }
    let refusal = answers
        .iter()
        .find(|r| r["id"] == "p-refused")
        .expect("answered");
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap_or("")
            .contains("PostgreSQL"),
        "{refusal}"
    );
    // The receipts that can be stored are at GET /v1/receipts too.
    let latest = b.receipt_when(SOURCE, "p-data", "rejected").await;
    assert_eq!(latest["field"], "/data/decision_no");

    // Each poison is kept as received, and the quarantine still answers.
    let quarantined = b.quarantine("dai-loc").await;
    assert_eq!(quarantined.len(), poison.len(), "{quarantined:?}");
    assert!(quarantined.iter().all(|i| i["status"] == "quarantined"));
    assert!(
        quarantined
            .iter()
            .any(|i| i["message"].as_str().unwrap_or("").contains("\\u0000-UBND")),
        "{quarantined:?}"
    );
    let not_utf8_item = quarantined
        .iter()
        .find(|i| !i["message"].as_str().unwrap_or("{").starts_with('{'))
        .expect("the message that is not UTF-8, in base64");
    assert!(not_utf8_item["reason"]
        .as_str()
        .unwrap_or("")
        .contains("not JSON"));

    // Every good fact once; the stream has nothing left pending.
    assert_eq!(b.ledger.events().await, before + goods as i64);
    assert_eq!(b.published_facts(SOURCE).await, goods as i64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ingest_drained(&b).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ingest consumer still holds messages"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn when_the_fact_ahead_is_rejected_for_its_time_the_one_behind_is_decided_on_its_own() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(2),
    )
    .await;
    let mut school = b.receipts("qn-school").await;
    b.publish("qn-school", &signed(enrolled(SCHOOL, "enr-x", "e-x"), 1))
        .await;
    b.publish("qn-school", &signed(completed(SCHOOL, "done-x", "e-x"), 1))
        .await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        let receipt = next_receipt(&mut school).await;
        answers.push((
            receipt["id"].as_str().unwrap_or("").to_owned(),
            receipt["status"].as_str().unwrap_or("").to_owned(),
            receipt["reason"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let statuses: Vec<(&str, &str)> = answers
        .iter()
        .map(|(id, status, _)| (id.as_str(), status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("enr-x", "parked"),
            ("done-x", "parked"),
            ("enr-x", "rejected"),
            ("done-x", "rejected"),
        ],
        "{answers:?}"
    );
    assert!(answers[1].2.contains("behind"), "{answers:?}");
    // The one behind waited its own time for the place, as the first did.
    assert!(answers[3].2.contains("enrollment-e-x"), "{answers:?}");
    assert_eq!(b.quarantine("qn-school").await.len(), 2);
    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
    assert_eq!(b.published_facts(SCHOOL).await, 0);
}

#[tokio::test]
async fn the_fact_that_opens_the_stream_a_parked_fact_waits_for_is_not_held_behind_it() {
    let b = bodies(
        ingest_stream::DEFAULT_DUPLICATE_WINDOW,
        Duration::from_secs(3600),
    )
    .await;
    // One body publishes the enrolment before the nomination it needs.
    b.publish("dai-loc", &enrolled(SOURCE, "enr-o", "e-o"))
        .await;
    b.receipt_when(SOURCE, "enr-o", "parked").await;
    b.publish("dai-loc", &nominated("nom-o", "e-o")).await;
    let nomination = b.receipt_when(SOURCE, "nom-o", "accepted").await;
    let enrolment = b.receipt_when(SOURCE, "enr-o", "accepted").await;
    assert!(
        enrolment["position"].as_u64() > nomination["position"].as_u64(),
        "{nomination} {enrolment}"
    );
    let types: Vec<String> = place_stream(&b, "e-o")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(types, ["training.nominated.v1", "training.enrolled.v1"]);
    assert_eq!(b.ledger.store.parked_count().await.expect("count"), 0);
}
