//! The shipped reference data, reference files that do not parse, and the
//! choice of the publication in force.

use tledger_events::reference_data::{
    self, in_force, parse_file, PositionTaxonomy, Published, ReferenceContent, Ruleset,
    SpecialtyMap,
};
use tledger_events::{
    Date, Fact, FactType, Level, PositionCode, ReferenceKind, SpecialtyCode, StaffCategory, Track,
};

fn date(s: &str) -> Date {
    s.parse().expect("a valid date")
}

fn position(s: &str) -> PositionCode {
    PositionCode::parse(s).expect("a position code")
}

fn level(s: &str) -> Level {
    Level::parse(s).expect("a level code")
}

fn shipped(name: &str) -> (reference_data::ReferenceContent, Date) {
    let all = reference_data::shipped().expect("the shipped reference files parse");
    let (published, content) = all
        .into_iter()
        .find(|(p, _)| p.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} is shipped"));
    (content, published.effective_date)
}

fn taxonomy() -> (PositionTaxonomy, Date) {
    match shipped("nd92-2009") {
        (ReferenceContent::PositionTaxonomy(t), d) => (t, d),
        (other, _) => panic!("nd92-2009 is a position taxonomy, not {other}"),
    }
}

fn ruleset() -> (Ruleset, Date) {
    match shipped("qd04-2004") {
        (ReferenceContent::Ruleset(r), d) => (r, d),
        (other, _) => panic!("qd04-2004 is a ruleset, not {other}"),
    }
}

fn specialties() -> (SpecialtyMap, Date) {
    match shipped("default-specialties") {
        (ReferenceContent::SpecialtyMap(m), d) => (m, d),
        (other, _) => panic!("default-specialties is a specialty map, not {other}"),
    }
}

#[test]
fn the_shipped_files_are_the_three_defaults_and_parse_as_facts() {
    let all = reference_data::shipped().expect("the shipped reference files parse");
    let summary: Vec<(&str, ReferenceKind, String)> = all
        .iter()
        .map(|(p, _)| (p.name.as_str(), p.kind, p.effective_date.to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "nd92-2009",
                ReferenceKind::PositionTaxonomy,
                "1990-01-01".to_owned()
            ),
            ("qd04-2004", ReferenceKind::Ruleset, "2004-01-01".to_owned()),
            (
                "default-specialties",
                ReferenceKind::SpecialtyMap,
                "1990-01-01".to_owned()
            ),
        ]
    );
    for ((file, text), (published, content)) in reference_data::SHIPPED.iter().zip(&all) {
        assert_eq!(content.kind(), published.kind, "{file}");
        assert_eq!(format!("{}.json", published.name), *file);
        // Recorded by `tledger migrate` as a fact: the strict parser agrees.
        let fact = Fact::from_slice(FactType::ReferencePublished, text.as_bytes())
            .unwrap_or_else(|e| panic!("{file} is a valid reference.published.v1: {e}"));
        assert_eq!(fact, Fact::ReferencePublished(published.clone()));
        assert_eq!(
            ReferenceContent::parse(published.kind, &published.content).as_ref(),
            Ok(content)
        );
    }
}

#[test]
fn nd92_2009_has_19_positions_and_the_first_six_cadre_positions_are_the_key_leaders() {
    let (taxonomy, effective) = taxonomy();
    assert_eq!(effective, date("1990-01-01"));
    let positions = taxonomy.positions();
    assert_eq!(positions.len(), 19);
    let codes_of = |category: StaffCategory| -> Vec<&str> {
        positions
            .iter()
            .filter(|p| p.staff_category == category)
            .map(|p| p.code.as_str())
            .collect()
    };
    let cadres = codes_of(StaffCategory::Cadre);
    assert_eq!(
        cadres,
        [
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
        ]
    );
    assert_eq!(
        codes_of(StaffCategory::CivilServant),
        [
            "police_chief",
            "military_commander",
            "office_statistics",
            "land_construction",
            "finance_accounting",
            "justice_civil_status",
            "culture_social",
        ]
    );
    assert_eq!(codes_of(StaffCategory::PartTime), ["part_time"]);
    let key_leaders: Vec<&str> = positions
        .iter()
        .filter(|p| p.key_leader)
        .map(|p| p.code.as_str())
        .collect();
    assert_eq!(key_leaders, cadres[..6]);

    let chair = taxonomy
        .check(&position("committee_chair"), StaffCategory::Cadre)
        .expect("committee_chair is a cadre position");
    assert_eq!(
        (chair.title_vi.as_str(), chair.key_leader),
        ("Chủ tịch Ủy ban nhân dân", true)
    );
    assert_eq!(
        taxonomy
            .check(&position("police_chief"), StaffCategory::Cadre)
            .map(|p| p.code.clone()),
        Err(reference_data::PositionError::CategoryMismatch {
            position: position("police_chief"),
            expected: StaffCategory::CivilServant,
            given: StaffCategory::Cadre,
        })
    );
    assert_eq!(
        taxonomy
            .check(&position("village_head"), StaffCategory::PartTime)
            .map(|p| p.code.clone()),
        Err(reference_data::PositionError::Unknown(position(
            "village_head"
        )))
    );
}

