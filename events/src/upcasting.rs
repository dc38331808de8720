//! Reading a stored fact of an older schema version as the current one.
//!
//! A fact is stored as it was recorded: its type (`official.rated.v1`), the
//! `schema_version` column that copies the type's `.v<n>` ending, and its
//! data. When a fact's shape changes, the catalogue gets the next version
//! (`official.registered.v2` …) and the rows already stored stay as they
//! are; whoever turns a stored row into a typed [`Fact`](crate::Fact)
//! passes it through [`Upcasting::to_current`] first. That reads the
//! stored version and applies one [`Upcaster`] per version until the
//! current one, and refuses a version it has no step for
//! ([`UpcastError`]), so an old row is never parsed as if it were new.
//!
//! The hash chain is over the stored bytes, never the upcast form:
//! `chain.rs` hashes the `type` and `data` the row holds (the verifier
//! reads them as text straight from the row), so upcasting changes no
//! hash, and an upcast fact is never written back, re-hashed or
//! republished in its new form (docs/adr/0022-upcasting-stored-facts.md).
//!
//! Every fact of the catalogue is at its first version today, so the
//! shipped steps ([`Upcasting::shipped`]) are none; the first real users
//! are the v2 facts, each step added here beside the version it reads.

use serde_json::{Map, Value};

use crate::facts::FactType;

/// The data of a fact as a JSON object: what an [`Upcaster`] rewrites.
pub type Body = Map<String, Value>;

/// One step: reads the data of `fact_type`'s family stored at version
/// `from` and returns it as version `from + 1`, or says why it cannot.
#[derive(Clone, Copy, Debug)]
pub struct Upcaster {
    /// The catalogue's current type of the family the step belongs to.
    pub fact_type: FactType,
    /// The version the step reads.
    pub from: u32,
    pub step: fn(Body) -> Result<Body, String>,
}

/// Why a stored fact cannot be read as the current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("the stored type {event_type:?} is no version of a fact in the catalogue")]
    UnknownType { event_type: String },
    #[error(
        "the stored type {event_type:?} does not end in the schema version it is stored with \
         ({schema_version})"
    )]
    VersionMismatch {
        event_type: String,
        schema_version: i64,
    },
    #[error(
        "no upcaster reads {family} at version {version} (the catalogue's version is {current})"
    )]
    UnknownVersion {
        family: String,
        version: u32,
        current: u32,
    },
    #[error("{family} at version {version} is newer than the catalogue's version {current}")]
    NewerThanCatalogue {
        family: String,
        version: u32,
        current: u32,
    },
    #[error("the stored data of {event_type} is not a JSON object: {reason}")]
    NotAnObject { event_type: String, reason: String },
    #[error("upcasting {family} from version {version}: {reason}")]
    Step {
        family: String,
        version: u32,
        reason: String,
    },
}

/// The steps that turn older versions into current ones.
#[derive(Clone, Debug, Default)]
pub struct Upcasting {
    steps: Vec<Upcaster>,
}

/// `name.v<n>` split into the family `name` and `n`.
fn split_version(event_type: &str) -> Option<(&str, u32)> {
    let (family, version) = event_type.rsplit_once(".v")?;
    // `u32::from_str` takes a leading `+`, which no type name holds.
    if !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((family, version.parse().ok()?))
}

/// Where a stored type stands against the catalogue.
enum Standing {
    Current(FactType),
    Older {
        current: FactType,
        family: String,
        version: u32,
        current_version: u32,
    },
}

impl Upcasting {
    /// The steps shipped with this build: none yet (every fact is at its
    /// first version).
    pub fn shipped() -> Self {
        Self::default()
    }

    /// These steps and `step`.
    pub fn with(mut self, step: Upcaster) -> Self {
        self.steps.push(step);
        self
    }

