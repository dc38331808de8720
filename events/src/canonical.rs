//! RFC 8785 canonical JSON of a chain record, written directly.
//!
//! Why: recomputing the chain is most of what `tledger verify` and an
//! offline replay do, and the general canonicaliser
//! (`serde_json_canonicalizer`) buffers every member of every object,
//! re-parses each key to sort it and writes through boxed writers, several
//! times slower than the hashing itself. The facts we hash are plain JSON:
//! objects with ASCII keys, strings, small integers. This writer produces
//! the same bytes for them straight from the parsed values, and hands
//! anything it does not handle itself (a number that is not an integer of
//! at most 2^53, an object whose keys could sort differently in UTF-16
//! than in UTF-8) to the general canonicaliser, so its output is always the
//! RFC's. The tests compare the two on generated values.
//!
//! RFC 8785 in short: no whitespace; members sorted by their keys' UTF-16
//! code units; strings with `"`, `\` and the controls below U+0020 escaped
//! (`\b \t \n \f \r`, the rest `\u00xx` in lowercase hex) and everything
//! else literal; numbers as ECMAScript writes a double (an integer of at
//! most 2^53 in magnitude is its decimal digits).

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::chain::{CanonicalError, CanonicalMember, ChainRecord};

/// The largest magnitude below which every integer is a double exactly.
const EXACT_INTEGER: u64 = 1 << 53;

/// The canonical JSON of `record`: `{"data","effective_date","event_id",
/// "metadata","position","recorded_at","stream","type","version"}`, in
/// that (sorted) order.
pub fn record_bytes<J: CanonicalMember>(
    record: &ChainRecord<'_, J>,
) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(1024);
    write_record(&mut out, record)?;
    Ok(out)
}

/// [`record_bytes`] appended to `out` (left as it was on an error), so
/// that many records can share one buffer.
pub fn write_record<J: CanonicalMember>(
    out: &mut Vec<u8>,
    record: &ChainRecord<'_, J>,
) -> Result<(), CanonicalError> {
    let start = out.len();
    let written = write_members(out, record);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

fn write_members<J: CanonicalMember>(
    out: &mut Vec<u8>,
    record: &ChainRecord<'_, J>,
) -> Result<(), CanonicalError> {
    out.extend_from_slice(b"{\"data\":");
    record.data.write_canonical(out)?;
    out.extend_from_slice(b",\"effective_date\":");
    date(out, record.effective_date);
    out.extend_from_slice(b",\"event_id\":");
    let mut uuid = uuid::Uuid::encode_buffer();
    string(out, record.event_id.hyphenated().encode_lower(&mut uuid));
    out.extend_from_slice(b",\"metadata\":");
    record.metadata.write_canonical(out)?;
    out.extend_from_slice(b",\"position\":");
    unsigned(out, record.position)?;
    out.extend_from_slice(b",\"recorded_at\":");
    string(out, &record.recorded_at);
    out.extend_from_slice(b",\"stream\":");
    string(out, record.stream);
    out.extend_from_slice(b",\"type\":");
    string(out, record.event_type);
    out.extend_from_slice(b",\"version\":");
    unsigned(out, record.version)?;
    out.push(b'}');
    Ok(())
}

/// The canonical JSON of any value, as [`record_bytes`] writes members.
#[cfg(test)]
fn value_bytes(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    value(&mut out, v)?;
    Ok(out)
}

pub(crate) fn value(out: &mut Vec<u8>, v: &Value) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => number(out, n)?,
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => object(out, members)?,
    }
    Ok(())
}

fn object(out: &mut Vec<u8>, members: &Map<String, Value>) -> Result<(), CanonicalError> {
    // serde_json's map (no `preserve_order`) iterates in UTF-8 byte order,
    // which is UTF-16 order unless a key holds a character from U+E000 up
    // (UTF-8 lead byte 0xEE or more), where surrogate pairs sort first.
    if members.keys().any(|k| k.bytes().any(|b| b >= 0xEE)) {
        return general(out, &Value::Object(members.clone()));
    }
    out.push(b'{');
    for (i, (key, member)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, key);
        out.push(b':');
        value(out, member)?;
    }
    out.push(b'}');
    Ok(())
}

