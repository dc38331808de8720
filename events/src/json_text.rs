//! The JSON text of a command body or a published message, read strictly.
//!
//! serde_json reads `{"a":1,"a":2}` as `{"a":2}`; another parser may keep
//! the first member, so two readers of one message would read two facts.
//! And PostgreSQL holds no U+0000 in `text` or `jsonb`: a string with one
//! would be refused by the store after the fact was decided, as an outage.
//! Both are refused here, while the text is read, as `malformed` (400:
//! the text is not JSON the ledger can read), with the JSON Pointer of the
//! member: a duplicated member name at any depth, and U+0000 in any string
//! or member name. Lone surrogate escapes (`"\ud800"`) serde_json refuses
//! itself, as text that is not JSON.

use std::cell::RefCell;
use std::fmt::Write as _;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{escape_token, FactError};

/// Reads `text` as one JSON value, refusing duplicate member names and
/// U+0000. `what` names the text in the message of a syntax error ("body",
/// "message"), whose pointer is `""` (serde_json's message says where).
pub fn parse(text: &[u8], what: &str) -> Result<Value, FactError> {
    let reading = Reading::default();
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let read = Node(&reading)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    read.map_err(|e| {
        reading
            .fault
            .take()
            .unwrap_or_else(|| FactError::malformed("", format!("the {what} is not JSON: {e}")))
    })
}

/// What a read has got to: the pointer of the member being read, and the
/// first refusal (serde's error type carries no pointer of ours).
#[derive(Default)]
struct Reading {
    pointer: RefCell<String>,
    fault: RefCell<Option<FactError>>,
}

impl Reading {
    fn refuse<E: serde::de::Error>(&self, pointer: String, message: &str) -> E {
        let error = E::custom(message);
        *self.fault.borrow_mut() = Some(FactError::malformed(pointer, message));
        error
    }

    fn here(&self) -> String {
        self.pointer.borrow().clone()
    }
}

/// One value of the text, read as serde_json's `Value` reads it.
struct Node<'r>(&'r Reading);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

const NUL_IN_STRING: &str =
    "the string holds U+0000 (NUL), which the ledger cannot store; leave it out";
const NUL_IN_NAME: &str =
    "a member name holds U+0000 (NUL), which the ledger cannot store; leave it out";

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        // As serde_json's `Value`: what is not finite is null.
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        self.visit_string(s.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Value, E> {
        if s.contains('\0') {
            return Err(self.0.refuse(self.0.here(), NUL_IN_STRING));
        }
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let length = self.0.pointer.borrow().len();
            let _ = write!(self.0.pointer.borrow_mut(), "/{}", items.len());
            let Some(item) = seq.next_element_seed(Node(self.0))? else {
                self.0.pointer.borrow_mut().truncate(length);
                break;
            };
            self.0.pointer.borrow_mut().truncate(length);
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if name.contains('\0') {
                return Err(self.0.refuse(self.0.here(), NUL_IN_NAME));
            }
            let token = escape_token(&name);
            if members.contains_key(&name) {
                let pointer = format!("{}/{token}", self.0.here());
                let message = format!(
                    "the member {name:?} appears more than once; another reader could take either value"
                );
                *self.0.fault.borrow_mut() = Some(FactError::malformed(pointer, &message));
                return Err(A::Error::custom(message));
            }
            let length = self.0.pointer.borrow().len();
            let _ = write!(self.0.pointer.borrow_mut(), "/{token}");
            let value = map.next_value_seed(Node(self.0))?;
            self.0.pointer.borrow_mut().truncate(length);
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FactErrorKind;

    fn refusal(text: &str) -> FactError {
        parse(text.as_bytes(), "body").expect_err("refused")
    }

    #[test]
    fn reads_what_serde_json_reads_when_nothing_is_refused() {
        let text = r#"{"b":[1,-2,3.5,null,true,{"c":"ộ\n"}],"a":{"x~/y":18446744073709551615}}"#;
        let strict = parse(text.as_bytes(), "body").expect("reads");
        let plain: Value = serde_json::from_str(text).expect("json");
        assert_eq!(strict, plain);
    }

    #[test]
    fn a_duplicate_member_is_malformed_at_its_pointer_at_any_depth() {
        let e = refusal(r#"{"official_id":"a","official_id":"b"}"#);
        assert_eq!(
            (e.kind, e.pointer.as_str()),
            (FactErrorKind::Malformed, "/official_id")
        );
        let e = refusal(r#"{"a":[{"x":1},{"y":{"k~/":1,"k~/":2}}]}"#);
        assert_eq!(e.pointer, "/a/1/y/k~0~1");
        // The same name in two objects is no duplicate.
        assert!(parse(br#"{"a":{"x":1},"b":{"x":1}}"#, "body").is_ok());
    }

    #[test]
    fn nul_in_a_string_or_a_name_is_malformed_at_its_pointer() {
        let e = refusal(r#"{"a":{"b":["ok","x\u0000y"]}}"#);
        assert_eq!(
            (e.kind, e.pointer.as_str()),
            (FactErrorKind::Malformed, "/a/b/1")
        );
        assert!(!e.message.contains('\0'));
        let e = refusal(r#"{"a":{"b\u0000":1}}"#);
        assert_eq!(e.pointer, "/a");
        assert!(!e.message.contains('\0') && !e.pointer.contains('\0'));
    }

    #[test]
    fn text_that_is_not_json_is_malformed_at_the_whole_document() {
        for text in [
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\udc00x"}"#,
            "{\"a\": ",
            "{} x",
        ] {
            let e = refusal(text);
            assert_eq!(
                (e.kind, e.pointer.as_str()),
                (FactErrorKind::Malformed, ""),
                "{text}"
            );
            assert!(
                e.message.starts_with("the body is not JSON"),
                "{}",
                e.message
            );
        }
    }
}
