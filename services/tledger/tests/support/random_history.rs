//! Random histories through the real command path, from a seed (see
//! `report_model.rs`, which compares every report with a fold over the
//! facts, and `replay_model.rs`, which compares the offline replay of an
//! export with the server).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use tledger::commands::CommandRequest;
use tledger_events::reference_data;
use tledger_events::{Fact, FactType};
use tledger_tests::fold::LedgerFact;
use uuid::Uuid;

use super::Ledger;

/// Commands per case (plus the fixed start and the reference data).
pub const COMMANDS: usize = 220;
/// How long the ledger may take to give positions: the sequencer waits for
/// every older transaction on the PostgreSQL server, whoever runs it (a
/// benchmark's bulk load on the shared server holds it back for minutes).
pub const SETTLE: Duration = Duration::from_secs(300);

// --- a small deterministic generator --------------------------------------

/// SplitMix64: the same seed gives the same commands and questions, so a
/// failing case is reproduced from its seed alone.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n")
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One of `items`, each as likely as its weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(u32, T)]) -> T {
        let total: u32 = items.iter().map(|(w, _)| w).sum();
        let mut n = u32::try_from(self.next() % u64::from(total)).expect("below total");
        for (w, item) in items {
            if n < *w {
                return *item;
            }
            n -= w;
        }
        items[items.len() - 1].1
    }

    pub fn day(&mut self, from: &str, to: &str) -> NaiveDate {
        let (from, to) = (day(from), day(to));
        let span = usize::try_from((to - from).num_days()).expect("from before to");
        from + chrono::Duration::days(self.below(span + 1) as i64)
    }

    /// A day within `-before..=after` days of `on`.
    pub fn around(&mut self, on: NaiveDate, before: i64, after: i64) -> NaiveDate {
        let span = usize::try_from(before + after).expect("a span");
        on + chrono::Duration::days(self.below(span + 1) as i64 - before)
    }
}

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
}

pub fn text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

// --- the domain's words, as the generator uses them -----------------------

pub const CADRE_POSTS: &[&str] = &[
    "party_secretary",
    "deputy_party_secretary",
    "council_chair",
    "council_vice_chair",
    "committee_chair",
    "committee_vice_chair",
    "front_chair",
    "youth_union_secretary",
    "women_union_chair",
    "farmers_union_chair",
    "veterans_union_chair",
];
pub const CIVIL_SERVANT_POSTS: &[&str] = &[
    "police_chief",
    "military_commander",
    "office_statistics",
    "land_construction",
    "finance_accounting",
    "justice_civil_status",
    "culture_social",
];
pub const SPECIALTIES: &[&str] = &[
    "land_management",
    "construction",
    "surveying",
    "accounting",
    "finance",
    "law",
    "culture",
    "social_work",
    "education",
    "public_admin",
    "statistics",
    "police",
    "military",
    "agriculture",
];
pub const FUNDING: &[&str] = &["province", "district", "agency", "self", "other"];

/// The levels of a track, as codes (free levels for `it` and
/// `foreign_language`, none for `refresher`).
pub fn levels(track: &str) -> &'static [&'static str] {
    match track {
        "general_education" => &["primary", "lower_secondary", "upper_secondary"],
        "professional" => &[
            "none",
            "elementary",
            "intermediate",
            "college",
            "university",
            "master",
            "doctorate",
        ],
        "political_theory" => &["elementary", "intermediate", "advanced", "bachelor"],
        "state_management" => &[
            "clerk",
            "specialist",
            "principal_specialist",
            "senior_specialist",
        ],
        "it" => &["basic", "A", "B"],
        "foreign_language" => &["A2", "B1", "english_b"],
        _ => &[],
    }
}

// --- the generator's picture of the ledger --------------------------------

/// One live step of a training place, as the ledger accepted it.
pub struct Step {
    pub state: &'static str,
    pub on: NaiveDate,
    pub event_id: Uuid,
}

pub struct Place {
    pub id: String,
    pub steps: Vec<Step>,
}

/// What the generator knows, from the ledger's answers, to make commands
/// that are mostly accepted (a refused one records nothing).
#[derive(Default)]
pub struct Model {
    pub provinces: Vec<String>,
    pub districts: Vec<String>,
    pub communes: Vec<String>,
    /// Official id and the unit of their registration.
    pub officials: Vec<(String, String)>,
    pub places: Vec<Place>,
    /// Every fact the ledger holds that a retraction may name.
    pub retractable: Vec<Uuid>,
    pub read_to: u64,
    pub next_id: usize,
}