    /// The stored type and version against the catalogue.
    fn standing(&self, event_type: &str, schema_version: i64) -> Result<Standing, UpcastError> {
        let unknown = || UpcastError::UnknownType {
            event_type: event_type.to_owned(),
        };
        let (family, version) = split_version(event_type).ok_or_else(unknown)?;
        if i64::from(version) != schema_version {
            return Err(UpcastError::VersionMismatch {
                event_type: event_type.to_owned(),
                schema_version,
            });
        }
        // The family's newest version in the catalogue is the current one.
        let (current, current_version) = FactType::ALL
            .iter()
            .filter_map(|t| {
                let (f, v) = split_version(t.as_str())?;
                (f == family).then_some((*t, v))
            })
            .max_by_key(|(_, v)| *v)
            .ok_or_else(unknown)?;
        if version == current_version {
            Ok(Standing::Current(current))
        } else if version > current_version {
            Err(UpcastError::NewerThanCatalogue {
                family: family.to_owned(),
                version,
                current: current_version,
            })
        } else {
            Ok(Standing::Older {
                current,
                family: family.to_owned(),
                version,
                current_version,
            })
        }
    }

    /// Applies the steps from `version` up to `current_version`.
    fn climb(
        &self,
        current: FactType,
        family: &str,
        version: u32,
        current_version: u32,
        mut body: Body,
    ) -> Result<Body, UpcastError> {
        for from in version..current_version {
            let upcaster = self
                .steps
                .iter()
                .find(|s| s.fact_type == current && s.from == from)
                .ok_or_else(|| UpcastError::UnknownVersion {
                    family: family.to_owned(),
                    version: from,
                    current: current_version,
                })?;
            body = (upcaster.step)(body).map_err(|reason| UpcastError::Step {
                family: family.to_owned(),
                version: from,
                reason,
            })?;
        }
        Ok(body)
    }

    /// The current type and data of a fact stored as `event_type` at
    /// `schema_version` with `data`. A fact at the current version comes
    /// back as it is, without a copy.
    pub fn to_current(
        &self,
        event_type: &str,
        schema_version: i64,
        data: Value,
    ) -> Result<(FactType, Value), UpcastError> {
        match self.standing(event_type, schema_version)? {
            Standing::Current(fact_type) => Ok((fact_type, data)),
            Standing::Older {
                current,
                family,
                version,
                current_version,
            } => {
                let Value::Object(body) = data else {
                    return Err(UpcastError::NotAnObject {
                        event_type: event_type.to_owned(),
                        reason: "another JSON value".to_owned(),
                    });
                };
                let body = self.climb(current, &family, version, current_version, body)?;
                Ok((current, Value::Object(body)))
            }
        }
    }

