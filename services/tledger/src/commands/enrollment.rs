//! The training place's use cases: `nominate`, `enroll`, `complete`,
//! `fail`, `withdraw` and `cancel`, with their look-ups (the place's
//! stream, the official's tenure, the nominating unit).

use tledger_domain::enrollment::check_nomination_references;
use tledger_domain::{Enrollment, EnrollmentCommand, Found, Official};
use tledger_events::facts::TrainingNominated;
use tledger_events::{AggregateKind, Date, EnrollmentId, Fact};

use super::loaded::{load, Loaded};
use super::pipeline::{decide, decision, CommandService, Decision};
use super::refusal::{wrong_type, Refusal};
use super::scope::check_scope;
use crate::access::{Caller, Role};

impl CommandService {
    /// `nominate`: the official and the nominating unit must be registered
    /// (404, in that order), then the unit be within the caller's scope
    /// (403).
    #[tracing::instrument(level = "debug", name = "command.nominate", skip_all, fields(aggregate_id = %s.enrollment_id, official_id = %s.official_id))]
    pub(super) async fn nominate(
        &self,
        caller: &Caller,
        s: &TrainingNominated,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        // Two independent reads: in parallel, one round trip of latency.
        let (official, place) = tokio::join!(
            load::<Official>(store, AggregateKind::Official, s.official_id.as_str()),
            load::<Enrollment>(store, AggregateKind::Enrollment, s.enrollment_id.as_str()),
        );
        let (official, loaded) = (official?, place?);
        let nominee = official.aggregate.nominee();
        let tree = self.unit_tree(&[s.nominating_unit_id.as_str()]).await?;
        let nominating_unit = Found::unit(&tree, Some(&s.nominating_unit_id));
        check_nomination_references(s, &nominee, &nominating_unit)
            .map_err(|e| Refusal::from_contract(&e))?;
        check_scope(
            caller,
            &tree,
            &[s.nominating_unit_id.as_str()],
            s.effective_date,
        )?;
        let Fact::TrainingNominated(fact) = full()? else {
            return Err(wrong_type("training.nominated"));
        };
        let id = fact.enrollment_id.to_string();
        let events = decide(
            &loaded.aggregate,
            EnrollmentCommand::Nominate {
                fact: Box::new(fact),
                official: nominee,
                nominating_unit,
            },
        )
        .await
        .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Enrollment,
            &id,
            loaded.version,
            events,
        ))
    }

    /// The steps after a nomination: the place must have been nominated
    /// (404), and its nominating unit be within the caller's scope (403).
    #[tracing::instrument(level = "debug", name = "command.record_enrollment_step", skip_all, fields(fact_type = %shape.fact_type(), aggregate_id = tracing::field::Empty))]
    pub(super) async fn record_enrollment_step(
        &self,
        caller: &Caller,
        shape: &Fact,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let (enrollment_id, date): (&EnrollmentId, Date) = match shape {
            Fact::TrainingEnrolled(s) => (&s.enrollment_id, s.effective_date),
            Fact::TrainingCompleted(s) => (&s.enrollment_id, s.effective_date),
            Fact::TrainingFailed(s) | Fact::TrainingWithdrawn(s) | Fact::TrainingCancelled(s) => {
                (&s.enrollment_id, s.effective_date)
            }
            _ => return Err(wrong_type("training")),
        };
        tracing::Span::current().record("aggregate_id", enrollment_id.as_str());
        let loaded: Loaded<Enrollment> =
            load(store, AggregateKind::Enrollment, enrollment_id.as_str()).await?;
        let nomination = loaded
            .aggregate
            .nominated(enrollment_id)
            .map_err(|e| Refusal::from_contract(&e))?;
        if caller.role == Role::UnitOfficer {
            let tree = self.unit_tree(&[]).await?;
            check_scope(
                caller,
                &tree,
                &[nomination.nominating_unit_id.as_str()],
                date,
            )?;
        }
        let command = match full()? {
            Fact::TrainingEnrolled(f) => EnrollmentCommand::Enroll(f),
            Fact::TrainingCompleted(f) => EnrollmentCommand::Complete(f),
            Fact::TrainingFailed(f) => EnrollmentCommand::Fail(f),
            Fact::TrainingWithdrawn(f) => EnrollmentCommand::Withdraw(f),
            Fact::TrainingCancelled(f) => EnrollmentCommand::Cancel(f),
            _ => return Err(wrong_type("training")),
        };
        let events = decide(&loaded.aggregate, command)
            .await
            .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Enrollment,
            enrollment_id.as_str(),
            loaded.version,
            events,
        ))
    }
}
