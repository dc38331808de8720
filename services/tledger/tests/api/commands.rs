//! Commands over HTTP against a real PostgreSQL: every command's answer, the
//! contract's error order, and that bad input records nothing.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{nomination, official, spawn_app};
use tledger::access::{Access, Role};
use tledger::commands::CommandService;
use tokio::sync::{broadcast, Notify};

fn error_code(answer: &Value) -> (&str, Option<&str>) {
    (
        answer["error"]["code"].as_str().unwrap_or("(none)"),
        answer["error"]["field"].as_str(),
    )
}

#[tokio::test]
async fn a_command_answers_with_its_events_and_their_ledger_positions() {
    let ledger = spawn_app().await;
    let before = ledger.events().await;
    assert_eq!(before, 3, "the three shipped reference facts");
    let (status, answer) = ledger
        .post("register_unit", &json!({"unit_id": "quang-nam", "name": "Quảng Nam", "level": "province", "effective_date": "1997-01-01"}))
        .await;
    assert_eq!(status, 201, "{answer}");
    let events = answer["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "unit.registered.v1");
    assert_eq!(events[0]["stream"], "unit-quang-nam");
    assert_eq!(events[0]["version"], 1);
    assert_eq!(events[0]["position"], 4);
    assert!(events[0]["id"].as_str().is_some_and(|id| id.len() == 36));
    let head: Value = ledger
        .http
        .get(format!("{}/v1/ledger/head", ledger.base))
        .send()
        .await
        .expect("head")
        .json()
        .await
        .expect("json");
    assert_eq!(head, json!({"position": 4, "published_position": null}));
}

#[tokio::test]
async fn every_command_of_a_training_place_is_recorded_in_order() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let steps = [
        ("nominate", nomination("e-1", "2008-08-15")),
        (
            "enroll",
            json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
        ),
        (
            "complete",
            json!({"enrollment_id": "e-1", "result": "good", "score": 7.5, "certificate": {"kind": "diploma", "number": "TC-0042"}, "effective_date": "2010-06-30"}),
        ),
    ];
    let mut positions = Vec::new();
    for (name, body) in steps {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name}: {answer}");
        assert_eq!(answer["events"][0]["stream"], "enrollment-e-1");
        positions.push(answer["events"][0]["position"].as_u64().expect("position"));
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    for (name, body) in [
        (
            "rate",
            json!({"official_id": "o-1", "year": 2010, "rating": "excellent", "effective_date": "2010-12-31"}),
        ),
        (
            "plan",
            json!({"official_id": "o-1", "target_position": "party_secretary", "period_from": 2010, "period_to": 2015, "effective_date": "2010-01-01"}),
        ),
        (
            "record_qualification",
            json!({"official_id": "o-1", "track": "political_theory", "level": "intermediate", "effective_date": "2009-06-30"}),
        ),
        (
            "assign_position",
            json!({"official_id": "o-1", "unit_id": "dai-loc-dai-an", "staff_category": "cadre", "position": "party_secretary", "effective_date": "2011-01-01"}),
        ),
        (
            "record_leaving",
            json!({"official_id": "o-1", "reason": "retired", "effective_date": "2015-01-01"}),
        ),
        (
            "reorganise_unit",
            json!({"unit_id": "dai-loc-dai-an", "name": "Xã Đại An", "effective_date": "2012-01-01"}),
        ),
    ] {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
}

#[tokio::test]
async fn the_qualification_policy_records_a_completed_degree_once_and_follows_its_retraction() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ledger
        .post("nominate", &nomination("e-1", "2008-08-15"))
        .await;
    ledger
        .post(
            "enroll",
            &json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
        )
        .await;
    let (_, completed) = ledger
        .post("complete", &json!({"enrollment_id": "e-1", "result": "good", "certificate": {"kind": "diploma", "number": "TC-0042"}, "effective_date": "2010-06-30"}))
        .await;
    // Run the policy over the ledger twice: the second run records nothing.
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    sqlx::query("DELETE FROM reader_checkpoints")
        .execute(ledger.store.pool())
        .await
        .expect("reset");
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    let qualifications: Vec<Value> = sqlx::query_scalar(
        "SELECT data FROM events WHERE event_type = 'official.qualification_recorded.v1'",
    )
    .fetch_all(ledger.store.pool())
    .await
    .expect("rows");
    assert_eq!(
        qualifications.len(),
        1,
        "recorded once, however often the policy runs"
    );
    assert_eq!(qualifications[0]["level"], "intermediate");
    assert_eq!(qualifications[0]["source_enrollment_id"], "e-1");
    assert_eq!(qualifications[0]["evidence"]["number"], "TC-0042");
    assert_eq!(qualifications[0]["effective_date"], "2010-06-30");

    let completion_id = completed["events"][0]["id"].as_str().expect("id");
    let (status, answer) = ledger
        .post("retract", &json!({"event_id": completion_id, "reason": "diploma not verified", "effective_date": "2010-07-15"}))
        .await;
    assert_eq!(status, 201, "{answer}");
    // The sequencer must have positioned the new events before the policy reads them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    let retracted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'official' AND event_type = 'fact.retracted.v1'",
    )
    .fetch_one(ledger.store.pool())
    .await
    .expect("count");
    assert_eq!(
        retracted, 1,
        "retracting the completion retracted its qualification"
    );
}

