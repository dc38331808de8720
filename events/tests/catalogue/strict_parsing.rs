//! Strict parsing of a fact's data: each refusal with its exact kind,
//! JSON Pointer and the gist of its message.

use serde_json::{json, Value};
use tledger_events::FactErrorKind::{InvalidValue, Malformed};
use tledger_events::{Fact, FactType};

use crate::support::{
    assert_error, completion, failure, nomination, official_registered, parse, plan, qualification,
    remove, reorganisation, ruleset, set, taxonomy, with,
};

#[test]
fn the_example_documents_are_accepted() {
    let cases = [
        (FactType::TrainingNominated, nomination()),
        (FactType::OfficialRegistered, official_registered()),
        (FactType::TrainingCompleted, completion()),
        (FactType::TrainingFailed, failure()),
        (FactType::Planned, plan()),
        (FactType::QualificationRecorded, qualification()),
        (FactType::UnitReorganised, reorganisation()),
        (FactType::ReferencePublished, ruleset()),
        (FactType::ReferencePublished, taxonomy()),
    ];
    for (t, doc) in cases {
        let fact = parse(t, &doc).unwrap_or_else(|e| panic!("{t} should be accepted: {e}"));
        assert_eq!((fact.fact_type(), fact.data()), (t, doc));
    }
}

#[test]
fn it_should_not_accept_a_body_that_is_not_json() {
    assert_error(
        Fact::from_slice(FactType::TrainingNominated, b"{\"enrollment_id\": "),
        Malformed,
        "",
        "the body is not JSON",
    );
}

#[test]
fn it_should_not_accept_data_that_is_not_an_object() {
    assert_error(
        parse(FactType::TrainingEnrolled, &json!("dl-2008-0001")),
        Malformed,
        "",
        "invalid type: string \"dl-2008-0001\"",
    );
}

#[test]
fn it_should_not_accept_an_array_in_place_of_an_object() {
    assert_error(
        parse(
            FactType::TrainingEnrolled,
            &json!(["dl-2008-0001", "2008-09-01"]),
        ),
        Malformed,
        "",
        "expected an object",
    );
    let institution_as_array = with(&nomination(), |d| {
        set(
            d,
            "/institution",
            json!(["qn-political-school", "Trường Chính trị Quảng Nam", true]),
        );
    });
    assert_error(
        parse(FactType::TrainingNominated, &institution_as_array),
        Malformed,
        "/institution",
        "expected an object",
    );
    let funding_line_as_array = with(&nomination(), |d| set(d, "/funding/1", json!(["self", 0])));
    assert_error(
        parse(FactType::TrainingNominated, &funding_line_as_array),
        Malformed,
        "/funding/1",
        "expected an object",
    );
}

#[test]
fn it_should_not_accept_a_missing_field() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| remove(d, "/program/title")),
        ),
        Malformed,
        "/program/title",
        "missing field `title`",
    );
    assert_error(
        parse(
            FactType::OfficialRegistered,
            &with(&official_registered(), |d| remove(d, "/effective_date")),
        ),
        Malformed,
        "/effective_date",
        "missing field `effective_date`",
    );
}

#[test]
fn it_should_not_accept_an_unknown_field() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| set(d, "/foo", json!(1))),
        ),
        Malformed,
        "/foo",
        "unknown field `foo`",
    );
}

#[test]
fn it_should_not_accept_an_unknown_nested_field_and_escapes_its_name_in_the_pointer() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| set(d, "/program/a~b", json!(1))),
        ),
        Malformed,
        "/program/a~0b",
        "unknown field `a~b`",
    );
    let mut doc = nomination();
    doc["funding"][0]["per/person"] = json!(true);
    assert_error(
        parse(FactType::TrainingNominated, &doc),
        Malformed,
        "/funding/0/per~1person",
        "new fields mean a new version",
    );
}

#[test]
fn it_should_not_accept_a_string_for_a_boolean() {
    assert_error(
        parse(
            FactType::OfficialRegistered,
            &with(&official_registered(), |d| {
                set(d, "/ethnic_minority", json!("no"))
            }),
        ),
        Malformed,
        "/ethnic_minority",
        "invalid type: string \"no\", expected a boolean",
    );
}

