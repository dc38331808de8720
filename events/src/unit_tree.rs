//! The unit tree: which unit stands above which on a date, from the unit
//! facts in force (registrations and reorganisations not retracted). A
//! dissolved unit counts under the unit it was dissolved into from the
//! dissolution on. One rule for the write side (a command's scope and cycle
//! checks) and the read side (reports, the dashboard, offline replay):
//! docs/adr/0020-one-unit-tree.md.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::facts::{UnitRegistered, UnitReorganised};
use crate::{Date, UnitId};

/// One unit fact in force, as the tree keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitChange {
    pub unit_id: UnitId,
    /// Orders one unit's changes: the ledger position on the read side, the
    /// stream version on the write side (both follow the order recorded).
    pub position: u64,
    pub effective_date: Date,
    /// `true` for a registration.
    pub registered: bool,
    pub parent_id: Option<UnitId>,
    pub dissolved_into: Option<UnitId>,
    pub name: Option<String>,
}

impl UnitChange {
    /// The change a registration makes.
    pub fn registration(fact: &UnitRegistered, position: u64) -> Self {
        Self {
            unit_id: fact.unit_id.clone(),
            position,
            effective_date: fact.effective_date,
            registered: true,
            parent_id: fact.parent_id.clone(),
            dissolved_into: None,
            name: Some(fact.name.clone()),
        }
    }

    /// The change a reorganisation makes.
    pub fn reorganisation(fact: &UnitReorganised, position: u64) -> Self {
        Self {
            unit_id: fact.unit_id.clone(),
            position,
            effective_date: fact.effective_date,
            registered: false,
            parent_id: fact.parent_id.clone(),
            dissolved_into: fact.dissolved_into.clone(),
            name: fact.name.clone(),
        }
    }
}

/// The unit tree over time. Units are asked for by their id as text (a
/// query parameter, a token's scope); what the tree answers is typed.
#[derive(Clone, Debug, Default)]
pub struct UnitTree {
    changes: HashMap<UnitId, Vec<UnitChange>>,
}

impl UnitTree {
    pub fn new(changes: impl IntoIterator<Item = UnitChange>) -> Self {
        let mut by_unit: HashMap<UnitId, Vec<UnitChange>> = HashMap::new();
        for change in changes {
            by_unit
                .entry(change.unit_id.clone())
                .or_default()
                .push(change);
        }
        for list in by_unit.values_mut() {
            list.sort_by_key(|c| c.position);
        }
        Self { changes: by_unit }
    }

    /// Whether `unit` is registered.
    pub fn contains(&self, unit: &str) -> bool {
        self.changes
            .get(unit)
            .is_some_and(|c| c.iter().any(|c| c.registered))
    }

    pub fn units(&self) -> impl Iterator<Item = &str> {
        self.changes.keys().map(UnitId::as_str)
    }

    /// The unit above `unit` on `date`: the receiving unit once dissolved,
    /// else the parent of the latest re-parenting effective by then (a tie
    /// goes to the later fact), else the registration's parent.
    pub fn parent_on(&self, unit: &str, date: Date) -> Option<&UnitId> {
        let changes = self.changes.get(unit)?;
        let dissolved = changes
            .iter()
            .filter(|c| c.dissolved_into.is_some() && c.effective_date <= date)
            .min_by_key(|c| (c.effective_date, c.position));
        if let Some(d) = dissolved {
            return d.dissolved_into.as_ref();
        }
        let moved = changes
            .iter()
            .filter(|c| !c.registered && c.parent_id.is_some() && c.effective_date <= date)
            .max_by_key(|c| (c.effective_date, c.position));
        match moved {
            Some(m) => m.parent_id.as_ref(),
            None => changes
                .iter()
                .find(|c| c.registered)
                .and_then(|c| c.parent_id.as_ref()),
        }
    }

    /// `unit` followed by the units above it on `date` (stops at a cycle).
    pub fn line_on(&self, unit: &UnitId, date: Date) -> Vec<UnitId> {
        let mut line = vec![unit.clone()];
        while let Some(parent) = line.last().and_then(|u| self.parent_on(u.as_str(), date)) {
            if line.contains(parent) {
                break;
            }
            line.push(parent.clone());
        }
        line
    }

    /// Whether `unit` is `root` or below it on `date`.
    pub fn within(&self, unit: &str, root: &str, date: Date) -> bool {
        let mut seen = HashSet::new();
        let mut current = unit;
        loop {
            if current == root {
                return true;
            }
            if !seen.insert(current) {
                return false;
            }
            match self.parent_on(current, date) {
                Some(parent) => current = parent.as_str(),
                None => return false,
            }
        }
    }

    /// `root` and every unit below it on `date`.
    pub fn subtree_on(&self, root: &str, date: Date) -> HashSet<String> {
        self.changes
            .keys()
            .filter(|u| self.within(u.as_str(), root, date))
            .map(ToString::to_string)
            .collect()
    }

    /// Every date on which the tree changed: between two of them it stands
    /// still, so "within a subtree at some time" needs checking on these
    /// only.
    pub fn change_dates(&self) -> BTreeSet<Date> {
        self.changes
            .values()
            .flatten()
            .map(|c| c.effective_date)
            .collect()
    }

