//! The compliance reports (docs/contract.md "Reports"), read from the read models
//! as of a date and as known at a cut (a ledger position).
//!
//! Each query over the fact tables keeps the rows with `position <= cut`
//! that no retraction at or before the cut takes back, and "as of" picks
//! the latest row effective by the date; the unit hierarchy and the
//! reference data in force come from those rows. Who is in post, and their
//! highest levels, come from `standing`, whose rows hold intervals in both
//! times (ADR 17): those holding the cut and the date.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use sqlx::{PgPool, Row};
use tledger_events::reference_data::{PositionTaxonomy, Ruleset, SpecialtyMap};
use tledger_events::unit_tree::{UnitChange, UnitTree};
use tledger_events::UnitId;
use tledger_events::{
    Date, FundingSource, PositionCode, ReferenceKind, SpecialtyCode, StaffCategory, Track,
};

use crate::rate::Figure;
use crate::schema;
use crate::standards::{assess_ranks, Incumbent};

/// Why a report cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unit {0} is not registered")]
    UnknownUnit(String),
    #[error("no {kind} is in force on {date}")]
    NoReferenceData { kind: &'static str, date: Date },
    #[error("the reference data {name} in the ledger does not parse: {reason}")]
    BadReferenceData { name: String, reason: String },
    /// Cannot happen while the funding columns hold whole đồng; named
    /// rather than read as 0, which would give a wrong sum.
    #[error("the read models' {funding_source} funding sum {sum:?} is not a whole number of đồng")]
    FundingSum {
        funding_source: &'static str,
        sum: String,
    },
    #[error("PostgreSQL: {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> ReportError {
    move |source| ReportError::Database { context, source }
}

/// A unit id read back from the read models: it was checked when its fact
/// was recorded, so one that does not parse is a damaged row.
fn unit_id(text: String) -> Result<UnitId, ReportError> {
    UnitId::parse(text).map_err(|e| ReportError::Database {
        context: "reading a unit id",
        source: sqlx::Error::Decode(Box::new(e)),
    })
}

/// "Not retracted at the cut", for a table aliased `t` ($1 is the cut; no
/// other `t.` in it, so that it can be re-aliased).
const LIVE: &str = "t.position <= $1 AND NOT EXISTS (SELECT 1 FROM rm.retractions r \
                    WHERE r.event_id = t.event_id AND r.position <= $1)";

fn cut_param(cut: u64) -> i64 {
    i64::try_from(cut).unwrap_or(i64::MAX)
}

/// `AND <column> = ANY($<n>)` for a report on a unit, nothing for the whole
/// country. Two statements rather than `$n IS NULL OR …`, which keeps a
/// prepared statement's generic plan from using the units' indexes.
fn in_units(column: &str, n: usize, scoped: bool) -> String {
    if scoped {
        format!(" AND {column} = ANY(${n})")
    } else {
        String::new()
    }
}

/// Whether the reports' statements over many rows are kept prepared: no.
/// A prepared statement's generic plan, used after five executions, cannot
/// know how many rows a window, a date or a set of units selects: for the
/// country's training volume it guessed three thousand of 780,000 places
/// and sorted them on disk (2 s rather than 0.5 s). An unnamed statement is
/// planned with its values every time, for about a millisecond.
const PLANNED_EACH_TIME: bool = false;

/// `columns` of the standing rows (ADR 17, table `t`) of the cadres and
/// civil servants in post on the date $2 as known at the cut $1, within the
/// units $3 when `scoped`.
///
/// When the cut is at or past the read models' position, the rows that
/// hold it are those no fact has revised yet (`known_to` open): one range
/// per unit of the partial index `standing_now_by_unit`, which holds only
/// them, keyed by the end of their valid time. Otherwise, the rows whose
/// known interval holds the cut. Both branches are in one statement, so
/// that the position and the rows come from one snapshot; the branch the
/// position rules out is never run.
fn in_post_standing(columns: &str, scoped: bool) -> String {
    let units = in_units("t.unit_id", 3, scoped);
    let in_post = "t.valid_to > $2 AND t.valid_from <= $2 \
                   AND t.staff_category IN ('cadre', 'civil_servant')";
    format!(
        "SELECT {columns} FROM rm.standing t \
         WHERE t.known_to = {open} AND {in_post}{units} \
           AND (SELECT c.position FROM rm.checkpoint c) <= $1 \
         UNION ALL \
         SELECT {columns} FROM rm.standing t \
         WHERE t.known_to > $1 AND t.known_from <= $1 AND {in_post}{units} \
           AND (SELECT c.position FROM rm.checkpoint c) > $1",
        open = crate::standing::OPEN_POSITION,
    )
}

