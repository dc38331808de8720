//! The facts (event types, v1) of the contract, their data, and parsing.
//!
//! A fact's data is parsed strictly, in two passes (see `strictness.rs`):
//! first its JSON shape (wrong type, missing or unknown field: `malformed`),
//! then its values (ids, codes, ranges, cross-field rules: `invalid_value`).
//! Unknown fields are refused: new fields mean a new version.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::codes::{
    CompletionResult, EvidenceKind, FundingSource, Gender, LeaveReason, Level, PositionCode,
    RatingGrade, ReferenceKind, SpecialtyCode, StaffCategory, Track, UnitLevel,
};
use crate::error::FactError;
use crate::ids::{EnrollmentId, InstitutionId, OfficialId, ReferenceName, UnitId};
use crate::values::{Date, Score, Vnd, Year};

/// `reference.published.v1`: a position taxonomy, standards ruleset or post →
/// specialty map, in force from `effective_date`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferencePublished {
    pub kind: ReferenceKind,
    pub name: ReferenceName,
    /// The reference data itself; its shape depends on `kind` (see `reference`).
    pub content: Map<String, Value>,
    pub effective_date: Date,
}

/// `unit.registered.v1`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitRegistered {
    pub unit_id: UnitId,
    pub name: String,
    pub level: UnitLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<UnitId>,
    pub effective_date: Date,
}

/// `unit.reorganised.v1`: renamed, re-parented, or dissolved into another unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitReorganised {
    pub unit_id: UnitId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<UnitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissolved_into: Option<UnitId>,
    pub effective_date: Date,
}

/// `official.registered.v1`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficialRegistered {
    pub official_id: OfficialId,
    pub full_name: String,
    pub birth_year: Year,
    pub gender: Gender,
    pub ethnic_minority: bool,
    pub unit_id: UnitId,
    pub staff_category: StaffCategory,
    pub position: PositionCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_title: Option<String>,
    pub effective_date: Date,
}

/// Evidence of a qualification: a diploma (văn bằng) or certificate (chứng chỉ).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<String>,
}

/// `official.qualification_recorded.v1`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualificationRecorded {
    pub official_id: OfficialId,
    pub track: Track,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<SpecialtyCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The enrollment whose completion granted this qualification, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_enrollment_id: Option<EnrollmentId>,
    pub effective_date: Date,
}

/// `official.position_assigned.v1`: a new post, also a return to post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionAssigned {
    pub official_id: OfficialId,
    pub unit_id: UnitId,
    pub staff_category: StaffCategory,
    pub position: PositionCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_no: Option<String>,
    pub effective_date: Date,
}

/// `official.planned.v1`: a staffing-plan entry (quy hoạch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Planned {
    pub official_id: OfficialId,
    pub target_position: PositionCode,
    pub period_from: Year,
    pub period_to: Year,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_specialty: Option<SpecialtyCode>,
    pub effective_date: Date,
}

/// `official.rated.v1`: the annual rating (xếp loại).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rated {
    pub official_id: OfficialId,
    pub year: Year,
    pub rating: RatingGrade,
    pub effective_date: Date,
}

/// `official.left.v1`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Left {
    pub official_id: OfficialId,
    pub reason: LeaveReason,
    pub effective_date: Date,
}

/// The programme of a training place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub track: Track,
    /// Required for degree tracks, absent for `refresher`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<SpecialtyCode>,
    pub title: String,
}

/// The institution that trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub institution_id: InstitutionId,
    pub name: String,
    pub in_province: bool,
}

/// One funding line of a training place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Funding {
    pub source: FundingSource,
    pub amount_vnd: Vnd,
}

impl Funding {
    /// The largest line a new nomination may carry: 10^12 đồng (one
    /// trillion, some 40 million US dollars), hundreds of times any real
    /// training cost (a doctorate abroad costs a few billion đồng), so that
    /// a mistyped or hostile amount is refused while every real one passes.
    /// A door bound ([`Fact::admit`]): recorded facts keep what they hold.
    pub const MAX_AMOUNT_VND: i64 = 1_000_000_000_000;
}

/// `training.nominated.v1`: sent to training (cử đi đào tạo), by decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingNominated {
    pub enrollment_id: EnrollmentId,
    pub official_id: OfficialId,
    pub nominating_unit_id: UnitId,
    pub program: Program,
    pub institution: Institution,
    pub planned_start: Date,
    pub planned_end: Date,
    pub funding: Vec<Funding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_no: Option<String>,
    pub effective_date: Date,
}

