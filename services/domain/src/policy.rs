//! Policies: facts that follow from other facts.
//!
//! "Completing a degree programme records the qualification on the person"
//! and "retracting a completion retracts the qualification it recorded".
//! Both are pure functions from the triggering fact to the command to run,
//! with an idempotency key derived from the triggering event's id: running a
//! policy again for the same event (a replay, a retry, a restart) never
//! records twice, while a completion retracted and done again is a new event
//! and records its qualification again.

use tledger_events::facts::{
    Evidence, FactRetracted, QualificationRecorded, TrainingCompleted, TrainingNominated,
};
use tledger_events::{Date, EnrollmentId, OfficialId};
use uuid::Uuid;

use crate::official::{Official, OfficialCommand};

/// A command a policy issues, keyed so that issuing it twice records once.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyCommand<C> {
    pub idempotency_key: String,
    pub command: C,
}

/// The qualification a completed degree programme grants: track, level and
/// specialty of the programme, effective on the completion date, evidenced
/// by the certificate; `None` for a refresher course (no level).
pub fn qualification_for_completion(
    nomination: &TrainingNominated,
    completion: &TrainingCompleted,
    completion_event_id: Uuid,
) -> Option<PolicyCommand<OfficialCommand>> {
    let program = &nomination.program;
    if !program.track.is_degree() {
        return None;
    }
    let level = program.level.clone()?;
    let evidence = completion.certificate.as_ref().map(|c| Evidence {
        kind: c.kind,
        number: c.number.clone(),
        issued_by: Some(nomination.institution.name.clone()),
    });
    Some(PolicyCommand {
        idempotency_key: format!("qualification-for-completion-{completion_event_id}"),
        command: OfficialCommand::RecordQualification(QualificationRecorded {
            official_id: nomination.official_id.clone(),
            track: program.track,
            level,
            specialty: program.specialty.clone(),
            evidence,
            source_enrollment_id: Some(nomination.enrollment_id.clone()),
            effective_date: completion.effective_date,
        }),
    })
}

/// The retraction of a qualification, before the command handler turns the
/// stream version into the event id it names.
#[derive(Clone, Debug, PartialEq)]
pub struct QualificationRetraction {
    pub idempotency_key: String,
    pub official_id: OfficialId,
    /// Stream version of the qualification in the official's stream.
    pub target_version: u64,
    pub reason: String,
    pub effective_date: Date,
}

