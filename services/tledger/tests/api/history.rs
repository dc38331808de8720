//! Audit trails and access records over HTTP, against a real PostgreSQL:
//! a person's and a training place's history field by field against the
//! events table, filters, CSV, the contract's errors in its order, roles and
//! unit scope; reads recorded in the access log and listed to inspectors;
//! corrections (a completion, a rating, an assignment, a late leaving
//! retracted and replaced) as known before and after the retraction; and
//! `tledger history` printing the same rows.

use crate::support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::Row;
use support::{nomination, official, spawn_app, Ledger};
use tledger::access::Role;
use tledger_events::chain::format_instant;

/// Runs the qualification policy over everything sequenced, then waits
/// until its facts are sequenced and projected; returns the head.
async fn settle(ledger: &Ledger) -> u64 {
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    ledger.projected().await
}

async fn ok(ledger: &Ledger, name: &str, body: Value) -> Value {
    let (status, answer) = ledger.post(name, &body).await;
    assert_eq!(status, 201, "{name}: {answer}");
    answer
}

fn event_id(answer: &Value) -> String {
    answer["events"][0]["id"].as_str().expect("id").to_owned()
}

fn position(answer: &Value) -> u64 {
    answer["events"][0]["position"].as_u64().expect("position")
}

async fn read(ledger: &Ledger, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, body) = ledger.get(path, token, false).await;
    let body = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
    (status, body)
}

async fn history(ledger: &Ledger, path: &str) -> Value {
    let (status, body) = read(ledger, path, Some(&ledger.admin)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn types(trail: &Value) -> Vec<&str> {
    trail["facts"]
        .as_array()
        .expect("facts")
        .iter()
        .map(|f| f["type"].as_str().expect("type"))
        .collect()
}

fn person(id: &str, unit: &str, category: &str, post: &str) -> Value {
    let mut body = official(id, unit);
    body["staff_category"] = json!(category);
    body["position"] = json!(post);
    body
}

/// A college programme in public administration, nominated by Đại An.
fn college(enrollment: &str, official_id: &str, on: &str) -> Value {
    let mut body = nomination(enrollment, on);
    body["official_id"] = json!(official_id);
    body["program"]["level"] = json!("college");
    body
}

fn figure(count: u64, of: u64, rate: Option<f64>) -> Value {
    json!({"count": count, "of": of, "rate": rate})
}

async fn standards(ledger: &Ledger, query: &str) -> Value {
    let path = format!("/v1/reports/standards?{query}");
    let (status, body) = read(ledger, &path, Some(&ledger.admin)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Sends a command with an `X-Correlation-Id`.
async fn correlated(ledger: &Ledger, name: &str, body: &Value, correlation: &str) -> Value {
    let response = ledger
        .http
        .post(format!("{}/v1/commands/{name}", ledger.base))
        .header("authorization", format!("Bearer {}", ledger.admin))
        .header("x-correlation-id", correlation)
        .json(body)
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.expect("JSON")
}

/// The official's stream as the events table holds it, as the trail should
/// show it (without `retracted_by`).
async fn table_rows(ledger: &Ledger, aggregate: &str, id: &str) -> Vec<Value> {
    let rows = sqlx::query(
        "SELECT position, event_id, event_type, effective_date::text AS effective_date, \
                recorded_at, publisher, actor, command_id, correlation_id, \
                encode(hash, 'hex') AS hash, data \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY position",
    )
    .bind(aggregate)
    .bind(id)
    .fetch_all(ledger.store.pool())
    .await
    .expect("rows");
    rows.iter()
        .map(|row| {
            json!({
                "position": row.get::<i64, _>("position"),
                "event_id": row.get::<uuid::Uuid, _>("event_id"),
                "type": row.get::<String, _>("event_type"),
                "effective_date": row.get::<String, _>("effective_date"),
                "recorded_at": format_instant(row.get::<DateTime<Utc>, _>("recorded_at")),
                "publisher": row.get::<String, _>("publisher"),
                "actor": row.get::<String, _>("actor"),
                "command_id": row.get::<Option<String>, _>("command_id"),
                "correlation_id": row.get::<Option<String>, _>("correlation_id"),
                "hash": row.get::<String, _>("hash"),
                "data": row.get::<Value, _>("data"),
            })
        })
        .collect()
}

fn without_retraction(fact: &Value) -> Value {
    let mut fact = fact.clone();
    if let Some(object) = fact.as_object_mut() {
        object.remove("retracted_by");
    }
    fact
}

#[tokio::test]
async fn an_officials_trail_is_every_fact_of_its_stream_as_the_events_table_holds_it() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let schooling = correlated(
        &ledger,
        "record_qualification",
        &json!({"official_id": "o-1", "track": "general_education", "level": "upper_secondary", "effective_date": "1990-06-01"}),
        "inspection-42",
    )
    .await;
    let rated = ok(
        &ledger,
        "rate",
        json!({"official_id": "o-1", "year": 2009, "rating": "good", "effective_date": "2009-12-31"}),
    )
    .await;
    ok(&ledger, "nominate", college("e-1", "o-1", "2008-08-15")).await;
    ok(
        &ledger,
        "enroll",
        json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
    )
    .await;
    let completed = ok(
        &ledger,
        "complete",
        json!({"enrollment_id": "e-1", "result": "good", "certificate": {"kind": "diploma", "number": "CD-1"}, "effective_date": "2010-06-30"}),
    )
    .await;
    settle(&ledger).await;
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&rated), "reason": "the rating was for 2010", "effective_date": "2011-01-10"}),
    )
    .await;
    settle(&ledger).await;

    let trail = history(&ledger, "/v1/officials/o-1/history").await;
    assert_eq!(trail["official_id"], "o-1");
    assert_eq!(trail["stream"], "official-o-1");
    assert_eq!(
        types(&trail),
        vec![
            "official.registered.v1",
            "official.qualification_recorded.v1",
            "official.rated.v1",
            "official.qualification_recorded.v1",
            "fact.retracted.v1",
        ]
    );
    let facts = trail["facts"].as_array().expect("facts");
    let rows = table_rows(&ledger, "official", "o-1").await;
    assert_eq!(facts.len(), rows.len(), "every fact of the stream");
    for (fact, row) in facts.iter().zip(&rows) {
        assert_eq!(
            &without_retraction(fact),
            row,
            "as the events table holds it"
        );
        assert_eq!(fact["hash"].as_str().map(str::len), Some(64));
    }
    assert!(
        facts
            .windows(2)
            .all(|w| w[0]["position"].as_u64() < w[1]["position"].as_u64()),
        "ledger order"
    );
    assert_eq!(facts[1]["position"], json!(position(&schooling)));
    assert_eq!(facts[1]["event_id"], json!(event_id(&schooling)));
    assert_eq!(facts[1]["publisher"], "/commands/admin");
    assert_eq!(facts[1]["actor"], "admin");
    assert_eq!(facts[1]["correlation_id"], "inspection-42");
    assert!(facts[1]["command_id"].is_string());
    assert_eq!(facts[0]["correlation_id"], Value::Null);
    // What the qualification policy recorded lives in the person's stream.
    let policy = &facts[3];
    assert_eq!(policy["publisher"], "/tledger/policy");
    assert_eq!(policy["actor"], "qualification-policy");
    assert_eq!(
        policy["command_id"],
        json!(format!(
            "qualification-for-completion-{}",
            event_id(&completed)
        ))
    );
    assert_eq!(policy["effective_date"], "2010-06-30");
    assert_eq!(
        policy["data"],
        json!({"official_id": "o-1", "track": "professional", "level": "college",
               "specialty": "public_admin", "source_enrollment_id": "e-1",
               "evidence": {"kind": "diploma", "number": "CD-1", "issued_by": "Trường Chính trị Quảng Nam"},
               "effective_date": "2010-06-30"})
    );
    assert_eq!(
        facts[2]["retracted_by"],
        json!({
            "event_id": event_id(&retraction),
            "position": position(&retraction),
            "actor": "admin",
            "recorded_at": facts[4]["recorded_at"],
            "reason": "the rating was for 2010",
        })
    );
    assert_eq!(facts[4]["data"]["event_id"], json!(event_id(&rated)));
    let retracted: Vec<usize> = facts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.get("retracted_by").is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        retracted,
        vec![2],
        "retracted_by only on the retracted fact"
    );

    let place = history(&ledger, "/v1/enrollments/e-1/history").await;
    assert_eq!(place["enrollment_id"], "e-1");
    assert_eq!(place["stream"], "enrollment-e-1");
    assert_eq!(
        types(&place),
        vec![
            "training.nominated.v1",
            "training.enrolled.v1",
            "training.completed.v1"
        ]
    );
    let rows = table_rows(&ledger, "enrollment", "e-1").await;
    let facts: Vec<Value> = place["facts"]
        .as_array()
        .expect("facts")
        .iter()
        .map(without_retraction)
        .collect();
    assert_eq!(facts, rows);
    assert_eq!(place["facts"][2]["position"], json!(position(&completed)));
}