    /// Whether `unit` stands on its own on `date`: registered by then and
    /// not yet dissolved into another.
    pub fn standing_on(&self, unit: &str, date: Date) -> bool {
        self.changes.get(unit).is_some_and(|changes| {
            changes
                .iter()
                .any(|c| c.registered && c.effective_date <= date)
                && !changes
                    .iter()
                    .any(|c| c.dissolved_into.is_some() && c.effective_date <= date)
        })
    }

    /// The units standing directly under `parent` on `date` (`None`: the
    /// top level), by id; a picker walks the tree one level at a time, so a
    /// country of thousands of communes is never listed at once.
    pub fn children_on(&self, parent: Option<&str>, date: Date) -> Vec<&str> {
        let mut children: Vec<&str> = self
            .changes
            .keys()
            .map(UnitId::as_str)
            .filter(|u| {
                self.standing_on(u, date) && self.parent_on(u, date).map(UnitId::as_str) == parent
            })
            .collect();
        children.sort_unstable();
        children
    }

    /// The unit's name on `date`: the latest name given by then (a tie goes
    /// to the later fact), else the name it was registered with.
    pub fn name_on(&self, unit: &str, date: Date) -> Option<&str> {
        let changes = self.changes.get(unit)?;
        changes
            .iter()
            .filter(|c| c.name.is_some() && c.effective_date <= date)
            .max_by_key(|c| (c.effective_date, c.position))
            .or_else(|| changes.iter().find(|c| c.registered))
            .and_then(|c| c.name.as_deref())
    }

    /// `unit` and the units above it on `date`, from the top down.
    pub fn path_on(&self, unit: &str, date: Date) -> Vec<&str> {
        let mut path = Vec::new();
        let mut seen = HashSet::new();
        let mut current = self.changes.get_key_value(unit).map(|(k, _)| k);
        while let Some(u) = current {
            if !seen.insert(u) {
                break;
            }
            path.push(u.as_str());
            current = self.parent_on(u.as_str(), date);
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().expect("date")
    }

    fn id(s: &str) -> UnitId {
        UnitId::parse(s).expect("unit id")
    }

    fn registered(unit: &str, parent: Option<&str>, position: u64) -> UnitChange {
        UnitChange {
            unit_id: id(unit),
            position,
            effective_date: date("1997-01-01"),
            registered: true,
            parent_id: parent.map(id),
            dissolved_into: None,
            name: Some(unit.into()),
        }
    }

    #[test]
    fn the_subtree_follows_reparentings_and_dissolutions_by_date() {
        let mut moved = registered("c1", None, 5);
        moved.registered = false;
        moved.parent_id = Some(id("d2"));
        moved.effective_date = date("2010-01-01");
        let mut dissolved = registered("c2", None, 6);
        dissolved.registered = false;
        dissolved.parent_id = None;
        dissolved.dissolved_into = Some(id("c1"));
        dissolved.effective_date = date("2025-07-01");
        let h = UnitTree::new(vec![
            registered("p", None, 1),
            registered("d1", Some("p"), 2),
            registered("d2", Some("p"), 3),
            registered("c1", Some("d1"), 4),
            registered("c2", Some("d1"), 7),
            moved,
            dissolved,
        ]);
        let sorted = |s: HashSet<String>| {
            let mut v: Vec<String> = s.into_iter().collect();
            v.sort();
            v
        };
        assert_eq!(
            sorted(h.subtree_on("d1", date("2009-12-31"))),
            vec!["c1", "c2", "d1"]
        );
        assert_eq!(
            sorted(h.subtree_on("d1", date("2010-01-01"))),
            vec!["c2", "d1"]
        );
        assert_eq!(
            sorted(h.subtree_on("d2", date("2026-01-01"))),
            vec!["c1", "c2", "d2"]
        );
        assert!(h.within("c2", "p", date("2026-01-01")));
        assert!(!h.contains("nowhere"));
    }

    #[test]
    fn a_picker_walks_one_level_at_a_time_with_names_on_the_date() {
        let mut renamed = registered("c1", None, 5);
        renamed.registered = false;
        renamed.parent_id = None;
        renamed.name = Some("C one".into());
        renamed.effective_date = date("2012-01-01");
        let mut dissolved = registered("c2", None, 6);
        dissolved.registered = false;
        dissolved.parent_id = None;
        dissolved.name = None;
        dissolved.dissolved_into = Some(id("c1"));
        dissolved.effective_date = date("2025-07-01");
        let h = UnitTree::new(vec![
            registered("p", None, 1),
            registered("d1", Some("p"), 2),
            registered("c1", Some("d1"), 3),
            registered("c2", Some("d1"), 4),
            renamed,
            dissolved,
        ]);
        assert_eq!(h.children_on(None, date("2011-12-31")), vec!["p"]);
        assert_eq!(
            h.children_on(Some("d1"), date("2011-12-31")),
            vec!["c1", "c2"]
        );
        assert_eq!(h.children_on(Some("d1"), date("2026-01-01")), vec!["c1"]);
        assert_eq!(
            h.children_on(Some("d1"), date("1990-01-01")),
            Vec::<&str>::new()
        );
        assert_eq!(h.name_on("c1", date("2011-12-31")), Some("c1"));
        assert_eq!(h.name_on("c1", date("2012-01-01")), Some("C one"));
        assert_eq!(h.path_on("c1", date("2011-12-31")), vec!["p", "d1", "c1"]);
        assert_eq!(h.path_on("nowhere", date("2011-12-31")), Vec::<&str>::new());
    }
}
