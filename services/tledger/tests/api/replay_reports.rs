//! `tledger replay <archive> … report <name>` against the server: a ledger
//! with a varied history recorded through the command path (units
//! registered, dissolved and re-parented; people registered, moved and
//! leaving; qualifications, plans, places with funding in every state, a
//! retraction, a second ruleset), exported with the binary; every report
//! computed from the archive alone is byte for byte the HTTP body at the
//! archive's last position, for several units, dates and cuts.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};
use support::{nomination, official, spawn_app, Ledger};
use tledger::checkpoint_signing::generate_signing_key;
use tledger_events::reference_data;
use tledger_events::ReferenceKind;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_tledger");

fn tledger(database: &str, key: &Path, args: &[&str]) -> Output {
    let output = std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TLEDGER_DATABASE_URL", database)
        .env("TLEDGER_SIGNING_KEY", key)
        .env("TLEDGER_LOG", "warn")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn person(id: &str, unit: &str, category: &str, post: &str) -> Value {
    let mut body = official(id, unit);
    body["staff_category"] = json!(category);
    body["position"] = json!(post);
    body
}

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

fn place(
    enrollment: &str,
    official_id: &str,
    unit: &str,
    program: Value,
    funding: Value,
    on: &str,
) -> Value {
    let mut body = nomination(enrollment, on);
    body["official_id"] = json!(official_id);
    body["nominating_unit_id"] = json!(unit);
    body["program"] = program;
    body["funding"] = funding;
    body
}

async fn post_all(ledger: &Ledger, commands: Vec<(&str, Value)>) -> Vec<Value> {
    let mut answers = Vec::new();
    for (name, body) in commands {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name} {body}: {answer}");
        answers.push(answer);
    }
    answers
}

/// Lets the completion policy record what completions imply.
async fn settle_policy(ledger: &Ledger) {
    tokio::time::sleep(Duration::from_millis(150)).await;
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
}

