//! proptest strategies for valid values of every fact type.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{json, Map, Value};
use tledger_events::facts::{
    Certificate, Evidence, FactRetracted, Funding, Institution, Left, OfficialRegistered, Planned,
    PositionAssigned, Program, QualificationRecorded, Rated, ReferencePublished, TrainingCompleted,
    TrainingEnded, TrainingEnrolled, TrainingNominated, UnitRegistered, UnitReorganised,
};
use tledger_events::reference_data::{
    PositionDef, ReferenceContent, Requirement, Ruleset, SpecialtyMap,
};
use tledger_events::{
    CompletionResult, Date, EnrollmentId, EvidenceKind, Fact, FactType, FundingSource, Gender,
    InstitutionId, LeaveReason, Level, OfficialId, PositionCode, RatingGrade, ReferenceKind,
    ReferenceName, Score, SpecialtyCode, StaffCategory, Track, UnitId, UnitLevel, Vnd, Year,
};
use uuid::Uuid;

/// A string of the identifier charset, 1 to 64 characters; the longest
/// length is drawn often, it is the edge.
pub fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_-]{1,63}",
        1 => "[A-Za-z0-9_-]{64}",
    ]
}

macro_rules! id_strategy {
    ($fn:ident, $ty:ty) => {
        pub fn $fn() -> impl Strategy<Value = $ty> {
            id_text().prop_map(|s| <$ty>::parse(s).expect("the strategy draws from the id charset"))
        }
    };
}

id_strategy!(official_id, OfficialId);
id_strategy!(unit_id, UnitId);
id_strategy!(enrollment_id, EnrollmentId);
id_strategy!(institution_id, InstitutionId);
id_strategy!(reference_name, ReferenceName);

/// A specialty or position code, `[a-z0-9_]{1,64}`.
pub fn code_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9_]{1,63}",
        1 => "[a-z0-9_]{64}",
    ]
}

pub fn specialty() -> impl Strategy<Value = SpecialtyCode> {
    prop_oneof![
        select(
            &[
                "land_management",
                "construction",
                "surveying",
                "accounting",
                "law",
                "culture"
            ][..]
        )
        .prop_map(String::from),
        code_text(),
    ]
    .prop_map(|s| SpecialtyCode::parse(s).expect("a code of the code charset"))
}

pub fn position() -> impl Strategy<Value = PositionCode> {
    prop_oneof![
        select(
            &[
                "party_secretary",
                "committee_chair",
                "land_construction",
                "part_time"
            ][..]
        )
        .prop_map(String::from),
        code_text(),
    ]
    .prop_map(|s| PositionCode::parse(s).expect("a code of the code charset"))
}

/// Free text: not blank, with Vietnamese letters, at most 60 characters.
pub fn text() -> impl Strategy<Value = String> {
    "[A-Za-zĐđăâêôơưẠạẾếỘộỜờỲỳÁáÀàẢả0-9][A-Za-z0-9 ĐđăâêôơưạếộờỳáàảÁÀẢ.,/()–-]{0,59}"
}

/// A day from 1950 to 2099.
pub fn date() -> impl Strategy<Value = Date> {
    let first = NaiveDate::from_ymd_opt(1950, 1, 1).expect("a calendar day");
    let last = NaiveDate::from_ymd_opt(2099, 12, 31).expect("a calendar day");
    (0..=(last - first).num_days())
        .prop_map(move |days| Date::from(first + chrono::Duration::days(days)))
}

/// Two days, the first on or before the second.
pub fn date_range() -> impl Strategy<Value = (Date, Date)> {
    (date(), date()).prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
}

pub fn year() -> impl Strategy<Value = Year> {
    prop_oneof![
        4 => 1940..=2030i32,
        1 => Just(Year::MIN),
        1 => Just(Year::MAX),
    ]
    .prop_map(|y| Year::new(y).expect("a year in range"))
}