#[tokio::test]
async fn trail_filters_choose_rows_by_effective_date_and_type_and_csv_has_one_row_per_fact() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let mut rated = Vec::new();
    for year in [2008, 2009, 2010] {
        rated.push(
            ok(
                &ledger,
                "rate",
                json!({"official_id": "o-1", "year": year, "rating": "good", "effective_date": format!("{year}-12-31")}),
            )
            .await,
        );
    }
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&rated[1]), "reason": "not rated, in \"leave\", that year", "effective_date": "2010-02-01"}),
    )
    .await;
    ok(
        &ledger,
        "record_leaving",
        json!({"official_id": "o-1", "reason": "transferred", "effective_date": "2012-03-01"}),
    )
    .await;
    settle(&ledger).await;

    let dated = history(
        &ledger,
        "/v1/officials/o-1/history?from=2009-01-01&to=2010-12-31",
    )
    .await;
    assert_eq!(
        types(&dated),
        vec![
            "official.rated.v1",
            "official.rated.v1",
            "fact.retracted.v1"
        ],
        "effective 2009-12-31, 2010-12-31 and 2010-02-01, in ledger order"
    );
    let ratings = history(&ledger, "/v1/officials/o-1/history?type=official.rated.v1").await;
    assert_eq!(types(&ratings).len(), 3);
    assert_eq!(
        ratings["facts"][1]["retracted_by"]["event_id"],
        json!(event_id(&retraction)),
        "a retracted fact says so even when its retraction is filtered out"
    );
    let repeated = history(
        &ledger,
        "/v1/officials/o-1/history?type=official.left.v1&type=official.registered.v1",
    )
    .await;
    assert_eq!(
        types(&repeated),
        vec!["official.registered.v1", "official.left.v1"]
    );
    let commas = history(
        &ledger,
        "/v1/officials/o-1/history?type=official.left.v1,official.registered.v1&from=2006-01-01",
    )
    .await;
    assert_eq!(types(&commas), vec!["official.left.v1"]);
    let none = history(&ledger, "/v1/officials/o-1/history?from=2030-01-01").await;
    assert_eq!(none["facts"], json!([]));

    let full = history(&ledger, "/v1/officials/o-1/history").await;
    let (status, csv) = ledger
        .get(
            "/v1/officials/o-1/history?type=official.rated.v1,fact.retracted.v1",
            Some(&ledger.admin),
            true,
        )
        .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "position,event_id,type,effective_date,recorded_at,publisher,actor,command_id,\
         correlation_id,hash,retracted_by_event_id,retracted_by_position,retracted_by_actor,\
         retracted_by_recorded_at,retracted_by_reason,data"
    );
    assert_eq!(lines.len(), 5, "a header and four facts: {csv}");
    let retracted = &full["facts"][2];
    let data = retracted["data"].to_string().replace('"', "\"\"");
    assert_eq!(
        lines[2],
        format!(
            "{},{},official.rated.v1,2009-12-31,{},/commands/admin,admin,{},,{},{},{},admin,{},\
             \"not rated, in \"\"leave\"\", that year\",\"{data}\"",
            retracted["position"],
            retracted["event_id"].as_str().expect("id"),
            retracted["recorded_at"].as_str().expect("time"),
            retracted["command_id"].as_str().expect("command id"),
            retracted["hash"].as_str().expect("hash"),
            event_id(&retraction),
            position(&retraction),
            retracted["retracted_by"]["recorded_at"]
                .as_str()
                .expect("time"),
        )
    );
    assert!(
        lines[1].contains(",,,,,,\"{"),
        "no retraction: five empty columns: {}",
        lines[1]
    );
}

