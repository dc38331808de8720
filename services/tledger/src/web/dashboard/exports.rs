//! The dashboard's tables, shown as HTML and downloadable as CSV and as an
//! Excel workbook (`.xlsx`).
//!
//! One [`Table`] feeds all three, so a download always holds what the page
//! shows. CSV headers are column codes and values are raw (rates as
//! fractions, as the API's CSV has them; text that would start a formula
//! neutralised, `crate::presentation::csv`), for tools; the workbook has the
//! page's column labels in the page's language, numbers as numbers and
//! rates formatted as percentages, for people.
//!
//! The workbook is written by `rust_xlsxwriter` (default features off): it
//! is maintained, writes files Excel and LibreOffice open without repair,
//! and brings only the `zip` crate with it; a hand-made writer of the Office
//! Open XML parts would be ours to keep correct.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::{json, Value};
use tledger_events::chain::format_instant;
use tledger_projections::reports::{AlignmentReport, StandardsReport};

use super::figures::{funding, track_total, Trend, Volume};
use super::i18n::Words;
use super::timeline::Timeline;
use crate::presentation::csv;

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    /// A code shown with its label from the catalogue group.
    Code {
        group: &'static str,
        code: String,
    },
    Count(u64),
    /// Whole đồng, exact (a sum may be past `i64`).
    Money(i128),
    /// count/of, `None` when the population is empty.
    Rate(Option<f64>),
    Date(tledger_events::Date),
    /// A person, linked to their history on the page.
    Person(String),
    Empty,
}

impl Cell {
    fn raw(&self) -> Value {
        match self {
            Cell::Text(s) | Cell::Person(s) => json!(s),
            Cell::Code { code, .. } => json!(code),
            Cell::Count(n) => json!(n),
            Cell::Money(n) => tledger_projections::reports::funding_json(*n),
            Cell::Rate(r) => json!(r),
            Cell::Date(d) => json!(d.to_string()),
            Cell::Empty => Value::Null,
        }
    }

    /// The cell as the page shows it.
    pub fn shown(&self, words: &Words) -> String {
        match self {
            Cell::Text(s) | Cell::Person(s) => s.clone(),
            Cell::Code { group, code } => words.code(group, code),
            Cell::Count(n) => words.number(*n),
            Cell::Money(n) => words.amount(*n),
            Cell::Rate(r) => words.percent(*r),
            Cell::Date(d) => words.date(*d),
            Cell::Empty => String::new(),
        }
    }
}

/// A table: its file name, heading and columns (code, label key).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file name without extension, also the sheet name.
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// The unit tables a view offers for download.
pub const UNIT_TABLES: &[&str] = &["standards", "trend", "volume", "funding", "alignment"];

impl Table {
    /// The column's label: `column.<code>` in the catalogue.
    pub fn label(words: &Words, column: &str) -> String {
        words.t(&format!("column.{column}"))
    }

    pub fn to_csv(&self) -> String {
        let mut out = self.columns.join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| csv::cell(&c.raw())).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// The workbook: one sheet named after the table, a heading row of
    /// labels, then the rows.
    pub fn to_xlsx(&self, words: &Words) -> Result<Vec<u8>, XlsxError> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name(self.name)?;
        let bold = Format::new().set_bold();
        let percent = Format::new().set_num_format("0.00%");
        let whole = Format::new().set_num_format("#,##0");
        for (col, column) in (0u16..).zip(&self.columns) {
            sheet.write_string_with_format(0, col, Table::label(words, column), &bold)?;
        }
        for (row, cells) in (1u32..).zip(&self.rows) {
            for (col, cell) in (0u16..).zip(cells) {
                match cell {
                    // Figures stay numbers, so a reader can add them up.
                    Cell::Count(n) => {
                        sheet.write_number_with_format(row, col, *n as f64, &whole)?;
                    }
                    // A spreadsheet number is a double: past 2^53 the
                    // digits go in as text, exact.
                    Cell::Money(n) if n.unsigned_abs() <= 1 << 53 => {
                        sheet.write_number_with_format(row, col, *n as f64, &whole)?;
                    }
                    Cell::Money(n) => {
                        sheet.write_string(row, col, n.to_string())?;
                    }
                    Cell::Rate(Some(r)) => {
                        sheet.write_number_with_format(row, col, *r, &percent)?;
                    }
                    Cell::Empty | Cell::Rate(None) => {}
                    // Text is a string cell, never a formula, whatever it
                    // begins with (`=`, `@`, …): no `'` is needed here.
                    other => {
                        sheet.write_string(row, col, other.shown(words))?;
                    }
                }
            }
        }
        sheet.autofit();
        workbook.save_to_buffer()
    }
}

fn code(group: &'static str, code: &str) -> Cell {
    Cell::Code {
        group,
        code: code.to_owned(),
    }
}

fn optional(text: Option<&String>) -> Cell {
    text.map_or(Cell::Empty, |s| Cell::Text(s.clone()))
}

