//! The look-ups a command needs before the domain decides (ADR 2): loading
//! aggregates, the unit hierarchy on a date, the reference data in force,
//! and facts elsewhere that depend on a registration.

use std::collections::{BTreeSet, HashMap};

use cqrs_es::Aggregate;
use tledger_domain::{resolve_stream, FromFact, StoredFact, Unit};
use tledger_events::reference_data::{in_force, PositionTaxonomy, Published, ReferenceContent};
use tledger_events::{AggregateKind, Date, Fact, ReferenceKind};
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
pub async fn load<A>(store: &Store, kind: AggregateKind, id: &str) -> Result<Loaded<A>, StoreError>
where
    A: Aggregate,
    A::Event: FromFact,
{
    rebuild(store.load_stream(kind, id).await?)
}

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

/// What identifies the reference data as recorded now: how many reference
/// facts there are and how many have their position (the order "in force"
/// breaks ties by). Equal fingerprints, equal reference data.
pub type ReferenceFingerprint = (i64, i64);

/// The position taxonomies as published, with the fingerprint they were
/// read at: parsing them is the dearest look-up of a registration, so a
/// command service keeps them until the fingerprint changes.
#[derive(Clone, Debug, Default)]
pub struct Taxonomies {
    fingerprint: Option<ReferenceFingerprint>,
    published: Vec<Published<PositionTaxonomy>>,
}

impl Taxonomies {
    /// The position taxonomy in force on `date`, as the ledger knows it
    /// now (one small query when nothing changed).
    pub async fn on(
        cache: &tokio::sync::RwLock<Taxonomies>,
        store: &Store,
        date: Date,
    ) -> Result<Option<PositionTaxonomy>, StoreError> {
        let fingerprint = reference_fingerprint(store).await?;
        {
            let cached = cache.read().await;
            if cached.fingerprint == Some(fingerprint) {
                return Ok(in_force(&cached.published, date).map(|p| p.content.clone()));
            }
        }
        let published = published_taxonomies(store).await?;
        let answer = in_force(&published, date).map(|p| p.content.clone());
        *cache.write().await = Taxonomies {
            fingerprint: Some(fingerprint),
            published,
        };
        Ok(answer)
    }
}

async fn reference_fingerprint(store: &Store) -> Result<ReferenceFingerprint, StoreError> {
    sqlx::query_as(
        "SELECT count(*), count(position) FROM events WHERE aggregate_type = 'reference'",
    )
    .fetch_one(store.pool())
    .await
    .map_err(StoreError::db("reading the reference data's fingerprint"))
}

async fn published_taxonomies(
    store: &Store,
) -> Result<Vec<Published<PositionTaxonomy>>, StoreError> {
    let mut taxonomies = Vec::new();
    for (_, events) in store.load_streams(AggregateKind::Reference).await? {
        for event in events {
            if let Fact::ReferencePublished(p) = &event.fact {
                if p.kind != ReferenceKind::PositionTaxonomy {
                    continue;
                }
                if let Ok(ReferenceContent::PositionTaxonomy(t)) =
                    ReferenceContent::parse(p.kind, &p.content)
                {
                    taxonomies.push(Published {
                        name: p.name.clone(),
                        effective_date: p.effective_date,
                        // Not yet sequenced (just recorded) sorts last.
                        position: event.position.unwrap_or(u64::MAX),
                        content: t,
                    });
                }
            }
        }
    }
    Ok(taxonomies)
}
