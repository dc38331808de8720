//! Streams a fact names must exist: the contract's "404, referenced stream
//! missing" (docs/contract.md, Errors). The command service looks each one
//! up and hands over what it found as a [`Found`]; the domain alone turns a
//! missing one into the error, with the field and message the contract
//! gives. The pipeline asks before the unit scope (403) and the values
//! (422), as the error order has it
//! (docs/adr/0006-command-pipeline-and-error-order.md); the aggregate asks
//! again when it decides, from the same look-up
//! (docs/adr/0019-existence-checks-owned-by-the-domain.md).

use tledger_events::unit_tree::UnitTree;
use tledger_events::UnitId;

/// What a look-up found of a stream a fact names. A fact that names none
/// there (an optional reference left out) is looked up as `Registered`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found<T = ()> {
    Registered(T),
    Missing,
}

impl<T> Found<T> {
    pub fn from_option(found: Option<T>) -> Self {
        match found {
            Some(state) => Found::Registered(state),
            None => Found::Missing,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Found::Missing)
    }
}

impl Found {
    /// The look-up of `unit` in the unit tree; no unit named is `Registered`.
    pub fn unit(tree: &UnitTree, unit: Option<&UnitId>) -> Self {
        match unit {
            Some(unit) if !tree.contains(unit.as_str()) => Found::Missing,
            _ => Found::Registered(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tledger_events::unit_tree::UnitChange;

    #[test]
    fn a_unit_is_found_in_the_tree_once_registered_and_none_named_is_found() {
        let dl = UnitId::parse("dl").expect("id");
        let elsewhere = UnitId::parse("elsewhere").expect("id");
        let tree = UnitTree::new([UnitChange {
            unit_id: dl.clone(),
            position: 1,
            effective_date: "1997-01-01".parse().expect("date"),
            registered: true,
            parent_id: None,
            dissolved_into: None,
            name: Some("dl".into()),
        }]);
        assert_eq!(Found::unit(&tree, Some(&dl)), Found::Registered(()));
        assert_eq!(Found::unit(&tree, Some(&elsewhere)), Found::Missing);
        assert_eq!(Found::unit(&tree, None), Found::Registered(()));
    }
}
