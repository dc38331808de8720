//! Numbers as each language writes them: `9,384` and `62.22%` in English,
//! `9.384` and `62,22%` in Vietnamese, the same on paper and on screen.

use crate::presentation::Lang;

/// A whole number with thousands separators: `9,384` or `9.384`.
pub fn number(n: u64, lang: Lang) -> String {
    large_number(n.into(), lang)
}

/// [`number`] past `u64`, which a funding sum may be (see
/// `tledger_projections::reports::funding_json`).
pub fn large_number(n: u128, lang: Lang) -> String {
    let digits = n.to_string();
    let sep = if lang == Lang::Vi { '.' } else { ',' };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// A rate as a percentage with two decimals: `62.22%` or `62,22%`.
pub fn percent(rate: Option<f64>, lang: Lang) -> String {
    match rate {
        None => "—".into(),
        Some(r) => {
            let text = format!("{:.2}%", r * 100.0);
            if lang == Lang::Vi {
                text.replace('.', ",")
            } else {
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_rates_follow_the_language() {
        assert_eq!(number(9384, Lang::En), "9,384");
        assert_eq!(number(9384, Lang::Vi), "9.384");
        assert_eq!(number(1_234_567, Lang::Vi), "1.234.567");
        assert_eq!(number(12, Lang::Vi), "12");
        assert_eq!(percent(Some(0.6222), Lang::Vi), "62,22%");
        assert_eq!(percent(Some(0.6222), Lang::En), "62.22%");
        assert_eq!(percent(None, Lang::En), "—");
    }
}