    /// [`Upcasting::to_current`] for data held as JSON text (how the read
    /// models read the ledger): text at the current version comes back as
    /// it is, without being parsed.
    pub fn to_current_text(
        &self,
        event_type: &str,
        schema_version: i64,
        text: String,
    ) -> Result<(FactType, String), UpcastError> {
        match self.standing(event_type, schema_version)? {
            Standing::Current(fact_type) => Ok((fact_type, text)),
            Standing::Older {
                current,
                family,
                version,
                current_version,
            } => {
                let not_an_object = |reason: String| UpcastError::NotAnObject {
                    event_type: event_type.to_owned(),
                    reason,
                };
                let body: Body =
                    serde_json::from_str(&text).map_err(|e| not_an_object(e.to_string()))?;
                let body = self.climb(current, &family, version, current_version, body)?;
                let text =
                    serde_json::to_string(&body).map_err(|e| not_an_object(e.to_string()))?;
                Ok((current, text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Fact;

    /// A made-up first form of `official.rated`, stored as
    /// `official.rated.v0`: the grade was called `grade` and there was no
    /// `effective_date`, which is the first of January after the year
    /// rated.
    fn rated_v0(mut body: Body) -> Result<Body, String> {
        let grade = body.remove("grade").ok_or("no grade")?;
        body.insert("rating".to_owned(), grade);
        let year = body.get("year").and_then(Value::as_i64).ok_or("no year")?;
        body.insert(
            "effective_date".to_owned(),
            Value::String(format!("{}-01-01", year + 1)),
        );
        Ok(body)
    }

    fn with_rated_v0() -> Upcasting {
        Upcasting::shipped().with(Upcaster {
            fact_type: FactType::Rated,
            from: 0,
            step: rated_v0,
        })
    }

    fn v0() -> Value {
        json!({"official_id": "OF-0001", "year": 2020, "grade": "excellent"})
    }

    #[test]
    fn a_current_fact_comes_back_as_it_is() {
        let data = json!({"official_id": "OF-0001", "year": 2020, "rating": "excellent",
                          "effective_date": "2021-01-01"});
        let (fact_type, read) = Upcasting::shipped()
            .to_current("official.rated.v1", 1, data.clone())
            .expect("current");
        assert_eq!(fact_type, FactType::Rated);
        assert_eq!(read, data);
        let text = data.to_string();
        let (_, read) = Upcasting::shipped()
            .to_current_text("official.rated.v1", 1, text.clone())
            .expect("current");
        assert_eq!(read, text);
    }

    #[test]
    fn an_older_version_is_read_as_the_current_one() {
        let (fact_type, data) = with_rated_v0()
            .to_current("official.rated.v0", 0, v0())
            .expect("upcast");
        assert_eq!(fact_type, FactType::Rated);
        assert_eq!(
            data,
            json!({"official_id": "OF-0001", "year": 2020, "rating": "excellent",
                   "effective_date": "2021-01-01"})
        );
        let fact = Fact::from_data(fact_type, &data).expect("a current fact");
        assert_eq!(fact.fact_type(), FactType::Rated);
    }

    #[test]
    fn text_is_upcast_as_values_are() {
        let (fact_type, text) = with_rated_v0()
            .to_current_text("official.rated.v0", 0, v0().to_string())
            .expect("upcast");
        let (_, value) = with_rated_v0()
            .to_current("official.rated.v0", 0, v0())
            .expect("upcast");
        assert_eq!(fact_type, FactType::Rated);
        assert_eq!(serde_json::from_str::<Value>(&text).expect("JSON"), value);
        Fact::from_recorded(fact_type, &text).expect("a current fact");
    }

    #[test]
    fn a_version_without_a_step_is_refused() {
        assert_eq!(
            Upcasting::shipped().to_current("official.rated.v0", 0, v0()),
            Err(UpcastError::UnknownVersion {
                family: "official.rated".to_owned(),
                version: 0,
                current: 1,
            })
        );
        // A step of another family does not read this one.
        assert!(matches!(
            with_rated_v0().to_current("official.left.v0", 0, json!({})),
            Err(UpcastError::UnknownVersion { version: 0, .. })
        ));
    }

    #[test]
    fn a_version_newer_than_the_catalogue_is_refused() {
        assert_eq!(
            Upcasting::shipped().to_current("official.rated.v2", 2, v0()),
            Err(UpcastError::NewerThanCatalogue {
                family: "official.rated".to_owned(),
                version: 2,
                current: 1,
            })
        );
    }

    #[test]
    fn the_type_and_the_schema_version_must_agree() {
        assert_eq!(
            Upcasting::shipped().to_current("official.rated.v1", 0, v0()),
            Err(UpcastError::VersionMismatch {
                event_type: "official.rated.v1".to_owned(),
                schema_version: 0,
            })
        );
    }

    #[test]
    fn an_unknown_type_is_refused() {
        for event_type in [
            "official.promoted.v1",
            "official.rated",
            "official.rated.v+1",
        ] {
            assert_eq!(
                Upcasting::shipped().to_current(event_type, 1, v0()),
                Err(UpcastError::UnknownType {
                    event_type: event_type.to_owned()
                }),
                "{event_type}"
            );
        }
    }

    #[test]
    fn a_failing_step_names_its_version() {
        let data = json!({"official_id": "OF-0001", "year": 2020});
        assert_eq!(
            with_rated_v0().to_current("official.rated.v0", 0, data),
            Err(UpcastError::Step {
                family: "official.rated".to_owned(),
                version: 0,
                reason: "no grade".to_owned(),
            })
        );
        assert!(matches!(
            with_rated_v0().to_current("official.rated.v0", 0, json!([1])),
            Err(UpcastError::NotAnObject { .. })
        ));
    }

    #[test]
    fn every_catalogue_type_is_current() {
        for fact_type in FactType::ALL {
            let (family, version) = split_version(fact_type.as_str()).expect("a versioned type");
            assert!(!family.is_empty());
            let (read, _) = Upcasting::shipped()
                .to_current(fact_type.as_str(), i64::from(version), json!({}))
                .expect("current");
            assert_eq!(read, *fact_type);
        }
    }
}