impl Model {
    pub fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }
}

/// A history being sent: the ledger, the generator and its model.
pub struct History {
    pub seed: u64,
    pub ledger: Ledger,
    pub rng: Rng,
    pub model: Model,
    /// Accepted and refused commands, by name.
    pub answers: BTreeMap<&'static str, (u32, u32)>,
}

impl History {
    /// Sends one command as the admin; the ids of the facts it recorded, or
    /// `None` when the ledger refused it with a rule's reason.
    pub async fn send(&mut self, name: &'static str, body: Value) -> Option<Vec<Uuid>> {
        let request = CommandRequest {
            name: name.to_owned(),
            body: serde_json::to_vec(&body).expect("JSON").into(),
            bearer: Some(self.ledger.admin.clone()),
            idempotency_key: Some(self.model.fresh("command-")),
            ..CommandRequest::default()
        };
        let started = tokio::time::Instant::now();
        let reply = loop {
            let reply = self.ledger.commands.execute(request.clone()).await;
            // A long transaction anywhere on the shared PostgreSQL holds the
            // sequencer back; the same key then gives the first answer.
            if reply.status != 503 || started.elapsed() > SETTLE {
                break reply;
            }
        };
        let counts = self.answers.entry(name).or_default();
        match reply.status {
            201 => {
                counts.0 += 1;
                let events = reply.body["events"].as_array().expect("events");
                Some(
                    events
                        .iter()
                        .map(|e| e["id"].as_str().expect("id").parse().expect("uuid"))
                        .collect(),
                )
            }
            // Unknown things, broken rules, values out of the reference
            // data: the generator tries those on purpose.
            404 | 409 | 422 => {
                counts.1 += 1;
                None
            }
            _ => panic!(
                "seed {:#x}: {name} {body} answered {} {}",
                self.seed, reply.status, reply.body
            ),
        }
    }

