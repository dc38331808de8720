//! Each person's standing (unit, staff category, post and highest rank per
//! ordered track) as intervals in both times (ADR 17): a row says that, as
//! known at any cut in `[known_from, known_to)`, the person stood so on
//! every date in `[valid_from, valid_to)`.
//!
//! The standards report then reads, for a unit or the country, the rows
//! whose two intervals hold its cut and its date: one index range, instead
//! of looking each person's latest placement and qualifications up.
//!
//! A person's rows are a function of their placements and ranked
//! qualifications alone (each with its position and the position of the
//! first retraction of it): [`history`] computes them all, and the
//! projector writes them again whenever one of those facts, or a retraction
//! of one, is projected.

use chrono::NaiveDate;
use tledger_events::Track;

/// The ordered tracks, in the standing's column order.
pub const RANKED: [Track; 4] = [
    Track::GeneralEducation,
    Track::Professional,
    Track::PoliticalTheory,
    Track::StateManagement,
];

/// `valid_to` of a standing that no later fact ends.
pub const OPEN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// `known_to` of a standing no later fact has revised.
pub const OPEN_POSITION: i64 = i64::MAX;

/// Where a person is placed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Post {
    pub unit_id: String,
    pub staff_category: String,
    pub post: String,
}

/// What one fact says of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Registered or assigned (`Some`), or left (`None`).
    Placed(Option<Post>),
    /// A qualification of rank `rank` in the ordered track `RANKED[track]`.
    Qualified { track: usize, rank: i16 },
}

/// One of a person's placements or ranked qualifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonFact {
    pub position: i64,
    /// The position of the first retraction of the fact, if any.
    pub retracted_at: Option<i64>,
    pub effective_date: NaiveDate,
    pub change: Change,
}

impl PersonFact {
    fn live_at(&self, cut: i64) -> bool {
        self.position <= cut && self.retracted_at.is_none_or(|r| r > cut)
    }
}

/// A person in post: where, and the highest rank reached per ordered track
/// (`None`: none recorded).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Standing {
    pub post: Post,
    pub ranks: [Option<i16>; RANKED.len()],
}

/// One row of the standing table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StandingRow {
    pub known_from: i64,
    pub known_to: i64,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub standing: Standing,
}

/// A stretch of valid time and the standing in it.
type Stretch = (NaiveDate, NaiveDate, Standing);

/// The person's standing over valid time as known at `cut`: on each date,
/// the latest placement effective by then (by date, then position) unless
/// it is a leaving, with the highest rank per track effective by then;
/// stretches of equal standing merged; dates out of post left out.
fn timeline(facts: &[PersonFact], cut: i64) -> Vec<Stretch> {
    let live: Vec<&PersonFact> = facts.iter().filter(|f| f.live_at(cut)).collect();
    let mut dates: Vec<NaiveDate> = live.iter().map(|f| f.effective_date).collect();
    dates.sort_unstable();
    dates.dedup();
    let mut starts: Vec<(NaiveDate, Option<Standing>)> = Vec::new();
    for &date in &dates {
        let by_then = live.iter().filter(|f| f.effective_date <= date);
        let placement = by_then
            .clone()
            .filter_map(|f| match &f.change {
                Change::Placed(post) => Some(((f.effective_date, f.position), post)),
                Change::Qualified { .. } => None,
            })
            .max_by_key(|(order, _)| *order)
            .and_then(|(_, post)| post.clone());
        let mut ranks = [None; RANKED.len()];
        for f in by_then {
            if let Change::Qualified { track, rank } = f.change {
                if let Some(slot) = ranks.get_mut(track) {
                    *slot = Some(slot.map_or(rank, |r: i16| r.max(rank)));
                }
            }
        }
        let standing = placement.map(|post| Standing { post, ranks });
        if starts.last().is_none_or(|(_, last)| *last != standing) {
            starts.push((date, standing));
        }
    }
    let ends = starts
        .iter()
        .skip(1)
        .map(|(date, _)| *date)
        .chain(std::iter::once(OPEN_DATE));
    starts
        .iter()
        .zip(ends)
        .filter_map(|((from, standing), to)| Some((*from, to, standing.clone()?)))
        .collect()
}

