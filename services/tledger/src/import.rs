//! `tledger import <file>`: a publisher's backfill of history, as
//! CloudEvents JSON lines, through exactly the checks, deduplication and
//! receipts of facts published over NATS ([`Intake::take`]).
//!
//! Lines are answered in chunks; inside a chunk, lines about the same
//! stream keep their order and different streams run side by side. After
//! each chunk the number of lines finished is recorded against the file's
//! SHA-256, so an interrupted import resumes after the last finished chunk;
//! lines of a chunk that was cut short are answered again, and the
//! deduplication of `(source, id)` records nothing twice. Receipts are
//! recorded (`GET /v1/receipts`), not published on NATS: a backfill of
//! millions of facts would flood the publisher's receipts subject.
//!
//! The import runs its own sequencer, which stands by while a running
//! service holds the sequencer's lock.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tledger_store::{Sequencer, Store, StoreError};

use crate::ingest::{Arrival, Intake, IntakeError, ReceiptStatus};
use crate::publishers::{PublisherError, Publishers};
use crate::Prefix;

/// Lines answered between two progress records.
const CHUNK: usize = 2_000;
/// Streams answered side by side.
const CONCURRENCY: usize = 128;
/// Tries for a line the database could not answer.
const TRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("line {line}: {source}")]
    Line {
        line: u64,
        #[source]
        source: IntakeError,
    },
    #[error(transparent)]
    Publishers(#[from] PublisherError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Lines skipped because an earlier run finished them.
    pub resumed_after: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub parked: u64,
    pub rejected: u64,
}

impl ImportSummary {
    pub fn answered(&self) -> u64 {
        self.accepted + self.duplicate + self.parked + self.rejected
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} lines answered ({} accepted, {} duplicate, {} parked, {} rejected)",
            self.answered(),
            self.accepted,
            self.duplicate,
            self.parked,
            self.rejected
        )?;
        if self.resumed_after > 0 {
            write!(
                f,
                "; resumed after line {} finished by an earlier run",
                self.resumed_after
            )?;
        }
        Ok(())
    }
}

fn file_digest(path: &Path) -> Result<(Vec<u8>, u64), ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut digest = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        digest.update(&buffer[..n]);
    }
    Ok((digest.finalize().to_vec(), size))
}

/// Imports `path` into the ledger behind `store`. `publisher` names the
/// publisher of every line; without it each line's `source` finds its
/// publisher.
pub async fn import(
    store: &Store,
    prefix: &Prefix,
    path: &Path,
    publisher: Option<&str>,
    progress: bool,
) -> Result<ImportSummary, ImportError> {
    let (sha, size) = file_digest(path)?;
    let done_before = store.import_progress(&sha).await?;

    let standalone = standalone_intake(store, prefix);
    let bar = if progress {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let outcome = run(
        &standalone.intake,
        &standalone.publishers,
        path,
        publisher,
        &sha,
        done_before,
        &bar,
    )
    .await;
    bar.finish_and_clear();
    standalone.stop().await;
    outcome
}

/// An intake outside the service, with a sequencer of its own that stands
/// by while a running service holds the sequencer's lock.
pub struct StandaloneIntake {
    pub intake: Intake,
    pub publishers: Publishers,
    stop: tokio::sync::oneshot::Sender<()>,
    sequencer: tokio::task::JoinHandle<()>,
}

impl StandaloneIntake {
    /// Stops the sequencer after its last batch.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.sequencer.await;
    }
}