/// The district's history; returns the RFC 3339 instant the position just
/// before the reorganisations was recorded at (a `known_at` cut).
async fn history(ledger: &Ledger) -> String {
    // quang-nam > dai-loc > dai-loc-dai-an; dien-ban; o-1 (cadre, dai-an).
    ledger.seed().await;
    let answers = post_all(
        ledger,
        vec![
            ("register_unit", json!({"unit_id": "dai-loc-dai-hiep", "name": "Đại Hiệp", "level": "commune", "parent_id": "dai-loc", "effective_date": "1997-01-01"})),
            ("register_unit", json!({"unit_id": "dai-loc-dai-son", "name": "Đại Sơn", "level": "commune", "parent_id": "dai-loc", "effective_date": "1997-01-01"})),
            ("register_official", person("o-2", "dai-loc-dai-an", "civil_servant", "land_construction")),
            ("register_official", person("o-3", "dai-loc-dai-son", "civil_servant", "police_chief")),
            ("register_official", person("o-4", "dai-loc-dai-hiep", "cadre", "front_chair")),
            ("register_official", person("o-5", "dien-ban", "civil_servant", "finance_accounting")),
            ("register_official", person("o-6", "dai-loc-dai-son", "cadre", "party_secretary")),
            ("register_official", person("o-7", "dai-loc-dai-hiep", "civil_servant", "culture_social")),
            ("assign_position", json!({"official_id": "o-5", "unit_id": "dai-loc-dai-hiep", "staff_category": "civil_servant", "position": "finance_accounting", "effective_date": "2010-01-01"})),
            ("record_leaving", json!({"official_id": "o-6", "reason": "retired", "effective_date": "2011-06-30"})),
            ("record_qualification", qualification("o-1", "general_education", "upper_secondary", None, "1990-06-01")),
            ("record_qualification", qualification("o-1", "political_theory", "intermediate", None, "2003-06-01")),
            ("record_qualification", qualification("o-2", "general_education", "upper_secondary", None, "1990-06-01")),
            ("record_qualification", qualification("o-2", "professional", "university", Some("law"), "2000-06-01")),
            ("record_qualification", qualification("o-3", "professional", "intermediate", Some("police"), "2001-06-01")),
            ("record_qualification", qualification("o-5", "professional", "college", Some("accounting"), "2002-06-01")),
            ("record_qualification", qualification("o-6", "professional", "university", Some("public_admin"), "2005-06-01")),
            ("record_qualification", qualification("o-6", "political_theory", "advanced", None, "2006-06-01")),
            ("plan", json!({"official_id": "o-1", "target_position": "party_secretary", "period_from": 2010, "period_to": 2015, "planned_specialty": "public_admin", "effective_date": "2010-01-01"})),
            ("plan", json!({"official_id": "o-2", "target_position": "land_construction", "period_from": 2008, "period_to": 2012, "planned_specialty": "land_management", "effective_date": "2008-01-01"})),
            ("nominate", nomination("e-1", "2008-08-15")),
            ("enroll", json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"})),
            ("nominate", place("e-2", "o-3", "dai-loc-dai-son",
                json!({"track": "professional", "level": "college", "specialty": "police", "title": "Cao đẳng An ninh"}),
                json!([{"source": "province", "amount_vnd": 12000000}, {"source": "self", "amount_vnd": 3000000}]),
                "2009-01-10")),
            ("enroll", json!({"enrollment_id": "e-2", "effective_date": "2009-02-01"})),
            ("nominate", place("e-3", "o-2", "dai-loc-dai-an",
                json!({"track": "refresher", "title": "Bồi dưỡng nghiệp vụ"}),
                json!([{"source": "agency", "amount_vnd": 800000}]),
                "2009-02-01")),
            ("enroll", json!({"enrollment_id": "e-3", "effective_date": "2009-03-01"})),
            ("withdraw", json!({"enrollment_id": "e-3", "reason": "illness", "effective_date": "2009-04-01"})),
            ("nominate", place("e-4", "o-4", "dai-loc-dai-hiep",
                json!({"track": "political_theory", "level": "intermediate", "title": "Trung cấp LLCT"}),
                json!([{"source": "district", "amount_vnd": 5000000}, {"source": "other", "amount_vnd": 250000}]),
                "2011-11-01")),
            ("enroll", json!({"enrollment_id": "e-4", "effective_date": "2012-01-05"})),
            ("nominate", place("e-5", "o-7", "dai-loc-dai-hiep",
                json!({"track": "professional", "level": "university", "specialty": "culture", "title": "Đại học Văn hóa"}),
                json!([{"source": "district", "amount_vnd": 7000000}]),
                "2010-03-01")),
            ("cancel", json!({"enrollment_id": "e-5", "reason": "not admitted", "effective_date": "2010-04-01"})),
            ("nominate", place("e-6", "o-2", "dai-loc-dai-an",
                json!({"track": "professional", "level": "university", "specialty": "public_admin", "title": "Đại học Hành chính"}),
                json!([{"source": "district", "amount_vnd": 9000000}]),
                "2009-05-01")),
            ("enroll", json!({"enrollment_id": "e-6", "effective_date": "2009-09-01"})),
            ("fail", json!({"enrollment_id": "e-6", "reason": "exam", "effective_date": "2011-06-30"})),
        ],
    )
    .await;
    let law = answers[13]["events"][0]["id"]
        .as_str()
        .expect("an event id")
        .to_owned();
    post_all(
        ledger,
        vec![(
            "complete",
            json!({"enrollment_id": "e-1", "result": "good", "certificate": {"kind": "diploma", "number": "CD-1"}, "effective_date": "2010-06-30"}),
        )],
    )
    .await;
    settle_policy(ledger).await;
    let before = ledger.projected().await;
    let known_at: String = sqlx::query_scalar(
        "SELECT to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
         FROM events WHERE position = $1",
    )
    .bind(i64::try_from(before).expect("a position"))
    .fetch_one(ledger.store.pool())
    .await
    .expect("recorded_at");
    // Recorded later: the reorganisations, a retraction, a second ruleset.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut ruleset, _) = reference_data::shipped()
        .expect("shipped reference data")
        .into_iter()
        .find(|(p, _)| p.kind == ReferenceKind::Ruleset)
        .expect("a shipped ruleset");
    ruleset.name = "qd99-2012".parse().expect("a reference name");
    ruleset.effective_date = "2012-01-01".parse().expect("a date");
    post_all(
        ledger,
        vec![
            ("reorganise_unit", json!({"unit_id": "dai-loc-dai-son", "dissolved_into": "dai-loc-dai-hiep", "effective_date": "2011-01-01"})),
            ("reorganise_unit", json!({"unit_id": "dai-loc-dai-hiep", "parent_id": "dien-ban", "effective_date": "2012-06-01"})),
            ("retract", json!({"event_id": law, "reason": "recorded for the wrong person", "effective_date": "2011-03-01"})),
            ("record_qualification", qualification("o-7", "professional", "intermediate", Some("culture"), "2008-06-01")),
            ("publish_reference", serde_json::to_value(&ruleset).expect("JSON")),
        ],
    )
    .await;
    known_at
}

/// The query string of a report, as the server takes it.
fn query(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The replay's arguments for the same parameters.
fn replay_args<'a>(
    archive: &'a Path,
    public: &'a str,
    name: &'a str,
    params: &[(&'a str, &'a str)],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "replay".into(),
        path(archive).into(),
        "--public-key".into(),
        public.into(),
        "report".into(),
        name.into(),
    ];
    for (k, v) in params {
        args.push(format!("--{}", k.replace('_', "-")));
        args.push((*v).into());
    }
    args
}