#[test]
fn qd04_2004_sets_the_standards_of_each_group() {
    let (ruleset, effective) = ruleset();
    assert_eq!(effective, date("2004-01-01"));
    let minimums = |category: StaffCategory,
                    key_leader: bool,
                    post: &str|
     -> Vec<(Track, Option<Level>)> {
        let requirement = ruleset
            .requirement_for(category, key_leader)
            .unwrap_or_else(|| panic!("a requirement for {category} (key leader: {key_leader})"));
        [
            Track::GeneralEducation,
            Track::Professional,
            Track::PoliticalTheory,
        ]
        .into_iter()
        .map(|t| (t, requirement.minimum(t, &position(post)).cloned()))
        .collect()
    };
    let expect = |g: &str, p: &str, pt: Option<&str>| {
        vec![
            (Track::GeneralEducation, Some(level(g))),
            (Track::Professional, Some(level(p))),
            (Track::PoliticalTheory, pt.map(level)),
        ]
    };
    assert_eq!(
        minimums(StaffCategory::Cadre, true, "committee_chair"),
        expect("upper_secondary", "intermediate", Some("intermediate"))
    );
    assert_eq!(
        minimums(StaffCategory::Cadre, false, "front_chair"),
        expect("upper_secondary", "elementary", Some("elementary"))
    );
    assert_eq!(
        minimums(StaffCategory::CivilServant, false, "land_construction"),
        expect("upper_secondary", "intermediate", Some("elementary"))
    );
    for exempt in ["police_chief", "military_commander"] {
        assert_eq!(
            minimums(StaffCategory::CivilServant, false, exempt),
            expect("upper_secondary", "intermediate", None),
            "{exempt} is exempt from the political-theory standard"
        );
    }
    assert_eq!(
        ruleset
            .requirement_for(StaffCategory::PartTime, false)
            .map(|r| r.group.as_str()),
        None
    );
    let groups: Vec<&str> = ruleset
        .requirements
        .iter()
        .map(|r| r.group.as_str())
        .collect();
    assert_eq!(groups, ["key_leaders", "other_cadres", "civil_servants"]);
}

#[test]
fn default_specialties_map_each_civil_servant_post() {
    let (map, effective) = specialties();
    assert_eq!(effective, date("1990-01-01"));
    let accepts = |post: &str, specialty: &str| {
        map.accepts(
            &position(post),
            &SpecialtyCode::parse(specialty).expect("a specialty code"),
        )
    };
    for s in ["land_management", "construction", "surveying"] {
        assert_eq!(accepts("land_construction", s), Some(true), "{s}");
    }
    assert_eq!(accepts("land_construction", "law"), Some(false));
    assert_eq!(accepts("justice_civil_status", "law"), Some(true));
    assert_eq!(accepts("police_chief", "law"), Some(true));
    assert_eq!(accepts("party_secretary", "law"), None);
    let posts: Vec<&str> = map.posts.keys().map(PositionCode::as_str).collect();
    assert_eq!(
        posts,
        [
            "culture_social",
            "finance_accounting",
            "justice_civil_status",
            "land_construction",
            "military_commander",
            "office_statistics",
            "police_chief",
        ]
    );
}

const HEAD: &str = "{\n  \"kind\": \"position_taxonomy\",\n  \"name\": \"test-taxonomy\",\n  \"effective_date\": \"2026-01-01\",\n  \"content\": {\n    \"positions\": [\n";

fn entry(code: &str, category: &str) -> String {
    format!(
        "      {{ \"code\": \"{code}\", \"staff_category\": \"{category}\", \"title_vi\": \"Chức danh\", \"title_en\": \"Post\" }}"
    )
}

/// A taxonomy file whose positions (one per line, from line 7) are `entries`.
fn taxonomy_file(entries: &[String]) -> String {
    format!("{HEAD}{}\n    ]\n  }}\n}}\n", entries.join(",\n"))
}

#[test]
fn a_hand_written_taxonomy_file_parses() {
    let text = taxonomy_file(&[
        entry("commune_chair", "cadre"),
        entry("clerk", "civil_servant"),
    ]);
    let (published, content) = parse_file("test-taxonomy.json", &text).expect("a valid file");
    assert_eq!(
        (published.name.as_str(), published.effective_date),
        ("test-taxonomy", date("2026-01-01"))
    );
    let ReferenceContent::PositionTaxonomy(taxonomy) = content else {
        panic!("a position taxonomy, not {content}");
    };
    let codes: Vec<&str> = taxonomy
        .positions()
        .iter()
        .map(|p| p.code.as_str())
        .collect();
    assert_eq!(codes, ["commune_chair", "clerk"]);
}

#[test]
fn it_should_not_accept_a_file_with_a_syntax_error_and_names_the_file_and_line() {
    let text = "{\n  \"kind\": \"position_taxonomy\",\n  \"name\": \"test-taxonomy\",,\n  \"effective_date\": \"2026-01-01\"\n}\n";
    let err = parse_file("broken.json", text).expect_err("a syntax error");
    assert_eq!((err.file.as_str(), err.line), ("broken.json", 3));
    assert!(err.to_string().starts_with("broken.json:3:"), "{err}");
}