    /// Runs the qualification policy until it has nothing left to do and
    /// every fact it recorded has its position.
    pub async fn run_policy(&self) {
        let started = tokio::time::Instant::now();
        while started.elapsed() < SETTLE {
            let read = self
                .ledger
                .commands
                .policy_step()
                .await
                .expect("policy step");
            if read == 0 && unsequenced(&self.ledger).await == 0 {
                return;
            }
            if read == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        panic!(
            "seed {:#x}: the qualification policy did not settle",
            self.seed
        );
    }

    /// Takes the facts recorded since the last look into the list of facts
    /// a retraction may name.
    pub async fn look(&mut self) {
        loop {
            let events = self
                .ledger
                .store
                .read_ledger(self.model.read_to, 500)
                .await
                .expect("read the ledger");
            let Some(last) = events.last() else { return };
            self.model.read_to = last.position;
            self.model.retractable.extend(
                events
                    .iter()
                    .filter(|e| {
                        !matches!(
                            e.event_type.as_str(),
                            "fact.retracted.v1" | "reference.published.v1"
                        )
                    })
                    .map(|e| e.event_id),
            );
        }
    }

    pub fn date(&mut self, from: &str, to: &str) -> String {
        text(self.rng.day(from, to))
    }

    // --- units ---

    pub async fn start(&mut self) {
        let registered = "1997-01-01";
        for p in ["qn", "dn"] {
            self.register_unit(p, "province", None, registered).await;
            self.model.provinces.push(p.into());
        }
        for (d, p) in [("qn-d1", "qn"), ("qn-d2", "qn"), ("dn-d1", "dn")] {
            self.register_unit(d, "district", Some(p), registered).await;
            self.model.districts.push(d.into());
        }
        for (c, d) in [
            ("qn-d1-c1", "qn-d1"),
            ("qn-d1-c2", "qn-d1"),
            ("qn-d1-c3", "qn-d1"),
            ("qn-d2-c1", "qn-d2"),
            ("qn-d2-c2", "qn-d2"),
            ("dn-d1-c1", "dn-d1"),
            ("dn-d1-c2", "dn-d1"),
        ] {
            self.register_unit(c, "commune", Some(d), registered).await;
            self.model.communes.push(c.into());
        }
        // A few people in post from the start, so that early places have
        // someone to nominate.
        for _ in 0..6 {
            self.register_official().await;
        }
    }

    pub async fn register_unit(
        &mut self,
        id: &str,
        level: &str,
        parent: Option<&str>,
        on: &str,
    ) -> bool {
        let mut body = json!({"unit_id": id, "name": format!("Đơn vị {id}"), "level": level, "effective_date": on});
        if let Some(p) = parent {
            body["parent_id"] = json!(p);
        }
        self.send("register_unit", body).await.is_some()
    }

    /// A new commune under a district, now and then a new district; rarely
    /// an id registered before (a conflict).
    pub async fn new_unit(&mut self) {
        let on = self.date("1999-01-01", "2010-12-31");
        if self.rng.percent(5) {
            let id = self.rng.pick(&self.model.communes).clone();
            let parent = self.rng.pick(&self.model.districts).clone();
            self.register_unit(&id, "commune", Some(&parent), &on).await;
        } else if self.rng.percent(80) {
            let parent = self.rng.pick(&self.model.districts).clone();
            let id = self.model.fresh(&format!("{parent}-c"));
            if self.register_unit(&id, "commune", Some(&parent), &on).await {
                self.model.communes.push(id);
            }
        } else {
            let parent = self.rng.pick(&self.model.provinces).clone();
            let id = self.model.fresh(&format!("{parent}-d"));
            if self
                .register_unit(&id, "district", Some(&parent), &on)
                .await
            {
                self.model.districts.push(id);
            }
        }
    }

    /// Re-parenting, dissolving or renaming a unit.
    pub async fn reorganise_unit(&mut self) {
        let on = self.date("2004-01-01", "2012-12-31");
        let (unit, change) = match self.rng.below(20) {
            0..=8 => (
                self.rng.pick(&self.model.communes).clone(),
                json!({"parent_id": self.rng.pick(&self.model.districts)}),
            ),
            9..=10 => (
                self.rng.pick(&self.model.districts).clone(),
                json!({"parent_id": self.rng.pick(&self.model.provinces)}),
            ),
            // Odd but lawful, or a cycle the ledger refuses.
            11 => (
                self.rng.pick(&self.model.districts).clone(),
                json!({"parent_id": self.rng.pick(&self.model.communes)}),
            ),
            12..=15 => (
                self.rng.pick(&self.model.communes).clone(),
                json!({"dissolved_into": self.rng.pick(&self.model.communes)}),
            ),
            16 => (
                self.rng.pick(&self.model.districts).clone(),
                json!({"dissolved_into": self.rng.pick(&self.model.districts)}),
            ),
            _ => (
                self.rng.pick(&self.model.communes).clone(),
                json!({"name": format!("Xã mới {}", self.rng.below(1000))}),
            ),
        };
        let mut body = json!({"unit_id": unit, "effective_date": on});
        if let (Some(body), Some(change)) = (body.as_object_mut(), change.as_object()) {
            body.extend(change.clone());
        }
        self.send("reorganise_unit", body).await;
    }

    // --- people ---

    pub fn any_unit(&mut self) -> String {
        if self.rng.percent(85) {
            self.rng.pick(&self.model.communes).clone()
        } else {
            self.rng.pick(&self.model.districts).clone()
        }
    }

    /// Category, position and title of a post; now and then a category that
    /// does not match the position (refused).
    pub fn post(&mut self) -> (&'static str, &'static str, Option<&'static str>) {
        let post = match self.rng.below(10) {
            0..=4 => ("cadre", *self.rng.pick(CADRE_POSTS), None),
            5..=8 => ("civil_servant", *self.rng.pick(CIVIL_SERVANT_POSTS), None),
            _ => ("part_time", "part_time", Some("Công an viên")),
        };
        if self.rng.percent(3) {
            ("cadre", *self.rng.pick(CIVIL_SERVANT_POSTS), None)
        } else {
            post
        }
    }

    pub async fn register_official(&mut self) {
        let id = self.model.fresh("o");
        let unit = self.any_unit();
        let (category, position, title) = self.post();
        let on = self.date("1998-01-01", "2010-12-31");
        let mut body = json!({
            "official_id": id, "full_name": "Nguyễn Văn A", "birth_year": 1960 + self.rng.below(30),
            "gender": if self.rng.percent(50) { "male" } else { "female" },
            "ethnic_minority": self.rng.percent(15), "unit_id": unit,
            "staff_category": category, "position": position, "effective_date": on,
        });
        if let Some(t) = title {
            body["position_title"] = json!(t);
        }
        if self.send("register_official", body).await.is_some() {
            self.model.officials.push((id, unit));
        }
    }

    pub fn official(&mut self) -> Option<(String, String)> {
        if self.model.officials.is_empty() {
            return None;
        }
        Some(self.rng.pick(&self.model.officials).clone())
    }

    pub async fn assign_position(&mut self) {
        let Some((official, _)) = self.official() else {
            return;
        };
        let unit = self.any_unit();
        let (category, position, title) = self.post();
        let on = self.date("2001-01-01", "2012-12-31");
        let mut body = json!({"official_id": official, "unit_id": unit, "staff_category": category,
                              "position": position, "effective_date": on});
        if let Some(t) = title {
            body["position_title"] = json!(t);
        }
        if self.rng.percent(50) {
            body["decision_no"] = json!(format!("{}/QĐ-UBND", self.rng.below(500)));
        }
        self.send("assign_position", body).await;
    }

    pub async fn record_leaving(&mut self) {
        let Some((official, _)) = self.official() else {
            return;
        };
        let reason = *self.rng.pick(&[
            "retired",
            "transferred",
            "resigned",
            "dismissed",
            "deceased",
        ]);
        let on = self.date("2002-01-01", "2012-12-31");
        self.send(
            "record_leaving",
            json!({"official_id": official, "reason": reason, "effective_date": on}),
        )
        .await;
    }

    pub async fn record_qualification(&mut self) {
        let Some((official, _)) = self.official() else {
            return;
        };
        let track = self.rng.weighted(&[
            (20, "general_education"),
            (35, "professional"),
            (25, "political_theory"),
            (10, "state_management"),
            (5, "it"),
            (5, "foreign_language"),
        ]);
        let level = if track == "professional" {
            // Mostly the middle levels, so that people often hold two
            // diplomas of the same level in different specialties.
            self.rng.weighted(&[
                (5, "none"),
                (10, "elementary"),
                (30, "intermediate"),
                (25, "college"),
                (25, "university"),
                (4, "master"),
                (1, "doctorate"),
            ])
        } else {
            *self.rng.pick(levels(track))
        };
        let on = self.date("1995-01-01", "2012-12-31");
        let mut body =
            json!({"official_id": official, "track": track, "level": level, "effective_date": on});
        if (track == "professional" && self.rng.percent(85)) || self.rng.percent(5) {
            body["specialty"] = json!(self.rng.pick(SPECIALTIES));
        }
        if self.rng.percent(40) {
            body["evidence"] =
                json!({"kind": "diploma", "number": format!("VB-{}", self.rng.below(99_999))});
        }
        self.send("record_qualification", body).await;
    }

    pub async fn plan(&mut self) {
        let Some((official, _)) = self.official() else {
            return;
        };
        let target = if self.rng.percent(50) {
            *self.rng.pick(CADRE_POSTS)
        } else {
            *self.rng.pick(CIVIL_SERVANT_POSTS)
        };
        let from = 2004 + self.rng.below(8);
        let to = from + self.rng.below(6);
        let on = self.date("2003-01-01", "2011-12-31");
        let mut body = json!({"official_id": official, "target_position": target,
                              "period_from": from, "period_to": to, "effective_date": on});
        if self.rng.percent(80) {
            body["planned_specialty"] = json!(self.rng.pick(SPECIALTIES));
        }
        self.send("plan", body).await;
    }

    pub async fn rate(&mut self) {
        let Some((official, _)) = self.official() else {
            return;
        };
        let year = 2004 + self.rng.below(9);
        let rating = *self
            .rng
            .pick(&["excellent", "good", "completed", "not_completed"]);
        let on = self.date(&format!("{year}-12-01"), &format!("{}-02-28", year + 1));
        self.send(
            "rate",
            json!({"official_id": official, "year": year, "rating": rating, "effective_date": on}),
        )
        .await;
    }

    // --- training places ---

    pub async fn nominate(&mut self) {
        let Some((official, home)) = self.official() else {
            return;
        };
        // Now and then the id of a place whose every step was retracted: it
        // may be nominated afresh.
        let emptied: Vec<usize> = (0..self.model.places.len())
            .filter(|i| self.model.places[*i].steps.is_empty())
            .collect();
        let again = (!emptied.is_empty() && self.rng.percent(50)).then(|| *self.rng.pick(&emptied));
        let id = match again {
            Some(i) => self.model.places[i].id.clone(),
            None => self.model.fresh("e"),
        };
        let unit = if self.rng.percent(70) {
            home
        } else {
            self.any_unit()
        };
        let track = self.rng.weighted(&[
            (40, "professional"),
            (20, "political_theory"),
            (25, "refresher"),
            (5, "state_management"),
            (4, "it"),
            (3, "foreign_language"),
            (3, "general_education"),
        ]);
        let mut program = json!({"track": track, "title": "Khoá học"});
        if track != "refresher" {
            program["level"] = json!(self.rng.pick(levels(track)));
        }
        if track == "professional" && self.rng.percent(90) {
            program["specialty"] = json!(self.rng.pick(SPECIALTIES));
        }
        let on = self.rng.day("2004-01-01", "2012-10-31");
        let start = self.rng.around(on, 0, 60);
        let end = self.rng.around(start, 0, 900);
        let mut funding = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            funding.push(json!({"source": self.rng.pick(FUNDING), "amount_vnd": 1000 * self.rng.below(50_000)}));
        }
        let in_province = self.rng.percent(70);
        let mut body = json!({
            "enrollment_id": id, "official_id": official, "nominating_unit_id": unit,
            "program": program,
            "institution": {"institution_id": if in_province { "qn-school" } else { "hcma" },
                            "name": "Trường Chính trị", "in_province": in_province},
            "planned_start": text(start), "planned_end": text(end),
            "funding": funding, "effective_date": text(on),
        });
        if self.rng.percent(60) {
            body["decision_no"] = json!(format!("{}/QĐ-UBND", self.rng.below(500)));
        }
        if let Some(ids) = self.send("nominate", body).await {
            let step = Step {
                state: "nominated",
                on,
                event_id: ids[0],
            };
            match again {
                Some(i) => self.model.places[i].steps.push(step),
                None => self.model.places.push(Place {
                    id,
                    steps: vec![step],
                }),
            }
        }
    }

