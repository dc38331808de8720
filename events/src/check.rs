//! Strict parsing and the value rules that span more than one field.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::codes::ReferenceKind;
use crate::error::{escape_token, FactError};
use crate::facts::{
    Certificate, Evidence, FactRetracted, Funding, Institution, Left, OfficialRegistered, Planned,
    PositionAssigned, Program, QualificationRecorded, Rated, ReferencePublished, TrainingCompleted,
    TrainingEnded, TrainingEnrolled, TrainingNominated, UnitRegistered, UnitReorganised,
};
use crate::reference_data::ReferenceContent;
use crate::strictness::with_values_unchecked;

/// Deserialises `data` strictly: a shape pass (`malformed`), then a value
/// pass (`invalid_value`); see `strictness.rs` for why there are two.
pub(crate) fn strict<T: DeserializeOwned + Serialize>(data: &Value) -> Result<T, FactError> {
    // Most data are well-formed: when the value pass alone succeeds, so
    // would the shape pass (it accepts more), and only the array-for-object
    // check remains; the two located passes run only to name an error. A
    // replay parses millions of facts, so this halves its parsing.
    if let Ok(value) = T::deserialize(data) {
        if let Ok(parsed) = serde_json::to_value(&value) {
            objects_where_objects(data, &parsed, "")?;
        }
        return Ok(value);
    }
    let shape = with_values_unchecked(|| serde_path_to_error::deserialize::<_, T>(data))
        .map_err(|e| located(e, FactError::malformed))?;
    // Serialising plain data into a `Value` cannot fail (see `Fact::data`).
    if let Ok(parsed) = serde_json::to_value(&shape) {
        objects_where_objects(data, &parsed, "")?;
    }
    serde_path_to_error::deserialize(data).map_err(|e| located(e, FactError::invalid))
}

/// serde lets a struct be written as the array of its fields' values; the
/// contract does not (a wrong JSON type is malformed). Finds an array in
/// `input` where what it parsed to is an object.
fn objects_where_objects(input: &Value, parsed: &Value, pointer: &str) -> Result<(), FactError> {
    match (input, parsed) {
        (Value::Array(_), Value::Object(_)) => Err(FactError::malformed(
            pointer,
            "invalid type: array, expected an object",
        )),
        (Value::Object(input), Value::Object(parsed)) => {
            input
                .iter()
                .try_for_each(|(key, value)| match parsed.get(key) {
                    Some(p) => {
                        objects_where_objects(value, p, &format!("{pointer}/{}", escape_token(key)))
                    }
                    None => Ok(()),
                })
        }
        (Value::Array(input), Value::Array(parsed)) => input
            .iter()
            .zip(parsed)
            .enumerate()
            .try_for_each(|(i, (v, p))| objects_where_objects(v, p, &format!("{pointer}/{i}"))),
        _ => Ok(()),
    }
}

/// The content of `reference.published.v1` is an object whose shape depends
/// on `kind`; that shape is part of the fact's shape, so it is checked before
/// any value is (400 before 422), not only in [`Check`].
pub(crate) fn reference_shape(data: &Value) -> Result<(), FactError> {
    let shape: ReferencePublished =
        with_values_unchecked(|| serde_path_to_error::deserialize(data))
            .map_err(|e| located(e, FactError::malformed))?;
    // Unchecked, an unknown kind reads as the first kind: only a known kind
    // says what shape the content has (an unknown one is a 422 later).
    let known_kind = data
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.parse::<ReferenceKind>().is_ok());
    if known_kind {
        with_values_unchecked(|| ReferenceContent::parse(shape.kind, &shape.content))
            .map_err(|e| e.under("/content"))?;
    }
    Ok(())
}

/// Turns a serde error with its path into a located `FactError`.
pub(crate) fn located(
    err: serde_path_to_error::Error<serde_json::Error>,
    make: fn(String, String) -> FactError,
) -> FactError {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in err.path().iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => pointer.push_str(&format!("/{}", escape_token(key))),
            Segment::Enum { variant } => pointer.push_str(&format!("/{}", escape_token(variant))),
            Segment::Unknown => {}
        }
    }
    let message = err.inner().to_string();
    // serde reports a missing field at its parent object; name the field.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        pointer.push_str(&format!("/{}", escape_token(field)));
    }
    let message = if message.starts_with("unknown field") {
        format!("{message} (unknown fields are refused: new fields mean a new version)")
    } else {
        message
    };
    make(pointer, message)
}

/// Value rules a single field's type cannot express.
pub(crate) trait Check {
    fn check(&self) -> Result<(), FactError>;
}

/// Longest free text accepted (names, titles, reasons, numbers).
const MAX_TEXT: usize = 1000;

fn text(pointer: &str, value: &str) -> Result<(), FactError> {
    if value.trim().is_empty() {
        return Err(FactError::invalid(pointer, "must not be empty or blank"));
    }
    let n = value.chars().count();
    if n > MAX_TEXT {
        return Err(FactError::invalid(
            pointer,
            format!("at most {MAX_TEXT} characters, this has {n}"),
        ));
    }
    Ok(())
}

fn optional_text(pointer: &str, value: Option<&String>) -> Result<(), FactError> {
    value.map_or(Ok(()), |v| text(pointer, v))
}

impl Check for ReferencePublished {
    fn check(&self) -> Result<(), FactError> {
        crate::reference_data::ReferenceContent::parse(self.kind, &self.content)
            .map(|_| ())
            .map_err(|e| e.under("/content"))
    }
}

impl Check for UnitRegistered {
    fn check(&self) -> Result<(), FactError> {
        text("/name", &self.name)
    }
}

