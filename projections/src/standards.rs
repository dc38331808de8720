//! "Đạt 3 chuẩn": whether a person in post meets the standards of the
//! ruleset in force.
//!
//! A person's level in a track on a date is the highest level recorded (and
//! not retracted) effective on or before that date; no record means below
//! the lowest level. A person meets the standards when, for every track the
//! ruleset's requirement for their group sets a minimum (and their position
//! is not exempt from), their level reaches it. No requirement matches
//! part-time workers, who are outside the standards population; a cadre or
//! civil servant no requirement matches (a ruleset that leaves their group
//! out) is still in the report's population, as not meeting the standards.

use std::collections::BTreeMap;

use tledger_events::reference_data::Ruleset;
use tledger_events::{Date, Level, PositionCode, StaffCategory, Track};

/// A qualification as the read model keeps it (retracted ones left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldQualification {
    pub track: Track,
    pub level: Level,
    pub effective_date: Date,
}

/// The highest level of an ordered `track` held on `date`, with its rank;
/// `None` when nothing of that track is recorded by then.
pub fn level_on(held: &[HeldQualification], track: Track, date: Date) -> Option<(&Level, u8)> {
    held.iter()
        .filter(|q| q.track == track && q.effective_date <= date)
        .filter_map(|q| track.rank(&q.level).map(|rank| (&q.level, rank)))
        .max_by_key(|(_, rank)| *rank)
}

/// How a person stands against one track's standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackOutcome {
    Met,
    NotMet,
    /// The position is exempt from this track's standard.
    Exempt,
}

/// A person's standing against the ruleset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// The requirement group that applied.
    pub group: String,
    pub tracks: BTreeMap<Track, TrackOutcome>,
}

impl Assessment {
    pub fn meets_all(&self) -> bool {
        self.tracks.values().all(|o| *o != TrackOutcome::NotMet)
    }

    /// Whether the standard of `track` applies to this person.
    pub fn applies(&self, track: Track) -> bool {
        matches!(
            self.tracks.get(&track),
            Some(TrackOutcome::Met | TrackOutcome::NotMet)
        )
    }
}

/// The person in post being assessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incumbent<'a> {
    pub staff_category: StaffCategory,
    pub position: &'a PositionCode,
    pub key_leader: bool,
}

/// Assesses `person` on `date` against `ruleset`; `None` when no
/// requirement of the ruleset matches them.
pub fn assess(
    ruleset: &Ruleset,
    person: &Incumbent<'_>,
    held: &[HeldQualification],
    date: Date,
) -> Option<Assessment> {
    assess_ranks(ruleset, person, |track| {
        level_on(held, track, date).map(|(_, rank)| rank)
    })
}

/// Assesses `person` given the rank they reach in each track (`None`: no
/// level recorded); the read models compute the ranks in SQL.
pub fn assess_ranks(
    ruleset: &Ruleset,
    person: &Incumbent<'_>,
    rank_of: impl Fn(Track) -> Option<u8>,
) -> Option<Assessment> {
    let requirement = ruleset.requirement_for(person.staff_category, person.key_leader)?;
    let tracks = requirement
        .minimums
        .keys()
        .map(|track| {
            let outcome = match requirement.minimum(*track, person.position) {
                None => TrackOutcome::Exempt,
                Some(minimum) => match (rank_of(*track), track.rank(minimum)) {
                    (Some(reached), Some(needed)) if reached >= needed => TrackOutcome::Met,
                    _ => TrackOutcome::NotMet,
                },
            };
            (*track, outcome)
        })
        .collect();
    Some(Assessment {
        group: requirement.group.clone(),
        tracks,
    })
}

#[cfg(test)]
mod tests {
    use tledger_events::reference_data::{self, ReferenceContent};

    use super::*;

    fn ruleset() -> Ruleset {
        reference_data::shipped()
            .expect("shipped reference data parses")
            .into_iter()
            .find_map(|(_, c)| match c {
                ReferenceContent::Ruleset(r) => Some(r),
                _ => None,
            })
            .expect("the shipped ruleset")
    }

    fn held(track: Track, level: &str, on: &str) -> HeldQualification {
        HeldQualification {
            track,
            level: Level::parse(level).expect("level"),
            effective_date: on.parse().expect("date"),
        }
    }

    fn date(s: &str) -> Date {
        s.parse().expect("date")
    }

    fn position(s: &str) -> PositionCode {
        PositionCode::parse(s).expect("position")
    }

