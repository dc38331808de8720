//! The reports equal an independent fold over the raw facts, on random
//! histories.
//!
//! Each case is a seed. It sends a random history through the real command
//! path (units registered, re-parented, renamed and dissolved; officials
//! registered, assigned, leaving and returning; qualifications, plans,
//! ratings; training places nominated with funding, enrolled, completed,
//! failed, withdrawn or cancelled; retractions; a second standards ruleset,
//! sometimes corrected, and sometimes a second specialty map or taxonomy,
//! published part-way), with effective dates spread over 2004-2012 and sent
//! in no date order, so many facts are late. Commands the ledger refuses
//! record nothing, which is fine: every recorded fact passed its rules.
//! Then it reads the whole ledger and compares every report, at random cuts
//! (`at_position` on the read models, `known_at` over HTTP), random dates
//! and random units (and the whole country), with `tledger_tests::fold`,
//! figure by figure.
//!
//! `TLEDGER_MODEL_SEED=<seed>` runs that one case (a failure prints it);
//! `TLEDGER_MODEL_CASES=<n>` runs n cases instead of the default.

use crate::support;

use std::collections::BTreeMap;
use std::fmt;

use chrono::SecondsFormat;
use serde_json::{json, Value};
use support::random_history::{read_back, History, Ledgered, Model, Rng};
use support::{spawn_app, Ledger};
use tledger_events::Date;
use tledger_projections::projector::{self, Projector};
use tledger_projections::reports::{ReadModels, ReportError};
use tledger_tests::fold;

/// Cases per run (each of `random_history::COMMANDS` commands): about two
/// seconds per case in a debug build.
const CASES: u64 = 20;
/// Report questions per case: on the read models at a position, and over
/// HTTP at an instant.
const AT_POSITION: usize = 10;
const KNOWN_AT: usize = 3;
/// Cases run side by side: most of a case's time is spent waiting for
/// PostgreSQL and the sequencer.
const PARALLEL: usize = 4;

const FIRST_SEED: u64 = 0x7d1e_d6e2_0000_0000;

// --- the reports, read back into the fold's shapes ------------------------

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a count: {v}"))
}

fn volume_of(json: &Value) -> fold::Volume {
    let by_track = json["by_track"]
        .as_object()
        .expect("by_track")
        .iter()
        .map(|(track, entry)| {
            let levels = entry["by_level"]
                .as_object()
                .expect("by_level")
                .iter()
                .map(|(level, n)| (level.clone(), count(n)))
                .collect();
            (track.clone(), (count(&entry["total"]), levels))
        })
        .collect();
    let funding = json["funding_vnd"]
        .as_object()
        .expect("funding_vnd")
        .iter()
        .map(|(source, n)| (source.clone(), n.as_i64().expect("đồng")))
        .collect();
    let headline = &json["headline"];
    fold::Volume {
        total: count(&json["total"]),
        professional_intermediate_plus: count(&headline["professional_intermediate_plus"]),
        political_theory_intermediate_plus: count(&headline["political_theory_intermediate_plus"]),
        refresher: count(&headline["refresher"]),
        by_track,
        funding,
    }
}

/// A figure's (count, of), after checking its rate: count/of rounded half
/// away from zero to 4 decimals, `null` when of is 0.
fn figure(json: &Value, name: &str) -> (u64, u64) {
    let f = &json[name];
    let (n, of) = (count(&f["count"]), count(&f["of"]));
    let scaled = n * 10_000;
    match scaled.checked_div(of) {
        None => assert!(f["rate"].is_null(), "{name}: {f}"),
        Some(quotient) => {
            let expected = quotient + u64::from(2 * (scaled % of) >= of);
            let rate = f["rate"].as_f64().expect("a rate");
            assert_eq!(
                (rate * 10_000.0).round() as u64,
                expected,
                "{name}: {f} rounds wrongly"
            );
        }
    }
    (n, of)
}

