//! `tledger export` and reading an export back (`tledger replay`): a prefix
//! of the ledger, with its checkpoints, in a versioned archive that carries
//! a signed digest of its whole content (docs/export-format.md).
//!
//! The archive is gzip-compressed JSON lines: a `header` line, one `event`
//! line per fact in position order (the content the chain hashes, and the
//! stored hash), one `checkpoint` line per checkpoint up to the last
//! position, and a `digest` line: SHA-256 over the exact bytes of every line
//! before it (newlines included), signed with the ledger's key. Reading
//! checks the digest and its signature, then the chain and every checkpoint,
//! as `tledger verify` does, one line at a time.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tledger_events::chain;
use tledger_events::checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use tledger_events::proof::ProvedRecord;
use tledger_events::Date;
use tledger_store::{Store, StoreError};

use crate::inspection::{proved_record, BadPosition, ChainFollower};

pub const FORMAT: &str = "tledger-export";
pub const VERSION: u32 = 1;

/// Events read from the database at a time.
const BATCH: u32 = 5_000;

/// One line of the archive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    Header(Header),
    Event(ArchivedEvent),
    Checkpoint(Checkpoint),
    Digest(SignedDigest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The last position in the archive.
    pub until_position: u64,
    pub exported_at: String,
    pub key_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedEvent {
    pub record: ProvedRecord,
    /// The chain hash the ledger stored, hex.
    pub hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDigest {
    /// SHA-256 of every line before this one, hex.
    pub sha256: String,
    /// ed25519 over the canonical JSON of `{format, version, sha256,
    /// key_id}`, hex.
    pub signature: String,
    pub key_id: String,
}

#[derive(Serialize)]
struct DigestSigned<'a> {
    format: &'a str,
    version: u32,
    sha256: &'a str,
    key_id: &'a str,
}

fn digest_bytes(sha256: &str, key_id: &str) -> Vec<u8> {
    chain::canonical_json(&DigestSigned {
        format: FORMAT,
        version: VERSION,
        sha256,
        key_id,
    })
    // Plain strings and a number always canonicalise.
    .unwrap_or_default()
}

/// Where an export ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Everything sequenced.
    Head,
    Position(u64),
    /// A transaction-time cut, like `known_at`: every fact recorded before
    /// the end of that day (UTC).
    Date(Date),
}

impl std::str::FromStr for Until {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(position) = s.parse::<u64>() {
            return Ok(Until::Position(position));
        }
        s.parse::<Date>().map(Until::Date).map_err(|_| {
            format!("--until takes a ledger position or a date (YYYY-MM-DD), not {s:?}")
        })
    }
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the ledger has no event at position {0} (a gap): run tledger verify")]
    Gap(u64),
    #[error("the event at position {0} cannot be written: {1}")]
    Json(u64, String),
}

/// What an export holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub until_position: u64,
    pub events: u64,
    pub checkpoints: u64,
}

/// Writes the ledger up to `until` to `path` (through a temporary file
/// beside it, renamed when complete).
pub async fn export(
    store: &Store,
    signer: &CheckpointSigner,
    until: Until,
    path: &Path,
) -> Result<Exported, ExportError> {
    let head = store.head().await?;
    let last = match until {
        Until::Head => head,
        Until::Position(p) => p.min(head),
        Until::Date(date) => {
            let end = date
                .naive()
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc());
            // "Before the end of the day": recorded_at <= end − 1 µs.
            store
                .position_known_at(end - chrono::Duration::microseconds(1))
                .await?
                .min(head)
        }
    };
    let temporary = path.with_extension("partial");
    let written = write_archive(store, signer, last, &temporary).await;
    if written.is_err() {
        // Nothing half-written is left behind to be taken for an archive.
        let _ = std::fs::remove_file(&temporary);
    }
    let checkpoints = written?;
    std::fs::rename(&temporary, path).map_err(|source| ExportError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(Exported {
        until_position: last,
        events: last,
        checkpoints,
    })
}

