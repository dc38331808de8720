//! An independent reference fold of the three reports (docs/contract.md
//! "Reports"), computed naively from a list of ledger facts.
//!
//! Tests compare what the service reports with what this fold computes from
//! the same facts. It is written to be obviously right rather than fast: it
//! imports nothing from the domain or projections crates (only the fact
//! types of `tledger-events` and std), re-reads every fact for each question
//! and keeps no state between calls, so a bug in the service's projections
//! cannot hide behind the same bug here.
//!
//! "As known at `cut`": only facts with `position <= cut` exist, and a fact
//! named by a `fact.retracted.v1` at a position `<= cut` is ignored. "On a
//! date" (valid time): only facts with `effective_date <=` that date count,
//! and among facts of the same kind the latest `effective_date` wins, a tie
//! going to the higher position.
//!
//! Where the contract is silent the choices are (and the demo district
//! avoids depending on them):
//! - a plan entry without `planned_specialty` covers training in any
//!   specialty; when several plan entries cover the nomination year, the
//!   place is aligned if any of them plans its specialty, and otherwise the
//!   latest covering entry is reported;
//! - a professional record at level `none` is "untrained"; a professional
//!   qualification without a specialty is not accepted for any post; a
//!   post the specialty map says nothing about accepts anything; when
//!   several qualifications share the highest level, one accepted specialty
//!   is enough, and otherwise the latest one is reported;
//! - a nomination is "cancelled" when its live `training.cancelled` is
//!   effective by the report's date;
//! - the standards population is every cadre and civil servant in post; one
//!   whom no requirement of the ruleset matches does not meet the standards.

use std::collections::{BTreeMap, HashMap, HashSet};

use tledger_events::facts::{
    OfficialRegistered, Planned, PositionAssigned, QualificationRecorded, TrainingNominated,
};
use tledger_events::reference_data::{PositionTaxonomy, ReferenceContent, Ruleset, SpecialtyMap};
use tledger_events::{Date, Fact, FundingSource, ReferenceKind, StaffCategory, Track};
use uuid::Uuid;

/// One fact as the ledger recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerFact {
    pub position: u64,
    pub event_id: Uuid,
    pub stream: String,
    pub fact: Fact,
}

/// The training-volume report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub total: u64,
    pub professional_intermediate_plus: u64,
    pub political_theory_intermediate_plus: u64,
    pub refresher: u64,
    /// Track code → (places, level code → places). Every track is listed;
    /// ordered tracks list every level (0 when none), `it` and
    /// `foreign_language` the levels seen, `refresher` none.
    pub by_track: BTreeMap<String, (u64, BTreeMap<String, u64>)>,
    /// Funding source code → đồng, every source listed.
    pub funding: BTreeMap<String, i64>,
}

/// The standards report: each figure as (count, of).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standards {
    /// The name of the ruleset applied.
    pub ruleset: String,
    pub population: u64,
    pub meets_all: (u64, u64),
    pub professional_college_plus: (u64, u64),
    pub key_leaders_college_plus: (u64, u64),
    pub political_theory_intermediate_plus: (u64, u64),
}

/// A professional training place outside the plan: (enrollment_id,
/// official_id, program_specialty, planned_specialty, reason), reason
/// `not_in_plan` or `other_specialty`.
pub type OutsidePlan = (String, String, Option<String>, Option<String>, String);

/// A person in a civil-servant post outside their specialty: (official_id,
/// post, specialty, reason), reason `other_specialty` or `untrained`.
pub type Misassigned = (String, String, Option<String>, String);

/// The alignment report, each list sorted by its first member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alignment {
    pub training_outside_plan: Vec<OutsidePlan>,
    pub misassigned: Vec<Misassigned>,
}

/// The facts as known at `cut`: recorded by then and not retracted by then,
/// retractions themselves left out, in position order.
fn known(facts: &[LedgerFact], cut: u64) -> Vec<&LedgerFact> {
    let retracted: HashSet<Uuid> = facts
        .iter()
        .filter(|f| f.position <= cut)
        .filter_map(|f| match &f.fact {
            Fact::FactRetracted(r) => Some(r.event_id),
            _ => None,
        })
        .collect();
    let mut live: Vec<&LedgerFact> = facts
        .iter()
        .filter(|f| f.position <= cut)
        .filter(|f| !retracted.contains(&f.event_id))
        .filter(|f| !matches!(f.fact, Fact::FactRetracted(_)))
        .collect();
    live.sort_by_key(|f| f.position);
    live
}

/// The cut "as known at" an instant: the last position recorded by then, 0
/// when nothing was. `recorded` pairs each position with its `recorded_at`
/// (any type that orders like time), in any order.
pub fn cut_known_at<T: PartialOrd>(recorded: &[(u64, T)], at: &T) -> u64 {
    recorded
        .iter()
        .filter(|(_, t)| t <= at)
        .map(|(p, _)| *p)
        .max()
        .unwrap_or(0)
}

/// Whether `unit` has a registration known and not retracted at `cut` (a
/// report on a unit the ledger does not know at its cut is refused).
pub fn unit_registered(facts: &[LedgerFact], cut: u64, unit: &str) -> bool {
    known(facts, cut)
        .iter()
        .any(|f| matches!(&f.fact, Fact::UnitRegistered(u) if u.unit_id.as_str() == unit))
}

/// The unit hierarchy as it stood on one date.
struct Hierarchy {
    parent: HashMap<String, String>,
    dissolved_into: HashMap<String, String>,
}

impl Hierarchy {
    /// Parents from the registrations, then every reorganisation effective
    /// by `on`, applied in valid-time order (ties: position order).
    fn on(live: &[&LedgerFact], on: Date) -> Self {
        let mut parent = HashMap::new();
        let mut dissolved_into = HashMap::new();
        for f in live {
            if let Fact::UnitRegistered(u) = &f.fact {
                if let Some(p) = &u.parent_id {
                    parent
                        .entry(u.unit_id.to_string())
                        .or_insert_with(|| p.to_string());
                }
            }
        }
        let mut changes: Vec<(Date, u64, &tledger_events::facts::UnitReorganised)> = live
            .iter()
            .filter_map(|f| match &f.fact {
                Fact::UnitReorganised(r) if r.effective_date <= on => {
                    Some((r.effective_date, f.position, r))
                }
                _ => None,
            })
            .collect();
        changes.sort_by_key(|(d, p, _)| (*d, *p));
        for (_, _, r) in changes {
            if let Some(p) = &r.parent_id {
                parent.insert(r.unit_id.to_string(), p.to_string());
            }
            if let Some(into) = &r.dissolved_into {
                dissolved_into.insert(r.unit_id.to_string(), into.to_string());
            }
        }
        Self {
            parent,
            dissolved_into,
        }
    }

