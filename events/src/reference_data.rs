//! Reference data: position taxonomies, standards rulesets and post →
//! specialty maps.
//!
//! Decrees change these, so they are data, not code: each is recorded in the
//! ledger as a `reference.published.v1` fact with the date from which it is
//! in force, and the domain and the reports take the one in force on a date
//! as an input. The shipped defaults (`nd92-2009`, `qd04-2004`,
//! `default-specialties`) are the files under `events/reference/`, compiled
//! into this crate.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::check::strict;
use crate::codes::{Level, PositionCode, ReferenceKind, SpecialtyCode, StaffCategory, Track};
use crate::error::FactError;
use crate::facts::ReferencePublished;
use crate::ids::ReferenceName;
use crate::strictness::values_checked;
use crate::values::Date;

/// One position (chức danh) of a taxonomy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionDef {
    pub code: PositionCode,
    pub staff_category: StaffCategory,
    /// Key leaders (cán bộ chủ chốt).
    #[serde(default)]
    pub key_leader: bool,
    pub title_vi: String,
    pub title_en: String,
}

/// A position taxonomy: which positions exist and their staff category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTaxonomy")]
pub struct PositionTaxonomy {
    positions: Vec<PositionDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxonomy {
    #[serde(deserialize_with = "positions_one_by_one")]
    positions: Vec<PositionDef>,
}

impl TryFrom<RawTaxonomy> for PositionTaxonomy {
    type Error = String;
    fn try_from(raw: RawTaxonomy) -> Result<Self, String> {
        if values_checked() && raw.positions.is_empty() {
            return Err("a taxonomy lists at least one position".into());
        }
        Ok(Self {
            positions: raw.positions,
        })
    }
}

/// Reads a taxonomy's positions, checking each against the ones before it
/// inside its own object, so that an error names the entry (its line in a
/// file, its index in a fact), not the end of the document.
fn positions_one_by_one<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PositionDef>, D::Error> {
    struct Positions;
    impl<'de> Visitor<'de> for Positions {
        type Value = Vec<PositionDef>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of positions")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut positions: Vec<PositionDef> = Vec::new();
            loop {
                let earlier = &positions;
                let next = seq.next_element_seed(InObject::new(|p: PositionDef| {
                    check_position(earlier, p)
                }))?;
                match next {
                    Some(p) => positions.push(p),
                    None => return Ok(positions),
                }
            }
        }
    }
    d.deserialize_seq(Positions)
}

fn check_position(earlier: &[PositionDef], p: PositionDef) -> Result<PositionDef, String> {
    if values_checked() {
        if earlier.iter().any(|e| e.code == p.code) {
            return Err(format!("position {} is listed twice", p.code));
        }
        if p.key_leader && p.staff_category != StaffCategory::Cadre {
            return Err(format!(
                "position {} is flagged key_leader but key leaders are cadres, not {}",
                p.code, p.staff_category
            ));
        }
    }
    Ok(p)
}

/// Deserialises a JSON object as `Raw` and hands it to `check`, which may
/// refuse it. Refusing inside the object (not after it, as `try_from`
/// does) makes serde_json place the error at the object's own end, so a
/// reference file's error names the object's line. Arrays are refused.
struct InObject<Raw, C> {
    check: C,
    raw: PhantomData<fn() -> Raw>,
}

impl<Raw, C> InObject<Raw, C> {
    fn new(check: C) -> Self {
        Self {
            check,
            raw: PhantomData,
        }
    }
}

impl<'de, Raw: Deserialize<'de>, T, C: FnOnce(Raw) -> Result<T, String>> Visitor<'de>
    for InObject<Raw, C>
{
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let raw = Raw::deserialize(MapAccessDeserializer::new(map))?;
        (self.check)(raw).map_err(serde::de::Error::custom)
    }
}

impl<'de, Raw: Deserialize<'de>, T, C: FnOnce(Raw) -> Result<T, String>> DeserializeSeed<'de>
    for InObject<Raw, C>
{
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

/// Why a position cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("position {0} is not in the position taxonomy in force")]
    Unknown(PositionCode),
    #[error("position {position} is a {expected} position, not {given}")]
    CategoryMismatch {
        position: PositionCode,
        expected: StaffCategory,
        given: StaffCategory,
    },
}

