//! The demo district's plan, without a database: every command parses as
//! its fact, the plan is the same for the same seed, the commands come in an
//! order the ledger's rules accept, and the facts the ledger would record
//! reproduce the seed article's figures exactly (checked with the
//! independent fold of `tledger-tests`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tledger::commands::COMMANDS;
use tledger_demo_plan::{self as demo, DemoPlan, Expected};
use tledger_events::facts::{Evidence, QualificationRecorded, TrainingNominated};
use tledger_events::reference_data::{self, ReferenceContent};
use tledger_events::{Date, Fact, FactType, Track};
use tledger_tests::fold::{self, LedgerFact};
use uuid::Uuid;

fn fact_type_of(name: &str) -> FactType {
    COMMANDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("{name} is not a command"))
}

fn date(s: &str) -> Date {
    s.parse().expect("a date")
}

/// The facts the ledger records when the plan is sent to a migrated ledger:
/// the shipped reference data first (`tledger migrate`), then each
/// command's fact, each completion of a degree programme followed by the
/// qualification the policy records for it (track, level and specialty of
/// the programme, effective on the completion date, the certificate as
/// evidence). Positions in that order; event ids derived from them.
fn ledger_facts(plan: &DemoPlan) -> Vec<LedgerFact> {
    let mut facts = Vec::new();
    let mut push = |fact: Fact| {
        let position = facts.len() as u64 + 1;
        let stream = fact
            .stream()
            .map(|s| s.to_string())
            .expect("the plan retracts nothing");
        facts.push(LedgerFact {
            position,
            event_id: Uuid::from_u128(
                0xde30_0000_0000_0000_0000_0000_0000_0000 | u128::from(position),
            ),
            stream,
            fact,
        });
    };
    for (published, _) in reference_data::shipped().expect("shipped reference data") {
        push(Fact::ReferencePublished(published));
    }
    let mut nominations: HashMap<String, TrainingNominated> = HashMap::new();
    for step in &plan.steps {
        let fact = Fact::from_data(fact_type_of(step.name), &step.body)
            .unwrap_or_else(|e| panic!("{} {}: {e}: {}", step.key, step.name, step.body));
        let policy = match &fact {
            Fact::TrainingNominated(n) => {
                nominations.insert(n.enrollment_id.to_string(), n.clone());
                None
            }
            Fact::TrainingCompleted(c) => {
                let n = &nominations[c.enrollment_id.as_str()];
                match (&n.program.level, n.program.track.is_degree()) {
                    (Some(level), true) => {
                        Some(Fact::QualificationRecorded(QualificationRecorded {
                            official_id: n.official_id.clone(),
                            track: n.program.track,
                            level: level.clone(),
                            specialty: n.program.specialty.clone(),
                            evidence: c.certificate.as_ref().map(|cert| Evidence {
                                kind: cert.kind,
                                number: cert.number.clone(),
                                issued_by: Some(n.institution.name.clone()),
                            }),
                            source_enrollment_id: Some(n.enrollment_id.clone()),
                            effective_date: c.effective_date,
                        }))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        push(fact);
        if let Some(q) = policy {
            push(q);
        }
    }
    facts
}

/// Asserts every figure of the article for the plan of `seed`.
fn assert_reproduces_the_article(seed: u64) {
    let e: Expected = demo::expected();
    let facts = ledger_facts(&demo::plan(seed));
    let cut = facts.len() as u64;
    let unit = Some(e.unit_id);

    let v = fold::training_volume(&facts, cut, unit, date(e.volume_from), date(e.volume_to));
    assert_eq!(
        (
            v.total,
            v.professional_intermediate_plus,
            v.political_theory_intermediate_plus,
            v.refresher
        ),
        (
            e.total,
            e.professional_intermediate_plus,
            e.political_theory_intermediate_plus,
            e.refresher
        ),
        "seed {seed}: {v:?}"
    );
    // Nothing else is enrolled in the window: the three headline figures
    // make up the total.
    assert_eq!(
        v.total,
        v.professional_intermediate_plus + v.political_theory_intermediate_plus + v.refresher
    );
    for (track, levels) in [
        ("professional", e.professional_by_level),
        ("political_theory", e.political_theory_by_level),
    ] {
        let (total, by_level) = &v.by_track[track];
        let expected: u64 = levels.iter().map(|(_, n)| n).sum();
        assert_eq!(*total, expected, "seed {seed}: {track}");
        for (level, count) in by_level {
            let want = levels
                .iter()
                .find(|(l, _)| l == level)
                .map_or(0, |(_, n)| *n);
            assert_eq!(*count, want, "seed {seed}: {track} {level}");
        }
    }

    let s = fold::standards(&facts, cut, unit, date(e.as_of)).expect("a ruleset in force");
    assert_eq!(s.ruleset, e.ruleset);
    assert_eq!(s.population, e.population, "seed {seed}: {s:?}");
    assert_eq!(s.meets_all, e.meets_all, "seed {seed}: {s:?}");
    assert_eq!(
        s.professional_college_plus, e.professional_college_plus,
        "seed {seed}"
    );
    assert_eq!(
        s.key_leaders_college_plus, e.key_leaders_college_plus,
        "seed {seed}"
    );
    assert_eq!(
        s.political_theory_intermediate_plus, e.political_theory_intermediate_plus_people,
        "seed {seed}"
    );

    let baseline =
        fold::standards(&facts, cut, unit, date(e.baseline_as_of)).expect("a ruleset in force");
    assert_eq!(
        baseline.meets_all, e.baseline_meets_all,
        "seed {seed}: {baseline:?}"
    );
    assert_eq!(
        demo::increase_permille(s.meets_all, baseline.meets_all),
        Some(e.meets_all_increase_permille)
    );

    let a = fold::alignment(&facts, cut, unit, date(e.as_of)).expect("a specialty map in force");
    let count = |reason: &str| a.misassigned.iter().filter(|r| r.3 == reason).count() as u64;
    assert_eq!(
        (count("other_specialty"), count("untrained")),
        (e.misassigned_other_specialty, e.misassigned_untrained),
        "seed {seed}: {:?}",
        a.misassigned
    );
}

#[test]
fn the_default_seed_reproduces_the_article_exactly() {
    assert_reproduces_the_article(demo::DEFAULT_SEED);
}

#[test]
fn other_seeds_reproduce_the_article_exactly_too() {
    for seed in [0, 1, 42, 0xDEAD_BEEF] {
        assert_reproduces_the_article(seed);
    }
}

#[test]
fn the_expected_figures_are_the_articles_rates() {
    let e = demo::expected();
    assert_eq!(e.total, 9_384);
    assert_eq!(demo::rate_ten_thousandths(e.meets_all), Some(6222));
    assert_eq!(
        demo::rate_ten_thousandths(e.professional_college_plus),
        Some(2317)
    );
    // The article says 57.44%; 58 of 101 is 57.43%.
    assert_eq!(
        demo::rate_ten_thousandths(e.key_leaders_college_plus),
        Some(5743)
    );
    assert_eq!(
        demo::rate_ten_thousandths(e.political_theory_intermediate_plus_people),
        Some(8067)
    );
    assert_eq!(demo::rate_ten_thousandths(e.baseline_meets_all), Some(3056));
}

#[test]
fn the_alignment_report_has_rows_of_every_reason() {
    let facts = ledger_facts(&demo::plan(demo::DEFAULT_SEED));
    let a = fold::alignment(
        &facts,
        facts.len() as u64,
        Some("dai-loc"),
        date("2011-12-31"),
    )
    .expect("a specialty map in force");
    let training: BTreeSet<&str> = a
        .training_outside_plan
        .iter()
        .map(|r| r.4.as_str())
        .collect();
    let misassigned: BTreeSet<&str> = a.misassigned.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(
        training,
        BTreeSet::from(["not_in_plan", "other_specialty"]),
        "{:?}",
        a.training_outside_plan
    );
    assert_eq!(
        misassigned,
        BTreeSet::from(["other_specialty", "untrained"]),
        "{:?}",
        a.misassigned
    );
    // The problems are the exception, not the rule.
    assert!(
        a.training_outside_plan.len() < 150,
        "{}",
        a.training_outside_plan.len()
    );
    assert!(a.misassigned.len() < 60, "{}", a.misassigned.len());
}

#[test]
fn the_plan_is_the_same_for_the_same_seed_and_another_for_another_seed() {
    let first = demo::plan(7);
    assert_eq!(first, demo::plan(7));
    assert_ne!(first, demo::plan(8));
    // Keys are stable and unique: a re-run of the seeding records nothing
    // twice.
    let keys: BTreeSet<&str> = first.steps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys.len(), first.steps.len());
    assert_eq!(first.steps[0].key, "demo-1");
    // A size the ledger seeds in about a minute.
    assert!(
        (25_000..40_000).contains(&first.steps.len()),
        "{}",
        first.steps.len()
    );
}

#[test]
fn every_command_body_parses_as_the_fact_of_its_command() {
    for step in demo::plan(demo::DEFAULT_SEED).steps {
        let fact = Fact::from_data(fact_type_of(step.name), &step.body);
        assert!(
            fact.is_ok(),
            "{} {}: {fact:?}: {}",
            step.key,
            step.name,
            step.body
        );
    }
}

#[test]
fn the_district_and_its_18_units_are_registered_first() {
    let plan = demo::plan(demo::DEFAULT_SEED);
    let units: Vec<(&str, Option<&str>)> = plan
        .steps
        .iter()
        .take_while(|s| s.name == "register_unit")
        .map(|s| {
            (
                s.body["unit_id"].as_str().expect("unit_id"),
                s.body["parent_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(units.len(), 20);
    assert_eq!(units[0], ("quang-nam", None));
    assert_eq!(units[1], ("dai-loc", Some("quang-nam")));
    assert!(units[2..]
        .iter()
        .all(|(_, parent)| *parent == Some("dai-loc")));
    assert!(units.contains(&("dai-loc-ai-nghia", Some("dai-loc"))));
    assert!(units.contains(&("dai-loc-dai-thanh", Some("dai-loc"))));
}

/// The ledger's rules (docs/contract.md, "Rules the ledger enforces"), checked on
/// the plan in its order, as far as they can be without a database.
#[test]
fn the_commands_come_in_an_order_the_ledger_accepts() {
    let plan = demo::plan(demo::DEFAULT_SEED);
    let taxonomy = reference_data::shipped()
        .expect("shipped reference data")
        .into_iter()
        .find_map(|(_, c)| match c {
            ReferenceContent::PositionTaxonomy(t) => Some(t),
            _ => None,
        })
        .expect("the shipped taxonomy");
    let mut units: BTreeSet<String> = BTreeSet::new();
    // Per official: (date, in post) changes, and the years rated.
    let mut tenure: HashMap<String, Vec<(Date, bool)>> = HashMap::new();
    let mut rated: BTreeSet<(String, i32)> = BTreeSet::new();
    // Per enrollment: (state, date of the last step).
    let mut places: BTreeMap<String, (&str, Date)> = BTreeMap::new();
    let in_post = |changes: &[(Date, bool)], on: Date| {
        changes
            .iter()
            .rev()
            .find(|(d, _)| *d <= on)
            .is_some_and(|(_, p)| *p)
    };
    for step in &plan.steps {
        let fact = Fact::from_data(fact_type_of(step.name), &step.body).expect("parses");
        let key = &step.key;
        match &fact {
            Fact::UnitRegistered(u) => {
                if let Some(p) = &u.parent_id {
                    assert!(units.contains(p.as_str()), "{key}: parent first");
                }
                assert!(
                    units.insert(u.unit_id.to_string()),
                    "{key}: registered twice"
                );
            }
            Fact::OfficialRegistered(r) => {
                assert!(units.contains(r.unit_id.as_str()), "{key}");
                assert!(
                    taxonomy.check(&r.position, r.staff_category).is_ok(),
                    "{key}"
                );
                let previous =
                    tenure.insert(r.official_id.to_string(), vec![(r.effective_date, true)]);
                assert!(previous.is_none(), "{key}: registered twice");
            }
            Fact::PositionAssigned(a) => {
                assert!(units.contains(a.unit_id.as_str()), "{key}");
                assert!(
                    taxonomy.check(&a.position, a.staff_category).is_ok(),
                    "{key}"
                );
                let t = tenure
                    .get_mut(a.official_id.as_str())
                    .expect("registered first");
                t.push((a.effective_date, true));
                t.sort();
            }
            Fact::Left(l) => {
                let t = tenure
                    .get_mut(l.official_id.as_str())
                    .expect("registered first");
                assert!(in_post(t, l.effective_date), "{key}: leaves while in post");
                t.push((l.effective_date, false));
                t.sort();
            }
            Fact::QualificationRecorded(q) => {
                assert!(
                    tenure.contains_key(q.official_id.as_str()),
                    "{key}: registered first"
                );
            }
            Fact::Planned(p) => {
                assert!(
                    tenure.contains_key(p.official_id.as_str()),
                    "{key}: registered first"
                );
                assert!(taxonomy.position(&p.target_position).is_some(), "{key}");
            }
            Fact::Rated(r) => {
                assert!(
                    tenure.contains_key(r.official_id.as_str()),
                    "{key}: registered first"
                );
                assert!(
                    rated.insert((r.official_id.to_string(), r.year.value())),
                    "{key}: rated twice"
                );
            }
            Fact::TrainingNominated(n) => {
                let t = tenure
                    .get(n.official_id.as_str())
                    .expect("registered first");
                assert!(units.contains(n.nominating_unit_id.as_str()), "{key}");
                // Not on or after a leaving (before any later assignment).
                assert!(
                    in_post(t, n.effective_date),
                    "{key}: nominated while in post"
                );
                let previous =
                    places.insert(n.enrollment_id.to_string(), ("nominated", n.effective_date));
                assert!(previous.is_none(), "{key}: nominated twice");
                if n.program.track == Track::Refresher {
                    assert!(n.program.level.is_none(), "{key}");
                } else {
                    assert!(n.program.level.is_some(), "{key}");
                }
            }
            Fact::TrainingEnrolled(_)
            | Fact::TrainingCompleted(_)
            | Fact::TrainingFailed(_)
            | Fact::TrainingWithdrawn(_)
            | Fact::TrainingCancelled(_) => {
                let id = match &fact {
                    Fact::TrainingEnrolled(e) => e.enrollment_id.to_string(),
                    Fact::TrainingCompleted(c) => c.enrollment_id.to_string(),
                    Fact::TrainingFailed(t)
                    | Fact::TrainingWithdrawn(t)
                    | Fact::TrainingCancelled(t) => t.enrollment_id.to_string(),
                    _ => unreachable!(),
                };
                let (state, last) = places.get(&id).copied().expect("nominated first");
                let next = match (&fact, state) {
                    (Fact::TrainingEnrolled(_), "nominated") => "enrolled",
                    (Fact::TrainingCancelled(_), "nominated") => "cancelled",
                    (Fact::TrainingCompleted(_), "enrolled") => "completed",
                    (Fact::TrainingFailed(_), "enrolled") => "failed",
                    (Fact::TrainingWithdrawn(_), "enrolled") => "withdrawn",
                    _ => panic!("{key}: {} after {state}", step.name),
                };
                assert!(
                    fact.effective_date() >= last,
                    "{key}: a step dated before the previous one"
                );
                places.insert(id, (next, fact.effective_date()));
            }
            other => panic!("{key}: unexpected {:?}", other.fact_type()),
        }
    }
    // Every place reached an end.
    assert!(places
        .values()
        .all(|(state, _)| !matches!(*state, "nominated" | "enrolled")));
}

#[test]
fn funding_comes_from_the_province_and_district_budgets_and_some_agency_and_self() {
    let e = demo::expected();
    let facts = ledger_facts(&demo::plan(demo::DEFAULT_SEED));
    let v = fold::training_volume(
        &facts,
        facts.len() as u64,
        Some(e.unit_id),
        date(e.volume_from),
        date(e.volume_to),
    );
    let f = &v.funding;
    assert!(f["province"] > 0 && f["district"] > 0, "{f:?}");
    assert!(f["agency"] > 0 && f["self"] > 0, "{f:?}");
    assert!(
        f["province"] + f["district"] > 4 * (f["agency"] + f["self"]),
        "{f:?}"
    );
    assert_eq!(f["other"], 0);
    // Institutions in and outside the province.
    let places: Vec<&TrainingNominated> = facts
        .iter()
        .filter_map(|f| match &f.fact {
            Fact::TrainingNominated(n) => Some(n),
            _ => None,
        })
        .collect();
    assert!(places.iter().any(|n| n.institution.in_province));
    assert!(places.iter().any(|n| !n.institution.in_province));
}

/// The in-memory engine of `tledger replay … report` over the seed's facts
/// gives the article's figures (no database).
#[test]
fn the_offline_reports_reproduce_the_article() {
    use tledger_projections::offline::OfflineLedger;

    let e = demo::expected();
    let facts = ledger_facts(&demo::plan(demo::DEFAULT_SEED));
    let mut ledger = OfflineLedger::new();
    let recorded_at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("an instant")
        .with_timezone(&chrono::Utc);
    for f in &facts {
        ledger
            .apply(f.position, f.event_id, recorded_at, f.fact.clone())
            .expect("a fact in order");
    }
    let cut = ledger.last_position();
    assert_eq!(cut, facts.len() as u64);
    let unit = Some(e.unit_id);

    let v = ledger
        .training_volume(unit, date(e.volume_from), date(e.volume_to), cut)
        .expect("a volume");
    let json = v.to_json();
    assert_eq!(json["total"], 9_384);
    assert_eq!(
        json["headline"],
        serde_json::json!({
            "professional_intermediate_plus": e.professional_intermediate_plus,
            "political_theory_intermediate_plus": e.political_theory_intermediate_plus,
            "refresher": e.refresher,
        })
    );
    for (track, levels) in [
        ("professional", e.professional_by_level),
        ("political_theory", e.political_theory_by_level),
    ] {
        for (level, count) in levels {
            assert_eq!(
                json["by_track"][track]["by_level"][level], *count,
                "{track} {level}"
            );
        }
    }

    let s = ledger
        .standards(unit, date(e.as_of), cut)
        .expect("a ruleset in force");
    let figure = |f: tledger_projections::rate::Figure| (f.count, f.of);
    assert_eq!(s.ruleset, e.ruleset);
    assert_eq!(s.population, e.population);
    assert_eq!(figure(s.meets_all_standards), (247, 397));
    assert_eq!(figure(s.meets_all_standards), e.meets_all);
    assert_eq!(
        figure(s.professional_college_plus),
        e.professional_college_plus
    );
    assert_eq!(
        figure(s.key_leaders_college_plus),
        e.key_leaders_college_plus
    );
    assert_eq!(
        figure(s.political_theory_intermediate_plus),
        e.political_theory_intermediate_plus_people
    );
    let baseline = ledger
        .standards(unit, date(e.baseline_as_of), cut)
        .expect("a ruleset in force");
    assert_eq!(figure(baseline.meets_all_standards), e.baseline_meets_all);

    // Alignment row for row as the independent fold has it.
    let a = ledger
        .alignment(unit, date(e.as_of), cut)
        .expect("a specialty map in force");
    let fold =
        fold::alignment(&facts, cut, unit, date(e.as_of)).expect("the specialty map in force");
    let misassigned: BTreeSet<fold::Misassigned> = a
        .misassigned
        .iter()
        .map(|m| {
            (
                m.official_id.clone(),
                m.post.clone(),
                m.specialty.clone(),
                m.reason.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        misassigned,
        fold.misassigned.iter().cloned().collect::<BTreeSet<_>>()
    );
    let count = |reason: &str| a.misassigned.iter().filter(|m| m.reason == reason).count() as u64;
    assert_eq!(
        (count("other_specialty"), count("untrained")),
        (e.misassigned_other_specialty, e.misassigned_untrained)
    );
    let outside: BTreeSet<fold::OutsidePlan> = a
        .training_outside_plan
        .iter()
        .map(|t| {
            (
                t.enrollment_id.clone(),
                t.official_id.clone(),
                t.program_specialty.clone(),
                t.planned_specialty.clone(),
                t.reason.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outside,
        fold.training_outside_plan
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
    );

    // A unit nobody registered is refused as the server refuses it.
    let unknown = ledger.standards(Some("nowhere"), date(e.as_of), cut);
    assert_eq!(
        unknown.map_err(|e| e.to_string()).err().as_deref(),
        Some("unit nowhere is not registered")
    );
}
