//! A unit (province, district, commune): registration and reorganisations
//! (renamed, re-parented, dissolved into another); stream `unit-<id>`.
//!
//! Rules (docs/contract.md "Rules the ledger enforces"):
//! - a unit id registered twice is a conflict; a referenced parent or
//!   receiving unit must be registered (`not_found` otherwise);
//! - a reorganisation that would make the hierarchy a cycle is a conflict;
//! - a dissolved unit is not reorganised from its dissolution on, nor
//!   dissolved twice (retract the dissolution to correct it); a late report
//!   dated before the dissolution is accepted;
//! - a registration with later facts depending on it cannot be retracted;
//!   reorganisations can be retracted one by one.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use tledger_events::facts::{UnitRegistered, UnitReorganised};
use tledger_events::unit_tree::UnitChange;
use tledger_events::{Date, Fact, UnitId};

use crate::error::{ContractError, ErrorCode};
use crate::existence::Found;
use crate::retraction::IntoFact;
use crate::retraction::{FromFact, Records, RetractFact, Retractable, Retraction, RetractionError};

/// What the unit stream records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnitEvent {
    Registered(UnitRegistered),
    Reorganised(UnitReorganised),
    Retracted(Retraction),
}

impl crate::retraction::IntoFact for UnitEvent {
    fn into_fact(self) -> Fact {
        match self {
            UnitEvent::Registered(d) => Fact::UnitRegistered(d),
            UnitEvent::Reorganised(d) => Fact::UnitReorganised(d),
            UnitEvent::Retracted(r) => Fact::FactRetracted(r.fact),
        }
    }
}

impl FromFact for UnitEvent {
    const AGGREGATE: &'static str = "unit";
    fn from_fact(fact: Fact, retraction_target: Option<u64>) -> Option<Self> {
        Some(match fact {
            Fact::UnitRegistered(d) => Self::Registered(d),
            Fact::UnitReorganised(d) => Self::Reorganised(d),
            Fact::FactRetracted(fact) => Self::Retracted(Retraction {
                target_version: retraction_target?,
                fact,
            }),
            _ => return None,
        })
    }
}

impl Retractable for UnitEvent {
    fn retraction(&self) -> Option<&Retraction> {
        match self {
            UnitEvent::Retracted(r) => Some(r),
            _ => None,
        }
    }
}

impl DomainEvent for UnitEvent {
    fn event_type(&self) -> String {
        self.clone().into_fact().fact_type().as_str().to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Commands, with the look-ups their rules need already done.
#[derive(Clone, Debug, PartialEq)]
pub enum UnitCommand {
    Register {
        fact: UnitRegistered,
        /// What the look-up found of `fact.parent_id`.
        parent: Found,
    },
    Reorganise {
        fact: UnitReorganised,
        /// When `fact.parent_id` is given: the new parent followed by its
        /// ancestors as the hierarchy stands on the effective date; `None`
        /// when that parent is not registered.
        new_parent_line: Option<Vec<UnitId>>,
        /// What the look-up found of `fact.dissolved_into`.
        dissolved_into: Found,
    },
    Retract(RetractFact),
}

/// Why a unit command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("unit {0} is not registered")]
    UnknownUnit(UnitId),
    #[error("parent unit {0} is not registered")]
    UnknownParent(UnitId),
    #[error("unit {0}, to dissolve into, is not registered")]
    UnknownReceivingUnit(UnitId),
    #[error("unit {0} is already registered")]
    AlreadyRegistered(UnitId),
    #[error("unit {unit} was dissolved into {into} on {on}: retract the dissolution to reorganise it from then on")]
    Dissolved {
        unit: UnitId,
        into: UnitId,
        on: Date,
    },
    #[error("making {parent} the parent of {unit} would make the hierarchy a cycle")]
    HierarchyCycle { unit: UnitId, parent: UnitId },
    #[error(transparent)]
    Retraction(#[from] RetractionError),
}

impl ContractError for UnitError {
    fn code(&self) -> ErrorCode {
        match self {
            UnitError::UnknownUnit(_)
            | UnitError::UnknownParent(_)
            | UnitError::UnknownReceivingUnit(_) => ErrorCode::NotFound,
            UnitError::AlreadyRegistered(_)
            | UnitError::Dissolved { .. }
            | UnitError::HierarchyCycle { .. } => ErrorCode::Conflict,
            UnitError::Retraction(e) => e.code(),
        }
    }

    fn field(&self) -> Option<String> {
        let pointer = match self {
            UnitError::UnknownUnit(_)
            | UnitError::AlreadyRegistered(_)
            | UnitError::Dissolved { .. } => "/unit_id",
            UnitError::UnknownParent(_) | UnitError::HierarchyCycle { .. } => "/parent_id",
            UnitError::UnknownReceivingUnit(_) => "/dissolved_into",
            UnitError::Retraction(e) => return e.field(),
        };
        Some(pointer.into())
    }
}

/// 404 unless the parent a registration names is registered.
pub fn check_registration_references(
    fact: &UnitRegistered,
    parent: &Found,
) -> Result<(), UnitError> {
    match &fact.parent_id {
        Some(parent_id) if parent.is_missing() => Err(UnitError::UnknownParent(parent_id.clone())),
        _ => Ok(()),
    }
}

/// 404 unless the unit a reorganisation is about, the new parent and the
/// receiving unit it names are registered, reported in that order.
pub fn check_reorganisation_references(
    fact: &UnitReorganised,
    unit: &Found,
    new_parent: &Found,
    dissolved_into: &Found,
) -> Result<(), UnitError> {
    if unit.is_missing() {
        return Err(UnitError::UnknownUnit(fact.unit_id.clone()));
    }
    if let Some(parent) = fact.parent_id.as_ref().filter(|_| new_parent.is_missing()) {
        return Err(UnitError::UnknownParent(parent.clone()));
    }
    if let Some(into) = fact
        .dissolved_into
        .as_ref()
        .filter(|_| dissolved_into.is_missing())
    {
        return Err(UnitError::UnknownReceivingUnit(into.clone()));
    }
    Ok(())
}

/// The unit aggregate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    records: Records<UnitEvent>,
}

impl Unit {
    pub fn version(&self) -> u64 {
        self.records.version()
    }