impl PositionTaxonomy {
    pub fn positions(&self) -> &[PositionDef] {
        &self.positions
    }

    pub fn position(&self, code: &PositionCode) -> Option<&PositionDef> {
        self.positions.iter().find(|p| &p.code == code)
    }

    /// Checks that `code` exists and belongs to `category`.
    pub fn check(
        &self,
        code: &PositionCode,
        category: StaffCategory,
    ) -> Result<&PositionDef, PositionError> {
        let def = self
            .position(code)
            .ok_or_else(|| PositionError::Unknown(code.clone()))?;
        if def.staff_category != category {
            return Err(PositionError::CategoryMismatch {
                position: code.clone(),
                expected: def.staff_category,
                given: category,
            });
        }
        Ok(def)
    }
}

/// What one group of positions must reach to meet the standards.
/// (Deserialised from a `RawRequirement`, checked inside its object.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// A name for the group (`key_leaders`, `other_cadres`, …).
    pub group: String,
    pub staff_category: StaffCategory,
    /// `Some(true)`: only key leaders; `Some(false)`: all but key leaders;
    /// absent: either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_leader: Option<bool>,
    /// The lowest level that meets the standard, per ordered track.
    pub minimums: BTreeMap<Track, Level>,
    /// Positions to which a track's standard does not apply.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exemptions: BTreeMap<Track, Vec<PositionCode>>,
}

impl<'de> Deserialize<'de> for Requirement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(InObject::new(
            <Requirement as TryFrom<RawRequirement>>::try_from,
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    group: String,
    staff_category: StaffCategory,
    #[serde(default)]
    key_leader: Option<bool>,
    minimums: BTreeMap<Track, Level>,
    #[serde(default)]
    exemptions: BTreeMap<Track, Vec<PositionCode>>,
}

impl TryFrom<RawRequirement> for Requirement {
    type Error = String;
    fn try_from(raw: RawRequirement) -> Result<Self, String> {
        if values_checked() {
            for (track, level) in &raw.minimums {
                if track.ordered_levels().is_none() {
                    return Err(format!(
                        "group {}: {track} has no ordered levels, so it cannot set a minimum",
                        raw.group
                    ));
                }
                track
                    .check_level(level)
                    .map_err(|m| format!("group {}: {m}", raw.group))?;
            }
            if let Some(track) = raw
                .exemptions
                .keys()
                .find(|t| !raw.minimums.contains_key(t))
            {
                return Err(format!(
                    "group {}: exemptions from {track}, which has no minimum",
                    raw.group
                ));
            }
        }
        Ok(Self {
            group: raw.group,
            staff_category: raw.staff_category,
            key_leader: raw.key_leader,
            minimums: raw.minimums,
            exemptions: raw.exemptions,
        })
    }
}

impl Requirement {
    /// The minimum level of `track` for a person in `position`, `None` when
    /// the track's standard does not apply to them.
    pub fn minimum(&self, track: Track, position: &PositionCode) -> Option<&Level> {
        let exempt = self
            .exemptions
            .get(&track)
            .is_some_and(|positions| positions.contains(position));
        if exempt {
            None
        } else {
            self.minimums.get(&track)
        }
    }
}

/// A standards ruleset (bộ tiêu chuẩn): the first requirement that matches a
/// person's staff category and key-leader flag applies; a person no
/// requirement matches (part-time workers) is outside the standards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    pub requirements: Vec<Requirement>,
}

impl Ruleset {
    pub fn requirement_for(
        &self,
        category: StaffCategory,
        key_leader: bool,
    ) -> Option<&Requirement> {
        self.requirements
            .iter()
            .find(|r| r.staff_category == category && r.key_leader.is_none_or(|k| k == key_leader))
    }
}

/// Which specialties each civil-servant post accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialtyMap {
    pub posts: BTreeMap<PositionCode, Vec<SpecialtyCode>>,
}

impl SpecialtyMap {
    /// Whether `specialty` is accepted for `post`; `None` when the map says
    /// nothing about the post.
    pub fn accepts(&self, post: &PositionCode, specialty: &SpecialtyCode) -> Option<bool> {
        self.posts
            .get(post)
            .map(|accepted| accepted.contains(specialty))
    }
}

