//! Opaque identifiers.
//!
//! `official_id`, `unit_id`, `enrollment_id`, `institution_id`,
//! `publisher_id` and reference names are 1–64 characters of
//! `A-Z a-z 0-9 _ -`: no dots, because they become NATS subject tokens and
//! stream names (`official-<id>`). They are opaque: never a citizen
//! identification number.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};

/// The pattern every identifier matches.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// Why a string is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error("an identifier must not be empty")]
    Empty,
    #[error("an identifier has at most 64 characters, this one has {0}")]
    TooLong(usize),
    #[error("an identifier may contain only A-Z a-z 0-9 _ -, not {0:?}")]
    BadCharacter(char),
}

/// Checks the identifier rule shared by every id type.
pub fn check_id(s: &str) -> Result<(), InvalidId> {
    if s.is_empty() {
        return Err(InvalidId::Empty);
    }
    let count = s.chars().count();
    if count > 64 {
        return Err(InvalidId::TooLong(count));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(c) => Err(InvalidId::BadCharacter(c)),
        None => Ok(()),
    }
}

/// Deserialises a string and, when value checks are on, validates it.
/// Shared by every string newtype of the catalogue.
pub(crate) fn deserialize_checked<'de, D, E: fmt::Display>(
    deserializer: D,
    check: impl FnOnce(&str) -> Result<(), E>,
) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    let s = String::deserialize(deserializer)?;
    if crate::strictness::values_checked() {
        check(&s).map_err(|e| serde::de::Error::custom(format!("{e}: {s:?}")))?;
    }
    Ok(s)
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier, refusing anything outside the identifier rule.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Maps keyed by an id are looked up with the id as text (a query
        // parameter, a token's scope): hashing and equality are the text's.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_checked(d, check_id).map(Self)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": ID_PATTERN,
                    "description": "1-64 characters of A-Z a-z 0-9 _ - (opaque, never a citizen id)"
                })
            }
        }
    };
}

opaque_id!(
    /// A person (cán bộ, công chức, người hoạt động không chuyên trách).
    OfficialId
);
opaque_id!(
    /// A province, district or commune.
    UnitId
);
opaque_id!(
    /// One training place ("lượt"): from nomination to its outcome.
    EnrollmentId
);
opaque_id!(
    /// A training institution (political school, university, centre).
    InstitutionId
);
opaque_id!(
    /// An integrating body that publishes facts over NATS.
    PublisherId
);
opaque_id!(
    /// The name of a piece of reference data (`nd92-2009`, `qd04-2004`).
    ReferenceName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_identifier_charset_up_to_64_characters() {
        let longest = "a".repeat(64);
        assert_eq!(OfficialId::parse(longest.clone()).map(|i| i.0), Ok(longest));
        assert_eq!(
            UnitId::parse("dai-loc_01").map(|i| i.0),
            Ok("dai-loc_01".into())
        );
    }

    #[test]
    fn it_should_not_accept_a_dot_an_empty_id_or_65_characters() {
        assert_eq!(UnitId::parse("dai.loc"), Err(InvalidId::BadCharacter('.')));
        assert_eq!(UnitId::parse(""), Err(InvalidId::Empty));
        assert_eq!(UnitId::parse("a".repeat(65)), Err(InvalidId::TooLong(65)));
        assert_eq!(UnitId::parse("Đại"), Err(InvalidId::BadCharacter('Đ')));
    }
}
