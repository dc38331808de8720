//! `tledger report <name>`: the same figures as the HTTP reports, printed as
//! a table (English or Vietnamese labels and number formats), JSON or CSV.
//! The command line reads the read models directly (it has the database);
//! it first brings them up to the ledger's head.

use std::fmt::Write as _;

use serde_json::Value;
use tledger_events::Date;
use tledger_projections::projector::{ProjectionError, Projector};
use tledger_projections::reports::{ReadModels, ReportError};
use tledger_store::Store;

use crate::calendar::{five_years_ending, today};
use crate::presentation::report_csv::to_csv;
use crate::presentation::{number, percent, Format, Lang};

/// What to report.
#[derive(Clone, Debug)]
pub struct ReportRequest {
    pub name: String,
    pub unit: Option<String>,
    pub as_of: Option<Date>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub at_position: Option<u64>,
    pub format: Format,
    pub lang: Lang,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportCliError {
    #[error("unknown report {0:?}: the reports are training-volume, standards, alignment")]
    UnknownReport(String),
    #[error("from {from} is after to {to}")]
    Range { from: Date, to: Date },
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// The report as JSON (the HTTP body).
pub async fn report_json(store: &Store, request: &ReportRequest) -> Result<Value, ReportCliError> {
    let head = Projector::new(store.clone()).catch_up().await?;
    let cut = request.at_position.unwrap_or(head).min(head);
    let models = ReadModels::new(store.pool().clone());
    let unit = request.unit.as_deref();
    match request.name.as_str() {
        "training-volume" => {
            let to = request.to.unwrap_or_else(today);
            let from = request.from.unwrap_or_else(|| five_years_ending(to));
            if from > to {
                return Err(ReportCliError::Range { from, to });
            }
            Ok(models.training_volume(unit, from, to, cut).await?.to_json())
        }
        "standards" => Ok(models
            .standards(unit, request.as_of.unwrap_or_else(today), cut)
            .await?
            .to_json()),
        "alignment" => Ok(models
            .alignment(unit, request.as_of.unwrap_or_else(today), cut)
            .await?
            .to_json()),
        other => Err(ReportCliError::UnknownReport(other.to_owned())),
    }
}

/// The report, rendered as asked.
pub async fn render(store: &Store, request: &ReportRequest) -> Result<String, ReportCliError> {
    let body = report_json(store, request).await?;
    Ok(match request.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        ),
        Format::Csv => to_csv(&request.name, &body),
        Format::Table => table(&request.name, &body, request.lang),
    })
}

/// An alignment reason code in words (an unknown code is shown as it is).
fn reason(code: &str, lang: Lang) -> String {
    match (code, lang) {
        ("not_in_plan", Lang::En) => "not in the staffing plan".into(),
        ("not_in_plan", Lang::Vi) => "không có trong quy hoạch".into(),
        ("other_specialty", Lang::En) => "another specialty".into(),
        ("other_specialty", Lang::Vi) => "khác chuyên ngành".into(),
        ("untrained", Lang::En) => "untrained".into(),
        ("untrained", Lang::Vi) => "chưa qua đào tạo".into(),
        (other, _) => other.to_owned(),
    }
}

fn label(key: &str, lang: Lang) -> &'static str {
    match (key, lang) {
        ("meets_all_standards", Lang::En) => "Meet all three standards",
        ("meets_all_standards", Lang::Vi) => "Đạt chuẩn cả ba tiêu chuẩn",
        ("professional_college_plus", Lang::En) => "Professional level college or higher",
        ("professional_college_plus", Lang::Vi) => "Chuyên môn cao đẳng, đại học trở lên",
        ("key_leaders_college_plus", Lang::En) => "Key leaders with college or higher",
        ("key_leaders_college_plus", Lang::Vi) => "Cán bộ chủ chốt có cao đẳng, đại học trở lên",
        ("political_theory_intermediate_plus", Lang::En) => {
            "Political theory intermediate or higher"
        }
        ("political_theory_intermediate_plus", Lang::Vi) => "Lý luận chính trị trung cấp trở lên",
        ("total", Lang::En) => "People-times sent to training",
        ("total", Lang::Vi) => "Lượt người được cử đi đào tạo, bồi dưỡng",
        ("professional_intermediate_plus", Lang::En) => {
            "Professional training, intermediate or higher"
        }
        ("professional_intermediate_plus", Lang::Vi) => "Đào tạo chuyên môn trung cấp trở lên",
        ("political_training_intermediate_plus", Lang::En) => {
            "Political theory training, intermediate or higher"
        }
        ("political_training_intermediate_plus", Lang::Vi) => {
            "Đào tạo lý luận chính trị trung cấp trở lên"
        }
        ("refresher", Lang::En) => "Refresher courses",
        ("refresher", Lang::Vi) => "Bồi dưỡng nghiệp vụ",
        ("population", Lang::En) => "Cadres and civil servants in post",
        ("population", Lang::Vi) => "Cán bộ, công chức đương chức",
        ("training_outside_plan", Lang::En) => "Training outside the staffing plan",
        ("training_outside_plan", Lang::Vi) => "Đào tạo ngoài quy hoạch",
        ("misassigned", Lang::En) => "Civil servants in a post outside their specialty",
        ("misassigned", Lang::Vi) => "Công chức bố trí không đúng chuyên môn",
        ("planned", Lang::En) => "planned",
        ("planned", Lang::Vi) => "quy hoạch",
        (_, _) => "",
    }
}

