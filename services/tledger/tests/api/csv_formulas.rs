//! No CSV the ledger writes has a cell a spreadsheet would run as a
//! formula: text beginning with `=`, `+`, `-`, `@`, a tab or a carriage
//! return is written with a leading `'` (OWASP's rule), while numbers stay
//! numbers. Checked on every CSV endpoint (the trails over HTTP and from the
//! command line, the reports, the dashboard's tables and a person's history)
//! with facts whose text was chosen to look like formulas, and on the Excel
//! workbooks, whose text cells are strings, never formulas.

use crate::support;

use std::io::Read as _;

use serde_json::{json, Value};
use support::{nomination, official, spawn_app, Ledger};
use tledger::access::{Access, Role};
use tledger::audit_trail::{render, HistoryRequest, Trail};
use tledger::presentation::Format;

const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
const VIEW: &str = "unit=dai-loc&as_of=2011-12-31";

async fn post(
    ledger: &Ledger,
    token: &str,
    name: &str,
    body: Value,
    correlation: Option<&str>,
) -> Value {
    let mut request = ledger
        .http
        .post(format!("{}/v1/commands/{name}", ledger.base))
        .header("authorization", format!("Bearer {token}"))
        .json(&body);
    if let Some(correlation) = correlation {
        request = request.header("x-correlation-id", correlation);
    }
    let response = request.send().await.expect("HTTP");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{name}: {answer}");
    answer
}

fn event_id(answer: &Value) -> Value {
    answer["events"][0]["id"].clone()
}

/// RFC 4180 records: quoted cells may hold commas, doubled quotes and line
/// breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(!quoted, "a quoted cell is closed: {text}");
    if !cell.is_empty() || !record.is_empty() {
        record.push(cell);
        records.push(record);
    }
    records
}

/// The CSV's rows as (column → cell) maps, after checking that no cell
/// starts a formula.
fn rows(what: &str, text: &str) -> Vec<serde_json::Map<String, Value>> {
    let records = parse_csv(text);
    let (header, body) = records.split_first().expect("a header");
    for record in &records {
        assert_eq!(record.len(), header.len(), "{what}: {text}");
        for cell in record {
            assert!(
                !cell.starts_with(FORMULA_START),
                "{what}: the cell {cell:?} would be a formula"
            );
        }
    }
    body.iter()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.iter().map(|c| json!(c)))
                .collect()
        })
        .collect()
}

