//! `tledger replay <archive> … report <name>`: a report computed from a
//! verified export alone, in memory (no PostgreSQL, no NATS), with the same
//! parameters, defaults and JSON as `GET /v1/reports/<name>` at
//! `at_position` = the archive's last position.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tledger_events::checkpoint::CheckpointVerifier;
use tledger_events::proof::ProvedRecord;
use tledger_events::Date;
use tledger_projections::offline::{parse_record, OfflineLedger, ReplayError};
use tledger_projections::reports::ReportError;

use crate::calendar::{five_years_ending, today};
use crate::export::{read_archive_with, ArchiveError, Replayed};

pub const REPORTS: [&str; 3] = ["training-volume", "standards", "alignment"];

/// What to report from the archive.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub name: String,
    pub unit: Option<String>,
    pub as_of: Option<Date>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// The cut: the last position recorded by then (default: the archive's
    /// last position).
    pub known_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayReportError {
    #[error("the archive does not verify: {0}")]
    Archive(#[from] ArchiveError),
    #[error("the archive verifies but {0}")]
    Fact(#[from] ReplayError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("unknown report {0:?}: the reports are training-volume, standards, alignment")]
    UnknownReport(String),
    #[error("from {from} is after to {to}")]
    Range { from: Date, to: Date },
}

/// Verifies the archive and takes every fact into memory as it is read
/// (each fact is parsed on the archive's reading threads, and taken in
/// ledger order).
pub fn load(
    path: &Path,
    key: &CheckpointVerifier,
) -> Result<(Replayed, OfflineLedger), ReplayReportError> {
    let mut ledger = OfflineLedger::new();
    let mut first_error: Option<ReplayError> = None;
    let parse = |record: &ProvedRecord| (record.position, record.event_id, parse_record(record));
    let replayed = read_archive_with(path, key, &parse, |(position, event_id, parsed)| {
        if first_error.is_none() {
            if let Err(e) = parsed.and_then(|p| ledger.apply_parsed(position, event_id, p)) {
                first_error = Some(e);
            }
        }
    })?;
    if let Some(e) = first_error {
        return Err(e.into());
    }
    Ok((replayed, ledger))
}

/// The report's JSON, as the server's body.
pub fn report_json(
    ledger: &OfflineLedger,
    request: &ReplayReport,
) -> Result<Value, ReplayReportError> {
    let cut = match request.known_at {
        Some(instant) => ledger.position_known_at(instant),
        None => ledger.last_position(),
    };
    let unit = request.unit.as_deref().filter(|u| !u.is_empty());
    match request.name.as_str() {
        "training-volume" => {
            let to = request.to.unwrap_or_else(today);
            let from = request.from.unwrap_or_else(|| five_years_ending(to));
            if from > to {
                return Err(ReplayReportError::Range { from, to });
            }
            Ok(ledger.training_volume(unit, from, to, cut)?.to_json())
        }
        "standards" => Ok(ledger
            .standards(unit, request.as_of.unwrap_or_else(today), cut)?
            .to_json()),
        "alignment" => Ok(ledger
            .alignment(unit, request.as_of.unwrap_or_else(today), cut)?
            .to_json()),
        other => Err(ReplayReportError::UnknownReport(other.to_owned())),
    }
}