pub fn standalone_intake(store: &Store, prefix: &Prefix) -> StandaloneIntake {
    // The service's own write side, so a line is answered as over NATS.
    let crate::app::WriteSide {
        commands,
        wake,
        sequenced,
        ..
    } = crate::app::write_side(store, prefix);
    let publishers = Publishers::new(store.clone());
    let intake = Intake::new(store.clone(), commands, publishers.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sequencer = tokio::spawn(Sequencer::new(store.clone()).run(
        wake,
        sequenced,
        Duration::from_millis(50),
        async {
            let _ = stopped.await;
        },
    ));
    StandaloneIntake {
        intake,
        publishers,
        stop,
        sequencer,
    }
}

async fn run(
    intake: &Intake,
    publishers: &Publishers,
    path: &Path,
    publisher: Option<&str>,
    sha: &[u8],
    done_before: u64,
    bar: &ProgressBar,
) -> Result<ImportSummary, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(read_error)?);
    let mut summary = ImportSummary {
        resumed_after: done_before,
        ..ImportSummary::default()
    };
    let mut lines = reader.lines();
    let mut number = 0u64;
    loop {
        let mut chunk: Vec<(u64, Bytes)> = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            let Some(line) = lines.next() else { break };
            let line = line.map_err(read_error)?;
            number += 1;
            bar.inc(line.len() as u64 + 1);
            if number <= done_before || line.trim().is_empty() {
                continue;
            }
            chunk.push((number, Bytes::from(line)));
        }
        if chunk.is_empty() {
            if number > done_before {
                intake.store().set_import_progress(sha, number).await?;
            }
            return Ok(summary);
        }
        let last = chunk.last().map_or(number, |(n, _)| *n);
        for status in answer_chunk(intake, publishers, publisher, chunk).await? {
            match status {
                ReceiptStatus::Accepted => summary.accepted += 1,
                ReceiptStatus::Duplicate => summary.duplicate += 1,
                ReceiptStatus::Parked => summary.parked += 1,
                ReceiptStatus::Rejected => summary.rejected += 1,
            }
        }
        intake.store().set_import_progress(sha, last).await?;
        bar.set_message(format!("{} answered", summary.answered()));
    }
}

async fn answer_chunk(
    intake: &Intake,
    publishers: &Publishers,
    publisher: Option<&str>,
    chunk: Vec<(u64, Bytes)>,
) -> Result<Vec<ReceiptStatus>, ImportError> {
    let all = crate::ingest::stream::order_groups(chunk, |(_, line): &(u64, Bytes)| &line[..]);
    let answered: Vec<Result<Vec<ReceiptStatus>, ImportError>> = futures::stream::iter(all)
        .map(|group| async move {
            let mut statuses = Vec::with_capacity(group.len());
            for (number, line) in group {
                let publisher_id = match publisher {
                    Some(p) => p.to_owned(),
                    None => publisher_by_source(publishers, &line).await?,
                };
                let arrival = Arrival {
                    publisher_id,
                    message: line,
                    received_at: chrono::Utc::now(),
                };
                statuses.push(take_with_retries(intake, &arrival, number).await?);
            }
            Ok(statuses)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut statuses = Vec::new();
    for group in answered {
        statuses.extend(group?);
    }
    Ok(statuses)
}

/// The publisher registered for the line's `source` (empty when none is:
/// the line is then rejected and quarantined like a message on an unknown
/// subject).
async fn publisher_by_source(publishers: &Publishers, line: &[u8]) -> Result<String, ImportError> {
    let source = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("source").and_then(|s| s.as_str()).map(str::to_owned));
    Ok(match source {
        Some(source) => publishers
            .by_source(&source)
            .await?
            .map(|p| p.id.to_string())
            .unwrap_or_default(),
        None => String::new(),
    })
}

async fn take_with_retries(
    intake: &Intake,
    arrival: &Arrival,
    line: u64,
) -> Result<ReceiptStatus, ImportError> {
    let mut delay = Duration::from_millis(200);
    let mut tries = 0;
    loop {
        match intake.take(arrival).await {
            Ok(receipt) => return Ok(receipt.status),
            Err(source) if tries + 1 >= TRIES => return Err(ImportError::Line { line, source }),
            Err(error) => {
                tracing::warn!(line, %error, "answering a line again");
                tries += 1;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}
