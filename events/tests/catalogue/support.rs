//! Valid example documents and the error assertion shared by the tests.

use serde_json::{json, Value};
use tledger_events::{Fact, FactError, FactErrorKind, FactType};

/// Asserts the exact kind and pointer of an error, and a key part of its
/// message.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, FactError>,
    kind: FactErrorKind,
    pointer: &str,
    message_part: &str,
) {
    let err = result.expect_err("the input should have been refused");
    assert_eq!(
        (err.kind, err.pointer.as_str()),
        (kind, pointer),
        "wrong kind or pointer; the message was: {}",
        err.message
    );
    assert!(
        err.message.contains(message_part),
        "the message {:?} should contain {:?}",
        err.message,
        message_part
    );
}

/// Parses `data` as a fact of type `t`.
pub fn parse(t: FactType, data: &Value) -> Result<Fact, FactError> {
    Fact::from_data(t, data)
}

/// Sets the member at `pointer` (its parent must exist).
#[track_caller]
pub fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    match doc.pointer_mut(parent).expect("the parent exists") {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => {
            let i: usize = key.parse().expect("an array index");
            items[i] = value;
        }
        other => panic!("cannot set {key} in {other}"),
    }
}

/// Removes the member at `pointer`.
#[track_caller]
pub fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|map| map.remove(key))
        .expect("the member exists");
}

/// A copy of `doc` changed by `edit`.
pub fn with(doc: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut doc = doc.clone();
    edit(&mut doc);
    doc
}

pub fn nomination() -> Value {
    json!({
        "enrollment_id": "dl-2008-0001",
        "official_id": "dl-ai-nghia-007",
        "nominating_unit_id": "dai-loc-ai-nghia",
        "program": {
            "track": "professional",
            "level": "intermediate",
            "specialty": "land_management",
            "title": "Trung cấp Địa chính"
        },
        "institution": {
            "institution_id": "qn-political-school",
            "name": "Trường Chính trị Quảng Nam",
            "in_province": true
        },
        "planned_start": "2008-09-01",
        "planned_end": "2010-06-30",
        "funding": [
            { "source": "province", "amount_vnd": 4500000 },
            { "source": "self", "amount_vnd": 0 }
        ],
        "decision_no": "123/QĐ-UBND",
        "effective_date": "2008-08-15"
    })
}

pub fn official_registered() -> Value {
    json!({
        "official_id": "dl-ai-nghia-007",
        "full_name": "Nguyễn Thị Hoa",
        "birth_year": 1975,
        "gender": "female",
        "ethnic_minority": false,
        "unit_id": "dai-loc-ai-nghia",
        "staff_category": "civil_servant",
        "position": "land_construction",
        "effective_date": "2006-01-01"
    })
}

pub fn completion() -> Value {
    json!({
        "enrollment_id": "dl-2008-0001",
        "result": "good",
        "score": 8.25,
        "certificate": { "kind": "diploma", "number": "TC-2010-0042" },
        "effective_date": "2010-06-30"
    })
}

pub fn failure() -> Value {
    json!({
        "enrollment_id": "dl-2008-0001",
        "reason": "did not pass the final examination",
        "effective_date": "2010-06-30"
    })
}

pub fn plan() -> Value {
    json!({
        "official_id": "dl-ai-nghia-007",
        "target_position": "land_construction",
        "period_from": 2010,
        "period_to": 2015,
        "planned_specialty": "land_management",
        "effective_date": "2009-12-01"
    })
}

pub fn qualification() -> Value {
    json!({
        "official_id": "dl-ai-nghia-007",
        "track": "political_theory",
        "level": "intermediate",
        "evidence": { "kind": "diploma", "number": "LLCT-2009-77", "issued_by": "Trường Chính trị Quảng Nam" },
        "effective_date": "2009-05-20"
    })
}

pub fn reorganisation() -> Value {
    json!({
        "unit_id": "dai-loc-dai-an",
        "dissolved_into": "dai-loc-dai-nghia",
        "effective_date": "2025-07-01"
    })
}

pub fn ruleset() -> Value {
    json!({
        "kind": "ruleset",
        "name": "qd04-2004",
        "effective_date": "2004-01-01",
        "content": {
            "requirements": [
                {
                    "group": "key_leaders",
                    "staff_category": "cadre",
                    "key_leader": true,
                    "minimums": { "general_education": "upper_secondary", "professional": "intermediate" }
                }
            ]
        }
    })
}

pub fn taxonomy() -> Value {
    json!({
        "kind": "position_taxonomy",
        "name": "nd92-2009",
        "effective_date": "1990-01-01",
        "content": {
            "positions": [
                { "code": "party_secretary", "staff_category": "cadre", "key_leader": true,
                  "title_vi": "Bí thư Đảng ủy", "title_en": "Party committee secretary" },
                { "code": "police_chief", "staff_category": "civil_servant",
                  "title_vi": "Trưởng Công an", "title_en": "Police chief" }
            ]
        }
    })
}

/// A published CloudEvent carrying `data` of type `t`.
pub fn cloudevent(t: FactType, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": "moha-2008-000123",
        "source": "/publishers/qn-moha",
        "type": t.as_str(),
        "time": "2008-08-15T09:30:00+07:00",
        "datacontenttype": "application/json",
        "data": data
    })
}

/// `value` serialised, as a publisher sends it.
pub fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}
