//! The deployment prefix (`TLEDGER_PREFIX`): subjects start `<prefix>.`,
//! streams `<PREFIX>_…`. Tests give each run its own prefix so that they
//! never see each other's streams.

use std::fmt;
use std::str::FromStr;

/// A prefix of 1–32 characters of `a-z 0-9 _ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Prefix(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLEDGER_PREFIX must be 1-32 characters of a-z 0-9 _ -, not {0:?}")]
pub struct InvalidPrefix(pub String);

impl Prefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<PREFIX>_EVENTS`: the ledger's own stream.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.0.to_uppercase())
    }

    /// `<PREFIX>_INGEST`: what integrating bodies publish to.
    pub fn ingest_stream(&self) -> String {
        format!("{}_INGEST", self.0.to_uppercase())
    }

    /// `<prefix>.events.<aggregate>.<id>`.
    pub fn event_subject(&self, aggregate: &str, id: &str) -> String {
        format!("{}.events.{aggregate}.{id}", self.0)
    }

    /// `<prefix>.cmd.<name>`.
    pub fn command_subject(&self, name: &str) -> String {
        format!("{}.cmd.{name}", self.0)
    }

    /// `<prefix>.checkpoints`: where signed checkpoints are announced.
    pub fn checkpoint_subject(&self) -> String {
        format!("{}.checkpoints", self.0)
    }

    /// The source of the ledger's own CloudEvents: `/tledger/<prefix>`.
    pub fn source(&self) -> String {
        format!("/tledger/{}", self.0)
    }
}

impl FromStr for Prefix {
    type Err = InvalidPrefix;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidPrefix(s.to_owned()))
        }
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self("tl".into())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_streams_and_subjects_from_the_prefix() {
        let p: Prefix = "tl".parse().expect("valid");
        assert_eq!(p.events_stream(), "TL_EVENTS");
        assert_eq!(p.ingest_stream(), "TL_INGEST");
        assert_eq!(p.event_subject("official", "o-1"), "tl.events.official.o-1");
        assert_eq!(p.command_subject("nominate"), "tl.cmd.nominate");
        assert_eq!(p.source(), "/tledger/tl");
    }

    #[test]
    fn it_should_not_accept_upper_case_dots_or_33_characters() {
        assert!("TL".parse::<Prefix>().is_err());
        assert!("t.l".parse::<Prefix>().is_err());
        assert!("a".repeat(33).parse::<Prefix>().is_err());
        assert!("".parse::<Prefix>().is_err());
        assert!("t-1_x".parse::<Prefix>().is_ok());
    }
}