#[test]
fn it_should_not_accept_an_unknown_staff_category_inside_the_content_and_names_its_line() {
    let text = taxonomy_file(&[
        entry("commune_chair", "cadre"),
        entry("clerk", "civil_servant"),
        entry("village_head", "volunteer"),
        entry("guard", "part_time"),
    ]);
    let err = parse_file("test-taxonomy.json", &text).expect_err("an unknown staff category");
    assert_eq!((err.file.as_str(), err.line), ("test-taxonomy.json", 9));
    assert!(
        err.message
            .contains("unknown staff category code \"volunteer\""),
        "{err}"
    );
}

#[test]
fn it_should_not_accept_a_position_listed_twice_and_names_the_line_of_the_second() {
    let text = taxonomy_file(&[
        entry("commune_chair", "cadre"),
        entry("clerk", "civil_servant"),
        entry("commune_chair", "cadre"),
        entry("guard", "part_time"),
    ]);
    let err = parse_file("test-taxonomy.json", &text).expect_err("a duplicated position");
    assert_eq!((err.file.as_str(), err.line), ("test-taxonomy.json", 9));
    assert!(
        err.message
            .contains("position commune_chair is listed twice"),
        "{err}"
    );
}

#[test]
fn it_should_not_accept_a_ruleset_level_of_another_track_and_names_the_requirement_line() {
    let text = "{\n  \"kind\": \"ruleset\",\n  \"name\": \"r\",\n  \"effective_date\": \"2026-01-01\",\n  \"content\": {\n    \"requirements\": [\n      { \"group\": \"a\", \"staff_category\": \"cadre\", \"minimums\": { \"professional\": \"intermediate\" } },\n      { \"group\": \"b\", \"staff_category\": \"cadre\", \"minimums\": { \"professional\": \"advanced\" } },\n      { \"group\": \"c\", \"staff_category\": \"civil_servant\", \"minimums\": {} }\n    ]\n  }\n}\n";
    let err = parse_file("r.json", text).expect_err("a level of another track");
    assert_eq!((err.file.as_str(), err.line), ("r.json", 8));
    assert!(
        err.message
            .contains("group b: unknown professional level \"advanced\""),
        "{err}"
    );
}

fn publication(name: &str, effective: &str, position: u64) -> Published<&'static str> {
    Published {
        name: tledger_events::ReferenceName::parse(name).expect("a reference name"),
        effective_date: date(effective),
        position,
        content: "",
    }
}

#[test]
fn in_force_picks_the_latest_effective_date_on_or_before_the_date() {
    let published = [
        publication("nd33-2023", "2023-08-01", 50),
        publication("qd04-2004", "2004-01-01", 3),
        publication("reform-2025", "2025-07-01", 40),
    ];
    let name_on = |d: &str| in_force(&published, date(d)).map(|p| p.name.as_str());
    assert_eq!(name_on("2003-12-31"), None);
    assert_eq!(name_on("2004-01-01"), Some("qd04-2004"));
    assert_eq!(name_on("2011-12-31"), Some("qd04-2004"));
    assert_eq!(name_on("2023-07-31"), Some("qd04-2004"));
    assert_eq!(name_on("2023-08-01"), Some("nd33-2023"));
    // Published earlier in the ledger but in force later: the date decides.
    assert_eq!(name_on("2025-07-01"), Some("reform-2025"));
    assert_eq!(name_on("2099-01-01"), Some("reform-2025"));
    assert_eq!(
        in_force::<&str>(&[], date("2011-12-31")).map(|p| p.position),
        None
    );
}

#[test]
fn in_force_breaks_a_tie_of_effective_dates_by_the_higher_position() {
    let published = [
        publication("second", "2004-01-01", 9),
        publication("first", "2004-01-01", 2),
        publication("third", "2004-01-01", 5),
    ];
    assert_eq!(
        in_force(&published, date("2004-01-01")).map(|p| p.name.as_str()),
        Some("second")
    );
    assert_eq!(
        in_force(&published, date("2003-12-31")).map(|p| p.position),
        None
    );
}

#[test]
fn track_ranks_order_the_shipped_minimums() {
    // A reader of the shipped ruleset compares levels by rank.
    let (ruleset, _) = ruleset();
    let key = ruleset
        .requirement_for(StaffCategory::Cadre, true)
        .expect("key leaders");
    let other = ruleset
        .requirement_for(StaffCategory::Cadre, false)
        .expect("other cadres");
    let rank = |r: &tledger_events::reference_data::Requirement, t: Track| {
        r.minimums.get(&t).and_then(|l| t.rank(l))
    };
    assert_eq!(rank(key, Track::Professional), Some(2));
    assert_eq!(rank(other, Track::Professional), Some(1));
    assert_eq!(rank(key, Track::PoliticalTheory), Some(2));
}
