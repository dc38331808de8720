//! The official (cán bộ, công chức): registration, qualifications, posts,
//! staffing-plan entries, ratings and leaving; stream `official-<id>`.
//!
//! Rules (docs/contract.md "Rules the ledger enforces"):
//! - an official id registered twice is a conflict; facts about an official
//!   who is not registered are `not_found`;
//! - the unit of a registration or assignment must be registered;
//! - a position must exist in the taxonomy in force on the fact's date, and
//!   its staff category must match (422; no taxonomy in force is 422 too);
//! - a qualification is recorded at most once per `source_enrollment_id`
//!   among those not retracted;
//! - a leaving needs the person in post on its date (a late leaving, dated
//!   before an existing nomination, is accepted);
//! - qualifications, plans, ratings, assignments and leavings can be
//!   retracted one by one; the registration only when nothing depends on it.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use tledger_events::facts::{
    Left, OfficialRegistered, Planned, PositionAssigned, QualificationRecorded, Rated,
};
use tledger_events::reference_data::{PositionError, PositionTaxonomy};
use tledger_events::{Date, EnrollmentId, Fact, OfficialId, UnitId};

use crate::error::{ContractError, ErrorCode};
use crate::existence::Found;
use crate::retraction::IntoFact;
use crate::retraction::{FromFact, Records, RetractFact, Retractable, Retraction, RetractionError};

/// What the official stream records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OfficialEvent {
    Registered(OfficialRegistered),
    QualificationRecorded(QualificationRecorded),
    PositionAssigned(PositionAssigned),
    Planned(Planned),
    Rated(Rated),
    Left(Left),
    Retracted(Retraction),
}

impl crate::retraction::IntoFact for OfficialEvent {
    fn into_fact(self) -> Fact {
        match self {
            OfficialEvent::Registered(d) => Fact::OfficialRegistered(d),
            OfficialEvent::QualificationRecorded(d) => Fact::QualificationRecorded(d),
            OfficialEvent::PositionAssigned(d) => Fact::PositionAssigned(d),
            OfficialEvent::Planned(d) => Fact::Planned(d),
            OfficialEvent::Rated(d) => Fact::Rated(d),
            OfficialEvent::Left(d) => Fact::Left(d),
            OfficialEvent::Retracted(r) => Fact::FactRetracted(r.fact),
        }
    }
}

impl OfficialEvent {
    fn fact_type(&self) -> &'static str {
        self.clone().into_fact().fact_type().as_str()
    }
}

impl FromFact for OfficialEvent {
    const AGGREGATE: &'static str = "official";
    fn from_fact(fact: Fact, retraction_target: Option<u64>) -> Option<Self> {
        Some(match fact {
            Fact::OfficialRegistered(d) => Self::Registered(d),
            Fact::QualificationRecorded(d) => Self::QualificationRecorded(d),
            Fact::PositionAssigned(d) => Self::PositionAssigned(d),
            Fact::Planned(d) => Self::Planned(d),
            Fact::Rated(d) => Self::Rated(d),
            Fact::Left(d) => Self::Left(d),
            Fact::FactRetracted(fact) => Self::Retracted(Retraction {
                target_version: retraction_target?,
                fact,
            }),
            _ => return None,
        })
    }
}

impl DomainEvent for OfficialEvent {
    fn event_type(&self) -> String {
        self.fact_type().to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Commands, with the look-ups their rules need already done.
#[derive(Clone, Debug, PartialEq)]
pub enum OfficialCommand {
    Register {
        fact: OfficialRegistered,
        /// What the look-up found of `fact.unit_id`.
        unit: Found,
        /// The position taxonomy in force on `fact.effective_date`.
        taxonomy: Option<PositionTaxonomy>,
    },
    RecordQualification(QualificationRecorded),
    AssignPosition {
        fact: PositionAssigned,
        /// What the look-up found of `fact.unit_id`.
        unit: Found,
        taxonomy: Option<PositionTaxonomy>,
    },
    Plan {
        fact: Planned,
        taxonomy: Option<PositionTaxonomy>,
    },
    Rate(Rated),
    RecordLeaving(Left),
    Retract(RetractFact),
}

/// Why an official command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfficialError {
    #[error("official {0} is not registered")]
    UnknownOfficial(OfficialId),
    #[error("unit {0} is not registered")]
    UnknownUnit(UnitId),
    #[error("no position taxonomy is in force on {0}")]
    NoTaxonomyInForce(Date),
    #[error("{0}")]
    Position(PositionError),
    #[error("target {0}")]
    TargetPosition(PositionError),
    #[error("official {0} is already registered")]
    AlreadyRegistered(OfficialId),
    #[error("a qualification from enrollment {0} is already recorded; retract it first")]
    QualificationAlreadyRecorded(EnrollmentId),
    #[error("a rating for {0} is already recorded; retract it first")]
    AlreadyRated(i32),
    #[error("the official is not in post on {0}, so cannot leave then")]
    NotInPost(Date),
    #[error(transparent)]
    Retraction(#[from] RetractionError),
}

impl ContractError for OfficialError {
    fn code(&self) -> ErrorCode {
        match self {
            OfficialError::UnknownOfficial(_) | OfficialError::UnknownUnit(_) => {
                ErrorCode::NotFound
            }
            OfficialError::NoTaxonomyInForce(_)
            | OfficialError::Position(_)
            | OfficialError::TargetPosition(_) => ErrorCode::InvalidValue,
            OfficialError::AlreadyRegistered(_)
            | OfficialError::QualificationAlreadyRecorded(_)
            | OfficialError::AlreadyRated(_)
            | OfficialError::NotInPost(_) => ErrorCode::Conflict,
            OfficialError::Retraction(e) => e.code(),
        }
    }

    fn field(&self) -> Option<String> {
        let pointer = match self {
            OfficialError::UnknownOfficial(_) | OfficialError::AlreadyRegistered(_) => {
                "/official_id"
            }
            OfficialError::UnknownUnit(_) => "/unit_id",
            OfficialError::NoTaxonomyInForce(_) | OfficialError::NotInPost(_) => "/effective_date",
            OfficialError::Position(PositionError::Unknown(_)) => "/position",
            OfficialError::Position(PositionError::CategoryMismatch { .. }) => "/staff_category",
            OfficialError::TargetPosition(_) => "/target_position",
            OfficialError::QualificationAlreadyRecorded(_) => "/source_enrollment_id",
            OfficialError::AlreadyRated(_) => "/year",
            OfficialError::Retraction(e) => return e.field(),
        };
        Some(pointer.into())
    }
}

/// A change of whether the person is in post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenureChange {
    pub effective_date: Date,
    /// Stream version: orders changes with the same date.
    pub version: u64,
    pub in_post: bool,
}

/// When the person was in post: registrations and assignments put them in,
/// leavings take them out (facts not retracted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenure {
    changes: Vec<TenureChange>,
}