#[tokio::test]
async fn a_retried_command_gets_the_first_answer_and_records_nothing_twice() {
    let ledger = spawn_app().await;
    let body = json!({"unit_id": "quang-nam", "name": "Quảng Nam", "level": "province", "effective_date": "1997-01-01"});
    let first = ledger
        .send(
            "register_unit",
            body.to_string().into_bytes(),
            Some(&ledger.admin),
            Some("k-1"),
        )
        .await;
    let again = ledger
        .send(
            "register_unit",
            body.to_string().into_bytes(),
            Some(&ledger.admin),
            Some("k-1"),
        )
        .await;
    assert_eq!(first.0, 201);
    assert_eq!(first, again);
    assert_eq!(ledger.events().await, 4);
    // Also from a new service instance (a restart) on the same database.
    let fresh = CommandService::new(
        ledger.store.clone(),
        Access::new(ledger.store.clone()),
        "tl".parse().expect("prefix"),
        Arc::new(Notify::new()),
        broadcast::channel(16).0,
    );
    let replay = fresh
        .execute(tledger::commands::CommandRequest {
            name: "register_unit".into(),
            body: body.to_string().into(),
            bearer: Some(ledger.admin.clone()),
            idempotency_key: Some("k-1".into()),
            correlation_id: None,
        })
        .await;
    assert_eq!((replay.status, &replay.body), (201, &first.1));
    assert_eq!(ledger.events().await, 4);
}

