//! The unit's use cases: `register_unit` and `reorganise_unit`, with their
//! look-ups (the unit tree as the database holds it now: a cycle check must
//! not use a stale copy).

use tledger_domain::unit::{check_registration_references, check_reorganisation_references};
use tledger_domain::{Found, Unit, UnitCommand};
use tledger_events::facts::{UnitRegistered, UnitReorganised};
use tledger_events::unit_tree::UnitTree;
use tledger_events::{AggregateKind, Fact, UnitId};
use tledger_store::{Store, StoreError};

use super::loaded::{load, rebuild, Loaded};
use super::pipeline::{decide, decision, CommandService, Decision};
use super::refusal::{wrong_type, Refusal};
use super::scope::{admin_only, check_scope};
use crate::access::Caller;

impl CommandService {
    /// `register_unit`: the parent, when given, must be registered (404),
    /// then be within the caller's scope (403).
    #[tracing::instrument(level = "debug", name = "command.register_unit", skip_all, fields(aggregate_id = %s.unit_id))]
    pub(super) async fn register_unit(
        &self,
        caller: &Caller,
        s: &UnitRegistered,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let tree = self.fresh_unit_tree().await?;
        let parent = Found::unit(&tree, s.parent_id.as_ref());
        check_registration_references(s, &parent).map_err(|e| Refusal::from_contract(&e))?;
        match &s.parent_id {
            Some(parent) => check_scope(caller, &tree, &[parent.as_str()], s.effective_date)?,
            None => admin_only(caller, "registering a unit without a parent")?,
        }
        let Fact::UnitRegistered(fact) = full()? else {
            return Err(wrong_type("unit.registered"));
        };
        let loaded: Loaded<Unit> = load(store, AggregateKind::Unit, fact.unit_id.as_str()).await?;
        let id = fact.unit_id.to_string();
        let events = decide(&loaded.aggregate, UnitCommand::Register { fact, parent })
            .await
            .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(AggregateKind::Unit, &id, loaded.version, events))
    }

    /// `reorganise_unit`: the unit, the new parent and the receiving unit
    /// must be registered (404, in that order); the current parent and the
    /// new units must be within the caller's scope (403).
    #[tracing::instrument(level = "debug", name = "command.reorganise_unit", skip_all, fields(aggregate_id = %s.unit_id))]
    pub(super) async fn reorganise_unit(
        &self,
        caller: &Caller,
        s: &UnitReorganised,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let tree = self.fresh_unit_tree().await?;
        let unit = s.unit_id.as_str();
        let dissolved_into = Found::unit(&tree, s.dissolved_into.as_ref());
        check_reorganisation_references(
            s,
            &Found::unit(&tree, Some(&s.unit_id)),
            &Found::unit(&tree, s.parent_id.as_ref()),
            &dissolved_into,
        )
        .map_err(|e| Refusal::from_contract(&e))?;
        let current_parent = tree.parent_on(unit, s.effective_date);
        let mut scope: Vec<&str> = Vec::new();
        match &current_parent {
            Some(p) => scope.push(p.as_str()),
            None => admin_only(caller, "reorganising a unit without a parent")?,
        }
        scope.extend(s.parent_id.as_ref().map(UnitId::as_str));
        scope.extend(s.dissolved_into.as_ref().map(UnitId::as_str));
        check_scope(caller, &tree, &scope, s.effective_date)?;
        let Fact::UnitReorganised(fact) = full()? else {
            return Err(wrong_type("unit.reorganised"));
        };
        let new_parent_line = fact
            .parent_id
            .as_ref()
            .map(|p| tree.line_on(p, fact.effective_date));
        let loaded: Loaded<Unit> = load(store, AggregateKind::Unit, unit).await?;
        let id = fact.unit_id.to_string();
        let events = decide(
            &loaded.aggregate,
            UnitCommand::Reorganise {
                fact,
                new_parent_line,
                dissolved_into,
            },
        )
        .await
        .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(AggregateKind::Unit, &id, loaded.version, events))
    }
}

/// The unit tree from every unit stream, as the write side reads it: each
/// unit's facts in force, in the order of its stream.
pub(crate) async fn load_unit_tree(store: &Store) -> Result<UnitTree, StoreError> {
    let mut changes = Vec::new();
    for (_, events) in store.load_streams(AggregateKind::Unit).await? {
        changes.extend(rebuild::<Unit>(events)?.aggregate.tree_changes());
    }
    Ok(UnitTree::new(changes))
}
