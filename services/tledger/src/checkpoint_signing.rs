//! Checkpoint signing (docs/contract.md, Checkpoints and proofs;
//! docs/adr/0009-signed-checkpoints-and-verification.md): every N
//! events or T seconds the ledger signs its position, the chain hash there
//! and the RFC 9162 Merkle root of every event hash up to it, stores the
//! checkpoint and announces it on `<prefix>.checkpoints`; and the signing
//! key's file (`TLEDGER_SIGNING_KEY`).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tledger_events::chain::{self, Hash};
use tledger_events::checkpoint::{Checkpoint, CheckpointError, CheckpointSigner};
use tledger_events::merkle::Frontier;
use tledger_store::{Sequenced, Store, StoreError};
use tokio::sync::broadcast;

/// Why the signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(
        "the ledger has signed checkpoints but the signing key {} is missing: restore the key \
         file (TLEDGER_SIGNING_KEY) from its backup; a new key would leave the checkpoints \
         unverifiable",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot read the signing key {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signing key {} is not a key: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: CheckpointError,
    },
    #[error("{} exists already: choose another path (a key is never overwritten)", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write the signing key {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no random bytes for a new key: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the signing key file (64 hex digits).
pub fn read_signing_key(path: &Path) -> Result<CheckpointSigner, SigningKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    CheckpointSigner::from_secret_hex(&text).map_err(|source| SigningKeyError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Makes a new key and writes it to `path` (mode 600), never over an
/// existing file.
pub fn generate_signing_key(path: &Path) -> Result<CheckpointSigner, SigningKeyError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| SigningKeyError::Random(e.to_string()))?;
    let signer = CheckpointSigner::from_secret(secret);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            SigningKeyError::Exists {
                path: path.to_owned(),
            }
        } else {
            SigningKeyError::Write {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    writeln!(file, "{}", signer.secret_hex())
        .and_then(|()| file.sync_all())
        .map_err(|source| SigningKeyError::Write {
            path: path.to_owned(),
            source,
        })?;
    Ok(signer)
}

/// The service's key: read if the file exists; created on first start; a
/// refusal when checkpoints exist but the key does not.
pub async fn load_or_create_signing_key(
    path: &Path,
    store: &Store,
) -> Result<CheckpointSigner, SigningKeyError> {
    if path.exists() {
        return read_signing_key(path);
    }
    if store.latest_checkpoint().await?.is_some() {
        return Err(SigningKeyError::Missing {
            path: path.to_owned(),
        });
    }
    let signer = generate_signing_key(path)?;
    tracing::info!(path = %path.display(), key_id = signer.key_id(), "created a new signing key");
    Ok(signer)
}

/// Why a checkpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointSigningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing a checkpoint: {0}")]
    Sign(#[from] CheckpointError),
    #[error("the ledger has no hash at position {0} (a gap)")]
    Gap(u64),
}

/// Event hashes read at a time while the frontier catches up.
const HASH_BATCH: u32 = 10_000;

/// Signs checkpoints of the ledger as it grows.
pub struct CheckpointSigning {
    store: Store,
    signer: CheckpointSigner,
    every_events: u64,
    interval: Duration,
    announce: Option<(async_nats::Client, String)>,
    /// The Merkle tree's right edge over positions `1..=frontier.size()`,
    /// and the chain hash at its last position.
    frontier: Frontier,
    chain_hash: Hash,
    last_signed: Option<u64>,
}

impl CheckpointSigning {
    pub fn new(
        store: Store,
        signer: CheckpointSigner,
        every_events: u64,
        interval: Duration,
    ) -> Self {
        Self {
            store,
            signer,
            every_events: every_events.max(1),
            interval,
            announce: None,
            frontier: Frontier::new(),
            chain_hash: chain::GENESIS,
            last_signed: None,
        }
    }

    /// Announces each new checkpoint (JSON) on `subject` too.
    #[must_use]
    pub fn announcing(mut self, client: async_nats::Client, subject: String) -> Self {
        self.announce = Some((client, subject));
        self
    }

    /// Signs a checkpoint at the ledger's head if it has grown since the
    /// latest one; returns it (`None`: nothing new to sign).
    pub async fn checkpoint(&mut self) -> Result<Option<Checkpoint>, CheckpointSigningError> {
        let last_signed = match self.last_signed {
            Some(position) => position,
            None => self
                .store
                .latest_checkpoint()
                .await?
                .map_or(0, |c| c.position),
        };
        self.last_signed = Some(last_signed);
        let head = self.store.head().await?;
        if head <= last_signed {
            return Ok(None);
        }
        while self.frontier.size() < head {
            let hashes = self
                .store
                .event_hashes(self.frontier.size(), HASH_BATCH)
                .await?;
            if hashes.is_empty() {
                return Err(CheckpointSigningError::Gap(self.frontier.size() + 1));
            }
            for (position, hash) in hashes {
                if position != self.frontier.size() + 1 {
                    return Err(CheckpointSigningError::Gap(self.frontier.size() + 1));
                }
                self.frontier.push_event(&hash);
                self.chain_hash = hash;
            }
        }
        // The frontier may have read past the head read above.
        let position = self.frontier.size();
        // Sign only what a crash of PostgreSQL keeps (ADR 8).
        self.store.flush_commits().await?;
        let checkpoint = self.signer.sign(
            position,
            self.chain_hash,
            self.frontier.root(),
            chain::format_instant(chrono::Utc::now()),
        )?;
        let public = hex::decode(self.signer.public_hex()).unwrap_or_default();
        self.store.record_checkpoint(&checkpoint, &public).await?;
        self.last_signed = Some(position);
        metrics::gauge!("tledger_checkpoint_position").set(position as f64);
        if let Some((client, subject)) = &self.announce {
            // Best effort: the database holds the checkpoint; NATS may be down.
            match serde_json::to_vec(&checkpoint) {
                Ok(body) => {
                    if let Err(error) = client.publish(subject.clone(), body.into()).await {
                        tracing::warn!(%error, "could not announce a checkpoint");
                    }
                }
                Err(error) => tracing::warn!(%error, "could not write a checkpoint as JSON"),
            }
        }
        tracing::info!(position, key_id = checkpoint.key_id, "signed a checkpoint");
        Ok(Some(checkpoint))
    }

    /// Signs a checkpoint every `every_events` new events or every
    /// `interval` when the ledger has grown, until `shutdown`; then one last
    /// one for what was sequenced.
    pub async fn run(
        mut self,
        mut announcements: broadcast::Receiver<Arc<Sequenced>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(self.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listening = true;
        loop {
            let due = tokio::select! {
                _ = every.tick() => true,
                batch = announcements.recv(), if listening => match batch {
                    Ok(batch) => batch.head >= self.last_signed.unwrap_or(0) + self.every_events,
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => {
                        listening = false;
                        false
                    }
                },
                () = &mut shutdown => break,
            };
            if due {
                if let Err(error) = self.checkpoint().await {
                    tracing::warn!(%error, "could not sign a checkpoint; trying again later");
                }
            }
        }
        if let Err(error) = self.checkpoint().await {
            tracing::warn!(%error, "could not sign the last checkpoint");
        }
    }
}