/// A request (path, token) and the answer expected (status, code, field).
type Case<'a> = (&'a str, Option<&'a str>, u16, &'a str, Option<&'a str>);

#[tokio::test]
async fn bad_trail_requests_get_the_contracts_errors_in_its_order() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ok(
        &ledger,
        "register_unit",
        json!({"unit_id": "dien-ban-x", "name": "Điện Xá", "level": "commune", "parent_id": "dien-ban", "effective_date": "1997-01-01"}),
    )
    .await;
    ok(&ledger, "register_official", official("o-9", "dien-ban-x")).await;
    ledger.projected().await;
    let outsider = ledger.token(Role::UnitOfficer, Some("dai-loc")).await;
    let publisher = ledger.token(Role::Publisher, None).await;
    let admin = ledger.admin.clone();
    let cases: Vec<Case> = vec![
        (
            "/v1/officials/nobody/history",
            Some(&admin),
            404,
            "not_found",
            Some("/official_id"),
        ),
        (
            "/v1/enrollments/nothing/history",
            Some(&admin),
            404,
            "not_found",
            Some("/enrollment_id"),
        ),
        (
            "/v1/officials/bad.id/history",
            Some(&admin),
            404,
            "not_found",
            Some("/official_id"),
        ),
        (
            "/v1/officials/o-1/history?from=2011-13-45",
            Some(&admin),
            400,
            "malformed",
            Some("/from"),
        ),
        (
            "/v1/officials/o-1/history?to=31/12/2011",
            Some(&admin),
            400,
            "malformed",
            Some("/to"),
        ),
        (
            "/v1/officials/o-1/history?from=2001-01-01&from=2002-01-01",
            Some(&admin),
            400,
            "malformed",
            Some("/from"),
        ),
        (
            "/v1/officials/o-1/history?colour=red",
            Some(&admin),
            400,
            "malformed",
            Some("/colour"),
        ),
        (
            "/v1/officials/o-1/history?from=2012-01-01&to=2011-12-31",
            Some(&admin),
            422,
            "invalid_value",
            Some("/from"),
        ),
        (
            "/v1/officials/o-1/history?type=official.rated",
            Some(&admin),
            422,
            "invalid_value",
            Some("/type"),
        ),
        // The order: 401; 403 (role); 400; 404; 403 (scope); 422.
        (
            "/v1/officials/nobody/history?from=x",
            None,
            401,
            "unauthenticated",
            None,
        ),
        (
            "/v1/officials/nobody/history?from=x",
            Some(&publisher),
            403,
            "forbidden",
            None,
        ),
        (
            "/v1/officials/nobody/history?from=x",
            Some(&admin),
            400,
            "malformed",
            Some("/from"),
        ),
        (
            "/v1/officials/nobody/history?from=2012-01-01&to=2011-01-01",
            Some(&admin),
            404,
            "not_found",
            Some("/official_id"),
        ),
        (
            "/v1/officials/nobody/history",
            Some(&outsider),
            404,
            "not_found",
            Some("/official_id"),
        ),
        (
            "/v1/officials/o-9/history?from=x",
            Some(&outsider),
            400,
            "malformed",
            Some("/from"),
        ),
        (
            "/v1/officials/o-9/history?type=nonsense",
            Some(&outsider),
            403,
            "forbidden",
            None,
        ),
        (
            "/v1/officials/o-1/history?type=nonsense",
            Some(&outsider),
            422,
            "invalid_value",
            Some("/type"),
        ),
    ];
    for (path, token, status, expected, field) in cases {
        let (got, body) = read(&ledger, path, token).await;
        assert_eq!(
            (got, code(&body), body["error"]["field"].as_str()),
            (status, expected, field),
            "{path}: {body}"
        );
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let (status, csv_refusal) = ledger
        .get("/v1/officials/nobody/history", Some(&admin), true)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&csv_refusal).expect("JSON")["error"]["code"],
        "not_found",
        "errors are the contract's JSON even when CSV was asked for"
    );
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM access_log")
        .fetch_one(ledger.store.pool())
        .await
        .expect("count");
    assert_eq!(
        logged, 0,
        "a refused read shows nothing and records nothing"
    );
}