fn standards_of(json: &Value) -> fold::Standards {
    fold::Standards {
        ruleset: json["ruleset"].as_str().expect("ruleset").to_owned(),
        population: count(&json["population"]),
        meets_all: figure(json, "meets_all_standards"),
        professional_college_plus: figure(json, "professional_college_plus"),
        key_leaders_college_plus: figure(json, "key_leaders_college_plus"),
        political_theory_intermediate_plus: figure(json, "political_theory_intermediate_plus"),
    }
}

fn string(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string: {v}"))
        .to_owned()
}

fn optional(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn alignment_of(json: &Value) -> fold::Alignment {
    let list = |name: &str| json[name].as_array().expect("a list").clone();
    fold::Alignment {
        training_outside_plan: list("training_outside_plan")
            .iter()
            .map(|r| {
                (
                    string(&r["enrollment_id"]),
                    string(&r["official_id"]),
                    optional(&r["program_specialty"]),
                    optional(&r["planned_specialty"]),
                    string(&r["reason"]),
                )
            })
            .collect(),
        misassigned: list("misassigned")
            .iter()
            .map(|r| {
                (
                    string(&r["official_id"]),
                    string(&r["post"]),
                    optional(&r["specialty"]),
                    string(&r["reason"]),
                )
            })
            .collect(),
    }
}

// --- the questions ---------------------------------------------------------

/// One report question, printed with every failure to reproduce it.
struct Question {
    seed: u64,
    cut: u64,
    known_at: Option<String>,
    unit: Option<String>,
    as_of: Date,
    from: Date,
    to: Date,
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TLEDGER_MODEL_SEED={:#x}: at_position {}",
            self.seed, self.cut
        )?;
        if let Some(t) = &self.known_at {
            write!(f, " (known_at {t})")?;
        }
        write!(
            f,
            ", unit {}, as_of {}, from {} to {}",
            self.unit.as_deref().unwrap_or("(whole country)"),
            self.as_of,
            self.from,
            self.to
        )
    }
}

/// A report the read models refused: only for a unit unknown at the cut.
fn refused(q: &Question, unknown: bool, report: &str, e: &ReportError) {
    assert!(
        unknown && matches!(e, ReportError::UnknownUnit(_)),
        "{q}: {report}: {e}"
    );
}

/// The ledger as read back, with the fold's view of it.
impl Ledgered {
    fn head(&self) -> u64 {
        self.facts.last().map_or(0, |f| f.position)
    }

    fn question(&self, rng: &mut Rng, seed: u64, cut: u64) -> Question {
        let unit = (!rng.percent(30)).then(|| rng.pick(&self.units).clone());
        let from = rng.day("2003-01-01", "2012-06-30");
        let to = rng.around(from, 0, 6 * 365);
        Question {
            seed,
            cut,
            known_at: None,
            unit,
            as_of: rng.day("2003-06-01", "2013-06-30").into(),
            from: from.into(),
            to: to.into(),
        }
    }

    fn unknown_unit(&self, q: &Question) -> bool {
        q.unit
            .as_deref()
            .is_some_and(|u| !fold::unit_registered(&self.facts, q.cut, u))
    }

    /// The three reports on the read models at `q.cut`.
    async fn on_read_models(&self, models: &ReadModels, q: &Question) {
        let unit = q.unit.as_deref();
        let unknown = self.unknown_unit(q);
        match models.training_volume(unit, q.from, q.to, q.cut).await {
            Ok(v) => {
                assert!(!unknown, "{q}: training-volume of an unknown unit");
                assert_eq!(v.position, q.cut, "{q}");
                assert_eq!(
                    volume_of(&v.to_json()),
                    fold::training_volume(&self.facts, q.cut, unit, q.from, q.to),
                    "{q}: training-volume (left: read models, right: fold)"
                );
            }
            Err(e) => refused(q, unknown, "training-volume", &e),
        }

        let expected = fold::standards(&self.facts, q.cut, unit, q.as_of);
        match models.standards(unit, q.as_of, q.cut).await {
            Ok(s) => {
                assert!(!unknown, "{q}: standards of an unknown unit");
                assert_eq!(s.position, q.cut, "{q}");
                assert_eq!(
                    Some(standards_of(&s.to_json())),
                    expected,
                    "{q}: standards (left: read models, right: fold)"
                );
            }
            Err(ReportError::NoReferenceData { .. }) if !unknown => {
                assert_eq!(expected, None, "{q}: standards refused");
            }
            Err(e) => refused(q, unknown, "standards", &e),
        }

        let expected = fold::alignment(&self.facts, q.cut, unit, q.as_of);
        match models.alignment(unit, q.as_of, q.cut).await {
            Ok(a) => {
                assert!(!unknown, "{q}: alignment of an unknown unit");
                assert_eq!(a.position, q.cut, "{q}");
                assert_eq!(
                    Some(alignment_of(&a.to_json())),
                    expected,
                    "{q}: alignment (left: read models, right: fold)"
                );
            }
            Err(ReportError::NoReferenceData { .. }) if !unknown => {
                assert_eq!(expected, None, "{q}: alignment refused");
            }
            Err(e) => refused(q, unknown, "alignment", &e),
        }
    }

