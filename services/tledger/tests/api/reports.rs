//! Reports over HTTP from the read models, against a real PostgreSQL: the
//! figures of a small district computed by hand, as of dates and as known
//! at cuts (before and after a retraction), CSV, access, bad parameters,
//! and projections that rebuild to the same rows or survive a killed batch.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{nomination, official, spawn_app, Ledger};
use tledger::access::Role;
use tledger_projections::projector::{self, Projector};
use tokio::sync::{oneshot, Notify};

fn qualification(
    official_id: &str,
    track: &str,
    level: &str,
    specialty: Option<&str>,
    on: &str,
) -> Value {
    let mut body =
        json!({"official_id": official_id, "track": track, "level": level, "effective_date": on});
    if let Some(s) = specialty {
        body["specialty"] = json!(s);
    }
    body
}

fn person(id: &str, unit: &str, category: &str, post: &str) -> Value {
    let mut body = official(id, unit);
    body["staff_category"] = json!(category);
    body["position"] = json!(post);
    if category == "part_time" {
        body["position_title"] = json!("Công an viên");
    }
    body
}

/// The district of the module doc; returns the completion's event id.
async fn district(ledger: &Ledger) -> String {
    ledger.seed().await; // quang-nam > dai-loc > dai-loc-dai-an; dien-ban; o-1 (committee_chair, dai-an)
    let commands: Vec<(&str, Value)> = vec![
        (
            "register_unit",
            json!({"unit_id": "dai-loc-dai-hiep", "name": "Đại Hiệp", "level": "commune", "parent_id": "dai-loc", "effective_date": "1997-01-01"}),
        ),
        (
            "register_official",
            person(
                "o-2",
                "dai-loc-dai-an",
                "civil_servant",
                "land_construction",
            ),
        ),
        (
            "register_official",
            person("o-3", "dai-loc-dai-hiep", "civil_servant", "police_chief"),
        ),
        (
            "register_official",
            person("o-4", "dai-loc-dai-hiep", "cadre", "front_chair"),
        ),
        (
            "register_official",
            person("o-5", "dien-ban", "civil_servant", "finance_accounting"),
        ),
        (
            "register_official",
            person("o-6", "dai-loc-dai-an", "part_time", "part_time"),
        ),
        (
            "register_official",
            person("o-7", "dai-loc-dai-an", "cadre", "party_secretary"),
        ),
        (
            "register_official",
            person("o-8", "dai-loc-dai-an", "civil_servant", "culture_social"),
        ),
        (
            "record_leaving",
            json!({"official_id": "o-7", "reason": "retired", "effective_date": "2010-06-30"}),
        ),
        (
            "record_qualification",
            qualification(
                "o-1",
                "general_education",
                "upper_secondary",
                None,
                "1990-06-01",
            ),
        ),
        (
            "record_qualification",
            qualification(
                "o-1",
                "professional",
                "intermediate",
                Some("public_admin"),
                "2004-06-01",
            ),
        ),
        (
            "record_qualification",
            qualification(
                "o-1",
                "political_theory",
                "intermediate",
                None,
                "2003-06-01",
            ),
        ),
        (
            "record_qualification",
            qualification(
                "o-2",
                "general_education",
                "upper_secondary",
                None,
                "1990-06-01",
            ),
        ),
        (
            "record_qualification",
            qualification(
                "o-2",
                "professional",
                "university",
                Some("law"),
                "2000-06-01",
            ),
        ),
        (
            "record_qualification",
            qualification(
                "o-3",
                "general_education",
                "upper_secondary",
                None,
                "1990-06-01",
            ),
        ),
        (
            "record_qualification",
            qualification(
                "o-3",
                "professional",
                "intermediate",
                Some("police"),
                "2001-06-01",
            ),
        ),
        (
            "plan",
            json!({"official_id": "o-1", "target_position": "party_secretary", "period_from": 2010, "period_to": 2015, "planned_specialty": "public_admin", "effective_date": "2010-01-01"}),
        ),
        (
            "plan",
            json!({"official_id": "o-2", "target_position": "land_construction", "period_from": 2008, "period_to": 2012, "planned_specialty": "land_management", "effective_date": "2008-01-01"}),
        ),
        ("nominate", nomination("e-1", "2008-08-15")),
        (
            "enroll",
            json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
        ),
    ];
    for (name, body) in commands {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
    let mut refresher = nomination("e-2", "2009-02-01");
    refresher["official_id"] = json!("o-2");
    refresher["program"] = json!({"track": "refresher", "title": "Bồi dưỡng nghiệp vụ"});
    let mut other_specialty = nomination("e-4", "2009-05-01");
    other_specialty["official_id"] = json!("o-2");
    let mut outside_window = nomination("e-3", "2011-11-01");
    outside_window["official_id"] = json!("o-4");
    outside_window["program"] =
        json!({"track": "political_theory", "level": "intermediate", "title": "Trung cấp LLCT"});
    for (name, body) in [
        ("nominate", refresher),
        (
            "enroll",
            json!({"enrollment_id": "e-2", "effective_date": "2009-03-01"}),
        ),
        (
            "withdraw",
            json!({"enrollment_id": "e-2", "reason": "illness", "effective_date": "2009-04-01"}),
        ),
        ("nominate", other_specialty),
        ("nominate", outside_window),
        (
            "enroll",
            json!({"enrollment_id": "e-3", "effective_date": "2012-01-05"}),
        ),
    ] {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
    let (status, completed) = ledger
        .post("complete", &json!({"enrollment_id": "e-1", "result": "good", "certificate": {"kind": "diploma", "number": "CD-1"}, "effective_date": "2010-06-30"}))
        .await;
    assert_eq!(status, 201, "{completed}");
    // The policy records the programme's level (intermediate, public_admin).
    tokio::time::sleep(Duration::from_millis(150)).await;
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    completed["events"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn report(ledger: &Ledger, path: &str) -> Value {
    let (status, body) = ledger.get(path, Some(&ledger.admin), false).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn figure(count: u64, of: u64, rate: Option<f64>) -> Value {
    json!({"count": count, "of": of, "rate": rate})
}

#[tokio::test]
async fn reports_give_the_hand_computed_figures_as_of_dates_and_cuts() {
    let ledger = spawn_app().await;
    let completion = district(&ledger).await;
    // Make o-1's programme a college degree: a second completion would be
    // a conflict, so record the college level explicitly instead.
    ledger
        .post(
            "record_qualification",
            &qualification(
                "o-1",
                "professional",
                "college",
                Some("public_admin"),
                "2010-06-30",
            ),
        )
        .await;
    let before_retraction = ledger.projected().await;

    let standards = report(
        &ledger,
        "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    assert_eq!(standards["ruleset"], "qd04-2004");
    assert_eq!(
        standards["population"], 5,
        "o-1, o-2, o-3, o-4, o-8: not o-5 (other district), o-6 (part-time), o-7 (left)"
    );
    assert_eq!(standards["meets_all_standards"], figure(2, 5, Some(0.4)));
    assert_eq!(
        standards["professional_college_plus"],
        figure(2, 5, Some(0.4))
    );
    assert_eq!(
        standards["key_leaders_college_plus"],
        figure(1, 1, Some(1.0))
    );
    assert_eq!(
        standards["political_theory_intermediate_plus"],
        figure(1, 4, Some(0.25))
    );
    assert_eq!(standards["position"], before_retraction);

    let earlier = report(
        &ledger,
        "/v1/reports/standards?unit=dai-loc&as_of=2009-12-31",
    )
    .await;
    assert_eq!(earlier["population"], 6, "o-7 was still in post");
    assert_eq!(earlier["key_leaders_college_plus"], figure(0, 2, Some(0.0)));

    let volume = report(
        &ledger,
        "/v1/reports/training-volume?unit=dai-loc&from=2007-01-01&to=2011-12-31",
    )
    .await;
    assert_eq!(
        volume["total"], 2,
        "e-1 and e-2 (withdrawn, still counted); e-3 enrolled in 2012; e-4 never enrolled"
    );
    assert_eq!(
        volume["headline"],
        json!({"professional_intermediate_plus": 1, "political_theory_intermediate_plus": 0, "refresher": 1})
    );
    assert_eq!(
        volume["by_track"]["professional"]["by_level"]["intermediate"],
        1
    );
    assert_eq!(
        volume["by_track"]["refresher"],
        json!({"total": 1, "by_level": {}})
    );
    assert_eq!(
        volume["funding_vnd"],
        json!({"province": 0, "district": 9_000_000, "agency": 0, "self": 0, "other": 0})
    );
    let country = report(
        &ledger,
        "/v1/reports/training-volume?from=2007-01-01&to=2012-12-31",
    )
    .await;
    assert_eq!(
        (country["unit_id"].clone(), country["total"].clone()),
        (Value::Null, json!(3))
    );

    let alignment = report(
        &ledger,
        "/v1/reports/alignment?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    assert_eq!(
        alignment["training_outside_plan"],
        json!([
            {"enrollment_id": "e-1", "official_id": "o-1", "program_specialty": "public_admin", "planned_specialty": null, "reason": "not_in_plan"},
            {"enrollment_id": "e-4", "official_id": "o-2", "program_specialty": "public_admin", "planned_specialty": "land_management", "reason": "other_specialty"},
        ])
    );
    assert_eq!(
        alignment["misassigned"],
        json!([
            {"official_id": "o-2", "post": "land_construction", "specialty": "law", "reason": "other_specialty"},
            {"official_id": "o-8", "post": "culture_social", "specialty": null, "reason": "untrained"},
        ])
    );

    // Retract the completion: its qualification goes too; the figure as
    // known before the retraction stays reproducible.
    let (status, answer) = ledger
        .post("retract", &json!({"event_id": completion, "reason": "diploma not verified", "effective_date": "2011-01-10"}))
        .await;
    assert_eq!(status, 201, "{answer}");
    tokio::time::sleep(Duration::from_millis(150)).await;
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    let after = ledger.projected().await;
    let qualifications = report(
        &ledger,
        "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    assert_eq!(qualifications["position"], after);
    // The explicit college record stays: o-1 keeps college; the policy's
    // intermediate record is retracted, which changes no figure here.
    assert_eq!(
        qualifications["professional_college_plus"],
        figure(2, 5, Some(0.4))
    );
    let then = report(
        &ledger,
        &format!(
            "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31&at_position={before_retraction}"
        ),
    )
    .await;
    assert_eq!(then["position"], before_retraction);
    assert_eq!(
        then["professional_college_plus"],
        standards["professional_college_plus"]
    );
    let retracted: i64 = sqlx::query_scalar("SELECT count(*) FROM rm.retractions")
        .fetch_one(ledger.store.pool())
        .await
        .expect("count");
    assert_eq!(
        retracted, 2,
        "the completion and the qualification it recorded"
    );
}

/// A report keeps the unit hierarchy it read while no unit fact comes; a
/// reorganisation projected after a report is in the next one, and the
/// report as known before it is unchanged.
#[tokio::test]
async fn a_reorganisation_after_a_report_is_in_the_next_one() {
    let ledger = spawn_app().await;
    district(&ledger).await;
    let known = ledger.projected().await;
    let path = "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31";
    let before = report(&ledger, path).await;
    assert_eq!(before["population"], json!(5));
    assert_eq!(report(&ledger, path).await, before);
    let (status, answer) = ledger
        .post(
            "reorganise_unit",
            &json!({"unit_id": "dai-loc-dai-hiep", "parent_id": "dien-ban", "effective_date": "2011-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let moved = ledger.projected().await;
    let after = report(&ledger, path).await;
    assert_eq!(after["position"], json!(moved));
    // o-3 and o-4 are in Đại Hiệp, now under Điện Bàn.
    assert_eq!(after["population"], json!(3));
    assert_eq!(
        report(
            &ledger,
            "/v1/reports/standards?unit=dien-ban&as_of=2011-12-31"
        )
        .await["population"],
        json!(3)
    );
    let as_known = report(&ledger, &format!("{path}&at_position={known}")).await;
    assert_eq!(as_known["population"], json!(5));
}

#[tokio::test]
async fn a_retracted_qualification_changes_the_figure_from_the_retraction_on() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let (_, recorded) = ledger
        .post(
            "record_qualification",
            &qualification(
                "o-1",
                "professional",
                "university",
                Some("public_admin"),
                "2006-06-01",
            ),
        )
        .await;
    let known = ledger.projected().await;
    let path = "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31";
    assert_eq!(
        report(&ledger, path).await["professional_college_plus"],
        figure(1, 1, Some(1.0))
    );
    let id = recorded["events"][0]["id"].as_str().expect("id");
    let (status, _) = ledger
        .post("retract", &json!({"event_id": id, "reason": "recorded for the wrong person", "effective_date": "2011-03-01"}))
        .await;
    assert_eq!(status, 201);
    ledger.projected().await;
    assert_eq!(
        report(&ledger, path).await["professional_college_plus"],
        figure(0, 1, Some(0.0))
    );
    let as_known = report(&ledger, &format!("{path}&at_position={known}")).await;
    assert_eq!(
        as_known["professional_college_plus"],
        figure(1, 1, Some(1.0))
    );
}

#[tokio::test]
async fn a_cadre_whom_no_requirement_covers_is_in_the_population_without_meeting_it() {
    let ledger = spawn_app().await;
    ledger.seed().await; // o-1: committee_chair (a key leader) in dai-loc-dai-an
    let (status, answer) = ledger
        .post(
            "register_official",
            &person(
                "o-2",
                "dai-loc-dai-an",
                "civil_servant",
                "finance_accounting",
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    for q in [
        qualification(
            "o-1",
            "professional",
            "university",
            Some("law"),
            "2004-06-01",
        ),
        qualification(
            "o-2",
            "general_education",
            "upper_secondary",
            None,
            "1990-06-01",
        ),
        qualification(
            "o-2",
            "professional",
            "intermediate",
            Some("accounting"),
            "2004-06-01",
        ),
    ] {
        let (status, answer) = ledger.post("record_qualification", &q).await;
        assert_eq!(status, 201, "{answer}");
    }
    // A ruleset that sets standards for civil servants only.
    let (status, answer) = ledger
        .post(
            "publish_reference",
            &json!({"kind": "ruleset", "name": "civil-servants-only", "effective_date": "2010-01-01",
                    "content": {"requirements": [{"group": "civil_servants", "staff_category": "civil_servant",
                                                  "minimums": {"professional": "intermediate"}}]}}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    ledger.projected().await;
    let standards = report(
        &ledger,
        "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    assert_eq!(standards["ruleset"], "civil-servants-only");
    // docs/contract.md: the population is every cadre and civil servant in post.
    assert_eq!(standards["population"], 2);
    assert_eq!(standards["meets_all_standards"], figure(1, 2, Some(0.5)));
    assert_eq!(
        standards["professional_college_plus"],
        figure(1, 2, Some(0.5))
    );
    assert_eq!(
        standards["key_leaders_college_plus"],
        figure(1, 1, Some(1.0))
    );
    assert_eq!(
        standards["political_theory_intermediate_plus"],
        figure(0, 0, None)
    );
}

#[tokio::test]
async fn one_accepted_specialty_among_the_highest_diplomas_is_enough_for_the_post() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let (status, answer) = ledger
        .post(
            "register_official",
            &person(
                "o-2",
                "dai-loc-dai-an",
                "civil_servant",
                "justice_civil_status",
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    // Law, then agriculture, both at university level.
    for q in [
        qualification(
            "o-2",
            "professional",
            "university",
            Some("law"),
            "2004-06-01",
        ),
        qualification(
            "o-2",
            "professional",
            "university",
            Some("agriculture"),
            "2008-06-01",
        ),
    ] {
        let (status, answer) = ledger.post("record_qualification", &q).await;
        assert_eq!(status, 201, "{answer}");
    }
    ledger.projected().await;
    let alignment = report(
        &ledger,
        "/v1/reports/alignment?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    assert_eq!(alignment["misassigned"], json!([]), "{alignment}");
    // A master's degree in agriculture is now the highest: the latest of
    // the highest is reported.
    let (status, answer) = ledger
        .post(
            "record_qualification",
            &qualification(
                "o-2",
                "professional",
                "master",
                Some("agriculture"),
                "2010-06-01",
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    ledger.projected().await;
    let alignment = report(
        &ledger,
        "/v1/reports/alignment?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    assert_eq!(
        alignment["misassigned"],
        json!([{"official_id": "o-2", "post": "justice_civil_status", "specialty": "agriculture", "reason": "other_specialty"}])
    );
}

#[tokio::test]
async fn reports_come_as_csv_too() {
    let ledger = spawn_app().await;
    district(&ledger).await;
    ledger.projected().await;
    let (status, csv) = ledger
        .get(
            "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
            Some(&ledger.admin),
            true,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        csv,
        "figure,count,of,rate\nmeets_all_standards,2,5,0.4\nprofessional_college_plus,1,5,0.2\nkey_leaders_college_plus,0,1,0.0\npolitical_theory_intermediate_plus,1,4,0.25\n"
    );
    let (_, volume) = ledger
        .get(
            "/v1/reports/training-volume?unit=dai-loc&from=2007-01-01&to=2011-12-31",
            Some(&ledger.admin),
            true,
        )
        .await;
    assert!(volume.starts_with("track,level,count\n"), "{volume}");
    assert!(
        volume.contains("\nprofessional,intermediate,1\n"),
        "{volume}"
    );
    assert!(volume.contains("\nrefresher,,1\n"), "{volume}");
    let (_, alignment) = ledger
        .get(
            "/v1/reports/alignment?unit=dai-loc&as_of=2011-12-31",
            Some(&ledger.admin),
            true,
        )
        .await;
    assert!(
        alignment.contains("\nmisassigned,,o-8,culture_social,,,,untrained\n"),
        "{alignment}"
    );
}

#[tokio::test]
async fn report_reads_are_checked_by_role_and_unit_scope() {
    let ledger = spawn_app().await;
    district(&ledger).await;
    ledger.projected().await;
    let path = "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31";
    let code = |body: &str| -> String {
        serde_json::from_str::<Value>(body).expect("JSON")["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let (status, body) = ledger.get(path, None, false).await;
    assert_eq!((status, code(&body).as_str()), (401, "unauthenticated"));
    let publisher = ledger.token(Role::Publisher, None).await;
    let (status, body) = ledger.get(path, Some(&publisher), false).await;
    assert_eq!((status, code(&body).as_str()), (403, "forbidden"));
    let outsider = ledger.token(Role::UnitOfficer, Some("dien-ban")).await;
    let (status, body) = ledger.get(path, Some(&outsider), false).await;
    assert_eq!((status, code(&body).as_str()), (403, "forbidden"));
    let (status, _) = ledger
        .get(
            "/v1/reports/standards?as_of=2011-12-31",
            Some(&outsider),
            false,
        )
        .await;
    assert_eq!(status, 403, "a unit officer cannot read the whole country");
    let officer = ledger.token(Role::UnitOfficer, Some("quang-nam")).await;
    assert_eq!(ledger.get(path, Some(&officer), false).await.0, 200);
    let inspector = ledger.token(Role::Inspector, None).await;
    assert_eq!(ledger.get(path, Some(&inspector), false).await.0, 200);
}

#[tokio::test]
async fn bad_report_parameters_get_the_contracts_errors() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let head = ledger.projected().await;
    let cases = [
        (
            "/v1/reports/standards?unit=nowhere&as_of=2011-12-31",
            404,
            "not_found",
        ),
        (
            "/v1/reports/standards?unit=dai-loc&as_of=2011-13-45",
            400,
            "malformed",
        ),
        (
            "/v1/reports/standards?unit=dai-loc&as_of=31/12/2011",
            400,
            "malformed",
        ),
        (
            "/v1/reports/standards?unit=dai-loc&at_position=1&known_at=2026-01-01T00:00:00Z",
            400,
            "malformed",
        ),
        (
            "/v1/reports/standards?unit=dai-loc&colour=red",
            400,
            "malformed",
        ),
        // A repeated parameter is ambiguous: which value would count?
        (
            "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31&as_of=2006-12-31",
            400,
            "malformed",
        ),
        (
            "/v1/reports/training-volume?unit=dai-loc&from=2012-01-01&to=2011-12-31",
            422,
            "invalid_value",
        ),
        (
            "/v1/reports/standards?unit=dai-loc&as_of=2003-12-31",
            422,
            "invalid_value",
        ),
        ("/v1/reports/everything", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let (got, body) = ledger.get(path, Some(&ledger.admin), false).await;
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    let started = std::time::Instant::now();
    let (status, body) = ledger
        .get(
            &format!(
                "/v1/reports/standards?unit=dai-loc&min_position={}",
                head + 1000
            ),
            Some(&ledger.admin),
            false,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "it waited before giving up"
    );
    // A known_at before anything was recorded cuts at position 0: no units.
    let (status, _) = ledger
        .get(
            "/v1/reports/standards?unit=dai-loc&known_at=2000-01-01T00:00:00Z",
            Some(&ledger.admin),
            false,
        )
        .await;
    assert_eq!(status, 404);
}

/// Every read-model table, row for row, as text.
async fn snapshot(ledger: &Ledger, schema: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "retractions",
        "reference_data",
        "unit_facts",
        "placements",
        "qualifications",
        "plans",
        "ratings",
        "places",
        "place_steps",
        "enrolled_places",
        "standing",
        "enrolled_by_day",
        "checkpoint",
    ] {
        let text: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t::text FROM {schema}.{table} t ORDER BY t::text"
        ))
        .fetch_all(ledger.store.pool())
        .await
        .expect("rows");
        rows.extend(text.into_iter().map(|r| format!("{table}: {r}")));
    }
    rows
}

/// The indexes of a schema's tables: name and definition, in name order.
async fn indexes(ledger: &Ledger, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(ledger.store.pool())
    .await
    .expect("indexes")
}

/// Equal row lists, or a failure naming only the rows that differ.
fn assert_same_rows(got: &[String], expected: &[String]) {
    let missing: Vec<&String> = expected.iter().filter(|r| !got.contains(r)).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !expected.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == expected.len(),
        "missing: {missing:#?}\nextra: {extra:#?}\n({} rows against {})",
        got.len(),
        expected.len()
    );
}

#[tokio::test]
async fn a_rebuild_equals_the_live_read_models_row_for_row() {
    let ledger = spawn_app().await;
    district(&ledger).await;
    ledger.projected().await;
    let live = snapshot(&ledger, "rm").await;
    let standards = report(
        &ledger,
        "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31",
    )
    .await;
    let live_indexes = indexes(&ledger, "rm").await;
    assert!(
        live_indexes
            .iter()
            .any(|i| i.starts_with("places_by_event: CREATE UNIQUE INDEX")),
        "{live_indexes:#?}"
    );
    let reached = projector::rebuild(&ledger.store).await.expect("rebuild");
    assert_eq!(reached, ledger.store.head().await.expect("head"));
    assert_same_rows(&snapshot(&ledger, "rm").await, &live);
    // A rebuild builds its indexes after loading: it ends with every one.
    assert_eq!(indexes(&ledger, "rm").await, live_indexes);
    assert_eq!(
        report(
            &ledger,
            "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31"
        )
        .await,
        standards
    );
}

/// The district recorded and projected, its live read models' rows, and an
/// empty read-model schema `schema` beside them for a projector under test.
async fn district_beside_an_empty_schema(schema: &str) -> (Ledger, Vec<String>) {
    let ledger = spawn_app().await;
    district(&ledger).await;
    ledger.projected().await;
    let expected = snapshot(&ledger, "rm").await;
    let pool = ledger.store.pool();
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(pool)
        .await
        .expect("drop");
    projector::ensure_schema(pool, schema)
        .await
        .expect("schema");
    (ledger, expected)
}

/// Reading ahead assumes one projector fills the schema; should a second
/// one move the checkpoint all the same, each stops reading ahead where its
/// batch no longer starts at the checkpoint, and between them they write
/// every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_reading_ahead_into_one_schema_count_nothing_twice() {
    let (ledger, expected) = district_beside_an_empty_schema("rm_twice").await;
    let first = Projector::for_schema(ledger.store.clone(), "rm_twice").with_batch_size(5);
    let second = first.clone();
    let (a, b) = tokio::join!(
        first.catch_up_reading_ahead(),
        second.catch_up_reading_ahead()
    );
    let head = ledger.store.head().await.expect("head");
    assert_eq!(a.expect("first"), head);
    assert_eq!(b.expect("second"), head);
    assert_same_rows(&snapshot(&ledger, "rm_twice").await, &expected);
}

#[tokio::test]
async fn a_projector_killed_mid_batch_counts_nothing_twice_and_misses_nothing() {
    let (ledger, expected) = district_beside_an_empty_schema("rm_killed").await;
    let projector = Projector::for_schema(ledger.store.clone(), "rm_killed").with_batch_size(7);
    // Cut batches off at growing delays: some die before, some during, some
    // after their commit.
    for micros in (0..40).map(|i| 200 + i * 150) {
        let _ = tokio::time::timeout(Duration::from_micros(micros), projector.step()).await;
    }
    projector.catch_up().await.expect("catch up");
    let killed: Vec<String> = snapshot(&ledger, "rm_killed").await.into_iter().collect();
    assert_same_rows(&killed, &expected);
}

async fn nominate(ledger: &Ledger, enrollment: &str) {
    let (status, answer) = ledger
        .post("nominate", &nomination(enrollment, "2008-08-15"))
        .await;
    assert_eq!(status, 201, "{answer}");
}

/// A projector paced as the service paces it (ADR 18), and never woken by
/// its idle interval (an hour here), still reaches the head: woken after
/// each command, within its gap, it keeps the wake-ups that came during a
/// batch; woken once after many commands, it goes on from one full batch to
/// the next without another wake-up. It writes the rows the live projector
/// wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_projector_reaches_the_head_on_wake_ups_alone() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let pool = ledger.store.pool();
    projector::ensure_schema(pool, "rm_paced")
        .await
        .expect("schema");
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let paced = tokio::spawn(
        Projector::for_schema(ledger.store.clone(), "rm_paced")
            .with_batch_size(2)
            .run(
                wake.clone(),
                Duration::from_secs(3600),
                Duration::from_millis(10),
                async move {
                    let _ = stopped.await;
                },
            ),
    );
    let reaches_head = |head: u64| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let at = projector::position(pool, "rm_paced")
                .await
                .expect("checkpoint");
            if at == head {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the paced projector stopped at {at} of {head}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };

    for i in 0..20 {
        nominate(&ledger, &format!("e-woken-{i}")).await;
        wake.notify_one();
    }
    reaches_head(ledger.store.head().await.expect("head")).await;

    for i in 0..20 {
        nominate(&ledger, &format!("e-later-{i}")).await;
    }
    wake.notify_one();
    let head = ledger.projected().await;
    reaches_head(head).await;
    assert_same_rows(
        &snapshot(&ledger, "rm_paced").await,
        &snapshot(&ledger, "rm").await,
    );
    let _ = stop.send(());
    paced.await.expect("the paced projector stops");
}