#[test]
fn it_should_not_accept_a_float_amount() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| {
                set(d, "/funding/0/amount_vnd", json!(4500000.5))
            }),
        ),
        Malformed,
        "/funding/0/amount_vnd",
        "invalid type: floating point",
    );
}

#[test]
fn it_should_not_accept_an_id_with_a_dot() {
    assert_error(
        parse(
            FactType::OfficialRegistered,
            &with(&official_registered(), |d| {
                set(d, "/official_id", json!("dl.007"))
            }),
        ),
        InvalidValue,
        "/official_id",
        "may contain only A-Z a-z 0-9 _ -, not '.'",
    );
}

#[test]
fn it_should_not_accept_an_id_of_65_characters() {
    let long = "a".repeat(65);
    assert_error(
        parse(
            FactType::OfficialRegistered,
            &with(&official_registered(), |d| {
                set(d, "/official_id", json!(long))
            }),
        ),
        InvalidValue,
        "/official_id",
        "at most 64 characters, this one has 65",
    );
    let longest = "a".repeat(64);
    let accepted = parse(
        FactType::OfficialRegistered,
        &with(&official_registered(), |d| {
            set(d, "/official_id", json!(longest))
        }),
    )
    .expect("64 characters are allowed");
    assert_eq!(accepted.data()["official_id"], json!("a".repeat(64)));
}

#[test]
fn it_should_not_accept_an_empty_id() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| {
                set(d, "/institution/institution_id", json!(""))
            }),
        ),
        InvalidValue,
        "/institution/institution_id",
        "must not be empty",
    );
}

#[test]
fn it_should_not_accept_an_unknown_professional_level() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| set(d, "/program/level", json!("phd"))),
        ),
        InvalidValue,
        "/program/level",
        "unknown professional level \"phd\"; expected one of: none, elementary, intermediate",
    );
}

#[test]
fn it_should_not_accept_an_unknown_staff_category() {
    assert_error(
        parse(FactType::OfficialRegistered, &with(&official_registered(), |d| set(d, "/staff_category", json!("contractor")))),
        InvalidValue,
        "/staff_category",
        "unknown staff category code \"contractor\"; expected one of: cadre, civil_servant, part_time",
    );
}

#[test]
fn it_should_not_accept_a_negative_amount() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| {
                set(d, "/funding/0/amount_vnd", json!(-1))
            }),
        ),
        InvalidValue,
        "/funding/0/amount_vnd",
        "from 0 to 9007199254740991, not -1",
    );
}

#[test]
fn it_should_not_accept_an_amount_beyond_what_canonical_json_keeps_exactly() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| {
                set(d, "/funding/0/amount_vnd", json!(9_007_199_254_740_992i64))
            }),
        ),
        InvalidValue,
        "/funding/0/amount_vnd",
        "not 9007199254740992",
    );
}

#[test]
fn it_should_not_accept_a_level_on_a_refresher_programme() {
    let refresher = with(&nomination(), |d| {
        set(d, "/program/track", json!("refresher"))
    });
    assert_error(
        parse(FactType::TrainingNominated, &refresher),
        InvalidValue,
        "/program/level",
        "a refresher course has no level",
    );
}

#[test]
fn it_should_not_accept_a_degree_programme_without_a_level() {
    assert_error(
        parse(
            FactType::TrainingNominated,
            &with(&nomination(), |d| remove(d, "/program/level")),
        ),
        InvalidValue,
        "/program/level",
        "a professional programme needs a level",
    );
}

#[test]
fn it_should_not_accept_planned_start_after_planned_end() {
    let late_start = with(&nomination(), |d| {
        set(d, "/planned_start", json!("2010-07-01"))
    });
    assert_error(
        parse(FactType::TrainingNominated, &late_start),
        InvalidValue,
        "/planned_end",
        "planned_start 2010-07-01 is after planned_end 2010-06-30",
    );
    let same_day = with(&nomination(), |d| {
        set(d, "/planned_start", json!("2010-06-30"))
    });
    assert_eq!(
        parse(FactType::TrainingNominated, &same_day).map(|f| f.data()),
        Ok(same_day)
    );
}