/// Each bad input: the caller's status and error code, and nothing recorded.
#[tokio::test]
async fn bad_input_gets_a_clear_error_and_records_nothing() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ledger
        .post("nominate", &nomination("e-1", "2008-08-15"))
        .await;
    let (_, cancelled) = ledger
        .post("nominate", &nomination("e-2", "2008-08-15"))
        .await;
    assert!(cancelled["events"].is_array());
    ledger
        .post("cancel", &json!({"enrollment_id": "e-2", "reason": "course not opened", "effective_date": "2008-08-20"}))
        .await;
    ledger
        .post("register_official", &official("o-left", "dai-loc-dai-an"))
        .await;
    ledger
        .post("record_leaving", &json!({"official_id": "o-left", "reason": "transferred", "effective_date": "2009-03-31"}))
        .await;
    let (_, enrolled) = ledger
        .post("nominate", &nomination("e-3", "2008-08-15"))
        .await;
    assert!(enrolled["events"].is_array());
    ledger
        .post(
            "enroll",
            &json!({"enrollment_id": "e-3", "effective_date": "2008-09-01"}),
        )
        .await;
    let nomination_id = enrolled["events"][0]["id"].as_str().expect("id").to_owned();
    let before = ledger.events().await;

    let mut with_dot = official("o.1", "dai-loc-dai-an");
    with_dot["official_id"] = json!("o.1");
    let long_id = official(&"x".repeat(65), "dai-loc-dai-an");
    let mut bad_level = nomination("e-9", "2008-08-15");
    bad_level["program"]["level"] = json!("phd");
    let mut bad_amount = nomination("e-9", "2008-08-15");
    bad_amount["funding"][0]["amount_vnd"] = json!(-1);
    let mut unknown_position = official("o-9", "dai-loc-dai-an");
    unknown_position["position"] = json!("mayor");
    let mut wrong_category = official("o-9", "dai-loc-dai-an");
    wrong_category["position"] = json!("police_chief");
    let mut after_leaving = nomination("e-9", "2009-04-01");
    after_leaving["official_id"] = json!("o-left");
    let mut missing = nomination("e-9", "2008-08-15");
    missing
        .as_object_mut()
        .expect("object")
        .remove("official_id");
    let mut unknown_field = nomination("e-9", "2008-08-15");
    unknown_field["note"] = json!("x");
    let mut wrong_type = official("o-9", "dai-loc-dai-an");
    wrong_type["ethnic_minority"] = json!("no");
    let mut unknown_official = nomination("e-9", "2008-08-15");
    unknown_official["official_id"] = json!("nobody");
    // 404 comes before 422: an unknown official with a bad amount is 404.
    let mut unknown_and_invalid = unknown_official.clone();
    unknown_and_invalid["funding"][0]["amount_vnd"] = json!(-5);

    type Case<'a> = (&'a str, &'a str, Vec<u8>, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("malformed JSON", "nominate", b"{not json".to_vec(), 400, "malformed", None),
        ("missing field", "nominate", missing.to_string().into_bytes(), 400, "malformed", Some("/official_id")),
        ("unknown field", "nominate", unknown_field.to_string().into_bytes(), 400, "malformed", Some("/note")),
        ("wrong JSON type", "register_official", wrong_type.to_string().into_bytes(), 400, "malformed", Some("/ethnic_minority")),
        ("unknown command", "promote", b"{}".to_vec(), 404, "not_found", None),
        ("id with a dot", "register_official", with_dot.to_string().into_bytes(), 422, "invalid_value", Some("/official_id")),
        ("id of 65 characters", "register_official", long_id.to_string().into_bytes(), 422, "invalid_value", Some("/official_id")),
        ("unknown official", "nominate", unknown_official.to_string().into_bytes(), 404, "not_found", Some("/official_id")),
        ("404 before 422", "nominate", unknown_and_invalid.to_string().into_bytes(), 404, "not_found", Some("/official_id")),
        ("unknown level code", "nominate", bad_level.to_string().into_bytes(), 422, "invalid_value", Some("/program/level")),
        ("position not in the taxonomy", "register_official", unknown_position.to_string().into_bytes(), 422, "invalid_value", Some("/position")),
        ("category not matching the position", "register_official", wrong_category.to_string().into_bytes(), 422, "invalid_value", Some("/staff_category")),
        ("negative amount", "nominate", bad_amount.to_string().into_bytes(), 422, "invalid_value", Some("/funding/0/amount_vnd")),
        ("complete before enrol", "complete", json!({"enrollment_id": "e-1", "result": "pass", "effective_date": "2009-01-01"}).to_string().into_bytes(), 409, "conflict", None),
        ("enrol a cancelled place", "enroll", json!({"enrollment_id": "e-2", "effective_date": "2008-09-01"}).to_string().into_bytes(), 409, "conflict", None),
        ("nominate the day after leaving", "nominate", after_leaving.to_string().into_bytes(), 409, "conflict", Some("/effective_date")),
        ("register the same official twice", "register_official", official("o-1", "dai-loc-dai-an").to_string().into_bytes(), 409, "conflict", Some("/official_id")),
        ("a reorganisation that makes a cycle", "reorganise_unit", json!({"unit_id": "dai-loc", "parent_id": "dai-loc-dai-an", "effective_date": "2012-01-01"}).to_string().into_bytes(), 409, "conflict", Some("/parent_id")),
        ("retract a step that is not the last", "retract", json!({"event_id": nomination_id, "reason": "x", "effective_date": "2009-01-01"}).to_string().into_bytes(), 409, "conflict", Some("/event_id")),
        ("retract an unknown event", "retract", json!({"event_id": "00000000-0000-0000-0000-000000000000", "reason": "x", "effective_date": "2009-01-01"}).to_string().into_bytes(), 404, "not_found", Some("/event_id")),
    ];
    for (what, name, body, status, code, field) in cases {
        let (got_status, answer) = ledger.send(name, body, Some(&ledger.admin), None).await;
        assert_eq!(
            (got_status, error_code(&answer)),
            (status, (code, field)),
            "{what}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    assert_eq!(
        ledger.events().await,
        before,
        "no bad input recorded anything"
    );
}