/// Writes the archive of positions 1 to `last` to `temporary`, synced;
/// returns how many checkpoints it holds.
async fn write_archive(
    store: &Store,
    signer: &CheckpointSigner,
    last: u64,
    temporary: &Path,
) -> Result<u64, ExportError> {
    let write_error = |source| ExportError::Write {
        path: temporary.to_owned(),
        source,
    };
    let file = File::create(temporary).map_err(write_error)?;
    let mut out = ArchiveWriter {
        gzip: GzEncoder::new(BufWriter::new(file), Compression::default()),
        digest: Sha256::new(),
    };
    out.line(&Line::Header(Header {
        format: FORMAT.into(),
        version: VERSION,
        until_position: last,
        exported_at: chain::format_instant(Utc::now()),
        key_id: signer.key_id().into(),
    }))
    .map_err(write_error)?;
    // Gzip and the digest run on a thread of their own, so that reading
    // and writing the lines here and compressing them there take a core
    // each: one after the other, compressing was a third of the time.
    let (blocks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUED_BLOCKS);
    let compressor = std::thread::spawn(move || -> std::io::Result<ArchiveWriter> {
        for block in received {
            out.block(&block)?;
        }
        Ok(out)
    });
    let written = write_events_and_checkpoints(store, last, &blocks).await;
    drop(blocks);
    let mut out = match compressor.join() {
        Ok(out) => out.map_err(write_error)?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let checkpoints = written?;
    let sha256 = hex::encode(out.digest.clone().finalize());
    let signature = signer.sign_bytes(&digest_bytes(&sha256, signer.key_id()));
    out.line(&Line::Digest(SignedDigest {
        sha256,
        signature: hex::encode(signature),
        key_id: signer.key_id().into(),
    }))
    .map_err(write_error)?;
    let file = out.gzip.finish().map_err(write_error)?;
    file.into_inner()
        .map_err(|e| write_error(e.into_error()))?
        .sync_all()
        .map_err(write_error)?;
    Ok(checkpoints)
}

/// Blocks of lines waiting for the compressor.
const QUEUED_BLOCKS: usize = 4;

/// Sends the events through `last`, a block of lines per batch, then the
/// checkpoints through `last`; returns how many checkpoints. A send fails
/// only when the compressor stopped, whose error the caller reports.
async fn write_events_and_checkpoints(
    store: &Store,
    last: u64,
    blocks: &std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Result<u64, ExportError> {
    let stopped = || ExportError::Write {
        path: PathBuf::new(),
        source: std::io::Error::other("the compressor stopped"),
    };
    let mut position = 0;
    while position < last {
        let limit = u32::try_from(last - position)
            .unwrap_or(u32::MAX)
            .min(BATCH);
        let events = store.read_ledger(position, limit).await?;
        if events.is_empty() {
            return Err(ExportError::Gap(position + 1));
        }
        let mut block = Vec::with_capacity(events.len() * 640);
        for event in events {
            if event.position != position + 1 {
                return Err(ExportError::Gap(position + 1));
            }
            position = event.position;
            let line = Line::Event(ArchivedEvent {
                record: proved_record(&event),
                hash: hex::encode(&event.hash),
            });
            render(&line, &mut block).map_err(|e| ExportError::Json(position, e.to_string()))?;
        }
        blocks.send(block).map_err(|_| stopped())?;
    }
    let mut block = Vec::new();
    let mut count = 0;
    for checkpoint in store.checkpoints().await? {
        if checkpoint.position <= last {
            render(&Line::Checkpoint(checkpoint), &mut block)
                .map_err(|e| ExportError::Json(position, e.to_string()))?;
            count += 1;
        }
    }
    blocks.send(block).map_err(|_| stopped())?;
    Ok(count)
}

/// `line` as its JSON and a newline, appended to `into`.
fn render(line: &Line, into: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *into, line)?;
    into.push(b'\n');
    Ok(())
}

struct ArchiveWriter {
    gzip: GzEncoder<BufWriter<File>>,
    digest: Sha256,
}

impl ArchiveWriter {
    fn line(&mut self, line: &Line) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        render(line, &mut bytes)?;
        self.block(&bytes)
    }

    /// Whole lines, into the digest and the archive.
    fn block(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.digest.update(bytes);
        self.gzip.write_all(bytes)
    }
}

