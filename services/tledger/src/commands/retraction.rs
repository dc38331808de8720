//! `retract`: a fact of any stream is retracted by its event id; the
//! retracted fact's unit decides the scope, its stream's aggregate whether
//! it may go (docs/contract.md, Rules the ledger enforces).

use tledger_domain::{
    Enrollment, EnrollmentCommand, Official, OfficialCommand, Reference, ReferenceCommand,
    RetractFact, RetractionError, Unit, UnitCommand,
};
use tledger_events::facts::FactRetracted;
use tledger_events::{AggregateKind, Fact};

use super::loaded::{load, Loaded};
use super::pipeline::{decide, decision, CommandService, Decision};
use super::refusal::{wrong_type, Refusal};
use super::scope::{admin_only, check_scope};
use crate::access::{Caller, Role};

impl CommandService {
    /// `retract`: the fact must exist (404); a unit officer's scope is the
    /// unit the fact belongs to on the retraction's date (403); a fact
    /// without a unit is an admin's to retract.
    #[tracing::instrument(level = "debug", name = "command.retract", skip_all, fields(event_id = %shape.event_id))]
    pub(super) async fn retract(
        &self,
        caller: &Caller,
        shape: &FactRetracted,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let not_found = || Refusal::from_contract(&RetractionError::UnknownEvent(shape.event_id));
        let location = store.locate(shape.event_id).await?.ok_or_else(not_found)?;
        let kind = AggregateKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == location.aggregate_type)
            .ok_or_else(not_found)?;
        let id = location.aggregate_id.as_str();
        let date = shape.effective_date;
        // Scope: the unit the retracted fact belongs to.
        if caller.role == Role::UnitOfficer {
            let tree = self.unit_tree(&[]).await?;
            let unit: Option<String> = match kind {
                AggregateKind::Reference => None,
                AggregateKind::Unit => tree.parent_on(id, date).map(ToString::to_string),
                AggregateKind::Official => load::<Official>(store, kind, id)
                    .await?
                    .aggregate
                    .unit_on(date)
                    .map(ToString::to_string),
                AggregateKind::Enrollment => load::<Enrollment>(store, kind, id)
                    .await?
                    .aggregate
                    .nomination()
                    .map(|n| n.nominating_unit_id.to_string()),
            };
            match unit {
                Some(unit) => check_scope(caller, &tree, &[unit.as_str()], date)?,
                None => admin_only(caller, "retracting this fact")?,
            }
        }
        let Fact::FactRetracted(fact) = full()? else {
            return Err(wrong_type("fact.retracted"));
        };
        let dependents = match kind {
            AggregateKind::Unit | AggregateKind::Official if location.version == 1 => {
                store.dependents(kind, id).await?
            }
            _ => 0,
        };
        let retract = RetractFact {
            fact,
            target_version: location.version,
            dependents,
        };
        Ok(match kind {
            AggregateKind::Reference => {
                let loaded: Loaded<Reference> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, ReferenceCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
            AggregateKind::Unit => {
                let loaded: Loaded<Unit> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, UnitCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
            AggregateKind::Official => {
                let loaded: Loaded<Official> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, OfficialCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
            AggregateKind::Enrollment => {
                let loaded: Loaded<Enrollment> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, EnrollmentCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
        })
    }
}
