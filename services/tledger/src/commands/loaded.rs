//! Loading an aggregate from its stream: the look-up every use case makes
//! before the domain decides (docs/adr/0002-look-ups-travel-in-commands.md).

use cqrs_es::Aggregate;
use tledger_domain::{resolve_stream, FromFact, StoredFact};
use tledger_events::AggregateKind;
use tledger_store::{Store, StoreError, StoredEvent};

/// An aggregate loaded from its stream, with the stream's version.
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: u64,
    pub events: Vec<StoredEvent>,
}

/// Rebuilds an aggregate from stored events.
pub fn rebuild<A>(events: Vec<StoredEvent>) -> Result<Loaded<A>, StoreError>
where
    A: Aggregate,
    A::Event: FromFact,
{
    let facts: Vec<StoredFact> = events
        .iter()
        .map(|e| StoredFact {
            event_id: e.event_id,
            version: e.version,
            fact: e.fact.clone(),
        })
        .collect();
    let domain_events = resolve_stream::<A::Event>(&facts).map_err(|e| StoreError::Corrupt {
        event_id: facts.first().map(|f| f.event_id).unwrap_or_default(),
        event_type: A::TYPE.to_owned(),
        reason: e.to_string(),
    })?;
    let mut aggregate = A::default();
    for event in domain_events {
        aggregate.apply(event);
    }
    Ok(Loaded {
        aggregate,
        version: events.last().map_or(0, |e| e.version),
        events,
    })
}

/// Loads the aggregate of the stream `<kind>-<id>`.
#[tracing::instrument(level = "debug", name = "command.load", skip_all, fields(aggregate = %kind, aggregate_id = %id))]
pub async fn load<A>(store: &Store, kind: AggregateKind, id: &str) -> Result<Loaded<A>, StoreError>
where
    A: Aggregate,
    A::Event: FromFact,
{
    rebuild(store.load_stream(kind, id).await?)
}