    #[test]
    fn the_level_on_a_date_is_the_highest_recorded_by_then() {
        let quals = vec![
            held(Track::Professional, "college", "2009-06-30"),
            held(Track::Professional, "intermediate", "2005-06-30"),
            held(Track::Professional, "university", "2012-06-30"),
        ];
        let on = |d| level_on(&quals, Track::Professional, date(d)).map(|(l, _)| l.as_str());
        assert_eq!(on("2004-12-31"), None);
        assert_eq!(on("2006-12-31"), Some("intermediate"));
        assert_eq!(on("2011-12-31"), Some("college"));
        assert_eq!(on("2012-06-30"), Some("university"));
    }

    #[test]
    fn a_key_leader_with_intermediate_everything_meets_the_standards() {
        let p = position("committee_chair");
        let person = Incumbent {
            staff_category: StaffCategory::Cadre,
            position: &p,
            key_leader: true,
        };
        let quals = vec![
            held(Track::GeneralEducation, "upper_secondary", "1990-05-01"),
            held(Track::Professional, "intermediate", "2008-06-30"),
            held(Track::PoliticalTheory, "intermediate", "2009-06-30"),
        ];
        let assessment =
            assess(&ruleset(), &person, &quals, date("2011-12-31")).expect("in the population");
        assert_eq!(assessment.group, "key_leaders");
        assert!(assessment.meets_all());
        // On 2008-12-31 the political theory diploma was not yet earned.
        let earlier =
            assess(&ruleset(), &person, &quals, date("2008-12-31")).expect("in the population");
        assert_eq!(
            earlier.tracks.get(&Track::PoliticalTheory),
            Some(&TrackOutcome::NotMet)
        );
        assert!(!earlier.meets_all());
    }

    #[test]
    fn an_elementary_professional_level_is_enough_for_other_cadres_but_not_key_leaders() {
        let quals = vec![
            held(Track::GeneralEducation, "upper_secondary", "1990-05-01"),
            held(Track::Professional, "elementary", "2008-06-30"),
            held(Track::PoliticalTheory, "elementary", "2009-06-30"),
        ];
        let front = position("front_chair");
        let other = Incumbent {
            staff_category: StaffCategory::Cadre,
            position: &front,
            key_leader: false,
        };
        let a = assess(&ruleset(), &other, &quals, date("2011-12-31")).expect("in the population");
        assert_eq!((a.group.as_str(), a.meets_all()), ("other_cadres", true));
        let chair = position("party_secretary");
        let leader = Incumbent {
            staff_category: StaffCategory::Cadre,
            position: &chair,
            key_leader: true,
        };
        let a = assess(&ruleset(), &leader, &quals, date("2011-12-31")).expect("in the population");
        assert_eq!(
            a.tracks.get(&Track::Professional),
            Some(&TrackOutcome::NotMet)
        );
        assert!(!a.meets_all());
    }

    #[test]
    fn police_chiefs_are_exempt_from_the_political_theory_standard() {
        let p = position("police_chief");
        let person = Incumbent {
            staff_category: StaffCategory::CivilServant,
            position: &p,
            key_leader: false,
        };
        let quals = vec![
            held(Track::GeneralEducation, "upper_secondary", "1990-05-01"),
            held(Track::Professional, "intermediate", "2008-06-30"),
        ];
        let a = assess(&ruleset(), &person, &quals, date("2011-12-31")).expect("in the population");
        assert_eq!(
            a.tracks.get(&Track::PoliticalTheory),
            Some(&TrackOutcome::Exempt)
        );
        assert!(!a.applies(Track::PoliticalTheory));
        assert!(a.meets_all());
    }

    #[test]
    fn no_record_is_below_the_lowest_level_and_part_time_workers_are_outside() {
        let p = position("land_construction");
        let civil = Incumbent {
            staff_category: StaffCategory::CivilServant,
            position: &p,
            key_leader: false,
        };
        let a = assess(&ruleset(), &civil, &[], date("2011-12-31")).expect("in the population");
        assert_eq!(
            a.tracks
                .values()
                .filter(|o| **o == TrackOutcome::NotMet)
                .count(),
            3
        );
        let pt = position("part_time");
        let part_time = Incumbent {
            staff_category: StaffCategory::PartTime,
            position: &pt,
            key_leader: false,
        };
        assert_eq!(
            assess(&ruleset(), &part_time, &[], date("2011-12-31")),
            None
        );
    }

    #[test]
    fn a_bachelor_in_political_theory_counts_as_advanced() {
        let quals = vec![held(Track::PoliticalTheory, "bachelor", "2001-01-01")];
        let (level, rank) =
            level_on(&quals, Track::PoliticalTheory, date("2011-12-31")).expect("held");
        assert_eq!(
            (level.as_str(), rank),
            (
                "bachelor",
                Track::PoliticalTheory
                    .rank(&Level::parse("advanced").expect("level"))
                    .expect("ranked")
            )
        );
    }
}
