//! The reference data's use case, `publish_reference`, and the reference
//! data other use cases look up: the position taxonomy in force on a date
//! (docs/adr/0003-reference-data-as-facts.md).

use tledger_domain::{Reference, ReferenceCommand};
use tledger_events::facts::ReferencePublished;
use tledger_events::reference_data::{in_force, PositionTaxonomy, Published, ReferenceContent};
use tledger_events::{AggregateKind, Date, Fact, ReferenceKind};
use tledger_store::{Store, StoreError};

use super::loaded::{load, Loaded};
use super::pipeline::{decide, decision, CommandService, Decision};
use super::refusal::{wrong_type, Refusal};

impl CommandService {
    /// `publish_reference`: the reference's stream decides whether this
    /// version may be published.
    #[tracing::instrument(level = "debug", name = "command.publish_reference", skip_all, fields(reference = %s.name))]
    pub(super) async fn publish_reference(
        &self,
        s: &ReferencePublished,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let loaded: Loaded<Reference> =
            load(store, AggregateKind::Reference, s.name.as_str()).await?;
        let Fact::ReferencePublished(fact) = full()? else {
            return Err(wrong_type("reference"));
        };
        let events = decide(&loaded.aggregate, ReferenceCommand::Publish(fact))
            .await
            .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Reference,
            s.name.as_str(),
            loaded.version,
            events,
        ))
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
    #[tracing::instrument(level = "debug", name = "command.taxonomy", skip_all, fields(date = %date))]
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