#[tokio::test]
async fn trails_are_read_by_role_and_by_the_persons_units_at_any_time() {
    let ledger = spawn_app().await;
    ledger.seed().await; // quang-nam > dai-loc > dai-loc-dai-an (o-1); quang-nam > dien-ban
    for (name, body) in [
        (
            "register_unit",
            json!({"unit_id": "dien-ban-x", "name": "Điện Xá", "level": "commune", "parent_id": "dien-ban", "effective_date": "1997-01-01"}),
        ),
        ("register_official", official("o-9", "dien-ban-x")),
        ("register_official", official("o-4", "dai-loc-dai-an")),
        ("nominate", college("e-1", "o-1", "2008-08-15")),
        // o-1 moves to Điện Bàn in 2012.
        (
            "assign_position",
            json!({"official_id": "o-1", "unit_id": "dien-ban", "staff_category": "cadre", "position": "committee_chair", "effective_date": "2012-01-01"}),
        ),
    ] {
        ok(&ledger, name, body).await;
    }
    // o-4 is put in Điện Bàn by mistake, and the mistake is retracted.
    let mistake = ok(
        &ledger,
        "assign_position",
        json!({"official_id": "o-4", "unit_id": "dien-ban", "staff_category": "cadre", "position": "committee_chair", "effective_date": "2010-01-01"}),
    )
    .await;
    ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&mistake), "reason": "another person's decision", "effective_date": "2010-02-01"}),
    )
    .await;
    ledger.projected().await;

    let inspector = ledger.token(Role::Inspector, None).await;
    let publisher = ledger.token(Role::Publisher, None).await;
    let province = ledger.token(Role::UnitOfficer, Some("quang-nam")).await;
    let district = ledger.token(Role::UnitOfficer, Some("dai-loc")).await;
    let commune = ledger
        .token(Role::UnitOfficer, Some("dai-loc-dai-an"))
        .await;
    let dien_ban = ledger.token(Role::UnitOfficer, Some("dien-ban")).await;
    let status = |path: &'static str, token: Option<String>| {
        let ledger = &ledger;
        async move { read(ledger, path, token.as_deref()).await.0 }
    };
    let o1 = "/v1/officials/o-1/history";
    assert_eq!(status(o1, None).await, 401);
    assert_eq!(status(o1, Some(publisher.clone())).await, 403);
    assert_eq!(status(o1, Some(ledger.admin.clone())).await, 200);
    assert_eq!(status(o1, Some(inspector.clone())).await, 200);
    assert_eq!(status(o1, Some(province.clone())).await, 200);
    assert_eq!(
        status(o1, Some(district.clone())).await,
        200,
        "Đại Lộc's until 2012"
    );
    assert_eq!(status(o1, Some(commune.clone())).await, 200);
    assert_eq!(
        status(o1, Some(dien_ban.clone())).await,
        200,
        "Điện Bàn's since 2012"
    );

    let o9 = "/v1/officials/o-9/history";
    assert_eq!(status(o9, Some(district.clone())).await, 403);
    assert_eq!(status(o9, Some(dien_ban.clone())).await, 200);
    assert_eq!(status(o9, Some(inspector.clone())).await, 200);

    let e1 = "/v1/enrollments/e-1/history";
    assert_eq!(status(e1, Some(commune.clone())).await, 200);
    assert_eq!(status(e1, Some(district.clone())).await, 200);
    assert_eq!(
        status(e1, Some(dien_ban.clone())).await,
        403,
        "nominated by Đại An: the person's later unit does not open the place"
    );
    assert_eq!(status(e1, Some(publisher.clone())).await, 403);

    let o4 = "/v1/officials/o-4/history";
    assert_eq!(
        status(o4, Some(dien_ban.clone())).await,
        403,
        "a retracted assignment was never the person's unit"
    );
    assert_eq!(status(o4, Some(district.clone())).await, 200);
    let (_, body) = read(&ledger, o4, Some(&dien_ban)).await;
    assert_eq!(code(&body), "forbidden");

    // Điện Xá moves to Đại Lộc in 2015: o-9 was then in Đại Lộc's subtree.
    ok(
        &ledger,
        "reorganise_unit",
        json!({"unit_id": "dien-ban-x", "parent_id": "dai-loc", "effective_date": "2015-01-01"}),
    )
    .await;
    assert_eq!(status(o9, Some(district.clone())).await, 200);
    assert_eq!(status(o9, Some(dien_ban.clone())).await, 200, "and before");
}

/// The token id of a secret.
async fn token_id(ledger: &Ledger, secret: &str) -> String {
    ledger
        .commands
        .access()
        .authenticate(Some(secret))
        .await
        .expect("token")
        .token_id
        .to_string()
}

