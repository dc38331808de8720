//! The unit hierarchy on a date, from unit facts (registrations and
//! reorganisations not retracted at the cut). A dissolved unit counts under
//! the unit it was dissolved into from the dissolution on.

use std::collections::{HashMap, HashSet};

use crate::Date;

/// One unit fact as the read model keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitChange {
    pub unit_id: String,
    pub position: u64,
    pub effective_date: Date,
    /// `true` for a registration.
    pub registered: bool,
    pub parent_id: Option<String>,
    pub dissolved_into: Option<String>,
    pub name: Option<String>,
}

/// The hierarchy over time.
#[derive(Clone, Debug, Default)]
pub struct Hierarchy {
    changes: HashMap<String, Vec<UnitChange>>,
}

impl Hierarchy {
    pub fn new(changes: impl IntoIterator<Item = UnitChange>) -> Self {
        let mut by_unit: HashMap<String, Vec<UnitChange>> = HashMap::new();
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

    pub fn contains(&self, unit: &str) -> bool {
        self.changes
            .get(unit)
            .is_some_and(|c| c.iter().any(|c| c.registered))
    }

    pub fn units(&self) -> impl Iterator<Item = &str> {
        self.changes.keys().map(String::as_str)
    }

    /// The unit above `unit` on `date`: the receiving unit once dissolved,
    /// else the parent of the latest re-parenting effective by then (a tie
    /// goes to the later fact), else the registration's parent.
    pub fn parent_on(&self, unit: &str, date: Date) -> Option<&str> {
        let changes = self.changes.get(unit)?;
        let dissolved = changes
            .iter()
            .filter(|c| c.dissolved_into.is_some() && c.effective_date <= date)
            .min_by_key(|c| (c.effective_date, c.position));
        if let Some(d) = dissolved {
            return d.dissolved_into.as_deref();
        }
        let moved = changes
            .iter()
            .filter(|c| !c.registered && c.parent_id.is_some() && c.effective_date <= date)
            .max_by_key(|c| (c.effective_date, c.position));
        match moved {
            Some(m) => m.parent_id.as_deref(),
            None => changes
                .iter()
                .find(|c| c.registered)
                .and_then(|c| c.parent_id.as_deref()),
        }
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
                Some(parent) => current = parent,
                None => return false,
            }
        }
    }

    /// `root` and every unit below it on `date`.
    pub fn subtree_on(&self, root: &str, date: Date) -> HashSet<String> {
        self.changes
            .keys()
            .filter(|u| self.within(u, root, date))
            .cloned()
            .collect()
    }
}

impl Hierarchy {
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
            .map(String::as_str)
            .filter(|u| self.standing_on(u, date) && self.parent_on(u, date) == parent)
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
        let mut current = self.changes.get_key_value(unit).map(|(k, _)| k.as_str());
        while let Some(u) = current {
            if !seen.insert(u) {
                break;
            }
            path.push(u);
            current = self.parent_on(u, date);
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

    fn registered(unit: &str, parent: Option<&str>, position: u64) -> UnitChange {
        UnitChange {
            unit_id: unit.into(),
            position,
            effective_date: date("1997-01-01"),
            registered: true,
            parent_id: parent.map(Into::into),
            dissolved_into: None,
            name: Some(unit.into()),
        }
    }

    #[test]
    fn the_subtree_follows_reparentings_and_dissolutions_by_date() {
        let mut moved = registered("c1", None, 5);
        moved.registered = false;
        moved.parent_id = Some("d2".into());
        moved.effective_date = date("2010-01-01");
        let mut dissolved = registered("c2", None, 6);
        dissolved.registered = false;
        dissolved.parent_id = None;
        dissolved.dissolved_into = Some("c1".into());
        dissolved.effective_date = date("2025-07-01");
        let h = Hierarchy::new(vec![
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
        dissolved.dissolved_into = Some("c1".into());
        dissolved.effective_date = date("2025-07-01");
        let h = Hierarchy::new(vec![
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
