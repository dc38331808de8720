//! Who may command where: the role step (403 before the body is read) and
//! the unit scope of a unit officer (403 after the look-ups, before the
//! values: docs/adr/0006-command-pipeline-and-error-order.md).

use tledger_domain::ErrorCode;
use tledger_events::{Date, FactType};

use super::refusal::Refusal;
use crate::access::{Caller, Role};
use tledger_events::unit_tree::UnitTree;

/// 403 unless the role may send this command at all.
pub(super) fn check_role(caller: &Caller, fact_type: FactType) -> Result<(), Refusal> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::UnitOfficer if fact_type != FactType::ReferencePublished => Ok(()),
        role => Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("a {role} token may not send this command"),
        )),
    }
}

pub(super) fn admin_only(caller: &Caller, what: &str) -> Result<(), Refusal> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("{what} needs an admin token"),
        ))
    }
}

/// 403 unless every unit in `units` is within a unit officer's subtree on
/// `date` (other roles allowed to command have no unit scope).
pub(super) fn check_scope(
    caller: &Caller,
    tree: &UnitTree,
    units: &[&str],
    date: Date,
) -> Result<(), Refusal> {
    let Some(root) = caller
        .unit_id
        .as_ref()
        .filter(|_| caller.role == Role::UnitOfficer)
    else {
        return Ok(());
    };
    match units.iter().find(|u| !tree.within(u, root.as_str(), date)) {
        None => Ok(()),
        Some(outside) => Err(Refusal::new(
            ErrorCode::Forbidden,
            format!(
                "unit {outside} is outside the scope of {} ({root} and the units below it on {date})",
                caller.name
            ),
        )),
    }
}
