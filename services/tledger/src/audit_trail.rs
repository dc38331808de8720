//! Audit trails (docs/contract.md, Audit and inspection): every sequenced fact
//! of a person's stream or a training place's stream, in ledger order, with
//! who recorded it, its chain hash, and the retraction that took it back.
//!
//! - `GET /v1/officials/<id>/history`, `GET /v1/enrollments/<id>/history`:
//!   `{"official_id"|"enrollment_id", "stream", "facts": [fact, …]}`, each
//!   fact `{"position","event_id","type","effective_date","recorded_at",
//!   "publisher","actor","command_id","correlation_id","hash",
//!   "retracted_by"?,"data"}` (`hash` in hex, `recorded_at` as the chain
//!   writes it, `command_id` and `correlation_id` `null` when none).
//!   `retracted_by` is present only when a `fact.retracted.v1` names the
//!   fact: `{"event_id","position","actor","recorded_at","reason"}` of that
//!   retraction, i.e. who took it back, when, and why.
//! - Filters: `from`, `to` (effective dates, inclusive; `from` after `to` is
//!   422), `type` (repeated or comma-separated fact types; an unknown one is
//!   422). They choose the rows; `retracted_by` is worked out over the whole
//!   stream, so a retracted fact says so even when its retraction is
//!   filtered out.
//! - `Accept: text/csv`: one row per fact, the retraction in five
//!   `retracted_by_…` columns and `data` as a JSON string column; cells
//!   as `crate::presentation::csv` writes them (text that would start a spreadsheet
//!   formula gets a leading `'`).
//! - `tledger history official|enrollment <id>` prints the same rows from
//!   the database (table, JSON or CSV).
//!
//! An official's stream also holds what the qualification policy recorded
//! about the person (and its retractions), and a retraction is appended to
//! the stream of the fact it retracts, so both appear in the trail of the
//! fact they concern. Facts not yet sequenced have no position, time or
//! hash, and are not shown.
//!
//! Access: admins and inspectors read every trail; a unit officer reads a
//! person's trail when one of the person's units (registration and
//! assignments not retracted, each from its date until the next) lay in the
//! officer's subtree at some time, and a training place's when its
//! nominating unit lay there on the nomination's date or later; publishers
//! read none. Errors come in the contract's order: 401, 403 (role), 400, 404,
//! 403 (scope), 422. Every trail answered over HTTP is recorded in the
//! access log first ([`crate::access_log`]).
//!
//! This file builds and writes the trails; the HTTP handlers are in
//! `web/audit_trail_routes.rs`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tledger_events::chain::format_instant;
use tledger_events::{AggregateKind, Date, Fact, FactType};
use tledger_store::{RecordedFact, Store, StoreError};
use uuid::Uuid;

use crate::presentation::csv;
use crate::presentation::Format;
use tledger_events::unit_tree::UnitTree;

/// Whose trail: a person's or a training place's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trail {
    Official,
    Enrollment,
}

impl Trail {
    pub fn kind(self) -> AggregateKind {
        match self {
            Trail::Official => AggregateKind::Official,
            Trail::Enrollment => AggregateKind::Enrollment,
        }
    }

    pub(crate) fn id_key(self) -> &'static str {
        match self {
            Trail::Official => "official_id",
            Trail::Enrollment => "enrollment_id",
        }
    }
}

impl fmt::Display for Trail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trail {0:?}: official or enrollment")]
pub struct UnknownTrail(String);

impl FromStr for Trail {
    type Err = UnknownTrail;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "official" => Ok(Trail::Official),
            "enrollment" => Ok(Trail::Enrollment),
            other => Err(UnknownTrail(other.to_owned())),
        }
    }
}

/// Which facts of a trail to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Empty: every type.
    pub types: Vec<FactType>,
}

/// A filter whose values do not make sense (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("from {from} is after to {to}")]
    Range { from: Date, to: Date },
    #[error("unknown fact type {0:?}: give types of the catalogue, such as official.rated.v1")]
    UnknownType(String),
}

