//! The unit hierarchy on a date as the write side reads it, from every unit
//! stream.

use std::collections::{BTreeSet, HashMap};

use tledger_domain::Unit;
use tledger_events::{AggregateKind, Date};
use tledger_store::{Store, StoreError};

use crate::commands::rebuild;

/// The unit hierarchy over time, from every unit stream.
#[derive(Default)]
pub struct Hierarchy {
    units: HashMap<String, Unit>,
}

impl Hierarchy {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let mut units = HashMap::new();
        for (id, events) in store.load_streams(AggregateKind::Unit).await? {
            units.insert(id, rebuild::<Unit>(events)?.aggregate);
        }
        Ok(Self { units })
    }

    pub fn is_registered(&self, unit: &str) -> bool {
        self.units
            .get(unit)
            .is_some_and(|u| u.registration().is_some())
    }

    /// The unit above `unit` on `date`: the unit it was dissolved into once
    /// dissolved (its facts count there), else its parent after the
    /// re-parentings effective by then.
    pub fn parent_on(&self, unit: &str, date: Date) -> Option<String> {
        let u = self.units.get(unit)?;
        let registered = u.registration()?;
        if let Some((into, on)) = u.dissolution() {
            if on <= date {
                return Some(into.to_string());
            }
        }
        let moved = u
            .reorganisations()
            .filter(|r| r.parent_id.is_some() && r.effective_date <= date)
            .max_by_key(|r| r.effective_date)
            .and_then(|r| r.parent_id.clone());
        moved
            .or_else(|| registered.parent_id.clone())
            .map(|p| p.to_string())
    }

    /// `unit` followed by the units above it on `date` (stops at a cycle).
    pub fn line_on(&self, unit: &str, date: Date) -> Vec<String> {
        let mut line = vec![unit.to_owned()];
        while let Some(parent) = line.last().and_then(|u| self.parent_on(u, date)) {
            if line.contains(&parent) {
                break;
            }
            line.push(parent);
        }
        line
    }

    /// Whether `unit` is `root` or below it on `date`.
    pub fn within(&self, unit: &str, root: &str, date: Date) -> bool {
        self.line_on(unit, date).iter().any(|u| u == root)
    }

    /// Every date on which the hierarchy changed (registrations and
    /// reorganisations not retracted): between two of them it stands still,
    /// so "within a subtree at some time" needs checking on these only.
    pub fn change_dates(&self) -> BTreeSet<Date> {
        self.units
            .values()
            .flat_map(|u| {
                u.registration()
                    .map(|r| r.effective_date)
                    .into_iter()
                    .chain(u.reorganisations().map(|r| r.effective_date))
            })
            .collect()
    }
}
