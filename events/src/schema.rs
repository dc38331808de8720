//! JSON Schemas of the facts' data and of the envelope, generated from the
//! types. The checked-in copies under `events/schemas/` are what integrating
//! bodies read; a test fails when they drift from the types.

use crate::envelope::CloudEvent;
use crate::facts::Fact;

/// Every schema as (file name, pretty JSON with a trailing newline).
pub fn all() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Fact::schemas()
        .into_iter()
        .map(|(fact_type, mut schema)| {
            schema.insert("$id".into(), format!("{}.json", fact_type.as_str()).into());
            schema.insert("title".into(), fact_type.as_str().into());
            (format!("{}.json", fact_type.as_str()), render(&schema))
        })
        .collect();
    let mut envelope = schemars::schema_for!(CloudEvent);
    envelope.insert("$id".into(), "cloudevent.json".into());
    files.push(("cloudevent.json".into(), render(&envelope)));
    files
}

fn render(schema: &schemars::Schema) -> String {
    // A schema is a JSON object with string keys: rendering cannot fail.
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}