impl TrainingNominated {
    /// The most funding lines a new nomination may carry: a place is paid
    /// by a few of the five sources, maybe in instalments; 16 lines leave
    /// room for that. A door bound ([`Fact::admit`]), like
    /// [`Funding::MAX_AMOUNT_VND`]: together they keep one place's funding
    /// below 1.6 × 10^13 đồng.
    pub const MAX_FUNDING_LINES: usize = 16;
}

/// `training.enrolled.v1`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingEnrolled {
    pub enrollment_id: EnrollmentId,
    pub effective_date: Date,
}

/// A certificate or diploma handed out on completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub kind: EvidenceKind,
    pub number: String,
}

/// `training.completed.v1`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingCompleted {
    pub enrollment_id: EnrollmentId,
    pub result: CompletionResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    pub effective_date: Date,
}

/// `training.failed.v1`, `training.withdrawn.v1` and `training.cancelled.v1`:
/// a training place that ended without completion, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingEnded {
    pub enrollment_id: EnrollmentId,
    pub reason: String,
    pub effective_date: Date,
}

/// `fact.retracted.v1`: appended to the retracted fact's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactRetracted {
    /// The ledger's id of the retracted fact.
    pub event_id: Uuid,
    pub reason: String,
    pub effective_date: Date,
}

/// The kinds of stream (aggregate) facts belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateKind {
    Reference,
    Unit,
    Official,
    Enrollment,
}

impl AggregateKind {
    pub const ALL: &'static [Self] = &[
        Self::Reference,
        Self::Unit,
        Self::Official,
        Self::Enrollment,
    ];

    /// The aggregate type as used in stream names and NATS subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Reference => "reference",
            AggregateKind::Unit => "unit",
            AggregateKind::Official => "official",
            AggregateKind::Enrollment => "enrollment",
        }
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stream: `<aggregate>-<id>` (`official-vn-0001`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamId {
    pub aggregate: AggregateKind,
    pub id: String,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.aggregate, self.id)
    }
}

macro_rules! catalogue {
    ($( $variant:ident($data:ty) => $wire:literal, $agg:ident; )+) => {
        /// Every fact type of the contract.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FactType {
            $($variant),+
        }

        impl FactType {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The CloudEvents `type`, e.g. `training.nominated.v1`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire),+
                }
            }

            /// The aggregate whose stream holds facts of this type; `None`
            /// for retractions, which go to the retracted fact's stream.
            pub fn aggregate(self) -> Option<AggregateKind> {
                match self {
                    $(Self::$variant => catalogue!(@agg $agg)),+
                }
            }
        }

        /// A fact with its data.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Fact {
            $($variant($data)),+
        }

        impl Fact {
            pub fn fact_type(&self) -> FactType {
                match self {
                    $(Self::$variant(_) => FactType::$variant),+
                }
            }

            /// When it happened (valid time).
            pub fn effective_date(&self) -> Date {
                match self {
                    $(Self::$variant(d) => d.effective_date),+
                }
            }

            fn parse_as(fact_type: FactType, data: &Value) -> Result<Self, FactError> {
                match fact_type {
                    $(FactType::$variant => crate::check::strict::<$data>(data).map(Self::$variant)),+
                }
            }

            /// Reads JSON text straight into the typed data of
            /// `fact_type`, values checked, without the located passes.
            fn read_as(fact_type: FactType, text: &str) -> Result<Self, serde_json::Error> {
                match fact_type {
                    $(FactType::$variant => serde_json::from_str::<$data>(text).map(Self::$variant)),+
                }
            }

            fn check(&self) -> Result<(), FactError> {
                match self {
                    $(Self::$variant(d) => crate::check::Check::check(d)),+
                }
            }

            /// JSON Schemas of every fact type's data, by type.
            pub fn schemas() -> Vec<(FactType, schemars::Schema)> {
                vec![$((FactType::$variant, schemars::schema_for!($data))),+]
            }
        }
    };
    (@agg none) => { None };
    (@agg $agg:ident) => { Some(AggregateKind::$agg) };
}

