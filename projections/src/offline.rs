//! The reports computed in memory from the ledger's facts, without
//! PostgreSQL: what an inspector's `tledger replay … report` runs over a
//! verified export. Same figures and JSON as [`crate::reports::ReadModels`]
//! (ADR 7's cuts: a fact counts at cut C when its position is at most C and
//! no retraction at or before C takes it back).
//!
//! The state is compact so that a national ledger fits: identifiers and
//! codes are interned to `u32`, each fact keeps only what a report reads,
//! and reference data (few facts) keep their content.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tledger_events::proof::ProvedRecord;
use tledger_events::reference_data::{PositionTaxonomy, Ruleset, SpecialtyMap};
use tledger_events::unit_tree::{UnitChange, UnitTree};
use tledger_events::{
    Date, Fact, FactType, FundingSource, PositionCode, ReferenceKind, StaffCategory, Track,
};
use uuid::Uuid;

use crate::reports::{
    misassigned, outside_plan, standards_report, typed_content, AlignmentReport, InPost,
    NominatedPlace, PlanEntry, Profile, ReportError, StandardsReport, TrainingVolume,
};

/// A fact the engine cannot take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplayError {
    #[error("the fact at position {position} ({event_type}) does not parse: {reason}")]
    Corrupt {
        position: u64,
        event_type: String,
        reason: String,
    },
    #[error("the fact at position {position} comes after position {last}: facts must come in ledger order")]
    OutOfOrder { position: u64, last: u64 },
}

/// What the engine takes of one record of an export, parsed.
#[derive(Clone, Debug)]
pub struct ParsedRecord {
    recorded_at: DateTime<Utc>,
    fact: Fact,
}

/// A record's `type` and `data` parsed as the projector parses them, and
/// its `recorded_at`; independent of every other record.
pub fn parse_record(record: &ProvedRecord) -> Result<ParsedRecord, ReplayError> {
    let corrupt = |reason: String| ReplayError::Corrupt {
        position: record.position,
        event_type: record.event_type.clone(),
        reason,
    };
    let fact_type: FactType = record
        .event_type
        .parse()
        .map_err(|e| corrupt(format!("{e}")))?;
    let fact = Fact::from_data(fact_type, &record.data).map_err(|e| corrupt(e.to_string()))?;
    let recorded_at = DateTime::parse_from_rfc3339(&record.recorded_at)
        .map_err(|e| corrupt(format!("recorded_at: {e}")))?
        .with_timezone(&Utc);
    Ok(ParsedRecord { recorded_at, fact })
}

/// An interned identifier or code.
type Name = u32;

/// Strings seen once, referred to by number.
#[derive(Debug, Default)]
struct Names {
    numbers: HashMap<Box<str>, Name>,
    strings: Vec<Box<str>>,
}

impl Names {
    fn intern(&mut self, s: &str) -> Name {
        if let Some(n) = self.numbers.get(s) {
            return *n;
        }
        let n = Name::try_from(self.strings.len()).unwrap_or(Name::MAX);
        self.strings.push(s.into());
        self.numbers.insert(s.into(), n);
        n
    }

    fn find(&self, s: &str) -> Option<Name> {
        self.numbers.get(s).copied()
    }