impl Check for UnitReorganised {
    fn check(&self) -> Result<(), FactError> {
        optional_text("/name", self.name.as_ref())?;
        if self.name.is_none() && self.parent_id.is_none() && self.dissolved_into.is_none() {
            return Err(FactError::invalid(
                "",
                "a reorganisation renames the unit, gives it a parent, or dissolves it into another unit: name one of name, parent_id, dissolved_into",
            ));
        }
        if self.dissolved_into.as_ref() == Some(&self.unit_id) {
            return Err(FactError::invalid(
                "/dissolved_into",
                "a unit cannot be dissolved into itself",
            ));
        }
        if self.dissolved_into.is_some() && self.parent_id.is_some() {
            return Err(FactError::invalid(
                "/parent_id",
                "a dissolved unit gets no new parent: its facts count under the unit it was dissolved into",
            ));
        }
        Ok(())
    }
}

impl Check for OfficialRegistered {
    fn check(&self) -> Result<(), FactError> {
        text("/full_name", &self.full_name)?;
        optional_text("/position_title", self.position_title.as_ref())
    }
}

impl Check for Evidence {
    fn check(&self) -> Result<(), FactError> {
        text("/number", &self.number)?;
        optional_text("/issued_by", self.issued_by.as_ref())
    }
}

impl Check for QualificationRecorded {
    fn check(&self) -> Result<(), FactError> {
        if !self.track.is_degree() {
            return Err(FactError::invalid(
                "/track",
                "refresher courses grant a certificate, not a qualification level",
            ));
        }
        self.track
            .check_level(&self.level)
            .map_err(|m| FactError::invalid("/level", m))?;
        if let Some(e) = &self.evidence {
            e.check().map_err(|e| e.under("/evidence"))?;
        }
        Ok(())
    }
}

impl Check for PositionAssigned {
    fn check(&self) -> Result<(), FactError> {
        optional_text("/position_title", self.position_title.as_ref())?;
        optional_text("/decision_no", self.decision_no.as_ref())
    }
}

impl Check for Planned {
    fn check(&self) -> Result<(), FactError> {
        if self.period_from > self.period_to {
            return Err(FactError::invalid(
                "/period_to",
                format!(
                    "the plan period runs from {} to {}: from is after to",
                    self.period_from.value(),
                    self.period_to.value()
                ),
            ));
        }
        Ok(())
    }
}

impl Check for Rated {
    fn check(&self) -> Result<(), FactError> {
        Ok(())
    }
}

impl Check for Left {
    fn check(&self) -> Result<(), FactError> {
        Ok(())
    }
}

impl Check for Program {
    fn check(&self) -> Result<(), FactError> {
        text("/title", &self.title)?;
        match (&self.level, self.track.is_degree()) {
            (None, true) => Err(FactError::invalid(
                "/level",
                format!("a {} programme needs a level", self.track),
            )),
            (Some(_), false) => Err(FactError::invalid(
                "/level",
                "a refresher course has no level: leave it out",
            )),
            (Some(level), true) => self
                .track
                .check_level(level)
                .map_err(|m| FactError::invalid("/level", m)),
            (None, false) => Ok(()),
        }
    }
}

impl Check for Institution {
    fn check(&self) -> Result<(), FactError> {
        text("/name", &self.name)
    }
}

impl Check for Funding {
    fn check(&self) -> Result<(), FactError> {
        Ok(())
    }
}

/// The door's bounds on a nomination's funding (see [`Fact::admit`]):
/// the line count at `/funding`, an amount at its line.
///
/// [`Fact::admit`]: crate::Fact::admit
pub(crate) fn funding_bounds(funding: &[Funding]) -> Result<(), FactError> {
    if funding.len() > TrainingNominated::MAX_FUNDING_LINES {
        return Err(FactError::invalid(
            "/funding",
            format!(
                "a nomination has at most {} funding lines, this has {}",
                TrainingNominated::MAX_FUNDING_LINES,
                funding.len()
            ),
        ));
    }
    match funding
        .iter()
        .position(|line| line.amount_vnd.amount() > Funding::MAX_AMOUNT_VND)
    {
        Some(i) => Err(FactError::invalid(
            format!("/funding/{i}/amount_vnd"),
            format!(
                "a funding line is at most {} đồng, this is {}",
                Funding::MAX_AMOUNT_VND,
                funding[i].amount_vnd.amount()
            ),
        )),
        None => Ok(()),
    }
}

impl Check for TrainingNominated {
    fn check(&self) -> Result<(), FactError> {
        self.program.check().map_err(|e| e.under("/program"))?;
        self.institution
            .check()
            .map_err(|e| e.under("/institution"))?;
        optional_text("/decision_no", self.decision_no.as_ref())?;
        if self.planned_start > self.planned_end {
            return Err(FactError::invalid(
                "/planned_end",
                format!(
                    "planned_start {} is after planned_end {}",
                    self.planned_start, self.planned_end
                ),
            ));
        }
        Ok(())
    }
}

impl Check for TrainingEnrolled {
    fn check(&self) -> Result<(), FactError> {
        Ok(())
    }
}

impl Check for Certificate {
    fn check(&self) -> Result<(), FactError> {
        text("/number", &self.number)
    }
}

impl Check for TrainingCompleted {
    fn check(&self) -> Result<(), FactError> {
        match &self.certificate {
            Some(c) => c.check().map_err(|e| e.under("/certificate")),
            None => Ok(()),
        }
    }
}

impl Check for TrainingEnded {
    fn check(&self) -> Result<(), FactError> {
        text("/reason", &self.reason)
    }
}

impl Check for FactRetracted {
    fn check(&self) -> Result<(), FactError> {
        text("/reason", &self.reason)
    }
}
