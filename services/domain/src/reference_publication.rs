//! Reference data publications (position taxonomies, standards rulesets,
//! post → specialty maps); stream `reference-<name>`.
//!
//! Rules: a name is published once; publications are not retracted (facts
//! were checked against them), a correction is published under a new name
//! in force from the same date, and the later publication wins a tie (see
//! `tledger_events::reference_data::in_force`). The content itself is checked
//! when the fact is parsed.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use tledger_events::facts::ReferencePublished;
use tledger_events::{Fact, ReferenceName};

use crate::error::{ContractError, ErrorCode};
use crate::retraction::IntoFact;
use crate::retraction::{FromFact, Records, RetractFact, Retractable, Retraction, RetractionError};

/// What a reference stream records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReferenceEvent {
    Published(ReferencePublished),
}

impl crate::retraction::IntoFact for ReferenceEvent {
    fn into_fact(self) -> Fact {
        match self {
            ReferenceEvent::Published(d) => Fact::ReferencePublished(d),
        }
    }
}

impl FromFact for ReferenceEvent {
    const AGGREGATE: &'static str = "reference";
    fn from_fact(fact: Fact, _: Option<u64>) -> Option<Self> {
        match fact {
            Fact::ReferencePublished(d) => Some(Self::Published(d)),
            _ => None,
        }
    }
}

impl DomainEvent for ReferenceEvent {
    fn event_type(&self) -> String {
        self.clone().into_fact().fact_type().as_str().to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Reference streams hold no retractions (publications are not retracted).
impl Retractable for ReferenceEvent {
    fn retraction(&self) -> Option<&Retraction> {
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReferenceCommand {
    Publish(ReferencePublished),
    Retract(RetractFact),
}

/// Why a reference command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference data {0} is already published: publish a correction under a new name")]
    AlreadyPublished(ReferenceName),
    #[error(transparent)]
    Retraction(#[from] RetractionError),
}

impl ContractError for ReferenceError {
    fn code(&self) -> ErrorCode {
        match self {
            ReferenceError::AlreadyPublished(_) => ErrorCode::Conflict,
            ReferenceError::Retraction(e) => e.code(),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ReferenceError::AlreadyPublished(_) => Some("/name".into()),
            ReferenceError::Retraction(e) => e.field(),
        }
    }
}

/// The reference aggregate: at most one publication per name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    records: Records<ReferenceEvent>,
}

impl Reference {
    pub fn published(&self) -> Option<&ReferencePublished> {
        self.records
            .live()
            .map(|(_, ReferenceEvent::Published(p))| p)
            .next()
    }

    fn decide(&self, command: ReferenceCommand) -> Result<ReferenceEvent, ReferenceError> {
        match command {
            ReferenceCommand::Publish(fact) => match self.published() {
                Some(_) => Err(ReferenceError::AlreadyPublished(fact.name)),
                None => Ok(ReferenceEvent::Published(fact)),
            },
            ReferenceCommand::Retract(_) => Err(RetractionError::ReferenceData.into()),
        }
    }
}

records_aggregate!(
    Reference,
    "reference",
    ReferenceCommand,
    ReferenceEvent,
    ReferenceError
);

#[cfg(test)]
mod tests {
    use crate::retraction::IntoFact;
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use cqrs_es::DomainEvent;
    use tledger_events::{reference_data, ReferenceKind};

    use super::*;
    use crate::fixtures::*;

    /// The shipped defaults as `reference.published.v1` facts.
    fn shipped() -> Vec<ReferencePublished> {
        reference_data::shipped()
            .expect("shipped reference data parses")
            .into_iter()
            .map(|(published, _)| published)
            .collect()
    }

    fn shipped_named(name: &str) -> ReferencePublished {
        shipped()
            .into_iter()
            .find(|p| p.name.to_string() == name)
            .expect("a shipped default of that name")
    }

    #[test]
    fn it_publishes_each_shipped_default() {
        let shipped = shipped();
        assert_eq!(
            shipped
                .iter()
                .map(|p| (p.name.to_string(), p.kind))
                .collect::<Vec<_>>(),
            vec![
                ("nd92-2009".to_owned(), ReferenceKind::PositionTaxonomy),
                ("qd04-2004".to_owned(), ReferenceKind::Ruleset),
                (
                    "default-specialties".to_owned(),
                    ReferenceKind::SpecialtyMap
                ),
            ]
        );
        for published in shipped {
            TestFramework::<Reference>::with(())
                .given_no_previous_events()
                .when(ReferenceCommand::Publish(published.clone()))
                .then_expect_events(vec![ReferenceEvent::Published(published)]);
        }
    }

    #[test]
    fn it_holds_what_was_published() {
        let published = shipped_named("nd92-2009");
        assert_eq!(published.effective_date, date("1990-01-01"));
        let mut aggregate = Reference::default();
        assert_eq!(aggregate.published(), None);
        aggregate.apply(ReferenceEvent::Published(published.clone()));
        assert_eq!(aggregate.published(), Some(&published));
        assert_eq!(
            ReferenceEvent::Published(published.clone()).event_type(),
            "reference.published.v1"
        );
        assert_eq!(
            ReferenceEvent::Published(published.clone()).into_fact(),
            Fact::ReferencePublished(published)
        );
    }

    #[test]
    fn it_should_not_publish_the_same_name_twice() {
        let published = shipped_named("qd04-2004");
        let error = ReferenceError::AlreadyPublished(published.name.clone());
        assert_eq!(error.code(), ErrorCode::Conflict);
        assert_eq!(error.code().http_status(), 409);
        assert_eq!(error.field().as_deref(), Some("/name"));
        assert_eq!(
            error.to_string(),
            "reference data qd04-2004 is already published: publish a correction under a new name"
        );
        // Also with other content or another date: a correction takes a new name.
        let corrected = ReferencePublished {
            effective_date: date("2005-01-01"),
            ..published.clone()
        };
        for again in [published.clone(), corrected] {
            TestFramework::<Reference>::with(())
                .given(vec![ReferenceEvent::Published(published.clone())])
                .when(ReferenceCommand::Publish(again))
                .then_expect_error(error.clone());
        }
    }

    #[test]
    fn it_should_not_retract_reference_data() {
        let error = ReferenceError::Retraction(RetractionError::ReferenceData);
        assert_eq!(error.code(), ErrorCode::Conflict);
        assert_eq!(error.code().http_status(), 409);
        assert_eq!(error.field().as_deref(), Some("/event_id"));
        TestFramework::<Reference>::with(())
            .given(vec![ReferenceEvent::Published(shipped_named("nd92-2009"))])
            .when(ReferenceCommand::Retract(retract(1, 0, "2010-01-01")))
            .then_expect_error(error);
    }
}
