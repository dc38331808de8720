//! The JSON Schemas integrating bodies read are the ones the types generate.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use serde_json::Value;
use tledger_events::{schema, FactType};

const REGENERATE: &str =
    "regenerate them with: TLEDGER_WRITE_SCHEMAS=1 cargo test -p tledger-events --test catalogue schemas_match";

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn checked_in_json_files() -> BTreeSet<String> {
    fs::read_dir(schema_dir())
        .expect("events/schemas/ exists")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[test]
fn schemas_match_the_checked_in_files() {
    let dir = schema_dir();
    let generated = schema::all();
    let generated_names: BTreeSet<String> =
        generated.iter().map(|(name, _)| name.clone()).collect();
    let stale: Vec<String> = checked_in_json_files()
        .difference(&generated_names)
        .cloned()
        .collect();

    if std::env::var("TLEDGER_WRITE_SCHEMAS").as_deref() == Ok("1") {
        for (name, text) in &generated {
            fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        }
        for name in &stale {
            fs::remove_file(dir.join(name)).unwrap_or_else(|e| panic!("cannot remove {name}: {e}"));
        }
        eprintln!(
            "wrote {} schemas to {}, removed {:?}",
            generated.len(),
            dir.display(),
            stale
        );
        return;
    }

    let drifted: Vec<&str> = generated
        .iter()
        .filter(|(name, text)| {
            fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        drifted.is_empty() && stale.is_empty(),
        "the checked-in schemas under {} differ from the types.\n  drifted or missing: {drifted:?}\n  no longer generated: {stale:?}\n{REGENERATE}",
        dir.display()
    );
}

#[test]
fn there_is_one_schema_per_fact_type_and_one_for_the_envelope() {
    let names: Vec<String> = schema::all().into_iter().map(|(name, _)| name).collect();
    let mut expected: Vec<String> = FactType::ALL.iter().map(|t| format!("{t}.json")).collect();
    expected.push("cloudevent.json".into());
    assert_eq!(names, expected);
}

#[test]
fn every_schema_names_itself_and_refuses_unknown_fields() {
    for (name, text) in schema::all() {
        assert!(text.ends_with("}\n"), "{name} ends with a newline");
        let schema: Value = serde_json::from_str(&text).expect("a schema is JSON");
        assert_eq!(schema["$id"], Value::String(name.clone()));
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(
            schema["additionalProperties"], false,
            "{name}: unknown fields are malformed"
        );
        let title = name.trim_end_matches(".json");
        if title != "cloudevent" {
            assert_eq!(schema["title"], title);
            assert_eq!(
                schema["required"].as_array().and_then(|r| r.last()),
                Some(&Value::from("effective_date")),
                "{name}"
            );
        }
    }
}