    /// The three reports over HTTP with `known_at`: the cut the service
    /// takes is the last position recorded by then.
    async fn over_http(&self, ledger: &Ledger, q: &Question) {
        let known_at = q.known_at.as_deref().expect("known_at");
        let unit = q
            .unit
            .as_deref()
            .map(|u| format!("&unit={u}"))
            .unwrap_or_default();
        let unknown = self.unknown_unit(q);
        let (status, v) = get(
            ledger,
            format!(
                "/v1/reports/training-volume?known_at={known_at}&from={}&to={}{unit}",
                q.from, q.to
            ),
        )
        .await;
        if unknown {
            assert_eq!(status, 404, "{q}: training-volume: {v}");
        } else {
            assert_eq!(status, 200, "{q}: training-volume: {v}");
            assert_eq!(v["position"], json!(q.cut), "{q}: training-volume cut");
            assert_eq!(
                volume_of(&v),
                fold::training_volume(&self.facts, q.cut, q.unit.as_deref(), q.from, q.to),
                "{q}: training-volume (left: HTTP, right: fold)"
            );
        }

        let expected = fold::standards(&self.facts, q.cut, q.unit.as_deref(), q.as_of);
        let (status, s) = get(
            ledger,
            format!(
                "/v1/reports/standards?known_at={known_at}&as_of={}{unit}",
                q.as_of
            ),
        )
        .await;
        match (unknown, &expected) {
            (true, _) => assert_eq!(status, 404, "{q}: standards: {s}"),
            (false, None) => assert_eq!(status, 422, "{q}: standards: {s}"),
            (false, Some(expected)) => {
                assert_eq!(status, 200, "{q}: standards: {s}");
                assert_eq!(s["position"], json!(q.cut), "{q}: standards cut");
                assert_eq!(
                    &standards_of(&s),
                    expected,
                    "{q}: standards (left: HTTP, right: fold)"
                );
            }
        }

        let expected = fold::alignment(&self.facts, q.cut, q.unit.as_deref(), q.as_of);
        let (status, a) = get(
            ledger,
            format!(
                "/v1/reports/alignment?known_at={known_at}&as_of={}{unit}",
                q.as_of
            ),
        )
        .await;
        match (unknown, &expected) {
            (true, _) => assert_eq!(status, 404, "{q}: alignment: {a}"),
            (false, None) => assert_eq!(status, 422, "{q}: alignment: {a}"),
            (false, Some(expected)) => {
                assert_eq!(status, 200, "{q}: alignment: {a}");
                assert_eq!(a["position"], json!(q.cut), "{q}: alignment cut");
                assert_eq!(
                    &alignment_of(&a),
                    expected,
                    "{q}: alignment (left: HTTP, right: fold)"
                );
            }
        }
    }
}