pub fn vnd() -> impl Strategy<Value = Vnd> {
    prop_oneof![
        4 => 0..=50_000_000i64,
        1 => Just(0i64),
        1 => 0..=Vnd::MAX,
    ]
    .prop_map(|n| Vnd::new(n).expect("in range"))
}

/// Scores as graded: hundredths from 0 to 10, both ends included.
pub fn score() -> impl Strategy<Value = Score> {
    prop_oneof![
        4 => (0..=1000u32).prop_map(|n| f64::from(n) / 100.0),
        1 => Just(0.0),
        1 => Just(10.0),
    ]
    .prop_map(|s| Score::new(s).expect("a score from 0 to 10"))
}

fn free_level() -> impl Strategy<Value = Level> {
    prop_oneof![
        select(&["A", "B", "C", "B1", "B2", "IELTS_6-5", "basic"][..]).prop_map(String::from),
        id_text(),
    ]
    .prop_map(|s| Level::parse(s).expect("a level of the id charset"))
}

/// A level of `track`, which must not be `refresher`.
pub fn level_of(track: Track) -> BoxedStrategy<Level> {
    match track.ordered_levels() {
        Some(levels) => select(levels.iter().map(|(code, _)| *code).collect::<Vec<_>>())
            .prop_map(|code| Level::parse(code).expect("the track's own level"))
            .boxed(),
        None => free_level().boxed(),
    }
}

pub fn degree_track() -> impl Strategy<Value = Track> {
    select(
        Track::ALL
            .iter()
            .copied()
            .filter(|t| t.is_degree())
            .collect::<Vec<_>>(),
    )
}

// --- reference content -------------------------------------------------

pub fn position_defs() -> impl Strategy<Value = Vec<PositionDef>> {
    btree_set(position(), 1..6)
        .prop_flat_map(|codes| {
            let n = codes.len();
            (
                Just(codes),
                vec(
                    (select(StaffCategory::ALL), any::<bool>(), text(), text()),
                    n,
                ),
            )
        })
        .prop_map(|(codes, rest)| {
            codes
                .into_iter()
                .zip(rest)
                .map(
                    |(code, (staff_category, key, title_vi, title_en))| PositionDef {
                        code,
                        staff_category,
                        key_leader: key && staff_category == StaffCategory::Cadre,
                        title_vi,
                        title_en,
                    },
                )
                .collect()
        })
}

fn ordered_tracks() -> Vec<Track> {
    Track::ALL
        .iter()
        .copied()
        .filter(|t| t.ordered_levels().is_some())
        .collect()
}

pub fn requirement() -> impl Strategy<Value = Requirement> {
    let minimums = subsequence(ordered_tracks(), 0..=4).prop_flat_map(|tracks| {
        tracks
            .into_iter()
            .map(|t| level_of(t).prop_map(move |l| (t, l)))
            .collect::<Vec<_>>()
    });
    (
        text(),
        select(StaffCategory::ALL),
        option::of(any::<bool>()),
        minimums,
    )
        .prop_flat_map(|(group, staff_category, key_leader, minimums)| {
            let tracks: Vec<Track> = minimums.iter().map(|(t, _)| *t).collect();
            let exemptions = if tracks.is_empty() {
                Just(BTreeMap::new()).boxed()
            } else {
                btree_map(select(tracks), vec(position(), 0..3), 0..=2).boxed()
            };
            (
                Just(group),
                Just(staff_category),
                Just(key_leader),
                Just(minimums),
                exemptions,
            )
        })
        .prop_map(
            |(group, staff_category, key_leader, minimums, exemptions)| Requirement {
                group,
                staff_category,
                key_leader,
                minimums: minimums.into_iter().collect(),
                exemptions,
            },
        )
}

pub fn ruleset() -> impl Strategy<Value = Ruleset> {
    vec(requirement(), 0..4).prop_map(|requirements| Ruleset { requirements })
}

pub fn specialty_map() -> impl Strategy<Value = SpecialtyMap> {
    btree_map(position(), vec(specialty(), 0..4), 0..5).prop_map(|posts| SpecialtyMap { posts })
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("reference content serialises to an object, not {other}"),
    }
}

fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    object(serde_json::to_value(value).expect("reference content serialises"))
}

/// The content of a reference of `kind`, as JSON and as the typed content
/// it must parse to (taxonomies are compared by their positions).
pub fn reference_content(kind: ReferenceKind) -> BoxedStrategy<(Map<String, Value>, Expected)> {
    match kind {
        ReferenceKind::PositionTaxonomy => position_defs()
            .prop_map(|defs| {
                (
                    object(json!({ "positions": defs })),
                    Expected::Positions(defs),
                )
            })
            .boxed(),
        ReferenceKind::Ruleset => ruleset()
            .prop_map(|r| (to_object(&r), Expected::Ruleset(r)))
            .boxed(),
        ReferenceKind::SpecialtyMap => specialty_map()
            .prop_map(|m| (to_object(&m), Expected::SpecialtyMap(m)))
            .boxed(),
    }
}

/// What a generated reference content must parse to.
#[derive(Clone, Debug)]
pub enum Expected {
    Positions(Vec<PositionDef>),
    Ruleset(Ruleset),
    SpecialtyMap(SpecialtyMap),
}

impl Expected {
    /// Whether `parsed` is what was generated.
    pub fn matches(&self, parsed: &ReferenceContent) -> bool {
        match (self, parsed) {
            (Expected::Positions(defs), ReferenceContent::PositionTaxonomy(t)) => {
                t.positions() == defs
            }
            (Expected::Ruleset(r), ReferenceContent::Ruleset(p)) => r == p,
            (Expected::SpecialtyMap(m), ReferenceContent::SpecialtyMap(p)) => m == p,
            _ => false,
        }
    }
}

/// A reference publication with the content it must parse to.
pub fn reference_published() -> impl Strategy<Value = (ReferencePublished, Expected)> {
    select(ReferenceKind::ALL).prop_flat_map(|kind| {
        (reference_name(), reference_content(kind), date()).prop_map(
            move |(name, (content, expected), effective_date)| {
                (
                    ReferencePublished {
                        kind,
                        name,
                        content,
                        effective_date,
                    },
                    expected,
                )
            },
        )
    })
}

// --- facts -------------------------------------------------------------

fn unit_registered() -> impl Strategy<Value = UnitRegistered> {
    (
        unit_id(),
        text(),
        select(UnitLevel::ALL),
        option::of(unit_id()),
        date(),
    )
        .prop_map(
            |(unit_id, name, level, parent_id, effective_date)| UnitRegistered {
                unit_id,
                name,
                level,
                parent_id,
                effective_date,
            },
        )
}

/// A reorganisation that changes something: renames and/or re-parents, or
/// dissolves the unit into another (optionally renaming it on the way).
fn unit_reorganised() -> impl Strategy<Value = UnitReorganised> {
    let change = prop_oneof![
        (text(), option::of(unit_id())).prop_map(|(n, p)| (Some(n), p, None)),
        (option::of(text()), unit_id()).prop_map(|(n, p)| (n, Some(p), None)),
        (option::of(text()), unit_id()).prop_map(|(n, d)| (n, None, Some(d))),
    ];
    (unit_id(), change, date())
        .prop_filter(
            "a unit is not dissolved into itself",
            |(u, (_, _, d), _)| d.as_ref() != Some(u),
        )
        .prop_map(
            |(unit_id, (name, parent_id, dissolved_into), effective_date)| UnitReorganised {
                unit_id,
                name,
                parent_id,
                dissolved_into,
                effective_date,
            },
        )
}

fn official_registered() -> impl Strategy<Value = OfficialRegistered> {
    (
        (
            official_id(),
            text(),
            year(),
            select(Gender::ALL),
            any::<bool>(),
        ),
        (
            unit_id(),
            select(StaffCategory::ALL),
            position(),
            option::of(text()),
            date(),
        ),
    )
        .prop_map(
            |(
                (official_id, full_name, birth_year, gender, ethnic_minority),
                (unit_id, staff_category, position, position_title, effective_date),
            )| OfficialRegistered {
                official_id,
                full_name,
                birth_year,
                gender,
                ethnic_minority,
                unit_id,
                staff_category,
                position,
                position_title,
                effective_date,
            },
        )
}

