//! Input refused at the door, before the store, against a real PostgreSQL:
//! duplicate member names, U+0000 in a string field, a nomination's funding
//! beyond its bounds; each answered with its code and field, recording
//! nothing. And funding sums that stay exact over facts recorded before the
//! bounds existed (recorded facts are never judged again).

use crate::support;

use serde_json::{json, Value};
use support::{nomination, official, spawn_app, Ledger};
use tledger_events::{AggregateKind, Fact, FactType};
use tledger_store::{Append, EventMetadata, NewEvent};
use uuid::Uuid;

fn error_of(answer: &Value) -> (&str, Option<&str>) {
    (
        answer["error"]["code"].as_str().unwrap_or("(none)"),
        answer["error"]["field"].as_str(),
    )
}

/// Sends `body` as written (serde_json would drop a duplicate member).
async fn send_text(ledger: &Ledger, name: &str, body: &str) -> (u16, Value) {
    ledger
        .send(name, body.as_bytes().to_vec(), Some(&ledger.admin), None)
        .await
}

/// `body` as JSON text with `member` (a `"name":value` pair) written again
/// first inside the object at the start of `after` (`{` for the document).
fn with_repeated(body: &Value, after: &str, member: &str) -> String {
    let text = body.to_string();
    let at = text.find(after).expect("the object is in the body") + after.len();
    format!("{}{member},{}", &text[..at], &text[at..])
}

#[tokio::test]
async fn a_duplicate_member_name_is_malformed_at_its_pointer_and_records_nothing() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let before = (ledger.events().await, ledger.projected().await);

    let twice = with_repeated(
        &official("o-2", "dai-loc-dai-an"),
        "{",
        r#""official_id":"o-3""#,
    );
    let (status, answer) = send_text(&ledger, "register_official", &twice).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(error_of(&answer), ("malformed", Some("/official_id")));

    let nested = with_repeated(
        &nomination("e-1", "2008-08-15"),
        r#""program":{"#,
        r#""title":"Another title""#,
    );
    let (status, answer) = send_text(&ledger, "nominate", &nested).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(error_of(&answer), ("malformed", Some("/program/title")));

    let in_a_line = with_repeated(
        &nomination("e-1", "2008-08-15"),
        r#""funding":[{"#,
        r#""amount_vnd":1"#,
    );
    let (status, answer) = send_text(&ledger, "nominate", &in_a_line).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        error_of(&answer),
        ("malformed", Some("/funding/0/amount_vnd"))
    );

    assert_eq!((ledger.events().await, ledger.projected().await), before);
    // Written once, the same facts are accepted.
    let (status, answer) = ledger
        .post("register_official", &official("o-2", "dai-loc-dai-an"))
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn nul_in_a_string_field_is_malformed_at_its_field_before_the_store() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    for (name, body) in [
        ("nominate", nomination("e-1", "2008-08-15")),
        (
            "enroll",
            json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
        ),
    ] {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
    let before = (ledger.events().await, ledger.projected().await);

    let mut titled = official("o-2", "dai-loc-dai-an");
    titled["position_title"] = json!("Chủ tịch\u{0}");
    let mut programme = nomination("e-2", "2008-08-15");
    programme["program"]["title"] = json!("Trung cấp\u{0}Hành chính");
    let failed = json!({"enrollment_id": "e-1", "reason": "\u{0}", "effective_date": "2009-01-01"});
    let mut in_an_id = official("o-2", "dai-loc-dai-an");
    in_an_id["official_id"] = json!("o-\u{0}");
    for (name, body, field) in [
        ("register_official", titled, "/position_title"),
        ("nominate", programme, "/program/title"),
        ("fail", failed, "/reason"),
        ("register_official", in_an_id, "/official_id"),
    ] {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert_eq!(error_of(&answer), ("malformed", Some(field)), "{name}");
    }
    assert_eq!((ledger.events().await, ledger.projected().await), before);
}