    /// The next step of a place, mostly a lawful one, dated from a little
    /// before the previous step (refused) to more than a year after it.
    pub async fn step(&mut self) {
        // Mostly places that can still move on; now and then any place, for
        // a step after the end (refused).
        let open = self.rng.percent(85);
        let live: Vec<usize> = (0..self.model.places.len())
            .filter(|i| {
                self.model.places[*i]
                    .steps
                    .last()
                    .is_some_and(|s| !open || matches!(s.state, "nominated" | "enrolled"))
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let index = *self.rng.pick(&live);
        let (id, last_state, last_on) = {
            let place = &self.model.places[index];
            let last = place.steps.last().expect("a live step");
            (place.id.clone(), last.state, last.on)
        };
        let next: &'static str = match last_state {
            "nominated" => {
                self.rng
                    .weighted(&[(70, "enrolled"), (25, "cancelled"), (5, "completed")])
            }
            "enrolled" => self.rng.weighted(&[
                (60, "completed"),
                (15, "failed"),
                (20, "withdrawn"),
                (5, "enrolled"),
            ]),
            _ => "enrolled",
        };
        let on = self.rng.around(last_on, 15, 420);
        let mut body = json!({"enrollment_id": id, "effective_date": text(on)});
        let name = match next {
            "enrolled" => "enroll",
            "completed" => {
                body["result"] = json!(self.rng.pick(&["excellent", "good", "fair", "pass"]));
                if self.rng.percent(50) {
                    body["score"] = json!(5.0 + self.rng.below(50) as f64 / 10.0);
                }
                if self.rng.percent(70) {
                    body["certificate"] = json!({"kind": "diploma", "number": format!("BC-{}", self.rng.below(99_999))});
                }
                "complete"
            }
            "failed" => {
                body["reason"] = json!("không đạt");
                "fail"
            }
            "withdrawn" => {
                body["reason"] = json!("ốm đau");
                "withdraw"
            }
            _ => {
                body["reason"] = json!("lớp không mở");
                "cancel"
            }
        };
        if let Some(ids) = self.send(name, body).await {
            self.model.places[index].steps.push(Step {
                state: next,
                on,
                event_id: ids[0],
            });
        }
    }

    // --- retractions ---

    pub async fn retract(&mut self) {
        let target = if self.rng.percent(40) {
            // The last step of a place: the retraction the rules allow.
            let with_steps: Vec<Uuid> = self
                .model
                .places
                .iter()
                .filter_map(|p| p.steps.last().map(|s| s.event_id))
                .collect();
            if with_steps.is_empty() {
                return;
            }
            *self.rng.pick(&with_steps)
        } else {
            self.look().await;
            if self.model.retractable.is_empty() {
                return;
            }
            *self.rng.pick(&self.model.retractable)
        };
        let on = self.date("2004-01-01", "2013-06-30");
        let accepted = self
            .send(
                "retract",
                json!({"event_id": target, "reason": "ghi nhầm", "effective_date": on}),
            )
            .await
            .is_some();
        if accepted {
            // Only a place's last step can have been retracted.
            for place in &mut self.model.places {
                if place.steps.last().is_some_and(|s| s.event_id == target) {
                    place.steps.pop();
                }
            }
        }
    }

    // --- reference data published part-way ---

    /// A standards ruleset with random minimums: groups split or merged by
    /// key-leader flag, exemptions, and now and then a group left out (the
    /// people it would cover match no requirement).
    pub fn ruleset(&mut self) -> Value {
        let tracks = [
            "general_education",
            "professional",
            "political_theory",
            "state_management",
        ];
        let group = |rng: &mut Rng, name: &str, category: &str, key_leader: Option<bool>| {
            let mut minimums = Map::new();
            for track in tracks {
                let chance = if track == "state_management" { 25 } else { 80 };
                if rng.percent(chance) {
                    let ordered = levels(track);
                    // "none" as a minimum is met by any professional record.
                    minimums.insert(track.into(), json!(rng.pick(ordered)));
                }
            }
            let mut g = json!({"group": name, "staff_category": category, "minimums": minimums});
            if let Some(k) = key_leader {
                g["key_leader"] = json!(k);
            }
            if category == "civil_servant"
                && minimums.contains_key("political_theory")
                && rng.percent(60)
            {
                g["exemptions"] =
                    json!({"political_theory": ["police_chief", "military_commander"]});
            }
            g
        };
        let mut requirements = Vec::new();
        if self.rng.percent(75) {
            if !self.rng.percent(8) {
                requirements.push(group(&mut self.rng, "key_leaders", "cadre", Some(true)));
            }
            if !self.rng.percent(8) {
                requirements.push(group(&mut self.rng, "other_cadres", "cadre", Some(false)));
            }
        } else {
            requirements.push(group(&mut self.rng, "cadres", "cadre", None));
        }
        if !self.rng.percent(8) {
            requirements.push(group(
                &mut self.rng,
                "civil_servants",
                "civil_servant",
                None,
            ));
        }
        json!({"requirements": requirements})
    }

    /// The reference data published part-way through the history: a second
    /// ruleset (sometimes corrected later under a new name, in force from
    /// the same date), sometimes a second specialty map or taxonomy.
    pub fn publications(&mut self) -> Vec<(usize, Value)> {
        let mut out = Vec::new();
        let ruleset_from = self.date("2003-07-01", "2011-06-30");
        let at = COMMANDS / 4 + self.rng.below(COMMANDS / 2);
        let content = self.ruleset();
        out.push((
            at,
            json!({"kind": "ruleset", "name": "nd-2008", "effective_date": ruleset_from, "content": content}),
        ));
        if self.rng.percent(40) {
            let content = self.ruleset();
            out.push((
                at + 1 + self.rng.below(COMMANDS - at - 1),
                json!({"kind": "ruleset", "name": "nd-2008-fixed", "effective_date": ruleset_from, "content": content}),
            ));
        }
        if self.rng.percent(50) {
            let mut posts = Map::new();
            for post in CIVIL_SERVANT_POSTS {
                if self.rng.percent(80) {
                    let accepted: Vec<&str> = (0..1 + self.rng.below(3))
                        .map(|_| *self.rng.pick(SPECIALTIES))
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    posts.insert((*post).into(), json!(accepted));
                }
            }
            out.push((
                self.rng.below(COMMANDS),
                json!({"kind": "specialty_map", "name": "specialties-2007",
                       "effective_date": self.date("2005-01-01", "2011-12-31"), "content": {"posts": posts}}),
            ));
        }
        if self.rng.percent(40) {
            let mut taxonomy = shipped("position_taxonomy");
            if let Some(positions) = taxonomy["positions"].as_array_mut() {
                for p in positions {
                    if p["staff_category"] == "cadre" {
                        p["key_leader"] = json!(self.rng.percent(50));
                    }
                }
            }
            out.push((
                self.rng.below(COMMANDS),
                json!({"kind": "position_taxonomy", "name": "taxonomy-2009",
                       "effective_date": self.date("2006-01-01", "2011-12-31"), "content": taxonomy}),
            ));
        }
        out
    }

    /// The whole random history.
    pub async fn run(&mut self) {
        self.start().await;
        let publications = self.publications();
        for i in 0..COMMANDS {
            for (_, body) in publications.iter().filter(|(at, _)| *at == i) {
                assert!(
                    self.send("publish_reference", body.clone()).await.is_some(),
                    "seed {:#x}: {body}",
                    self.seed
                );
            }
            let few = self.model.officials.len() < 10;
            let command = self.rng.weighted(&[
                (3, "new_unit"),
                (5, "reorganise_unit"),
                (if few { 15 } else { 3 }, "register_official"),
                (6, "assign_position"),
                (5, "record_leaving"),
                (14, "record_qualification"),
                (6, "plan"),
                (3, "rate"),
                (16, "nominate"),
                (20, "step"),
                (8, "retract"),
            ]);
            match command {
                "new_unit" => self.new_unit().await,
                "reorganise_unit" => self.reorganise_unit().await,
                "register_official" => self.register_official().await,
                "assign_position" => self.assign_position().await,
                "record_leaving" => self.record_leaving().await,
                "record_qualification" => self.record_qualification().await,
                "plan" => self.plan().await,
                "rate" => self.rate().await,
                "nominate" => self.nominate().await,
                "step" => self.step().await,
                _ => self.retract().await,
            }
            // Completions and retractions set the policy off; it sometimes
            // lags behind, as it may in service.
            if matches!(command, "step" | "retract") && self.rng.percent(75) {
                self.run_policy().await;
            }
        }
        self.run_policy().await;
    }
}

pub fn shipped(kind: &str) -> Value {
    reference_data::shipped()
        .expect("shipped reference data")
        .into_iter()
        .find(|(p, _)| p.kind.as_str() == kind)
        .map(|(p, _)| Value::Object(p.content))
        .expect("shipped")
}

pub async fn unsequenced(ledger: &Ledger) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
        .fetch_one(ledger.store.pool())
        .await
        .expect("count")
}