pub fn standards_table(report: &StandardsReport) -> Table {
    Table {
        name: "standards",
        columns: vec!["figure", "count", "of", "rate"],
        rows: report
            .figures()
            .into_iter()
            .map(|(name, figure)| {
                vec![
                    code("figure", name),
                    Cell::Count(figure.count),
                    Cell::Count(figure.of),
                    Cell::Rate(figure.rate()),
                ]
            })
            .collect(),
    }
}

pub fn trend_table(trend: &Trend) -> Table {
    Table {
        name: "trend",
        columns: vec!["as_of", "count", "of", "rate"],
        rows: trend
            .iter()
            .map(|(date, figure)| match figure {
                Some(f) => vec![
                    Cell::Date(*date),
                    Cell::Count(f.count),
                    Cell::Count(f.of),
                    Cell::Rate(f.rate()),
                ],
                None => vec![Cell::Date(*date), Cell::Empty, Cell::Empty, Cell::Empty],
            })
            .collect(),
    }
}

/// Places by year and track (every track, zeros included, so years line
/// up in a spreadsheet).
pub fn volume_table(volume: &Volume) -> Table {
    let mut rows = Vec::new();
    for (year, places) in &volume.by_year {
        for track in tledger_events::Track::ALL {
            rows.push(vec![
                Cell::Text(year.to_string()),
                code("track", track.as_str()),
                Cell::Count(track_total(places, *track)),
            ]);
        }
    }
    Table {
        name: "volume",
        columns: vec!["year", "track", "count"],
        rows,
    }
}

pub fn funding_table(volume: &Volume) -> Table {
    Table {
        name: "funding",
        columns: vec!["source", "amount_vnd"],
        rows: funding(&volume.window)
            .into_iter()
            .map(|(source, amount)| vec![code("funding", source.as_str()), Cell::Money(amount)])
            .collect(),
    }
}

/// Both lists of the alignment report, as the API's CSV has them (a
/// `list` column tells them apart).
pub fn alignment_table(report: &AlignmentReport) -> Table {
    let mut rows = Vec::new();
    for t in &report.training_outside_plan {
        rows.push(vec![
            code("list", "training_outside_plan"),
            Cell::Text(t.enrollment_id.clone()),
            Cell::Person(t.official_id.clone()),
            Cell::Empty,
            optional(t.program_specialty.as_ref()),
            optional(t.planned_specialty.as_ref()),
            Cell::Empty,
            code("reason", t.reason),
        ]);
    }
    for m in &report.misassigned {
        rows.push(vec![
            code("list", "misassigned"),
            Cell::Empty,
            Cell::Person(m.official_id.clone()),
            Cell::Text(m.post.clone()),
            Cell::Empty,
            Cell::Empty,
            optional(m.specialty.as_ref()),
            code("reason", m.reason),
        ]);
    }
    Table {
        name: "alignment",
        columns: vec![
            "list",
            "enrollment_id",
            "official_id",
            "post",
            "program_specialty",
            "planned_specialty",
            "specialty",
            "reason",
        ],
        rows,
    }
}

/// A person's timeline: each fact with who recorded it and any
/// retraction; `enrollment_id` names the training place a fact is about.
pub fn history_table(timeline: &Timeline) -> Table {
    Table {
        name: "history",
        columns: vec![
            "position",
            "effective_date",
            "enrollment_id",
            "type",
            "actor",
            "publisher",
            "recorded_at",
            "retracted_at_position",
            "data",
        ],
        rows: timeline
            .moments()
            .iter()
            .map(|m| {
                let f = &m.entry.fact;
                vec![
                    Cell::Count(f.position),
                    Cell::Date(f.effective_date.into()),
                    m.enrollment_id
                        .map_or(Cell::Empty, |id| Cell::Text(id.to_owned())),
                    code("fact", &f.event_type),
                    Cell::Text(f.actor.clone()),
                    Cell::Text(f.publisher.clone()),
                    Cell::Text(format_instant(f.recorded_at)),
                    m.entry
                        .retracted_by
                        .as_ref()
                        .map_or(Cell::Empty, |r| Cell::Count(r.position)),
                    Cell::Text(f.data.to_string()),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presentation::Lang;

    fn table() -> Table {
        Table {
            name: "standards",
            columns: vec!["figure", "count", "of", "rate"],
            rows: vec![vec![
                code("figure", "meets_all_standards"),
                Cell::Count(247),
                Cell::Count(397),
                Cell::Rate(Some(0.6222)),
            ]],
        }
    }

    #[test]
    fn csv_has_codes_and_raw_values() {
        assert_eq!(
            table().to_csv(),
            "figure,count,of,rate\nmeets_all_standards,247,397,0.6222\n"
        );
    }

    #[test]
    fn the_page_shows_labels_and_the_language_s_numbers() {
        let vi = Words::new(Lang::Vi);
        let row = &table().rows[0];
        assert_eq!(row[3].shown(&vi), "62,22%");
        assert_eq!(row[0].shown(&vi), vi.t("figure.meets_all_standards"));
    }

    #[test]
    fn the_workbook_is_a_zip_archive() {
        let bytes = table().to_xlsx(&Words::new(Lang::En)).expect("xlsx");
        assert_eq!(&bytes[..2], b"PK");
    }
}