/// Why an archive is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("line {line} is not part of a {FORMAT} archive: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("the archive is version {0}; this program reads version {VERSION}")]
    Version(u32),
    #[error("the archive ends without its signed digest: it was cut short")]
    Truncated,
    #[error("the archive's content does not match its digest: it was changed")]
    DigestMismatch,
    #[error("the digest is not signed by the key given ({0})")]
    BadSignature(String),
    #[error("first bad position {}: {}", .0.position, .0.reason)]
    Ledger(BadPosition),
}

/// A verified archive's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    pub header: Header,
    pub events: u64,
    pub checkpoints: u64,
}

/// Reads and verifies an archive with the ledger's public key.
pub fn read_archive(path: &Path, key: &CheckpointVerifier) -> Result<Replayed, ArchiveError> {
    read_archive_with(path, key, &|_| (), |()| {})
}

/// [`read_archive`], with `prepare` run on each event beside its parsing, on
/// the reading threads (so it must not depend on other events), and its
/// result handed to `each` in position order; what `each` saw is to be
/// trusted only when this returns `Ok`.
///
/// One pass over the file, so that memory does not grow with the archive
/// (only 32 bytes a fact, its chain hash, until the checkpoints at the end
/// are read) and the bytes checked are the bytes read: a reading thread
/// decompresses the archive and hashes its lines for the digest; one thread
/// per core parses lines, writes each event's canonical JSON and runs
/// `prepare` (the event's JSON is freed where it was made, which keeps the
/// allocator from contending across threads); this thread follows the
/// chain in order and calls `each`, and the checkpoints are checked at the
/// end. The checks and their precedence are docs/export-format.md's: the
/// first line that cannot be read or parsed, then a missing digest, a
/// digest that does not match, a bad signature, and only then damage to the
/// chain or the checkpoints.
pub fn read_archive_with<T: Send>(
    path: &Path,
    key: &CheckpointVerifier,
    prepare: &(dyn Fn(&ProvedRecord) -> T + Sync),
    mut each: impl FnMut(T),
) -> Result<Replayed, ArchiveError> {
    let read_error = |reason: String| ArchiveError::Read {
        path: path.display().to_string(),
        reason,
    };
    let file = File::open(path).map_err(|e| read_error(e.to_string()))?;
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_WORKERS);
    let mut header: Option<Header> = None;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut signed: Option<SignedDigest> = None;
    let mut chain = ChainFollower::new();
    let mut count = 0u64;
    let read = std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (send_lines, lines) = mpsc::sync_channel::<Batch>(QUEUED_BATCHES);
            let (send_parsed, parsed) = mpsc::sync_channel::<ParsedBatch<T>>(QUEUED_BATCHES);
            scope.spawn(move || {
                for batch in lines {
                    if send_parsed.send(parse_batch(batch, prepare)).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(send_lines);
            from_workers.push(parsed);
        }
        let reader = scope.spawn(move || read_lines(file, to_workers));
        // Batches come back from the workers in the order they were dealt.
        let mut after_digest = false;
        let mut outcome = Ok(());
        'batches: for turn in 0.. {
            let Ok(batch) = from_workers[turn % workers].recv() else {
                break;
            };
            for (offset, parsed) in batch.lines.into_iter().enumerate() {
                let number = batch.first_line + offset as u64;
                if let Err(e) = take_line(
                    number,
                    parsed,
                    &batch.canonical,
                    &mut after_digest,
                    &mut header,
                    &mut checkpoints,
                    &mut signed,
                    &mut chain,
                    &mut count,
                    &mut each,
                ) {
                    outcome = Err(e);
                    break 'batches;
                }
            }
            if let Some(reason) = batch.unreadable {
                outcome = Err(read_error(format!("not a complete gzip stream: {reason}")));
                break;
            }
        }
        // Stops the workers, and through them the reader, when this stopped
        // early.
        drop(from_workers);
        let digest = reader
            .join()
            .map_err(|_| read_error("the reading thread failed".into()))?;
        outcome.map(|()| digest)
    })?;
    let (Some(header), Some(signed)) = (header, signed) else {
        return Err(ArchiveError::Truncated);
    };
    if read != signed.sha256 {
        return Err(ArchiveError::DigestMismatch);
    }
    // Only the lowercase hex the exporter writes: the digest line is the one
    // line the digest does not cover, so another spelling of the same
    // signature would be a changed byte that nothing else catches.
    let signature: [u8; 64] = hex::decode(&signed.signature)
        .ok()
        .filter(|b| hex::encode(b) == signed.signature)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ArchiveError::BadSignature(key.key_id().into()))?;
    if signed.key_id != key.key_id()
        || !key.verify_bytes(&digest_bytes(&signed.sha256, &signed.key_id), &signature)
    {
        return Err(ArchiveError::BadSignature(key.key_id().into()));
    }
    let found = chain.check(key, checkpoints);
    if let Some(bad) = found.first_bad {
        return Err(ArchiveError::Ledger(bad));
    }
    if count != header.until_position {
        return Err(ArchiveError::Ledger(BadPosition {
            position: count + 1,
            reason: format!(
                "the header says the archive ends at position {}, it holds {count} events",
                header.until_position
            ),
        }));
    }
    Ok(Replayed {
        header,
        events: count,
        checkpoints: found.checkpoints,
    })
}