    fn get(&self, n: Name) -> &str {
        self.strings.get(n as usize).map_or("", |s| &**s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlacementKind {
    Registered,
    Assigned,
    Left,
}

/// A registration, assignment or leaving of one person.
#[derive(Clone, Copy, Debug)]
struct Placement {
    position: u64,
    effective_date: Date,
    kind: PlacementKind,
    unit: Name,
    category: Option<StaffCategory>,
    post: Name,
}

#[derive(Clone, Copy, Debug)]
struct Qualification {
    position: u64,
    effective_date: Date,
    track: Track,
    rank: Option<u8>,
    specialty: Option<Name>,
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    position: u64,
    effective_date: Date,
    period_from: i32,
    period_to: i32,
    specialty: Option<Name>,
}

/// A training place as nominated.
#[derive(Clone, Copy, Debug)]
struct Place {
    position: u64,
    enrollment: Name,
    official: Name,
    nominating_unit: Name,
    effective_date: Date,
    track: Track,
    level: Option<Name>,
    specialty: Option<Name>,
    funding: [i128; 5],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepState {
    Enrolled,
    Completed,
    Failed,
    Withdrawn,
    Cancelled,
}

#[derive(Clone, Copy, Debug)]
struct Step {
    position: u64,
    effective_date: Date,
    state: StepState,
}

#[derive(Clone, Debug)]
struct Reference {
    position: u64,
    kind: ReferenceKind,
    name: String,
    effective_date: Date,
    content: Value,
}

const FUNDING_SOURCES: [FundingSource; 5] = [
    FundingSource::Province,
    FundingSource::District,
    FundingSource::Agency,
    FundingSource::SelfFunded,
    FundingSource::Other,
];

/// The ledger's facts as the reports need them, in memory.
#[derive(Debug, Default)]
pub struct OfflineLedger {
    names: Names,
    last_position: u64,
    /// Microseconds since the epoch each position was recorded at, by
    /// position − 1 (for `known_at`).
    recorded_at: Vec<i64>,
    /// The position of every fact a retraction may name.
    positions: HashMap<Uuid, u64>,
    /// The position a fact was first retracted at, by the fact's position.
    retracted: HashMap<u64, u64>,
    references: Vec<Reference>,
    units: Vec<UnitChange>,
    placements: HashMap<Name, Vec<Placement>>,
    qualifications: HashMap<Name, Vec<Qualification>>,
    plans: HashMap<Name, Vec<Plan>>,
    places: Vec<Place>,
    steps: HashMap<Name, Vec<Step>>,
}

impl OfflineLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last position taken.
    pub fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Takes one record of an export: its `type` and `data` parsed as the
    /// projector parses them.
    pub fn apply_record(&mut self, record: &ProvedRecord) -> Result<(), ReplayError> {
        let parsed = parse_record(record)?;
        self.apply_parsed(record.position, record.event_id, parsed)
    }

    /// Takes a record parsed by [`parse_record`] (which may run on another
    /// thread than this, in any order).
    pub fn apply_parsed(
        &mut self,
        position: u64,
        event_id: Uuid,
        parsed: ParsedRecord,
    ) -> Result<(), ReplayError> {
        self.apply(position, event_id, parsed.recorded_at, parsed.fact)
    }

    /// Takes one fact; facts come in ledger order.
    pub fn apply(
        &mut self,
        position: u64,
        event_id: Uuid,
        recorded_at: DateTime<Utc>,
        fact: Fact,
    ) -> Result<(), ReplayError> {
        if position <= self.last_position {
            return Err(ReplayError::OutOfOrder {
                position,
                last: self.last_position,
            });
        }
        self.last_position = position;
        // Positions have no gaps in a verified ledger; a gap keeps the time
        // of the fact before it so `known_at` still finds the last one.
        let micros = recorded_at.timestamp_micros();
        while (self.recorded_at.len() as u64) < position {
            self.recorded_at.push(micros);
        }
        let date = fact.effective_date();
        if !matches!(fact, Fact::FactRetracted(_)) {
            self.positions.insert(event_id, position);
        }
        let names = &mut self.names;
        match fact {
            Fact::FactRetracted(r) => {
                if let Some(target) = self.positions.get(&r.event_id) {
                    self.retracted.entry(*target).or_insert(position);
                }
            }
            Fact::ReferencePublished(r) => self.references.push(Reference {
                position,
                kind: r.kind,
                name: r.name.to_string(),
                effective_date: date,
                content: Value::Object(r.content),
            }),
            Fact::UnitRegistered(u) => self.units.push(UnitChange::registration(&u, position)),
            Fact::UnitReorganised(u) => self.units.push(UnitChange::reorganisation(&u, position)),
            Fact::OfficialRegistered(o) => {
                let placement = Placement {
                    position,
                    effective_date: date,
                    kind: PlacementKind::Registered,
                    unit: names.intern(o.unit_id.as_str()),
                    category: Some(o.staff_category),
                    post: names.intern(o.position.as_str()),
                };
                let official = names.intern(o.official_id.as_str());
                self.placements.entry(official).or_default().push(placement);
            }
            Fact::PositionAssigned(a) => {
                let placement = Placement {
                    position,
                    effective_date: date,
                    kind: PlacementKind::Assigned,
                    unit: names.intern(a.unit_id.as_str()),
                    category: Some(a.staff_category),
                    post: names.intern(a.position.as_str()),
                };
                let official = names.intern(a.official_id.as_str());
                self.placements.entry(official).or_default().push(placement);
            }
            Fact::Left(l) => {
                let placement = Placement {
                    position,
                    effective_date: date,
                    kind: PlacementKind::Left,
                    unit: Name::MAX,
                    category: None,
                    post: Name::MAX,
                };
                let official = names.intern(l.official_id.as_str());
                self.placements.entry(official).or_default().push(placement);
            }
            Fact::QualificationRecorded(q) => {
                let qualification = Qualification {
                    position,
                    effective_date: date,
                    track: q.track,
                    rank: q.track.rank(&q.level),
                    specialty: q.specialty.map(|s| names.intern(s.as_str())),
                };
                let official = names.intern(q.official_id.as_str());
                self.qualifications
                    .entry(official)
                    .or_default()
                    .push(qualification);
            }
            Fact::Planned(p) => {
                let plan = Plan {
                    position,
                    effective_date: date,
                    period_from: p.period_from.value(),
                    period_to: p.period_to.value(),
                    specialty: p.planned_specialty.map(|s| names.intern(s.as_str())),
                };
                let official = names.intern(p.official_id.as_str());
                self.plans.entry(official).or_default().push(plan);
            }
            // Ratings are in no report.
            Fact::Rated(_) => {}
            Fact::TrainingNominated(n) => {
                // Exact, as the read models' `numeric` (a recorded place may
                // hold more than i64).
                let mut funding = [0i128; 5];
                for line in &n.funding {
                    if let Some(slot) = FUNDING_SOURCES.iter().position(|s| *s == line.source) {
                        funding[slot] += i128::from(line.amount_vnd.amount());
                    }
                }
                self.places.push(Place {
                    position,
                    enrollment: names.intern(n.enrollment_id.as_str()),
                    official: names.intern(n.official_id.as_str()),
                    nominating_unit: names.intern(n.nominating_unit_id.as_str()),
                    effective_date: date,
                    track: n.program.track,
                    level: n.program.level.map(|l| names.intern(&l.to_string())),
                    specialty: n.program.specialty.map(|s| names.intern(s.as_str())),
                    funding,
                });
            }
            Fact::TrainingEnrolled(s) => self.step(
                s.enrollment_id.as_str(),
                position,
                date,
                StepState::Enrolled,
            ),
            Fact::TrainingCompleted(s) => self.step(
                s.enrollment_id.as_str(),
                position,
                date,
                StepState::Completed,
            ),
            Fact::TrainingFailed(s) => {
                self.step(s.enrollment_id.as_str(), position, date, StepState::Failed)
            }
            Fact::TrainingWithdrawn(s) => self.step(
                s.enrollment_id.as_str(),
                position,
                date,
                StepState::Withdrawn,
            ),
            Fact::TrainingCancelled(s) => self.step(
                s.enrollment_id.as_str(),
                position,
                date,
                StepState::Cancelled,
            ),
        }
        Ok(())
    }

    fn step(&mut self, enrollment: &str, position: u64, effective_date: Date, state: StepState) {
        let enrollment = self.names.intern(enrollment);
        self.steps.entry(enrollment).or_default().push(Step {
            position,
            effective_date,
            state,
        });
    }

    /// Whether the fact at `position` counts at `cut`.
    fn live(&self, position: u64, cut: u64) -> bool {
        position <= cut && self.retracted.get(&position).is_none_or(|r| *r > cut)
    }

    /// The last position recorded by `instant` (0 when none), like the
    /// server's `known_at`.
    pub fn position_known_at(&self, instant: DateTime<Utc>) -> u64 {
        let micros = instant.timestamp_micros();
        self.recorded_at
            .iter()
            .rposition(|t| *t <= micros)
            .map_or(0, |i| i as u64 + 1)
    }

    /// The unit hierarchy as known at `cut`.
    pub fn unit_tree(&self, cut: u64) -> UnitTree {
        UnitTree::new(
            self.units
                .iter()
                .filter(|u| self.live(u.position, cut))
                .cloned(),
        )
    }

    /// The units a report on `unit` covers on `date`: `None` for the whole
    /// country; an unknown unit is refused as the server refuses it.
    fn scope(
        &self,
        unit: Option<&str>,
        date: Date,
        cut: u64,
    ) -> Result<Option<HashSet<Name>>, ReportError> {
        let Some(unit) = unit else {
            return Ok(None);
        };
        let hierarchy = self.unit_tree(cut);
        if !hierarchy.contains(unit) {
            return Err(ReportError::UnknownUnit(unit.to_owned()));
        }
        Ok(Some(
            hierarchy
                .subtree_on(unit, date)
                .iter()
                .filter_map(|u| self.names.find(u))
                .collect(),
        ))
    }

    fn typed<T: serde::de::DeserializeOwned>(
        &self,
        kind: ReferenceKind,
        label: &'static str,
        date: Date,
        cut: u64,
    ) -> Result<(String, T), ReportError> {
        // The latest effective date by then; a tie to the later fact.
        let found = self
            .references
            .iter()
            .filter(|r| r.kind == kind && r.effective_date <= date && self.live(r.position, cut))
            .max_by_key(|r| (r.effective_date, r.position))
            .map(|r| (r.name.clone(), r.content.clone()));
        typed_content(found, label, date)
    }

    /// `training-volume`: every place enrolled (effective) in [from, to],
    /// whatever its outcome, counted for the unit that nominated it, the
    /// hierarchy as of `to`.
    pub fn training_volume(
        &self,
        unit: Option<&str>,
        from: Date,
        to: Date,
        cut: u64,
    ) -> Result<TrainingVolume, ReportError> {
        let units = self.scope(unit, to, cut)?;
        // Counted by interned level first: one string per level, not per place.
        let mut counted: HashMap<(Track, Option<Name>), u64> = HashMap::new();
        let mut funding: BTreeMap<FundingSource, i128> = BTreeMap::new();
        for place in &self.places {
            if !self.live(place.position, cut)
                || units
                    .as_ref()
                    .is_some_and(|u| !u.contains(&place.nominating_unit))
            {
                continue;
            }
            let enrolled_in_window = self.steps.get(&place.enrollment).is_some_and(|steps| {
                steps.iter().any(|s| {
                    s.state == StepState::Enrolled
                        && from <= s.effective_date
                        && s.effective_date <= to
                        && self.live(s.position, cut)
                })
            });
            if !enrolled_in_window {
                continue;
            }
            *counted.entry((place.track, place.level)).or_insert(0) += 1;
            for (source, amount) in FUNDING_SOURCES.iter().zip(place.funding) {
                // i128 holds 2^74 places of 2^53 đồng: no saturation.
                *funding.entry(*source).or_insert(0) += amount;
            }
        }
        let mut places: BTreeMap<(Track, String), u64> = BTreeMap::new();
        for ((track, level), n) in counted {
            let level = level.map_or_else(String::new, |l| self.names.get(l).to_owned());
            *places.entry((track, level)).or_insert(0) += n;
        }
        Ok(TrainingVolume {
            unit_id: unit.map(str::to_owned),
            from,
            to,
            position: cut,
            places,
            funding,
        })
    }

    /// Cadres and civil servants in post on `as_of`, within `units` (all
    /// when `None`), with their interned ids: the latest placement effective
    /// by then (a tie to the later fact) that is not a leaving.
    fn in_post(&self, units: Option<&HashSet<Name>>, as_of: Date, cut: u64) -> Vec<(Name, InPost)> {
        let mut people = Vec::new();
        for (official, placements) in &self.placements {
            let latest = placements
                .iter()
                .filter(|p| p.effective_date <= as_of && self.live(p.position, cut))
                .max_by_key(|p| (p.effective_date, p.position));
            let Some(p) = latest else { continue };
            let Some(category) = p.category else { continue };
            if p.kind == PlacementKind::Left
                || !matches!(category, StaffCategory::Cadre | StaffCategory::CivilServant)
                || units.is_some_and(|u| !u.contains(&p.unit))
            {
                continue;
            }
            let Ok(post) = PositionCode::parse(self.names.get(p.post)) else {
                continue;
            };
            people.push((
                *official,
                InPost {
                    official_id: self.names.get(*official).to_owned(),
                    category,
                    post,
                },
            ));
        }
        people
    }

    /// `official`'s highest rank in `track` effective by `as_of`.
    fn rank(&self, official: Name, track: Track, as_of: Date, cut: u64) -> Option<u8> {
        self.qualifications
            .get(&official)?
            .iter()
            .filter(|q| q.track == track && q.effective_date <= as_of && self.live(q.position, cut))
            .filter_map(|q| q.rank)
            .max()
    }

    /// `standards`: the ruleset in force on `as_of` applied to the cadres
    /// and civil servants in post on that date.
    pub fn standards(
        &self,
        unit: Option<&str>,
        as_of: Date,
        cut: u64,
    ) -> Result<StandardsReport, ReportError> {
        let units = self.scope(unit, as_of, cut)?;
        let ruleset: (String, Ruleset) =
            self.typed(ReferenceKind::Ruleset, "standards ruleset", as_of, cut)?;
        let (_, taxonomy): (String, PositionTaxonomy) = self.typed(
            ReferenceKind::PositionTaxonomy,
            "position taxonomy",
            as_of,
            cut,
        )?;
        // One profile per person: the database groups people by profile,
        // the figures are the same.
        let profiles: Vec<Profile> = self
            .in_post(units.as_ref(), as_of, cut)
            .into_iter()
            .map(|(official, person)| Profile {
                category: person.category,
                ranks: Track::ALL
                    .iter()
                    .filter_map(|t| Some((*t, self.rank(official, *t, as_of, cut)?)))
                    .collect(),
                post: person.post,
                people: 1,
            })
            .collect();
        Ok(standards_report(
            unit, as_of, cut, ruleset, &taxonomy, &profiles,
        ))
    }

    /// `alignment`: professional-track places outside the plan, and people
    /// in civil-servant posts without an accepted specialty.
    pub fn alignment(
        &self,
        unit: Option<&str>,
        as_of: Date,
        cut: u64,
    ) -> Result<AlignmentReport, ReportError> {
        let units = self.scope(unit, as_of, cut)?;
        let (_, specialties): (String, SpecialtyMap) = self.typed(
            ReferenceKind::SpecialtyMap,
            "post-specialty map",
            as_of,
            cut,
        )?;
        let name = |n: Name| self.names.get(n).to_owned();
        // Places nominated by as_of, not cancelled by then.
        let places: Vec<NominatedPlace> = self
            .places
            .iter()
            .filter(|p| {
                p.track == Track::Professional
                    && p.effective_date <= as_of
                    && self.live(p.position, cut)
                    && units
                        .as_ref()
                        .is_none_or(|u| u.contains(&p.nominating_unit))
                    && !self.steps.get(&p.enrollment).is_some_and(|steps| {
                        steps.iter().any(|s| {
                            s.state == StepState::Cancelled
                                && s.effective_date <= as_of
                                && self.live(s.position, cut)
                        })
                    })
            })
            .map(|p| NominatedPlace {
                enrollment_id: name(p.enrollment),
                official_id: name(p.official),
                specialty: p.specialty.map(name),
                year: p.effective_date.year(),
            })
            .collect();
        let mut plans_by_person: HashMap<String, Vec<PlanEntry>> = HashMap::new();
        for (official, plans) in &self.plans {
            let mut live: Vec<&Plan> = plans
                .iter()
                .filter(|p| p.effective_date <= as_of && self.live(p.position, cut))
                .collect();
            if live.is_empty() {
                continue;
            }
            // "The latest covering plan" is the last in this order.
            live.sort_by_key(|p| (p.effective_date, p.position));
            plans_by_person.insert(
                name(*official),
                live.iter()
                    .map(|p| (p.period_from, p.period_to, p.specialty.map(name)))
                    .collect(),
            );
        }
        let outside = outside_plan(&places, &plans_by_person);

        let people: Vec<(Name, InPost)> = self
            .in_post(units.as_ref(), as_of, cut)
            .into_iter()
            .filter(|(_, p)| p.category == StaffCategory::CivilServant)
            .collect();
        // Each person's professional qualifications at their highest rank
        // (above 0), the latest effective (then the later fact) last.
        let mut highest: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for (official, person) in &people {
            let Some(qs) = self.qualifications.get(official) else {
                continue;
            };
            let held: Vec<_> = qs
                .iter()
                .filter(|q| {
                    q.track == Track::Professional
                        && q.effective_date <= as_of
                        && q.rank.is_some_and(|r| r > 0)
                        && self.live(q.position, cut)
                })
                .collect();
            let Some(top) = held.iter().filter_map(|q| q.rank).max() else {
                continue;
            };
            let mut diplomas: Vec<_> = held.into_iter().filter(|q| q.rank == Some(top)).collect();
            diplomas.sort_by_key(|q| (q.effective_date, q.position));
            highest.insert(
                person.official_id.clone(),
                diplomas.iter().map(|q| q.specialty.map(name)).collect(),
            );
        }
        let civil_servants: Vec<InPost> = people.into_iter().map(|(_, p)| p).collect();
        let misassigned = misassigned(&civil_servants, &highest, &specialties);
        Ok(AlignmentReport {
            unit_id: unit.map(str::to_owned),
            as_of,
            position: cut,
            training_outside_plan: outside,
            misassigned,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fact(fact_type: &str, data: Value) -> Fact {
        let fact_type: FactType = fact_type.parse().expect("a fact type");
        Fact::from_data(fact_type, &data).expect("a fact")
    }

    fn at(second: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-01-01T00:00:{second:02}Z"))
            .expect("an instant")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> Date {
        s.parse().expect("a date")
    }

    /// A commune, a place enrolled in 2009 and its enrolment retracted at
    /// position 5.
    fn ledger() -> (OfflineLedger, Uuid) {
        let enrolled = Uuid::from_u128(4);
        let facts = [
            fact(
                "unit.registered.v1",
                json!({"unit_id": "dai-an", "name": "Đại An", "level": "commune", "effective_date": "1997-01-01"}),
            ),
            fact(
                "official.registered.v1",
                json!({"official_id": "o-1", "full_name": "Nguyễn Văn A", "birth_year": 1970, "gender": "male", "ethnic_minority": false, "unit_id": "dai-an", "staff_category": "cadre", "position": "committee_chair", "effective_date": "2005-01-01"}),
            ),
            fact(
                "training.nominated.v1",
                json!({"enrollment_id": "e-1", "official_id": "o-1", "nominating_unit_id": "dai-an",
                "program": {"track": "refresher", "title": "Bồi dưỡng"},
                "institution": {"institution_id": "qn-school", "name": "Trường", "in_province": true},
                "planned_start": "2009-02-01", "planned_end": "2009-03-01",
                "funding": [{"source": "district", "amount_vnd": 1000000}], "effective_date": "2009-01-15"}),
            ),
            fact(
                "training.enrolled.v1",
                json!({"enrollment_id": "e-1", "effective_date": "2009-02-01"}),
            ),
            fact(
                "fact.retracted.v1",
                json!({"event_id": enrolled, "reason": "a mistake", "effective_date": "2009-03-01"}),
            ),
        ];
        let mut ledger = OfflineLedger::new();
        for (i, f) in facts.into_iter().enumerate() {
            let position = i as u64 + 1;
            ledger
                .apply(
                    position,
                    Uuid::from_u128(u128::from(position)),
                    at(i as u32 * 10),
                    f,
                )
                .expect("in order");
        }
        (ledger, enrolled)
    }

    #[test]
    fn a_retracted_fact_counts_before_the_retraction_and_not_from_it_on() {
        let (ledger, _) = ledger();
        let total = |cut| {
            ledger
                .training_volume(Some("dai-an"), date("2009-01-01"), date("2009-12-31"), cut)
                .expect("a volume")
                .total()
        };
        assert_eq!((total(3), total(4), total(5)), (0, 1, 0));
        let funding = ledger
            .training_volume(None, date("2009-01-01"), date("2009-12-31"), 4)
            .expect("a volume")
            .funding;
        assert_eq!(funding.get(&FundingSource::District), Some(&1_000_000));
    }

    #[test]
    fn known_at_is_the_last_position_recorded_by_then() {
        let (ledger, _) = ledger();
        assert_eq!(
            ledger.position_known_at(at(0) - chrono::Duration::seconds(1)),
            0
        );
        assert_eq!(ledger.position_known_at(at(0)), 1);
        assert_eq!(ledger.position_known_at(at(35)), 4);
        assert_eq!(ledger.position_known_at(at(59)), 5);
    }

    #[test]
    fn facts_out_of_order_and_unknown_units_are_refused() {
        let (mut ledger, _) = ledger();
        let again = fact(
            "training.enrolled.v1",
            json!({"enrollment_id": "e-1", "effective_date": "2009-02-01"}),
        );
        assert_eq!(
            ledger.apply(5, Uuid::from_u128(99), at(59), again),
            Err(ReplayError::OutOfOrder {
                position: 5,
                last: 5
            })
        );
        let refused = ledger.standards(Some("nowhere"), date("2009-12-31"), 5);
        assert!(matches!(refused, Err(ReportError::UnknownUnit(u)) if u == "nowhere"));
        // No ruleset was ever published.
        let refused = ledger.standards(None, date("2009-12-31"), 5);
        assert_eq!(
            refused.map_err(|e| e.to_string()).err().as_deref(),
            Some("no standards ruleset is in force on 2009-12-31")
        );
    }
}