#[tokio::test]
async fn trail_and_unit_report_reads_are_recorded_and_listed_to_admins_and_inspectors_only() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ok(&ledger, "nominate", college("e-1", "o-1", "2008-08-15")).await;
    ledger.projected().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    let officer = ledger.token(Role::UnitOfficer, Some("dai-loc")).await;
    let outsider = ledger.token(Role::UnitOfficer, Some("dien-ban")).await;
    let publisher = ledger.token(Role::Publisher, None).await;
    let started = Utc::now();

    let reads = [
        (
            "/v1/officials/o-1/history?type=official.registered.v1",
            &inspector,
            200,
        ),
        ("/v1/enrollments/e-1/history", &ledger.admin, 200),
        (
            "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
            &officer,
            200,
        ),
        // Not recorded: the whole country, and refused reads.
        ("/v1/reports/standards?as_of=2011-12-31", &ledger.admin, 200),
        ("/v1/officials/o-1/history", &outsider, 403),
        (
            "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
            &outsider,
            403,
        ),
        ("/v1/officials/nobody/history", &inspector, 404),
    ];
    for (path, token, expected) in reads {
        assert_eq!(read(&ledger, path, Some(token)).await.0, expected, "{path}");
    }
    // A CSV read is a read too.
    let (status, _) = ledger
        .get("/v1/officials/o-1/history", Some(&officer), true)
        .await;
    assert_eq!(status, 200);
    let finished = Utc::now();

    let (status, log) = read(&ledger, "/v1/access-log", Some(&inspector)).await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().expect("items");
    let what: Vec<Value> = items
        .iter()
        .map(|i| {
            json!([
                i["token_id"],
                i["token_name"],
                i["role"],
                i["path"],
                i["official_id"],
                i["enrollment_id"],
                i["unit_id"]
            ])
        })
        .collect();
    assert_eq!(
        what,
        vec![
            json!([
                token_id(&ledger, &inspector).await,
                "inspector-token",
                "inspector",
                "/v1/officials/o-1/history?type=official.registered.v1",
                "o-1",
                null,
                null
            ]),
            json!([
                token_id(&ledger, &ledger.admin).await,
                "admin",
                "admin",
                "/v1/enrollments/e-1/history",
                "o-1",
                "e-1",
                null
            ]),
            json!([
                token_id(&ledger, &officer).await,
                "unit_officer-token",
                "unit_officer",
                "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
                null,
                null,
                "dai-loc"
            ]),
            json!([
                token_id(&ledger, &officer).await,
                "unit_officer-token",
                "unit_officer",
                "/v1/officials/o-1/history",
                "o-1",
                null,
                null
            ]),
        ]
    );
    let times: Vec<DateTime<Utc>> = items
        .iter()
        .map(|i| {
            DateTime::parse_from_rfc3339(i["read_at"].as_str().expect("read_at"))
                .expect("RFC 3339")
                .with_timezone(&Utc)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert!(times.iter().all(|t| *t >= started && *t <= finished));
    let ids: Vec<u64> = items
        .iter()
        .map(|i| i["id"].as_u64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(log["next"], Value::Null);

    assert_eq!(
        read(&ledger, "/v1/access-log", Some(&ledger.admin)).await.0,
        200
    );
    for (token, expected, expected_code) in [
        (Some(officer.as_str()), 403, "forbidden"),
        (Some(publisher.as_str()), 403, "forbidden"),
        (None, 401, "unauthenticated"),
    ] {
        let (status, body) = read(&ledger, "/v1/access-log", token).await;
        assert_eq!((status, code(&body)), (expected, expected_code));
    }

    // Paging: `next` is the `after` of the next page; `since` is inclusive.
    let (_, first) = read(&ledger, "/v1/access-log?limit=3", Some(&inspector)).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["next"], json!(ids[2]));
    let (_, second) = read(
        &ledger,
        &format!("/v1/access-log?limit=3&after={}", ids[2]),
        Some(&inspector),
    )
    .await;
    assert_eq!(second["items"][0]["id"], json!(ids[3]));
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["next"], Value::Null);
    let since = items[2]["read_at"].as_str().expect("read_at");
    let (status, recent) = read(
        &ledger,
        &format!("/v1/access-log?since={since}"),
        Some(&inspector),
    )
    .await;
    assert_eq!(status, 200, "{recent}");
    let recent_ids: Vec<u64> = recent["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(recent_ids, ids[2..].to_vec());
    let (_, later) = read(
        &ledger,
        "/v1/access-log?since=2999-01-01T00:00:00%2B07:00",
        Some(&inspector),
    )
    .await;
    assert_eq!(later["items"], json!([]));
    for (path, expected, expected_code) in [
        ("/v1/access-log?since=yesterday", 400, "malformed"),
        ("/v1/access-log?after=-3", 400, "malformed"),
        ("/v1/access-log?who=me", 400, "malformed"),
        ("/v1/access-log?limit=0", 422, "invalid_value"),
        ("/v1/access-log?limit=5000", 422, "invalid_value"),
    ] {
        let (status, body) = read(&ledger, path, Some(&inspector)).await;
        assert_eq!((status, code(&body)), (expected, expected_code), "{path}");
    }
}

#[tokio::test]
async fn a_read_whose_access_record_cannot_be_written_is_refused() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ledger.projected().await;
    let pool = ledger.store.pool();
    sqlx::raw_sql("ALTER TABLE access_log RENAME TO access_log_elsewhere")
        .execute(pool)
        .await
        .expect("rename");
    let (status, body) = read(&ledger, "/v1/officials/o-1/history", Some(&ledger.admin)).await;
    assert_eq!((status, code(&body)), (503, "not_ready"), "{body}");
    assert!(body.get("facts").is_none(), "nothing of the trail leaks");
    let (status, body) = read(
        &ledger,
        "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
        Some(&ledger.admin),
    )
    .await;
    assert_eq!((status, code(&body)), (503, "not_ready"), "{body}");
    assert!(body.get("population").is_none());
    assert_eq!(
        read(
            &ledger,
            "/v1/reports/standards?as_of=2011-12-31",
            Some(&ledger.admin)
        )
        .await
        .0,
        200,
        "a report for the whole country needs no record"
    );
    sqlx::raw_sql("ALTER TABLE access_log_elsewhere RENAME TO access_log")
        .execute(pool)
        .await
        .expect("rename back");
    assert_eq!(
        read(&ledger, "/v1/officials/o-1/history", Some(&ledger.admin))
            .await
            .0,
        200
    );
    let (_, log) = read(&ledger, "/v1/access-log", Some(&ledger.admin)).await;
    assert_eq!(
        log["items"].as_array().map(Vec::len),
        Some(1),
        "only the read that was answered: {log}"
    );
}

/// The trail's fact with this event id.
fn fact<'a>(trail: &'a Value, event_id: &str) -> &'a Value {
    trail["facts"]
        .as_array()
        .expect("facts")
        .iter()
        .find(|f| f["event_id"] == event_id)
        .unwrap_or_else(|| panic!("no fact {event_id} in {trail}"))
}

