//! Publishing bodies (docs/contract.md "Publishing facts"): who may publish
//! which facts about which units, under which source, signed with which key.
//!
//! A publisher's facts are decided exactly as a command is, for a caller
//! built from its registration: scoped to its unit subtree like a unit
//! officer, or unrestricted when it has no unit.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use tledger_events::{FactType, PublisherId, UnitId};
use tledger_store::{PublisherRecord, Store, StoreError};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::access::{Caller, Role};
use crate::Prefix;

/// How long the registrations read from the database serve: a publisher
/// added or disabled by another process is seen within this time.
const CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    #[error("publisher id {0:?} is not 1-64 characters of A-Z a-z 0-9 _ -")]
    InvalidId(String),
    #[error("source {0:?} must be a URI (e.g. /bodies/dai-loc or urn:…) without spaces")]
    InvalidSource(String),
    #[error("unit id {0:?} is not 1-64 characters of A-Z a-z 0-9 _ -")]
    InvalidUnit(String),
    #[error("unknown fact type {0:?} in --types")]
    UnknownType(String),
    #[error("--key must be 64 hex digits (an ed25519 public key): {0}")]
    InvalidKey(String),
    #[error("a publisher with id {0:?} or source {1:?} is registered already")]
    Taken(String, String),
    #[error("no enabled publisher {0:?}")]
    NotFound(String),
    #[error("the registration of publisher {0:?} is damaged: {1}")]
    Damaged(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A registered publisher, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    pub id: PublisherId,
    pub source: String,
    pub unit: Option<UnitId>,
    pub types: Option<Vec<FactType>>,
    pub key: Option<VerifyingKey>,
    pub dedup_id: Uuid,
    pub disabled: bool,
}

impl Publisher {
    fn from_record(record: PublisherRecord) -> Result<Self, PublisherError> {
        let damaged = |why: String| PublisherError::Damaged(record.publisher_id.clone(), why);
        let id =
            PublisherId::parse(record.publisher_id.clone()).map_err(|e| damaged(e.to_string()))?;
        let unit = record
            .unit_id
            .clone()
            .map(UnitId::parse)
            .transpose()
            .map_err(|e| damaged(e.to_string()))?;
        let types = record
            .types
            .as_ref()
            .map(|types| types.iter().map(|t| t.parse::<FactType>()).collect())
            .transpose()
            .map_err(|e| damaged(format!("{e}")))?;
        let key = record
            .public_key
            .as_ref()
            .map(|k| {
                <[u8; 32]>::try_from(k.as_slice())
                    .ok()
                    .and_then(|k| VerifyingKey::from_bytes(&k).ok())
                    .ok_or_else(|| damaged("the public key is not an ed25519 key".into()))
            })
            .transpose()?;
        Ok(Self {
            id,
            source: record.source,
            unit,
            types,
            key,
            dedup_id: record.dedup_id,
            disabled: record.disabled_at.is_some(),
        })
    }

    /// Whether it may publish facts of this type.
    pub fn may_publish(&self, fact_type: FactType) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&fact_type))
    }

    /// The caller its facts are decided for: its unit scope, its dedup
    /// identity.
    pub fn caller(&self) -> Caller {
        Caller {
            token_id: self.dedup_id,
            name: format!("publisher {}", self.id),
            role: if self.unit.is_some() {
                Role::UnitOfficer
            } else {
                Role::Admin
            },
            unit_id: self.unit.clone(),
            publisher_id: Some(self.id.clone()),
        }
    }
}