/// The read models, for reports. Clones share the last unit hierarchy read.
#[derive(Clone, Debug)]
pub struct ReadModels {
    pool: PgPool,
    hierarchy: Arc<Mutex<Option<KeptUnitTree>>>,
}

/// The hierarchy of every unit change up to a `units_position`, with it.
type KeptUnitTree = (u64, Arc<UnitTree>);

/// The training-volume report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingVolume {
    pub unit_id: Option<String>,
    pub from: Date,
    pub to: Date,
    pub position: u64,
    /// Places by track and level (`""` for no level).
    pub places: BTreeMap<(Track, String), u64>,
    /// Exact sums (see [`funding_json`] for how they are written).
    pub funding: BTreeMap<FundingSource, i128>,
}

/// A funding sum as the report writes it: a JSON integer, exact, up to
/// `u64::MAX` (18,446,744,073,709,551,615 đồng; the most a
/// `serde_json::Number` holds without its arbitrary-precision feature), and
/// beyond it the decimal digits as a string, still exact. Only facts recorded
/// before the door's funding bounds can take a sum that far: within them a
/// place holds at most 1.6 × 10^13 đồng.
pub fn funding_json(sum: i128) -> Value {
    match u64::try_from(sum) {
        Ok(n) => Value::from(n),
        Err(_) => Value::String(sum.to_string()),
    }
}

/// A funding sum PostgreSQL wrote as `numeric::text` (no fraction: the
/// columns hold whole đồng); none (no row) is 0.
fn funding_sum(funding_source: &'static str, text: Option<String>) -> Result<i128, ReportError> {
    match text {
        None => Ok(0),
        Some(t) => t.parse().map_err(|_| ReportError::FundingSum {
            funding_source,
            sum: t,
        }),
    }
}

impl TrainingVolume {
    pub fn total(&self) -> u64 {
        self.places.values().sum()
    }

    fn track_total(&self, track: Track) -> u64 {
        self.places
            .iter()
            .filter(|((t, _), _)| *t == track)
            .map(|(_, n)| n)
            .sum()
    }

    fn intermediate_plus(&self, track: Track) -> u64 {
        self.places
            .iter()
            .filter(|((t, level), _)| {
                *t == track && rank_of(track, level) != u8::MAX && rank_of(track, level) >= 2
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The contract's JSON.
    pub fn to_json(&self) -> Value {
        let mut by_track = Map::new();
        for track in Track::ALL {
            let mut by_level = Map::new();
            if let Some(levels) = track.ordered_levels() {
                for (level, _) in levels {
                    by_level.insert(
                        (*level).into(),
                        json!(self
                            .places
                            .get(&(*track, (*level).to_owned()))
                            .copied()
                            .unwrap_or(0)),
                    );
                }
            } else if *track != Track::Refresher {
                for ((t, level), n) in &self.places {
                    if t == track {
                        by_level.insert(level.clone(), json!(n));
                    }
                }
            }
            by_track.insert(
                track.as_str().into(),
                json!({"total": self.track_total(*track), "by_level": by_level}),
            );
        }
        let funding: Map<String, Value> = FundingSource::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str().to_owned(),
                    funding_json(self.funding.get(s).copied().unwrap_or(0)),
                )
            })
            .collect();
        json!({
            "unit_id": self.unit_id,
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "position": self.position,
            "total": self.total(),
            "headline": {
                "professional_intermediate_plus": self.intermediate_plus(Track::Professional),
                "political_theory_intermediate_plus": self.intermediate_plus(Track::PoliticalTheory),
                "refresher": self.track_total(Track::Refresher),
            },
            "by_track": by_track,
            "funding_vnd": funding,
        })
    }
}

/// The standards report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandardsReport {
    pub unit_id: Option<String>,
    pub as_of: Date,
    pub ruleset: String,
    pub position: u64,
    pub population: u64,
    pub meets_all_standards: Figure,
    pub professional_college_plus: Figure,
    pub key_leaders_college_plus: Figure,
    pub political_theory_intermediate_plus: Figure,
}