    /// Whether `unit` counts under `root` (`None`: the whole country): it is
    /// `root`, or a unit it was dissolved into or a parent is, transitively.
    fn under(&self, unit: &str, root: Option<&str>) -> bool {
        let Some(root) = root else {
            return true;
        };
        let mut current = unit.to_owned();
        // A cycle cannot be recorded (the ledger refuses it); the bound only
        // keeps a corrupt history from looping for ever.
        for _ in 0..=self.parent.len() + self.dissolved_into.len() {
            if current == root {
                return true;
            }
            let next = self
                .dissolved_into
                .get(&current)
                .or_else(|| self.parent.get(&current));
            match next {
                Some(next) => current = next.clone(),
                None => return false,
            }
        }
        false
    }
}

/// The reference data of `kind` in force on `date`: the latest effective
/// date on or before it, the higher position winning a tie; with its name.
fn in_force(
    live: &[&LedgerFact],
    kind: ReferenceKind,
    date: Date,
) -> Option<(String, ReferenceContent)> {
    live.iter()
        .filter_map(|f| match &f.fact {
            Fact::ReferencePublished(r) if r.kind == kind && r.effective_date <= date => {
                Some((r.effective_date, f.position, r))
            }
            _ => None,
        })
        .max_by_key(|(d, p, _)| (*d, *p))
        .and_then(|(_, _, r)| {
            ReferenceContent::parse(r.kind, &r.content)
                .ok()
                .map(|c| (r.name.to_string(), c))
        })
}

fn ruleset_on(live: &[&LedgerFact], date: Date) -> Option<(String, Ruleset)> {
    match in_force(live, ReferenceKind::Ruleset, date)? {
        (name, ReferenceContent::Ruleset(r)) => Some((name, r)),
        _ => None,
    }
}

fn taxonomy_on(live: &[&LedgerFact], date: Date) -> Option<PositionTaxonomy> {
    match in_force(live, ReferenceKind::PositionTaxonomy, date)? {
        (_, ReferenceContent::PositionTaxonomy(t)) => Some(t),
        _ => None,
    }
}

fn specialty_map_on(live: &[&LedgerFact], date: Date) -> Option<SpecialtyMap> {
    match in_force(live, ReferenceKind::SpecialtyMap, date)? {
        (_, ReferenceContent::SpecialtyMap(m)) => Some(m),
        _ => None,
    }
}

/// The rank of `level` in `track`, as a number to compare.
fn rank(track: Track, level: &tledger_events::Level) -> Option<u8> {
    track.rank(level)
}

/// One training place: its live steps.
#[derive(Default)]
struct Place<'a> {
    nominated: Option<&'a TrainingNominated>,
    enrolled: Option<Date>,
    cancelled: Option<Date>,
}

fn places<'a>(live: &[&'a LedgerFact]) -> BTreeMap<String, Place<'a>> {
    let mut places: BTreeMap<String, Place<'a>> = BTreeMap::new();
    for f in live {
        match &f.fact {
            Fact::TrainingNominated(n) => {
                places
                    .entry(n.enrollment_id.to_string())
                    .or_default()
                    .nominated = Some(n);
            }
            // Live steps are in position order, so the last live one stands
            // (an earlier one would have been retracted first).
            Fact::TrainingEnrolled(e) => {
                places
                    .entry(e.enrollment_id.to_string())
                    .or_default()
                    .enrolled = Some(e.effective_date);
            }
            Fact::TrainingCancelled(c) => {
                places
                    .entry(c.enrollment_id.to_string())
                    .or_default()
                    .cancelled = Some(c.effective_date);
            }
            _ => {}
        }
    }
    places
}

/// Training volume: every place whose live `training.enrolled` is effective
/// in `[from, to]`, whatever its outcome, counted for its nominating unit
/// when that unit is under `unit` as the hierarchy stood on `to`.
pub fn training_volume(
    facts: &[LedgerFact],
    cut: u64,
    unit: Option<&str>,
    from: Date,
    to: Date,
) -> Volume {
    let live = known(facts, cut);
    let hierarchy = Hierarchy::on(&live, to);
    let mut volume = Volume::default();
    for track in Track::ALL {
        let levels = track
            .ordered_levels()
            .unwrap_or(&[])
            .iter()
            .map(|(code, _)| ((*code).to_owned(), 0))
            .collect();
        volume
            .by_track
            .insert(track.as_str().to_owned(), (0, levels));
    }
    for source in FundingSource::ALL {
        volume.funding.insert(source.as_str().to_owned(), 0);
    }
    for place in places(&live).values() {
        let (Some(n), Some(enrolled)) = (place.nominated, place.enrolled) else {
            continue;
        };
        if enrolled < from || enrolled > to {
            continue;
        }
        if !hierarchy.under(n.nominating_unit_id.as_str(), unit) {
            continue;
        }
        let track = n.program.track;
        volume.total += 1;
        let entry = volume
            .by_track
            .entry(track.as_str().to_owned())
            .or_default();
        entry.0 += 1;
        if let Some(level) = &n.program.level {
            if track != Track::Refresher {
                *entry.1.entry(level.as_str().to_owned()).or_default() += 1;
            }
        }
        let level_rank = n.program.level.as_ref().and_then(|l| rank(track, l));
        match track {
            Track::Professional if level_rank >= Some(2) => {
                volume.professional_intermediate_plus += 1;
            }
            Track::PoliticalTheory if level_rank >= Some(2) => {
                volume.political_theory_intermediate_plus += 1;
            }
            Track::Refresher => volume.refresher += 1,
            _ => {}
        }
        for line in &n.funding {
            *volume
                .funding
                .entry(line.source.as_str().to_owned())
                .or_default() += line.amount_vnd.amount();
        }
    }
    volume
}

