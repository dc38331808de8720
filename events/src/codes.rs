//! Closed code sets of the contract (docs/domain.md), and the open code types
//! (specialty, position, level) whose allowed values come from reference
//! data or from the track.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{check_id, deserialize_checked, InvalidId};

/// A code that is not in its closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {set} code {code:?}; expected one of: {expected}")]
pub struct UnknownCode {
    pub set: &'static str,
    pub code: String,
    pub expected: String,
}

macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident, $set:literal { $($(#[$vdoc:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every code of the set, in the contract's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok(Self::$variant),)+
                    _ => Err(UnknownCode {
                        set: $set,
                        code: s.to_owned(),
                        expected: [$($code),+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                match s.parse() {
                    Ok(code) => Ok(code),
                    // The shape-only pass accepts any string (see strictness.rs).
                    Err(_) if !crate::strictness::values_checked() => Ok(Self::ALL[0]),
                    Err(e) => Err(serde::de::Error::custom(e)),
                }
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "enum": [$($code),+] })
            }
        }
    };
}

code_enum!(
    /// Staff category (cán bộ / công chức / người hoạt động không chuyên trách).
    StaffCategory, "staff category" {
        Cadre => "cadre",
        CivilServant => "civil_servant",
        PartTime => "part_time",
    }
);

code_enum!(Gender, "gender" { Male => "male", Female => "female" });

code_enum!(
    /// Administrative level of a unit.
    UnitLevel, "unit level" {
        Province => "province",
        District => "district",
        Commune => "commune",
    }
);

code_enum!(
    /// Qualification and training tracks. `refresher` (bồi dưỡng) is a
    /// training track only: it grants a certificate, not a level.
    Track, "track" {
        GeneralEducation => "general_education",
        Professional => "professional",
        PoliticalTheory => "political_theory",
        StateManagement => "state_management",
        It => "it",
        ForeignLanguage => "foreign_language",
        Refresher => "refresher",
    }
);

code_enum!(
    /// Annual rating (xếp loại).
    RatingGrade, "rating" {
        Excellent => "excellent",
        Good => "good",
        Completed => "completed",
        NotCompleted => "not_completed",
    }
);

code_enum!(
    /// Result of a completed training place.
    CompletionResult, "result" {
        Excellent => "excellent",
        Good => "good",
        Fair => "fair",
        Pass => "pass",
    }
);

code_enum!(
    /// Why a person left their post.
    LeaveReason, "leaving reason" {
        Retired => "retired",
        Transferred => "transferred",
        Resigned => "resigned",
        Dismissed => "dismissed",
        Deceased => "deceased",
    }
);

code_enum!(
    /// Who pays for a training place.
    FundingSource, "funding source" {
        Province => "province",
        District => "district",
        Agency => "agency",
        SelfFunded => "self",
        Other => "other",
    }
);

code_enum!(
    /// Kind of evidence for a qualification (văn bằng / chứng chỉ).
    EvidenceKind, "evidence kind" { Diploma => "diploma", Certificate => "certificate" }
);

code_enum!(
    /// Kind of reference data.
    ReferenceKind, "reference kind" {
        PositionTaxonomy => "position_taxonomy",
        Ruleset => "ruleset",
        SpecialtyMap => "specialty_map",
    }
);

/// The ordered levels of the ordered tracks, low to high, with their rank.
/// `bachelor` (cử nhân) in political theory counts as `advanced`.
const GENERAL_EDUCATION: &[(&str, u8)] = &[
    ("primary", 1),
    ("lower_secondary", 2),
    ("upper_secondary", 3),
];
const PROFESSIONAL: &[(&str, u8)] = &[
    ("none", 0),
    ("elementary", 1),
    ("intermediate", 2),
    ("college", 3),
    ("university", 4),
    ("master", 5),
    ("doctorate", 6),
];
const POLITICAL_THEORY: &[(&str, u8)] = &[
    ("elementary", 1),
    ("intermediate", 2),
    ("advanced", 3),
    ("bachelor", 3),
];
const STATE_MANAGEMENT: &[(&str, u8)] = &[
    ("clerk", 1),
    ("specialist", 2),
    ("principal_specialist", 3),
    ("senior_specialist", 4),
];