impl StandardsReport {
    pub fn to_json(&self) -> Value {
        json!({
            "unit_id": self.unit_id,
            "as_of": self.as_of.to_string(),
            "ruleset": self.ruleset,
            "position": self.position,
            "population": self.population,
            "meets_all_standards": self.meets_all_standards.to_json(),
            "professional_college_plus": self.professional_college_plus.to_json(),
            "key_leaders_college_plus": self.key_leaders_college_plus.to_json(),
            "political_theory_intermediate_plus": self.political_theory_intermediate_plus.to_json(),
        })
    }

    /// The figures in the contract's order, for CSV and tables.
    pub fn figures(&self) -> Vec<(&'static str, Figure)> {
        vec![
            ("meets_all_standards", self.meets_all_standards),
            ("professional_college_plus", self.professional_college_plus),
            ("key_leaders_college_plus", self.key_leaders_college_plus),
            (
                "political_theory_intermediate_plus",
                self.political_theory_intermediate_plus,
            ),
        ]
    }
}

/// A training place outside the staffing plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutsidePlan {
    pub enrollment_id: String,
    pub official_id: String,
    pub program_specialty: Option<String>,
    pub planned_specialty: Option<String>,
    pub reason: &'static str,
}

/// A person in a civil-servant post without an accepted specialty.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Misassigned {
    pub official_id: String,
    pub post: String,
    pub specialty: Option<String>,
    pub reason: &'static str,
}

/// The alignment report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlignmentReport {
    pub unit_id: Option<String>,
    pub as_of: Date,
    pub position: u64,
    pub training_outside_plan: Vec<OutsidePlan>,
    pub misassigned: Vec<Misassigned>,
}

impl AlignmentReport {
    pub fn to_json(&self) -> Value {
        json!({
            "unit_id": self.unit_id,
            "as_of": self.as_of.to_string(),
            "position": self.position,
            "training_outside_plan": self.training_outside_plan.iter().map(|t| json!({
                "enrollment_id": t.enrollment_id, "official_id": t.official_id,
                "program_specialty": t.program_specialty, "planned_specialty": t.planned_specialty,
                "reason": t.reason,
            })).collect::<Vec<_>>(),
            "misassigned": self.misassigned.iter().map(|m| json!({
                "official_id": m.official_id, "post": m.post, "specialty": m.specialty, "reason": m.reason,
            })).collect::<Vec<_>>(),
        })
    }
}

/// People in post alike for the standards: category, post, and the rank
/// reached in each ordered track (none recorded: absent).
pub(crate) struct Profile {
    pub(crate) category: StaffCategory,
    pub(crate) post: PositionCode,
    pub(crate) ranks: HashMap<Track, u8>,
    pub(crate) people: u64,
}

/// A person in post on the report's date.
pub(crate) struct InPost {
    pub(crate) official_id: String,
    pub(crate) category: StaffCategory,
    pub(crate) post: PositionCode,
}

/// A professional-track place nominated by the report's date, for the
/// alignment report.
pub(crate) struct NominatedPlace {
    pub(crate) enrollment_id: String,
    pub(crate) official_id: String,
    pub(crate) specialty: Option<String>,
    /// The nomination's year.
    pub(crate) year: i32,
}

/// A plan entry: its period (years) and the specialty it expects.
pub(crate) type PlanEntry = (i32, i32, Option<String>);

/// The typed content of the reference data found in force, or why there is
/// none to apply.
pub(crate) fn typed_content<T: serde::de::DeserializeOwned>(
    found: Option<(String, Value)>,
    label: &'static str,
    date: Date,
) -> Result<(String, T), ReportError> {
    let (name, content) = found.ok_or(ReportError::NoReferenceData { kind: label, date })?;
    let typed = serde_json::from_value(content).map_err(|e| ReportError::BadReferenceData {
        name: name.clone(),
        reason: e.to_string(),
    })?;
    Ok((name, typed))
}