#[tokio::test]
async fn a_retracted_completion_takes_its_qualification_with_it_from_the_retraction_on() {
    let ledger = spawn_app().await;
    ledger.seed().await; // o-1: committee chair (a key leader) in Đại An
    ok(&ledger, "nominate", college("e-1", "o-1", "2008-08-15")).await;
    ok(
        &ledger,
        "enroll",
        json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
    )
    .await;
    let completed = ok(
        &ledger,
        "complete",
        json!({"enrollment_id": "e-1", "result": "good", "certificate": {"kind": "diploma", "number": "CD-1"}, "effective_date": "2010-06-30"}),
    )
    .await;
    let known = settle(&ledger).await;
    let query = "unit=dai-loc&as_of=2011-12-31";
    let before = standards(&ledger, query).await;
    assert_eq!(before["professional_college_plus"], figure(1, 1, Some(1.0)));
    assert_eq!(before["key_leaders_college_plus"], figure(1, 1, Some(1.0)));

    let reason = "diploma CD-1 was issued to another person";
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&completed), "reason": reason, "effective_date": "2011-03-01"}),
    )
    .await;
    let retracted = settle(&ledger).await;
    let after = standards(&ledger, query).await;
    assert_eq!(after["position"], json!(retracted));
    assert_eq!(after["professional_college_plus"], figure(0, 1, Some(0.0)));
    assert_eq!(after["key_leaders_college_plus"], figure(0, 1, Some(0.0)));
    let then = standards(&ledger, &format!("{query}&at_position={known}")).await;
    assert_eq!(then["position"], json!(known));
    assert_eq!(
        then["professional_college_plus"],
        figure(1, 1, Some(1.0)),
        "as known before the retraction"
    );

    // The correct completion, recorded anew: its qualification comes back.
    let corrected = ok(
        &ledger,
        "complete",
        json!({"enrollment_id": "e-1", "result": "pass", "certificate": {"kind": "diploma", "number": "CD-7"}, "effective_date": "2010-07-20"}),
    )
    .await;
    settle(&ledger).await;
    assert_eq!(
        standards(&ledger, query).await["professional_college_plus"],
        figure(1, 1, Some(1.0))
    );
    assert_eq!(
        standards(&ledger, &format!("{query}&at_position={retracted}")).await
            ["professional_college_plus"],
        figure(0, 1, Some(0.0))
    );

    let place = history(&ledger, "/v1/enrollments/e-1/history").await;
    assert_eq!(
        types(&place),
        vec![
            "training.nominated.v1",
            "training.enrolled.v1",
            "training.completed.v1",
            "fact.retracted.v1",
            "training.completed.v1",
        ]
    );
    let first = fact(&place, &event_id(&completed));
    let retraction_fact = fact(&place, &event_id(&retraction));
    assert_eq!(
        first["retracted_by"],
        json!({"event_id": event_id(&retraction), "position": position(&retraction),
               "actor": "admin", "recorded_at": retraction_fact["recorded_at"], "reason": reason})
    );
    assert_eq!(first["data"]["certificate"]["number"], "CD-1");
    let second = fact(&place, &event_id(&corrected));
    assert!(second.get("retracted_by").is_none());
    assert_eq!(second["data"]["certificate"]["number"], "CD-7");

    // In the person's trail: the policy's qualification, its retraction by
    // the policy, and the qualification of the corrected completion.
    let person = history(&ledger, "/v1/officials/o-1/history").await;
    assert_eq!(
        types(&person),
        vec![
            "official.registered.v1",
            "official.qualification_recorded.v1",
            "fact.retracted.v1",
            "official.qualification_recorded.v1",
        ]
    );
    let facts = person["facts"].as_array().expect("facts");
    assert_eq!(facts[1]["data"]["evidence"]["number"], "CD-1");
    assert_eq!(
        facts[1]["retracted_by"],
        json!({"event_id": facts[2]["event_id"], "position": facts[2]["position"],
               "actor": "qualification-policy", "recorded_at": facts[2]["recorded_at"],
               "reason": format!("the completion of enrollment e-1 was retracted: {reason}")})
    );
    assert_eq!(facts[2]["publisher"], "/tledger/policy");
    assert_eq!(facts[2]["effective_date"], "2011-03-01");
    assert_eq!(facts[3]["data"]["evidence"]["number"], "CD-7");
    assert_eq!(facts[3]["effective_date"], "2010-07-20");
    assert!(facts[3].get("retracted_by").is_none());
}

/// The rating of `year` as the read models know it at `cut` (no report
/// shows ratings: this is the rule every report applies, ADR 7).
async fn rating_at(ledger: &Ledger, year: i32, cut: u64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT r.rating FROM rm.ratings r \
         WHERE r.official_id = 'o-1' AND r.year = $1 AND r.position <= $2 \
           AND NOT EXISTS (SELECT 1 FROM rm.retractions x \
                           WHERE x.event_id = r.event_id AND x.position <= $2) \
         ORDER BY r.position DESC LIMIT 1",
    )
    .bind(year)
    .bind(i64::try_from(cut).expect("cut"))
    .fetch_optional(ledger.store.pool())
    .await
    .expect("rating")
}