impl HistoryFilter {
    /// Checks the range and reads the type names; each of `types` may be a
    /// comma-separated list.
    pub fn new(
        from: Option<Date>,
        to: Option<Date>,
        types: &[String],
    ) -> Result<Self, FilterError> {
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(FilterError::Range { from, to });
            }
        }
        let mut parsed = Vec::new();
        for name in types.iter().flat_map(|t| t.split(',')).map(str::trim) {
            if name.is_empty() {
                continue;
            }
            let fact_type = name
                .parse::<FactType>()
                .map_err(|_| FilterError::UnknownType(name.to_owned()))?;
            if !parsed.contains(&fact_type) {
                parsed.push(fact_type);
            }
        }
        Ok(Self {
            from,
            to,
            types: parsed,
        })
    }

    pub fn admits(&self, fact: &RecordedFact) -> bool {
        let date = Date::from(fact.effective_date);
        self.from.is_none_or(|from| date >= from)
            && self.to.is_none_or(|to| date <= to)
            && (self.types.is_empty() || self.types.iter().any(|t| t.as_str() == fact.event_type))
    }
}

/// The retraction that took a fact back: who, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetractedBy {
    pub event_id: Uuid,
    pub position: u64,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    pub reason: String,
}

/// One fact of a trail.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub fact: RecordedFact,
    pub retracted_by: Option<RetractedBy>,
}

impl Entry {
    pub fn to_json(&self) -> Value {
        let f = &self.fact;
        let mut entry = json!({
            "position": f.position,
            "event_id": f.event_id,
            "type": f.event_type,
            "effective_date": f.effective_date.to_string(),
            "recorded_at": format_instant(f.recorded_at),
            "publisher": f.publisher,
            "actor": f.actor,
            "command_id": f.command_id,
            "correlation_id": f.correlation_id,
            "hash": hex::encode(&f.hash),
            "data": f.data,
        });
        if let Some(r) = &self.retracted_by {
            entry["retracted_by"] = json!({
                "event_id": r.event_id,
                "position": r.position,
                "actor": r.actor,
                "recorded_at": format_instant(r.recorded_at),
                "reason": r.reason,
            });
        }
        entry
    }
}

/// Why a trail could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no {trail} {id:?} in the ledger")]
    NotFound { trail: Trail, id: String },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stream's sequenced facts, each with its retraction if any.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub trail: Trail,
    pub id: String,
    pub entries: Vec<Entry>,
}

fn is_type(fact: &RecordedFact, fact_type: FactType) -> bool {
    fact.event_type == fact_type.as_str()
}

impl History {
    /// The trail of `<trail>-<id>`; `None` when the stream has no sequenced
    /// fact (unknown id).
    pub async fn load(store: &Store, trail: Trail, id: &str) -> Result<Option<Self>, StoreError> {
        // An id outside the ids' rule names no stream: none, without asking
        // PostgreSQL (a NUL in it would be answered as an outage).
        if tledger_events::ids::check_id(id).is_err() {
            return Ok(None);
        }
        let facts = store.recorded_facts(trail.kind(), id).await?;
        if facts.is_empty() {
            return Ok(None);
        }
        let mut retractions: HashMap<Uuid, RetractedBy> = HashMap::new();
        for fact in facts.iter().filter(|f| is_type(f, FactType::FactRetracted)) {
            let retraction = match Fact::from_data(FactType::FactRetracted, &fact.data) {
                Ok(Fact::FactRetracted(r)) => r,
                Ok(_) => corrupt(fact, "a retraction")?,
                Err(e) => corrupt(fact, &e.to_string())?,
            };
            // A fact is retracted at most once (the domain refuses a second
            // retraction); should two ever name it, the first one counts.
            retractions
                .entry(retraction.event_id)
                .or_insert_with(|| RetractedBy {
                    event_id: fact.event_id,
                    position: fact.position,
                    actor: fact.actor.clone(),
                    recorded_at: fact.recorded_at,
                    reason: retraction.reason,
                });
        }
        let entries = facts
            .into_iter()
            .map(|fact| Entry {
                retracted_by: retractions.remove(&fact.event_id),
                fact,
            })
            .collect();
        Ok(Some(Self {
            trail,
            id: id.to_owned(),
            entries,
        }))
    }

    /// `<aggregate>-<id>`.
    pub fn stream(&self) -> String {
        format!("{}-{}", self.trail, self.id)
    }

    /// The facts the filter admits, in ledger order.
    pub fn filtered<'a>(&'a self, filter: &'a HistoryFilter) -> impl Iterator<Item = &'a Entry> {
        self.entries.iter().filter(|e| filter.admits(&e.fact))
    }

    fn nomination(&self) -> Option<&RecordedFact> {
        self.entries
            .iter()
            .map(|e| &e.fact)
            .find(|f| is_type(f, FactType::TrainingNominated))
    }

    /// The person the trail is about: the official, or the one nominated.
    pub fn person(&self) -> Option<&str> {
        match self.trail {
            Trail::Official => Some(&self.id),
            Trail::Enrollment => self.nomination()?.data["official_id"].as_str(),
        }
    }