/// The standards figures over the people in post, given each person's
/// highest rank per track.
pub(crate) fn standards_report(
    unit: Option<&str>,
    as_of: Date,
    cut: u64,
    (ruleset_name, ruleset): (String, Ruleset),
    taxonomy: &PositionTaxonomy,
    profiles: &[Profile],
) -> StandardsReport {
    let college = rank_of(Track::Professional, "college");
    let intermediate = rank_of(Track::PoliticalTheory, "intermediate");
    let mut report = StandardsReport {
        unit_id: unit.map(str::to_owned),
        as_of,
        ruleset: ruleset_name,
        position: cut,
        population: 0,
        meets_all_standards: Figure::default(),
        professional_college_plus: Figure::default(),
        key_leaders_college_plus: Figure::default(),
        political_theory_intermediate_plus: Figure::default(),
    };
    // Everyone of a profile stands alike: assess the profile once and
    // count it as many times as it has people.
    for profile in profiles {
        let key_leader = taxonomy
            .position(&profile.post)
            .is_some_and(|p| p.key_leader);
        let rank = |track: Track| profile.ranks.get(&track).copied();
        let incumbent = Incumbent {
            staff_category: profile.category,
            position: &profile.post,
            key_leader,
        };
        // The contract's population is every cadre and civil servant in
        // post (the profiles hold only those), so one whom no requirement
        // of the ruleset matches still counts: in the population, not
        // meeting standards that were never set for them, and outside the
        // political-theory figure.
        let assessment = assess_ranks(&ruleset, &incumbent, rank);
        let n = profile.people;
        report.population += n;
        let college_plus = rank(Track::Professional).is_some_and(|r| r >= college);
        report.meets_all_standards.of += n;
        report.meets_all_standards.count +=
            n * u64::from(assessment.as_ref().is_some_and(|a| a.meets_all()));
        report.professional_college_plus.of += n;
        report.professional_college_plus.count += n * u64::from(college_plus);
        if key_leader {
            report.key_leaders_college_plus.of += n;
            report.key_leaders_college_plus.count += n * u64::from(college_plus);
        }
        if assessment
            .as_ref()
            .is_some_and(|a| a.applies(Track::PoliticalTheory))
        {
            report.political_theory_intermediate_plus.of += n;
            report.political_theory_intermediate_plus.count +=
                n * u64::from(rank(Track::PoliticalTheory).is_some_and(|r| r >= intermediate));
        }
    }
    report
}

/// The places no plan entry of the person covers, or that a covering entry
/// expects in another specialty; sorted.
pub(crate) fn outside_plan(
    places: &[NominatedPlace],
    plans_by_person: &HashMap<String, Vec<PlanEntry>>,
) -> Vec<OutsidePlan> {
    let mut outside = Vec::new();
    for place in places {
        let covering: Vec<&PlanEntry> = plans_by_person
            .get(&place.official_id)
            .map(|ps| {
                ps.iter()
                    .filter(|(from, to, _)| *from <= place.year && place.year <= *to)
                    .collect()
            })
            .unwrap_or_default();
        let row = |planned: Option<String>, reason| OutsidePlan {
            enrollment_id: place.enrollment_id.clone(),
            official_id: place.official_id.clone(),
            program_specialty: place.specialty.clone(),
            planned_specialty: planned,
            reason,
        };
        if covering.is_empty() {
            outside.push(row(None, "not_in_plan"));
        } else if !covering
            .iter()
            .any(|(_, _, planned)| planned.is_none() || *planned == place.specialty)
        {
            // The latest covering plan names the specialty expected.
            let planned = covering.last().and_then(|(_, _, p)| p.clone());
            outside.push(row(planned, "other_specialty"));
        }
    }
    outside.sort();
    outside
}

/// People in civil-servant posts whose highest professional qualification
/// (`highest`: its specialty) the map does not accept for the post, or who
/// have none; sorted.
pub(crate) fn misassigned(
    civil_servants: &[InPost],
    highest: &HashMap<String, Vec<Option<String>>>,
    specialties: &SpecialtyMap,
) -> Vec<Misassigned> {
    let mut misassigned = Vec::new();
    for person in civil_servants {
        let Some(diplomas) = highest.get(&person.official_id) else {
            misassigned.push(Misassigned {
                official_id: person.official_id.clone(),
                post: person.post.to_string(),
                specialty: None,
                reason: "untrained",
            });
            continue;
        };
        // A post the map says nothing about has no requirement.
        if !specialties.posts.contains_key(&person.post) {
            continue;
        }
        // One diploma in an accepted specialty among the highest is enough;
        // otherwise the latest is the one reported.
        let accepted = diplomas.iter().any(|specialty| {
            specialty
                .as_deref()
                .and_then(|s| SpecialtyCode::parse(s).ok())
                .and_then(|s| specialties.accepts(&person.post, &s))
                == Some(true)
        });
        if !accepted {
            misassigned.push(Misassigned {
                official_id: person.official_id.clone(),
                post: person.post.to_string(),
                specialty: diplomas.last().cloned().flatten(),
                reason: "other_specialty",
            });
        }
    }
    misassigned.sort();
    misassigned
}

