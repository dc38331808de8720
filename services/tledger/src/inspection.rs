//! Inspection (docs/contract.md, Audit and inspection): inclusion proofs
//! (served by [`crate::web`]), and `tledger verify`, which
//! recomputes the chain and the Merkle roots from the rows alone and checks
//! every checkpoint against a public key that comes from outside the
//! database.

use std::path::Path;

use tledger_events::chain::{self, CanonicalError, ChainRecord, Hash};
use tledger_events::checkpoint::{Checkpoint, CheckpointError, CheckpointVerifier};
use tledger_events::merkle::{self, Frontier};
use tledger_events::proof::{InclusionProof, ProvedRecord};
use tledger_store::{ChainRow, ChainRows, LedgerEvent, Store, StoreError};

/// Rows read at a time when the whole ledger is walked.
const BATCH: u32 = 5_000;

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofUnavailable {
    #[error("no checkpoint has been signed yet")]
    NoCheckpoint,
    #[error(
        "position {position} is not covered by the latest checkpoint (position {latest}); ask \
         again after the next one"
    )]
    NotCovered { position: u64, latest: u64 },
    #[error("the ledger has no event at position {0}")]
    Missing(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An event as proofs and exports carry it.
pub(crate) fn proved_record(event: &LedgerEvent) -> ProvedRecord {
    ProvedRecord {
        position: event.position,
        event_id: event.event_id,
        stream: event.stream(),
        version: event.version,
        event_type: event.event_type.clone(),
        effective_date: event.effective_date.into(),
        recorded_at: chain::format_instant(event.recorded_at),
        data: event.data.clone(),
        metadata: event.metadata.clone(),
    }
}

fn hash_of(event: &LedgerEvent) -> Result<Hash, StoreError> {
    event
        .hash
        .clone()
        .try_into()
        .map_err(|_| StoreError::CorruptCheckpoint {
            position: event.position,
            reason: "the event hash is not 32 bytes".into(),
        })
}

/// The inclusion proof of the event at `position` against the latest
/// checkpoint.
pub async fn inclusion_proof(
    store: &Store,
    position: u64,
) -> Result<InclusionProof, ProofUnavailable> {
    let checkpoint = store
        .latest_checkpoint()
        .await?
        .ok_or(ProofUnavailable::NoCheckpoint)?;
    if position == 0 || position > checkpoint.position {
        return Err(ProofUnavailable::NotCovered {
            position,
            latest: checkpoint.position,
        });
    }
    let mut leaves = Vec::with_capacity(usize::try_from(checkpoint.position).unwrap_or(0));
    let mut previous_hash = chain::GENESIS;
    let mut after = 0;
    while after < checkpoint.position {
        let limit = u32::try_from(checkpoint.position - after)
            .unwrap_or(u32::MAX)
            .min(BATCH * 4);
        let hashes = store.event_hashes(after, limit).await?;
        if hashes.is_empty() {
            return Err(ProofUnavailable::Missing(after + 1));
        }
        for (p, hash) in hashes {
            if p != after + 1 {
                return Err(ProofUnavailable::Missing(after + 1));
            }
            if p + 1 == position {
                previous_hash = hash;
            }
            leaves.push(merkle::leaf_hash(&hash));
            after = p;
        }
    }
    let event = store
        .read_ledger(position - 1, 1)
        .await?
        .into_iter()
        .next()
        .filter(|e| e.position == position)
        .ok_or(ProofUnavailable::Missing(position))?;
    let index = usize::try_from(position - 1).unwrap_or(usize::MAX);
    Ok(InclusionProof {
        position,
        record: proved_record(&event),
        previous_hash,
        event_hash: hash_of(&event)?,
        leaf_index: position - 1,
        tree_size: checkpoint.position,
        inclusion_path: merkle::inclusion_proof(&leaves, index)
            .ok_or(ProofUnavailable::Missing(position))?,
        checkpoint,
    })
}

/// What `tledger verify` found: `first_bad` is `None` when everything holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub events: u64,
    pub checkpoints: u64,
    /// The outside checkpoint (`--checkpoint`), when given and consistent.
    pub outside_checkpoint: Option<u64>,
    pub first_bad: Option<BadPosition>,
    /// Committed events not yet sequenced (not covered by anything yet).
    pub unsequenced: u64,
}