    /// Whether a unit officer whose subtree starts at `root` may read this
    /// trail (see the module doc).
    pub fn within_scope(&self, hierarchy: &UnitTree, root: &str) -> bool {
        let changes = hierarchy.change_dates();
        match self.trail {
            Trail::Enrollment => {
                let Some(nomination) = self.nomination() else {
                    return false;
                };
                let Some(unit) = nomination.data["nominating_unit_id"].as_str() else {
                    return false;
                };
                let nominated = Date::from(nomination.effective_date);
                std::iter::once(nominated)
                    .chain(changes.range(nominated..).copied())
                    .any(|date| hierarchy.within(unit, root, date))
            }
            Trail::Official => {
                // (effective date, position, unit) of each live placement.
                let placements: Vec<(Date, u64, &str)> = self
                    .entries
                    .iter()
                    .filter(|e| e.retracted_by.is_none())
                    .filter(|e| {
                        is_type(&e.fact, FactType::OfficialRegistered)
                            || is_type(&e.fact, FactType::PositionAssigned)
                    })
                    .filter_map(|e| {
                        let unit = e.fact.data["unit_id"].as_str()?;
                        Some((Date::from(e.fact.effective_date), e.fact.position, unit))
                    })
                    .collect();
                let Some(first) = placements.iter().map(|p| p.0).min() else {
                    return false;
                };
                // The person's unit and the hierarchy both stand still
                // between these dates.
                let dates: BTreeSet<Date> = placements
                    .iter()
                    .map(|p| p.0)
                    .chain(changes.range(first..).copied())
                    .collect();
                dates.into_iter().any(|date| {
                    placements
                        .iter()
                        .filter(|p| p.0 <= date)
                        .max_by_key(|p| (p.0, p.1))
                        .is_some_and(|(_, _, unit)| hierarchy.within(unit, root, date))
                })
            }
        }
    }

    /// The HTTP body.
    pub fn to_json(&self, filter: &HistoryFilter) -> Value {
        let facts: Vec<Value> = self.filtered(filter).map(Entry::to_json).collect();
        let mut body = json!({"stream": self.stream(), "facts": facts});
        body[self.trail.id_key()] = json!(self.id);
        body
    }

    /// One row per fact.
    pub fn to_csv(&self, filter: &HistoryFilter) -> String {
        let mut out = String::from(
            "position,event_id,type,effective_date,recorded_at,publisher,actor,command_id,\
             correlation_id,hash,retracted_by_event_id,retracted_by_position,retracted_by_actor,\
             retracted_by_recorded_at,retracted_by_reason,data\n",
        );
        for entry in self.filtered(filter) {
            let f = &entry.fact;
            let r = entry.retracted_by.as_ref();
            let cells = [
                json!(f.position),
                json!(f.event_id),
                json!(f.event_type),
                json!(f.effective_date.to_string()),
                json!(format_instant(f.recorded_at)),
                json!(f.publisher),
                json!(f.actor),
                json!(f.command_id),
                json!(f.correlation_id),
                json!(hex::encode(&f.hash)),
                json!(r.map(|r| r.event_id)),
                json!(r.map(|r| r.position)),
                json!(r.map(|r| &r.actor)),
                json!(r.map(|r| format_instant(r.recorded_at))),
                json!(r.map(|r| &r.reason)),
                json!(f.data.to_string()),
            ];
            let row: Vec<String> = cells.iter().map(csv::cell).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    /// For people: one line per fact, its data and retraction indented below.
    pub fn table(&self, filter: &HistoryFilter) -> String {
        let rows: Vec<&Entry> = self.filtered(filter).collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} of {} facts",
            self.stream(),
            rows.len(),
            self.entries.len()
        );
        let _ = writeln!(
            out,
            "{:>8}  {:<10}  {:<36}  {:<27}  actor / publisher",
            "position", "effective", "type", "recorded_at"
        );
        for entry in rows {
            let f = &entry.fact;
            let _ = writeln!(
                out,
                "{:>8}  {:<10}  {:<36}  {:<27}  {} / {}",
                f.position,
                f.effective_date,
                f.event_type,
                format_instant(f.recorded_at),
                f.actor,
                f.publisher
            );
            let _ = writeln!(out, "{:>10}{}", "", f.data);
            if let Some(r) = &entry.retracted_by {
                let _ = writeln!(
                    out,
                    "{:>10}retracted at position {} by {} on {}: {}",
                    "",
                    r.position,
                    r.actor,
                    format_instant(r.recorded_at),
                    r.reason
                );
            }
        }
        out
    }
}