#[test]
fn it_should_not_accept_period_from_after_period_to() {
    assert_error(
        parse(
            FactType::Planned,
            &with(&plan(), |d| set(d, "/period_from", json!(2016))),
        ),
        InvalidValue,
        "/period_to",
        "from 2016 to 2015: from is after to",
    );
}

#[test]
fn it_should_not_accept_a_date_that_is_not_yyyy_mm_dd_or_not_a_real_day() {
    for bad in [
        "2011-2-30",
        "2011-02-30",
        "2011-2-3",
        "30/12/2011",
        "2011-12-31T00:00:00Z",
    ] {
        assert_error(
            parse(
                FactType::TrainingFailed,
                &with(&failure(), |d| set(d, "/effective_date", json!(bad))),
            ),
            InvalidValue,
            "/effective_date",
            &format!("a date is a real calendar day written YYYY-MM-DD: {bad:?}"),
        );
    }
}

#[test]
fn it_should_not_accept_an_out_of_range_year() {
    assert_error(
        parse(
            FactType::OfficialRegistered,
            &with(&official_registered(), |d| {
                set(d, "/birth_year", json!(1899))
            }),
        ),
        InvalidValue,
        "/birth_year",
        "a year is from 1900 to 2200, not 1899",
    );
}

#[test]
fn it_should_not_accept_an_unknown_field_even_after_an_invalid_value() {
    // The invalid id comes first in the document, the unknown field last:
    // a malformed body (400) is reported before an invalid value (422).
    let body = br#"{"enrollment_id": "dl.2008", "reason": "sick", "effective_date": "2010-02-30", "zzz_note": "late"}"#;
    assert_error(
        Fact::from_slice(FactType::TrainingWithdrawn, body),
        Malformed,
        "/zzz_note",
        "unknown field `zzz_note`",
    );
    // Without the unknown field, the invalid value is reported.
    let body = br#"{"enrollment_id": "dl.2008", "reason": "sick", "effective_date": "2010-02-28"}"#;
    assert_error(
        Fact::from_slice(FactType::TrainingWithdrawn, body),
        InvalidValue,
        "/enrollment_id",
        "not '.'",
    );
}

#[test]
fn it_should_not_accept_a_wrong_type_even_after_an_unknown_code() {
    let doc = with(&official_registered(), |d| {
        set(d, "/gender", json!("unknown"));
        set(d, "/unit_id", json!(17));
    });
    assert_error(
        parse(FactType::OfficialRegistered, &doc),
        Malformed,
        "/unit_id",
        "invalid type: integer `17`, expected a string",
    );
}

#[test]
fn it_should_not_accept_a_score_of_11() {
    assert_error(
        parse(
            FactType::TrainingCompleted,
            &with(&completion(), |d| set(d, "/score", json!(11))),
        ),
        InvalidValue,
        "/score",
        "a score is from 0 to 10, not 11",
    );
}

#[test]
fn it_should_not_accept_a_blank_reason() {
    assert_error(
        parse(
            FactType::TrainingFailed,
            &with(&failure(), |d| set(d, "/reason", json!(" \t "))),
        ),
        InvalidValue,
        "/reason",
        "must not be empty or blank",
    );
    let retraction = json!({
        "event_id": "0190f7d2-8c1e-7a3b-9d4e-5f6a7b8c9d0e",
        "reason": "",
        "effective_date": "2011-01-01"
    });
    assert_error(
        parse(FactType::FactRetracted, &retraction),
        InvalidValue,
        "/reason",
        "must not be empty or blank",
    );
}

#[test]
fn it_should_not_accept_a_reorganisation_that_changes_nothing() {
    let nothing = with(&reorganisation(), |d| remove(d, "/dissolved_into"));
    assert_error(
        parse(FactType::UnitReorganised, &nothing),
        InvalidValue,
        "",
        "name one of name, parent_id, dissolved_into",
    );
}