/// Every row of one person's standing, ordered: for each cut at which one
/// of `facts` was recorded or retracted, the stretches that changed are
/// closed there and the new ones opened.
pub fn history(facts: &[PersonFact]) -> Vec<StandingRow> {
    let mut cuts: Vec<i64> = facts
        .iter()
        .flat_map(|f| std::iter::once(f.position).chain(f.retracted_at))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut rows = Vec::new();
    let mut open: Vec<(Stretch, i64)> = Vec::new();
    for cut in cuts {
        let now = timeline(facts, cut);
        open.retain(|(stretch, known_from)| {
            let still = now.contains(stretch);
            if !still {
                rows.push(row(stretch, *known_from, cut));
            }
            still
        });
        for stretch in now {
            if !open.iter().any(|(kept, _)| *kept == stretch) {
                open.push((stretch, cut));
            }
        }
    }
    rows.extend(
        open.iter()
            .map(|(stretch, known_from)| row(stretch, *known_from, OPEN_POSITION)),
    );
    rows.sort();
    rows
}

fn row((from, to, standing): &Stretch, known_from: i64, known_to: i64) -> StandingRow {
    StandingRow {
        known_from,
        known_to,
        valid_from: *from,
        valid_to: *to,
        standing: standing.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(days: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("date") + chrono::Days::new(days as u64)
    }

    fn post(unit: &str, post: &str) -> Option<Post> {
        Some(Post {
            unit_id: unit.into(),
            staff_category: "cadre".into(),
            post: post.into(),
        })
    }

    fn placed(position: i64, day: i64, to: Option<Post>) -> PersonFact {
        PersonFact {
            position,
            retracted_at: None,
            effective_date: date(day),
            change: Change::Placed(to),
        }
    }

    fn qualified(position: i64, day: i64, track: usize, rank: i16) -> PersonFact {
        PersonFact {
            position,
            retracted_at: None,
            effective_date: date(day),
            change: Change::Qualified { track, rank },
        }
    }

    /// The standing as of `day` as known at `cut`, straight from the facts.
    fn direct(facts: &[PersonFact], cut: i64, day: NaiveDate) -> Option<Standing> {
        let live: Vec<&PersonFact> = facts
            .iter()
            .filter(|f| f.live_at(cut) && f.effective_date <= day)
            .collect();
        let mut latest: Option<(&PersonFact, &Option<Post>)> = None;
        for f in &live {
            if let Change::Placed(post) = &f.change {
                let later = latest.is_none_or(|(l, _)| {
                    (f.effective_date, f.position) > (l.effective_date, l.position)
                });
                if later {
                    latest = Some((f, post));
                }
            }
        }
        let post = latest?.1.clone()?;
        let mut ranks = [None; RANKED.len()];
        for (track, slot) in ranks.iter_mut().enumerate() {
            *slot = live
                .iter()
                .filter_map(|f| match f.change {
                    Change::Qualified { track: t, rank } if t == track => Some(rank),
                    _ => None,
                })
                .max();
        }
        Some(Standing { post, ranks })
    }

    /// The rows whose two intervals hold the cut and the date.
    fn read(rows: &[StandingRow], cut: i64, day: NaiveDate) -> Vec<&Standing> {
        rows.iter()
            .filter(|r| r.known_from <= cut && cut < r.known_to)
            .filter(|r| r.valid_from <= day && day < r.valid_to)
            .map(|r| &r.standing)
            .collect()
    }

    #[test]
    fn facts_in_order_close_only_the_open_ended_stretch() {
        let facts = [
            placed(10, 0, post("x01", "chu_tich_ubnd")),
            qualified(11, 0, 1, 3),
            placed(20, 100, post("x02", "chu_tich_ubnd")),
            placed(30, 200, None),
        ];
        // Rows come ordered by known_from, then known_to.
        let rows = history(&facts);
        let x01 = |ranks| Standing {
            post: post("x01", "chu_tich_ubnd").expect("post"),
            ranks,
        };
        assert_eq!(
            rows,
            vec![
                row(&(date(0), OPEN_DATE, x01([None; 4])), 10, 11),
                row(
                    &(date(0), OPEN_DATE, x01([None, Some(3), None, None])),
                    11,
                    20
                ),
                row(
                    &(
                        date(100),
                        OPEN_DATE,
                        Standing {
                            post: post("x02", "chu_tich_ubnd").expect("post"),
                            ranks: [None, Some(3), None, None],
                        }
                    ),
                    20,
                    30
                ),
                row(
                    &(date(0), date(100), x01([None, Some(3), None, None])),
                    20,
                    OPEN_POSITION
                ),
                row(
                    &(
                        date(100),
                        date(200),
                        Standing {
                            post: post("x02", "chu_tich_ubnd").expect("post"),
                            ranks: [None, Some(3), None, None],
                        }
                    ),
                    30,
                    OPEN_POSITION
                ),
            ]
        );
    }

    #[test]
    fn a_retraction_restores_what_was_known_before_the_fact() {
        let mut wrong = qualified(12, 50, 1, 4);
        wrong.retracted_at = Some(40);
        let facts = [placed(10, 0, post("x01", "cong_chuc_tu_phap")), wrong];
        let rows = history(&facts);
        let untrained = Standing {
            post: post("x01", "cong_chuc_tu_phap").expect("post"),
            ranks: [None; 4],
        };
        assert_eq!(read(&rows, 11, date(60)), vec![&untrained]);
        assert_eq!(read(&rows, 39, date(60))[0].ranks[1], Some(4));
        assert_eq!(read(&rows, 39, date(49)), vec![&untrained]);
        assert_eq!(read(&rows, 40, date(60)), vec![&untrained]);
        assert_eq!(read(&rows, 1000, date(60)), vec![&untrained]);
    }

    #[test]
    fn nobody_stands_before_their_first_placement_or_after_leaving() {
        let facts = [
            qualified(5, 0, 2, 2),
            placed(6, 10, post("x01", "bi_thu")),
            placed(7, 20, None),
        ];
        let rows = history(&facts);
        assert!(read(&rows, 100, date(5)).is_empty());
        assert_eq!(read(&rows, 100, date(15)).len(), 1);
        assert!(read(&rows, 100, date(20)).is_empty());
        assert!(read(&rows, 6, date(30)).len() == 1);
    }

    fn any_fact() -> impl Strategy<Value = PersonFact> {
        let change = prop_oneof![
            3 => (0..3usize, 0..3usize).prop_map(|(unit, p)| {
                Change::Placed(post(&format!("u{unit}"), &format!("p{p}")))
            }),
            1 => Just(Change::Placed(None)),
            4 => (0..RANKED.len(), 0..7i16).prop_map(|(track, rank)| Change::Qualified { track, rank }),
        ];
        (0..60i64, change, proptest::option::weighted(0.2, 1..40i64)).prop_map(
            |(day, change, retracted_after)| PersonFact {
                position: 0,
                retracted_at: retracted_after,
                effective_date: date(day),
                change,
            },
        )
    }

    proptest! {
        /// For any facts recorded in any order (late ones too) and any
        /// retractions, exactly the rows that hold a cut and a date give
        /// the standing computed straight from the facts known at that cut.
        #[test]
        fn the_rows_at_a_cut_and_a_date_give_the_standing_then(
            mut facts in proptest::collection::vec(any_fact(), 0..12),
            cut in 0..80i64,
            day in 0..70i64,
        ) {
            // Positions are dense and each retraction comes after its fact.
            for (i, f) in facts.iter_mut().enumerate() {
                f.position = 2 * i as i64 + 1;
                f.retracted_at = f.retracted_at.map(|after| f.position + after);
            }
            let rows = history(&facts);
            let expected = direct(&facts, cut, date(day));
            let got = read(&rows, cut, date(day));
            prop_assert_eq!(got, expected.iter().collect::<Vec<_>>());
            // No row is empty in either time.
            for r in &rows {
                prop_assert!(r.known_from < r.known_to && r.valid_from < r.valid_to);
            }
        }
    }

    #[test]
    fn the_partial_index_holds_the_rows_the_reports_take_as_unrevised() {
        let predicate = format!("WHERE known_to = {OPEN_POSITION};");
        assert!(
            crate::schema::INDEXES
                .iter()
                .any(|table| table.contains(&predicate)),
            "{predicate}"
        );
    }

    #[test]
    fn the_ranked_tracks_are_the_ordered_ones() {
        let ordered: Vec<Track> = Track::ALL
            .iter()
            .copied()
            .filter(|t| t.ordered_levels().is_some())
            .collect();
        assert_eq!(ordered, RANKED.to_vec());
    }
}