fn evidence() -> impl Strategy<Value = Evidence> {
    (select(EvidenceKind::ALL), text(), option::of(text())).prop_map(|(kind, number, issued_by)| {
        Evidence {
            kind,
            number,
            issued_by,
        }
    })
}

fn qualification_recorded() -> impl Strategy<Value = QualificationRecorded> {
    degree_track()
        .prop_flat_map(|track| (Just(track), level_of(track)))
        .prop_flat_map(|(track, level)| {
            (
                official_id(),
                Just(track),
                Just(level),
                option::of(specialty()),
                option::of(evidence()),
                option::of(enrollment_id()),
                date(),
            )
        })
        .prop_map(
            |(
                official_id,
                track,
                level,
                specialty,
                evidence,
                source_enrollment_id,
                effective_date,
            )| {
                QualificationRecorded {
                    official_id,
                    track,
                    level,
                    specialty,
                    evidence,
                    source_enrollment_id,
                    effective_date,
                }
            },
        )
}

fn position_assigned() -> impl Strategy<Value = PositionAssigned> {
    (
        official_id(),
        unit_id(),
        select(StaffCategory::ALL),
        position(),
        option::of(text()),
        option::of(text()),
        date(),
    )
        .prop_map(
            |(
                official_id,
                unit_id,
                staff_category,
                position,
                position_title,
                decision_no,
                effective_date,
            )| {
                PositionAssigned {
                    official_id,
                    unit_id,
                    staff_category,
                    position,
                    position_title,
                    decision_no,
                    effective_date,
                }
            },
        )
}

fn planned() -> impl Strategy<Value = Planned> {
    (
        official_id(),
        position(),
        (year(), year()).prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) }),
        option::of(specialty()),
        date(),
    )
        .prop_map(
            |(
                official_id,
                target_position,
                (period_from, period_to),
                planned_specialty,
                effective_date,
            )| {
                Planned {
                    official_id,
                    target_position,
                    period_from,
                    period_to,
                    planned_specialty,
                    effective_date,
                }
            },
        )
}

fn rated() -> impl Strategy<Value = Rated> {
    (official_id(), year(), select(RatingGrade::ALL), date()).prop_map(
        |(official_id, year, rating, effective_date)| Rated {
            official_id,
            year,
            rating,
            effective_date,
        },
    )
}

fn left() -> impl Strategy<Value = Left> {
    (official_id(), select(LeaveReason::ALL), date()).prop_map(
        |(official_id, reason, effective_date)| Left {
            official_id,
            reason,
            effective_date,
        },
    )
}

