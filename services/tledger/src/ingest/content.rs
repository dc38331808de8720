//! What a published message may hold for the ledger to keep it, and which
//! failures of the store a message's content caused (docs/contract.md
//! "Publishing facts": every other violation is `rejected` at once).
//!
//! PostgreSQL's `text` and `jsonb` cannot hold U+0000: a message with a NUL
//! in any string, member names included, could be neither recorded nor
//! answered, and would come again for ever. The strict reader of the
//! message (`tledger_events::json_text`) refuses it before the store is
//! asked, naming the string by JSON Pointer, as it refuses lone surrogate
//! escapes, nesting deeper than its limit and numbers outside a double's
//! range. What is left here: the labels (`source`, `id`) read for the
//! receipt of a message that did not parse, which may still hold one.
//!
//! Whatever PostgreSQL still refuses because of a value (SQLSTATE class 22,
//! data exception, and class 54, a program limit such as an index row too
//! large) is a rejection too. Every other store failure (no connection, the
//! server shutting down, a serialization failure) is an outage: the message
//! is not answered and comes again, so an outage never rejects a good fact.

use tledger_store::StoreError;

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