/// Threads that parse lines, at most.
const MAX_WORKERS: usize = 8;
/// Lines handed to a parsing thread at a time.
const BATCH_LINES: usize = 512;
/// Batches waiting for, and coming back from, each parsing thread: enough
/// to keep every thread busy, few enough that memory stays flat.
const QUEUED_BATCHES: usize = 2;

/// Consecutive lines of the decompressed archive.
struct Batch {
    first_line: u64,
    bytes: Vec<u8>,
    /// Where each line ends in `bytes`.
    ends: Vec<usize>,
    /// Why reading stopped after these lines, if it broke off.
    unreadable: Option<String>,
}

/// A line as a parsing thread leaves it.
enum ParsedLine<T> {
    Event {
        position: u64,
        hash: Vec<u8>,
        /// Where its canonical JSON is in the batch's `canonical`.
        canonical: Result<std::ops::Range<usize>, chain::CanonicalError>,
        prepared: T,
    },
    Header(Header),
    Checkpoint(Checkpoint),
    Digest(SignedDigest),
}

struct ParsedBatch<T> {
    first_line: u64,
    /// The events' canonical JSON, one after the other (one allocation a
    /// batch rather than one an event).
    canonical: Vec<u8>,
    lines: Vec<Result<ParsedLine<T>, ArchiveError>>,
    unreadable: Option<String>,
}

fn parse_batch<T>(batch: Batch, prepare: &(dyn Fn(&ProvedRecord) -> T + Sync)) -> ParsedBatch<T> {
    let mut lines = Vec::with_capacity(batch.ends.len());
    let mut canonical_bytes = Vec::with_capacity(batch.bytes.len());
    let mut start = 0;
    for (offset, &end) in batch.ends.iter().enumerate() {
        let line = batch.first_line + offset as u64;
        let bytes = &batch.bytes[start..end];
        start = end;
        let malformed = |reason: String| ArchiveError::Malformed { line, reason };
        let parsed = match serde_json::from_slice::<Line>(bytes) {
            Ok(Line::Event(event)) => hex::decode(&event.hash)
                .map_err(|_| malformed("a hash not in hex".into()))
                .map(|hash| {
                    let from = canonical_bytes.len();
                    let canonical =
                        chain::write_record(&mut canonical_bytes, &event.record.chain_record())
                            .map(|()| from..canonical_bytes.len());
                    let prepared = prepare(&event.record);
                    ParsedLine::Event {
                        position: event.record.position,
                        hash,
                        canonical,
                        prepared,
                    }
                }),
            Ok(Line::Header(h)) => Ok(ParsedLine::Header(h)),
            Ok(Line::Checkpoint(c)) => Ok(ParsedLine::Checkpoint(c)),
            Ok(Line::Digest(d)) => Ok(ParsedLine::Digest(d)),
            Err(e) => Err(malformed(e.to_string())),
        };
        let failed = parsed.is_err();
        lines.push(parsed);
        // The lines after the first bad one are never looked at.
        if failed {
            break;
        }
    }
    ParsedBatch {
        first_line: batch.first_line,
        canonical: canonical_bytes,
        lines,
        unreadable: batch.unreadable,
    }
}

