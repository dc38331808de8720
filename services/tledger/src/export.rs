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

use crate::inspection::{proved_record, BadPosition, LedgerCheck};

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
    let write_error = |source| ExportError::Write {
        path: temporary.clone(),
        source,
    };
    let file = File::create(&temporary).map_err(write_error)?;
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
    let mut position = 0;
    while position < last {
        let limit = u32::try_from(last - position)
            .unwrap_or(u32::MAX)
            .min(BATCH);
        let events = store.read_ledger(position, limit).await?;
        if events.is_empty() {
            return Err(ExportError::Gap(position + 1));
        }
        for event in events {
            if event.position != position + 1 {
                return Err(ExportError::Gap(position + 1));
            }
            position = event.position;
            let line = Line::Event(ArchivedEvent {
                record: proved_record(&event),
                hash: hex::encode(&event.hash),
            });
            out.line(&line).map_err(write_error)?;
        }
    }
    let checkpoints: Vec<Checkpoint> = store
        .checkpoints()
        .await?
        .into_iter()
        .filter(|c| c.position <= last)
        .collect();
    for checkpoint in &checkpoints {
        out.line(&Line::Checkpoint(checkpoint.clone()))
            .map_err(write_error)?;
    }
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
    std::fs::rename(&temporary, path).map_err(|source| ExportError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(Exported {
        until_position: last,
        events: last,
        checkpoints: checkpoints.len() as u64,
    })
}

struct ArchiveWriter {
    gzip: GzEncoder<BufWriter<File>>,
    digest: Sha256,
}

impl ArchiveWriter {
    fn line(&mut self, line: &Line) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line)?;
        bytes.push(b'\n');
        self.digest.update(&bytes);
        self.gzip.write_all(&bytes)
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

/// Reads and verifies an archive with the ledger's public key. Once the
/// digest and its signature hold, each event goes through the chain check
/// and then to `each`; what `each` saw is to be trusted only when this
/// returns `Ok`.
///
/// Two passes over the file, so that memory does not grow with the ledger:
/// the first checks that every line parses and that the digest and its
/// signature hold; the second hashes the bytes again (the file must not
/// have changed in between) while it checks the chain and hands each event
/// over.
pub fn read_archive(
    path: &Path,
    key: &CheckpointVerifier,
    mut each: impl FnMut(&ProvedRecord),
) -> Result<Replayed, ArchiveError> {
    let mut header: Option<Header> = None;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut signed: Option<SignedDigest> = None;
    let first = lines(path, |number, line| {
        let malformed = |reason: &str| ArchiveError::Malformed {
            line: number,
            reason: reason.into(),
        };
        match line {
            Line::Header(h) => {
                if number != 1 {
                    return Err(malformed("a second header"));
                }
                if h.format != FORMAT {
                    return Err(malformed("not a tledger export"));
                }
                if h.version != VERSION {
                    return Err(ArchiveError::Version(h.version));
                }
                header = Some(h);
            }
            _ if header.is_none() => return Err(malformed("no header first")),
            Line::Event(event) => {
                hex::decode(&event.hash).map_err(|_| malformed("a hash not in hex"))?;
            }
            Line::Checkpoint(checkpoint) => checkpoints.push(checkpoint),
            Line::Digest(d) => signed = Some(d),
        }
        Ok(())
    })?;
    let (Some(header), Some(signed)) = (header, signed) else {
        return Err(ArchiveError::Truncated);
    };
    if first != signed.sha256 {
        return Err(ArchiveError::DigestMismatch);
    }
    let signature: [u8; 64] = hex::decode(&signed.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ArchiveError::BadSignature(key.key_id().into()))?;
    if signed.key_id != key.key_id()
        || !key.verify_bytes(&digest_bytes(&signed.sha256, &signed.key_id), &signature)
    {
        return Err(ArchiveError::BadSignature(key.key_id().into()));
    }
    let mut check = LedgerCheck::new(key, checkpoints, None);
    let mut count = 0u64;
    let second = lines(path, |number, line| {
        if let Line::Event(event) = line {
            let hash = hex::decode(&event.hash).map_err(|_| ArchiveError::Malformed {
                line: number,
                reason: "a hash not in hex".into(),
            })?;
            check.push(&event.record.chain_record(), &hash);
            each(&event.record);
            count += 1;
        }
        Ok(())
    })?;
    if second != first {
        return Err(ArchiveError::DigestMismatch);
    }
    let found = check.finish();
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

/// Reads the archive line by line, parsing each and handing it to `line`
/// with its number; returns the SHA-256 (hex) of the lines before the
/// digest line. Nothing may follow the digest line.
fn lines(
    path: &Path,
    mut line: impl FnMut(u64, Line) -> Result<(), ArchiveError>,
) -> Result<String, ArchiveError> {
    let read_error = |reason: String| ArchiveError::Read {
        path: path.display().to_string(),
        reason,
    };
    let file = File::open(path).map_err(|e| read_error(e.to_string()))?;
    let mut reader = BufReader::new(GzDecoder::new(BufReader::new(file)));
    let mut digest = Sha256::new();
    let mut bytes = Vec::new();
    let mut number = 0u64;
    let mut after_digest = false;
    loop {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| read_error(format!("not a complete gzip stream: {e}")))?;
        if n == 0 {
            break;
        }
        number += 1;
        if after_digest {
            return Err(ArchiveError::Malformed {
                line: number,
                reason: "a line after the digest".into(),
            });
        }
        let parsed: Line = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Malformed {
            line: number,
            reason: e.to_string(),
        })?;
        after_digest = matches!(parsed, Line::Digest(_));
        line(number, parsed)?;
        if !after_digest {
            digest.update(&bytes);
        }
    }
    Ok(hex::encode(digest.finalize()))
}
