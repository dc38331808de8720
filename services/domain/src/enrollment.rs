//! One training place ("lượt"): nominated (cử đi) → enrolled (nhập học) →
//! completed | failed | withdrawn, or cancelled before enrolment; stream
//! `enrollment-<id>`.
//!
//! Rules (docs/contract.md "Rules the ledger enforces"):
//! - states: `nominated` → `enrolled` | `cancelled`; `enrolled` →
//!   `completed` | `failed` | `withdrawn`; nothing after a terminal state;
//! - no step's `effective_date` is before the previous step's;
//! - the official and the nominating unit must be registered; an enrollment
//!   id nominated twice is a conflict;
//! - a nomination dated on or after the person's leaving (and before any
//!   later assignment) is a conflict;
//! - only the last step may be retracted: the state goes back one step
//!   (retracting the nomination itself leaves the place unrecorded).

use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use tledger_events::facts::{
    TrainingCompleted, TrainingEnded, TrainingEnrolled, TrainingNominated,
};
use tledger_events::{Date, EnrollmentId, Fact, OfficialId, UnitId};

use crate::error::{ContractError, ErrorCode};
use crate::existence::Found;
use crate::official::Tenure;
use crate::retraction::IntoFact;
use crate::retraction::{FromFact, Records, RetractFact, Retractable, Retraction, RetractionError};

/// Where a training place stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    Nominated,
    Enrolled,
    Completed,
    Failed,
    Withdrawn,
    Cancelled,
}

impl EnrollmentState {
    /// The lifecycle graph: which state may follow which (`None` = not
    /// recorded yet).
    pub fn may_follow(previous: Option<Self>, next: Self) -> bool {
        use EnrollmentState::*;
        matches!(
            (previous, next),
            (None, Nominated)
                | (Some(Nominated), Enrolled | Cancelled)
                | (Some(Enrolled), Completed | Failed | Withdrawn)
        )
    }

