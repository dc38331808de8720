//! Every valid fact survives its data and a CloudEvent unchanged.

use proptest::prelude::*;
use serde_json::{json, Value};
use tledger_events::reference_data::{self, ReferenceContent};
use tledger_events::{
    CloudEvent, CompletionResult, EvidenceKind, Fact, FactType, FundingSource, Gender, LeaveReason,
    RatingGrade, ReferenceKind, StaffCategory, Track, UnitLevel,
};

use crate::strategies;
use crate::support::{
    completion, nomination, official_registered, parse, qualification, set, with,
};

/// The properties every fact of type `t` has.
fn round_trips(
    t: FactType,
    fact: &Fact,
    source: &str,
    id: &str,
    time: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(fact.fact_type(), t);
    let data = fact.data();
    prop_assert_eq!(Fact::from_data(t, &data), Ok(fact.clone()));
    prop_assert_eq!(Fact::from_recorded(t, &data.to_string()), Ok(fact.clone()));
    prop_assert_eq!(
        data.get("effective_date"),
        Some(&Value::String(fact.effective_date().to_string()))
    );
    prop_assert_eq!(fact.stream().map(|s| s.aggregate), t.aggregate());

    let event = CloudEvent::for_fact(source, id, time, fact);
    prop_assert_eq!(event.event_type.as_str(), t.as_str());
    let body = serde_json::to_vec(&event).expect("an envelope serialises");
    let parsed = CloudEvent::parse_published(&body);
    prop_assert_eq!(parsed, Ok((event, fact.clone())));
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

macro_rules! round_trip_tests {
    ($($name:ident => $t:ident),+ $(,)?) => {
        /// The fact types the tests below cover, in catalogue order.
        const COVERED: &[FactType] = &[$(FactType::$t),+];

        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(
                    fact in strategies::fact(FactType::$t),
                    id in strategies::id_text(),
                    time in strategies::instant(),
                ) {
                    round_trips(FactType::$t, &fact, "/publishers/qn-moha", &id, &time)?;
                }
            )+
        }
    };
}

round_trip_tests! {
    reference_published_round_trips => ReferencePublished,
    unit_registered_round_trips => UnitRegistered,
    unit_reorganised_round_trips => UnitReorganised,
    official_registered_round_trips => OfficialRegistered,
    qualification_recorded_round_trips => QualificationRecorded,
    position_assigned_round_trips => PositionAssigned,
    planned_round_trips => Planned,
    rated_round_trips => Rated,
    left_round_trips => Left,
    training_nominated_round_trips => TrainingNominated,
    training_enrolled_round_trips => TrainingEnrolled,
    training_completed_round_trips => TrainingCompleted,
    training_failed_round_trips => TrainingFailed,
    training_withdrawn_round_trips => TrainingWithdrawn,
    training_cancelled_round_trips => TrainingCancelled,
    fact_retracted_round_trips => FactRetracted,
}

#[test]
fn the_round_trip_tests_cover_every_fact_type() {
    assert_eq!(COVERED, FactType::ALL);
    assert_eq!(FactType::ALL.len(), 16);
}

proptest! {
    #![proptest_config(config())]

    /// The content of a publication parses to the typed content it was made
    /// from, for every kind.
    #[test]
    fn reference_content_parses_to_what_it_was_made_from(
        (published, expected) in strategies::reference_published(),
    ) {
        let parsed = ReferenceContent::parse(published.kind, &published.content);
        let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(parsed.kind(), published.kind);
        prop_assert!(expected.matches(&parsed), "{:?} parsed as {:?}", expected, parsed);
    }

    /// A fact's type is parsed back from its wire name.
    #[test]
    fn fact_types_round_trip_through_their_wire_name(t in proptest::sample::select(FactType::ALL)) {
        prop_assert_eq!(t.as_str().parse::<FactType>(), Ok(t));
        prop_assert_eq!(t.to_string(), t.as_str());
    }
}

/// Recorded text that does not read as a well-formed fact gets the very
/// error the checked parse gives, named by its JSON Pointer.
#[test]
fn recorded_text_that_is_not_a_fact_gets_the_checked_parses_error() {
    let nominated = nomination();
    let cases = [
        with(&nominated, |d| set(d, "/official_id", json!("Not An Id"))),
        with(&nominated, |d| {
            set(d, "/funding/0/amount_vnd", json!("a lot"))
        }),
        with(&nominated, |d| set(d, "/unexpected", json!(1))),
        with(&nominated, |d| {
            set(d, "/effective_date", json!("2011-02-30"))
        }),
        json!([1, 2, 3]),
    ];
    for doc in cases {
        let checked = Fact::from_data(FactType::TrainingNominated, &doc);
        assert!(checked.is_err(), "{doc} should be refused");
        assert_eq!(
            Fact::from_recorded(FactType::TrainingNominated, &doc.to_string()),
            checked,
            "{doc}"
        );
    }
    let not_json = Fact::from_recorded(FactType::TrainingNominated, "{\"official_id\":");
    let error = not_json.expect_err("half a document is refused");
    assert!(error.to_string().contains("not JSON"), "{error}");
}

