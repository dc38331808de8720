//! A person's timeline: the facts of their own stream and of every
//! training place nominated for them, in the order they happened
//! (effective date, then ledger position), each with who recorded it. The
//! API keeps these apart (`/v1/officials/<id>/history`,
//! `/v1/enrollments/<id>/history`); a reader of one person wants them
//! together.

use crate::audit_trail::{Entry, History};

/// A person's trail and the trails of their training places.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub person: History,
    pub places: Vec<History>,
}

/// One fact on the timeline; `enrollment_id` when it is about a training
/// place.
#[derive(Clone, Copy, Debug)]
pub struct Moment<'a> {
    pub entry: &'a Entry,
    pub enrollment_id: Option<&'a str>,
}

impl Timeline {
    pub fn moments(&self) -> Vec<Moment<'_>> {
        let mut moments: Vec<Moment<'_>> = self
            .person
            .entries
            .iter()
            .map(|entry| Moment {
                entry,
                enrollment_id: None,
            })
            .chain(self.places.iter().flat_map(|place| {
                place.entries.iter().map(|entry| Moment {
                    entry,
                    enrollment_id: Some(place.id.as_str()),
                })
            }))
            .collect();
        moments.sort_by_key(|m| (m.entry.fact.effective_date, m.entry.fact.position));
        moments
    }

    /// The person's name from their latest registration or change of name
    /// not retracted.
    pub fn name(&self) -> Option<String> {
        self.person
            .entries
            .iter()
            .rev()
            .filter(|e| e.retracted_by.is_none())
            .find_map(|e| e.fact.data["full_name"].as_str().map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use tledger_store::RecordedFact;
    use uuid::Uuid;

    use super::*;
    use crate::audit_trail::Trail;

    fn entry(position: u64, on: &str, event_type: &str) -> Entry {
        Entry {
            fact: RecordedFact {
                position,
                event_id: Uuid::from_u128(u128::from(position)),
                version: 1,
                event_type: event_type.to_owned(),
                effective_date: on.parse().expect("date"),
                recorded_at: DateTime::<Utc>::default(),
                publisher: "/commands/admin".into(),
                actor: "admin".into(),
                command_id: None,
                correlation_id: None,
                hash: vec![0; 32],
                data: json!({"full_name": "Nguyễn Văn A"}),
            },
            retracted_by: None,
        }
    }

    #[test]
    fn facts_of_the_person_and_their_places_run_in_the_order_they_happened() {
        let timeline = Timeline {
            person: History {
                trail: Trail::Official,
                id: "o-1".into(),
                entries: vec![
                    entry(1, "2005-01-01", "official.registered.v1"),
                    // Recorded late: a diploma of 1990.
                    entry(9, "1990-06-30", "official.qualification_recorded.v1"),
                ],
            },
            places: vec![History {
                trail: Trail::Enrollment,
                id: "e-1".into(),
                entries: vec![
                    entry(3, "2008-08-01", "training.nominated.v1"),
                    entry(4, "2008-09-01", "training.enrolled.v1"),
                ],
            }],
        };
        let order: Vec<(u64, Option<&str>)> = timeline
            .moments()
            .iter()
            .map(|m| (m.entry.fact.position, m.enrollment_id))
            .collect();
        assert_eq!(
            order,
            vec![(9, None), (1, None), (3, Some("e-1")), (4, Some("e-1"))]
        );
        assert_eq!(timeline.name().as_deref(), Some("Nguyễn Văn A"));
    }
}