/// A report over HTTP as the admin: status and JSON body.
async fn get(ledger: &Ledger, path: String) -> (u16, Value) {
    let (status, body) = ledger.get(&path, Some(&ledger.admin), false).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// One case: a random history from `seed`, then the questions.
async fn case(seed: u64) -> String {
    let ledger = spawn_app().await;
    let mut history = History {
        seed,
        ledger,
        rng: Rng(seed),
        model: Model::default(),
        answers: BTreeMap::new(),
    };
    history.run().await;
    let History {
        ledger,
        mut rng,
        answers,
        ..
    } = history;

    // The history ends with the policy settled: every fact has its position.
    let head = ledger.store.head().await.expect("head");
    let reached = Projector::new(ledger.store.clone())
        .catch_up()
        .await
        .expect("projector");
    let ledgered = read_back(&ledger).await;
    assert_eq!((reached, ledgered.head()), (head, head), "seed {seed:#x}");
    let models = ReadModels::new(ledger.store.pool().clone());

    for i in 0..AT_POSITION {
        // The latest cut first, for the whole country and then for a unit
        // (at the read models' checkpoint, reports read the derived tables'
        // current rows, ADR 17), then cuts anywhere in the history.
        let cut = if i < 2 {
            head
        } else {
            1 + rng.below(usize::try_from(head).expect("head")) as u64
        };
        let mut q = ledgered.question(&mut rng, seed, cut);
        if i == 0 {
            q.unit = None;
        }
        ledgered.on_read_models(&models, &q).await;
    }
    for _ in 0..KNOWN_AT {
        // An instant at a recorded_at, or just after it, or just before.
        let (_, at) = *rng.pick(&ledgered.recorded);
        let at = at + chrono::Duration::microseconds(rng.below(3) as i64 - 1);
        let cut = fold::cut_known_at(&ledgered.recorded, &at);
        let mut q = ledgered.question(&mut rng, seed, cut);
        q.known_at = Some(at.to_rfc3339_opts(SecondsFormat::Micros, true));
        ledgered.over_http(&ledger, &q).await;
    }

    // The live projector kept each person's standing and the places by day
    // as the facts came; a rebuild computes them once, after its load
    // (ADR 17): the same rows.
    let standing = rows_of(&ledger, "standing").await;
    let by_day = rows_of(&ledger, "enrolled_by_day").await;
    assert!(!standing.is_empty(), "seed {seed:#x}: nobody stands");
    let rebuilt = projector::rebuild(&ledger.store).await.expect("rebuild");
    assert_eq!(rebuilt, head, "seed {seed:#x}");
    assert_eq!(
        rows_of(&ledger, "standing").await,
        standing,
        "seed {seed:#x}"
    );
    assert_eq!(
        rows_of(&ledger, "enrolled_by_day").await,
        by_day,
        "seed {seed:#x}"
    );

    let accepted: u32 = answers.values().map(|(a, _)| a).sum();
    let refused: u32 = answers.values().map(|(_, r)| r).sum();
    // A history that the ledger mostly refuses would test little.
    assert!(
        accepted > 2 * refused,
        "seed {seed:#x}: {accepted} accepted, {refused} refused: {answers:?}"
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &ledgered.facts {
        *kinds.entry(f.fact.fact_type().as_str()).or_default() += 1;
    }
    format!("seed {seed:#x}: {head} facts, {accepted} commands accepted, {refused} refused; {kinds:?}; {answers:?}")
}

/// The rows of a live read-model table, as text, in order.
async fn rows_of(ledger: &Ledger, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT t::text FROM rm.{table} t ORDER BY 1"))
        .fetch_all(ledger.store.pool())
        .await
        .expect("read-model rows")
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("TLEDGER_MODEL_SEED") {
        let seed = seed.trim();
        let parsed = match seed.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => seed.parse(),
        };
        return vec![parsed.expect("TLEDGER_MODEL_SEED is a number")];
    }
    let cases = std::env::var("TLEDGER_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    (0..cases).map(|i| FIRST_SEED + i).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_equals_a_naive_fold_over_the_facts_on_random_histories() {
    let seeds = seeds();
    let started = std::time::Instant::now();
    for chunk in seeds.chunks(PARALLEL) {
        // Side by side on this task: a case mostly waits for PostgreSQL.
        for summary in futures::future::join_all(chunk.iter().map(|seed| case(*seed))).await {
            eprintln!("{summary}");
        }
    }
    eprintln!("{} cases in {:?}", seeds.len(), started.elapsed());
}
