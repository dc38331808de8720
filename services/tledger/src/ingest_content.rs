//! What a published message may hold for the ledger to keep it, and which
//! failures of the store a message's content caused (CONTRACT.md
//! "Publishing facts": every other violation is `rejected` at once).
//!
//! PostgreSQL's `text` and `jsonb` cannot hold U+0000: a message with a NUL
//! in any string, member names included, could be neither recorded nor
//! answered, and would come again for ever. It is refused here, before the
//! store is asked, naming the string by JSON Pointer. Lone surrogate escapes
//! (`"\ud800"`), nesting deeper than the JSON reader's limit and numbers
//! outside a double's range never get this far: the message is not JSON.
//!
//! Whatever PostgreSQL still refuses because of a value (SQLSTATE class 22,
//! data exception, and class 54, a program limit such as an index row too
//! large) is a rejection too. Every other store failure (no connection, the
//! server shutting down, a serialization failure) is an outage: the message
//! is not answered and comes again, so an outage never rejects a good fact.

use serde_json::Value;
use tledger_store::StoreError;

/// A string of the message the ledger cannot store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unstorable {
    pub reason: String,
    /// The string's JSON Pointer in the message; for a member name, the
    /// object that holds it (a pointer cannot name a member by a name it
    /// could not store either).
    pub pointer: String,
}

/// The first string (value or member name) in `message` that holds U+0000.
pub fn first_unstorable(message: &Value) -> Option<Unstorable> {
    let mut pointer = String::new();
    find_nul(message, &mut pointer)
}

fn find_nul(value: &Value, pointer: &mut String) -> Option<Unstorable> {
    match value {
        Value::String(s) if s.contains('\0') => Some(Unstorable {
            reason: format!(
                "the string at {} holds a NUL character (\\u0000), which the ledger cannot store; \
                 remove it and publish again",
                shown(pointer)
            ),
            pointer: pointer.clone(),
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let at = pointer.len();
            pointer.push_str(&format!("/{i}"));
            let found = find_nul(item, pointer);
            pointer.truncate(at);
            found
        }),
        Value::Object(members) => members.iter().find_map(|(name, member)| {
            if name.contains('\0') {
                return Some(Unstorable {
                    reason: format!(
                        "a member name in {} holds a NUL character (\\u0000), which the ledger \
                         cannot store; remove it and publish again",
                        shown(pointer)
                    ),
                    pointer: pointer.clone(),
                });
            }
            let at = pointer.len();
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
            let found = find_nul(member, pointer);
            pointer.truncate(at);
            found
        }),
        _ => None,
    }
}

fn shown(pointer: &str) -> &str {
    if pointer.is_empty() {
        "the top of the message"
    } else {
        pointer
    }
}

/// Whether `text` can be stored in a `text` column as it is.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// `text` as a `text` column can hold it: a NUL written as `\u0000`. Only
/// for labels kept beside the message (which is kept as received).
pub fn storable_label(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

/// The reason for a rejection when the store failed because of what the
/// message holds; `None` for an outage or any other failure, which leaves
/// the message to come again.
pub fn refused_for_content(error: &StoreError) -> Option<String> {
    let StoreError::Database {
        source: sqlx::Error::Database(refusal),
        ..
    } = error
    else {
        return None;
    };
    let code = refusal.code()?;
    content_class(&code).then(|| {
        format!(
            "PostgreSQL refused to store what the message holds ({code}: {}); correct it and \
             publish again",
            refusal.message()
        )
    })
}

/// SQLSTATE classes caused by the values of a statement, not by the
/// server's state: 22 (data exception) and 54 (program limit exceeded).
fn content_class(sqlstate: &str) -> bool {
    sqlstate.starts_with("22") || sqlstate.starts_with("54")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_is_found_with_its_pointer() {
        let message = json!({
            "id": "a", "data": {"a/b": ["x", "y\u{0}"], "program": {"title": "ok"}}
        });
        let found = first_unstorable(&message).expect("found");
        assert_eq!(found.pointer, "/data/a~1b/1");
        assert!(found.reason.contains("/data/a~1b/1"), "{}", found.reason);
        assert!(!found.reason.contains('\0'));

        let id = json!({"id": "\u{0}", "data": {}});
        assert_eq!(first_unstorable(&id).map(|f| f.pointer), Some("/id".into()));
        let name = json!({"data": {"program": {"ti\u{0}tle": 1}}});
        let found = first_unstorable(&name).expect("found");
        assert_eq!(found.pointer, "/data/program");
        assert!(!found.reason.contains('\0'));
        let top = json!({"\u{0}": 1});
        assert_eq!(first_unstorable(&top).map(|f| f.pointer), Some("".into()));
        assert_eq!(first_unstorable(&json!({"a": ["ok", 1, null]})), None);
    }

    #[test]
    fn a_label_is_stored_with_its_nul_written_out() {
        assert!(storable("dai-loc"));
        assert!(!storable("dai\u{0}loc"));
        assert_eq!(storable_label("dai\u{0}loc"), "dai\\u0000loc");
    }

    #[test]
    fn data_exceptions_and_limits_are_the_messages_not_an_outage() {
        for code in ["22P05", "22021", "22003", "22023", "54000"] {
            assert!(content_class(code), "{code}");
        }
        // Connection, shutdown, too many connections, serialization, a
        // broken constraint of the ledger's own making.
        for code in ["08006", "57P01", "53300", "40001", "23505"] {
            assert!(!content_class(code), "{code}");
        }
        let unreachable = StoreError::Database {
            context: "appending events",
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(refused_for_content(&unreachable), None);
        let io = StoreError::Database {
            context: "appending events",
            source: sqlx::Error::Io(std::io::Error::other("connection reset")),
        };
        assert_eq!(refused_for_content(&io), None);
    }
}