catalogue! {
    ReferencePublished(ReferencePublished) => "reference.published.v1", Reference;
    UnitRegistered(UnitRegistered) => "unit.registered.v1", Unit;
    UnitReorganised(UnitReorganised) => "unit.reorganised.v1", Unit;
    OfficialRegistered(OfficialRegistered) => "official.registered.v1", Official;
    QualificationRecorded(QualificationRecorded) => "official.qualification_recorded.v1", Official;
    PositionAssigned(PositionAssigned) => "official.position_assigned.v1", Official;
    Planned(Planned) => "official.planned.v1", Official;
    Rated(Rated) => "official.rated.v1", Official;
    Left(Left) => "official.left.v1", Official;
    TrainingNominated(TrainingNominated) => "training.nominated.v1", Enrollment;
    TrainingEnrolled(TrainingEnrolled) => "training.enrolled.v1", Enrollment;
    TrainingCompleted(TrainingCompleted) => "training.completed.v1", Enrollment;
    TrainingFailed(TrainingEnded) => "training.failed.v1", Enrollment;
    TrainingWithdrawn(TrainingEnded) => "training.withdrawn.v1", Enrollment;
    TrainingCancelled(TrainingEnded) => "training.cancelled.v1", Enrollment;
    FactRetracted(FactRetracted) => "fact.retracted.v1", none;
}

/// A `type` that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fact type {0:?}")]
pub struct UnknownFactType(pub String);

impl FromStr for FactType {
    type Err = UnknownFactType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FactType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownFactType(s.to_owned()))
    }
}

impl fmt::Display for FactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Fact {
    /// Parses the data of a fact of the given type, strictly: shape errors
    /// first (`malformed`), then value errors (`invalid_value`); each names
    /// the member as a JSON Pointer relative to the data.
    pub fn from_data(fact_type: FactType, data: &Value) -> Result<Self, FactError> {
        if fact_type == FactType::ReferencePublished {
            crate::check::reference_shape(data)?;
        }
        let fact = Self::parse_as(fact_type, data)?;
        fact.check()?;
        Ok(fact)
    }

    /// Parses the data of a fact arriving at the door (a command, a
    /// published fact) as [`Fact::from_data`] does, then applies the door's
    /// bounds ([`Fact::within_door_bounds`]). Recorded facts are read with
    /// [`Fact::from_data`] or [`Fact::from_recorded`], without them: a fact
    /// accepted before a bound existed is never judged again.
    pub fn admit(fact_type: FactType, data: &Value) -> Result<Self, FactError> {
        let fact = Self::from_data(fact_type, data)?;
        fact.within_door_bounds()?;
        Ok(fact)
    }

    /// Bounds no real fact comes near, which keep what one fact can weigh
    /// on the ledger's sums: at most [`TrainingNominated::MAX_FUNDING_LINES`]
    /// funding lines of at most [`Funding::MAX_AMOUNT_VND`] each (422).
    pub fn within_door_bounds(&self) -> Result<(), FactError> {
        match self {
            Fact::TrainingNominated(n) => crate::check::funding_bounds(&n.funding),
            _ => Ok(()),
        }
    }

    /// Parses only the JSON shape of the data (400 errors), without checking
    /// values: ids may break the id rule, unknown codes read as the first
    /// code and bad dates as the earliest date. For look-ups that must come
    /// before value errors in the contract's error order (404 and scope
    /// before 422); never record such a fact.
    pub fn shape_only(fact_type: FactType, data: &Value) -> Result<Self, FactError> {
        crate::strictness::with_values_unchecked(|| Self::parse_as(fact_type, data))
    }

    /// Parses the data of a recorded fact: the JSON text the ledger holds.
    /// The ledger holds only data this crate checked and wrote as objects,
    /// so the text is read straight into the typed data (values checked as
    /// ever) without building a `Value` first: a rebuild reads millions of
    /// facts. Reference data (whose content is free-form JSON checked on
    /// its own) and any text that does not read so go through
    /// [`Fact::from_data`], which names what is wrong. (Read so, serde
    /// would also take a struct written as the array of its values, which
    /// the checked parse refuses; the ledger never holds one.)
    pub fn from_recorded(fact_type: FactType, text: &str) -> Result<Self, FactError> {
        if fact_type != FactType::ReferencePublished {
            if let Ok(fact) = Self::read_as(fact_type, text) {
                fact.check()?;
                return Ok(fact);
            }
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| FactError::malformed("", format!("the data is not JSON: {e}")))?;
        Self::from_data(fact_type, &value)
    }