#[tokio::test]
async fn a_nomination_has_at_most_16_funding_lines_of_at_most_a_trillion_dong() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let before = (ledger.events().await, ledger.projected().await);
    let line = |amount: i64| json!({"source": "district", "amount_vnd": amount});

    let mut many = nomination("e-1", "2008-08-15");
    many["funding"] = Value::Array(vec![line(1); 17]);
    let (status, answer) = ledger.post("nominate", &many).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(error_of(&answer), ("invalid_value", Some("/funding")));

    let mut large = nomination("e-1", "2008-08-15");
    large["funding"] = json!([line(1), line(2), line(3), line(1_000_000_000_001)]);
    let (status, answer) = ledger.post("nominate", &large).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        error_of(&answer),
        ("invalid_value", Some("/funding/3/amount_vnd"))
    );
    assert_eq!((ledger.events().await, ledger.projected().await), before);

    let mut largest = nomination("e-1", "2008-08-15");
    largest["funding"] = Value::Array(vec![line(1_000_000_000_000); 16]);
    let (status, answer) = ledger.post("nominate", &largest).await;
    assert_eq!(status, 201, "{answer}");
}

/// Records a nomination as a fact recorded before the door's bounds would
/// be: straight through the store, as no command could now.
async fn record_unbounded_nomination(ledger: &Ledger, enrollment: &str, unit: &str, lines: usize) {
    let mut data = nomination(enrollment, "2009-01-05");
    data["nominating_unit_id"] = json!(unit);
    data["funding"] = Value::Array(vec![
        json!({"source": "district", "amount_vnd": (1i64 << 53) - 1});
        lines
    ]);
    let fact = Fact::from_data(FactType::TrainingNominated, &data).expect("a recorded fact");
    let append = Append {
        aggregate: AggregateKind::Enrollment,
        aggregate_id: enrollment.into(),
        expected_version: 0,
        events: vec![NewEvent {
            event_id: Uuid::now_v7(),
            fact,
            metadata: EventMetadata {
                publisher: "/commands/admin".into(),
                actor: "admin".into(),
                command_id: None,
                correlation_id: None,
                causation_id: None,
            },
        }],
        idempotency: None,
    };
    ledger.store.append(&append).await.expect("append");
    let (status, answer) = ledger
        .post(
            "enroll",
            &json!({"enrollment_id": enrollment, "effective_date": "2009-01-10"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn funding_sums_over_facts_recorded_before_the_bounds_are_exact() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    // 1,100 lines of 2^53 - 1 đồng: one place is past i64::MAX, two past
    // u64::MAX.
    record_unbounded_nomination(&ledger, "e-big-1", "dai-loc-dai-an", 1100).await;
    record_unbounded_nomination(&ledger, "e-big-2", "dien-ban", 1100).await;
    let (status, answer) = ledger
        .post("nominate", &nomination("e-3", "2009-01-05"))
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = ledger
        .post(
            "enroll",
            &json!({"enrollment_id": "e-3", "effective_date": "2009-01-10"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    ledger.projected().await;

    let place: u128 = 1100 * ((1u128 << 53) - 1);
    let both = 2 * place + 4_500_000;
    assert!(place > i64::MAX as u128 && both > u64::MAX as u128);
    for (unit, places, district) in [
        (
            "unit=dai-loc&",
            2,
            json!(u64::try_from(place + 4_500_000).expect("u64")),
        ),
        (
            "unit=dien-ban&",
            1,
            json!(u64::try_from(place).expect("u64")),
        ),
        ("unit=quang-nam&", 3, json!(both.to_string())),
        ("", 3, json!(both.to_string())),
    ] {
        let path = format!("/v1/reports/training-volume?{unit}from=2009-01-01&to=2009-12-31");
        let (status, body) = ledger.get(&path, Some(&ledger.admin), false).await;
        assert_eq!(status, 200, "{path}: {body}");
        let report: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(report["total"], places, "{path}");
        assert_eq!(report["funding_vnd"]["district"], district, "{path}");
        assert_eq!(report["funding_vnd"]["province"], 0, "{path}");
    }
}