struct Archive {
    file: PathBuf,
    key: PathBuf,
}

impl Drop for Archive {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_file(&self.key);
    }
}

#[tokio::test]
async fn a_report_replayed_from_an_export_is_the_servers_body_byte_for_byte() {
    let ledger = spawn_app().await;
    let known_at = history(&ledger).await;
    let head = ledger.projected().await;
    let database = ledger._db.url().to_owned();

    let archive = Archive {
        file: std::env::temp_dir().join(format!("replay-{}.jsonl.gz", Uuid::new_v4())),
        key: std::env::temp_dir().join(format!("replay-{}.key", Uuid::new_v4())),
    };
    let signer = generate_signing_key(&archive.key).expect("a key");
    let public = signer.public_hex();
    let signed = tledger(&database, &archive.key, &["checkpoint"]);
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    let exported = tledger(&database, &archive.key, &["export", path(&archive.file)]);
    assert_eq!(
        exported.status.code(),
        Some(0),
        "{}",
        text(&exported.stderr)
    );
    assert!(
        text(&exported.stdout).starts_with(&format!("exported positions 1 to {head} ")),
        "{}",
        text(&exported.stdout)
    );

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "training-volume",
            vec![("from", "2007-01-01"), ("to", "2011-12-31")],
        ),
        (
            "training-volume",
            vec![
                ("unit", "dai-loc"),
                ("from", "2007-01-01"),
                ("to", "2011-12-31"),
            ],
        ),
        (
            "training-volume",
            vec![
                ("unit", "dai-loc-dai-hiep"),
                ("from", "2007-01-01"),
                ("to", "2010-12-31"),
            ],
        ),
        (
            "training-volume",
            vec![
                ("unit", "dai-loc-dai-hiep"),
                ("from", "2007-01-01"),
                ("to", "2011-12-31"),
            ],
        ),
        (
            "training-volume",
            vec![
                ("unit", "dien-ban"),
                ("from", "2008-01-01"),
                ("to", "2012-12-31"),
            ],
        ),
        (
            "training-volume",
            vec![("unit", "dai-loc"), ("to", "2012-12-31")],
        ),
        (
            "training-volume",
            vec![
                ("unit", "dai-loc"),
                ("from", "2007-01-01"),
                ("to", "2012-12-31"),
                ("known_at", &known_at),
            ],
        ),
        (
            "standards",
            vec![("unit", "dai-loc"), ("as_of", "2011-12-31")],
        ),
        (
            "standards",
            vec![("unit", "dai-loc"), ("as_of", "2009-12-31")],
        ),
        (
            "standards",
            vec![("unit", "dai-loc-dai-hiep"), ("as_of", "2011-06-30")],
        ),
        ("standards", vec![("as_of", "2012-06-30")]),
        (
            "standards",
            vec![("as_of", "2012-06-30"), ("known_at", &known_at)],
        ),
        (
            "standards",
            vec![("unit", "dien-ban"), ("as_of", "2012-12-31")],
        ),
        (
            "alignment",
            vec![("unit", "dai-loc"), ("as_of", "2011-12-31")],
        ),
        ("alignment", vec![("as_of", "2012-12-31")]),
        (
            "alignment",
            vec![
                ("unit", "dai-loc"),
                ("as_of", "2010-12-31"),
                ("known_at", &known_at),
            ],
        ),
        (
            "alignment",
            vec![("unit", "dai-loc-dai-hiep"), ("as_of", "2011-12-31")],
        ),
    ];
    let mut figures_seen = std::collections::BTreeSet::new();
    for (name, params) in &cases {
        let mut http_params = params.clone();
        let at = head.to_string();
        if !params.iter().any(|(k, _)| *k == "known_at") {
            http_params.push(("at_position", &at));
        }
        let url = format!("/v1/reports/{name}?{}", query(&http_params));
        let (status, body) = ledger.get(&url, Some(&ledger.admin), false).await;
        assert_eq!(status, 200, "{url}: {body}");
        let replayed = tledger(
            &database,
            &archive.key,
            &replay_args(&archive.file, &public, name, params)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            replayed.status.code(),
            Some(0),
            "{url}: {}",
            text(&replayed.stderr)
        );
        let printed = text(&replayed.stdout);
        assert_eq!(printed.strip_suffix('\n'), Some(body.as_str()), "{url}");
        figures_seen.insert(body);
    }
    // The cases are not all the same empty answer.
    assert!(figures_seen.len() >= cases.len() - 1, "{figures_seen:?}");

    // Spot checks of the history's effects, on the replayed answers.
    let replayed_json = |name: &str, params: &[(&str, &str)]| -> Value {
        let out = tledger(
            &database,
            &archive.key,
            &replay_args(&archive.file, &public, name, params)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    // e-2 was nominated by dai-son, dissolved into dai-hiep on 2011-01-01.
    let before = replayed_json(
        "training-volume",
        &[
            ("unit", "dai-loc-dai-hiep"),
            ("from", "2007-01-01"),
            ("to", "2010-12-31"),
        ],
    );
    let after = replayed_json(
        "training-volume",
        &[
            ("unit", "dai-loc-dai-hiep"),
            ("from", "2007-01-01"),
            ("to", "2011-12-31"),
        ],
    );
    assert_eq!(
        (before["total"].clone(), after["total"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(after["funding_vnd"]["province"], 12_000_000);
    let latest = replayed_json("standards", &[("as_of", "2012-06-30")]);
    let then = replayed_json(
        "standards",
        &[("as_of", "2012-06-30"), ("known_at", &known_at)],
    );
    assert_eq!(
        (latest["ruleset"].clone(), then["ruleset"].clone()),
        (json!("qd99-2012"), json!("qd04-2004"))
    );
    assert_eq!(latest["position"], head);
    assert!(then["position"].as_u64().expect("a position") < head);

    // Errors as the server words them, and nothing on standard output.
    for (name, params, status) in [
        (
            "standards",
            vec![("unit", "nowhere"), ("as_of", "2011-12-31")],
            404,
        ),
        ("standards", vec![("as_of", "2003-01-01")], 422),
    ] {
        let at = head.to_string();
        let mut http_params = params.clone();
        http_params.push(("at_position", &at));
        let url = format!("/v1/reports/{name}?{}", query(&http_params));
        let (got, body) = ledger.get(&url, Some(&ledger.admin), false).await;
        assert_eq!(got, status, "{url}: {body}");
        let message = serde_json::from_str::<Value>(&body).expect("JSON")["error"]["message"]
            .as_str()
            .expect("a message")
            .to_owned();
        let replayed = tledger(
            &database,
            &archive.key,
            &replay_args(&archive.file, &public, name, &params)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(replayed.status.code(), Some(1), "{url}");
        assert_eq!(text(&replayed.stdout), "");
        assert!(
            text(&replayed.stderr).contains(&message),
            "{message}: {}",
            text(&replayed.stderr)
        );
    }

    // CSV as the server gives it with `Accept: text/csv`.
    for (name, params) in [
        (
            "standards",
            vec![("unit", "dai-loc"), ("as_of", "2011-12-31")],
        ),
        (
            "training-volume",
            vec![
                ("unit", "dai-loc"),
                ("from", "2007-01-01"),
                ("to", "2011-12-31"),
            ],
        ),
        (
            "alignment",
            vec![("unit", "dai-loc"), ("as_of", "2011-12-31")],
        ),
    ] {
        let at = head.to_string();
        let mut http_params = params.clone();
        http_params.push(("at_position", &at));
        let url = format!("/v1/reports/{name}?{}", query(&http_params));
        let (status, csv) = ledger.get(&url, Some(&ledger.admin), true).await;
        assert_eq!(status, 200, "{url}: {csv}");
        let mut args = replay_args(&archive.file, &public, name, &params);
        args.extend(["--format".to_owned(), "csv".to_owned()]);
        let replayed = tledger(
            &database,
            &archive.key,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(
            replayed.status.code(),
            Some(0),
            "{url}: {}",
            text(&replayed.stderr)
        );
        assert_eq!(text(&replayed.stdout), csv, "{url}");
    }

    // Without `report` it still only verifies.
    let verified = tledger(
        &database,
        &archive.key,
        &["replay", path(&archive.file), "--public-key", &public],
    );
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    assert!(text(&verified.stdout).starts_with(&format!(
        "verified: {head} events up to position {head}, 1 checkpoint(s)"
    )));
}
