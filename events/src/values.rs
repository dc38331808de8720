//! Value types: calendar dates, money in whole đồng, scores and years.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::strictness::values_checked;

/// A calendar date `YYYY-MM-DD` (valid time: when something happened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(NaiveDate);

/// Why a string is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a date is a real calendar day written YYYY-MM-DD")]
pub struct InvalidDate;

impl Date {
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, day).map(Self)
    }

    pub fn naive(self) -> NaiveDate {
        self.0
    }

    pub fn year(self) -> i32 {
        chrono::Datelike::year(&self.0)
    }

    /// The date `days` later (earlier when negative); `None` past the
    /// calendar's range.
    pub fn plus_days(self, days: i64) -> Option<Self> {
        self.0
            .checked_add_signed(chrono::TimeDelta::try_days(days)?)
            .map(Self)
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Self(d)
    }
}

impl FromStr for Date {
    type Err = InvalidDate;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // chrono accepts one-digit months and days; the contract does not.
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped {
            return Err(InvalidDate);
        }
        // Read the digits directly: what `parse_from_str(s, "%Y-%m-%d")`
        // reads from this shape, without a format string (facts carry many
        // dates, and an export replays millions).
        let number = |range: std::ops::Range<usize>| {
            b[range]
                .iter()
                .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'))
        };
        let year = i32::try_from(number(0..4)).map_err(|_| InvalidDate)?;
        NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
            .map(Self)
            .ok_or(InvalidDate)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.parse() {
            Ok(date) => Ok(date),
            Err(_) if !values_checked() => Ok(Self(NaiveDate::MIN)),
            Err(e) => Err(serde::de::Error::custom(format!("{e}: {s:?}"))),
        }
    }
}

impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" })
    }
}

/// An amount of money in whole Vietnamese đồng. Never a float, never
/// negative, and at most 2^53 − 1 so that it survives RFC 8785 canonical JSON
/// (whose numbers are IEEE doubles) exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(transparent)]
pub struct Vnd(i64);

impl Vnd {
    /// The largest amount: 2^53 − 1 đồng.
    pub const MAX: i64 = (1 << 53) - 1;

    pub fn new(amount: i64) -> Option<Self> {
        (0..=Self::MAX).contains(&amount).then_some(Self(amount))
    }

    pub fn amount(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Vnd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match Self::new(n) {
            Some(amount) => Ok(amount),
            None if !values_checked() => Ok(Self(0)),
            None => Err(serde::de::Error::custom(format!(
                "an amount is whole đồng from 0 to {}, not {n}",
                Self::MAX
            ))),
        }
    }
}

impl JsonSchema for Vnd {
    fn schema_name() -> Cow<'static, str> {
        "Vnd".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 0, "maximum": Vnd::MAX, "description": "whole đồng" })
    }
}

/// A score from 0 to 10.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Score(f64);

impl Score {
    pub fn new(score: f64) -> Option<Self> {
        (score.is_finite() && (0.0..=10.0).contains(&score)).then_some(Self(score))
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = f64::deserialize(d)?;
        match Self::new(n) {
            Some(score) => Ok(score),
            None if !values_checked() => Ok(Self(0.0)),
            None => Err(serde::de::Error::custom(format!(
                "a score is from 0 to 10, not {n}"
            ))),
        }
    }
}

impl JsonSchema for Score {
    fn schema_name() -> Cow<'static, str> {
        "Score".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "minimum": 0, "maximum": 10 })
    }
}

/// A calendar year (birth year, rating year, plan period), 1900–2200.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Year(i32);

impl Year {
    pub const MIN: i32 = 1900;
    pub const MAX: i32 = 2200;

    pub fn new(year: i32) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&year)
            .then_some(Self(year))
    }

    pub fn value(self) -> i32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Year {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i32::deserialize(d)?;
        match Self::new(n) {
            Some(year) => Ok(year),
            None if !values_checked() => Ok(Self(Self::MIN)),
            None => Err(serde::de::Error::custom(format!(
                "a year is from {} to {}, not {n}",
                Self::MIN,
                Self::MAX
            ))),
        }
    }
}

impl JsonSchema for Year {
    fn schema_name() -> Cow<'static, str> {
        "Year".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": Year::MIN, "maximum": Year::MAX })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strictly_yyyy_mm_dd() {
        assert_eq!(
            "2011-12-31".parse::<Date>(),
            Ok(Date::from_ymd(2011, 12, 31).expect("date"))
        );
        assert_eq!("2011-2-3".parse::<Date>(), Err(InvalidDate));
        assert_eq!("2011-02-30".parse::<Date>(), Err(InvalidDate));
        assert_eq!("31/12/2011".parse::<Date>(), Err(InvalidDate));
        let d: Date = "2006-12-31".parse().expect("date");
        assert_eq!(d.to_string(), "2006-12-31");
    }

    #[test]
    fn it_should_not_accept_negative_money_or_out_of_range_scores() {
        assert_eq!(Vnd::new(-1), None);
        assert_eq!(Vnd::new(0).map(Vnd::amount), Some(0));
        assert_eq!(Score::new(10.5), None);
        assert_eq!(Score::new(f64::NAN), None);
        assert_eq!(Score::new(7.5).map(Score::value), Some(7.5));
        assert_eq!(Year::new(1899), None);
    }
}
