//! The reports as CSV: one row per figure, in the shapes docs/contract.md
//! (Reports) gives, for `GET /v1/reports/<name>` with `Accept: text/csv` and
//! for `tledger report --format csv`.

use serde_json::Value;

use crate::presentation::csv;

/// One row per figure, as the contract's CSV shapes say.
pub fn to_csv(name: &str, body: &Value) -> String {
    let mut out = String::new();
    match name {
        "standards" => {
            out.push_str("figure,count,of,rate\n");
            for figure in [
                "meets_all_standards",
                "professional_college_plus",
                "key_leaders_college_plus",
                "political_theory_intermediate_plus",
            ] {
                let f = &body[figure];
                out.push_str(&format!(
                    "{},{},{},{}\n",
                    csv::text(figure),
                    csv::cell(&f["count"]),
                    csv::cell(&f["of"]),
                    csv::cell(&f["rate"])
                ));
            }
        }
        "training-volume" => {
            out.push_str("track,level,count\n");
            if let Some(tracks) = body["by_track"].as_object() {
                for (track, t) in tracks {
                    out.push_str(&format!(
                        "{},,{}\n",
                        csv::text(track),
                        csv::cell(&t["total"])
                    ));
                    if let Some(levels) = t["by_level"].as_object() {
                        for (level, n) in levels {
                            out.push_str(&format!(
                                "{},{},{}\n",
                                csv::text(track),
                                csv::text(level),
                                csv::cell(n)
                            ));
                        }
                    }
                }
            }
        }
        _ => {
            out.push_str("list,enrollment_id,official_id,post,program_specialty,planned_specialty,specialty,reason\n");
            for row in body["training_outside_plan"]
                .as_array()
                .into_iter()
                .flatten()
            {
                out.push_str(&format!(
                    "training_outside_plan,{},{},,{},{},,{}\n",
                    csv::cell(&row["enrollment_id"]),
                    csv::cell(&row["official_id"]),
                    csv::cell(&row["program_specialty"]),
                    csv::cell(&row["planned_specialty"]),
                    csv::cell(&row["reason"])
                ));
            }
            for row in body["misassigned"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "misassigned,,{},{},,,{},{}\n",
                    csv::cell(&row["official_id"]),
                    csv::cell(&row["post"]),
                    csv::cell(&row["specialty"]),
                    csv::cell(&row["reason"])
                ));
            }
        }
    }
    out
}