/// A report body as a table of labelled figures.
pub fn table(name: &str, body: &Value, lang: Lang) -> String {
    let mut out = String::new();
    let unit = body["unit_id"].as_str().unwrap_or(if lang == Lang::Vi {
        "cả nước"
    } else {
        "whole country"
    });
    let count = |v: &Value| number(v.as_u64().unwrap_or(0), lang);
    match name {
        "standards" => {
            let _ = writeln!(
                out,
                "{} — {} {} ({}: {}, position {})",
                unit,
                if lang == Lang::Vi {
                    "tính đến"
                } else {
                    "as of"
                },
                body["as_of"].as_str().unwrap_or(""),
                if lang == Lang::Vi {
                    "bộ tiêu chuẩn"
                } else {
                    "ruleset"
                },
                body["ruleset"].as_str().unwrap_or(""),
                body["position"]
            );
            let _ = writeln!(
                out,
                "{:<52} {:>8}",
                label("population", lang),
                count(&body["population"])
            );
            for key in [
                "meets_all_standards",
                "professional_college_plus",
                "key_leaders_college_plus",
                "political_theory_intermediate_plus",
            ] {
                let f = &body[key];
                let _ = writeln!(
                    out,
                    "{:<52} {:>8} / {:<8} {:>8}",
                    label(key, lang),
                    count(&f["count"]),
                    count(&f["of"]),
                    percent(f["rate"].as_f64(), lang)
                );
            }
        }
        "training-volume" => {
            let _ = writeln!(
                out,
                "{} — {} … {} (position {})",
                unit,
                body["from"].as_str().unwrap_or(""),
                body["to"].as_str().unwrap_or(""),
                body["position"]
            );
            let _ = writeln!(
                out,
                "{:<52} {:>8}",
                label("total", lang),
                count(&body["total"])
            );
            for key in [
                "professional_intermediate_plus",
                "political_theory_intermediate_plus",
                "refresher",
            ] {
                let _ = writeln!(
                    out,
                    "  {:<50} {:>8}",
                    label(key, lang),
                    count(&body["headline"][key])
                );
            }
            if let Some(funding) = body["funding_vnd"].as_object() {
                for (source, amount) in funding {
                    let _ = writeln!(
                        out,
                        "  {} {source:<40} {:>14} đ",
                        if lang == Lang::Vi {
                            "kinh phí"
                        } else {
                            "funding "
                        },
                        count(amount)
                    );
                }
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "{} — {} {}",
                unit,
                if lang == Lang::Vi {
                    "tính đến"
                } else {
                    "as of"
                },
                body["as_of"].as_str().unwrap_or("")
            );
            let outside: Vec<&Value> = body["training_outside_plan"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let _ = writeln!(
                out,
                "{} ({})",
                label("training_outside_plan", lang),
                count(&outside.len().into())
            );
            for row in outside {
                let _ = writeln!(
                    out,
                    "  {:<20} {:<16} {:<16} {} {:<16} {}",
                    row["enrollment_id"].as_str().unwrap_or(""),
                    row["official_id"].as_str().unwrap_or(""),
                    row["program_specialty"].as_str().unwrap_or("-"),
                    label("planned", lang),
                    row["planned_specialty"].as_str().unwrap_or("-"),
                    reason(row["reason"].as_str().unwrap_or(""), lang)
                );
            }
            let misassigned: Vec<&Value> = body["misassigned"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let _ = writeln!(
                out,
                "{} ({})",
                label("misassigned", lang),
                count(&misassigned.len().into())
            );
            for row in misassigned {
                let _ = writeln!(
                    out,
                    "  {:<20} {:<16} {:<16} {}",
                    row["official_id"].as_str().unwrap_or(""),
                    row["post"].as_str().unwrap_or(""),
                    row["specialty"].as_str().unwrap_or("-"),
                    reason(row["reason"].as_str().unwrap_or(""), lang)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alignment_table_speaks_the_language_asked_for() {
        let body = serde_json::json!({
            "unit_id": "dai-loc", "as_of": "2011-12-31", "position": 9,
            "training_outside_plan": [{"enrollment_id": "e-1", "official_id": "p-1",
                "program_specialty": "luat", "planned_specialty": "kinh-te",
                "reason": "other_specialty"}],
            "misassigned": [{"official_id": "p-2", "post": "dia-chinh", "specialty": null,
                "reason": "untrained"}],
        });
        let vi = table("alignment", &body, Lang::Vi);
        assert!(vi.contains("dai-loc — tính đến 2011-12-31"), "{vi}");
        assert!(vi.contains("Đào tạo ngoài quy hoạch (1)"), "{vi}");
        assert!(vi.contains("quy hoạch kinh-te"), "{vi}");
        assert!(vi.contains("khác chuyên ngành"), "{vi}");
        assert!(
            vi.contains("Công chức bố trí không đúng chuyên môn (1)"),
            "{vi}"
        );
        assert!(vi.contains("chưa qua đào tạo"), "{vi}");
        let en = table("alignment", &body, Lang::En);
        assert!(
            en.contains("Training outside the staffing plan (1)"),
            "{en}"
        );
        assert!(en.contains("another specialty"), "{en}");
        assert!(en.contains("untrained"), "{en}");
        assert!(!en.contains("quy hoạch"), "{en}");
    }
}