    /// The registration in force (not retracted).
    pub fn registration(&self) -> Option<&UnitRegistered> {
        self.records.live().find_map(|(_, e)| match e {
            UnitEvent::Registered(r) => Some(r),
            _ => None,
        })
    }

    /// Reorganisations not retracted, in order.
    pub fn reorganisations(&self) -> impl Iterator<Item = &UnitReorganised> {
        self.records.live().filter_map(|(_, e)| match e {
            UnitEvent::Reorganised(r) => Some(r),
            _ => None,
        })
    }

    /// What the latest reorganisation (not retracted) that sets it says:
    /// latest by `effective_date`, a later fact winning a tie, so that a
    /// reorganisation reported late does not override a later-dated one.
    fn latest<'a, T: ?Sized>(
        &'a self,
        pick: impl Fn(&'a UnitReorganised) -> Option<&'a T>,
    ) -> Option<&'a T> {
        self.records
            .live()
            .filter_map(|(version, e)| match e {
                UnitEvent::Reorganised(r) => {
                    pick(r).map(|value| ((r.effective_date, version), value))
                }
                _ => None,
            })
            .max_by_key(|(order, _)| *order)
            .map(|(_, value)| value)
    }

    /// The current name, after renamings (the latest-dated one wins).
    pub fn name(&self) -> Option<&str> {
        let registered = self.registration()?;
        let renamed = self.latest(|r| r.name.as_deref());
        Some(renamed.unwrap_or(&registered.name))
    }

    /// The current parent, after re-parentings (the latest-dated one wins).
    pub fn parent(&self) -> Option<&UnitId> {
        let registered = self.registration()?;
        let moved = self.latest(|r| r.parent_id.as_ref());
        moved.or(registered.parent_id.as_ref())
    }

    /// The unit this one was dissolved into, if it was.
    pub fn dissolved_into(&self) -> Option<&UnitId> {
        self.dissolution().map(|(into, _)| into)
    }

    /// The dissolution in force: into which unit, and from when.
    pub fn dissolution(&self) -> Option<(&UnitId, Date)> {
        self.reorganisations().find_map(|r| {
            r.dissolved_into
                .as_ref()
                .map(|into| (into, r.effective_date))
        })
    }

    /// The unit's facts in force as changes of the unit tree, ordered by
    /// their stream version; none while the unit is not registered (its
    /// reorganisations then place it nowhere).
    pub fn tree_changes(&self) -> Vec<UnitChange> {
        if self.registration().is_none() {
            return Vec::new();
        }
        self.records
            .live()
            .filter_map(|(version, e)| match e {
                UnitEvent::Registered(r) => Some(UnitChange::registration(r, version)),
                UnitEvent::Reorganised(r) => Some(UnitChange::reorganisation(r, version)),
                UnitEvent::Retracted(_) => None,
            })
            .collect()
    }