    /// Parses a command or message body (bytes) as the data of `fact_type`,
    /// refusing duplicate member names and U+0000 (see `json_text`).
    pub fn from_slice(fact_type: FactType, body: &[u8]) -> Result<Self, FactError> {
        let value = crate::json_text::parse(body, "body")?;
        Self::from_data(fact_type, &value)
    }

    /// The fact's data as JSON, as it appears in the `data` of a CloudEvent.
    pub fn data(&self) -> Value {
        // Serialising plain data structs into a `Value` cannot fail: every
        // map key is a string and there are no non-finite floats (Score
        // rejects them).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The stream this fact belongs to; `None` for a retraction, which
    /// belongs to the stream of the fact it retracts.
    pub fn stream(&self) -> Option<StreamId> {
        let (aggregate, id) = match self {
            Fact::ReferencePublished(d) => (AggregateKind::Reference, d.name.to_string()),
            Fact::UnitRegistered(d) => (AggregateKind::Unit, d.unit_id.to_string()),
            Fact::UnitReorganised(d) => (AggregateKind::Unit, d.unit_id.to_string()),
            Fact::OfficialRegistered(d) => (AggregateKind::Official, d.official_id.to_string()),
            Fact::QualificationRecorded(d) => (AggregateKind::Official, d.official_id.to_string()),
            Fact::PositionAssigned(d) => (AggregateKind::Official, d.official_id.to_string()),
            Fact::Planned(d) => (AggregateKind::Official, d.official_id.to_string()),
            Fact::Rated(d) => (AggregateKind::Official, d.official_id.to_string()),
            Fact::Left(d) => (AggregateKind::Official, d.official_id.to_string()),
            Fact::TrainingNominated(d) => (AggregateKind::Enrollment, d.enrollment_id.to_string()),
            Fact::TrainingEnrolled(d) => (AggregateKind::Enrollment, d.enrollment_id.to_string()),
            Fact::TrainingCompleted(d) => (AggregateKind::Enrollment, d.enrollment_id.to_string()),
            Fact::TrainingFailed(d) | Fact::TrainingWithdrawn(d) | Fact::TrainingCancelled(d) => {
                (AggregateKind::Enrollment, d.enrollment_id.to_string())
            }
            Fact::FactRetracted(_) => return None,
        };
        Some(StreamId { aggregate, id })
    }

    /// The streams that must exist before this fact can be decided: the
    /// person, place or units it names (other than a stream it creates). A
    /// published fact that names a missing one waits for it (docs/contract.md
    /// "Publishing facts": parked).
    pub fn referenced_streams(&self) -> Vec<StreamId> {
        let unit = |u: &UnitId| StreamId {
            aggregate: AggregateKind::Unit,
            id: u.to_string(),
        };
        let official = |o: &OfficialId| StreamId {
            aggregate: AggregateKind::Official,
            id: o.to_string(),
        };
        let enrollment = |e: &EnrollmentId| StreamId {
            aggregate: AggregateKind::Enrollment,
            id: e.to_string(),
        };
        match self {
            Fact::ReferencePublished(_) | Fact::FactRetracted(_) => Vec::new(),
            Fact::UnitRegistered(d) => d.parent_id.iter().map(unit).collect(),
            Fact::UnitReorganised(d) => std::iter::once(&d.unit_id)
                .chain(&d.parent_id)
                .chain(&d.dissolved_into)
                .map(unit)
                .collect(),
            Fact::OfficialRegistered(d) => vec![unit(&d.unit_id)],
            Fact::PositionAssigned(d) => vec![official(&d.official_id), unit(&d.unit_id)],
            Fact::QualificationRecorded(d) => vec![official(&d.official_id)],
            Fact::Planned(d) => vec![official(&d.official_id)],
            Fact::Rated(d) => vec![official(&d.official_id)],
            Fact::Left(d) => vec![official(&d.official_id)],
            Fact::TrainingNominated(d) => {
                vec![official(&d.official_id), unit(&d.nominating_unit_id)]
            }
            Fact::TrainingEnrolled(d) => vec![enrollment(&d.enrollment_id)],
            Fact::TrainingCompleted(d) => vec![enrollment(&d.enrollment_id)],
            Fact::TrainingFailed(d) | Fact::TrainingWithdrawn(d) | Fact::TrainingCancelled(d) => {
                vec![enrollment(&d.enrollment_id)]
            }
        }
    }
}