/// Everything the reports need to know about one official.
#[derive(Default)]
struct Person<'a> {
    registration: Option<(u64, &'a OfficialRegistered)>,
    assignments: Vec<(u64, &'a PositionAssigned)>,
    leavings: Vec<(u64, Date)>,
    qualifications: Vec<(u64, &'a QualificationRecorded)>,
    plans: Vec<(u64, &'a Planned)>,
}

/// Where a person sits on a date.
struct Seat<'a> {
    unit: &'a str,
    category: StaffCategory,
    position: &'a str,
}

impl<'a> Person<'a> {
    /// In post on `date`: the latest of registration, assignments and
    /// leavings effective by then is not a leaving (ties: higher position).
    fn in_post_on(&self, date: Date) -> bool {
        let mut changes: Vec<(Date, u64, bool)> = Vec::new();
        if let Some((p, r)) = self.registration {
            changes.push((r.effective_date, p, true));
        }
        changes.extend(
            self.assignments
                .iter()
                .map(|(p, a)| (a.effective_date, *p, true)),
        );
        changes.extend(self.leavings.iter().map(|(p, d)| (*d, *p, false)));
        changes
            .into_iter()
            .filter(|(d, _, _)| *d <= date)
            .max_by_key(|(d, p, _)| (*d, *p))
            .is_some_and(|(_, _, in_post)| in_post)
    }

    /// Unit, category and position from the latest registration or
    /// assignment effective by `date`.
    fn seat_on(&self, date: Date) -> Option<Seat<'a>> {
        let mut seats: Vec<(Date, u64, Seat<'a>)> = Vec::new();
        if let Some((p, r)) = self.registration {
            seats.push((
                r.effective_date,
                p,
                Seat {
                    unit: r.unit_id.as_str(),
                    category: r.staff_category,
                    position: r.position.as_str(),
                },
            ));
        }
        for (p, a) in &self.assignments {
            seats.push((
                a.effective_date,
                *p,
                Seat {
                    unit: a.unit_id.as_str(),
                    category: a.staff_category,
                    position: a.position.as_str(),
                },
            ));
        }
        seats
            .into_iter()
            .filter(|(d, _, _)| *d <= date)
            .max_by_key(|(d, p, _)| (*d, *p))
            .map(|(_, _, seat)| seat)
    }

    /// The highest rank recorded in `track` effective by `date`.
    fn rank_on(&self, track: Track, date: Date) -> Option<u8> {
        self.qualifications
            .iter()
            .filter(|(_, q)| q.track == track && q.effective_date <= date)
            .filter_map(|(_, q)| rank(track, &q.level))
            .max()
    }
}

fn people<'a>(live: &[&'a LedgerFact]) -> BTreeMap<String, Person<'a>> {
    let mut people: BTreeMap<String, Person<'a>> = BTreeMap::new();
    for f in live {
        let p = f.position;
        match &f.fact {
            Fact::OfficialRegistered(r) => {
                let person = people.entry(r.official_id.to_string()).or_default();
                if person.registration.is_none() {
                    person.registration = Some((p, r));
                }
            }
            Fact::PositionAssigned(a) => people
                .entry(a.official_id.to_string())
                .or_default()
                .assignments
                .push((p, a)),
            Fact::Left(l) => people
                .entry(l.official_id.to_string())
                .or_default()
                .leavings
                .push((p, l.effective_date)),
            Fact::QualificationRecorded(q) => people
                .entry(q.official_id.to_string())
                .or_default()
                .qualifications
                .push((p, q)),
            Fact::Planned(plan) => people
                .entry(plan.official_id.to_string())
                .or_default()
                .plans
                .push((p, plan)),
            _ => {}
        }
    }
    people
}

/// The standards report as of `as_of`; `None` when no ruleset or no
/// position taxonomy is in force (the contract refuses such a report: no
/// reference data in force).
pub fn standards(
    facts: &[LedgerFact],
    cut: u64,
    unit: Option<&str>,
    as_of: Date,
) -> Option<Standards> {
    let live = known(facts, cut);
    let (name, ruleset) = ruleset_on(&live, as_of)?;
    let taxonomy = taxonomy_on(&live, as_of)?;
    let hierarchy = Hierarchy::on(&live, as_of);
    let mut report = Standards {
        ruleset: name,
        population: 0,
        meets_all: (0, 0),
        professional_college_plus: (0, 0),
        key_leaders_college_plus: (0, 0),
        political_theory_intermediate_plus: (0, 0),
    };
    for person in people(&live).values() {
        if !person.in_post_on(as_of) {
            continue;
        }
        let Some(seat) = person.seat_on(as_of) else {
            continue;
        };
        if !matches!(
            seat.category,
            StaffCategory::Cadre | StaffCategory::CivilServant
        ) {
            continue;
        }
        if !hierarchy.under(seat.unit, unit) {
            continue;
        }
        let key_leader = taxonomy
            .positions()
            .iter()
            .any(|def| def.code.as_str() == seat.position && def.key_leader);
        // The first requirement that matches the category and key-leader
        // flag applies (as the ruleset's format says).
        let requirement = ruleset.requirements.iter().find(|r| {
            r.staff_category == seat.category && r.key_leader.is_none_or(|k| k == key_leader)
        });
        let exempt = |track: Track| {
            requirement.is_some_and(|r| {
                r.exemptions
                    .get(&track)
                    .is_some_and(|ps| ps.iter().any(|p| p.as_str() == seat.position))
            })
        };
        let meets = requirement.is_some_and(|r| {
            r.minimums.iter().all(|(track, minimum)| {
                exempt(*track)
                    || match (person.rank_on(*track, as_of), rank(*track, minimum)) {
                        (Some(reached), Some(needed)) => reached >= needed,
                        _ => false,
                    }
            })
        });
        let college_plus = person.rank_on(Track::Professional, as_of) >= Some(3);
        let political_applies = requirement
            .is_some_and(|r| r.minimums.contains_key(&Track::PoliticalTheory))
            && !exempt(Track::PoliticalTheory);

        report.population += 1;
        report.meets_all.1 += 1;
        report.professional_college_plus.1 += 1;
        report.meets_all.0 += u64::from(meets);
        report.professional_college_plus.0 += u64::from(college_plus);
        if key_leader {
            report.key_leaders_college_plus.1 += 1;
            report.key_leaders_college_plus.0 += u64::from(college_plus);
        }
        if political_applies {
            report.political_theory_intermediate_plus.1 += 1;
            report.political_theory_intermediate_plus.0 +=
                u64::from(person.rank_on(Track::PoliticalTheory, as_of) >= Some(2));
        }
    }
    Some(report)
}