/// Decompresses the archive into batches of lines dealt to the parsing
/// threads in turn; returns the SHA-256 (hex) of every line but the last
/// (the digest line, when the archive is whole).
fn read_lines(file: File, workers: Vec<mpsc::SyncSender<Batch>>) -> String {
    let mut reader = BufReader::with_capacity(1 << 16, GzDecoder::new(BufReader::new(file)));
    let mut digest = Sha256::new();
    // The last line read is hashed only once the next one is read.
    let mut last_line: Vec<u8> = Vec::new();
    let mut number = 1u64;
    for turn in 0.. {
        let mut batch = Batch {
            first_line: number,
            bytes: Vec::with_capacity(BATCH_LINES * 1024),
            ends: Vec::with_capacity(BATCH_LINES),
            unreadable: None,
        };
        let mut ended = false;
        while batch.ends.len() < BATCH_LINES {
            let start = batch.bytes.len();
            match reader.read_until(b'\n', &mut batch.bytes) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(_) => {
                    digest.update(&last_line);
                    last_line.clear();
                    last_line.extend_from_slice(&batch.bytes[start..]);
                    batch.ends.push(batch.bytes.len());
                    number += 1;
                }
                Err(e) => {
                    batch.bytes.truncate(start);
                    batch.unreadable = Some(e.to_string());
                    ended = true;
                    break;
                }
            }
        }
        let empty = batch.ends.is_empty() && batch.unreadable.is_none();
        if !empty && workers[turn % workers.len()].send(batch).is_err() {
            break;
        }
        if ended {
            break;
        }
    }
    hex::encode(digest.finalize())
}

/// Takes the next line, in order: the header, event, checkpoint and digest
/// rules of the format, and each event through the chain check to `each`.
#[allow(clippy::too_many_arguments)] // the reading state, one borrow each
fn take_line<T>(
    number: u64,
    parsed: Result<ParsedLine<T>, ArchiveError>,
    canonical_bytes: &[u8],
    after_digest: &mut bool,
    header: &mut Option<Header>,
    checkpoints: &mut Vec<Checkpoint>,
    signed: &mut Option<SignedDigest>,
    chain: &mut ChainFollower,
    count: &mut u64,
    each: &mut impl FnMut(T),
) -> Result<(), ArchiveError> {
    let malformed = |reason: &str| ArchiveError::Malformed {
        line: number,
        reason: reason.into(),
    };
    if *after_digest {
        return Err(malformed("a line after the digest"));
    }
    match parsed? {
        ParsedLine::Header(h) => {
            if number != 1 {
                return Err(malformed("a second header"));
            }
            if h.format != FORMAT {
                return Err(malformed("not a tledger export"));
            }
            if h.version != VERSION {
                return Err(ArchiveError::Version(h.version));
            }
            *header = Some(h);
        }
        _ if header.is_none() => return Err(malformed("no header first")),
        ParsedLine::Event {
            position,
            hash,
            canonical,
            prepared,
        } => {
            let canonical = canonical
                .as_ref()
                .map(|range| canonical_bytes.get(range.clone()).unwrap_or_default());
            chain.push_canonical(position, canonical, &hash);
            each(prepared);
            *count += 1;
        }
        ParsedLine::Checkpoint(checkpoint) => checkpoints.push(checkpoint),
        ParsedLine::Digest(d) => {
            *signed = Some(d);
            *after_digest = true;
        }
    }
    Ok(())
}