impl Tenure {
    pub fn new(changes: Vec<TenureChange>) -> Self {
        Self { changes }
    }

    /// Whether the person is in post on `date`: the latest change effective
    /// on or before it decides (a tie goes to the later fact); `None` when
    /// nothing is recorded by then.
    pub fn in_post_on(&self, date: Date) -> Option<bool> {
        self.changes
            .iter()
            .filter(|c| c.effective_date <= date)
            .max_by_key(|c| (c.effective_date, c.version))
            .map(|c| c.in_post)
    }

    /// The date of the leaving in force on `date`, if the person had left.
    pub fn left_on(&self, date: Date) -> Option<Date> {
        self.changes
            .iter()
            .filter(|c| c.effective_date <= date)
            .max_by_key(|c| (c.effective_date, c.version))
            .filter(|c| !c.in_post)
            .map(|c| c.effective_date)
    }
}

/// 404 unless the unit a registration or an assignment names is
/// registered.
pub fn check_unit_reference(unit_id: &UnitId, unit: &Found) -> Result<(), OfficialError> {
    if unit.is_missing() {
        return Err(OfficialError::UnknownUnit(unit_id.clone()));
    }
    Ok(())
}

/// The official aggregate: the stream's facts, each with a retracted flag;
/// everything else is derived from them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Official {
    records: Records<OfficialEvent>,
}

impl Official {
    /// The stream version of the last fact (0 for a new stream).
    pub fn version(&self) -> u64 {
        self.records.version()
    }

    fn live(&self) -> impl Iterator<Item = (u64, &OfficialEvent)> {
        self.records.live()
    }

    /// The registration in force (not retracted).
    pub fn registration(&self) -> Option<&OfficialRegistered> {
        self.live().find_map(|(_, e)| match e {
            OfficialEvent::Registered(r) => Some(r),
            _ => None,
        })
    }

    pub fn is_registered(&self) -> bool {
        self.registration().is_some()
    }

    /// Qualifications not retracted, with their stream versions.
    pub fn qualifications(&self) -> impl Iterator<Item = (u64, &QualificationRecorded)> {
        self.live().filter_map(|(v, e)| match e {
            OfficialEvent::QualificationRecorded(q) => Some((v, q)),
            _ => None,
        })
    }

    /// The stream version of the qualification recorded from `enrollment_id`
    /// and not retracted.
    pub fn qualification_from(&self, enrollment_id: &EnrollmentId) -> Option<u64> {
        self.qualifications()
            .find(|(_, q)| q.source_enrollment_id.as_ref() == Some(enrollment_id))
            .map(|(v, _)| v)
    }

    /// The unit the person belongs to on `date`: that of the latest
    /// registration or assignment effective by then (a tie goes to the later
    /// fact), or of the registration when `date` is before it.
    pub fn unit_on(&self, date: Date) -> Option<&UnitId> {
        let placements = self.live().filter_map(|(version, e)| match e {
            OfficialEvent::Registered(r) => Some((r.effective_date, version, &r.unit_id)),
            OfficialEvent::PositionAssigned(a) => Some((a.effective_date, version, &a.unit_id)),
            _ => None,
        });
        let mut by_then = None;
        let mut first = None;
        for (effective_date, version, unit) in placements {
            if first.is_none() {
                first = Some(unit);
            }
            if effective_date <= date
                && by_then.is_none_or(|(d, v, _)| (effective_date, version) > (d, v))
            {
                by_then = Some((effective_date, version, unit));
            }
        }
        by_then.map(|(_, _, unit)| unit).or(first)
    }

    pub fn tenure(&self) -> Tenure {
        let changes = self
            .live()
            .filter_map(|(version, e)| {
                let (effective_date, in_post) = match e {
                    OfficialEvent::Registered(r) => (r.effective_date, true),
                    OfficialEvent::PositionAssigned(a) => (a.effective_date, true),
                    OfficialEvent::Left(l) => (l.effective_date, false),
                    _ => return None,
                };
                Some(TenureChange {
                    effective_date,
                    version,
                    in_post,
                })
            })
            .collect();
        Tenure::new(changes)
    }

    /// What a nomination's look-up finds of this official: their tenure
    /// once registered.
    pub fn nominee(&self) -> Found<Tenure> {
        if self.is_registered() {
            Found::Registered(self.tenure())
        } else {
            Found::Missing
        }
    }

    /// 404 unless the official a fact is about is registered.
    pub fn require_registered(&self, id: &OfficialId) -> Result<(), OfficialError> {
        if self.is_registered() {
            Ok(())
        } else {
            Err(OfficialError::UnknownOfficial(id.clone()))
        }
    }

    fn decide(&self, command: OfficialCommand) -> Result<OfficialEvent, OfficialError> {
        match command {
            OfficialCommand::Register {
                fact,
                unit,
                taxonomy,
            } => {
                check_unit_reference(&fact.unit_id, &unit)?;
                check_position(
                    taxonomy.as_ref(),
                    fact.effective_date,
                    &fact.position,
                    fact.staff_category,
                )?;
                if self.is_registered() {
                    return Err(OfficialError::AlreadyRegistered(fact.official_id));
                }
                Ok(OfficialEvent::Registered(fact))
            }
            OfficialCommand::RecordQualification(fact) => {
                self.require_registered(&fact.official_id)?;
                if let Some(source) = &fact.source_enrollment_id {
                    if self.qualification_from(source).is_some() {
                        return Err(OfficialError::QualificationAlreadyRecorded(source.clone()));
                    }
                }
                Ok(OfficialEvent::QualificationRecorded(fact))
            }
            OfficialCommand::AssignPosition {
                fact,
                unit,
                taxonomy,
            } => {
                self.require_registered(&fact.official_id)?;
                check_unit_reference(&fact.unit_id, &unit)?;
                check_position(
                    taxonomy.as_ref(),
                    fact.effective_date,
                    &fact.position,
                    fact.staff_category,
                )?;
                Ok(OfficialEvent::PositionAssigned(fact))
            }
            OfficialCommand::Plan { fact, taxonomy } => {
                self.require_registered(&fact.official_id)?;
                let taxonomy =
                    taxonomy.ok_or(OfficialError::NoTaxonomyInForce(fact.effective_date))?;
                if taxonomy.position(&fact.target_position).is_none() {
                    return Err(OfficialError::TargetPosition(PositionError::Unknown(
                        fact.target_position,
                    )));
                }
                Ok(OfficialEvent::Planned(fact))
            }
            OfficialCommand::Rate(fact) => {
                self.require_registered(&fact.official_id)?;
                let rated = self
                    .live()
                    .any(|(_, e)| matches!(e, OfficialEvent::Rated(r) if r.year == fact.year));
                if rated {
                    return Err(OfficialError::AlreadyRated(fact.year.value()));
                }
                Ok(OfficialEvent::Rated(fact))
            }
            OfficialCommand::RecordLeaving(fact) => {
                self.require_registered(&fact.official_id)?;
                if self.tenure().in_post_on(fact.effective_date) != Some(true) {
                    return Err(OfficialError::NotInPost(fact.effective_date));
                }
                Ok(OfficialEvent::Left(fact))
            }
            OfficialCommand::Retract(retract) => self.decide_retraction(retract),
        }
    }