#[test]
fn it_should_not_accept_a_unit_dissolved_into_itself_or_dissolved_and_re_parented() {
    assert_error(
        parse(
            FactType::UnitReorganised,
            &with(&reorganisation(), |d| {
                set(d, "/dissolved_into", json!("dai-loc-dai-an"))
            }),
        ),
        InvalidValue,
        "/dissolved_into",
        "cannot be dissolved into itself",
    );
    assert_error(
        parse(
            FactType::UnitReorganised,
            &with(&reorganisation(), |d| {
                set(d, "/parent_id", json!("dai-loc"))
            }),
        ),
        InvalidValue,
        "/parent_id",
        "a dissolved unit gets no new parent",
    );
}

#[test]
fn it_should_not_accept_a_qualification_on_the_refresher_track() {
    assert_error(
        parse(
            FactType::QualificationRecorded,
            &with(&qualification(), |d| set(d, "/track", json!("refresher"))),
        ),
        InvalidValue,
        "/track",
        "refresher courses grant a certificate, not a qualification level",
    );
}

#[test]
fn it_should_not_accept_a_blank_evidence_number() {
    assert_error(
        parse(
            FactType::QualificationRecorded,
            &with(&qualification(), |d| set(d, "/evidence/number", json!(""))),
        ),
        InvalidValue,
        "/evidence/number",
        "must not be empty or blank",
    );
}

#[test]
fn it_should_not_accept_a_ruleset_minimum_that_is_not_a_level_of_its_track() {
    let doc = with(&ruleset(), |d| {
        set(
            d,
            "/content/requirements/0/minimums/professional",
            json!("advanced"),
        );
    });
    assert_error(
        parse(FactType::ReferencePublished, &doc),
        InvalidValue,
        "/content/requirements/0",
        "group key_leaders: unknown professional level \"advanced\"",
    );
}

#[test]
fn it_should_not_accept_a_taxonomy_that_lists_a_position_twice() {
    let doc = with(&taxonomy(), |d| {
        set(d, "/content/positions/1/code", json!("party_secretary"))
    });
    assert_error(
        parse(FactType::ReferencePublished, &doc),
        InvalidValue,
        "/content/positions/1",
        "position party_secretary is listed twice",
    );
}

#[test]
fn it_should_not_accept_a_key_leader_who_is_not_a_cadre() {
    let doc = with(&taxonomy(), |d| {
        set(d, "/content/positions/1/key_leader", json!(true))
    });
    assert_error(
        parse(FactType::ReferencePublished, &doc),
        InvalidValue,
        "/content/positions/1",
        "position police_chief is flagged key_leader but key leaders are cadres, not civil_servant",
    );
}

#[test]
fn it_should_not_accept_reference_content_of_another_kind() {
    let doc = with(&taxonomy(), |d| set(d, "/kind", json!("ruleset")));
    assert_error(
        parse(FactType::ReferencePublished, &doc),
        Malformed,
        "/content/positions",
        "unknown field `positions`",
    );
}

#[test]
fn it_should_not_accept_reference_content_with_an_unknown_field_even_after_an_invalid_name() {
    // The content's shape is part of the fact's shape: 400 before 422.
    let doc = with(&taxonomy(), |d| {
        set(d, "/name", json!("nd92.2009"));
        set(d, "/content/positions/0/note", json!("x"));
    });
    assert_error(
        parse(FactType::ReferencePublished, &doc),
        Malformed,
        "/content/positions/0/note",
        "unknown field `note`",
    );
}

/// `doc` as JSON text with `member` written again first inside the object
/// that starts at `after` (`{` for the document).
fn with_repeated(doc: &Value, after: &str, member: &str) -> String {
    let text = doc.to_string();
    let at = text.find(after).expect("the object is in the text") + after.len();
    format!("{}{member},{}", &text[..at], &text[at..])
}

