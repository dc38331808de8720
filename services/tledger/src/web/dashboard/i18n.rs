//! The dashboard's words and number formats in English and Vietnamese.
//!
//! Every text a page shows comes from a message catalogue
//! (`messages/en.toml`, `messages/vi.toml`), compiled into the binary so the
//! service needs no files at run time. Keys are dotted (`figure.meets_all_standards`);
//! a value may hold `{name}` placeholders. Numbers and percentages use the
//! same formatting as `tledger report --lang` ([`crate::presentation::number`],
//! [`crate::presentation::percent`]), so a figure reads the same on paper and
//! on screen.

use std::collections::HashMap;
use std::sync::LazyLock;

use tledger_events::Date;

pub use crate::presentation::Lang;
use crate::presentation::{large_number, number, percent};

const EN: &str = include_str!("messages/en.toml");
const VI: &str = include_str!("messages/vi.toml");

/// A catalogue that does not parse: a build-time mistake, caught by the
/// catalogue tests.
#[derive(Debug, thiserror::Error)]
#[error("the message catalogue {lang} does not parse: {reason}")]
pub struct CatalogueError {
    lang: &'static str,
    reason: String,
}

/// One language's messages, keys flattened to `a.b.c`.
#[derive(Debug, Default)]
pub struct Catalogue {
    messages: HashMap<String, String>,
}

fn flatten(prefix: &str, table: &toml::Table, into: &mut HashMap<String, String>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&key, inner, into),
            toml::Value::String(text) => {
                into.insert(key, text.clone());
            }
            other => {
                into.insert(key, other.to_string());
            }
        }
    }
}

impl Catalogue {
    pub fn parse(lang: &'static str, text: &str) -> Result<Self, CatalogueError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| CatalogueError {
            lang,
            reason: e.to_string(),
        })?;
        let mut messages = HashMap::new();
        flatten("", &table, &mut messages);
        Ok(Self { messages })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }
}

fn load(lang: &'static str, text: &str) -> Catalogue {
    Catalogue::parse(lang, text).unwrap_or_else(|error| {
        // The catalogues are compiled in and checked by tests; should one
        // still be broken, pages show keys rather than the service failing.
        tracing::error!(%error, "message catalogue");
        Catalogue::default()
    })
}

static CATALOGUE_EN: LazyLock<Catalogue> = LazyLock::new(|| load("en", EN));
static CATALOGUE_VI: LazyLock<Catalogue> = LazyLock::new(|| load("vi", VI));

/// The catalogue of `lang`.
pub fn catalogue(lang: Lang) -> &'static Catalogue {
    match lang {
        Lang::En => &CATALOGUE_EN,
        Lang::Vi => &CATALOGUE_VI,
    }
}

/// `en` or `vi`.
pub fn code(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "en",
        Lang::Vi => "vi",
    }
}

/// The language of a `lang` parameter; anything else is English.
pub fn lang_of(code: Option<&str>) -> Lang {
    match code {
        Some("vi") => Lang::Vi,
        _ => Lang::En,
    }
}

/// Words and formats for one page in one language.
#[derive(Clone, Copy, Debug)]
pub struct Words {
    pub lang: Lang,
}

impl Words {
    pub fn new(lang: Lang) -> Self {
        Self { lang }
    }

    /// The message `key`; the key itself when missing (a test keeps the
    /// catalogues complete, so that only shows during development).
    pub fn t(&self, key: &str) -> String {
        catalogue(self.lang)
            .get(key)
            .map_or_else(|| key.to_owned(), str::to_owned)
    }

    /// The message `key` with its `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key);
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The label of a code (`track.professional`), or the code itself when
    /// the catalogue has none (free codes such as IT levels).
    pub fn code(&self, group: &str, code: &str) -> String {
        catalogue(self.lang)
            .get(&format!("{group}.{code}"))
            .map_or_else(|| code.to_owned(), str::to_owned)
    }

    pub fn number(&self, n: u64) -> String {
        number(n, self.lang)
    }

    /// Signed amounts (money is integer đồng and never negative in the
    /// ledger, but the type allows it).
    pub fn amount(&self, n: i128) -> String {
        let digits = large_number(n.unsigned_abs(), self.lang);
        if n < 0 {
            format!("-{digits}")
        } else {
            digits
        }
    }

    pub fn money(&self, vnd: i128) -> String {
        self.f("format.money", &[("amount", &self.amount(vnd))])
    }

    pub fn percent(&self, rate: Option<f64>) -> String {
        percent(rate, self.lang)
    }

    /// `31/12/2011` in Vietnamese, `2011-12-31` in English.
    pub fn date(&self, date: Date) -> String {
        match self.lang {
            Lang::Vi => date.naive().format("%d/%m/%Y").to_string(),
            Lang::En => date.to_string(),
        }
    }

    /// An instant as the reader's clock in Việt Nam shows it (UTC+7).
    pub fn instant(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        let local = at + chrono::Duration::hours(7);
        match self.lang {
            Lang::Vi => local.format("%H:%M:%S %d/%m/%Y (UTC+7)").to_string(),
            Lang::En => local.format("%Y-%m-%d %H:%M:%S (UTC+7)").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tledger_events::{FactType, FundingSource, Track};

    #[test]
    fn both_catalogues_parse_and_hold_the_same_keys() {
        let en = Catalogue::parse("en", EN).expect("en parses");
        let vi = Catalogue::parse("vi", VI).expect("vi parses");
        let mut en_keys: Vec<&str> = en.keys().collect();
        let mut vi_keys: Vec<&str> = vi.keys().collect();
        en_keys.sort_unstable();
        vi_keys.sort_unstable();
        assert_eq!(en_keys, vi_keys);
    }

    #[test]
    fn every_track_funding_source_and_fact_type_has_a_label() {
        for lang in [Lang::En, Lang::Vi] {
            let c = catalogue(lang);
            for track in Track::ALL {
                assert!(
                    c.get(&format!("track.{}", track.as_str())).is_some(),
                    "{track:?}"
                );
            }
            for source in FundingSource::ALL {
                assert!(
                    c.get(&format!("funding.{}", source.as_str())).is_some(),
                    "{source:?}"
                );
            }
            for fact in FactType::ALL {
                assert!(
                    c.get(&format!("fact.{}", fact.as_str())).is_some(),
                    "{fact:?}"
                );
            }
        }
    }

    #[test]
    fn vietnamese_numbers_dates_and_rates_read_as_in_the_report() {
        let vi = Words::new(Lang::Vi);
        let en = Words::new(Lang::En);
        let date: Date = "2011-12-31".parse().expect("date");
        assert_eq!(vi.number(9384), "9.384");
        assert_eq!(en.number(9384), "9,384");
        assert_eq!(vi.percent(Some(0.6222)), "62,22%");
        assert_eq!(en.percent(Some(0.6222)), "62.22%");
        assert_eq!(vi.date(date), "31/12/2011");
        assert_eq!(en.date(date), "2011-12-31");
        assert_eq!(vi.money(4_500_000), "4.500.000 đồng");
        assert_eq!(vi.f("page.title", &[]), vi.t("page.title"));
    }
}