    fn decide_retraction(&self, retract: RetractFact) -> Result<OfficialEvent, OfficialError> {
        let target = self.records.retraction_target(&retract)?;
        if let OfficialEvent::Registered(_) = target {
            let dependents = self.records.live_after(retract.target_version) + retract.dependents;
            if dependents > 0 {
                return Err(RetractionError::HasDependents {
                    event_id: retract.fact.event_id,
                    dependents,
                }
                .into());
            }
        }
        Ok(OfficialEvent::Retracted(Retraction {
            target_version: retract.target_version,
            fact: retract.fact,
        }))
    }
}

fn check_position(
    taxonomy: Option<&PositionTaxonomy>,
    date: Date,
    position: &tledger_events::PositionCode,
    category: tledger_events::StaffCategory,
) -> Result<(), OfficialError> {
    let taxonomy = taxonomy.ok_or(OfficialError::NoTaxonomyInForce(date))?;
    taxonomy
        .check(position, category)
        .map(|_| ())
        .map_err(OfficialError::Position)
}

records_aggregate!(
    Official,
    "official",
    OfficialCommand,
    OfficialEvent,
    OfficialError
);

impl Retractable for OfficialEvent {
    fn retraction(&self) -> Option<&Retraction> {
        match self {
            OfficialEvent::Retracted(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::existence::Found;
    use crate::retraction::IntoFact;
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use cqrs_es::DomainEvent;
    use tledger_events::facts::{OfficialRegistered, Planned, PositionAssigned};
    use tledger_events::reference_data::PositionError;
    use tledger_events::{Fact, StaffCategory, Track};

    use super::{Official, OfficialCommand, OfficialError, OfficialEvent};
    use crate::error::{ContractError, ErrorCode};
    use crate::fixtures::*;
    use crate::retraction::{resolve_stream, RetractionError, StoredFact, StreamError};

    type Framework = TestFramework<Official>;

    const OFFICIAL: &str = "dl-dai-an-0001";
    const UNIT: &str = "dai-loc-dai-an";

    /// A land and construction officer of Đại An, registered on 2005-03-01.
    fn registration() -> OfficialRegistered {
        official_registered(
            OFFICIAL,
            UNIT,
            StaffCategory::CivilServant,
            "land_construction",
            "2005-03-01",
        )
    }

    fn registered() -> OfficialEvent {
        OfficialEvent::Registered(registration())
    }

    fn register(fact: OfficialRegistered) -> OfficialCommand {
        OfficialCommand::Register {
            fact,
            unit: Found::Registered(()),
            taxonomy: Some(taxonomy()),
        }
    }

    fn assign(fact: PositionAssigned) -> OfficialCommand {
        OfficialCommand::AssignPosition {
            fact,
            unit: Found::Registered(()),
            taxonomy: Some(taxonomy()),
        }
    }

    fn plan(fact: Planned) -> OfficialCommand {
        OfficialCommand::Plan {
            fact,
            taxonomy: Some(taxonomy()),
        }
    }

    /// One fact of every kind after the registration, versions 1 to 6.
    fn history() -> Vec<OfficialEvent> {
        vec![
            registered(),
            OfficialEvent::QualificationRecorded(qualification(
                OFFICIAL,
                Track::Professional,
                "intermediate",
                Some("e-2008-017"),
                "2009-06-30",
            )),
            OfficialEvent::PositionAssigned(assigned(
                OFFICIAL,
                UNIT,
                StaffCategory::Cadre,
                "committee_vice_chair",
                "2010-01-15",
            )),
            OfficialEvent::Planned(planned(
                OFFICIAL,
                "committee_chair",
                2011,
                2015,
                "2010-03-01",
            )),
            OfficialEvent::Rated(rated(OFFICIAL, 2010, "2010-12-20")),
            OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
        ]
    }

    fn official(events: Vec<OfficialEvent>) -> Official {
        let mut official = Official::default();
        for event in events {
            official.apply(event);
        }
        official
    }

    fn assert_contract(error: &OfficialError, code: ErrorCode, status: u16, field: &str) {
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(error.code().http_status(), status, "{error}");
        assert_eq!(error.field().as_deref(), Some(field), "{error}");
    }

    // ---- register ----------------------------------------------------------

    #[test]
    fn registers_an_official_in_a_registered_unit() {
        Framework::with(())
            .given_no_previous_events()
            .when(register(registration()))
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn registers_a_key_leader_cadre() {
        let chair = official_registered(
            OFFICIAL,
            UNIT,
            StaffCategory::Cadre,
            "committee_chair",
            "2004-07-01",
        );
        Framework::with(())
            .given_no_previous_events()
            .when(register(chair.clone()))
            .then_expect_events(vec![OfficialEvent::Registered(chair)]);
    }

    #[test]
    fn registers_a_part_time_worker_in_the_part_time_position() {
        let mut worker = official_registered(
            OFFICIAL,
            UNIT,
            StaffCategory::PartTime,
            "part_time",
            "2006-01-02",
        );
        worker.position_title = Some("Phó Chỉ huy trưởng Quân sự".into());
        Framework::with(())
            .given_no_previous_events()
            .when(register(worker.clone()))
            .then_expect_events(vec![OfficialEvent::Registered(worker)]);
    }

    #[test]
    fn it_should_not_register_an_official_in_an_unknown_unit() {
        let error = OfficialError::UnknownUnit(unit_id(UNIT));
        assert_contract(&error, ErrorCode::NotFound, 404, "/unit_id");
        Framework::with(())
            .given_no_previous_events()
            .when(OfficialCommand::Register {
                fact: registration(),
                unit: Found::Missing,
                taxonomy: Some(taxonomy()),
            })
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_an_official_when_no_taxonomy_is_in_force() {
        let error = OfficialError::NoTaxonomyInForce(date("2005-03-01"));
        assert_contract(&error, ErrorCode::InvalidValue, 422, "/effective_date");
        Framework::with(())
            .given_no_previous_events()
            .when(OfficialCommand::Register {
                fact: registration(),
                unit: Found::Registered(()),
                taxonomy: None,
            })
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_an_official_in_a_position_outside_the_taxonomy() {
        let error = OfficialError::Position(PositionError::Unknown(position("village_head")));
        assert_contract(&error, ErrorCode::InvalidValue, 422, "/position");
        Framework::with(())
            .given_no_previous_events()
            .when(register(official_registered(
                OFFICIAL,
                UNIT,
                StaffCategory::CivilServant,
                "village_head",
                "2005-03-01",
            )))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_a_civil_servant_post_as_a_cadre() {
        let error = OfficialError::Position(PositionError::CategoryMismatch {
            position: position("police_chief"),
            expected: StaffCategory::CivilServant,
            given: StaffCategory::Cadre,
        });
        assert_contract(&error, ErrorCode::InvalidValue, 422, "/staff_category");
        Framework::with(())
            .given_no_previous_events()
            .when(register(official_registered(
                OFFICIAL,
                UNIT,
                StaffCategory::Cadre,
                "police_chief",
                "2005-03-01",
            )))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_a_part_time_worker_in_a_civil_servant_post() {
        Framework::with(())
            .given_no_previous_events()
            .when(register(official_registered(
                OFFICIAL,
                UNIT,
                StaffCategory::PartTime,
                "culture_social",
                "2005-03-01",
            )))
            .then_expect_error(OfficialError::Position(PositionError::CategoryMismatch {
                position: position("culture_social"),
                expected: StaffCategory::CivilServant,
                given: StaffCategory::PartTime,
            }));
    }

    #[test]
    fn it_should_not_register_an_official_twice() {
        let error = OfficialError::AlreadyRegistered(official_id(OFFICIAL));
        assert_contract(&error, ErrorCode::Conflict, 409, "/official_id");
        Framework::with(())
            .given(vec![registered()])
            .when(register(official_registered(
                OFFICIAL,
                "dai-loc-dai-chanh",
                StaffCategory::CivilServant,
                "culture_social",
                "2007-05-01",
            )))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_twice_in_an_unknown_unit_and_reports_the_unit_first() {
        // 404 comes before 409 in the contract's order.
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::Register {
                fact: registration(),
                unit: Found::Missing,
                taxonomy: Some(taxonomy()),
            })
            .then_expect_error(OfficialError::UnknownUnit(unit_id(UNIT)));
    }

    #[test]
    fn it_should_not_register_twice_in_an_unknown_position_and_reports_the_position_first() {
        // 422 comes before 409 in the contract's order.
        Framework::with(())
            .given(vec![registered()])
            .when(register(official_registered(
                OFFICIAL,
                UNIT,
                StaffCategory::CivilServant,
                "village_head",
                "2005-03-01",
            )))
            .then_expect_error(OfficialError::Position(PositionError::Unknown(position(
                "village_head",
            ))));
    }

    #[test]
    fn registers_an_official_again_after_the_registration_was_retracted() {
        let corrected = official_registered(
            OFFICIAL,
            "dai-loc-dai-chanh",
            StaffCategory::CivilServant,
            "land_construction",
            "2005-04-01",
        );
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Retracted(retraction(1, "2005-03-10")),
            ])
            .when(register(corrected.clone()))
            .then_expect_events(vec![OfficialEvent::Registered(corrected)]);
    }

    // ---- facts about an official who is not registered ---------------------

    /// A command of every kind but `Register` and `Retract`.
    fn commands_about_the_official() -> Vec<OfficialCommand> {
        vec![
            OfficialCommand::RecordQualification(qualification(
                OFFICIAL,
                Track::PoliticalTheory,
                "elementary",
                None,
                "2006-05-01",
            )),
            assign(assigned(
                OFFICIAL,
                UNIT,
                StaffCategory::CivilServant,
                "culture_social",
                "2006-05-01",
            )),
            plan(planned(
                OFFICIAL,
                "committee_chair",
                2011,
                2015,
                "2006-05-01",
            )),
            OfficialCommand::Rate(rated(OFFICIAL, 2006, "2006-12-20")),
            OfficialCommand::RecordLeaving(left(OFFICIAL, "2006-05-01")),
        ]
    }

    #[test]
    fn it_should_not_record_facts_about_an_unregistered_official() {
        let error = OfficialError::UnknownOfficial(official_id(OFFICIAL));
        assert_contract(&error, ErrorCode::NotFound, 404, "/official_id");
        for command in commands_about_the_official() {
            Framework::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(error.clone());
        }
    }

    #[test]
    fn it_should_not_record_facts_about_an_official_whose_registration_was_retracted() {
        for command in commands_about_the_official() {
            Framework::with(())
                .given(vec![
                    registered(),
                    OfficialEvent::Retracted(retraction(1, "2005-03-10")),
                ])
                .when(command)
                .then_expect_error(OfficialError::UnknownOfficial(official_id(OFFICIAL)));
        }
    }

    #[test]
    fn it_should_not_assign_an_unregistered_official_and_reports_the_official_before_the_unit() {
        Framework::with(())
            .given_no_previous_events()
            .when(OfficialCommand::AssignPosition {
                fact: assigned(
                    OFFICIAL,
                    UNIT,
                    StaffCategory::CivilServant,
                    "village_head",
                    "2006-05-01",
                ),
                unit: Found::Missing,
                taxonomy: None,
            })
            .then_expect_error(OfficialError::UnknownOfficial(official_id(OFFICIAL)));
    }

    #[test]
    fn it_should_not_plan_for_an_unregistered_official_and_reports_the_official_before_the_taxonomy(
    ) {
        Framework::with(())
            .given_no_previous_events()
            .when(OfficialCommand::Plan {
                fact: planned(OFFICIAL, "village_head", 2011, 2015, "2006-05-01"),
                taxonomy: None,
            })
            .then_expect_error(OfficialError::UnknownOfficial(official_id(OFFICIAL)));
    }

    #[test]
    fn it_should_not_retract_anything_in_an_empty_stream() {
        Framework::with(())
            .given_no_previous_events()
            .when(OfficialCommand::Retract(retract(1, 0, "2006-05-01")))
            .then_expect_error(RetractionError::UnknownEvent(event_id(1)).into());
    }

    // ---- record_qualification ----------------------------------------------

    #[test]
    fn records_a_qualification() {
        let fact = qualification(
            OFFICIAL,
            Track::Professional,
            "college",
            Some("e-2008-017"),
            "2009-06-30",
        );
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::RecordQualification(fact.clone()))
            .then_expect_events(vec![OfficialEvent::QualificationRecorded(fact)]);
    }

    #[test]
    fn it_should_not_record_a_qualification_from_the_same_enrollment_twice() {
        let error = OfficialError::QualificationAlreadyRecorded(enrollment_id("e-2008-017"));
        assert_contract(&error, ErrorCode::Conflict, 409, "/source_enrollment_id");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::QualificationRecorded(qualification(
                    OFFICIAL,
                    Track::Professional,
                    "college",
                    Some("e-2008-017"),
                    "2009-06-30",
                )),
            ])
            .when(OfficialCommand::RecordQualification(qualification(
                OFFICIAL,
                Track::Professional,
                "university",
                Some("e-2008-017"),
                "2009-07-15",
            )))
            .then_expect_error(error);
    }

    #[test]
    fn records_a_qualification_from_an_enrollment_again_after_the_first_was_retracted() {
        let again = qualification(
            OFFICIAL,
            Track::Professional,
            "college",
            Some("e-2008-017"),
            "2009-07-15",
        );
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::QualificationRecorded(qualification(
                    OFFICIAL,
                    Track::Professional,
                    "college",
                    Some("e-2008-017"),
                    "2009-06-30",
                )),
                OfficialEvent::Retracted(retraction(2, "2009-07-01")),
            ])
            .when(OfficialCommand::RecordQualification(again.clone()))
            .then_expect_events(vec![OfficialEvent::QualificationRecorded(again)]);
    }

    #[test]
    fn records_the_same_qualification_twice_when_it_has_no_source_enrollment() {
        let fact = qualification(
            OFFICIAL,
            Track::GeneralEducation,
            "upper_secondary",
            None,
            "1988-06-30",
        );
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::QualificationRecorded(fact.clone()),
            ])
            .when(OfficialCommand::RecordQualification(fact.clone()))
            .then_expect_events(vec![OfficialEvent::QualificationRecorded(fact)]);
    }

    #[test]
    fn records_qualifications_from_different_enrollments() {
        let second = qualification(
            OFFICIAL,
            Track::PoliticalTheory,
            "intermediate",
            Some("e-2010-003"),
            "2011-01-20",
        );
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::QualificationRecorded(qualification(
                    OFFICIAL,
                    Track::Professional,
                    "college",
                    Some("e-2008-017"),
                    "2009-06-30",
                )),
            ])
            .when(OfficialCommand::RecordQualification(second.clone()))
            .then_expect_events(vec![OfficialEvent::QualificationRecorded(second)]);
    }

    // ---- assign_position ---------------------------------------------------

    #[test]
    fn assigns_a_position_in_a_registered_unit() {
        let fact = assigned(
            OFFICIAL,
            "dai-loc-dai-chanh",
            StaffCategory::Cadre,
            "committee_chair",
            "2011-07-01",
        );
        Framework::with(())
            .given(vec![registered()])
            .when(assign(fact.clone()))
            .then_expect_events(vec![OfficialEvent::PositionAssigned(fact)]);
    }

    #[test]
    fn assigns_a_position_to_return_to_post_after_leaving() {
        let fact = assigned(
            OFFICIAL,
            UNIT,
            StaffCategory::CivilServant,
            "land_construction",
            "2013-02-01",
        );
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
            ])
            .when(assign(fact.clone()))
            .then_expect_events(vec![OfficialEvent::PositionAssigned(fact)]);
    }

    #[test]
    fn it_should_not_assign_a_position_in_an_unknown_unit() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::AssignPosition {
                fact: assigned(
                    OFFICIAL,
                    "dai-loc-nowhere",
                    StaffCategory::Cadre,
                    "committee_chair",
                    "2011-07-01",
                ),
                unit: Found::Missing,
                taxonomy: Some(taxonomy()),
            })
            .then_expect_error(OfficialError::UnknownUnit(unit_id("dai-loc-nowhere")));
    }

    #[test]
    fn it_should_not_assign_a_position_when_no_taxonomy_is_in_force() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::AssignPosition {
                fact: assigned(
                    OFFICIAL,
                    UNIT,
                    StaffCategory::Cadre,
                    "committee_chair",
                    "2011-07-01",
                ),
                unit: Found::Registered(()),
                taxonomy: None,
            })
            .then_expect_error(OfficialError::NoTaxonomyInForce(date("2011-07-01")));
    }

    #[test]
    fn it_should_not_assign_a_position_outside_the_taxonomy() {
        Framework::with(())
            .given(vec![registered()])
            .when(assign(assigned(
                OFFICIAL,
                UNIT,
                StaffCategory::Cadre,
                "village_head",
                "2011-07-01",
            )))
            .then_expect_error(OfficialError::Position(PositionError::Unknown(position(
                "village_head",
            ))));
    }

    #[test]
    fn it_should_not_assign_a_position_of_another_staff_category() {
        Framework::with(())
            .given(vec![registered()])
            .when(assign(assigned(
                OFFICIAL,
                UNIT,
                StaffCategory::CivilServant,
                "committee_chair",
                "2011-07-01",
            )))
            .then_expect_error(OfficialError::Position(PositionError::CategoryMismatch {
                position: position("committee_chair"),
                expected: StaffCategory::Cadre,
                given: StaffCategory::CivilServant,
            }));
    }

    #[test]
    fn it_should_not_assign_an_unknown_unit_with_a_bad_position_and_reports_the_unit_first() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::AssignPosition {
                fact: assigned(
                    OFFICIAL,
                    "dai-loc-nowhere",
                    StaffCategory::Cadre,
                    "village_head",
                    "2011-07-01",
                ),
                unit: Found::Missing,
                taxonomy: None,
            })
            .then_expect_error(OfficialError::UnknownUnit(unit_id("dai-loc-nowhere")));
    }

    // ---- plan --------------------------------------------------------------

    #[test]
    fn plans_an_official_for_a_target_position() {
        let fact = planned(OFFICIAL, "committee_chair", 2011, 2015, "2010-03-01");
        Framework::with(())
            .given(vec![registered()])
            .when(plan(fact.clone()))
            .then_expect_events(vec![OfficialEvent::Planned(fact)]);
    }

    #[test]
    fn it_should_not_plan_for_an_unknown_target_position() {
        let error = OfficialError::TargetPosition(PositionError::Unknown(position("village_head")));
        assert_contract(&error, ErrorCode::InvalidValue, 422, "/target_position");
        Framework::with(())
            .given(vec![registered()])
            .when(plan(planned(
                OFFICIAL,
                "village_head",
                2011,
                2015,
                "2010-03-01",
            )))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_plan_when_no_taxonomy_is_in_force() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::Plan {
                fact: planned(OFFICIAL, "committee_chair", 2011, 2015, "2010-03-01"),
                taxonomy: None,
            })
            .then_expect_error(OfficialError::NoTaxonomyInForce(date("2010-03-01")));
    }

    // ---- rate --------------------------------------------------------------

    #[test]
    fn rates_an_official_for_a_year() {
        let fact = rated(OFFICIAL, 2010, "2010-12-20");
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::Rate(fact.clone()))
            .then_expect_events(vec![OfficialEvent::Rated(fact)]);
    }

    #[test]
    fn it_should_not_rate_the_same_year_twice() {
        let error = OfficialError::AlreadyRated(2010);
        assert_contract(&error, ErrorCode::Conflict, 409, "/year");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Rated(rated(OFFICIAL, 2010, "2010-12-20")),
            ])
            .when(OfficialCommand::Rate(rated(OFFICIAL, 2010, "2011-01-05")))
            .then_expect_error(error);
    }

    #[test]
    fn rates_a_year_again_after_its_rating_was_retracted() {
        let again = rated(OFFICIAL, 2010, "2011-01-05");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Rated(rated(OFFICIAL, 2010, "2010-12-20")),
                OfficialEvent::Retracted(retraction(2, "2011-01-04")),
            ])
            .when(OfficialCommand::Rate(again.clone()))
            .then_expect_events(vec![OfficialEvent::Rated(again)]);
    }

    #[test]
    fn rates_another_year() {
        let next = rated(OFFICIAL, 2011, "2011-12-20");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Rated(rated(OFFICIAL, 2010, "2010-12-20")),
            ])
            .when(OfficialCommand::Rate(next.clone()))
            .then_expect_events(vec![OfficialEvent::Rated(next)]);
    }

    // ---- record_leaving ----------------------------------------------------

    #[test]
    fn records_the_leaving_of_an_official_in_post() {
        let fact = left(OFFICIAL, "2012-08-31");
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::RecordLeaving(fact.clone()))
            .then_expect_events(vec![OfficialEvent::Left(fact)]);
    }

    #[test]
    fn records_a_leaving_on_the_day_of_the_registration() {
        let fact = left(OFFICIAL, "2005-03-01");
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::RecordLeaving(fact.clone()))
            .then_expect_events(vec![OfficialEvent::Left(fact)]);
    }

    #[test]
    fn it_should_not_record_a_leaving_of_an_official_who_has_left() {
        let error = OfficialError::NotInPost(date("2013-01-01"));
        assert_contract(&error, ErrorCode::Conflict, 409, "/effective_date");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
            ])
            .when(OfficialCommand::RecordLeaving(left(OFFICIAL, "2013-01-01")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_record_a_second_leaving_on_the_same_day() {
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
            ])
            .when(OfficialCommand::RecordLeaving(left(OFFICIAL, "2012-08-31")))
            .then_expect_error(OfficialError::NotInPost(date("2012-08-31")));
    }

    #[test]
    fn it_should_not_record_a_leaving_dated_before_the_registration() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::RecordLeaving(left(OFFICIAL, "2005-02-28")))
            .then_expect_error(OfficialError::NotInPost(date("2005-02-28")));
    }

    #[test]
    fn records_a_leaving_after_a_return_to_post() {
        let fact = left(OFFICIAL, "2015-06-30");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
                OfficialEvent::PositionAssigned(assigned(
                    OFFICIAL,
                    UNIT,
                    StaffCategory::CivilServant,
                    "land_construction",
                    "2013-02-01",
                )),
            ])
            .when(OfficialCommand::RecordLeaving(fact.clone()))
            .then_expect_events(vec![OfficialEvent::Left(fact)]);
    }

    #[test]
    fn it_should_not_record_a_leaving_dated_between_a_leaving_and_the_return_to_post() {
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
                OfficialEvent::PositionAssigned(assigned(
                    OFFICIAL,
                    UNIT,
                    StaffCategory::CivilServant,
                    "land_construction",
                    "2013-02-01",
                )),
            ])
            .when(OfficialCommand::RecordLeaving(left(OFFICIAL, "2012-12-31")))
            .then_expect_error(OfficialError::NotInPost(date("2012-12-31")));
    }

    #[test]
    fn records_a_late_leaving_dated_before_a_later_assignment() {
        // Reported late: the person left before the recorded assignment,
        // which then reads as a return to post.
        let fact = left(OFFICIAL, "2009-12-31");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::PositionAssigned(assigned(
                    OFFICIAL,
                    UNIT,
                    StaffCategory::Cadre,
                    "committee_vice_chair",
                    "2010-01-15",
                )),
            ])
            .when(OfficialCommand::RecordLeaving(fact.clone()))
            .then_expect_events(vec![OfficialEvent::Left(fact)]);
    }

    #[test]
    fn records_a_leaving_again_after_the_first_was_retracted() {
        let corrected = left(OFFICIAL, "2012-09-30");
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
                OfficialEvent::Retracted(retraction(2, "2012-09-05")),
            ])
            .when(OfficialCommand::RecordLeaving(corrected.clone()))
            .then_expect_events(vec![OfficialEvent::Left(corrected)]);
    }

    // ---- retract -----------------------------------------------------------

    fn retracts(version: u64) {
        Framework::with(())
            .given(history())
            .when(OfficialCommand::Retract(retract(version, 0, "2013-01-10")))
            .then_expect_events(vec![OfficialEvent::Retracted(retraction(
                version,
                "2013-01-10",
            ))]);
    }

    #[test]
    fn retracts_a_qualification() {
        retracts(2);
    }

    #[test]
    fn retracts_an_assignment() {
        retracts(3);
    }

    #[test]
    fn retracts_a_plan() {
        retracts(4);
    }

    #[test]
    fn retracts_a_rating() {
        retracts(5);
    }

    #[test]
    fn retracts_a_leaving() {
        retracts(6);
    }

    #[test]
    fn retracts_the_later_facts_one_by_one_then_the_registration() {
        let mut events = history();
        for version in 2..=6 {
            let command = OfficialCommand::Retract(retract(version, 0, "2013-01-10"));
            let produced = Framework::with(())
                .given(events.clone())
                .when(command)
                .inspect_result()
                .expect("each later fact can be retracted");
            assert_eq!(
                produced,
                vec![OfficialEvent::Retracted(retraction(version, "2013-01-10"))]
            );
            events.extend(produced);
        }
        Framework::with(())
            .given(events)
            .when(OfficialCommand::Retract(retract(1, 0, "2013-01-11")))
            .then_expect_events(vec![OfficialEvent::Retracted(retraction(1, "2013-01-11"))]);
    }

    #[test]
    fn retracts_a_registration_nothing_depends_on() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::Retract(retract(1, 0, "2005-03-10")))
            .then_expect_events(vec![OfficialEvent::Retracted(retraction(1, "2005-03-10"))]);

        let official = official(vec![
            registered(),
            OfficialEvent::Retracted(retraction(1, "2005-03-10")),
        ]);
        assert!(!official.is_registered());
        assert_eq!(official.registration(), None);
        assert_eq!(official.version(), 2);
        assert_eq!(official.tenure().in_post_on(date("2010-01-01")), None);
    }

    #[test]
    fn it_should_not_retract_an_event_that_is_not_in_the_stream() {
        let error = OfficialError::Retraction(RetractionError::UnknownEvent(event_id(7)));
        assert_contract(&error, ErrorCode::NotFound, 404, "/event_id");
        Framework::with(())
            .given(history())
            .when(OfficialCommand::Retract(retract(7, 0, "2013-01-10")))
            .then_expect_error(error);
        Framework::with(())
            .given(history())
            .when(OfficialCommand::Retract(retract(0, 0, "2013-01-10")))
            .then_expect_error(RetractionError::UnknownEvent(event_id(0)).into());
    }

    #[test]
    fn it_should_not_retract_a_fact_twice() {
        let error = OfficialError::Retraction(RetractionError::AlreadyRetracted(event_id(5)));
        assert_contract(&error, ErrorCode::Conflict, 409, "/event_id");
        let mut events = history();
        events.push(OfficialEvent::Retracted(retraction(5, "2013-01-10")));
        Framework::with(())
            .given(events)
            .when(OfficialCommand::Retract(retract(5, 0, "2013-01-11")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_retract_a_retraction() {
        let error = OfficialError::Retraction(RetractionError::RetractionOfRetraction(event_id(7)));
        assert_contract(&error, ErrorCode::Conflict, 409, "/event_id");
        let mut events = history();
        events.push(OfficialEvent::Retracted(retraction(5, "2013-01-10")));
        Framework::with(())
            .given(events)
            .when(OfficialCommand::Retract(retract(7, 0, "2013-01-11")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_retract_a_registration_that_later_facts_depend_on() {
        let error = OfficialError::Retraction(RetractionError::HasDependents {
            event_id: event_id(1),
            dependents: 5,
        });
        assert_contract(&error, ErrorCode::Conflict, 409, "/event_id");
        Framework::with(())
            .given(history())
            .when(OfficialCommand::Retract(retract(1, 0, "2013-01-10")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_count_only_live_later_facts_as_dependents_of_a_registration() {
        // Versions 2 and 5 are retracted (by 7 and 8); 3, 4 and 6 remain, and
        // the retractions themselves do not count.
        let mut events = history();
        events.push(OfficialEvent::Retracted(retraction(2, "2013-01-10")));
        events.push(OfficialEvent::Retracted(retraction(5, "2013-01-10")));
        Framework::with(())
            .given(events)
            .when(OfficialCommand::Retract(retract(1, 0, "2013-01-11")))
            .then_expect_error(
                RetractionError::HasDependents {
                    event_id: event_id(1),
                    dependents: 3,
                }
                .into(),
            );
    }

    #[test]
    fn it_should_not_retract_a_registration_that_facts_in_other_streams_depend_on() {
        Framework::with(())
            .given(vec![registered()])
            .when(OfficialCommand::Retract(retract(1, 2, "2013-01-10")))
            .then_expect_error(
                RetractionError::HasDependents {
                    event_id: event_id(1),
                    dependents: 2,
                }
                .into(),
            );
        // Dependents in this stream and elsewhere add up.
        Framework::with(())
            .given(vec![
                registered(),
                OfficialEvent::Rated(rated(OFFICIAL, 2010, "2010-12-20")),
            ])
            .when(OfficialCommand::Retract(retract(1, 3, "2013-01-10")))
            .then_expect_error(
                RetractionError::HasDependents {
                    event_id: event_id(1),
                    dependents: 4,
                }
                .into(),
            );
    }

    // ---- derived state -----------------------------------------------------

    #[test]
    fn is_in_post_from_the_registration_until_the_leaving() {
        let before = official(vec![]);
        assert_eq!(before.version(), 0);
        assert!(!before.is_registered());
        assert_eq!(before.tenure().in_post_on(date("2005-03-01")), None);

        let official = official(vec![
            registered(),
            OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
        ]);
        assert!(official.is_registered());
        assert_eq!(official.registration(), Some(&registration()));
        let tenure = official.tenure();
        assert_eq!(tenure.in_post_on(date("2005-02-28")), None);
        assert_eq!(tenure.in_post_on(date("2005-03-01")), Some(true));
        assert_eq!(tenure.in_post_on(date("2012-08-30")), Some(true));
        assert_eq!(tenure.in_post_on(date("2012-08-31")), Some(false));
        assert_eq!(tenure.in_post_on(date("2020-01-01")), Some(false));
        assert_eq!(tenure.left_on(date("2012-08-30")), None);
        assert_eq!(tenure.left_on(date("2020-01-01")), Some(date("2012-08-31")));
    }

    #[test]
    fn is_in_post_again_after_a_return_to_post() {
        let tenure = official(vec![
            registered(),
            OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
            OfficialEvent::PositionAssigned(assigned(
                OFFICIAL,
                UNIT,
                StaffCategory::CivilServant,
                "land_construction",
                "2013-02-01",
            )),
        ])
        .tenure();
        assert_eq!(tenure.in_post_on(date("2013-01-31")), Some(false));
        assert_eq!(tenure.in_post_on(date("2013-02-01")), Some(true));
        assert_eq!(tenure.left_on(date("2013-02-01")), None);
    }

    #[test]
    fn orders_a_same_day_leaving_and_assignment_by_version() {
        let assignment = OfficialEvent::PositionAssigned(assigned(
            OFFICIAL,
            UNIT,
            StaffCategory::CivilServant,
            "culture_social",
            "2012-08-31",
        ));
        let leaving = OfficialEvent::Left(left(OFFICIAL, "2012-08-31"));

        let left_last = official(vec![registered(), assignment.clone(), leaving.clone()]);
        assert_eq!(
            left_last.tenure().in_post_on(date("2012-08-31")),
            Some(false)
        );
        assert_eq!(
            left_last.tenure().left_on(date("2012-08-31")),
            Some(date("2012-08-31"))
        );

        let assigned_last = official(vec![registered(), leaving, assignment]);
        assert_eq!(
            assigned_last.tenure().in_post_on(date("2012-08-31")),
            Some(true)
        );
        assert_eq!(assigned_last.tenure().left_on(date("2012-08-31")), None);
    }

    #[test]
    fn a_retracted_leaving_no_longer_ends_the_tenure() {
        let official = official(vec![
            registered(),
            OfficialEvent::Left(left(OFFICIAL, "2012-08-31")),
            OfficialEvent::Retracted(retraction(2, "2012-09-05")),
        ]);
        assert_eq!(official.tenure().in_post_on(date("2013-01-01")), Some(true));
        assert_eq!(official.tenure().left_on(date("2013-01-01")), None);
        assert_eq!(official.version(), 3);
    }

    #[test]
    fn finds_the_live_qualification_recorded_from_an_enrollment() {
        let source = enrollment_id("e-2008-017");
        let recorded = OfficialEvent::QualificationRecorded(qualification(
            OFFICIAL,
            Track::Professional,
            "college",
            Some("e-2008-017"),
            "2009-06-30",
        ));
        let mut events = vec![
            registered(),
            OfficialEvent::QualificationRecorded(qualification(
                OFFICIAL,
                Track::GeneralEducation,
                "upper_secondary",
                None,
                "1988-06-30",
            )),
            recorded.clone(),
        ];
        assert_eq!(
            official(events.clone()).qualification_from(&source),
            Some(3)
        );
        assert_eq!(
            official(events.clone()).qualification_from(&enrollment_id("e-other")),
            None
        );

        events.push(OfficialEvent::Retracted(retraction(3, "2009-07-01")));
        assert_eq!(official(events.clone()).qualification_from(&source), None);
        assert_eq!(official(events.clone()).qualifications().count(), 1);

        events.push(recorded);
        assert_eq!(official(events).qualification_from(&source), Some(5));
    }

    // ---- events and stored streams ----------------------------------------

    #[test]
    fn names_its_events_with_the_contract_fact_types() {
        let types: Vec<String> = history()
            .into_iter()
            .chain([OfficialEvent::Retracted(retraction(2, "2013-01-10"))])
            .map(|e| e.event_type())
            .collect();
        assert_eq!(
            types,
            vec![
                "official.registered.v1",
                "official.qualification_recorded.v1",
                "official.position_assigned.v1",
                "official.planned.v1",
                "official.rated.v1",
                "official.left.v1",
                "fact.retracted.v1",
            ]
        );
        assert_eq!(registered().event_version(), "1");
    }

    fn stored(version: u64, fact: Fact) -> StoredFact {
        StoredFact {
            event_id: event_id(version),
            version,
            fact,
        }
    }

    #[test]
    fn resolves_a_stored_stream_with_a_retraction() {
        let stream: Vec<StoredFact> = history()
            .into_iter()
            .chain([OfficialEvent::Retracted(retraction(5, "2013-01-10"))])
            .zip(1..)
            .map(|(event, version)| stored(version, event.into_fact()))
            .collect();
        let mut expected = history();
        expected.push(OfficialEvent::Retracted(retraction(5, "2013-01-10")));
        let events =
            resolve_stream::<OfficialEvent>(&stream).expect("a well-formed official stream");
        assert_eq!(events, expected);

        let official = official(events);
        assert_eq!(official.version(), 7);
        Framework::with(())
            .given(expected)
            .when(OfficialCommand::Rate(rated(OFFICIAL, 2010, "2013-01-11")))
            .then_expect_events(vec![OfficialEvent::Rated(rated(
                OFFICIAL,
                2010,
                "2013-01-11",
            ))]);
    }

    #[test]
    fn it_should_not_resolve_a_training_fact_in_an_official_stream() {
        let stream = vec![
            stored(1, Fact::OfficialRegistered(registration())),
            stored(
                2,
                Fact::TrainingEnrolled(enrolled("e-2008-017", "2008-09-05")),
            ),
        ];
        assert_eq!(
            resolve_stream::<OfficialEvent>(&stream),
            Err(StreamError::ForeignFact {
                aggregate: "official",
                version: 2,
                fact_type: "training.enrolled.v1",
            })
        );
    }

    #[test]
    fn it_should_not_resolve_a_retraction_of_an_unknown_event() {
        let stream = vec![
            stored(1, Fact::OfficialRegistered(registration())),
            stored(2, Fact::FactRetracted(retracted(9, "2005-03-10"))),
        ];
        assert_eq!(
            resolve_stream::<OfficialEvent>(&stream),
            Err(StreamError::DanglingRetraction {
                version: 2,
                event_id: event_id(9),
            })
        );
    }

    #[test]
    fn it_should_not_resolve_a_retraction_of_a_later_event() {
        let stream = vec![
            stored(1, Fact::OfficialRegistered(registration())),
            stored(2, Fact::FactRetracted(retracted(3, "2010-12-21"))),
            stored(3, Fact::Rated(rated(OFFICIAL, 2010, "2010-12-20"))),
        ];
        assert_eq!(
            resolve_stream::<OfficialEvent>(&stream),
            Err(StreamError::DanglingRetraction {
                version: 2,
                event_id: event_id(3),
            })
        );
    }
}