/// A programme of any track: a level of the track for degree tracks, none
/// for `refresher`.
pub fn program() -> impl Strategy<Value = Program> {
    select(Track::ALL)
        .prop_flat_map(|track| {
            let level = if track.is_degree() {
                level_of(track).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            (Just(track), level, option::of(specialty()), text())
        })
        .prop_map(|(track, level, specialty, title)| Program {
            track,
            level,
            specialty,
            title,
        })
}

fn institution() -> impl Strategy<Value = Institution> {
    (institution_id(), text(), any::<bool>()).prop_map(|(institution_id, name, in_province)| {
        Institution {
            institution_id,
            name,
            in_province,
        }
    })
}

fn funding() -> impl Strategy<Value = Vec<Funding>> {
    vec(
        (select(FundingSource::ALL), vnd())
            .prop_map(|(source, amount_vnd)| Funding { source, amount_vnd }),
        0..4,
    )
}

fn training_nominated() -> impl Strategy<Value = TrainingNominated> {
    (
        (
            enrollment_id(),
            official_id(),
            unit_id(),
            program(),
            institution(),
        ),
        (date_range(), funding(), option::of(text()), date()),
    )
        .prop_map(
            |(
                (enrollment_id, official_id, nominating_unit_id, program, institution),
                ((planned_start, planned_end), funding, decision_no, effective_date),
            )| TrainingNominated {
                enrollment_id,
                official_id,
                nominating_unit_id,
                program,
                institution,
                planned_start,
                planned_end,
                funding,
                decision_no,
                effective_date,
            },
        )
}

fn training_enrolled() -> impl Strategy<Value = TrainingEnrolled> {
    (enrollment_id(), date()).prop_map(|(enrollment_id, effective_date)| TrainingEnrolled {
        enrollment_id,
        effective_date,
    })
}

fn training_completed() -> impl Strategy<Value = TrainingCompleted> {
    let certificate =
        (select(EvidenceKind::ALL), text()).prop_map(|(kind, number)| Certificate { kind, number });
    (
        enrollment_id(),
        select(CompletionResult::ALL),
        option::of(score()),
        option::of(certificate),
        date(),
    )
        .prop_map(
            |(enrollment_id, result, score, certificate, effective_date)| TrainingCompleted {
                enrollment_id,
                result,
                score,
                certificate,
                effective_date,
            },
        )
}

fn training_ended() -> impl Strategy<Value = TrainingEnded> {
    (enrollment_id(), text(), date()).prop_map(|(enrollment_id, reason, effective_date)| {
        TrainingEnded {
            enrollment_id,
            reason,
            effective_date,
        }
    })
}

fn fact_retracted() -> impl Strategy<Value = FactRetracted> {
    (any::<u128>(), text(), date()).prop_map(|(id, reason, effective_date)| FactRetracted {
        event_id: Uuid::from_u128(id),
        reason,
        effective_date,
    })
}

/// A valid fact of type `t`.
pub fn fact(t: FactType) -> BoxedStrategy<Fact> {
    match t {
        FactType::ReferencePublished => reference_published()
            .prop_map(|(r, _)| Fact::ReferencePublished(r))
            .boxed(),
        FactType::UnitRegistered => unit_registered().prop_map(Fact::UnitRegistered).boxed(),
        FactType::UnitReorganised => unit_reorganised().prop_map(Fact::UnitReorganised).boxed(),
        FactType::OfficialRegistered => official_registered()
            .prop_map(Fact::OfficialRegistered)
            .boxed(),
        FactType::QualificationRecorded => qualification_recorded()
            .prop_map(Fact::QualificationRecorded)
            .boxed(),
        FactType::PositionAssigned => position_assigned().prop_map(Fact::PositionAssigned).boxed(),
        FactType::Planned => planned().prop_map(Fact::Planned).boxed(),
        FactType::Rated => rated().prop_map(Fact::Rated).boxed(),
        FactType::Left => left().prop_map(Fact::Left).boxed(),
        FactType::TrainingNominated => training_nominated()
            .prop_map(Fact::TrainingNominated)
            .boxed(),
        FactType::TrainingEnrolled => training_enrolled().prop_map(Fact::TrainingEnrolled).boxed(),
        FactType::TrainingCompleted => training_completed()
            .prop_map(Fact::TrainingCompleted)
            .boxed(),
        FactType::TrainingFailed => training_ended().prop_map(Fact::TrainingFailed).boxed(),
        FactType::TrainingWithdrawn => training_ended().prop_map(Fact::TrainingWithdrawn).boxed(),
        FactType::TrainingCancelled => training_ended().prop_map(Fact::TrainingCancelled).boxed(),
        FactType::FactRetracted => fact_retracted().prop_map(Fact::FactRetracted).boxed(),
    }
}

/// A CloudEvents `time`: an RFC 3339 instant, in UTC or in Vietnam's offset.
pub fn instant() -> impl Strategy<Value = String> {
    (date(), 0..24u32, 0..60u32, 0..60u32, any::<bool>()).prop_map(|(d, h, m, s, utc)| {
        let zone = if utc { "Z" } else { "+07:00" };
        format!("{d}T{h:02}:{m:02}:{s:02}{zone}")
    })
}