/// When a completion of `enrollment_id` is retracted (by the retraction
/// event `retraction_event_id`), the qualification it recorded, if one is in
/// force, is retracted too, effective on the same date.
pub fn qualification_retraction(
    official_id: &OfficialId,
    official: &Official,
    enrollment_id: &EnrollmentId,
    retraction_event_id: Uuid,
    retraction: &FactRetracted,
) -> Option<QualificationRetraction> {
    let target_version = official.qualification_from(enrollment_id)?;
    Some(QualificationRetraction {
        idempotency_key: format!("qualification-retraction-{retraction_event_id}"),
        official_id: official_id.clone(),
        target_version,
        reason: format!(
            "the completion of enrollment {enrollment_id} was retracted: {}",
            retraction.reason
        ),
        effective_date: retraction.effective_date,
    })
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use tledger_events::facts::{Certificate, Program};
    use tledger_events::{EvidenceKind, StaffCategory, Track};

    use super::*;
    use crate::fixtures::*;
    use crate::official::{OfficialError, OfficialEvent};
    use crate::retraction::{RetractFact, Retraction};

    const INSTITUTION: &str = "Trường Chính trị tỉnh Quảng Nam";

    /// Trung cấp Địa chính (professional, intermediate, land_management)
    /// for `o-001`, nominated by the commune Đại An.
    fn degree_nomination() -> TrainingNominated {
        nominated(
            "e-001",
            "o-001",
            "dai-loc-dai-an",
            Track::Professional,
            Some("intermediate"),
            "2008-09-01",
        )
    }

    fn refresher_nomination() -> TrainingNominated {
        let mut nomination = nominated(
            "e-002",
            "o-001",
            "dai-loc-dai-an",
            Track::Refresher,
            None,
            "2008-09-01",
        );
        nomination.program = Program {
            specialty: None,
            title: "Bồi dưỡng nghiệp vụ địa chính".into(),
            ..nomination.program
        };
        nomination
    }

    /// The qualification the degree nomination grants on completion.
    fn expected_qualification(on: &str) -> QualificationRecorded {
        QualificationRecorded {
            official_id: official_id("o-001"),
            track: Track::Professional,
            level: level("intermediate"),
            specialty: Some(specialty("land_management")),
            evidence: Some(Evidence {
                kind: EvidenceKind::Diploma,
                number: "TC-2010-0042".into(),
                issued_by: Some(INSTITUTION.into()),
            }),
            source_enrollment_id: Some(enrollment_id("e-001")),
            effective_date: date(on),
        }
    }

    /// Event ids of the official's stream (the enrollment stream uses
    /// `event_id`).
    fn official_event_id(version: u64) -> Uuid {
        Uuid::from_u128(0x0ff1_0000_0000_0000_0000_0000_0000_0000 | u128::from(version))
    }

    fn registered() -> OfficialEvent {
        OfficialEvent::Registered(official_registered(
            "o-001",
            "dai-loc-dai-an",
            StaffCategory::CivilServant,
            "land_construction",
            "2005-01-01",
        ))
    }

    fn official_after(events: &[OfficialEvent]) -> Official {
        let mut official = Official::default();
        for event in events {
            official.apply(event.clone());
        }
        official
    }

    /// The command that carries out a qualification retraction, as the
    /// command handler builds it.
    fn retract_command(retraction: &QualificationRetraction) -> (OfficialCommand, Retraction) {
        let fact = FactRetracted {
            event_id: official_event_id(retraction.target_version),
            reason: retraction.reason.clone(),
            effective_date: retraction.effective_date,
        };
        (
            OfficialCommand::Retract(RetractFact {
                fact: fact.clone(),
                target_version: retraction.target_version,
                dependents: 0,
            }),
            Retraction {
                target_version: retraction.target_version,
                fact,
            },
        )
    }

    // --- qualification_for_completion ---

    #[test]
    fn it_records_the_qualification_of_a_completed_degree_programme() {
        let command = qualification_for_completion(
            &degree_nomination(),
            &completed("e-001", "2010-06-30"),
            event_id(3),
        );
        assert_eq!(
            command,
            Some(PolicyCommand {
                idempotency_key:
                    "qualification-for-completion-7e570000-0000-0000-0000-000000000003".into(),
                command: OfficialCommand::RecordQualification(expected_qualification("2010-06-30")),
            })
        );
    }

    #[test]
    fn it_records_the_programme_track_level_and_specialty_whatever_they_are() {
        let mut nomination = nominated(
            "e-003",
            "o-001",
            "dai-loc-dai-an",
            Track::PoliticalTheory,
            Some("intermediate"),
            "2009-03-01",
        );
        nomination.program.specialty = None;
        let command = qualification_for_completion(
            &nomination,
            &completed("e-003", "2010-01-15"),
            event_id(3),
        )
        .expect("political theory is a degree track");
        assert_eq!(
            command.command,
            OfficialCommand::RecordQualification(QualificationRecorded {
                official_id: official_id("o-001"),
                track: Track::PoliticalTheory,
                level: level("intermediate"),
                specialty: None,
                evidence: Some(Evidence {
                    kind: EvidenceKind::Diploma,
                    number: "TC-2010-0042".into(),
                    issued_by: Some(INSTITUTION.into()),
                }),
                source_enrollment_id: Some(enrollment_id("e-003")),
                effective_date: date("2010-01-15"),
            })
        );
    }

    #[test]
    fn its_key_is_derived_from_the_completion_event() {
        let nomination = degree_nomination();
        let completion = completed("e-001", "2010-06-30");
        let first = qualification_for_completion(&nomination, &completion, event_id(3))
            .expect("a degree programme");
        let again = qualification_for_completion(&nomination, &completion, event_id(3))
            .expect("a degree programme");
        let other = qualification_for_completion(&nomination, &completion, event_id(5))
            .expect("a degree programme");
        // The same completion event: the same command under the same key
        // (a replay, retry or restart records once).
        assert_eq!(first, again);
        // Another completion event (retracted and done again): another key.
        assert_eq!(
            other.idempotency_key,
            "qualification-for-completion-7e570000-0000-0000-0000-000000000005"
        );
        assert_ne!(first.idempotency_key, other.idempotency_key);
        assert_eq!(first.command, other.command);
    }

    #[test]
    fn it_should_not_record_a_qualification_for_a_refresher_course() {
        assert_eq!(
            qualification_for_completion(
                &refresher_nomination(),
                &completed("e-002", "2008-10-15"),
                event_id(3),
            ),
            None
        );
    }

    #[test]
    fn it_records_a_qualification_without_evidence_when_no_certificate_was_given() {
        let completion = TrainingCompleted {
            certificate: None,
            ..completed("e-001", "2010-06-30")
        };
        let command = qualification_for_completion(&degree_nomination(), &completion, event_id(3))
            .expect("a degree programme");
        assert_eq!(
            command.command,
            OfficialCommand::RecordQualification(QualificationRecorded {
                evidence: None,
                ..expected_qualification("2010-06-30")
            })
        );
    }

    #[test]
    fn it_records_a_certificate_as_certificate_evidence() {
        let completion = TrainingCompleted {
            certificate: Some(Certificate {
                kind: EvidenceKind::Certificate,
                number: "CC-17".into(),
            }),
            ..completed("e-001", "2010-06-30")
        };
        let command = qualification_for_completion(&degree_nomination(), &completion, event_id(3))
            .expect("a degree programme");
        assert_eq!(
            command.command,
            OfficialCommand::RecordQualification(QualificationRecorded {
                evidence: Some(Evidence {
                    kind: EvidenceKind::Certificate,
                    number: "CC-17".into(),
                    issued_by: Some(INSTITUTION.into()),
                }),
                ..expected_qualification("2010-06-30")
            })
        );
    }

    // --- the policy's commands on the official ---

    #[test]
    fn it_records_the_qualification_once_per_enrollment_and_again_when_a_retracted_completion_is_done_again(
    ) {
        let nomination = degree_nomination();
        // Enrollment stream: 1 nominated, 2 enrolled, 3 completed.
        let first = qualification_for_completion(
            &nomination,
            &completed("e-001", "2010-06-30"),
            event_id(3),
        )
        .expect("a degree programme");

        // Accepted once.
        let mut official = vec![registered()];
        TestFramework::<Official>::with(())
            .given(official.clone())
            .when(first.command.clone())
            .then_expect_events(vec![OfficialEvent::QualificationRecorded(
                expected_qualification("2010-06-30"),
            )]);
        official.push(OfficialEvent::QualificationRecorded(
            expected_qualification("2010-06-30"),
        )); // 2

        // A second qualification from the same enrollment is refused while
        // the first is live, whatever key it comes under.
        let second = qualification_for_completion(
            &nomination,
            &completed("e-001", "2010-07-01"),
            event_id(4),
        )
        .expect("a degree programme");
        for command in [first.command.clone(), second.command] {
            TestFramework::<Official>::with(())
                .given(official.clone())
                .when(command)
                .then_expect_error(OfficialError::QualificationAlreadyRecorded(enrollment_id(
                    "e-001",
                )));
        }

        // The completion is retracted (enrollment version 4): its
        // qualification is retracted too.
        let retraction = qualification_retraction(
            &official_id("o-001"),
            &official_after(&official),
            &enrollment_id("e-001"),
            event_id(4),
            &retracted(3, "2010-07-15"),
        )
        .expect("a live qualification from e-001");
        assert_eq!(retraction.target_version, 2);
        let (command, retracted_event) = retract_command(&retraction);
        TestFramework::<Official>::with(())
            .given(official.clone())
            .when(command)
            .then_expect_events(vec![OfficialEvent::Retracted(retracted_event.clone())]);
        official.push(OfficialEvent::Retracted(retracted_event)); // 3

        // The completion is done again (enrollment version 5): a new event,
        // a new key, and its qualification is recorded again.
        let redone = qualification_for_completion(
            &nomination,
            &completed("e-001", "2010-08-01"),
            event_id(5),
        )
        .expect("a degree programme");
        assert_ne!(redone.idempotency_key, first.idempotency_key);
        TestFramework::<Official>::with(())
            .given(official.clone())
            .when(redone.command)
            .then_expect_events(vec![OfficialEvent::QualificationRecorded(
                expected_qualification("2010-08-01"),
            )]);
        official.push(OfficialEvent::QualificationRecorded(
            expected_qualification("2010-08-01"),
        )); // 4
        assert_eq!(
            official_after(&official).qualification_from(&enrollment_id("e-001")),
            Some(4)
        );
    }

    // --- qualification_retraction ---

    #[test]
    fn it_retracts_the_live_qualification_recorded_from_the_enrollment() {
        let official = official_after(&[
            registered(),                                                               // 1
            OfficialEvent::QualificationRecorded(expected_qualification("2010-06-30")), // 2
            OfficialEvent::QualificationRecorded(qualification(
                "o-001",
                Track::PoliticalTheory,
                "elementary",
                Some("e-009"),
                "2009-01-01",
            )), // 3
            OfficialEvent::Retracted(Retraction {
                target_version: 2,
                fact: FactRetracted {
                    event_id: official_event_id(2),
                    reason: "recorded in error".into(),
                    effective_date: date("2010-07-01"),
                },
            }), // 4
            OfficialEvent::QualificationRecorded(expected_qualification("2010-08-01")), // 5
        ]);
        let retraction = FactRetracted {
            event_id: event_id(3),
            reason: "the diploma number was wrong".into(),
            effective_date: date("2010-09-01"),
        };
        assert_eq!(
            qualification_retraction(
                &official_id("o-001"),
                &official,
                &enrollment_id("e-001"),
                event_id(6),
                &retraction,
            ),
            Some(QualificationRetraction {
                idempotency_key: "qualification-retraction-7e570000-0000-0000-0000-000000000006"
                    .into(),
                official_id: official_id("o-001"),
                target_version: 5,
                reason:
                    "the completion of enrollment e-001 was retracted: the diploma number was wrong"
                        .into(),
                effective_date: date("2010-09-01"),
            })
        );
        // Keyed by the retraction event: the same event, the same command;
        // another event, another key.
        let again = qualification_retraction(
            &official_id("o-001"),
            &official,
            &enrollment_id("e-001"),
            event_id(6),
            &retraction,
        );
        let other = qualification_retraction(
            &official_id("o-001"),
            &official,
            &enrollment_id("e-001"),
            event_id(8),
            &retraction,
        )
        .expect("a live qualification from e-001");
        assert_eq!(
            again.map(|r| r.idempotency_key),
            Some("qualification-retraction-7e570000-0000-0000-0000-000000000006".to_owned())
        );
        assert_eq!(
            other.idempotency_key,
            "qualification-retraction-7e570000-0000-0000-0000-000000000008"
        );
    }

    #[test]
    fn it_should_not_retract_a_qualification_when_none_from_the_enrollment_is_live() {
        let retraction = retracted(3, "2010-07-15");
        let cases: Vec<Vec<OfficialEvent>> = vec![
            // No qualification at all.
            vec![registered()],
            // Qualifications, none from e-001 (one from another enrollment,
            // one recorded by hand).
            vec![
                registered(),
                OfficialEvent::QualificationRecorded(qualification(
                    "o-001",
                    Track::Professional,
                    "intermediate",
                    Some("e-009"),
                    "2009-01-01",
                )),
                OfficialEvent::QualificationRecorded(qualification(
                    "o-001",
                    Track::GeneralEducation,
                    "upper_secondary",
                    None,
                    "1988-06-01",
                )),
            ],
            // The one from e-001 is already retracted.
            vec![
                registered(),
                OfficialEvent::QualificationRecorded(expected_qualification("2010-06-30")),
                OfficialEvent::Retracted(Retraction {
                    target_version: 2,
                    fact: FactRetracted {
                        event_id: official_event_id(2),
                        reason: "recorded in error".into(),
                        effective_date: date("2010-07-01"),
                    },
                }),
            ],
        ];
        for events in cases {
            assert_eq!(
                qualification_retraction(
                    &official_id("o-001"),
                    &official_after(&events),
                    &enrollment_id("e-001"),
                    event_id(4),
                    &retraction,
                ),
                None,
                "{events:?}"
            );
        }
    }
}
