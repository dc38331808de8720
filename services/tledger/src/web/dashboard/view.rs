//! What a dashboard URL says: the unit, the date, the volume window and the
//! language (`/?unit=dai-loc&as_of=2011-12-31&from=2007-01-01&to=2011-12-31&lang=vi`).
//! Every link a page draws carries all of them, so any view can be
//! bookmarked and sent to a colleague and shows the same figures.

use tledger_events::Date;

use super::i18n::{code, lang_of, Lang};
use crate::calendar::{five_years_ending, today};

/// A parameter that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("{name} must be a date YYYY-MM-DD, not {value:?}")]
    BadDate { name: &'static str, value: String },
    #[error("from {from} is after to {to}")]
    Range { from: Date, to: Date },
}

/// One view of the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// `None`: the whole country.
    pub unit: Option<String>,
    pub as_of: Date,
    pub from: Date,
    pub to: Date,
    pub lang: Lang,
}

fn date(params: &[(String, String)], name: &'static str) -> Result<Option<Date>, ViewError> {
    params
        .iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| {
            v.parse::<Date>().map_err(|_| ViewError::BadDate {
                name,
                value: v.clone(),
            })
        })
        .transpose()
}

fn text<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

impl View {
    /// The view a query asks for; the last value of a repeated parameter
    /// wins (a form's field after the link's), unknown ones are ignored.
    pub fn parse(params: &[(String, String)]) -> Result<Self, ViewError> {
        let as_of = date(params, "as_of")?.unwrap_or_else(today);
        let to = date(params, "to")?.unwrap_or(as_of);
        let from = date(params, "from")?.unwrap_or_else(|| five_years_ending(to));
        if from > to {
            return Err(ViewError::Range { from, to });
        }
        Ok(Self {
            unit: text(params, "unit").map(str::to_owned),
            as_of,
            from,
            to,
            lang: lang_of(text(params, "lang")),
        })
    }

    /// The query string of this view.
    pub fn query(&self) -> String {
        let mut pairs = Vec::with_capacity(5);
        if let Some(unit) = &self.unit {
            pairs.push(format!("unit={}", encode(unit)));
        }
        pairs.push(format!("as_of={}", self.as_of));
        pairs.push(format!("from={}", self.from));
        pairs.push(format!("to={}", self.to));
        pairs.push(format!("lang={}", code(self.lang)));
        pairs.join("&")
    }

    /// `path?query` of this view.
    pub fn href(&self, path: &str) -> String {
        format!("{path}?{}", self.query())
    }

    pub fn with_unit(&self, unit: Option<&str>) -> Self {
        Self {
            unit: unit.map(str::to_owned),
            ..self.clone()
        }
    }

    pub fn with_lang(&self, lang: Lang) -> Self {
        Self {
            lang,
            ..self.clone()
        }
    }

    /// The calendar years of the volume window, in order.
    pub fn years(&self) -> std::ops::RangeInclusive<i32> {
        self.from.year()..=self.to.year()
    }
}

/// Percent-encodes a query value (ids are `A-Z a-z 0-9 _ -`, but a typed
/// unit may hold anything).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_volume_window_defaults_to_the_five_years_ending_at_the_date() {
        let view = View::parse(&params(&[
            ("unit", "dai-loc"),
            ("as_of", "2011-12-31"),
            ("lang", "vi"),
        ]))
        .expect("view");
        assert_eq!(view.from.to_string(), "2007-01-01");
        assert_eq!(view.to.to_string(), "2011-12-31");
        assert_eq!(view.lang, Lang::Vi);
        assert_eq!(
            view.href("/"),
            "/?unit=dai-loc&as_of=2011-12-31&from=2007-01-01&to=2011-12-31&lang=vi"
        );
        assert_eq!(
            view.years().collect::<Vec<_>>(),
            vec![2007, 2008, 2009, 2010, 2011]
        );
    }

    #[test]
    fn it_should_not_accept_a_window_that_ends_before_it_starts() {
        assert!(matches!(
            View::parse(&params(&[("from", "2012-01-01"), ("to", "2011-12-31")])),
            Err(ViewError::Range { .. })
        ));
        assert!(matches!(
            View::parse(&params(&[("as_of", "31/12/2011")])),
            Err(ViewError::BadDate { name: "as_of", .. })
        ));
    }

    #[test]
    fn the_last_value_of_a_repeated_parameter_wins_and_values_are_encoded() {
        let view = View::parse(&params(&[("unit", "a"), ("unit", "b c")])).expect("view");
        assert_eq!(view.unit.as_deref(), Some("b c"));
        assert!(view.query().starts_with("unit=b%20c&"));
    }
}