/// The first place the ledger is not what its hashes and signatures say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPosition {
    pub position: u64,
    pub reason: String,
}

/// Why verification could not run at all (as opposed to finding damage).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the public key: {0}")]
    Key(CheckpointError),
    #[error("the chain check was stopped: {0}")]
    Interrupted(String),
    #[error("the outside checkpoint {}: {reason}", path.display())]
    OutsideCheckpoint {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// Reads a checkpoint saved outside the database (the JSON of `GET
/// /v1/ledger/checkpoint`).
pub fn read_outside_checkpoint(path: &Path) -> Result<Checkpoint, VerifyError> {
    let text = std::fs::read_to_string(path).map_err(|e| VerifyError::OutsideCheckpoint {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| VerifyError::OutsideCheckpoint {
        path: path.to_owned(),
        reason: format!("not a checkpoint: {e}"),
    })
}

/// A public key given as 64 hex digits or as a file holding them.
pub fn read_public_key(text_or_path: &str) -> Result<CheckpointVerifier, VerifyError> {
    let text = match std::fs::read_to_string(text_or_path) {
        Ok(content) => content,
        Err(_) => text_or_path.to_owned(),
    };
    CheckpointVerifier::from_public_hex(&text).map_err(VerifyError::Key)
}

/// The checks `verify` makes, fed one event at a time in position order
/// (from the database or from an export): the chain, the Merkle root and
/// signature of every expected checkpoint, and an outside checkpoint.
pub struct LedgerCheck<'k> {
    key: &'k CheckpointVerifier,
    /// Checkpoints in position order, each marked when it came from outside.
    expected: Vec<(Checkpoint, bool)>,
    next: usize,
    frontier: Frontier,
    previous: Hash,
    position: u64,
    last_good_checkpoint: u64,
    found: Verification,
}

impl<'k> LedgerCheck<'k> {
    pub fn new(
        key: &'k CheckpointVerifier,
        checkpoints: Vec<Checkpoint>,
        outside: Option<Checkpoint>,
    ) -> Self {
        let mut found = Verification {
            checkpoints: checkpoints.len() as u64,
            ..Verification::default()
        };
        let mut expected: Vec<(Checkpoint, bool)> =
            checkpoints.into_iter().map(|c| (c, false)).collect();
        if let Some(outside) = outside {
            if let Err(e) = key.verify(&outside) {
                found.first_bad = Some(BadPosition {
                    position: outside.position,
                    reason: format!("the outside checkpoint is not the ledger's: {e}"),
                });
            }
            expected.push((outside, true));
        }
        expected.sort_by_key(|(c, _)| c.position);
        Self {
            key,
            expected,
            next: 0,
            frontier: Frontier::new(),
            previous: chain::GENESIS,
            position: 0,
            last_good_checkpoint: 0,
            found,
        }
    }

    /// Whether damage was found (then feeding more changes nothing).
    pub fn failed(&self) -> bool {
        self.found.first_bad.is_some()
    }

    /// The chain hash of the last event checked.
    pub fn chain_hash(&self) -> Hash {
        self.previous
    }

    /// Checks the next event: its stored hash against its content chained to
    /// the previous event, and every checkpoint at its position.
    pub fn push(&mut self, record: &ChainRecord<'_>, stored_hash: &[u8]) {
        if self.failed() {
            return;
        }
        let canonical = chain::record_bytes(record);
        self.push_canonical(record.position, canonical.as_deref(), stored_hash);
    }

    /// [`LedgerCheck::push`] of an event whose canonical JSON was written
    /// already (on another thread), or could not be.
    pub fn push_canonical(
        &mut self,
        position: u64,
        canonical: Result<&[u8], &CanonicalError>,
        stored_hash: &[u8],
    ) {
        if self.failed() {
            return;
        }
        match chain_step(
            self.position,
            &self.previous,
            position,
            canonical,
            stored_hash,
        ) {
            Ok(hash) => self.push_verified(position, hash, merkle::leaf_hash(&hash)),
            Err(bad) => self.bad(bad.position, bad.reason),
        }
    }

    /// Takes the next event once its hash is known to chain (`leaf` is its
    /// Merkle leaf hash): the Merkle tree, and every checkpoint at its
    /// position.
    fn push_verified(&mut self, position: u64, recomputed: Hash, leaf: Hash) {
        if self.failed() {
            return;
        }
        self.position = position;
        self.previous = recomputed;
        self.frontier.push_leaf(leaf);
        self.found.events = position;
        while let Some((checkpoint, is_outside)) = self.expected.get(self.next) {
            if checkpoint.position != position {
                break;
            }
            let which = if *is_outside {
                "the outside checkpoint"
            } else {
                "the checkpoint"
            };
            if !*is_outside {
                if let Err(e) = self.key.verify(checkpoint) {
                    self.bad(position, format!("{which} here: {e}"));
                    return;
                }
            }
            if checkpoint.chain_hash != recomputed || checkpoint.merkle_root != self.frontier.root()
            {
                let last_good = self.last_good_checkpoint;
                self.bad(
                    last_good + 1,
                    format!(
                        "the ledger up to position {position} is not what {which} at {position} \
                         signed: rewritten after position {last_good} (the last checkpoint that \
                         matches)"
                    ),
                );
                return;
            }
            self.last_good_checkpoint = position;
            if *is_outside {
                self.found.outside_checkpoint = Some(position);
            }
            self.next += 1;
        }
    }

    fn bad(&mut self, position: u64, reason: String) {
        if self.found.first_bad.is_none() {
            self.found.first_bad = Some(BadPosition { position, reason });
        }
    }

    /// After the last event: a checkpoint beyond it means events were
    /// deleted.
    pub fn finish(mut self) -> Verification {
        if let Some((checkpoint, is_outside)) = self.expected.get(self.next) {
            let which = if *is_outside {
                "the outside checkpoint"
            } else {
                "a checkpoint"
            };
            let (signed, end) = (checkpoint.position, self.position);
            self.bad(
                end + 1,
                format!(
                    "{which} signed position {signed} but the ledger ends at {end}: events were \
                     deleted"
                ),
            );
        }
        self.found
    }
}

/// One link of the chain: the event at `position` must follow `last`, and
/// its stored hash must be its canonical JSON chained to `previous`.
fn chain_step(
    last: u64,
    previous: &Hash,
    position: u64,
    canonical: Result<&[u8], &CanonicalError>,
    stored_hash: &[u8],
) -> Result<Hash, BadPosition> {
    if position != last + 1 {
        return Err(BadPosition {
            position: last + 1,
            reason: format!("missing: the ledger jumps from position {last} to {position}"),
        });
    }
    let recomputed = match canonical {
        Ok(bytes) => chain::chained(previous, bytes),
        Err(e) => {
            return Err(BadPosition {
                position,
                reason: format!("cannot be hashed: {e}"),
            })
        }
    };
    if stored_hash != recomputed.as_slice() {
        return Err(BadPosition {
            position,
            reason: "its stored hash is not the hash of its content chained to the previous \
                     event: the event or one before it was changed"
                .into(),
        });
    }
    Ok(recomputed)
}

/// The chain of an archive, followed while it is read, before its
/// checkpoints (which come after the events) are known: keeps each event's
/// chain hash (32 bytes a fact) up to the first break, so that
/// [`ChainFollower::check`] can then check the checkpoints exactly as
/// [`LedgerCheck`] checks them in one go.
#[derive(Debug, Default)]
pub struct ChainFollower {
    hashes: Vec<Hash>,
    broken: Option<BadPosition>,
}

impl ChainFollower {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event's canonical JSON (or why it has none) and stored hash.
    pub fn push_canonical(
        &mut self,
        position: u64,
        canonical: Result<&[u8], &CanonicalError>,
        stored_hash: &[u8],
    ) {
        if self.broken.is_some() {
            return;
        }
        let previous = self.hashes.last().copied().unwrap_or(chain::GENESIS);
        let last = self.hashes.len() as u64;
        match chain_step(last, &previous, position, canonical, stored_hash) {
            Ok(hash) => self.hashes.push(hash),
            Err(bad) => self.broken = Some(bad),
        }
    }

    /// The chain's events, in order, through [`LedgerCheck`] with
    /// `checkpoints`: the same findings as feeding it the events themselves.
    /// The Merkle leaves are hashed on every core first (they do not depend
    /// on each other).
    pub fn check(self, key: &CheckpointVerifier, checkpoints: Vec<Checkpoint>) -> Verification {
        let leaves = leaf_hashes(&self.hashes);
        let mut check = LedgerCheck::new(key, checkpoints, None);
        for (i, (hash, leaf)) in self.hashes.iter().zip(leaves).enumerate() {
            if check.failed() {
                break;
            }
            check.push_verified(i as u64 + 1, *hash, leaf);
        }
        if let Some(bad) = self.broken {
            check.bad(bad.position, bad.reason);
        }
        check.finish()
    }
}

/// `merkle::leaf_hash` of each event hash, split over the machine's cores.
fn leaf_hashes(hashes: &[Hash]) -> Vec<Hash> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = hashes.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = hashes
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(merkle::leaf_hash).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// A position range's events, linked on a worker thread: each event after
/// the first is chained to the stored hash of the one before it (which is
/// the recomputed hash whenever that one checked out, and otherwise the
/// check stops there), so ranges are linked in parallel; the first waits
/// for the range before it.
struct LinkedRange {
    first: Option<FirstInRange>,
    rest: Vec<(u64, Link)>,
}

/// A later event of a [`LinkedRange`]: its recomputed hash with its Merkle
/// leaf, or what is wrong with it.
type Link = Result<(Hash, Hash), BadPosition>;

struct FirstInRange {
    position: u64,
    canonical: Result<Vec<u8>, CanonicalError>,
    stored_hash: Vec<u8>,
    copies: Result<(), BadPosition>,
}

/// A row whose columns copying hashed content (who recorded it, the schema
/// version) disagree with what the hash covers is damaged where it stands,
/// even though its hash still chains: views read the hashed form, but other
/// code may read the copies.
fn copies_agree(row: &ChainRow<'_>) -> Result<(), BadPosition> {
    if row.disagreeing_copies.is_empty() {
        return Ok(());
    }
    Err(BadPosition {
        position: row.position,
        reason: format!(
            "its column(s) {} disagree with the metadata and type its hash covers: copied \
             columns were edited after it was recorded",
            row.disagreeing_copies
        ),
    })
}

impl LinkedRange {
    fn link(rows: &ChainRows) -> Result<Self, StoreError> {
        let mut linked = LinkedRange {
            first: None,
            rest: Vec::with_capacity(rows.len().saturating_sub(1)),
        };
        let mut canonical = Vec::with_capacity(2048);
        let mut before: Option<(u64, &[u8])> = None;
        for index in 0..rows.len() {
            let row = rows.record(index)?;
            canonical.clear();
            let written = chain::write_record(&mut canonical, &row.record);
            let bytes = written.as_ref().map(|()| canonical.as_slice());
            match before {
                None => {
                    linked.first = Some(FirstInRange {
                        position: row.position,
                        canonical: bytes.map(<[u8]>::to_vec).map_err(Clone::clone),
                        stored_hash: row.hash.to_vec(),
                        copies: copies_agree(&row),
                    });
                }
                Some((last, stored)) => {
                    let outcome = match Hash::try_from(stored) {
                        Ok(previous) => chain_step(last, &previous, row.position, bytes, row.hash)
                            .and_then(|hash| copies_agree(&row).map(|()| hash))
                            .map(|hash| (hash, merkle::leaf_hash(&hash))),
                        Err(_) => Err(BadPosition {
                            position: last,
                            reason: "its stored hash is not 32 bytes".into(),
                        }),
                    };
                    linked.rest.push((row.position, outcome));
                }
            }
            before = Some((row.position, row.hash));
        }
        Ok(linked)
    }

    /// Takes the range into `check`, in order.
    fn feed(self, check: &mut LedgerCheck<'_>) {
        if let Some(first) = self.first {
            check.push_canonical(
                first.position,
                first.canonical.as_deref(),
                &first.stored_hash,
            );
            if let Err(bad) = first.copies {
                check.bad(bad.position, bad.reason);
            }
        }
        for (position, outcome) in self.rest {
            if check.failed() {
                return;
            }
            match outcome {
                Ok((hash, leaf)) => check.push_verified(position, hash, leaf),
                Err(bad) => check.bad(bad.position, bad.reason),
            }
        }
    }
}

/// Positions per range `verify_ledger` reads and links as one piece.
const CHAIN_RANGE: u64 = 10_000;
/// Ranges read and linked at once: PostgreSQL sends one while others are
/// decoded and hashed, on every core.
const RANGES_IN_FLIGHT: usize = 3;

/// Recomputes the whole chain and the Merkle root at every checkpoint, and
/// checks every checkpoint's signature with `key` and `outside` (a
/// checkpoint kept outside the database) against the ledger.
pub async fn verify_ledger(
    store: &Store,
    key: &CheckpointVerifier,
    outside: Option<&Checkpoint>,
) -> Result<Verification, VerifyError> {
    verify_ledger_in_ranges(store, key, outside, CHAIN_RANGE).await
}

/// [`verify_ledger`], reading and linking `positions_per_range` positions
/// at a time: the findings do not depend on it (tests cross many range
/// boundaries with small ranges).
pub async fn verify_ledger_in_ranges(
    store: &Store,
    key: &CheckpointVerifier,
    outside: Option<&Checkpoint>,
    positions_per_range: u64,
) -> Result<Verification, VerifyError> {
    use futures::{StreamExt as _, TryStreamExt as _};

    let mut check = LedgerCheck::new(key, store.checkpoints().await?, outside.cloned());
    // The head and the last event together, so that events sequenced while
    // this runs are neither read nor held against the head.
    let extent = store.ledger_extent().await?;
    let size = positions_per_range.max(1);
    let ranges = (0..extent.last_event.div_ceil(size)).map(|i| {
        let after = i * size;
        (after, (after + size).min(extent.last_event))
    });
    let mut linked = futures::stream::iter(ranges)
        .map(|(after, through)| async move {
            let rows = store.read_chain(after, through).await?;
            match tokio::task::spawn_blocking(move || LinkedRange::link(&rows)).await {
                Ok(linked) => Ok::<_, VerifyError>(linked?),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(VerifyError::Interrupted(e.to_string())),
            }
        })
        .buffered(RANGES_IN_FLIGHT);
    while !check.failed() {
        let Some(range) = linked.try_next().await? else {
            break;
        };
        range.feed(&mut check);
    }
    drop(linked);
    let failed = check.failed();
    let chain_hash = check.chain_hash();
    let mut found = check.finish();
    if !failed && found.first_bad.is_none() {
        let (head, end) = (extent.head, found.events);
        if head != end || (end > 0 && extent.head_hash != chain_hash) {
            found.first_bad = Some(BadPosition {
                position: end.min(head) + 1,
                reason: format!("the ledger head says position {head}, the events end at {end}"),
            });
        }
    }
    found.unsequenced = store.unsequenced_count().await?;
    Ok(found)
}