/// The canonical JSON of the JSON text `json`: the bytes [`value`] writes
/// for `serde_json::from_str::<Value>(json)`, without building the `Value`.
/// The text is parsed by the same deserializer into a tree that borrows its
/// strings, so the numbers and strings are the ones a `Value` would hold;
/// only the members' order is left to sort here.
pub(crate) fn text(out: &mut Vec<u8>, json: &str) -> Result<(), CanonicalError> {
    let mut tree: Json<'_> = serde_json::from_str(json)
        .map_err(|e| CanonicalError(format!("the stored JSON does not parse: {e}")))?;
    tree_value(out, &mut tree)
}

/// A parsed JSON value whose strings borrow from the text when they can.
#[derive(Debug)]
enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in the text's order, duplicates included.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// The `Value` serde_json builds from the same text (a later duplicate
    /// key replaces an earlier one, as `Map::insert` does).
    fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n),
            Json::String(s) => Value::String(s.into_owned()),
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_value()))
                    .collect(),
            ),
        }
    }
}

fn tree_value(out: &mut Vec<u8>, v: &mut Json<'_>) -> Result<(), CanonicalError> {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(n) => number(out, n)?,
        Json::String(s) => string(out, s),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter_mut().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                tree_value(out, item)?;
            }
            out.push(b']');
        }
        Json::Object(members) => {
            // As in `object`: byte order is UTF-16 order below U+E000.
            if members.iter().any(|(k, _)| k.bytes().any(|b| b >= 0xEE)) {
                let whole = std::mem::replace(v, Json::Null);
                return general(out, &whole.into_value());
            }
            // Stable, so of equal keys the last in the text comes last.
            members.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            let mut first = true;
            for i in 0..members.len() {
                if members
                    .get(i + 1)
                    .is_some_and(|(next, _)| *next == members[i].0)
                {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                let (key, member) = &mut members[i];
                string(out, key);
                out.push(b':');
                tree_value(out, member)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] from the same calls serde_json's `Value` takes.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // serde_json's `Value` turns what is not finite into null.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn number(out: &mut Vec<u8>, n: &Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        return unsigned(out, u);
    }
    match n.as_i64() {
        Some(i) if i.unsigned_abs() <= EXACT_INTEGER => {
            out.extend_from_slice(i.to_string().as_bytes());
            Ok(())
        }
        _ => general(out, &Value::Number(n.clone())),
    }
}

fn unsigned(out: &mut Vec<u8>, u: u64) -> Result<(), CanonicalError> {
    if u <= EXACT_INTEGER {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = u;
        loop {
            at -= 1;
            // `rest % 10` is below 10.
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
        Ok(())
    } else {
        general(out, &Value::from(u))
    }
}

/// What this writer leaves to the general canonicaliser.
fn general(out: &mut Vec<u8>, v: &Value) -> Result<(), CanonicalError> {
    out.extend_from_slice(&crate::chain::canonical_json(v)?);
    Ok(())
}

/// A date as its `Display` writes it (`YYYY-MM-DD`), without going through
/// a format string for the years that have four digits.
fn date(out: &mut Vec<u8>, d: crate::Date) {
    use chrono::Datelike as _;
    let naive = d.naive();
    let year = naive.year();
    if !(0..=9999).contains(&year) {
        string(out, &d.to_string());
        return;
    }
    let (month, day) = (naive.month(), naive.day());
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let year = year.unsigned_abs();
    out.extend_from_slice(&[
        b'"',
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
        b'"',
    ]);
}

fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0A => b"\\n",
            0x0C => b"\\f",
            0x0D => b"\\r",
            0x00..=0x1F => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xF) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::chain::{canonical_json, format_instant};

    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{0,8}",
            // Controls, quotes, backslashes, Vietnamese, U+E000 and up,
            // and characters outside the BMP.
            proptest::collection::vec(
                prop_oneof![
                    Just('\u{0}'),
                    Just('\u{8}'),
                    Just('\u{1f}'),
                    Just('"'),
                    Just('\\'),
                    Just('/'),
                    Just('\u{7f}'),
                    Just('ộ'),
                    Just('\u{e000}'),
                    Just('\u{ffff}'),
                    Just('😀'),
                    Just('\u{10000}'),
                    any::<char>(),
                ],
                0..6
            )
            .prop_map(|cs| cs.into_iter().collect()),
        ]
    }

    fn any_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..=(1 << 53) + 2).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            Just(json!(1e21)),
            Just(json!(0.1)),
            Just(json!(-0.0)),
            Just(json!(2500000)),
        ]
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any_number(),
            any_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(any_string(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_are_written_as_the_general_canonicaliser_writes_them(v in any_value()) {
            prop_assert_eq!(value_bytes(&v).ok(), canonical_json(&v).ok());
        }

        #[test]
        fn json_text_is_written_as_its_parsed_value_is(v in any_value()) {
            // The text as serde_json writes it, and as PostgreSQL's jsonb
            // gives it back (members by length, then bytes; a space after
            // each colon and comma).
            let compact = serde_json::to_string(&v).expect("json");
            prop_assert_eq!(text_bytes(&compact).ok(), value_bytes(&v).ok());
            let spaced = jsonb_style(&v);
            prop_assert_eq!(text_bytes(&spaced).ok(), value_bytes(&v).ok());
        }

        #[test]
        fn records_are_written_as_the_general_canonicaliser_writes_them(
            data in any_value(),
            metadata in any_value(),
            position in prop_oneof![1u64..1_000_000_000, any::<u64>()],
            version in any::<u64>(),
            stream in any_string(),
            event_type in any_string(),
            id in any::<u128>(),
            year in prop_oneof![-300i32..0, 0i32..10_000, 10_000i32..12_000],
            ordinal in 1u32..=365,
        ) {
            let effective_date = chrono::NaiveDate::from_yo_opt(year, ordinal)
                .unwrap_or(chrono::NaiveDate::MIN);
            let record = ChainRecord {
                position,
                event_id: uuid::Uuid::from_u128(id),
                stream: &stream,
                version,
                event_type: &event_type,
                effective_date: effective_date.into(),
                recorded_at: format_instant(chrono::DateTime::UNIX_EPOCH),
                data: &data,
                metadata: &metadata,
            };
            prop_assert_eq!(record_bytes(&record).ok(), canonical_json(&record).ok());
            let (data_text, metadata_text) = (jsonb_style(&data), jsonb_style(&metadata));
            let from_text = ChainRecord {
                position: record.position,
                event_id: record.event_id,
                stream: &stream,
                version: record.version,
                event_type: &event_type,
                effective_date: record.effective_date,
                recorded_at: record.recorded_at.clone(),
                data: crate::chain::JsonText(&data_text),
                metadata: crate::chain::JsonText(&metadata_text),
            };
            prop_assert_eq!(record_bytes(&from_text).ok(), canonical_json(&record).ok());
        }
    }

    fn text_bytes(json: &str) -> Result<Vec<u8>, CanonicalError> {
        let mut out = Vec::new();
        text(&mut out, json)?;
        Ok(out)
    }

    /// `v` as PostgreSQL writes a jsonb value: object members shorter key
    /// first, then by bytes; `", "` and `": "` between tokens.
    fn jsonb_style(v: &Value) -> String {
        match v {
            Value::Array(items) => format!(
                "[{}]",
                items.iter().map(jsonb_style).collect::<Vec<_>>().join(", ")
            ),
            Value::Object(members) => {
                let mut sorted: Vec<_> = members.iter().collect();
                sorted.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then(a.cmp(b)));
                let written: Vec<String> = sorted
                    .into_iter()
                    .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), jsonb_style(v)))
                    .collect();
                format!("{{{}}}", written.join(", "))
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn json_text_keeps_the_last_of_duplicate_keys_and_escapes_as_the_rfc_does() {
        let bytes =
            text_bytes(r#"{"b": 1, "a": "x\u0001\/y", "b": 2, "c": 1.50}"#).expect("canonical");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"a":"x\u0001/y","b":2,"c":1.5}"#
        );
        assert!(text_bytes("{\"a\": }").is_err());
        assert!(text_bytes("{} trailing").is_err());
    }

    #[test]
    fn keys_from_u_e000_up_sort_after_characters_outside_the_bmp() {
        // UTF-8 puts U+E000 before U+10000; UTF-16 puts the surrogate pair
        // (0xD800 ...) first.
        let v = json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3});
        let bytes = value_bytes(&v).expect("canonical");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "{\"a\":3,\"\u{10000}\":2,\"\u{e000}\":1}"
        );
    }
}
