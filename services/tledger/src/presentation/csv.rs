//! CSV cells, as every CSV the ledger writes has them (the trails over HTTP
//! and from `tledger history`, the reports over HTTP and from `tledger
//! report`, the dashboard's tables and a person's history): one writer, so
//! the rules live here alone.
//!
//! - RFC 4180: a cell holding a comma, a quote or a line break is quoted,
//!   its quotes doubled.
//! - No formulas (OWASP, "CSV Injection"): a text cell beginning with `=`,
//!   `+`, `-`, `@`, a tab or a carriage return is what a spreadsheet would
//!   run as a formula, so it is written with a `'` before it, and quoted.
//!   Such text reaches the CSVs from anyone who may record a fact (a
//!   correlation id, a retraction's reason, a token's name, an id beginning
//!   with `-`). A tool reading the CSV sees the `'`; the JSON answers carry
//!   the text unchanged.
//! - Numbers are never changed: a JSON number is written as it is, so a
//!   negative one (no count or amount the ledger reports is negative) stays
//!   a number. Only text is neutralised.

use serde_json::Value;

/// What a spreadsheet takes for the start of a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell from a JSON value: text as [`text`], `null` empty, numbers and
/// booleans as JSON writes them.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => text(s),
        other => quoted_if_needed(other.to_string()),
    }
}

/// A text cell: neutralised when it would start a formula, quoted when it
/// needs to be.
pub(crate) fn text(text: &str) -> String {
    if text.starts_with(FORMULA_START) {
        quoted(&format!("'{text}"))
    } else {
        quoted_if_needed(text.to_owned())
    }
}

fn quoted_if_needed(text: String) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        quoted(&text)
    } else {
        text
    }
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_that_would_start_a_formula_gets_a_quote_mark_and_quotes() {
        assert_eq!(
            text("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(text("=1+1"), "\"'=1+1\"");
        assert_eq!(text("+1"), "\"'+1\"");
        assert_eq!(text("-A1"), "\"'-A1\"");
        assert_eq!(text("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(text("\tx"), "\"'\tx\"");
        assert_eq!(text("\r=1"), "\"'\r=1\"");
    }

    #[test]
    fn other_text_is_quoted_only_when_rfc_4180_needs_it() {
        assert_eq!(text("o-1"), "o-1");
        assert_eq!(text("a=b"), "a=b", "only the first character counts");
        assert_eq!(text("inspector, district"), "\"inspector, district\"");
        assert_eq!(text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text("two\nlines"), "\"two\nlines\"");
        assert_eq!(text(""), "");
    }

    #[test]
    fn numbers_stay_numbers() {
        assert_eq!(cell(&json!(-5)), "-5");
        assert_eq!(cell(&json!(0.6222)), "0.6222");
        assert_eq!(cell(&json!(4500000)), "4500000");
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(
            cell(&json!("-5")),
            "\"'-5\"",
            "text that looks like one is text"
        );
        assert_eq!(cell(&json!(true)), "true");
    }
}