#[tokio::test]
async fn a_retracted_rating_is_replaced_by_the_right_one() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let wrong = ok(
        &ledger,
        "rate",
        json!({"official_id": "o-1", "year": 2009, "rating": "not_completed", "effective_date": "2009-12-31"}),
    )
    .await;
    let known = settle(&ledger).await;
    let right = json!({"official_id": "o-1", "year": 2009, "rating": "excellent", "effective_date": "2009-12-31"});
    let (status, body) = ledger.post("rate", &right).await;
    assert_eq!(
        (status, code(&body)),
        (409, "conflict"),
        "one rating a year"
    );
    let reason = "the committee's minutes say excellent";
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&wrong), "reason": reason, "effective_date": "2010-01-20"}),
    )
    .await;
    let retracted = settle(&ledger).await;
    let replaced = ok(&ledger, "rate", right).await;
    let corrected = settle(&ledger).await;

    assert_eq!(
        rating_at(&ledger, 2009, known).await.as_deref(),
        Some("not_completed")
    );
    assert_eq!(rating_at(&ledger, 2009, retracted).await, None);
    assert_eq!(
        rating_at(&ledger, 2009, corrected).await.as_deref(),
        Some("excellent")
    );

    let trail = history(&ledger, "/v1/officials/o-1/history?type=official.rated.v1").await;
    let facts = trail["facts"].as_array().expect("facts");
    assert_eq!(facts.len(), 2);
    assert_eq!(facts[0]["data"]["rating"], "not_completed");
    assert_eq!(facts[0]["retracted_by"]["actor"], "admin");
    assert_eq!(facts[0]["retracted_by"]["reason"], reason);
    assert_eq!(
        facts[0]["retracted_by"]["position"],
        json!(position(&retraction))
    );
    assert_eq!(facts[1]["event_id"], json!(event_id(&replaced)));
    assert_eq!(facts[1]["data"]["rating"], "excellent");
    assert!(facts[1].get("retracted_by").is_none());
}

#[tokio::test]
async fn a_retracted_assignment_puts_the_person_back_from_the_retraction_on() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ok(
        &ledger,
        "register_unit",
        json!({"unit_id": "dai-loc-dai-hiep", "name": "Đại Hiệp", "level": "commune", "parent_id": "dai-loc", "effective_date": "1997-01-01"}),
    )
    .await;
    ok(
        &ledger,
        "register_official",
        person(
            "o-2",
            "dai-loc-dai-an",
            "civil_servant",
            "land_construction",
        ),
    )
    .await;
    let to_dien_ban = json!({"official_id": "o-2", "unit_id": "dien-ban", "staff_category": "civil_servant", "position": "land_construction", "decision_no": "12/QĐ-UBND", "effective_date": "2010-01-01"});
    let wrong = ok(&ledger, "assign_position", to_dien_ban).await;
    let known = settle(&ledger).await;
    let population = |query: String| {
        let ledger = &ledger;
        async move { standards(ledger, &query).await["population"].clone() }
    };
    let on = "as_of=2011-12-31";
    assert_eq!(
        population(format!("unit=dai-loc&{on}")).await,
        1,
        "o-1 only"
    );
    assert_eq!(population(format!("unit=dien-ban&{on}")).await, 1, "o-2");

    let reason = "decision 12/QĐ-UBND names another person";
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&wrong), "reason": reason, "effective_date": "2010-03-01"}),
    )
    .await;
    let retracted = settle(&ledger).await;
    assert_eq!(population(format!("unit=dai-loc&{on}")).await, 2);
    assert_eq!(population(format!("unit=dien-ban&{on}")).await, 0);
    assert_eq!(
        population(format!("unit=dai-loc&{on}&at_position={known}")).await,
        1,
        "as known before the retraction"
    );
    assert_eq!(
        population(format!("unit=dien-ban&{on}&at_position={known}")).await,
        1
    );

    // The assignment that was meant: to Đại Hiệp.
    let meant = ok(
        &ledger,
        "assign_position",
        json!({"official_id": "o-2", "unit_id": "dai-loc-dai-hiep", "staff_category": "civil_servant", "position": "land_construction", "decision_no": "14/QĐ-UBND", "effective_date": "2010-01-01"}),
    )
    .await;
    settle(&ledger).await;
    assert_eq!(population(format!("unit=dai-loc-dai-hiep&{on}")).await, 1);
    assert_eq!(
        population(format!("unit=dai-loc-dai-an&{on}")).await,
        1,
        "o-1"
    );
    assert_eq!(
        population(format!(
            "unit=dai-loc-dai-hiep&{on}&at_position={retracted}"
        ))
        .await,
        0
    );

    let trail = history(&ledger, "/v1/officials/o-2/history").await;
    assert_eq!(
        types(&trail),
        vec![
            "official.registered.v1",
            "official.position_assigned.v1",
            "fact.retracted.v1",
            "official.position_assigned.v1",
        ]
    );
    let first = fact(&trail, &event_id(&wrong));
    assert_eq!(first["data"]["unit_id"], "dien-ban");
    assert_eq!(
        first["retracted_by"],
        json!({"event_id": event_id(&retraction), "position": position(&retraction), "actor": "admin",
               "recorded_at": fact(&trail, &event_id(&retraction))["recorded_at"], "reason": reason})
    );
    let second = fact(&trail, &event_id(&meant));
    assert_eq!(second["data"]["unit_id"], "dai-loc-dai-hiep");
    assert!(second.get("retracted_by").is_none());
}