    fn decide(&self, command: UnitCommand) -> Result<UnitEvent, UnitError> {
        match command {
            UnitCommand::Register { fact, parent } => {
                check_registration_references(&fact, &parent)?;
                if self.registration().is_some() {
                    return Err(UnitError::AlreadyRegistered(fact.unit_id));
                }
                if fact.parent_id.as_ref() == Some(&fact.unit_id) {
                    return Err(UnitError::HierarchyCycle {
                        parent: fact.unit_id.clone(),
                        unit: fact.unit_id,
                    });
                }
                Ok(UnitEvent::Registered(fact))
            }
            UnitCommand::Reorganise {
                fact,
                new_parent_line,
                dissolved_into,
            } => {
                let unit = Found::from_option(self.registration().map(|_| ()));
                let new_parent = match (&fact.parent_id, &new_parent_line) {
                    (Some(_), None) => Found::Missing,
                    _ => Found::Registered(()),
                };
                check_reorganisation_references(&fact, &unit, &new_parent, &dissolved_into)?;
                let line = new_parent_line.unwrap_or_default();
                // A late-reported change dated before the dissolution is
                // accepted; anything dated on or after it, or a second
                // dissolution, is not.
                if let Some((into, on)) = self.dissolution() {
                    if fact.effective_date >= on || fact.dissolved_into.is_some() {
                        return Err(UnitError::Dissolved {
                            unit: fact.unit_id,
                            into: into.clone(),
                            on,
                        });
                    }
                }
                if let Some(parent) = &fact.parent_id {
                    if parent == &fact.unit_id || line.contains(&fact.unit_id) {
                        return Err(UnitError::HierarchyCycle {
                            unit: fact.unit_id.clone(),
                            parent: parent.clone(),
                        });
                    }
                }
                Ok(UnitEvent::Reorganised(fact))
            }
            UnitCommand::Retract(retract) => {
                let target = self.records.retraction_target(&retract)?;
                if let UnitEvent::Registered(_) = target {
                    let dependents =
                        self.records.live_after(retract.target_version) + retract.dependents;
                    if dependents > 0 {
                        return Err(RetractionError::HasDependents {
                            event_id: retract.fact.event_id,
                            dependents,
                        }
                        .into());
                    }
                }
                Ok(UnitEvent::Retracted(Retraction {
                    target_version: retract.target_version,
                    fact: retract.fact,
                }))
            }
        }
    }
}

records_aggregate!(Unit, "unit", UnitCommand, UnitEvent, UnitError);

#[cfg(test)]
mod tests {
    use crate::retraction::IntoFact;
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use tledger_events::UnitLevel;

    use super::*;
    use crate::fixtures::*;
    use crate::retraction::{resolve_stream, StoredFact};

    /// What a look-up found, as the tests name it.
    fn found(registered: bool) -> Found {
        if registered {
            Found::Registered(())
        } else {
            Found::Missing
        }
    }

    fn register(fact: UnitRegistered, parent_registered: bool) -> UnitCommand {
        UnitCommand::Register {
            fact,
            parent: found(parent_registered),
        }
    }

    fn reorganise(
        fact: UnitReorganised,
        new_parent_line: Option<Vec<UnitId>>,
        dissolved_into_registered: bool,
    ) -> UnitCommand {
        UnitCommand::Reorganise {
            fact,
            new_parent_line,
            dissolved_into: found(dissolved_into_registered),
        }
    }

    /// A parent line: the new parent, then its ancestors.
    fn line(ids: &[&str]) -> Option<Vec<UnitId>> {
        Some(ids.iter().map(|id| unit_id(id)).collect())
    }

    fn renamed(id: &str, name: &str, on: &str) -> UnitReorganised {
        UnitReorganised {
            name: Some(name.into()),
            ..reorganised(id, on)
        }
    }

    fn reparented(id: &str, parent: &str, on: &str) -> UnitReorganised {
        UnitReorganised {
            parent_id: Some(unit_id(parent)),
            ..reorganised(id, on)
        }
    }

    fn dissolved(id: &str, into: &str, on: &str) -> UnitReorganised {
        UnitReorganised {
            dissolved_into: Some(unit_id(into)),
            ..reorganised(id, on)
        }
    }

    fn unit_after(events: Vec<UnitEvent>) -> Unit {
        let mut unit = Unit::default();
        for event in events {
            unit.apply(event);
        }
        unit
    }

    fn assert_contract(error: &UnitError, code: ErrorCode, status: u16, field: &str) {
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(error.code().http_status(), status, "{error}");
        assert_eq!(error.field().as_deref(), Some(field), "{error}");
    }

