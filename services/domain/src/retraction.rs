//! Retractions, shared by every aggregate.
//!
//! A fact recorded in error is never edited: a `fact.retracted.v1` naming its
//! event id is appended to the same stream. An aggregate's `apply` sees only
//! facts, not event ids, so the domain form of a retraction carries the
//! stream version of the fact it retracts; [`resolve_stream`] fills it in
//! when a stream is loaded (the loader knows each stored event's id and
//! version), and the command handler fills it in before deciding.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tledger_events::facts::FactRetracted;
use tledger_events::Fact;
use uuid::Uuid;

use crate::error::{ContractError, ErrorCode};

/// A retraction as the aggregates see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retraction {
    /// The stream version (from 1) of the retracted fact.
    pub target_version: u64,
    pub fact: FactRetracted,
}

/// The `retract` command, after look-ups: the event id was found in this
/// stream at `target_version`; `dependents` counts facts in *other* streams
/// that depend on the target (officials and child units of a unit,
/// enrollments of an official or nominated by a unit).
#[derive(Clone, Debug, PartialEq)]
pub struct RetractFact {
    pub fact: FactRetracted,
    pub target_version: u64,
    pub dependents: u64,
}

/// Why a retraction is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetractionError {
    #[error("event {0} is not a fact of this stream")]
    UnknownEvent(Uuid),
    #[error("event {0} is already retracted")]
    AlreadyRetracted(Uuid),
    #[error("event {0} is itself a retraction: record the fact again instead")]
    RetractionOfRetraction(Uuid),
    #[error(
        "event {event_id} is not the last step of this enrollment: retract the later steps first"
    )]
    NotLastStep { event_id: Uuid },
    #[error("event {event_id} registers something that {dependents} later fact(s) depend on: retract those first")]
    HasDependents { event_id: Uuid, dependents: u64 },
    #[error("reference data is not retracted: publish a corrected version under a new name")]
    ReferenceData,
}

impl ContractError for RetractionError {
    fn code(&self) -> ErrorCode {
        match self {
            RetractionError::UnknownEvent(_) => ErrorCode::NotFound,
            RetractionError::AlreadyRetracted(_)
            | RetractionError::RetractionOfRetraction(_)
            | RetractionError::NotLastStep { .. }
            | RetractionError::HasDependents { .. }
            | RetractionError::ReferenceData => ErrorCode::Conflict,
        }
    }

    fn field(&self) -> Option<String> {
        Some("/event_id".into())
    }
}

/// One fact of a stream as stored: its ledger event id and stream version.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFact {
    pub event_id: Uuid,
    pub version: u64,
    pub fact: Fact,
}

/// A stored stream that does not fit its aggregate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error(
        "version {version} holds a {fact_type} fact, which does not belong to a {aggregate} stream"
    )]
    ForeignFact {
        aggregate: &'static str,
        version: u64,
        fact_type: &'static str,
    },
    #[error(
        "version {version} retracts event {event_id}, which is not earlier in the same stream"
    )]
    DanglingRetraction { version: u64, event_id: Uuid },
}

/// Converts an aggregate's domain event to the fact it records.
pub trait IntoFact {
    fn into_fact(self) -> Fact;
}

/// Converts an aggregate's domain event from a stored fact.
pub trait FromFact: Sized {
    const AGGREGATE: &'static str;
    /// `retraction_target` is the resolved version when `fact` is a retraction.
    fn from_fact(fact: Fact, retraction_target: Option<u64>) -> Option<Self>;
}

/// Turns a stored stream into an aggregate's domain events, resolving each
/// retraction's target version from the event ids earlier in the stream.
pub fn resolve_stream<E: FromFact>(stream: &[StoredFact]) -> Result<Vec<E>, StreamError> {
    let mut versions: HashMap<Uuid, u64> = HashMap::with_capacity(stream.len());
    let mut events = Vec::with_capacity(stream.len());
    for stored in stream {
        let target = match &stored.fact {
            Fact::FactRetracted(r) => Some(*versions.get(&r.event_id).ok_or(
                StreamError::DanglingRetraction {
                    version: stored.version,
                    event_id: r.event_id,
                },
            )?),
            _ => None,
        };
        let event = E::from_fact(stored.fact.clone(), target).ok_or(StreamError::ForeignFact {
            aggregate: E::AGGREGATE,
            version: stored.version,
            fact_type: stored.fact.fact_type().as_str(),
        })?;
        versions.insert(stored.event_id, stored.version);
        events.push(event);
    }
    Ok(events)
}

/// A domain event that may be a retraction.
pub trait Retractable {
    fn retraction(&self) -> Option<&Retraction>;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record<E> {
    event: E,
    retracted: bool,
}

/// An aggregate's stream as it applies: every fact in version order, each
/// with whether a later retraction took it back. Aggregates derive their
/// state from the facts not retracted, so a retraction needs no undo logic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Records<E> {
    records: Vec<Record<E>>,
}

impl<E> Default for Records<E> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
        }
    }
}

impl<E: Retractable> Records<E> {
    /// The stream version of the last fact (0 for a new stream).
    pub fn version(&self) -> u64 {
        self.records.len() as u64
    }

    /// The facts not retracted (retractions included), with their versions.
    pub fn live(&self) -> impl DoubleEndedIterator<Item = (u64, &E)> + '_ {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.retracted)
            .map(|(i, r)| (i as u64 + 1, &r.event))
    }

    pub fn apply(&mut self, event: E) {
        if let Some(r) = event.retraction() {
            if let Some(target) = self.index(r.target_version).map(|i| &mut self.records[i]) {
                target.retracted = true;
            }
        }
        self.records.push(Record {
            event,
            retracted: false,
        });
    }

    fn index(&self, version: u64) -> Option<usize> {
        version
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < self.records.len())
    }

    /// The fact a retraction targets, if it may be retracted at all: it is in
    /// this stream, not retracted yet, and not itself a retraction.
    pub fn retraction_target(&self, retract: &RetractFact) -> Result<&E, RetractionError> {
        let event_id = retract.fact.event_id;
        let record = self
            .index(retract.target_version)
            .map(|i| &self.records[i])
            .ok_or(RetractionError::UnknownEvent(event_id))?;
        if record.retracted {
            return Err(RetractionError::AlreadyRetracted(event_id));
        }
        if record.event.retraction().is_some() {
            return Err(RetractionError::RetractionOfRetraction(event_id));
        }
        Ok(&record.event)
    }

    /// Facts not retracted after `version` (retractions aside): what a
    /// registration at `version` has depending on it inside its own stream.
    pub fn live_after(&self, version: u64) -> u64 {
        self.live()
            .filter(|(v, e)| *v > version && e.retraction().is_none())
            .count() as u64
    }
}