impl ReadModels {
    /// Over the pool of a `Store`, whose connections run without JIT
    /// (ADR 15): the reports count on it.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            hierarchy: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The position the live read models have reached.
    pub async fn position(&self) -> Result<u64, ReportError> {
        crate::projector::position(&self.pool, schema::LIVE)
            .await
            .map_err(|e| ReportError::Database {
                context: "reading the projection position",
                source: match e {
                    crate::projector::ProjectionError::Database { source, .. } => source,
                    other => sqlx::Error::Protocol(other.to_string()),
                },
            })
    }

    /// The training places ever nominated for `official_id` (retracted ones
    /// too: their trails say so), by enrollment id.
    pub async fn places_of(&self, official_id: &str) -> Result<Vec<String>, ReportError> {
        sqlx::query_scalar(
            "SELECT DISTINCT enrollment_id FROM rm.places WHERE official_id = $1 ORDER BY enrollment_id",
        )
        .bind(official_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading a person's training places"))
    }

    /// The unit hierarchy as known at `cut`. Every report on a unit reads
    /// it; reading and building it from every unit fact takes longer than
    /// the rest of a province's report. So when `cut` is between the
    /// checkpoint's `units_position` (the last unit fact or retraction
    /// projected) and its `position`, the hierarchy is that of every unit
    /// change up to `units_position`, whatever `cut`: it is kept and
    /// reused for as long as `units_position` stays the same.
    pub async fn unit_tree(&self, cut: u64) -> Result<Arc<UnitTree>, ReportError> {
        let (reached, units_changed): (i64, i64) =
            sqlx::query_as("SELECT position, units_position FROM rm.checkpoint")
                .fetch_one(&self.pool)
                .await
                .map_err(db("reading the projection checkpoint"))?;
        let units_changed = u64::try_from(units_changed).unwrap_or(u64::MAX);
        let current = units_changed <= cut && i64::try_from(cut).is_ok_and(|c| c <= reached);
        let kept = |slot: &Option<KeptUnitTree>| {
            slot.as_ref()
                .filter(|(at, _)| *at == units_changed)
                .map(|(_, hierarchy)| hierarchy.clone())
        };
        // A poisoned lock only means the hierarchy is read again.
        if let Some(hierarchy) = current
            .then(|| self.hierarchy.lock().ok().and_then(|slot| kept(&slot)))
            .flatten()
        {
            return Ok(hierarchy);
        }
        let hierarchy = Arc::new(self.unit_tree_from_facts(cut).await?);
        if current {
            if let Ok(mut slot) = self.hierarchy.lock() {
                *slot = Some((units_changed, hierarchy.clone()));
            }
        }
        Ok(hierarchy)
    }

    async fn unit_tree_from_facts(&self, cut: u64) -> Result<UnitTree, ReportError> {
        let rows = sqlx::query(&format!(
            "SELECT unit_id, position, effective_date, registered, parent_id, dissolved_into, name \
             FROM rm.unit_facts t WHERE {LIVE}"
        ))
        .bind(cut_param(cut))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading units"))?;
        let changes = rows
            .iter()
            .map(|r| {
                Ok(UnitChange {
                    unit_id: unit_id(r.get("unit_id"))?,
                    position: u64::try_from(r.get::<i64, _>("position")).unwrap_or(0),
                    effective_date: r.get::<chrono::NaiveDate, _>("effective_date").into(),
                    registered: r.get("registered"),
                    parent_id: r
                        .get::<Option<String>, _>("parent_id")
                        .map(unit_id)
                        .transpose()?,
                    dissolved_into: r
                        .get::<Option<String>, _>("dissolved_into")
                        .map(unit_id)
                        .transpose()?,
                    name: r.get("name"),
                })
            })
            .collect::<Result<Vec<_>, ReportError>>()?;
        Ok(UnitTree::new(changes))
    }

    /// The units a report on `unit` covers on `date`: `None` for the whole
    /// country; 404 when the unit is unknown at the cut.
    async fn scope(
        &self,
        unit: Option<&str>,
        date: Date,
        cut: u64,
    ) -> Result<Option<Vec<String>>, ReportError> {
        let Some(unit) = unit else {
            return Ok(None);
        };
        let hierarchy = self.unit_tree(cut).await?;
        if !hierarchy.contains(unit) {
            return Err(ReportError::UnknownUnit(unit.to_owned()));
        }
        Ok(Some(hierarchy.subtree_on(unit, date).into_iter().collect()))
    }

    /// The content of the reference data of `kind` in force on `date` as
    /// known at `cut`: the latest effective date, a tie to the later one.
    async fn in_force(
        &self,
        kind: ReferenceKind,
        date: Date,
        cut: u64,
    ) -> Result<Option<(String, Value)>, ReportError> {
        let row = sqlx::query(&format!(
            "SELECT name, content FROM rm.reference_data t WHERE {LIVE} AND kind = $2 AND effective_date <= $3 \
             ORDER BY effective_date DESC, position DESC LIMIT 1"
        ))
        .bind(cut_param(cut))
        .bind(kind.as_str())
        .bind(date.naive())
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading reference data"))?;
        Ok(row.map(|r| (r.get("name"), r.get("content"))))
    }

    async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        kind: ReferenceKind,
        label: &'static str,
        date: Date,
        cut: u64,
    ) -> Result<(String, T), ReportError> {
        typed_content(self.in_force(kind, date, cut).await?, label, date)
    }