    /// The commune `dai-loc-dai-an` under the district `dai-loc`.
    fn dai_an() -> UnitEvent {
        UnitEvent::Registered(unit_registered(
            "dai-loc-dai-an",
            Some("dai-loc"),
            "1990-01-01",
        ))
    }

    // --- registration ---

    #[test]
    fn it_registers_a_unit_without_parent() {
        let fact = unit_registered("quang-nam", None, "1990-01-01");
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(register(fact.clone(), false))
            .then_expect_events(vec![UnitEvent::Registered(fact)]);
    }

    #[test]
    fn it_registers_a_unit_under_a_registered_parent() {
        let fact = UnitRegistered {
            level: UnitLevel::District,
            ..unit_registered("dai-loc", Some("quang-nam"), "1990-01-01")
        };
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(register(fact.clone(), true))
            .then_expect_events(vec![UnitEvent::Registered(fact)]);
    }

    #[test]
    fn it_should_not_register_a_unit_under_an_unknown_parent() {
        let error = UnitError::UnknownParent(unit_id("dai-loc"));
        assert_contract(&error, ErrorCode::NotFound, 404, "/parent_id");
        assert_eq!(error.to_string(), "parent unit dai-loc is not registered");
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(register(
                unit_registered("dai-loc-dai-an", Some("dai-loc"), "1990-01-01"),
                false,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_a_unit_twice() {
        let error = UnitError::AlreadyRegistered(unit_id("dai-loc-dai-an"));
        assert_contract(&error, ErrorCode::Conflict, 409, "/unit_id");
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(register(
                unit_registered("dai-loc-dai-an", Some("dai-loc"), "2000-01-01"),
                true,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_a_unit_twice_but_reports_an_unknown_parent_first() {
        // 404 before 409 (docs/contract.md, "Access").
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(register(
                unit_registered("dai-loc-dai-an", Some("hoi-an"), "2000-01-01"),
                false,
            ))
            .then_expect_error(UnitError::UnknownParent(unit_id("hoi-an")));
    }

    #[test]
    fn it_should_not_register_a_unit_as_its_own_parent() {
        let error = UnitError::HierarchyCycle {
            unit: unit_id("dai-loc"),
            parent: unit_id("dai-loc"),
        };
        assert_contract(&error, ErrorCode::Conflict, 409, "/parent_id");
        assert_eq!(
            error.to_string(),
            "making dai-loc the parent of dai-loc would make the hierarchy a cycle"
        );
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(register(
                unit_registered("dai-loc", Some("dai-loc"), "1990-01-01"),
                true,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_register_a_unit_as_its_own_parent_reporting_the_parent_unknown_first() {
        // The look-up finds no registered `dai-loc` (it is the unit being
        // registered): 404 comes before 409.
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(register(
                unit_registered("dai-loc", Some("dai-loc"), "1990-01-01"),
                false,
            ))
            .then_expect_error(UnitError::UnknownParent(unit_id("dai-loc")));
    }

    #[test]
    fn it_registers_a_unit_again_after_its_registration_is_retracted() {
        let fact = unit_registered("dai-loc-dai-an", Some("dai-loc"), "1991-01-01");
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Retracted(retraction(1, "1990-06-01")),
            ])
            .when(register(fact.clone(), true))
            .then_expect_events(vec![UnitEvent::Registered(fact)]);
    }

    // --- reorganisation ---

    #[test]
    fn it_renames_a_unit() {
        let fact = renamed("dai-loc-dai-an", "Xã Đại An mới", "2025-07-01");
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(fact.clone(), None, false))
            .then_expect_events(vec![UnitEvent::Reorganised(fact)]);
    }

    #[test]
    fn it_reparents_a_unit() {
        // The 2025 reform: the district level is abolished, communes move
        // to the province.
        let fact = reparented("dai-loc-dai-an", "quang-nam", "2025-07-01");
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(fact.clone(), line(&["quang-nam"]), false))
            .then_expect_events(vec![UnitEvent::Reorganised(fact)]);
    }

    #[test]
    fn it_dissolves_a_unit_into_another() {
        let fact = dissolved("dai-loc-dai-an", "dai-loc-dai-hiep", "2025-07-01");
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(fact.clone(), None, true))
            .then_expect_events(vec![UnitEvent::Reorganised(fact)]);
    }

    #[test]
    fn it_should_not_reorganise_an_unregistered_unit() {
        let error = UnitError::UnknownUnit(unit_id("dai-loc-dai-an"));
        assert_contract(&error, ErrorCode::NotFound, 404, "/unit_id");
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(reorganise(
                renamed("dai-loc-dai-an", "Xã Đại An", "2025-07-01"),
                None,
                false,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_reorganise_a_unit_whose_registration_is_retracted() {
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Retracted(retraction(1, "1990-06-01")),
            ])
            .when(reorganise(
                renamed("dai-loc-dai-an", "Xã Đại An", "2025-07-01"),
                None,
                false,
            ))
            .then_expect_error(UnitError::UnknownUnit(unit_id("dai-loc-dai-an")));
    }

    #[test]
    fn it_should_not_reparent_a_unit_under_an_unregistered_unit() {
        let error = UnitError::UnknownParent(unit_id("hoi-an"));
        assert_contract(&error, ErrorCode::NotFound, 404, "/parent_id");
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(
                reparented("dai-loc-dai-an", "hoi-an", "2025-07-01"),
                None,
                false,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_dissolve_a_unit_into_an_unregistered_unit() {
        let error = UnitError::UnknownReceivingUnit(unit_id("dai-loc-moi"));
        assert_contract(&error, ErrorCode::NotFound, 404, "/dissolved_into");
        assert_eq!(
            error.to_string(),
            "unit dai-loc-moi, to dissolve into, is not registered"
        );
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(
                dissolved("dai-loc-dai-an", "dai-loc-moi", "2025-07-01"),
                None,
                false,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_reparent_a_unit_under_its_child() {
        // dai-loc-dai-an's parent is dai-loc; re-parenting dai-loc under
        // dai-loc-dai-an: the new parent's line holds dai-loc.
        let error = UnitError::HierarchyCycle {
            unit: unit_id("dai-loc"),
            parent: unit_id("dai-loc-dai-an"),
        };
        assert_contract(&error, ErrorCode::Conflict, 409, "/parent_id");
        TestFramework::<Unit>::with(())
            .given(vec![UnitEvent::Registered(unit_registered(
                "dai-loc",
                Some("quang-nam"),
                "1990-01-01",
            ))])
            .when(reorganise(
                reparented("dai-loc", "dai-loc-dai-an", "2025-07-01"),
                line(&["dai-loc-dai-an", "dai-loc", "quang-nam"]),
                false,
            ))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_reparent_a_unit_under_its_grandchild() {
        // quang-nam > dai-loc > dai-loc-dai-an: quang-nam under
        // dai-loc-dai-an would close a cycle of three.
        TestFramework::<Unit>::with(())
            .given(vec![UnitEvent::Registered(unit_registered(
                "quang-nam",
                None,
                "1990-01-01",
            ))])
            .when(reorganise(
                reparented("quang-nam", "dai-loc-dai-an", "2025-07-01"),
                line(&["dai-loc-dai-an", "dai-loc", "quang-nam"]),
                false,
            ))
            .then_expect_error(UnitError::HierarchyCycle {
                unit: unit_id("quang-nam"),
                parent: unit_id("dai-loc-dai-an"),
            });
    }

    #[test]
    fn it_should_not_reparent_a_unit_under_itself() {
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(
                reparented("dai-loc-dai-an", "dai-loc-dai-an", "2025-07-01"),
                line(&["dai-loc-dai-an", "dai-loc"]),
                false,
            ))
            .then_expect_error(UnitError::HierarchyCycle {
                unit: unit_id("dai-loc-dai-an"),
                parent: unit_id("dai-loc-dai-an"),
            });
    }

    #[test]
    fn it_reparents_a_unit_under_a_sibling_line_without_it() {
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(reorganise(
                reparented("dai-loc-dai-an", "dai-loc-dai-hiep", "2025-07-01"),
                line(&["dai-loc-dai-hiep", "dai-loc", "quang-nam"]),
                false,
            ))
            .then_expect_events(vec![UnitEvent::Reorganised(reparented(
                "dai-loc-dai-an",
                "dai-loc-dai-hiep",
                "2025-07-01",
            ))]);
    }

    #[test]
    fn it_should_not_reorganise_a_dissolved_unit() {
        let error = UnitError::Dissolved {
            unit: unit_id("dai-loc-dai-an"),
            into: unit_id("dai-loc-dai-hiep"),
            on: date("2025-07-01"),
        };
        assert_contract(&error, ErrorCode::Conflict, 409, "/unit_id");
        assert_eq!(
            error.to_string(),
            "unit dai-loc-dai-an was dissolved into dai-loc-dai-hiep on 2025-07-01: retract the dissolution to reorganise it from then on"
        );
        let given = vec![
            dai_an(),
            UnitEvent::Reorganised(dissolved(
                "dai-loc-dai-an",
                "dai-loc-dai-hiep",
                "2025-07-01",
            )),
        ];
        for command in [
            reorganise(
                renamed("dai-loc-dai-an", "Xã Đại An", "2025-08-01"),
                None,
                false,
            ),
            reorganise(
                reparented("dai-loc-dai-an", "quang-nam", "2025-08-01"),
                line(&["quang-nam"]),
                false,
            ),
            reorganise(
                dissolved("dai-loc-dai-an", "dai-loc-dai-son", "2025-08-01"),
                None,
                true,
            ),
        ] {
            TestFramework::<Unit>::with(())
                .given(given.clone())
                .when(command)
                .then_expect_error(error.clone());
        }
    }

    #[test]
    fn it_reorganises_a_unit_again_after_its_dissolution_is_retracted() {
        let fact = dissolved("dai-loc-dai-an", "dai-loc-dai-son", "2025-07-01");
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(dissolved(
                    "dai-loc-dai-an",
                    "dai-loc-dai-hiep",
                    "2025-07-01",
                )),
                UnitEvent::Retracted(retraction(2, "2025-07-02")),
            ])
            .when(reorganise(fact.clone(), None, true))
            .then_expect_events(vec![UnitEvent::Reorganised(fact)]);
    }

    // --- the order in which errors are reported ---

    #[test]
    fn it_should_not_reorganise_an_unregistered_unit_whatever_else_is_wrong() {
        // Unknown unit (404) before unknown parent (404) and before a cycle (409).
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(reorganise(
                reparented("dai-loc", "dai-loc", "2025-07-01"),
                line(&["dai-loc"]),
                false,
            ))
            .then_expect_error(UnitError::UnknownUnit(unit_id("dai-loc")));
        TestFramework::<Unit>::with(())
            .given_no_previous_events()
            .when(reorganise(
                reparented("dai-loc", "hoi-an", "2025-07-01"),
                None,
                false,
            ))
            .then_expect_error(UnitError::UnknownUnit(unit_id("dai-loc")));
    }

    #[test]
    fn it_should_not_reorganise_a_dissolved_unit_but_reports_unknown_units_first() {
        let given = vec![
            dai_an(),
            UnitEvent::Reorganised(dissolved(
                "dai-loc-dai-an",
                "dai-loc-dai-hiep",
                "2025-07-01",
            )),
        ];
        TestFramework::<Unit>::with(())
            .given(given.clone())
            .when(reorganise(
                reparented("dai-loc-dai-an", "hoi-an", "2025-08-01"),
                None,
                false,
            ))
            .then_expect_error(UnitError::UnknownParent(unit_id("hoi-an")));
        TestFramework::<Unit>::with(())
            .given(given)
            .when(reorganise(
                dissolved("dai-loc-dai-an", "hoi-an", "2025-08-01"),
                None,
                false,
            ))
            .then_expect_error(UnitError::UnknownReceivingUnit(unit_id("hoi-an")));
    }

    #[test]
    fn it_should_not_reorganise_a_dissolved_unit_before_looking_for_a_cycle() {
        TestFramework::<Unit>::with(())
            .given(vec![
                UnitEvent::Registered(unit_registered("dai-loc", Some("quang-nam"), "1990-01-01")),
                UnitEvent::Reorganised(dissolved("dai-loc", "quang-nam", "2025-07-01")),
            ])
            .when(reorganise(
                reparented("dai-loc", "dai-loc-dai-an", "2025-08-01"),
                line(&["dai-loc-dai-an", "dai-loc"]),
                false,
            ))
            .then_expect_error(UnitError::Dissolved {
                unit: unit_id("dai-loc"),
                into: unit_id("quang-nam"),
                on: date("2025-07-01"),
            });
    }

    #[test]
    fn it_accepts_a_late_reported_renaming_dated_before_the_dissolution() {
        let late = renamed("dai-loc-dai-an", "Xã Đại An (cũ)", "2010-03-01");
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(dissolved(
                    "dai-loc-dai-an",
                    "dai-loc-dai-hiep",
                    "2025-07-01",
                )),
            ])
            .when(reorganise(late.clone(), None, false))
            .then_expect_events(vec![UnitEvent::Reorganised(late)]);
    }

    #[test]
    fn it_should_not_dissolve_a_unit_twice_even_with_an_earlier_date() {
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(dissolved(
                    "dai-loc-dai-an",
                    "dai-loc-dai-hiep",
                    "2025-07-01",
                )),
            ])
            .when(reorganise(
                dissolved("dai-loc-dai-an", "dai-loc-dai-son", "2020-01-01"),
                None,
                true,
            ))
            .then_expect_error(UnitError::Dissolved {
                unit: unit_id("dai-loc-dai-an"),
                into: unit_id("dai-loc-dai-hiep"),
                on: date("2025-07-01"),
            });
    }

    // --- derived state ---

    #[test]
    fn it_has_no_state_before_registration() {
        let unit = Unit::default();
        assert_eq!(unit.version(), 0);
        assert_eq!(unit.registration(), None);
        assert_eq!(unit.name(), None);
        assert_eq!(unit.parent(), None);
        assert_eq!(unit.dissolved_into(), None);
    }

    #[test]
    fn its_name_parent_and_dissolution_follow_the_reorganisations_not_retracted() {
        let registered = unit_registered("dai-loc-dai-an", Some("dai-loc"), "1990-01-01");
        let mut events = vec![UnitEvent::Registered(registered.clone())];
        let unit = unit_after(events.clone());
        assert_eq!(unit.registration(), Some(&registered));
        assert_eq!(unit.name(), Some("Unit dai-loc-dai-an"));
        assert_eq!(unit.parent(), Some(&unit_id("dai-loc")));
        assert_eq!(unit.dissolved_into(), None);

        events.extend([
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")), // 2
            UnitEvent::Reorganised(reparented("dai-loc-dai-an", "quang-nam", "2025-07-01")), // 3
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An mới", "2025-07-01")), // 4
        ]);
        let unit = unit_after(events.clone());
        assert_eq!(unit.version(), 4);
        assert_eq!(unit.name(), Some("Xã Đại An mới"));
        assert_eq!(unit.parent(), Some(&unit_id("quang-nam")));
        assert_eq!(unit.reorganisations().count(), 3);

        // Retract the second renaming and the re-parenting.
        events.extend([
            UnitEvent::Retracted(retraction(4, "2025-07-02")), // 5
            UnitEvent::Retracted(retraction(3, "2025-07-02")), // 6
        ]);
        let unit = unit_after(events.clone());
        assert_eq!(unit.name(), Some("Xã Đại An"));
        assert_eq!(unit.parent(), Some(&unit_id("dai-loc")));
        assert_eq!(
            unit.reorganisations().collect::<Vec<_>>(),
            vec![&renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")]
        );

        // Dissolve, then retract the dissolution.
        events.push(UnitEvent::Reorganised(dissolved(
            "dai-loc-dai-an",
            "dai-loc-dai-hiep",
            "2025-07-01",
        ))); // 7
        let unit = unit_after(events.clone());
        assert_eq!(unit.dissolved_into(), Some(&unit_id("dai-loc-dai-hiep")));
        assert_eq!(unit.name(), Some("Xã Đại An"));
        assert_eq!(unit.parent(), Some(&unit_id("dai-loc")));
        events.push(UnitEvent::Retracted(retraction(7, "2025-07-02"))); // 8
        let unit = unit_after(events);
        assert_eq!(unit.dissolved_into(), None);
        assert_eq!(unit.version(), 8);
    }

    #[test]
    fn its_name_and_parent_follow_the_latest_effective_date_when_a_reorganisation_is_reported_late()
    {
        // docs/contract.md: facts may be reported late and are placed by their
        // effective_date; a renaming of 2010 recorded after the 2025 reform
        // does not bring the old name back.
        let unit = unit_after(vec![
            dai_an(),
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An mới", "2025-07-01")),
            UnitEvent::Reorganised(reparented("dai-loc-dai-an", "quang-nam", "2025-07-01")),
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
            UnitEvent::Reorganised(reparented("dai-loc-dai-an", "dai-loc", "2010-01-01")),
        ]);
        assert_eq!(unit.name(), Some("Xã Đại An mới"));
        assert_eq!(unit.parent(), Some(&unit_id("quang-nam")));
    }

    #[test]
    fn its_name_and_parent_go_to_the_later_fact_of_the_same_date() {
        let unit = unit_after(vec![
            dai_an(),
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An A", "2025-07-01")),
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An B", "2025-07-01")),
        ]);
        assert_eq!(unit.name(), Some("Xã Đại An B"));
    }

    // --- retraction ---

    #[test]
    fn it_retracts_a_reorganisation() {
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
            ])
            .when(UnitCommand::Retract(retract(2, 0, "2010-02-01")))
            .then_expect_events(vec![UnitEvent::Retracted(retraction(2, "2010-02-01"))]);
    }

    #[test]
    fn it_should_not_retract_a_registration_with_live_later_facts() {
        let error = UnitError::Retraction(RetractionError::HasDependents {
            event_id: event_id(1),
            dependents: 1,
        });
        assert_contract(&error, ErrorCode::Conflict, 409, "/event_id");
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
            ])
            .when(UnitCommand::Retract(retract(1, 0, "2010-02-01")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_retract_a_registration_with_dependents_outside_its_stream() {
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(UnitCommand::Retract(retract(1, 3, "2010-02-01")))
            .then_expect_error(UnitError::Retraction(RetractionError::HasDependents {
                event_id: event_id(1),
                dependents: 3,
            }));
    }

    #[test]
    fn it_should_not_retract_a_registration_counting_dependents_inside_and_outside() {
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
                UnitEvent::Reorganised(reparented("dai-loc-dai-an", "quang-nam", "2025-07-01")),
                UnitEvent::Retracted(retraction(2, "2010-02-01")),
            ])
            .when(UnitCommand::Retract(retract(1, 2, "2025-08-01")))
            .then_expect_error(UnitError::Retraction(RetractionError::HasDependents {
                event_id: event_id(1),
                dependents: 3,
            }));
    }

    #[test]
    fn it_retracts_a_registration_with_nothing_depending_on_it() {
        let given = vec![
            dai_an(),
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
            UnitEvent::Retracted(retraction(2, "2010-02-01")),
        ];
        let events = TestFramework::<Unit>::with(())
            .given(given.clone())
            .when(UnitCommand::Retract(retract(1, 0, "2010-03-01")))
            .inspect_result()
            .expect("a registration nothing depends on is retracted");
        assert_eq!(
            events,
            vec![UnitEvent::Retracted(retraction(1, "2010-03-01"))]
        );

        let unit = unit_after(given.into_iter().chain(events).collect());
        assert_eq!(unit.registration(), None);
        assert_eq!(unit.name(), None);
        assert_eq!(unit.parent(), None);
        assert_eq!(unit.version(), 4);
    }

    #[test]
    fn it_should_not_retract_an_unknown_event() {
        let error = UnitError::Retraction(RetractionError::UnknownEvent(event_id(9)));
        assert_contract(&error, ErrorCode::NotFound, 404, "/event_id");
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(UnitCommand::Retract(retract(9, 0, "2010-02-01")))
            .then_expect_error(error);
        TestFramework::<Unit>::with(())
            .given(vec![dai_an()])
            .when(UnitCommand::Retract(retract(0, 0, "2010-02-01")))
            .then_expect_error(UnitError::Retraction(RetractionError::UnknownEvent(
                event_id(0),
            )));
    }

    #[test]
    fn it_should_not_retract_a_fact_twice() {
        let error = UnitError::Retraction(RetractionError::AlreadyRetracted(event_id(2)));
        assert_contract(&error, ErrorCode::Conflict, 409, "/event_id");
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
                UnitEvent::Retracted(retraction(2, "2010-02-01")),
            ])
            .when(UnitCommand::Retract(retract(2, 0, "2010-03-01")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_retract_a_retraction() {
        let error = UnitError::Retraction(RetractionError::RetractionOfRetraction(event_id(3)));
        assert_contract(&error, ErrorCode::Conflict, 409, "/event_id");
        TestFramework::<Unit>::with(())
            .given(vec![
                dai_an(),
                UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
                UnitEvent::Retracted(retraction(2, "2010-02-01")),
            ])
            .when(UnitCommand::Retract(retract(3, 0, "2010-03-01")))
            .then_expect_error(error);
    }

    // --- facts and stored streams ---

    #[test]
    fn its_events_are_the_contract_facts() {
        use cqrs_es::DomainEvent;
        assert_eq!(dai_an().event_type(), "unit.registered.v1");
        assert_eq!(
            UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01"))
                .event_type(),
            "unit.reorganised.v1"
        );
        assert_eq!(
            UnitEvent::Retracted(retraction(1, "2010-01-01")).event_type(),
            "fact.retracted.v1"
        );
        assert_eq!(dai_an().event_version(), "1");
    }

    #[test]
    fn it_resolves_a_stored_stream_with_its_retractions() {
        let stream = vec![
            StoredFact {
                event_id: event_id(1),
                version: 1,
                fact: dai_an().into_fact(),
            },
            StoredFact {
                event_id: event_id(2),
                version: 2,
                fact: UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01"))
                    .into_fact(),
            },
            StoredFact {
                event_id: event_id(3),
                version: 3,
                fact: Fact::FactRetracted(retracted(2, "2010-02-01")),
            },
        ];
        assert_eq!(
            resolve_stream::<UnitEvent>(&stream).expect("a unit stream"),
            vec![
                dai_an(),
                UnitEvent::Reorganised(renamed("dai-loc-dai-an", "Xã Đại An", "2010-01-01")),
                UnitEvent::Retracted(retraction(2, "2010-02-01")),
            ]
        );
    }
}