impl Track {
    /// The ordered levels of this track with their ranks; `None` for the
    /// free-level tracks (`it`, `foreign_language`) and for `refresher`.
    pub fn ordered_levels(self) -> Option<&'static [(&'static str, u8)]> {
        match self {
            Track::GeneralEducation => Some(GENERAL_EDUCATION),
            Track::Professional => Some(PROFESSIONAL),
            Track::PoliticalTheory => Some(POLITICAL_THEORY),
            Track::StateManagement => Some(STATE_MANAGEMENT),
            Track::It | Track::ForeignLanguage | Track::Refresher => None,
        }
    }

    /// Degree tracks (đào tạo) grant a level; `refresher` does not.
    pub fn is_degree(self) -> bool {
        self != Track::Refresher
    }

    /// The rank of `level` in this track (higher is better), `None` when the
    /// track is unordered or the level is not one of its codes.
    pub fn rank(self, level: &Level) -> Option<u8> {
        self.ordered_levels()?
            .iter()
            .find(|(code, _)| *code == level.as_str())
            .map(|(_, rank)| *rank)
    }

    /// Checks that `level` is a level of this track.
    pub fn check_level(self, level: &Level) -> Result<(), String> {
        match self.ordered_levels() {
            _ if self == Track::Refresher => {
                Err("refresher courses grant a certificate, not a level".into())
            }
            None => Ok(()),
            Some(levels) if levels.iter().any(|(c, _)| *c == level.as_str()) => Ok(()),
            Some(levels) => Err(format!(
                "unknown {} level {:?}; expected one of: {}",
                self,
                level.as_str(),
                levels
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Why a string is not a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a code is 1-64 characters of a-z 0-9 _")]
pub struct InvalidCode;

/// The rule shared by specialty and position codes: `[a-z0-9_]{1,64}`.
pub fn check_code(s: &str) -> Result<(), InvalidCode> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(()).ok_or(InvalidCode)
}

/// The pattern of specialty and position codes.
pub const CODE_PATTERN: &str = "^[a-z0-9_]{1,64}$";

macro_rules! open_code {
    ($(#[$doc:meta])* $name:ident, $check:path, $err:ty, $pattern:expr, $desc:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, $err> {
                let s = s.into();
                $check(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_checked(d, $check).map(Self)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $desc })
            }
        }
    };
}

open_code!(
    /// A specialty (chuyên ngành): `land_management`, `accounting`, …
    SpecialtyCode, check_code, InvalidCode, CODE_PATTERN,
    "specialty code, [a-z0-9_]{1,64}"
);
open_code!(
    /// A position (chức danh) code; which codes exist, and their staff
    /// category, is decided by the position taxonomy in force.
    PositionCode, check_code, InvalidCode, CODE_PATTERN,
    "position code from the taxonomy in force, [a-z0-9_]{1,64}"
);
open_code!(
    /// A level code. Ordered tracks accept only their own codes (checked
    /// against the track, see [`Track::check_level`]); `it` and
    /// `foreign_language` levels are free, unordered codes.
    Level, check_id, InvalidId, crate::ids::ID_PATTERN,
    "level code; for ordered tracks one of the track's levels"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn level(s: &str) -> Level {
        Level::parse(s).expect("valid level code")
    }

    #[test]
    fn ranks_follow_the_domain_order_and_bachelor_counts_as_advanced() {
        let p = Track::Professional;
        assert!(p.rank(&level("college")) > p.rank(&level("intermediate")));
        assert_eq!(p.rank(&level("doctorate")), Some(6));
        let pt = Track::PoliticalTheory;
        assert_eq!(pt.rank(&level("bachelor")), pt.rank(&level("advanced")));
        assert_eq!(Track::It.rank(&level("B1")), None);
    }

    #[test]
    fn it_should_not_accept_a_level_of_another_track() {
        let err = Track::Professional.check_level(&level("advanced"));
        assert_eq!(
            err,
            Err("unknown professional level \"advanced\"; expected one of: none, elementary, intermediate, college, university, master, doctorate".into())
        );
        assert_eq!(Track::ForeignLanguage.check_level(&level("B1")), Ok(()));
        assert!(Track::Refresher.check_level(&level("x")).is_err());
    }

    #[test]
    fn codes_round_trip_through_their_wire_form() {
        for s in StaffCategory::ALL {
            assert_eq!(s.as_str().parse::<StaffCategory>(), Ok(*s));
        }
        assert_eq!(
            "self".parse::<FundingSource>(),
            Ok(FundingSource::SelfFunded)
        );
        let err = "phd".parse::<Track>().expect_err("not a track");
        assert_eq!(err.code, "phd");
    }

    #[test]
    fn specialty_codes_are_lower_snake_case() {
        assert!(SpecialtyCode::parse("land_management").is_ok());
        assert_eq!(SpecialtyCode::parse("Land"), Err(InvalidCode));
        assert_eq!(SpecialtyCode::parse(""), Err(InvalidCode));
    }
}