#[tokio::test]
async fn a_retracted_late_leaving_puts_the_person_back_in_post_from_the_retraction_on() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ok(
        &ledger,
        "register_official",
        person("o-3", "dai-loc-dai-an", "cadre", "front_chair"),
    )
    .await;
    let mut refresher = nomination("e-3", "2010-03-01");
    refresher["official_id"] = json!("o-3");
    refresher["program"] = json!({"track": "refresher", "title": "Bồi dưỡng nghiệp vụ"});
    ok(&ledger, "nominate", refresher).await;
    // Reported late: dated before the nomination already recorded.
    let late = ok(
        &ledger,
        "record_leaving",
        json!({"official_id": "o-3", "reason": "retired", "effective_date": "2009-06-30"}),
    )
    .await;
    let known = settle(&ledger).await;
    let population = |query: String| {
        let ledger = &ledger;
        async move { standards(ledger, &query).await["population"].clone() }
    };
    assert_eq!(population("unit=dai-loc&as_of=2011-12-31".into()).await, 1);

    let reason = "retired in 2012: the 2009 date was the decision's draft";
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&late), "reason": reason, "effective_date": "2012-07-01"}),
    )
    .await;
    let retracted = settle(&ledger).await;
    assert_eq!(population("unit=dai-loc&as_of=2011-12-31".into()).await, 2);
    assert_eq!(
        population(format!("unit=dai-loc&as_of=2011-12-31&at_position={known}")).await,
        1,
        "as known before the retraction"
    );
    let leaving = ok(
        &ledger,
        "record_leaving",
        json!({"official_id": "o-3", "reason": "retired", "effective_date": "2012-06-30"}),
    )
    .await;
    settle(&ledger).await;
    assert_eq!(population("unit=dai-loc&as_of=2011-12-31".into()).await, 2);
    assert_eq!(population("unit=dai-loc&as_of=2012-12-31".into()).await, 1);
    assert_eq!(
        population(format!(
            "unit=dai-loc&as_of=2012-12-31&at_position={retracted}"
        ))
        .await,
        2,
        "before the right leaving was recorded"
    );

    let trail = history(&ledger, "/v1/officials/o-3/history?type=official.left.v1").await;
    let facts = trail["facts"].as_array().expect("facts");
    assert_eq!(facts.len(), 2);
    assert_eq!(facts[0]["effective_date"], "2009-06-30");
    assert_eq!(facts[0]["retracted_by"]["reason"], reason);
    assert_eq!(facts[0]["retracted_by"]["actor"], "admin");
    assert_eq!(
        facts[0]["retracted_by"]["event_id"],
        json!(event_id(&retraction))
    );
    assert_eq!(facts[1]["event_id"], json!(event_id(&leaving)));
    assert_eq!(facts[1]["effective_date"], "2012-06-30");
    assert!(facts[1].get("retracted_by").is_none());
    // By effective date, the late leaving sorts before the nomination it
    // was recorded after; the trail keeps ledger order.
    let dated = history(
        &ledger,
        "/v1/officials/o-3/history?from=2009-01-01&to=2009-12-31",
    )
    .await;
    assert_eq!(types(&dated), vec!["official.left.v1"]);
}

const BIN: &str = env!("CARGO_BIN_EXE_tledger");

async fn cli(ledger: &Ledger, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = tokio::process::Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("TLEDGER_") {
            command.env_remove(name);
        }
    }
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        command
            .args(args)
            .env("TLEDGER_DATABASE_URL", ledger._db.url())
            .env("TLEDGER_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("finishes within a minute")
    .expect("runs");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8(output.stderr).expect("UTF-8"),
    )
}

#[tokio::test]
async fn tledger_history_prints_the_rows_of_the_http_trail_and_records_no_read() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let rated = ok(
        &ledger,
        "rate",
        json!({"official_id": "o-1", "year": 2009, "rating": "good", "effective_date": "2009-12-31"}),
    )
    .await;
    let retraction = ok(
        &ledger,
        "retract",
        json!({"event_id": event_id(&rated), "reason": "wrong year", "effective_date": "2010-01-05"}),
    )
    .await;
    ok(&ledger, "nominate", college("e-1", "o-1", "2008-08-15")).await;
    settle(&ledger).await;

    let (status, out, err) =
        cli(&ledger, &["history", "official", "o-1", "--format", "json"]).await;
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("JSON"),
        history(&ledger, "/v1/officials/o-1/history").await
    );
    let (status, out, err) = cli(
        &ledger,
        &[
            "history",
            "official",
            "o-1",
            "--format",
            "csv",
            "--type",
            "official.rated.v1",
            "--type",
            "fact.retracted.v1",
            "--from",
            "2009-01-01",
        ],
    )
    .await;
    assert_eq!(status, Some(0), "{err}");
    let (_, csv) = ledger
        .get(
            "/v1/officials/o-1/history?type=official.rated.v1,fact.retracted.v1&from=2009-01-01",
            Some(&ledger.admin),
            true,
        )
        .await;
    assert_eq!(out, csv);
    assert_eq!(out.lines().count(), 3);
    let (status, out, err) = cli(&ledger, &["history", "official", "o-1"]).await;
    assert_eq!(status, Some(0), "{err}");
    assert!(out.starts_with("official-o-1: 3 of 3 facts\n"), "{out}");
    assert!(
        out.contains(&format!(
            "retracted at position {} by admin on ",
            position(&retraction)
        )) && out.contains(": wrong year\n"),
        "{out}"
    );
    let (status, out, err) = cli(
        &ledger,
        &[
            "history",
            "enrollment",
            "e-1",
            "--format",
            "json",
            "--type",
            "training.nominated.v1",
        ],
    )
    .await;
    assert_eq!(status, Some(0), "{err}");
    let place: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(types(&place), vec!["training.nominated.v1"]);

    let (status, _, err) = cli(&ledger, &["history", "enrollment", "nowhere"]).await;
    assert_eq!(status, Some(1));
    assert_eq!(err.trim(), "error: no enrollment \"nowhere\" in the ledger");
    let (status, _, err) = cli(
        &ledger,
        &[
            "history",
            "official",
            "o-1",
            "--from",
            "2012-01-01",
            "--to",
            "2011-01-01",
        ],
    )
    .await;
    assert_eq!(
        (status, err.trim()),
        (Some(1), "error: from 2012-01-01 is after to 2011-01-01")
    );
    let (status, _, err) = cli(&ledger, &["history", "official", "o-1", "--type", "rated"]).await;
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("unknown fact type \"rated\""), "{err}");
    let (status, _, _) = cli(&ledger, &["history", "unit", "dai-loc"]).await;
    assert_eq!(status, Some(2), "a usage error");

    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM access_log")
        .fetch_one(ledger.store.pool())
        .await
        .expect("count");
    assert_eq!(
        logged, 2,
        "the two HTTP reads; the command line reads the database itself"
    );
}