/// The identity a source's accepted facts are deduplicated under, the same
/// wherever and whenever the publisher is registered.
pub fn dedup_id(source: &str) -> Uuid {
    let digest = Sha256::digest(format!("tledger publisher source\n{source}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// What `tledger publishers add` is given.
#[derive(Clone, Debug)]
pub struct NewPublisher {
    pub id: String,
    pub source: String,
    pub unit: Option<String>,
    pub types: Option<Vec<String>>,
    pub key_hex: Option<String>,
}

impl NewPublisher {
    /// Checks every field and gives the record to store.
    pub fn record(&self) -> Result<PublisherRecord, PublisherError> {
        PublisherId::parse(self.id.clone())
            .map_err(|_| PublisherError::InvalidId(self.id.clone()))?;
        // No longer than a published message may carry it (its receipts
        // are keyed by it).
        let source_ok = !self.source.is_empty()
            && self.source.len() <= tledger_events::envelope::MAX_SOURCE_BYTES
            && !self
                .source
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !source_ok {
            return Err(PublisherError::InvalidSource(self.source.clone()));
        }
        if let Some(unit) = &self.unit {
            UnitId::parse(unit.clone()).map_err(|_| PublisherError::InvalidUnit(unit.clone()))?;
        }
        let types = self
            .types
            .as_ref()
            .map(|types| {
                types
                    .iter()
                    .map(|t| {
                        t.parse::<FactType>()
                            .map(|f| f.as_str().to_owned())
                            .map_err(|_| PublisherError::UnknownType(t.clone()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let public_key = self
            .key_hex
            .as_ref()
            .map(|k| {
                let bytes =
                    hex::decode(k.trim()).map_err(|e| PublisherError::InvalidKey(e.to_string()))?;
                let bytes = <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| PublisherError::InvalidKey(format!("{} bytes", bytes.len())))?;
                VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| PublisherError::InvalidKey(e.to_string()))?;
                Ok::<_, PublisherError>(bytes.to_vec())
            })
            .transpose()?;
        Ok(PublisherRecord {
            publisher_id: self.id.clone(),
            source: self.source.clone(),
            unit_id: self.unit.clone(),
            types,
            public_key,
            dedup_id: dedup_id(&self.source),
            created_at: chrono::Utc::now(),
            disabled_at: None,
        })
    }
}

/// The registrations by id, and when they were read.
type Cache = (HashMap<String, Publisher>, Option<Instant>);

/// Registrations, cached for the ingest path.
#[derive(Clone)]
pub struct Publishers {
    store: Store,
    cache: Arc<RwLock<Cache>>,
}

impl Publishers {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// Registers a publisher.
    pub async fn add(&self, new: &NewPublisher) -> Result<Publisher, PublisherError> {
        let record = new.record()?;
        if !self.store.add_publisher(&record).await? {
            return Err(PublisherError::Taken(new.id.clone(), new.source.clone()));
        }
        self.cache.write().await.1 = None;
        Publisher::from_record(record)
    }

    /// Every registration, enabled or not.
    pub async fn list(&self) -> Result<Vec<(Publisher, PublisherRecord)>, PublisherError> {
        self.store
            .publishers()
            .await?
            .into_iter()
            .map(|r| Ok((Publisher::from_record(r.clone())?, r)))
            .collect()
    }

    /// Disables a publisher: its facts are rejected from then on.
    pub async fn disable(&self, id: &str) -> Result<(), PublisherError> {
        if !self.store.disable_publisher(id).await? {
            return Err(PublisherError::NotFound(id.to_owned()));
        }
        self.cache.write().await.1 = None;
        Ok(())
    }

    /// The registration of `id` (enabled or not), read again from the
    /// database when the cache is old or does not know it.
    pub async fn get(&self, id: &str) -> Result<Option<Publisher>, PublisherError> {
        {
            let cache = self.cache.read().await;
            if let (Some(found), Some(at)) = (cache.0.get(id), cache.1) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(Some(found.clone()));
                }
            }
        }
        self.reload().await?;
        Ok(self.cache.read().await.0.get(id).cloned())
    }

    /// The publisher registered with this source.
    pub async fn by_source(&self, source: &str) -> Result<Option<Publisher>, PublisherError> {
        let find =
            |map: &HashMap<String, Publisher>| map.values().find(|p| p.source == source).cloned();
        {
            let cache = self.cache.read().await;
            if let (Some(found), Some(at)) = (find(&cache.0), cache.1) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(Some(found));
                }
            }
        }
        self.reload().await?;
        Ok(find(&self.cache.read().await.0))
    }

    async fn reload(&self) -> Result<(), PublisherError> {
        let mut map = HashMap::new();
        for record in self.store.publishers().await? {
            let publisher = Publisher::from_record(record)?;
            map.insert(publisher.id.to_string(), publisher);
        }
        *self.cache.write().await = (map, Some(Instant::now()));
        Ok(())
    }
}

/// The block to add to the NATS server's `authorization.users` for a
/// publisher: it may publish only on its ingest subject and subscribe only
/// to its receipts and its own inbox prefix (`_INBOX.<id>.>`, which its
/// client must set as its inbox prefix).
pub fn nats_user_block(prefix: &Prefix, publisher: &str, password: &str) -> String {
    let p = prefix.as_str();
    let mut block = String::new();
    let _ = writeln!(block, "# publisher {publisher}");
    let _ = writeln!(block, "{{");
    let _ = writeln!(block, "  user: \"{publisher}\"");
    let _ = writeln!(block, "  password: \"{password}\"");
    let _ = writeln!(block, "  permissions: {{");
    let _ = writeln!(
        block,
        "    publish: {{ allow: [\"{p}.ingest.{publisher}\"] }}"
    );
    let _ = writeln!(
        block,
        "    subscribe: {{ allow: [\"{p}.receipts.{publisher}\", \"_INBOX.{publisher}.>\"] }}"
    );
    let _ = writeln!(block, "  }}");
    let _ = writeln!(block, "}}");
    block
}

/// A fresh password for a publisher's NATS user.
pub fn new_password() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: &str) -> NewPublisher {
        NewPublisher {
            id: id.into(),
            source: "/bodies/dai-loc".into(),
            unit: Some("dai-loc".into()),
            types: Some(vec!["training.nominated.v1".into()]),
            key_hex: None,
        }
    }

    #[test]
    fn a_registration_checks_every_field() {
        assert!(new("dai-loc").record().is_ok());
        assert!(matches!(
            new("dai.loc").record(),
            Err(PublisherError::InvalidId(_))
        ));
        let mut bad = new("p");
        bad.source = "has space".into();
        assert!(matches!(
            bad.record(),
            Err(PublisherError::InvalidSource(_))
        ));
        bad.source = format!("/{}", "x".repeat(255));
        assert!(matches!(
            bad.record(),
            Err(PublisherError::InvalidSource(_))
        ));
        bad.source = format!("/{}", "x".repeat(254));
        assert!(bad.record().is_ok());
        let mut bad = new("p");
        bad.types = Some(vec!["training.started.v1".into()]);
        assert!(
            matches!(bad.record(), Err(PublisherError::UnknownType(t)) if t == "training.started.v1")
        );
        let mut bad = new("p");
        bad.key_hex = Some("abcd".into());
        assert!(matches!(bad.record(), Err(PublisherError::InvalidKey(_))));
    }

    #[test]
    fn the_dedup_identity_follows_the_source_alone() {
        assert_eq!(dedup_id("/bodies/a"), dedup_id("/bodies/a"));
        assert_ne!(dedup_id("/bodies/a"), dedup_id("/bodies/b"));
        assert_eq!(
            new("x").record().map(|r| r.dedup_id).ok(),
            Some(dedup_id("/bodies/dai-loc"))
        );
    }

    #[test]
    fn a_publisher_with_a_unit_decides_like_a_unit_officer() {
        let record = new("dai-loc").record().expect("valid");
        let publisher = Publisher::from_record(record).expect("parses");
        let caller = publisher.caller();
        assert_eq!(caller.role, Role::UnitOfficer);
        assert_eq!(caller.unit_id.as_ref().map(UnitId::as_str), Some("dai-loc"));
        assert!(publisher.may_publish(FactType::TrainingNominated));
        assert!(!publisher.may_publish(FactType::TrainingCompleted));
    }

    #[test]
    fn the_user_block_allows_only_the_publishers_own_subjects() {
        let prefix: Prefix = "tl".parse().expect("prefix");
        let block = nats_user_block(&prefix, "school-a", "secret");
        assert!(
            block.contains(r#"publish: { allow: ["tl.ingest.school-a"] }"#),
            "{block}"
        );
        assert!(
            block
                .contains(r#"subscribe: { allow: ["tl.receipts.school-a", "_INBOX.school-a.>"] }"#),
            "{block}"
        );
    }
}