    /// `training-volume`: every place enrolled (effective) in [from, to],
    /// whatever its outcome, counted for the unit that nominated it, the
    /// hierarchy as of `to`.
    pub async fn training_volume(
        &self,
        unit: Option<&str>,
        from: Date,
        to: Date,
        cut: u64,
    ) -> Result<TrainingVolume, ReportError> {
        let units = self.scope(unit, to, cut).await?;
        // A live enrolled step implies its nomination is live (a
        // nomination is retracted only as the last step), and a place has
        // at most one live enrolled step: counting the enrolled steps of
        // the window, with their places' attributes, counts the places.
        let places = format!(
            "SELECT t.track, COALESCE(t.level, '') AS level, count(*) AS places, \
                    sum(t.funding_province)::text AS province, sum(t.funding_district)::text AS district, \
                    sum(t.funding_agency)::text AS agency, sum(t.funding_self)::text AS self_funded, \
                    sum(t.funding_other)::text AS other \
             FROM rm.enrolled_places t \
             WHERE {LIVE} AND t.effective_date BETWEEN $2 AND $3{} \
             GROUP BY t.track, COALESCE(t.level, '')",
            in_units("t.nominating_unit_id", 4, units.is_some()),
        );
        // The country's places as known at the position are summed by day
        // already (ADR 17): read those sums when the cut is at or past it,
        // the places otherwise; one statement, so that the position and
        // the rows come from one snapshot.
        let sql = if units.is_some() {
            places
        } else {
            format!(
                "SELECT t.track, t.level, sum(t.places)::bigint AS places, \
                        sum(t.funding_province)::text AS province, sum(t.funding_district)::text AS district, \
                        sum(t.funding_agency)::text AS agency, sum(t.funding_self)::text AS self_funded, \
                        sum(t.funding_other)::text AS other \
                 FROM rm.enrolled_by_day t \
                 WHERE t.effective_date BETWEEN $2 AND $3 AND (SELECT c.position FROM rm.checkpoint c) <= $1 \
                 GROUP BY t.track, t.level \
                 UNION ALL \
                 SELECT * FROM ({places}) p WHERE (SELECT c.position FROM rm.checkpoint c) > $1"
            )
        };
        // Planned for its values each time (see `PLANNED_EACH_TIME`).
        let query = sqlx::query(&sql)
            .persistent(PLANNED_EACH_TIME)
            .bind(cut_param(cut))
            .bind(from.naive())
            .bind(to.naive());
        let query = match &units {
            Some(units) => query.bind(units),
            None => query,
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(db("counting training places"))?;
        let mut places = BTreeMap::new();
        let mut funding: BTreeMap<FundingSource, i128> = BTreeMap::new();
        for r in &rows {
            let Ok(track) = r.get::<String, _>("track").parse::<Track>() else {
                continue;
            };
            let n: i64 = r.get("places");
            *places
                .entry((track, r.get::<String, _>("level")))
                .or_insert(0) += u64::try_from(n).unwrap_or(0);
            for (source, column) in [
                (FundingSource::Province, "province"),
                (FundingSource::District, "district"),
                (FundingSource::Agency, "agency"),
                (FundingSource::SelfFunded, "self_funded"),
                (FundingSource::Other, "other"),
            ] {
                let sum = funding_sum(column, r.get::<Option<String>, _>(column))?;
                *funding.entry(source).or_insert(0) += sum;
            }
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

    /// Cadres and civil servants in post on `as_of`, with their unit,
    /// category and post, within `units` (all when `None`).
    async fn in_post(
        &self,
        units: Option<&[String]>,
        as_of: Date,
        cut: u64,
    ) -> Result<Vec<InPost>, ReportError> {
        let sql = in_post_standing("t.official_id, t.staff_category, t.post", units.is_some());
        let query = sqlx::query(&sql)
            .persistent(PLANNED_EACH_TIME)
            .bind(cut_param(cut))
            .bind(as_of.naive());
        let query = match units {
            Some(units) => query.bind(units),
            None => query,
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading who is in post"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(InPost {
                    official_id: r.get("official_id"),
                    category: r.get::<String, _>("staff_category").parse().ok()?,
                    post: PositionCode::parse(r.get::<String, _>("post")).ok()?,
                })
            })
            .collect())
    }

    /// `standards`: the ruleset in force on `as_of` applied to the cadres
    /// and civil servants in post on that date.
    pub async fn standards(
        &self,
        unit: Option<&str>,
        as_of: Date,
        cut: u64,
    ) -> Result<StandardsReport, ReportError> {
        let units = self.scope(unit, as_of, cut).await?;
        let (ruleset_name, ruleset): (String, Ruleset) = self
            .typed(ReferenceKind::Ruleset, "standards ruleset", as_of, cut)
            .await?;
        let (_, taxonomy): (String, PositionTaxonomy) = self
            .typed(
                ReferenceKind::PositionTaxonomy,
                "position taxonomy",
                as_of,
                cut,
            )
            .await?;
        let profiles = self.profiles(units.as_deref(), as_of, cut).await?;
        Ok(standards_report(
            unit,
            as_of,
            cut,
            (ruleset_name, ruleset),
            &taxonomy,
            &profiles,
        ))
    }

    /// The cadres and civil servants in post on `as_of` within `units` (all
    /// when `None`), counted by profile: category, post and the highest
    /// rank reached in each ordered track by then (what the standards
    /// depend on). One statement over the standing rows whose two
    /// intervals hold the cut and the date (ADR 17), so that a country's
    /// people never leave the server.
    async fn profiles(
        &self,
        units: Option<&[String]>,
        as_of: Date,
        cut: u64,
    ) -> Result<Vec<Profile>, ReportError> {
        let ordered = crate::standing::RANKED;
        let ranks: Vec<&str> = ordered.iter().map(|t| t.as_str()).collect();
        let sql = format!(
            "SELECT s.staff_category, s.post, {ranks}, count(*) AS people FROM ({rows}) s \
             GROUP BY s.staff_category, s.post, {ranks}",
            rows = in_post_standing(
                &format!("t.staff_category, t.post, t.{}", ranks.join(", t.")),
                units.is_some()
            ),
            ranks = ranks.join(", "),
        );
        let query = sqlx::query(&sql)
            .persistent(PLANNED_EACH_TIME)
            .bind(cut_param(cut))
            .bind(as_of.naive());
        let query = match units {
            Some(units) => query.bind(units),
            None => query,
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading who is in post and their levels"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Profile {
                    category: r.get::<String, _>("staff_category").parse().ok()?,
                    post: PositionCode::parse(r.get::<String, _>("post")).ok()?,
                    ranks: ordered
                        .iter()
                        .enumerate()
                        .filter_map(|(i, track)| {
                            let rank: Option<i16> = r.get(i + 2);
                            Some((*track, u8::try_from(rank?).unwrap_or(0)))
                        })
                        .collect(),
                    people: u64::try_from(r.get::<i64, _>("people")).unwrap_or(0),
                })
            })
            .collect())
    }

    /// `alignment`: professional-track places outside the plan, and people
    /// in civil-servant posts without an accepted specialty.
    pub async fn alignment(
        &self,
        unit: Option<&str>,
        as_of: Date,
        cut: u64,
    ) -> Result<AlignmentReport, ReportError> {
        let units = self.scope(unit, as_of, cut).await?;
        let (_, specialties): (String, SpecialtyMap) = self
            .typed(
                ReferenceKind::SpecialtyMap,
                "post-specialty map",
                as_of,
                cut,
            )
            .await?;
        // Places nominated by as_of, not cancelled by then.
        let sql = format!(
            "SELECT t.enrollment_id, t.official_id, t.specialty, EXTRACT(YEAR FROM t.effective_date)::int AS year \
             FROM rm.places t WHERE {LIVE} AND t.track = 'professional' AND t.effective_date <= $2{} \
               AND NOT EXISTS (SELECT 1 FROM rm.place_steps s WHERE s.enrollment_id = t.enrollment_id \
                   AND s.state = 'cancelled' AND s.effective_date <= $2 AND s.position <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM rm.retractions r WHERE r.event_id = s.event_id AND r.position <= $1))",
            in_units("t.nominating_unit_id", 3, units.is_some()),
        );
        let places = sqlx::query(&sql).bind(cut_param(cut)).bind(as_of.naive());
        let places = match &units {
            Some(units) => places.bind(units),
            None => places,
        };
        let places = places
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading training places"))?;
        let plans = sqlx::query(&format!(
            "SELECT t.official_id, t.period_from, t.period_to, t.planned_specialty, t.effective_date, t.position \
             FROM rm.plans t WHERE {LIVE} AND t.effective_date <= $2 ORDER BY t.effective_date, t.position"
        ))
        .bind(cut_param(cut))
        .bind(as_of.naive())
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading plans"))?;
        let mut plans_by_person: HashMap<String, Vec<PlanEntry>> = HashMap::new();
        for p in &plans {
            plans_by_person
                .entry(p.get("official_id"))
                .or_default()
                .push((
                    p.get("period_from"),
                    p.get("period_to"),
                    p.get("planned_specialty"),
                ));
        }
        let places: Vec<NominatedPlace> = places
            .iter()
            .map(|place| NominatedPlace {
                enrollment_id: place.get("enrollment_id"),
                official_id: place.get("official_id"),
                specialty: place.get("specialty"),
                year: place.get("year"),
            })
            .collect();
        let outside = outside_plan(&places, &plans_by_person);

        let people: Vec<InPost> = self
            .in_post(units.as_deref(), as_of, cut)
            .await?
            .into_iter()
            .filter(|p| p.category == StaffCategory::CivilServant)
            .collect();
        let ids: Vec<String> = people.iter().map(|p| p.official_id.clone()).collect();
        // Every diploma at each person's highest professional level, oldest
        // first: with two of the same level, one in an accepted specialty is
        // enough (a law graduate in the justice post is not misassigned
        // because they also hold a later degree in agriculture); otherwise
        // the latest one is reported.
        let rows = sqlx::query(&format!(
            "SELECT official_id, specialty FROM ( \
                SELECT t.official_id, t.specialty, t.effective_date, t.position, \
                       rank() OVER (PARTITION BY t.official_id ORDER BY t.rank DESC) AS standing \
                FROM rm.qualifications t \
                WHERE {LIVE} AND t.track = 'professional' AND t.effective_date <= $2 AND t.rank > 0 \
                  AND t.official_id = ANY($3)) q \
             WHERE standing = 1 ORDER BY official_id, effective_date, position"
        ))
        .bind(cut_param(cut))
        .bind(as_of.naive())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading professional qualifications"))?;
        let mut highest: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for r in &rows {
            highest
                .entry(r.get("official_id"))
                .or_default()
                .push(r.get("specialty"));
        }
        let misassigned = misassigned(&people, &highest, &specialties);
        Ok(AlignmentReport {
            unit_id: unit.map(str::to_owned),
            as_of,
            position: cut,
            training_outside_plan: outside,
            misassigned,
        })
    }
}

/// The rank of a level code of an ordered track (`u8::MAX`, unreachable,
/// for a code the track lacks).
pub(crate) fn rank_of(track: Track, code: &str) -> u8 {
    track
        .ordered_levels()
        .and_then(|levels| levels.iter().find(|(c, _)| *c == code))
        .map_or(u8::MAX, |(_, rank)| *rank)
}