/// The whole ledger read back: its facts, when each position was recorded,
/// and the units ever registered.
pub struct Ledgered {
    pub facts: Vec<LedgerFact>,
    pub recorded: Vec<(u64, DateTime<Utc>)>,
    pub units: Vec<String>,
}

pub async fn read_back(ledger: &Ledger) -> Ledgered {
    let mut facts = Vec::new();
    let mut recorded = Vec::new();
    let mut after = 0;
    loop {
        let events = ledger
            .store
            .read_ledger(after, 1000)
            .await
            .expect("read the ledger");
        let Some(last) = events.last() else { break };
        after = last.position;
        for e in events {
            let fact_type: FactType = e.event_type.parse().expect("a fact type");
            let fact = Fact::from_data(fact_type, &e.data).expect("a fact");
            recorded.push((e.position, e.recorded_at));
            facts.push(LedgerFact {
                position: e.position,
                event_id: e.event_id,
                stream: e.stream(),
                fact,
            });
        }
    }
    let mut units: Vec<String> = facts
        .iter()
        .filter_map(|f| match &f.fact {
            Fact::UnitRegistered(u) => Some(u.unit_id.to_string()),
            _ => None,
        })
        .collect();
    units.sort();
    units.dedup();
    Ledgered {
        facts,
        recorded,
        units,
    }
}