/// The alignment report as of `as_of`; `None` when no post → specialty map
/// is in force (the contract refuses such a report: no reference data in
/// force).
pub fn alignment(
    facts: &[LedgerFact],
    cut: u64,
    unit: Option<&str>,
    as_of: Date,
) -> Option<Alignment> {
    let live = known(facts, cut);
    let map = specialty_map_on(&live, as_of)?;
    let hierarchy = Hierarchy::on(&live, as_of);
    let people = people(&live);
    let mut report = Alignment::default();

    for (enrollment_id, place) in places(&live) {
        let Some(n) = place.nominated else { continue };
        if n.program.track != Track::Professional || n.effective_date > as_of {
            continue;
        }
        if place.cancelled.is_some_and(|d| d <= as_of) {
            continue;
        }
        if !hierarchy.under(n.nominating_unit_id.as_str(), unit) {
            continue;
        }
        let year = n.effective_date.year();
        let program_specialty = n.program.specialty.as_ref().map(|s| s.to_string());
        let mut covering: Vec<(Date, u64, Option<String>)> = people
            .get(n.official_id.as_str())
            .map(|person| {
                person
                    .plans
                    .iter()
                    .filter(|(_, plan)| plan.effective_date <= as_of)
                    .filter(|(_, plan)| {
                        plan.period_from.value() <= year && year <= plan.period_to.value()
                    })
                    .map(|(p, plan)| {
                        (
                            plan.effective_date,
                            *p,
                            plan.planned_specialty.as_ref().map(|s| s.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        covering.sort_by_key(|(d, p, _)| (*d, *p));
        let row = match covering.last() {
            None => Some((None, "not_in_plan")),
            Some((_, _, latest)) => {
                let aligned = covering
                    .iter()
                    .any(|(_, _, planned)| planned.is_none() || *planned == program_specialty);
                (!aligned).then(|| (latest.clone(), "other_specialty"))
            }
        };
        if let Some((planned, reason)) = row {
            report.training_outside_plan.push((
                enrollment_id,
                n.official_id.to_string(),
                program_specialty,
                planned,
                reason.to_owned(),
            ));
        }
    }

    for (official_id, person) in &people {
        if !person.in_post_on(as_of) {
            continue;
        }
        let Some(seat) = person.seat_on(as_of) else {
            continue;
        };
        if seat.category != StaffCategory::CivilServant || !hierarchy.under(seat.unit, unit) {
            continue;
        }
        let professional: Vec<(Date, u64, u8, Option<String>)> = person
            .qualifications
            .iter()
            .filter(|(_, q)| q.track == Track::Professional && q.effective_date <= as_of)
            .filter_map(|(p, q)| {
                rank(Track::Professional, &q.level).map(|r| {
                    (
                        q.effective_date,
                        *p,
                        r,
                        q.specialty.as_ref().map(|s| s.to_string()),
                    )
                })
            })
            .collect();
        let highest = professional.iter().map(|(_, _, r, _)| *r).max();
        let row = match highest {
            // No record, or only a record of no professional training.
            None | Some(0) => Some((None, "untrained")),
            Some(top) => {
                let accepted_list = map
                    .posts
                    .iter()
                    .find(|(post, _)| post.as_str() == seat.position)
                    .map(|(_, list)| list);
                match accepted_list {
                    // Without a map entry for the post nothing is required.
                    None => None,
                    Some(list) => {
                        let mut best: Vec<&(Date, u64, u8, Option<String>)> =
                            professional.iter().filter(|q| q.2 == top).collect();
                        best.sort_by_key(|q| (q.0, q.1));
                        let accepted = best.iter().any(|q| {
                            q.3.as_ref()
                                .is_some_and(|s| list.iter().any(|a| a.as_str() == s))
                        });
                        (!accepted)
                            .then(|| (best.last().and_then(|q| q.3.clone()), "other_specialty"))
                    }
                }
            }
        };
        if let Some((specialty, reason)) = row {
            report.misassigned.push((
                official_id.clone(),
                seat.position.to_owned(),
                specialty,
                reason.to_owned(),
            ));
        }
    }
    report.training_outside_plan.sort();
    report.misassigned.sort();
    Some(report)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use tledger_events::{reference_data, FactType};

    use super::*;

    fn date(s: &str) -> Date {
        s.parse().expect("a date")
    }

    /// A tiny ledger built fact by fact: positions from 1, event ids from
    /// the position, the shipped reference data first.
    #[derive(Default)]
    struct History {
        facts: Vec<LedgerFact>,
    }

    impl History {
        fn new() -> Self {
            let mut h = Self::default();
            for (published, _) in reference_data::shipped().expect("shipped reference data") {
                h.push(Fact::ReferencePublished(published));
            }
            h.record(
                FactType::UnitRegistered,
                json!({"unit_id": "qn", "name": "Quảng Nam", "level": "province", "effective_date": "1997-01-01"}),
            );
            for d in ["dl", "db"] {
                h.record(
                    FactType::UnitRegistered,
                    json!({"unit_id": d, "name": d, "level": "district", "parent_id": "qn", "effective_date": "1997-01-01"}),
                );
            }
            for (c, d) in [("dl-a", "dl"), ("dl-b", "dl"), ("db-a", "db")] {
                h.record(
                    FactType::UnitRegistered,
                    json!({"unit_id": c, "name": c, "level": "commune", "parent_id": d, "effective_date": "1997-01-01"}),
                );
            }
            h
        }

        fn push(&mut self, fact: Fact) -> (u64, Uuid) {
            let position = self.facts.len() as u64 + 1;
            let event_id = Uuid::from_u128(u128::from(position));
            let stream = fact
                .stream()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "retraction".into());
            self.facts.push(LedgerFact {
                position,
                event_id,
                stream,
                fact,
            });
            (position, event_id)
        }

        fn record(&mut self, fact_type: FactType, data: Value) -> (u64, Uuid) {
            let fact = Fact::from_data(fact_type, &data)
                .unwrap_or_else(|e| panic!("{fact_type}: {e}: {data}"));
            self.push(fact)
        }

        fn retract(&mut self, event_id: Uuid, on: &str) -> u64 {
            self.record(
                FactType::FactRetracted,
                json!({"event_id": event_id, "reason": "recorded in error", "effective_date": on}),
            )
            .0
        }

        fn head(&self) -> u64 {
            self.facts.len() as u64
        }

        fn official(&mut self, id: &str, unit: &str, category: &str, position: &str, on: &str) {
            self.record(
                FactType::OfficialRegistered,
                json!({"official_id": id, "full_name": "Nguyễn Văn A", "birth_year": 1970,
                       "gender": "male", "ethnic_minority": false, "unit_id": unit,
                       "staff_category": category, "position": position, "effective_date": on}),
            );
        }

        fn qualification(
            &mut self,
            id: &str,
            track: &str,
            level: &str,
            specialty: Option<&str>,
            on: &str,
        ) -> (u64, Uuid) {
            let mut data =
                json!({"official_id": id, "track": track, "level": level, "effective_date": on});
            if let Some(s) = specialty {
                data["specialty"] = json!(s);
            }
            self.record(FactType::QualificationRecorded, data)
        }

        /// Upper secondary, professional and political theory levels.
        fn levels(
            &mut self,
            id: &str,
            professional: &str,
            specialty: &str,
            political: &str,
            on: &str,
        ) {
            self.qualification(
                id,
                "general_education",
                "upper_secondary",
                None,
                "1988-06-01",
            );
            self.qualification(id, "professional", professional, Some(specialty), on);
            self.qualification(id, "political_theory", political, None, on);
        }

        #[allow(clippy::too_many_arguments)]
        fn place(
            &mut self,
            e: &str,
            official: &str,
            unit: &str,
            track: &str,
            level: Option<&str>,
            specialty: Option<&str>,
            nominated: &str,
            enrolled: Option<&str>,
        ) -> Vec<(u64, Uuid)> {
            let mut program = json!({"track": track, "title": "Khoá học"});
            if let Some(l) = level {
                program["level"] = json!(l);
            }
            if let Some(s) = specialty {
                program["specialty"] = json!(s);
            }
            let mut ids = vec![self.record(
                FactType::TrainingNominated,
                json!({"enrollment_id": e, "official_id": official, "nominating_unit_id": unit,
                       "program": program,
                       "institution": {"institution_id": "qn-school", "name": "Trường Chính trị", "in_province": true},
                       "planned_start": nominated, "planned_end": nominated,
                       "funding": [{"source": "province", "amount_vnd": 1000}, {"source": "district", "amount_vnd": 500}],
                       "effective_date": nominated}),
            )];
            if let Some(on) = enrolled {
                ids.push(self.record(
                    FactType::TrainingEnrolled,
                    json!({"enrollment_id": e, "effective_date": on}),
                ));
            }
            ids
        }

        fn plan(
            &mut self,
            id: &str,
            from: i32,
            to: i32,
            specialty: Option<&str>,
            on: &str,
        ) -> (u64, Uuid) {
            let mut data = json!({"official_id": id, "target_position": "land_construction",
                                  "period_from": from, "period_to": to, "effective_date": on});
            if let Some(s) = specialty {
                data["planned_specialty"] = json!(s);
            }
            self.record(FactType::Planned, data)
        }
    }

    const Y2011: &str = "2011-12-31";

    fn volume(h: &History, cut: u64, unit: &str) -> Volume {
        training_volume(&h.facts, cut, Some(unit), date("2007-01-01"), date(Y2011))
    }

    #[test]
    fn volume_counts_enrolled_places_in_the_window_by_the_nominating_unit() {
        let mut h = History::new();
        h.official("o-1", "dl-a", "cadre", "committee_chair", "2005-01-01");
        h.place(
            "e-1",
            "o-1",
            "dl-a",
            "professional",
            Some("intermediate"),
            Some("law"),
            "2008-08-01",
            Some("2008-09-01"),
        );
        h.place(
            "e-2",
            "o-1",
            "dl-b",
            "refresher",
            None,
            None,
            "2009-03-01",
            Some("2009-03-10"),
        );
        h.place(
            "e-3",
            "o-1",
            "dl",
            "political_theory",
            Some("advanced"),
            None,
            "2010-03-01",
            Some("2010-03-10"),
        );
        // Nominated but never enrolled; enrolled before the window; in
        // another district.
        h.place(
            "e-4",
            "o-1",
            "dl-a",
            "professional",
            Some("college"),
            Some("law"),
            "2009-08-01",
            None,
        );
        h.place(
            "e-5",
            "o-1",
            "dl-a",
            "refresher",
            None,
            None,
            "2006-11-01",
            Some("2006-12-01"),
        );
        h.place(
            "e-6",
            "o-1",
            "db-a",
            "refresher",
            None,
            None,
            "2009-03-01",
            Some("2009-03-10"),
        );
        h.place(
            "e-7",
            "o-1",
            "dl-a",
            "professional",
            Some("elementary"),
            Some("law"),
            "2009-08-01",
            Some("2009-09-01"),
        );
        h.record(
            FactType::TrainingFailed,
            json!({"enrollment_id": "e-1", "reason": "không đạt", "effective_date": "2010-06-30"}),
        );

        let v = volume(&h, h.head(), "dl");
        assert_eq!(v.total, 4);
        assert_eq!(
            (
                v.professional_intermediate_plus,
                v.political_theory_intermediate_plus,
                v.refresher
            ),
            (1, 1, 1)
        );
        assert_eq!(v.by_track["professional"].0, 2);
        assert_eq!(v.by_track["professional"].1["intermediate"], 1);
        assert_eq!(v.by_track["professional"].1["elementary"], 1);
        assert_eq!(v.by_track["professional"].1["doctorate"], 0);
        assert!(v.by_track["refresher"].1.is_empty());
        let state_management = &v.by_track["state_management"];
        assert_eq!(state_management.0, 0);
        assert_eq!(state_management.1.len(), 4);
        assert!(state_management.1.values().all(|n| *n == 0));
        assert_eq!(v.funding["province"], 4000);
        assert_eq!(v.funding["district"], 2000);
        assert_eq!(v.funding["self"], 0);
        // One commune alone; the whole country counts the other district.
        assert_eq!(volume(&h, h.head(), "dl-b").total, 1);
        let country = training_volume(&h.facts, h.head(), None, date("2007-01-01"), date(Y2011));
        assert_eq!(country.total, 5);
    }

    #[test]
    fn a_report_needs_the_reference_data_it_applies_in_force_at_its_cut() {
        let mut h = History::default();
        let shipped = reference_data::shipped().expect("shipped reference data");
        let of = |kind: ReferenceKind| {
            shipped
                .iter()
                .find(|(p, _)| p.kind == kind)
                .map(|(p, _)| Fact::ReferencePublished(p.clone()))
                .expect("shipped")
        };
        h.push(of(ReferenceKind::Ruleset));
        h.push(of(ReferenceKind::PositionTaxonomy));
        h.push(of(ReferenceKind::SpecialtyMap));
        let on = date(Y2011);
        // A ruleset without a taxonomy says nothing of key leaders.
        assert!(standards(&h.facts, 1, None, on).is_none());
        assert!(standards(&h.facts, 2, None, on).is_some());
        assert!(alignment(&h.facts, 2, None, on).is_none());
        assert!(alignment(&h.facts, 3, None, on).is_some());
        // The shipped map is in force from 1990.
        assert!(alignment(&h.facts, 3, None, date("1989-12-31")).is_none());
    }

    #[test]
    fn known_at_cuts_at_the_last_position_recorded_by_then() {
        // Positions 2 and 3 share one instant (one sequencer batch).
        let recorded = [(1, 10), (2, 20), (3, 20), (4, 30)];
        assert_eq!(cut_known_at(&recorded, &5), 0);
        assert_eq!(cut_known_at(&recorded, &10), 1);
        assert_eq!(cut_known_at(&recorded, &19), 1);
        assert_eq!(cut_known_at(&recorded, &20), 3);
        assert_eq!(cut_known_at(&recorded, &99), 4);
    }

    #[test]
    fn a_unit_is_registered_at_a_cut_until_its_registration_is_retracted() {
        let mut h = History::new();
        let (at, registration) = h.record(
            FactType::UnitRegistered,
            json!({"unit_id": "dl-c", "name": "dl-c", "level": "commune", "parent_id": "dl", "effective_date": "2006-01-01"}),
        );
        assert!(!unit_registered(&h.facts, at - 1, "dl-c"));
        assert!(unit_registered(&h.facts, at, "dl-c"));
        h.retract(registration, "2006-02-01");
        assert!(!unit_registered(&h.facts, h.head(), "dl-c"));
        assert!(unit_registered(&h.facts, h.head(), "dl"));
    }

    #[test]
    fn a_late_recorded_enrolment_counts_from_its_position_on() {
        let mut h = History::new();
        h.official("o-1", "dl-a", "cadre", "committee_chair", "2005-01-01");
        h.place(
            "e-1",
            "o-1",
            "dl-a",
            "refresher",
            None,
            None,
            "2008-08-01",
            None,
        );
        let before = h.head();
        // Recorded after facts with later effective dates.
        h.place(
            "e-2",
            "o-1",
            "dl-a",
            "refresher",
            None,
            None,
            "2011-08-01",
            Some("2011-08-05"),
        );
        h.record(
            FactType::TrainingEnrolled,
            json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
        );
        assert_eq!(volume(&h, before, "dl").total, 0);
        assert_eq!(volume(&h, h.head() - 1, "dl").total, 1);
        assert_eq!(volume(&h, h.head(), "dl").total, 2);
    }

    #[test]
    fn a_retracted_enrolment_is_not_counted_from_the_retraction_on() {
        let mut h = History::new();
        h.official("o-1", "dl-a", "cadre", "committee_chair", "2005-01-01");
        let ids = h.place(
            "e-1",
            "o-1",
            "dl-a",
            "refresher",
            None,
            None,
            "2008-08-01",
            Some("2008-09-01"),
        );
        let before = h.head();
        h.retract(ids[1].1, "2008-09-15");
        assert_eq!(volume(&h, before, "dl").total, 1);
        assert_eq!(volume(&h, h.head(), "dl").total, 0);
        // Enrolled again, on another date.
        h.record(
            FactType::TrainingEnrolled,
            json!({"enrollment_id": "e-1", "effective_date": "2008-10-01"}),
        );
        assert_eq!(volume(&h, h.head(), "dl").total, 1);
    }

    #[test]
    fn a_dissolved_unit_counts_under_the_unit_it_was_dissolved_into_from_that_date() {
        let mut h = History::new();
        h.official("o-1", "db-a", "cadre", "committee_chair", "2005-01-01");
        h.place(
            "e-1",
            "o-1",
            "db-a",
            "refresher",
            None,
            None,
            "2008-08-01",
            Some("2008-09-01"),
        );
        h.record(
            FactType::UnitReorganised,
            json!({"unit_id": "db-a", "dissolved_into": "dl-b", "effective_date": "2010-01-01"}),
        );
        fn total(h: &History, unit: &str, to: &str) -> u64 {
            training_volume(&h.facts, h.head(), Some(unit), date("2007-01-01"), date(to)).total
        }
        assert_eq!(total(&h, "dl", "2009-12-31"), 0);
        assert_eq!(total(&h, "dl", Y2011), 1);
        // Re-parenting: dl-a moves to the other district in 2011.
        h.record(
            FactType::UnitReorganised,
            json!({"unit_id": "dl-a", "parent_id": "db", "effective_date": "2011-06-01"}),
        );
        h.place(
            "e-2",
            "o-1",
            "dl-a",
            "refresher",
            None,
            None,
            "2008-08-01",
            Some("2008-09-01"),
        );
        // Before the dissolution e-1 counted under db; between the
        // dissolution and the re-parenting nothing did.
        assert_eq!(total(&h, "db", "2009-12-31"), 1);
        assert_eq!(total(&h, "db", "2011-05-31"), 0);
        assert_eq!(total(&h, "db", Y2011), 1 /* e-2 */);
        assert_eq!(total(&h, "dl", Y2011), 1 /* e-1 through dl-b */);
    }

    #[test]
    fn standards_follow_tenure_with_a_return_to_post() {
        let mut h = History::new();
        // A key leader meeting every standard, who leaves and returns.
        h.official("o-1", "dl-a", "cadre", "committee_chair", "2000-01-01");
        h.levels(
            "o-1",
            "college",
            "public_admin",
            "intermediate",
            "2004-06-01",
        );
        h.record(
            FactType::Left,
            json!({"official_id": "o-1", "reason": "transferred", "effective_date": "2008-03-31"}),
        );
        h.record(
            FactType::PositionAssigned,
            json!({"official_id": "o-1", "unit_id": "dl-b", "staff_category": "cadre", "position": "party_secretary", "effective_date": "2010-04-01"}),
        );
        // A civil servant exempt from political theory, with none.
        h.official("o-2", "dl-a", "civil_servant", "police_chief", "2000-01-01");
        h.qualification(
            "o-2",
            "general_education",
            "upper_secondary",
            None,
            "1990-06-01",
        );
        h.qualification(
            "o-2",
            "professional",
            "intermediate",
            Some("police"),
            "1999-06-01",
        );
        // Another cadre, elementary only; and a part-time worker.
        h.official("o-3", "dl-b", "cadre", "front_chair", "2000-01-01");
        h.levels("o-3", "none", "agriculture", "elementary", "2004-06-01");
        h.record(
            FactType::OfficialRegistered,
            json!({"official_id": "o-4", "full_name": "Lê Thị B", "birth_year": 1980, "gender": "female",
                   "ethnic_minority": false, "unit_id": "dl-a", "staff_category": "part_time",
                   "position": "part_time", "position_title": "Văn thư", "effective_date": "2003-01-01"}),
        );
        let on = |d: &str| standards(&h.facts, h.head(), Some("dl"), date(d)).expect("a ruleset");

        let s = on("2007-12-31");
        assert_eq!(s.ruleset, "qd04-2004");
        assert_eq!(s.population, 3);
        // o-1 and o-2 meet all; o-3 has no professional level ("none").
        assert_eq!(s.meets_all, (2, 3));
        assert_eq!(s.professional_college_plus, (1, 3));
        assert_eq!(s.key_leaders_college_plus, (1, 1));
        assert_eq!(s.political_theory_intermediate_plus, (1, 2));

        let away = on("2009-12-31");
        assert_eq!(
            (away.population, away.key_leaders_college_plus),
            (2, (0, 0))
        );
        let back = on("2011-12-31");
        assert_eq!(
            (back.population, back.key_leaders_college_plus),
            (3, (1, 1))
        );
        // One commune: o-1 came back in dl-b.
        let dl_b =
            standards(&h.facts, h.head(), Some("dl-b"), date("2011-12-31")).expect("ruleset");
        assert_eq!(dl_b.population, 2);
        // Before any ruleset is in force there is no report.
        assert!(standards(&h.facts, h.head(), Some("dl"), date("2003-12-31")).is_none());
    }

    #[test]
    fn a_leaving_and_an_assignment_on_the_same_day_are_ordered_by_position() {
        let mut h = History::new();
        h.official("o-1", "dl-a", "cadre", "committee_chair", "2000-01-01");
        h.record(
            FactType::PositionAssigned,
            json!({"official_id": "o-1", "unit_id": "dl-a", "staff_category": "cadre", "position": "party_secretary", "effective_date": "2009-01-01"}),
        );
        let (_, left) = h.record(
            FactType::Left,
            json!({"official_id": "o-1", "reason": "retired", "effective_date": "2009-01-01"}),
        );
        let count = |h: &History| {
            standards(&h.facts, h.head(), None, date(Y2011))
                .expect("ruleset")
                .population
        };
        assert_eq!(count(&h), 0);
        h.retract(left, "2009-02-01");
        assert_eq!(count(&h), 1);
    }

    #[test]
    fn a_retracted_qualification_and_a_late_one_change_the_standards_from_their_positions() {
        let mut h = History::new();
        h.official(
            "o-1",
            "dl-a",
            "civil_servant",
            "finance_accounting",
            "2000-01-01",
        );
        h.qualification(
            "o-1",
            "general_education",
            "upper_secondary",
            None,
            "1990-06-01",
        );
        h.qualification("o-1", "political_theory", "elementary", None, "2001-06-01");
        let (_, wrong) = h.qualification(
            "o-1",
            "professional",
            "university",
            Some("accounting"),
            "2005-06-01",
        );
        let before = h.head();
        h.retract(wrong, "2009-01-01");
        fn at(h: &History, cut: u64, d: &str) -> Standards {
            standards(&h.facts, cut, None, date(d)).expect("ruleset")
        }
        assert_eq!(at(&h, before, Y2011).professional_college_plus, (1, 1));
        assert_eq!(at(&h, h.head(), Y2011).professional_college_plus, (0, 1));
        assert_eq!(at(&h, h.head(), Y2011).meets_all, (0, 1));
        // Recorded late: an intermediate diploma of 2006.
        h.qualification(
            "o-1",
            "professional",
            "intermediate",
            Some("accounting"),
            "2006-06-01",
        );
        assert_eq!(at(&h, h.head(), Y2011).meets_all, (1, 1));
        assert_eq!(at(&h, h.head(), "2005-12-31").meets_all, (0, 1));
    }

    #[test]
    fn a_second_ruleset_applies_from_its_effective_date_and_a_later_publication_wins_a_tie() {
        let mut h = History::new();
        h.official("o-1", "dl-a", "cadre", "front_chair", "2000-01-01");
        h.levels(
            "o-1",
            "elementary",
            "public_admin",
            "elementary",
            "2004-06-01",
        );
        let stricter = |name: &str, on: &str| {
            json!({"kind": "ruleset", "name": name, "effective_date": on, "content": {"requirements": [
                {"group": "cadres", "staff_category": "cadre",
                 "minimums": {"general_education": "upper_secondary", "professional": "intermediate", "political_theory": "intermediate"}},
                {"group": "civil_servants", "staff_category": "civil_servant",
                 "minimums": {"professional": "intermediate"}}
            ]}})
        };
        h.record(
            FactType::ReferencePublished,
            stricter("nd33-2023", "2023-08-01"),
        );
        let on =
            |h: &History, d: &str| standards(&h.facts, h.head(), None, date(d)).expect("ruleset");
        assert_eq!(on(&h, Y2011).ruleset, "qd04-2004");
        assert_eq!(on(&h, Y2011).meets_all, (1, 1));
        assert_eq!(on(&h, "2024-01-01").ruleset, "nd33-2023");
        assert_eq!(on(&h, "2024-01-01").meets_all, (0, 1));
        // The same date again, published later: the later one is in force.
        let mut lenient = stricter("nd33-2023-fixed", "2023-08-01");
        lenient["content"]["requirements"][0]["minimums"]["professional"] = json!("elementary");
        lenient["content"]["requirements"][0]["minimums"]["political_theory"] = json!("elementary");
        h.record(FactType::ReferencePublished, lenient);
        assert_eq!(on(&h, "2024-01-01").ruleset, "nd33-2023-fixed");
        assert_eq!(on(&h, "2024-01-01").meets_all, (1, 1));
    }

    #[test]
    fn alignment_lists_training_outside_the_plan_and_misassigned_civil_servants() {
        let mut h = History::new();
        h.official(
            "o-1",
            "dl-a",
            "civil_servant",
            "land_construction",
            "2000-01-01",
        );
        h.qualification(
            "o-1",
            "professional",
            "intermediate",
            Some("agriculture"),
            "2004-06-01",
        );
        h.official(
            "o-2",
            "dl-a",
            "civil_servant",
            "finance_accounting",
            "2000-01-01",
        );
        h.official(
            "o-3",
            "dl-b",
            "civil_servant",
            "justice_civil_status",
            "2000-01-01",
        );
        h.qualification("o-3", "professional", "college", Some("law"), "2004-06-01");
        h.qualification(
            "o-3",
            "professional",
            "college",
            Some("agriculture"),
            "2005-06-01",
        );

        h.plan("o-1", 2006, 2010, Some("land_management"), "2006-03-01");
        h.plan("o-2", 2011, 2015, Some("accounting"), "2010-10-01");
        h.plan("o-3", 2006, 2010, None, "2006-03-01");
        // Aligned; other specialty; not covered (2008 is outside 2011-2015);
        // any specialty under a plan without one; cancelled; political.
        h.place(
            "e-1",
            "o-1",
            "dl-a",
            "professional",
            Some("college"),
            Some("land_management"),
            "2008-08-01",
            Some("2008-09-01"),
        );
        h.place(
            "e-2",
            "o-1",
            "dl-a",
            "professional",
            Some("university"),
            Some("construction"),
            "2009-08-01",
            Some("2009-09-01"),
        );
        h.place(
            "e-3",
            "o-2",
            "dl-a",
            "professional",
            Some("intermediate"),
            Some("accounting"),
            "2008-08-01",
            Some("2008-09-01"),
        );
        h.place(
            "e-4",
            "o-3",
            "dl-b",
            "professional",
            Some("university"),
            Some("law"),
            "2009-08-01",
            Some("2009-09-01"),
        );
        h.place(
            "e-5",
            "o-2",
            "dl-a",
            "professional",
            Some("intermediate"),
            Some("accounting"),
            "2007-08-01",
            None,
        );
        h.record(FactType::TrainingCancelled, json!({"enrollment_id": "e-5", "reason": "lớp không mở", "effective_date": "2007-08-20"}));
        h.place(
            "e-6",
            "o-2",
            "dl-a",
            "political_theory",
            Some("intermediate"),
            None,
            "2007-08-01",
            None,
        );
        // Nominated after the report's date.
        h.place(
            "e-7",
            "o-2",
            "dl-a",
            "professional",
            Some("intermediate"),
            Some("finance"),
            "2012-08-01",
            None,
        );

        let a = alignment(&h.facts, h.head(), Some("dl"), date(Y2011)).expect("a map");
        assert_eq!(
            a.training_outside_plan,
            vec![
                (
                    "e-2".into(),
                    "o-1".into(),
                    Some("construction".into()),
                    Some("land_management".into()),
                    "other_specialty".into()
                ),
                (
                    "e-3".into(),
                    "o-2".into(),
                    Some("accounting".into()),
                    None,
                    "not_in_plan".into()
                ),
            ]
        );
        assert_eq!(
            a.misassigned,
            vec![
                (
                    "o-1".into(),
                    "land_construction".into(),
                    Some("agriculture".into()),
                    "other_specialty".into()
                ),
                (
                    "o-2".into(),
                    "finance_accounting".into(),
                    None,
                    "untrained".into()
                ),
            ]
        );
        // On 2003-12-31 o-1 had no diploma yet; o-3's law college is
        // accepted even though a later college is not.
        let early = alignment(&h.facts, h.head(), Some("dl"), date("2003-12-31")).expect("a map");
        assert!(early.training_outside_plan.is_empty());
        assert_eq!(early.misassigned.len(), 3);
        assert!(early.misassigned.iter().all(|m| m.3 == "untrained"));
        // A second plan entry planning construction: e-2 is aligned; once
        // that entry is retracted, it is not again.
        let (_, plan) = h.plan("o-1", 2006, 2010, Some("construction"), "2007-01-01");
        let a = alignment(&h.facts, h.head(), Some("dl"), date(Y2011)).expect("a map");
        assert_eq!(a.training_outside_plan.len(), 1, "{a:?}");
        h.retract(plan, "2007-02-01");
        let a = alignment(&h.facts, h.head(), Some("dl"), date(Y2011)).expect("a map");
        assert_eq!(a.training_outside_plan.len(), 2, "{a:?}");
        // dl-b alone: o-3's training and post are both in order.
        let a = alignment(&h.facts, h.head(), Some("dl-b"), date(Y2011)).expect("a map");
        assert!(
            a.training_outside_plan.is_empty() && a.misassigned.is_empty(),
            "{a:?}"
        );
    }
}