#[test]
fn it_should_not_accept_a_member_name_twice_at_any_depth() {
    for (after, member, pointer) in [
        ("{", r#""official_id":"other""#, "/official_id"),
        (r#""program":{"#, r#""title":"x""#, "/program/title"),
        (r#""funding":[{"#, r#""source":"self""#, "/funding/0/source"),
    ] {
        let text = with_repeated(&nomination(), after, member);
        assert_error(
            Fact::from_slice(FactType::TrainingNominated, text.as_bytes()),
            Malformed,
            pointer,
            "appears more than once",
        );
    }
    // A duplicate is malformed even where the rest is invalid too (400 first).
    let invalid = with(&nomination(), |d| set(d, "/official_id", json!("a.b")));
    let text = with_repeated(&invalid, r#""institution":{"#, r#""name":"x""#);
    assert_error(
        Fact::from_slice(FactType::TrainingNominated, text.as_bytes()),
        Malformed,
        "/institution/name",
        "appears more than once",
    );
}

#[test]
fn it_should_not_accept_nul_in_any_string() {
    for (pointer, value) in [
        ("/program/title", json!("Trung cấp\u{0}")),
        ("/decision_no", json!("\u{0}")),
        ("/official_id", json!("dl\u{0}")),
        ("/funding/1/source", json!("self\u{0}")),
    ] {
        let doc = with(&nomination(), |d| set(d, pointer, value));
        assert_error(
            Fact::from_slice(FactType::TrainingNominated, doc.to_string().as_bytes()),
            Malformed,
            pointer,
            "U+0000",
        );
    }
    let text = nomination()
        .to_string()
        .replacen('{', "{\"a\\u0000\":1,", 1);
    assert_error(
        Fact::from_slice(FactType::TrainingNominated, text.as_bytes()),
        Malformed,
        "",
        "member name holds U+0000",
    );
}

#[test]
fn it_should_not_accept_a_lone_surrogate_escape() {
    let text = nomination()
        .to_string()
        .replace("Trung cấp Địa chính", "\\ud800");
    assert_error(
        Fact::from_slice(FactType::TrainingNominated, text.as_bytes()),
        Malformed,
        "",
        "the body is not JSON",
    );
}

fn funding_lines(lines: usize, amount: i64) -> Value {
    Value::Array(vec![
        json!({"source": "district", "amount_vnd": amount});
        lines
    ])
}

#[test]
fn a_nomination_at_the_door_has_at_most_16_funding_lines_of_at_most_10_to_the_12_dong() {
    let many = with(&nomination(), |d| set(d, "/funding", funding_lines(17, 1)));
    assert_error(
        Fact::admit(FactType::TrainingNominated, &many),
        InvalidValue,
        "/funding",
        "at most 16 funding lines",
    );
    let large = with(&nomination(), |d| {
        set(d, "/funding", funding_lines(4, 1));
        set(d, "/funding/3/amount_vnd", json!(1_000_000_000_001i64));
    });
    assert_error(
        Fact::admit(FactType::TrainingNominated, &large),
        InvalidValue,
        "/funding/3/amount_vnd",
        "at most 1000000000000",
    );
    let largest = with(&nomination(), |d| {
        set(d, "/funding", funding_lines(16, 1_000_000_000_000));
    });
    assert!(Fact::admit(FactType::TrainingNominated, &largest).is_ok());
    // Shape errors still come first.
    let also_malformed = with(&many, |d| set(d, "/planned_start", json!(20080901)));
    assert_error(
        Fact::admit(FactType::TrainingNominated, &also_malformed),
        Malformed,
        "/planned_start",
        "invalid type",
    );
}

#[test]
fn a_recorded_nomination_beyond_the_door_bounds_is_read_as_recorded() {
    // Recorded facts are never judged again: the door's bounds are not
    // part of the fact's rules.
    let old = with(&nomination(), |d| {
        set(d, "/funding", funding_lines(1100, (1 << 53) - 1));
    });
    let text = old.to_string();
    let read = Fact::from_recorded(FactType::TrainingNominated, &text).expect("recorded");
    assert_eq!(read.data(), old);
    assert!(Fact::from_data(FactType::TrainingNominated, &old).is_ok());
    assert!(Fact::admit(FactType::TrainingNominated, &old).is_err());
}