/// A stored retraction that does not parse: the store is damaged.
fn corrupt<T>(fact: &RecordedFact, reason: &str) -> Result<T, StoreError> {
    Err(StoreError::Corrupt {
        event_id: fact.event_id,
        event_type: fact.event_type.clone(),
        reason: reason.to_owned(),
    })
}

/// What `tledger history` prints.
#[derive(Clone, Debug)]
pub struct HistoryRequest {
    pub trail: Trail,
    pub id: String,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub types: Vec<String>,
    pub format: Format,
}

/// The trail as the command line prints it, read from the database
/// directly (whoever runs it has the database; nothing is logged).
pub async fn render(store: &Store, request: &HistoryRequest) -> Result<String, HistoryError> {
    let filter = HistoryFilter::new(request.from, request.to, &request.types)?;
    let history = History::load(store, request.trail, &request.id)
        .await?
        .ok_or_else(|| HistoryError::NotFound {
            trail: request.trail,
            id: request.id.clone(),
        })?;
    Ok(match request.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&history.to_json(&filter)).unwrap_or_default()
        ),
        Format::Csv => history.to_csv(&filter),
        Format::Table => history.table(&filter),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(position: u64, event_type: &str, on: &str) -> RecordedFact {
        RecordedFact {
            position,
            event_id: Uuid::from_u128(u128::from(position)),
            version: position,
            event_type: event_type.to_owned(),
            effective_date: on.parse::<Date>().expect("date").naive(),
            recorded_at: DateTime::<Utc>::default(),
            publisher: "/commands/admin".into(),
            actor: "admin".into(),
            command_id: None,
            correlation_id: None,
            hash: vec![0xab; 32],
            data: json!({}),
        }
    }

    #[test]
    fn filters_check_the_range_and_the_type_names() {
        let date = |s: &str| s.parse::<Date>().ok();
        assert_eq!(
            HistoryFilter::new(date("2011-01-01"), date("2010-01-01"), &[]),
            Err(FilterError::Range {
                from: "2011-01-01".parse().expect("date"),
                to: "2010-01-01".parse().expect("date"),
            })
        );
        assert_eq!(
            HistoryFilter::new(None, None, &["official.rated".into()]),
            Err(FilterError::UnknownType("official.rated".into()))
        );
        let filter = HistoryFilter::new(
            date("2008-01-01"),
            date("2010-12-31"),
            &[
                "official.rated.v1, fact.retracted.v1".into(),
                "official.rated.v1".into(),
            ],
        )
        .expect("valid");
        assert_eq!(
            filter.types,
            vec![FactType::Rated, FactType::FactRetracted],
            "comma-separated, repeated, each once"
        );
        assert!(filter.admits(&fact(1, "official.rated.v1", "2008-01-01")));
        assert!(filter.admits(&fact(2, "fact.retracted.v1", "2010-12-31")));
        assert!(!filter.admits(&fact(3, "official.rated.v1", "2011-01-01")));
        assert!(!filter.admits(&fact(4, "official.left.v1", "2009-01-01")));
        assert!(HistoryFilter::default().admits(&fact(5, "official.left.v1", "1900-01-01")));
    }

    #[test]
    fn csv_rows_quote_the_data_and_carry_the_retraction() {
        let mut rated = fact(7, "official.rated.v1", "2009-12-31");
        rated.data = json!({"official_id": "o-1", "rating": "good", "year": 2009});
        let history = History {
            trail: Trail::Official,
            id: "o-1".into(),
            entries: vec![Entry {
                fact: rated,
                retracted_by: Some(RetractedBy {
                    event_id: Uuid::from_u128(9),
                    position: 9,
                    actor: "inspector, district".into(),
                    recorded_at: DateTime::<Utc>::default(),
                    reason: "wrong year".into(),
                }),
            }],
        };
        let csv = history.to_csv(&HistoryFilter::default());
        let row = csv.lines().nth(1).expect("a row");
        assert_eq!(
            row,
            format!(
                "7,{},official.rated.v1,2009-12-31,1970-01-01T00:00:00.000000Z,/commands/admin,admin,,,{},{},9,\"inspector, district\",1970-01-01T00:00:00.000000Z,wrong year,\"{{\"\"official_id\"\":\"\"o-1\"\",\"\"rating\"\":\"\"good\"\",\"\"year\"\":2009}}\"",
                Uuid::from_u128(7),
                "ab".repeat(32),
                Uuid::from_u128(9),
            )
        );
    }
}
