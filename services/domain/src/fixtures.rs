//! Builders of valid facts for the aggregate tests: the Đại Lộc district,
//! with the shipped reference data.

use tledger_events::facts::{
    Certificate, FactRetracted, Funding, Institution, Left, OfficialRegistered, Planned,
    PositionAssigned, Program, QualificationRecorded, Rated, TrainingCompleted, TrainingEnded,
    TrainingEnrolled, TrainingNominated, UnitRegistered, UnitReorganised,
};
use tledger_events::reference_data::{self, PositionTaxonomy, ReferenceContent};
use tledger_events::{
    CompletionResult, Date, EnrollmentId, EvidenceKind, FundingSource, Gender, InstitutionId,
    LeaveReason, Level, OfficialId, PositionCode, RatingGrade, SpecialtyCode, StaffCategory, Track,
    UnitId, UnitLevel, Vnd, Year,
};
use uuid::Uuid;

use crate::retraction::{RetractFact, Retraction};

pub fn date(s: &str) -> Date {
    s.parse().expect("fixture date")
}

pub fn unit_id(s: &str) -> UnitId {
    UnitId::parse(s).expect("fixture unit id")
}

pub fn official_id(s: &str) -> OfficialId {
    OfficialId::parse(s).expect("fixture official id")
}

pub fn enrollment_id(s: &str) -> EnrollmentId {
    EnrollmentId::parse(s).expect("fixture enrollment id")
}

pub fn position(s: &str) -> PositionCode {
    PositionCode::parse(s).expect("fixture position")
}

pub fn level(s: &str) -> Level {
    Level::parse(s).expect("fixture level")
}

pub fn specialty(s: &str) -> SpecialtyCode {
    SpecialtyCode::parse(s).expect("fixture specialty")
}

pub fn year(y: i32) -> Year {
    Year::new(y).expect("fixture year")
}

/// The shipped taxonomy `nd92-2009`.
pub fn taxonomy() -> PositionTaxonomy {
    reference_data::shipped()
        .expect("shipped reference data parses")
        .into_iter()
        .find_map(|(_, content)| match content {
            ReferenceContent::PositionTaxonomy(t) => Some(t),
            _ => None,
        })
        .expect("a shipped taxonomy")
}

pub fn unit_registered(id: &str, parent: Option<&str>, on: &str) -> UnitRegistered {
    UnitRegistered {
        unit_id: unit_id(id),
        name: format!("Unit {id}"),
        level: if parent.is_some() {
            UnitLevel::Commune
        } else {
            UnitLevel::Province
        },
        parent_id: parent.map(unit_id),
        effective_date: date(on),
    }
}

pub fn reorganised(id: &str, on: &str) -> UnitReorganised {
    UnitReorganised {
        unit_id: unit_id(id),
        name: None,
        parent_id: None,
        dissolved_into: None,
        effective_date: date(on),
    }
}

pub fn official_registered(
    id: &str,
    unit: &str,
    category: StaffCategory,
    post: &str,
    on: &str,
) -> OfficialRegistered {
    OfficialRegistered {
        official_id: official_id(id),
        full_name: "Nguyễn Văn A".into(),
        birth_year: year(1970),
        gender: Gender::Male,
        ethnic_minority: false,
        unit_id: unit_id(unit),
        staff_category: category,
        position: position(post),
        position_title: None,
        effective_date: date(on),
    }
}

pub fn assigned(
    id: &str,
    unit: &str,
    category: StaffCategory,
    post: &str,
    on: &str,
) -> PositionAssigned {
    PositionAssigned {
        official_id: official_id(id),
        unit_id: unit_id(unit),
        staff_category: category,
        position: position(post),
        position_title: None,
        decision_no: Some("12/QĐ-UBND".into()),
        effective_date: date(on),
    }
}

pub fn qualification(
    id: &str,
    track: Track,
    lvl: &str,
    source: Option<&str>,
    on: &str,
) -> QualificationRecorded {
    QualificationRecorded {
        official_id: official_id(id),
        track,
        level: level(lvl),
        specialty: None,
        evidence: None,
        source_enrollment_id: source.map(enrollment_id),
        effective_date: date(on),
    }
}

pub fn planned(id: &str, target: &str, from: i32, to: i32, on: &str) -> Planned {
    Planned {
        official_id: official_id(id),
        target_position: position(target),
        period_from: year(from),
        period_to: year(to),
        planned_specialty: Some(specialty("land_management")),
        effective_date: date(on),
    }
}

pub fn rated(id: &str, y: i32, on: &str) -> Rated {
    Rated {
        official_id: official_id(id),
        year: year(y),
        rating: RatingGrade::Good,
        effective_date: date(on),
    }
}

pub fn left(id: &str, on: &str) -> Left {
    Left {
        official_id: official_id(id),
        reason: LeaveReason::Retired,
        effective_date: date(on),
    }
}

pub fn nominated(
    enrollment: &str,
    official: &str,
    unit: &str,
    track: Track,
    lvl: Option<&str>,
    on: &str,
) -> TrainingNominated {
    TrainingNominated {
        enrollment_id: enrollment_id(enrollment),
        official_id: official_id(official),
        nominating_unit_id: unit_id(unit),
        program: Program {
            track,
            level: lvl.map(level),
            specialty: Some(specialty("land_management")),
            title: "Trung cấp Địa chính".into(),
        },
        institution: Institution {
            institution_id: InstitutionId::parse("qnam-political-school")
                .expect("fixture institution"),
            name: "Trường Chính trị tỉnh Quảng Nam".into(),
            in_province: true,
        },
        planned_start: date(on),
        planned_end: date(on),
        funding: vec![Funding {
            source: FundingSource::District,
            amount_vnd: Vnd::new(2_500_000).expect("fixture amount"),
        }],
        decision_no: Some("45/QĐ-UBND".into()),
        effective_date: date(on),
    }
}

pub fn enrolled(enrollment: &str, on: &str) -> TrainingEnrolled {
    TrainingEnrolled {
        enrollment_id: enrollment_id(enrollment),
        effective_date: date(on),
    }
}

pub fn completed(enrollment: &str, on: &str) -> TrainingCompleted {
    TrainingCompleted {
        enrollment_id: enrollment_id(enrollment),
        result: CompletionResult::Good,
        score: None,
        certificate: Some(Certificate {
            kind: EvidenceKind::Diploma,
            number: "TC-2010-0042".into(),
        }),
        effective_date: date(on),
    }
}

pub fn ended(enrollment: &str, reason: &str, on: &str) -> TrainingEnded {
    TrainingEnded {
        enrollment_id: enrollment_id(enrollment),
        reason: reason.into(),
        effective_date: date(on),
    }
}

/// A deterministic event id for the fact at `version` of a test stream.
pub fn event_id(version: u64) -> Uuid {
    Uuid::from_u128(0x7e57_0000_0000_0000_0000_0000_0000_0000 | u128::from(version))
}

pub fn retracted(version: u64, on: &str) -> FactRetracted {
    FactRetracted {
        event_id: event_id(version),
        reason: "recorded in error".into(),
        effective_date: date(on),
    }
}

/// The domain form of a retraction of the fact at `version`.
pub fn retraction(version: u64, on: &str) -> Retraction {
    Retraction {
        target_version: version,
        fact: retracted(version, on),
    }
}

/// The `retract` command for the fact at `version`.
pub fn retract(version: u64, dependents: u64, on: &str) -> RetractFact {
    RetractFact {
        fact: retracted(version, on),
        target_version: version,
        dependents,
    }
}