/// Typed reference content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReferenceContent {
    PositionTaxonomy(PositionTaxonomy),
    Ruleset(Ruleset),
    SpecialtyMap(SpecialtyMap),
}

impl ReferenceContent {
    /// Parses the `content` of a `reference.published.v1` fact of `kind`.
    pub fn parse(kind: ReferenceKind, content: &Map<String, Value>) -> Result<Self, FactError> {
        let value = Value::Object(content.clone());
        Ok(match kind {
            ReferenceKind::PositionTaxonomy => Self::PositionTaxonomy(strict(&value)?),
            ReferenceKind::Ruleset => Self::Ruleset(strict(&value)?),
            ReferenceKind::SpecialtyMap => Self::SpecialtyMap(strict(&value)?),
        })
    }

    pub fn kind(&self) -> ReferenceKind {
        match self {
            Self::PositionTaxonomy(_) => ReferenceKind::PositionTaxonomy,
            Self::Ruleset(_) => ReferenceKind::Ruleset,
            Self::SpecialtyMap(_) => ReferenceKind::SpecialtyMap,
        }
    }
}

/// One piece of reference data as published in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published<T> {
    pub name: ReferenceName,
    pub effective_date: Date,
    /// The ledger position of the publication (breaks ties between two
    /// publications in force from the same date: the later one wins).
    pub position: u64,
    pub content: T,
}

/// The publication in force on `date`: the latest `effective_date` on or
/// before it, the higher position winning a tie; `None` when none is.
pub fn in_force<T>(published: &[Published<T>], date: Date) -> Option<&Published<T>> {
    published
        .iter()
        .filter(|p| p.effective_date <= date)
        .max_by_key(|p| (p.effective_date, p.position))
}

/// A shipped or hand-written reference file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ReferenceFileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ReferenceFileError {
    fn from_json(file: &str, err: &serde_json::Error) -> Self {
        Self {
            file: file.to_owned(),
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        }
    }
}

/// The body of a reference file with its content typed: deserialised from
/// the file's text so that errors inside the content carry a line number.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the other members are read by the first, untyped pass
struct TypedFile<T> {
    kind: IgnoredAny,
    name: IgnoredAny,
    content: T,
    effective_date: IgnoredAny,
}

fn typed<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ReferenceFileError> {
    serde_json::from_str::<TypedFile<T>>(text)
        .map(|f| f.content)
        .map_err(|e| ReferenceFileError::from_json(file, &e))
}

/// Parses a reference file (the data of a `reference.published.v1` fact:
/// kind, name, effective_date, content). Errors name the file and line.
pub fn parse_file(
    file: &str,
    text: &str,
) -> Result<(ReferencePublished, ReferenceContent), ReferenceFileError> {
    let published: ReferencePublished =
        serde_json::from_str(text).map_err(|e| ReferenceFileError::from_json(file, &e))?;
    let content = match published.kind {
        ReferenceKind::PositionTaxonomy => ReferenceContent::PositionTaxonomy(typed(file, text)?),
        ReferenceKind::Ruleset => ReferenceContent::Ruleset(typed(file, text)?),
        ReferenceKind::SpecialtyMap => ReferenceContent::SpecialtyMap(typed(file, text)?),
    };
    Ok((published, content))
}

/// The reference files shipped with the ledger: (file name, text).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "nd92-2009.json",
        include_str!("../reference/nd92-2009.json"),
    ),
    (
        "qd04-2004.json",
        include_str!("../reference/qd04-2004.json"),
    ),
    (
        "default-specialties.json",
        include_str!("../reference/default-specialties.json"),
    ),
];

/// The shipped defaults, parsed; `tledger migrate` records each one that the
/// ledger does not hold yet.
pub fn shipped() -> Result<Vec<(ReferencePublished, ReferenceContent)>, ReferenceFileError> {
    SHIPPED
        .iter()
        .map(|(file, text)| parse_file(file, text))
        .collect()
}

impl fmt::Display for ReferenceContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind().as_str())
    }
}