async fn csv(ledger: &Ledger, path: &str) -> String {
    let (status, body) = ledger.get(path, Some(&ledger.admin), true).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn download(ledger: &Ledger, path: &str) -> Vec<u8> {
    let response = ledger
        .http
        .get(format!("{}{path}", ledger.base))
        .header("authorization", format!("Bearer {}", ledger.admin))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.bytes().await.expect("body").to_vec()
}

fn workbook_part(bytes: Vec<u8>, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an xlsx is a zip");
    let mut part = String::new();
    archive
        .by_name(name)
        .expect("the part")
        .read_to_string(&mut part)
        .expect("XML");
    part
}

#[tokio::test]
async fn no_csv_cell_starts_a_formula_and_no_workbook_cell_is_one() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let (_, clerk) = Access::new(ledger.store.clone())
        .create(Role::Admin, None, None, "@SUM(A1)")
        .await
        .expect("token");
    let mut person = official("-A1", "dai-loc-dai-an");
    person["position_title"] = json!("@SUM(A1)");
    post(
        &ledger,
        &clerk,
        "register_official",
        person,
        Some("=HYPERLINK(\"http://x\")"),
    )
    .await;
    let mut place = nomination("-B2", "2008-08-01");
    place["official_id"] = json!("-A1");
    post(&ledger, &ledger.admin, "nominate", place, Some("+1")).await;
    post(
        &ledger,
        &ledger.admin,
        "enroll",
        json!({"enrollment_id": "-B2", "effective_date": "2008-09-01"}),
        None,
    )
    .await;
    for (year, reason) in [(2009, "=1+1"), (2010, "\tlooks like a tab")] {
        let rated = post(
            &ledger,
            &ledger.admin,
            "rate",
            json!({"official_id": "-A1", "year": year, "rating": "good", "effective_date": format!("{year}-12-31")}),
            None,
        )
        .await;
        post(
            &ledger,
            &ledger.admin,
            "retract",
            json!({"event_id": event_id(&rated), "reason": reason, "effective_date": "2011-01-10"}),
            Some("-2"),
        )
        .await;
    }
    while ledger.commands.policy_step().await.expect("policy") > 0 {}
    ledger.projected().await;

    // The person's trail over HTTP.
    let trail_csv = csv(&ledger, "/v1/officials/-A1/history").await;
    let trail = rows("the person's trail", &trail_csv);
    let registered = &trail[0];
    assert_eq!(registered["type"], "official.registered.v1");
    assert_eq!(registered["actor"], "'@SUM(A1)");
    assert_eq!(registered["publisher"], "/commands/@SUM(A1)");
    assert_eq!(registered["correlation_id"], "'=HYPERLINK(\"http://x\")");
    let data = registered["data"].as_str().expect("data");
    assert!(
        data.starts_with('{') && data.contains("\"position_title\":\"@SUM(A1)\""),
        "the data column is JSON text, its values inside: {data}"
    );
    let reasons: Vec<&Value> = trail
        .iter()
        .filter(|r| r["type"] == "official.rated.v1")
        .map(|r| &r["retracted_by_reason"])
        .collect();
    assert_eq!(reasons, vec!["'=1+1", "'\tlooks like a tab"]);
    let retractions: Vec<&Value> = trail
        .iter()
        .filter(|r| r["type"] == "fact.retracted.v1")
        .map(|r| &r["correlation_id"])
        .collect();
    assert_eq!(retractions, vec!["'-2", "'-2"]);
    assert!(
        trail.iter().all(|r| r["position"]
            .as_str()
            .is_some_and(|p| p.parse::<u64>().is_ok())),
        "positions are numbers"
    );
    // `tledger history --format csv` writes the same bytes.
    let printed = render(
        &ledger.store,
        &HistoryRequest {
            trail: Trail::Official,
            id: "-A1".into(),
            from: None,
            to: None,
            types: Vec::new(),
            format: Format::Csv,
        },
    )
    .await
    .expect("tledger history");
    assert_eq!(printed, trail_csv);

    // The training place's trail.
    let place = rows(
        "the place's trail",
        &csv(&ledger, "/v1/enrollments/-B2/history").await,
    );
    assert_eq!(place[0]["type"], "training.nominated.v1");
    assert_eq!(place[0]["correlation_id"], "'+1");

    // The reports: ids that begin with `-` are text; counts stay numbers.
    let alignment = rows(
        "the alignment report",
        &csv(&ledger, &format!("/v1/reports/alignment?{VIEW}")).await,
    );
    assert_eq!(alignment.len(), 1, "{alignment:?}");
    assert_eq!(alignment[0]["enrollment_id"], "'-B2");
    assert_eq!(alignment[0]["official_id"], "'-A1");
    let standards = csv(&ledger, &format!("/v1/reports/standards?{VIEW}")).await;
    rows("the standards report", &standards);
    assert!(
        standards.contains("\nmeets_all_standards,0,2,0.0\n"),
        "{standards}"
    );
    let volume = csv(
        &ledger,
        "/v1/reports/training-volume?unit=dai-loc&from=2007-01-01&to=2011-12-31",
    )
    .await;
    rows("the volume report", &volume);
    assert!(
        volume.contains("\nprofessional,intermediate,1\n"),
        "{volume}"
    );

    // The dashboard's downloads.
    let table = rows(
        "the dashboard's alignment table",
        &String::from_utf8(download(&ledger, &format!("/exports/alignment.csv?{VIEW}")).await)
            .expect("UTF-8"),
    );
    assert_eq!(table[0]["official_id"], "'-A1");
    for name in ["standards", "trend", "volume", "funding"] {
        let text =
            String::from_utf8(download(&ledger, &format!("/exports/{name}.csv?{VIEW}")).await)
                .expect("UTF-8");
        rows(name, &text);
    }
    let history = rows(
        "the dashboard's history of the person",
        &String::from_utf8(download(&ledger, "/people/-A1/history.csv").await).expect("UTF-8"),
    );
    assert_eq!(history[0]["actor"], "'@SUM(A1)");

    // The workbooks: text cells are strings (`t="s"`), and none is a formula.
    for path in [
        "/people/-A1/history.xlsx".to_owned(),
        format!("/exports/alignment.xlsx?{VIEW}"),
    ] {
        let bytes = download(&ledger, &path).await;
        let sheet = workbook_part(bytes.clone(), "xl/worksheets/sheet1.xml");
        assert!(
            !sheet.contains("<f>") && !sheet.contains("<f "),
            "{path}: {sheet}"
        );
        assert!(sheet.contains("t=\"s\""), "{path}: {sheet}");
        let strings = workbook_part(bytes, "xl/sharedStrings.xml");
        let expected = if path.contains("history") {
            "@SUM(A1)"
        } else {
            "-A1"
        };
        assert!(
            strings.contains(&format!(">{expected}<")),
            "{path}: the text as it is: {strings}"
        );
    }
}