    pub fn is_terminal(self) -> bool {
        use EnrollmentState::*;
        matches!(self, Completed | Failed | Withdrawn | Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentState::Nominated => "nominated",
            EnrollmentState::Enrolled => "enrolled",
            EnrollmentState::Completed => "completed",
            EnrollmentState::Failed => "failed",
            EnrollmentState::Withdrawn => "withdrawn",
            EnrollmentState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for EnrollmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the enrollment stream records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EnrollmentEvent {
    Nominated(TrainingNominated),
    Enrolled(TrainingEnrolled),
    Completed(TrainingCompleted),
    Failed(TrainingEnded),
    Withdrawn(TrainingEnded),
    Cancelled(TrainingEnded),
    Retracted(Retraction),
}

impl crate::retraction::IntoFact for EnrollmentEvent {
    fn into_fact(self) -> Fact {
        match self {
            EnrollmentEvent::Nominated(d) => Fact::TrainingNominated(d),
            EnrollmentEvent::Enrolled(d) => Fact::TrainingEnrolled(d),
            EnrollmentEvent::Completed(d) => Fact::TrainingCompleted(d),
            EnrollmentEvent::Failed(d) => Fact::TrainingFailed(d),
            EnrollmentEvent::Withdrawn(d) => Fact::TrainingWithdrawn(d),
            EnrollmentEvent::Cancelled(d) => Fact::TrainingCancelled(d),
            EnrollmentEvent::Retracted(r) => Fact::FactRetracted(r.fact),
        }
    }
}

impl EnrollmentEvent {
    /// The lifecycle step this event records, with its date; `None` for a
    /// retraction.
    pub fn step(&self) -> Option<(EnrollmentState, Date)> {
        use EnrollmentState::*;
        Some(match self {
            EnrollmentEvent::Nominated(d) => (Nominated, d.effective_date),
            EnrollmentEvent::Enrolled(d) => (Enrolled, d.effective_date),
            EnrollmentEvent::Completed(d) => (Completed, d.effective_date),
            EnrollmentEvent::Failed(d) => (Failed, d.effective_date),
            EnrollmentEvent::Withdrawn(d) => (Withdrawn, d.effective_date),
            EnrollmentEvent::Cancelled(d) => (Cancelled, d.effective_date),
            EnrollmentEvent::Retracted(_) => return None,
        })
    }
}

impl FromFact for EnrollmentEvent {
    const AGGREGATE: &'static str = "enrollment";
    fn from_fact(fact: Fact, retraction_target: Option<u64>) -> Option<Self> {
        Some(match fact {
            Fact::TrainingNominated(d) => Self::Nominated(d),
            Fact::TrainingEnrolled(d) => Self::Enrolled(d),
            Fact::TrainingCompleted(d) => Self::Completed(d),
            Fact::TrainingFailed(d) => Self::Failed(d),
            Fact::TrainingWithdrawn(d) => Self::Withdrawn(d),
            Fact::TrainingCancelled(d) => Self::Cancelled(d),
            Fact::FactRetracted(fact) => Self::Retracted(Retraction {
                target_version: retraction_target?,
                fact,
            }),
            _ => return None,
        })
    }
}

impl DomainEvent for EnrollmentEvent {
    fn event_type(&self) -> String {
        self.clone().into_fact().fact_type().as_str().to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Commands, with the look-ups their rules need already done.
#[derive(Clone, Debug, PartialEq)]
pub enum EnrollmentCommand {
    Nominate {
        fact: Box<TrainingNominated>,
        /// What the look-up found of the official: their tenure.
        official: Found<Tenure>,
        /// What the look-up found of `fact.nominating_unit_id`.
        nominating_unit: Found,
    },
    Enroll(TrainingEnrolled),
    Complete(TrainingCompleted),
    Fail(TrainingEnded),
    Withdraw(TrainingEnded),
    Cancel(TrainingEnded),
    Retract(RetractFact),
}

/// Why an enrollment command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentError {
    #[error("official {0} is not registered")]
    UnknownOfficial(OfficialId),
    #[error("unit {0} is not registered")]
    UnknownUnit(UnitId),
    #[error("enrollment {0} has not been nominated")]
    UnknownEnrollment(EnrollmentId),
    #[error("enrollment {0} is already nominated")]
    AlreadyNominated(EnrollmentId),
    #[error("a {from} training place cannot become {to}")]
    IllegalTransition {
        from: EnrollmentState,
        to: EnrollmentState,
    },
    #[error("effective date {date} is before the previous step's ({previous})")]
    BeforePreviousStep { date: Date, previous: Date },
    #[error("official {official} left on {left_on}: no nomination on or after that date until a new assignment")]
    AfterLeaving { official: OfficialId, left_on: Date },
    #[error(transparent)]
    Retraction(#[from] RetractionError),
}

impl ContractError for EnrollmentError {
    fn code(&self) -> ErrorCode {
        match self {
            EnrollmentError::UnknownOfficial(_)
            | EnrollmentError::UnknownUnit(_)
            | EnrollmentError::UnknownEnrollment(_) => ErrorCode::NotFound,
            EnrollmentError::AlreadyNominated(_)
            | EnrollmentError::IllegalTransition { .. }
            | EnrollmentError::BeforePreviousStep { .. }
            | EnrollmentError::AfterLeaving { .. } => ErrorCode::Conflict,
            EnrollmentError::Retraction(e) => e.code(),
        }
    }

    fn field(&self) -> Option<String> {
        let pointer = match self {
            EnrollmentError::UnknownOfficial(_) => "/official_id",
            EnrollmentError::UnknownUnit(_) => "/nominating_unit_id",
            EnrollmentError::UnknownEnrollment(_) | EnrollmentError::AlreadyNominated(_) => {
                "/enrollment_id"
            }
            EnrollmentError::IllegalTransition { .. } => return None,
            EnrollmentError::BeforePreviousStep { .. } | EnrollmentError::AfterLeaving { .. } => {
                "/effective_date"
            }
            EnrollmentError::Retraction(e) => return e.field(),
        };
        Some(pointer.into())
    }
}

/// 404 unless the official and the nominating unit a nomination names are
/// registered, reported in that order.
pub fn check_nomination_references<T>(
    fact: &TrainingNominated,
    official: &Found<T>,
    nominating_unit: &Found,
) -> Result<(), EnrollmentError> {
    if official.is_missing() {
        return Err(EnrollmentError::UnknownOfficial(fact.official_id.clone()));
    }
    if nominating_unit.is_missing() {
        return Err(EnrollmentError::UnknownUnit(
            fact.nominating_unit_id.clone(),
        ));
    }
    Ok(())
}

/// The enrollment aggregate: the stream's facts, each with a retracted flag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    records: Records<EnrollmentEvent>,
}

impl Enrollment {
    /// The stream version of the last fact (0 for a new stream).
    pub fn version(&self) -> u64 {
        self.records.version()
    }

    /// The steps not retracted, in order: (stream version, state, date).
    pub fn steps(&self) -> impl Iterator<Item = (u64, EnrollmentState, Date)> + '_ {
        self.records
            .live()
            .filter_map(|(v, e)| e.step().map(|(s, d)| (v, s, d)))
    }

    /// The current state; `None` when nothing (or only a retracted
    /// nomination) is recorded.
    pub fn state(&self) -> Option<EnrollmentState> {
        self.steps().last().map(|(_, s, _)| s)
    }

    /// The nomination in force, or 404: the steps after a nomination name
    /// a place that must have been nominated.
    pub fn nominated(&self, id: &EnrollmentId) -> Result<&TrainingNominated, EnrollmentError> {
        self.nomination()
            .ok_or_else(|| EnrollmentError::UnknownEnrollment(id.clone()))
    }

    /// The nomination in force.
    pub fn nomination(&self) -> Option<&TrainingNominated> {
        self.records.live().find_map(|(_, e)| match e {
            EnrollmentEvent::Nominated(n) => Some(n),
            _ => None,
        })
    }

    /// The completion in force, if the place is completed.
    pub fn completion(&self) -> Option<&TrainingCompleted> {
        self.records.live().find_map(|(_, e)| match e {
            EnrollmentEvent::Completed(c) => Some(c),
            _ => None,
        })
    }

    fn step(
        &self,
        id: &EnrollmentId,
        next: EnrollmentState,
        date: Date,
    ) -> Result<(), EnrollmentError> {
        let Some((_, current, previous)) = self.steps().last() else {
            return Err(EnrollmentError::UnknownEnrollment(id.clone()));
        };
        if !EnrollmentState::may_follow(Some(current), next) {
            return Err(EnrollmentError::IllegalTransition {
                from: current,
                to: next,
            });
        }
        if date < previous {
            return Err(EnrollmentError::BeforePreviousStep { date, previous });
        }
        Ok(())
    }

    fn decide(&self, command: EnrollmentCommand) -> Result<EnrollmentEvent, EnrollmentError> {
        use EnrollmentState::*;
        match command {
            EnrollmentCommand::Nominate {
                fact,
                official,
                nominating_unit,
            } => {
                check_nomination_references(&fact, &official, &nominating_unit)?;
                let Found::Registered(tenure) = official else {
                    return Err(EnrollmentError::UnknownOfficial(fact.official_id.clone()));
                };
                if self.state().is_some() {
                    return Err(EnrollmentError::AlreadyNominated(
                        fact.enrollment_id.clone(),
                    ));
                }
                if let Some(left_on) = tenure.left_on(fact.effective_date) {
                    return Err(EnrollmentError::AfterLeaving {
                        official: fact.official_id.clone(),
                        left_on,
                    });
                }
                Ok(EnrollmentEvent::Nominated(*fact))
            }
            EnrollmentCommand::Enroll(fact) => {
                self.step(&fact.enrollment_id, Enrolled, fact.effective_date)?;
                Ok(EnrollmentEvent::Enrolled(fact))
            }
            EnrollmentCommand::Complete(fact) => {
                self.step(&fact.enrollment_id, Completed, fact.effective_date)?;
                Ok(EnrollmentEvent::Completed(fact))
            }
            EnrollmentCommand::Fail(fact) => {
                self.step(&fact.enrollment_id, Failed, fact.effective_date)?;
                Ok(EnrollmentEvent::Failed(fact))
            }
            EnrollmentCommand::Withdraw(fact) => {
                self.step(&fact.enrollment_id, Withdrawn, fact.effective_date)?;
                Ok(EnrollmentEvent::Withdrawn(fact))
            }
            EnrollmentCommand::Cancel(fact) => {
                self.step(&fact.enrollment_id, Cancelled, fact.effective_date)?;
                Ok(EnrollmentEvent::Cancelled(fact))
            }
            EnrollmentCommand::Retract(retract) => self.decide_retraction(retract),
        }
    }

    fn decide_retraction(&self, retract: RetractFact) -> Result<EnrollmentEvent, EnrollmentError> {
        self.records.retraction_target(&retract)?;
        let last = self.steps().last().map(|(v, _, _)| v);
        if last != Some(retract.target_version) {
            return Err(RetractionError::NotLastStep {
                event_id: retract.fact.event_id,
            }
            .into());
        }
        Ok(EnrollmentEvent::Retracted(Retraction {
            target_version: retract.target_version,
            fact: retract.fact,
        }))
    }
}

records_aggregate!(
    Enrollment,
    "enrollment",
    EnrollmentCommand,
    EnrollmentEvent,
    EnrollmentError
);

impl Retractable for EnrollmentEvent {
    fn retraction(&self) -> Option<&Retraction> {
        match self {
            EnrollmentEvent::Retracted(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use tledger_events::Track;

    use super::*;
    use crate::fixtures::*;
    use crate::official::TenureChange;

    type Framework = TestFramework<Enrollment>;

    const E: &str = "e-2010-001";

    fn in_post_since(on: &str) -> Tenure {
        Tenure::new(vec![TenureChange {
            effective_date: date(on),
            version: 1,
            in_post: true,
        }])
    }

    fn professional(on: &str) -> TrainingNominated {
        nominated(
            E,
            "o-1",
            "dai-loc-dai-an",
            Track::Professional,
            Some("intermediate"),
            on,
        )
    }

    fn nominate(fact: TrainingNominated) -> EnrollmentCommand {
        EnrollmentCommand::Nominate {
            fact: Box::new(fact),
            official: Found::Registered(in_post_since("2000-01-01")),
            nominating_unit: Found::Registered(()),
        }
    }

    fn given_nominated() -> Vec<EnrollmentEvent> {
        vec![EnrollmentEvent::Nominated(professional("2010-01-10"))]
    }

    fn given_enrolled() -> Vec<EnrollmentEvent> {
        let mut events = given_nominated();
        events.push(EnrollmentEvent::Enrolled(enrolled(E, "2010-02-01")));
        events
    }

    // --- nomination --------------------------------------------------------

    #[test]
    fn nominates_a_registered_official_in_post() {
        Framework::with(())
            .given_no_previous_events()
            .when(nominate(professional("2010-01-10")))
            .then_expect_events(given_nominated());
    }

    #[test]
    fn it_should_not_nominate_an_unknown_official() {
        let error = EnrollmentError::UnknownOfficial(official_id("o-1"));
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::NotFound, Some("/official_id".into()))
        );
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2010-01-10")),
                official: Found::Missing,
                nominating_unit: Found::Registered(()),
            })
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_nominate_from_an_unknown_unit() {
        let error = EnrollmentError::UnknownUnit(unit_id("dai-loc-dai-an"));
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::NotFound, Some("/nominating_unit_id".into()))
        );
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2010-01-10")),
                official: Found::Registered(in_post_since("2000-01-01")),
                nominating_unit: Found::Missing,
            })
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_nominate_one_enrollment_id_twice() {
        let error = EnrollmentError::AlreadyNominated(enrollment_id(E));
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::Conflict, Some("/enrollment_id".into()))
        );
        Framework::with(())
            .given(given_nominated())
            .when(nominate(professional("2010-01-11")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_check_for_a_duplicate_before_the_unknown_official() {
        // 404 comes before 409 in the contract's error order.
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2010-01-11")),
                official: Found::Missing,
                nominating_unit: Found::Registered(()),
            })
            .then_expect_error(EnrollmentError::UnknownOfficial(official_id("o-1")));
    }

    fn left_on(registered: &str, left: &str) -> Tenure {
        Tenure::new(vec![
            TenureChange {
                effective_date: date(registered),
                version: 1,
                in_post: true,
            },
            TenureChange {
                effective_date: date(left),
                version: 2,
                in_post: false,
            },
        ])
    }

    #[test]
    fn it_should_not_nominate_on_the_day_after_leaving() {
        let error = EnrollmentError::AfterLeaving {
            official: official_id("o-1"),
            left_on: date("2010-06-30"),
        };
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::Conflict, Some("/effective_date".into()))
        );
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2010-07-01")),
                official: Found::Registered(left_on("2000-01-01", "2010-06-30")),
                nominating_unit: Found::Registered(()),
            })
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_nominate_on_the_day_of_leaving() {
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2010-06-30")),
                official: Found::Registered(left_on("2000-01-01", "2010-06-30")),
                nominating_unit: Found::Registered(()),
            })
            .then_expect_error(EnrollmentError::AfterLeaving {
                official: official_id("o-1"),
                left_on: date("2010-06-30"),
            });
    }

    #[test]
    fn nominates_the_day_before_leaving_and_after_a_return_to_post() {
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2010-06-29")),
                official: Found::Registered(left_on("2000-01-01", "2010-06-30")),
                nominating_unit: Found::Registered(()),
            })
            .then_expect_events(vec![EnrollmentEvent::Nominated(professional("2010-06-29"))]);

        let returned = Tenure::new(vec![
            TenureChange {
                effective_date: date("2000-01-01"),
                version: 1,
                in_post: true,
            },
            TenureChange {
                effective_date: date("2010-06-30"),
                version: 2,
                in_post: false,
            },
            TenureChange {
                effective_date: date("2011-01-01"),
                version: 3,
                in_post: true,
            },
        ]);
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Nominate {
                fact: Box::new(professional("2011-03-01")),
                official: Found::Registered(returned),
                nominating_unit: Found::Registered(()),
            })
            .then_expect_events(vec![EnrollmentEvent::Nominated(professional("2011-03-01"))]);
    }

    // --- lifecycle -----------------------------------------------------------

    #[test]
    fn enrols_a_nominated_place() {
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Enroll(enrolled(E, "2010-02-01")))
            .then_expect_events(vec![EnrollmentEvent::Enrolled(enrolled(E, "2010-02-01"))]);
    }

    #[test]
    fn cancels_a_nominated_place() {
        let cancel = ended(E, "the course was not opened", "2010-01-20");
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Cancel(cancel.clone()))
            .then_expect_events(vec![EnrollmentEvent::Cancelled(cancel)]);
    }

    #[test]
    fn completes_fails_or_withdraws_an_enrolled_place() {
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Complete(completed(E, "2011-06-30")))
            .then_expect_events(vec![EnrollmentEvent::Completed(completed(E, "2011-06-30"))]);
        let failed = ended(E, "did not pass the final examination", "2011-06-30");
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Fail(failed.clone()))
            .then_expect_events(vec![EnrollmentEvent::Failed(failed)]);
        let withdrawn = ended(E, "family reasons", "2010-09-01");
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Withdraw(withdrawn.clone()))
            .then_expect_events(vec![EnrollmentEvent::Withdrawn(withdrawn)]);
    }

    #[test]
    fn a_step_may_share_the_previous_steps_date() {
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Enroll(enrolled(E, "2010-01-10")))
            .then_expect_events(vec![EnrollmentEvent::Enrolled(enrolled(E, "2010-01-10"))]);
    }

    #[test]
    fn it_should_not_step_an_enrollment_that_was_never_nominated() {
        let error = EnrollmentError::UnknownEnrollment(enrollment_id(E));
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::NotFound, Some("/enrollment_id".into()))
        );
        Framework::with(())
            .given_no_previous_events()
            .when(EnrollmentCommand::Enroll(enrolled(E, "2010-02-01")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_complete_before_enrolment() {
        let error = EnrollmentError::IllegalTransition {
            from: EnrollmentState::Nominated,
            to: EnrollmentState::Completed,
        };
        assert_eq!((error.code(), error.field()), (ErrorCode::Conflict, None));
        assert_eq!(
            error.to_string(),
            "a nominated training place cannot become completed"
        );
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Complete(completed(E, "2011-06-30")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_fail_or_withdraw_before_enrolment() {
        for (command, to) in [
            (
                EnrollmentCommand::Fail(ended(E, "x", "2010-03-01")),
                EnrollmentState::Failed,
            ),
            (
                EnrollmentCommand::Withdraw(ended(E, "x", "2010-03-01")),
                EnrollmentState::Withdrawn,
            ),
        ] {
            Framework::with(())
                .given(given_nominated())
                .when(command)
                .then_expect_error(EnrollmentError::IllegalTransition {
                    from: EnrollmentState::Nominated,
                    to,
                });
        }
    }

    #[test]
    fn it_should_not_enrol_a_cancelled_place() {
        let mut given = given_nominated();
        given.push(EnrollmentEvent::Cancelled(ended(
            E,
            "not opened",
            "2010-01-20",
        )));
        Framework::with(())
            .given(given)
            .when(EnrollmentCommand::Enroll(enrolled(E, "2010-02-01")))
            .then_expect_error(EnrollmentError::IllegalTransition {
                from: EnrollmentState::Cancelled,
                to: EnrollmentState::Enrolled,
            });
    }

    #[test]
    fn it_should_not_cancel_an_enrolled_place_or_enrol_twice() {
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Cancel(ended(E, "x", "2010-03-01")))
            .then_expect_error(EnrollmentError::IllegalTransition {
                from: EnrollmentState::Enrolled,
                to: EnrollmentState::Cancelled,
            });
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Enroll(enrolled(E, "2010-03-01")))
            .then_expect_error(EnrollmentError::IllegalTransition {
                from: EnrollmentState::Enrolled,
                to: EnrollmentState::Enrolled,
            });
    }

    #[test]
    fn it_should_not_record_anything_after_a_terminal_state() {
        let terminal = [
            EnrollmentEvent::Completed(completed(E, "2011-06-30")),
            EnrollmentEvent::Failed(ended(E, "x", "2011-06-30")),
            EnrollmentEvent::Withdrawn(ended(E, "x", "2011-06-30")),
        ];
        for last in terminal {
            let (from, _) = last.step().expect("a step");
            let mut given = given_enrolled();
            given.push(last);
            for (command, to) in [
                (
                    EnrollmentCommand::Complete(completed(E, "2011-07-01")),
                    EnrollmentState::Completed,
                ),
                (
                    EnrollmentCommand::Fail(ended(E, "x", "2011-07-01")),
                    EnrollmentState::Failed,
                ),
                (
                    EnrollmentCommand::Withdraw(ended(E, "x", "2011-07-01")),
                    EnrollmentState::Withdrawn,
                ),
                (
                    EnrollmentCommand::Enroll(enrolled(E, "2011-07-01")),
                    EnrollmentState::Enrolled,
                ),
                (
                    EnrollmentCommand::Cancel(ended(E, "x", "2011-07-01")),
                    EnrollmentState::Cancelled,
                ),
            ] {
                Framework::with(())
                    .given(given.clone())
                    .when(command)
                    .then_expect_error(EnrollmentError::IllegalTransition { from, to });
            }
        }
    }

    #[test]
    fn it_should_not_date_a_step_before_the_previous_one() {
        let error = EnrollmentError::BeforePreviousStep {
            date: date("2010-01-09"),
            previous: date("2010-01-10"),
        };
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::Conflict, Some("/effective_date".into()))
        );
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Enroll(enrolled(E, "2010-01-09")))
            .then_expect_error(error);
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Complete(completed(E, "2010-01-31")))
            .then_expect_error(EnrollmentError::BeforePreviousStep {
                date: date("2010-01-31"),
                previous: date("2010-02-01"),
            });
    }

    // --- retraction ------------------------------------------------------------

    #[test]
    fn retracting_the_last_step_moves_the_state_back_one_step() {
        let mut given = given_enrolled();
        given.push(EnrollmentEvent::Completed(completed(E, "2011-06-30")));
        Framework::with(())
            .given(given.clone())
            .when(EnrollmentCommand::Retract(retract(3, 0, "2011-07-15")))
            .then_expect_events(vec![EnrollmentEvent::Retracted(retraction(
                3,
                "2011-07-15",
            ))]);

        let mut place = Enrollment::default();
        for event in given {
            place.apply(event);
        }
        assert_eq!(place.state(), Some(EnrollmentState::Completed));
        place.apply(EnrollmentEvent::Retracted(retraction(3, "2011-07-15")));
        assert_eq!(place.state(), Some(EnrollmentState::Enrolled));
        assert_eq!(place.completion(), None);
        assert_eq!(place.version(), 4);
    }

    #[test]
    fn a_retracted_step_can_be_recorded_again_and_then_retracted_again() {
        let mut given = given_enrolled();
        given.push(EnrollmentEvent::Completed(completed(E, "2011-06-30")));
        given.push(EnrollmentEvent::Retracted(retraction(3, "2011-07-15")));
        Framework::with(())
            .given(given.clone())
            .when(EnrollmentCommand::Complete(completed(E, "2011-07-20")))
            .then_expect_events(vec![EnrollmentEvent::Completed(completed(E, "2011-07-20"))]);
        given.push(EnrollmentEvent::Completed(completed(E, "2011-07-20")));
        Framework::with(())
            .given(given)
            .when(EnrollmentCommand::Retract(retract(5, 0, "2011-08-01")))
            .then_expect_events(vec![EnrollmentEvent::Retracted(retraction(
                5,
                "2011-08-01",
            ))]);
    }

    #[test]
    fn retracting_the_nomination_leaves_the_place_unrecorded() {
        let mut place = Enrollment::default();
        for event in given_nominated() {
            place.apply(event);
        }
        Framework::with(())
            .given(given_nominated())
            .when(EnrollmentCommand::Retract(retract(1, 0, "2010-01-12")))
            .then_expect_events(vec![EnrollmentEvent::Retracted(retraction(
                1,
                "2010-01-12",
            ))]);
        place.apply(EnrollmentEvent::Retracted(retraction(1, "2010-01-12")));
        assert_eq!(place.state(), None);
        assert_eq!(place.nomination(), None);
        // …so the id may be nominated again, correctly this time.
        let mut given = given_nominated();
        given.push(EnrollmentEvent::Retracted(retraction(1, "2010-01-12")));
        Framework::with(())
            .given(given)
            .when(nominate(professional("2010-01-12")))
            .then_expect_events(vec![EnrollmentEvent::Nominated(professional("2010-01-12"))]);
    }

    #[test]
    fn it_should_not_retract_a_step_that_is_not_the_last() {
        let error = EnrollmentError::Retraction(RetractionError::NotLastStep {
            event_id: event_id(1),
        });
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::Conflict, Some("/event_id".into()))
        );
        Framework::with(())
            .given(given_enrolled())
            .when(EnrollmentCommand::Retract(retract(1, 0, "2010-03-01")))
            .then_expect_error(error);
    }

    #[test]
    fn it_should_not_retract_twice_a_retraction_or_an_unknown_version() {
        let mut given = given_enrolled();
        given.push(EnrollmentEvent::Retracted(retraction(2, "2010-03-01")));
        Framework::with(())
            .given(given.clone())
            .when(EnrollmentCommand::Retract(retract(2, 0, "2010-03-02")))
            .then_expect_error(RetractionError::AlreadyRetracted(event_id(2)).into());
        Framework::with(())
            .given(given.clone())
            .when(EnrollmentCommand::Retract(retract(3, 0, "2010-03-02")))
            .then_expect_error(RetractionError::RetractionOfRetraction(event_id(3)).into());
        let unknown = EnrollmentError::Retraction(RetractionError::UnknownEvent(event_id(9)));
        assert_eq!(unknown.code(), ErrorCode::NotFound);
        Framework::with(())
            .given(given)
            .when(EnrollmentCommand::Retract(retract(9, 0, "2010-03-02")))
            .then_expect_error(unknown);
    }

    #[test]
    fn the_state_graph_is_the_contracts() {
        use EnrollmentState::*;
        let all = [Nominated, Enrolled, Completed, Failed, Withdrawn, Cancelled];
        let allowed: Vec<(Option<EnrollmentState>, EnrollmentState)> = std::iter::once(None)
            .chain(all.iter().copied().map(Some))
            .flat_map(|from| all.iter().map(move |to| (from, *to)))
            .filter(|(from, to)| EnrollmentState::may_follow(*from, *to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (None, Nominated),
                (Some(Nominated), Enrolled),
                (Some(Nominated), Cancelled),
                (Some(Enrolled), Completed),
                (Some(Enrolled), Failed),
                (Some(Enrolled), Withdrawn),
            ]
        );
    }

    // --- properties ----------------------------------------------------------

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A command with a date `days` after 2010-01-01; `Retract` names a
        /// version that may or may not exist.
        #[derive(Clone, Debug)]
        enum Step {
            Nominate(u32),
            Enroll(u32),
            Complete(u32),
            Fail(u32),
            Withdraw(u32),
            Cancel(u32),
            Retract(u64),
        }

        fn day(days: u32) -> String {
            date("2010-01-01")
                .plus_days(i64::from(days))
                .expect("in range")
                .to_string()
        }

        fn command(step: &Step) -> EnrollmentCommand {
            match step {
                Step::Nominate(d) => nominate(professional(&day(*d))),
                Step::Enroll(d) => EnrollmentCommand::Enroll(enrolled(E, &day(*d))),
                Step::Complete(d) => EnrollmentCommand::Complete(completed(E, &day(*d))),
                Step::Fail(d) => EnrollmentCommand::Fail(ended(E, "failed", &day(*d))),
                Step::Withdraw(d) => EnrollmentCommand::Withdraw(ended(E, "withdrew", &day(*d))),
                Step::Cancel(d) => EnrollmentCommand::Cancel(ended(E, "cancelled", &day(*d))),
                Step::Retract(v) => EnrollmentCommand::Retract(retract(*v, 0, &day(900))),
            }
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (0u32..400).prop_map(Step::Nominate),
                (0u32..400).prop_map(Step::Enroll),
                (0u32..400).prop_map(Step::Complete),
                (0u32..400).prop_map(Step::Fail),
                (0u32..400).prop_map(Step::Withdraw),
                (0u32..400).prop_map(Step::Cancel),
                (1u64..12).prop_map(Step::Retract),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_commands_never_reach_a_forbidden_state(steps in proptest::collection::vec(step(), 1..24)) {
                let mut place = Enrollment::default();
                let mut accepted = Vec::new();
                for step in &steps {
                    let before = place.clone();
                    match place.decide(command(step)) {
                        Ok(event) => {
                            accepted.push(event.clone());
                            place.apply(event);
                        }
                        Err(_) => prop_assert_eq!(&place, &before),
                    }
                    // The live steps follow the lifecycle graph, in date order,
                    // and only the last may be terminal.
                    let steps: Vec<_> = place.steps().collect();
                    let mut previous: Option<(EnrollmentState, Date)> = None;
                    for (_, state, date) in &steps {
                        prop_assert!(EnrollmentState::may_follow(previous.map(|p| p.0), *state),
                            "{:?} after {:?}", state, previous);
                        if let Some((_, before)) = previous {
                            prop_assert!(*date >= before);
                        }
                        previous = Some((*state, *date));
                    }
                    prop_assert_eq!(place.state(), previous.map(|p| p.0));
                }
                // Every accepted sequence replays to the same state.
                let mut replayed = Enrollment::default();
                for event in accepted.clone() {
                    replayed.apply(event);
                }
                prop_assert_eq!(&replayed, &place);
                prop_assert_eq!(place.version(), accepted.len() as u64);
            }
        }
    }
}
