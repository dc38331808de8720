//! The official's use cases: `register_official`, `record_qualification`,
//! `assign_position`, `plan`, `rate` and `record_leaving`, with their
//! look-ups (the official's stream, the units named, the position taxonomy
//! in force).

use tledger_domain::official::check_unit_reference;
use tledger_domain::{Found, Official, OfficialCommand};
use tledger_events::facts::OfficialRegistered;
use tledger_events::{AggregateKind, Date, Fact, OfficialId, UnitId};

use super::loaded::{load, Loaded};
use super::pipeline::{decide, decision, CommandService, Decision};
use super::reference_publication::Taxonomies;
use super::refusal::{wrong_type, Refusal};
use super::scope::check_scope;
use crate::access::Caller;

impl CommandService {
    /// `register_official`: the unit must be registered (404), then be
    /// within the caller's scope (403).
    #[tracing::instrument(level = "debug", name = "command.register_official", skip_all, fields(aggregate_id = %s.official_id))]
    pub(super) async fn register_official(
        &self,
        caller: &Caller,
        s: &OfficialRegistered,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let tree = self.unit_tree(&[s.unit_id.as_str()]).await?;
        let unit = Found::unit(&tree, Some(&s.unit_id));
        check_unit_reference(&s.unit_id, &unit).map_err(|e| Refusal::from_contract(&e))?;
        check_scope(caller, &tree, &[s.unit_id.as_str()], s.effective_date)?;
        let Fact::OfficialRegistered(fact) = full()? else {
            return Err(wrong_type("official.registered"));
        };
        let taxonomy = Taxonomies::on(&self.inner.taxonomies, store, fact.effective_date).await?;
        let loaded: Loaded<Official> =
            load(store, AggregateKind::Official, fact.official_id.as_str()).await?;
        let id = fact.official_id.to_string();
        let events = decide(
            &loaded.aggregate,
            OfficialCommand::Register {
                fact,
                unit,
                taxonomy,
            },
        )
        .await
        .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Official,
            &id,
            loaded.version,
            events,
        ))
    }

    /// The facts about a registered official: the official must be
    /// registered and a new unit named must be too (404); the official's
    /// unit on the date and the new unit must be within the caller's scope
    /// (403).
    #[tracing::instrument(level = "debug", name = "command.record_official_fact", skip_all, fields(fact_type = %shape.fact_type(), aggregate_id = tracing::field::Empty))]
    pub(super) async fn record_official_fact(
        &self,
        caller: &Caller,
        shape: &Fact,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let (official_id, date, new_unit): (&OfficialId, Date, Option<&UnitId>) = match shape {
            Fact::QualificationRecorded(s) => (&s.official_id, s.effective_date, None),
            Fact::PositionAssigned(s) => (&s.official_id, s.effective_date, Some(&s.unit_id)),
            Fact::Planned(s) => (&s.official_id, s.effective_date, None),
            Fact::Rated(s) => (&s.official_id, s.effective_date, None),
            Fact::Left(s) => (&s.official_id, s.effective_date, None),
            _ => return Err(wrong_type("official")),
        };
        tracing::Span::current().record("aggregate_id", official_id.as_str());
        let loaded: Loaded<Official> =
            load(store, AggregateKind::Official, official_id.as_str()).await?;
        loaded
            .aggregate
            .require_registered(official_id)
            .map_err(|e| Refusal::from_contract(&e))?;
        let tree = self
            .unit_tree(&new_unit.map(UnitId::as_str).into_iter().collect::<Vec<_>>())
            .await?;
        let found = Found::unit(&tree, new_unit);
        if let Some(unit) = new_unit {
            check_unit_reference(unit, &found).map_err(|e| Refusal::from_contract(&e))?;
        }
        let mut scope: Vec<&str> = loaded
            .aggregate
            .unit_on(date)
            .map(UnitId::as_str)
            .into_iter()
            .collect();
        scope.extend(new_unit.map(UnitId::as_str));
        check_scope(caller, &tree, &scope, date)?;
        let fact = full()?;
        let command = match fact {
            Fact::QualificationRecorded(f) => OfficialCommand::RecordQualification(f),
            Fact::PositionAssigned(f) => OfficialCommand::AssignPosition {
                taxonomy: Taxonomies::on(&self.inner.taxonomies, store, f.effective_date).await?,
                fact: f,
                unit: found,
            },
            Fact::Planned(f) => OfficialCommand::Plan {
                taxonomy: Taxonomies::on(&self.inner.taxonomies, store, f.effective_date).await?,
                fact: f,
            },
            Fact::Rated(f) => OfficialCommand::Rate(f),
            Fact::Left(f) => OfficialCommand::RecordLeaving(f),
            _ => return Err(wrong_type("official")),
        };
        let events = decide(&loaded.aggregate, command)
            .await
            .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Official,
            official_id.as_str(),
            loaded.version,
            events,
        ))
    }
}