#[tokio::test]
async fn access_is_checked_before_anything_else() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let body = nomination("e-1", "2008-08-15").to_string().into_bytes();
    let (status, answer) = ledger.send("nominate", body.clone(), None, None).await;
    assert_eq!(
        (status, error_code(&answer)),
        (401, ("unauthenticated", None))
    );
    let (status, answer) = ledger
        .send("nominate", body.clone(), Some("tl_wrong"), None)
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (401, ("unauthenticated", None))
    );
    // 401 before 400: a bad body without a token is still 401.
    let (status, _) = ledger.send("nominate", b"{".to_vec(), None, None).await;
    assert_eq!(status, 401);
    let inspector = ledger.token(Role::Inspector, None).await;
    let (status, answer) = ledger
        .send("nominate", body.clone(), Some(&inspector), None)
        .await;
    assert_eq!((status, error_code(&answer)), (403, ("forbidden", None)));
    // 403 (role) before 400.
    let (status, _) = ledger
        .send("nominate", b"{".to_vec(), Some(&inspector), None)
        .await;
    assert_eq!(status, 403);
    let publisher = ledger.token(Role::Publisher, None).await;
    let (status, _) = ledger
        .send("nominate", body.clone(), Some(&publisher), None)
        .await;
    assert_eq!(status, 403);
    // A unit officer of another district is out of scope; of this one, in.
    let other = ledger.token(Role::UnitOfficer, Some("dien-ban")).await;
    let (status, answer) = ledger
        .send("nominate", body.clone(), Some(&other), None)
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (403, ("forbidden", None)),
        "{answer}"
    );
    let officer = ledger.token(Role::UnitOfficer, Some("dai-loc")).await;
    let (status, answer) = ledger
        .send("publish_reference", b"{}".to_vec(), Some(&officer), None)
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (403, ("forbidden", None)),
        "reference data is admin only"
    );
    assert_eq!(ledger.events().await, before);
    let (status, answer) = ledger.send("nominate", body, Some(&officer), None).await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn a_reused_idempotency_key_with_another_body_is_a_conflict() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let (status, _) = ledger
        .send(
            "nominate",
            nomination("e-1", "2008-08-15").to_string().into_bytes(),
            Some(&ledger.admin),
            Some("same"),
        )
        .await;
    assert_eq!(status, 201);
    let before = ledger.events().await;
    let (status, answer) = ledger
        .send(
            "nominate",
            nomination("e-2", "2008-08-15").to_string().into_bytes(),
            Some(&ledger.admin),
            Some("same"),
        )
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (409, ("conflict", None)),
        "{answer}"
    );
    assert_eq!(ledger.events().await, before);
}

#[tokio::test]
async fn of_two_concurrent_nominations_with_one_id_exactly_one_wins() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let mut tasks = Vec::new();
    for day in ["2008-08-15", "2008-08-16"] {
        let body = nomination("e-1", day).to_string().into_bytes();
        let http = ledger.http.clone();
        let url = format!("{}/v1/commands/nominate", ledger.base);
        let token = ledger.admin.clone();
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .body(body)
                .send()
                .await
                .expect("HTTP");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("join").0);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409]);
    assert_eq!(ledger.events().await, before + 1);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_too_large() {
    let ledger = spawn_app().await;
    let before = ledger.events().await;
    let mut body = nomination("e-1", "2008-08-15");
    body["decision_no"] = json!("x".repeat(1 << 20));
    let (status, answer) = ledger
        .send(
            "nominate",
            body.to_string().into_bytes(),
            Some(&ledger.admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&answer)), (413, ("too_large", None)));
    assert_eq!(ledger.events().await, before);
}