/// `doc` parses as a fact of type `t` whose data is `doc` again.
#[track_caller]
fn accepted_unchanged(t: FactType, doc: &Value) {
    let fact = parse(t, doc).unwrap_or_else(|e| panic!("{doc} should be accepted: {e}"));
    assert_eq!(fact.fact_type(), t);
    assert_eq!(&fact.data(), doc);
}

#[test]
fn every_code_of_every_closed_code_set_is_accepted() {
    let registered = official_registered();
    for c in StaffCategory::ALL {
        accepted_unchanged(
            FactType::OfficialRegistered,
            &with(&registered, |d| {
                set(d, "/staff_category", json!(c.as_str()))
            }),
        );
    }
    for g in Gender::ALL {
        accepted_unchanged(
            FactType::OfficialRegistered,
            &with(&registered, |d| set(d, "/gender", json!(g.as_str()))),
        );
    }
    for l in UnitLevel::ALL {
        let unit = json!({"unit_id": "dai-loc", "name": "Huyện Đại Lộc", "level": l.as_str(),
                          "parent_id": "quang-nam", "effective_date": "1997-01-01"});
        accepted_unchanged(FactType::UnitRegistered, &unit);
    }
    for r in RatingGrade::ALL {
        let rated = json!({"official_id": "o-1", "year": 2011, "rating": r.as_str(), "effective_date": "2011-12-20"});
        accepted_unchanged(FactType::Rated, &rated);
    }
    for r in LeaveReason::ALL {
        let left =
            json!({"official_id": "o-1", "reason": r.as_str(), "effective_date": "2011-12-20"});
        accepted_unchanged(FactType::Left, &left);
    }
    for r in CompletionResult::ALL {
        accepted_unchanged(
            FactType::TrainingCompleted,
            &with(&completion(), |d| set(d, "/result", json!(r.as_str()))),
        );
    }
    for k in EvidenceKind::ALL {
        accepted_unchanged(
            FactType::TrainingCompleted,
            &with(&completion(), |d| {
                set(d, "/certificate/kind", json!(k.as_str()))
            }),
        );
        accepted_unchanged(
            FactType::QualificationRecorded,
            &with(&qualification(), |d| {
                set(d, "/evidence/kind", json!(k.as_str()))
            }),
        );
    }
    for s in FundingSource::ALL {
        accepted_unchanged(
            FactType::TrainingNominated,
            &with(&nomination(), |d| {
                set(d, "/funding/1/source", json!(s.as_str()))
            }),
        );
    }
    for (file, text) in reference_data::SHIPPED {
        let data: Value = serde_json::from_str(text).expect("a shipped file is JSON");
        let kind: ReferenceKind = data["kind"]
            .as_str()
            .expect("a kind")
            .parse()
            .expect("a known kind");
        assert!(ReferenceKind::ALL.contains(&kind), "{file}");
        accepted_unchanged(FactType::ReferencePublished, &data);
    }
    let shipped_kinds: Vec<ReferenceKind> = reference_data::shipped()
        .expect("the shipped files parse")
        .iter()
        .map(|(p, _)| p.kind)
        .collect();
    assert_eq!(shipped_kinds, ReferenceKind::ALL);
}

#[test]
fn every_level_of_every_track_is_accepted_on_a_programme_and_as_a_qualification() {
    let mut seen = 0;
    for track in Track::ALL {
        let levels: Vec<&str> = match track.ordered_levels() {
            Some(levels) => levels.iter().map(|(code, _)| *code).collect(),
            None if track.is_degree() => vec!["B1", "IELTS_6-5"],
            None => vec![],
        };
        for level in &levels {
            seen += 1;
            let program = json!({"track": track.as_str(), "level": level, "title": "Khóa học"});
            accepted_unchanged(
                FactType::TrainingNominated,
                &with(&nomination(), |d| set(d, "/program", program)),
            );
            let q = with(&qualification(), |d| {
                set(d, "/track", json!(track.as_str()));
                set(d, "/level", json!(level));
            });
            accepted_unchanged(FactType::QualificationRecorded, &q);
        }
        if !track.is_degree() {
            let program =
                json!({"track": track.as_str(), "title": "Bồi dưỡng nghiệp vụ địa chính"});
            accepted_unchanged(
                FactType::TrainingNominated,
                &with(&nomination(), |d| set(d, "/program", program)),
            );
        }
    }
    // 3 + 7 + 4 + 4 ordered levels, and two free ones on each of it and foreign_language.
    assert_eq!(seen, 18 + 4);
}
