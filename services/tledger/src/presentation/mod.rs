//! How figures and rows are written for people and spreadsheets, shared by
//! the command line's reports and trails and by the dashboard: the
//! language, the output format, numbers and rates, and CSV.

pub(crate) mod csv;
pub(crate) mod numbers;
pub mod report_csv;

pub use numbers::{large_number, number, percent};

/// How the command line prints a report or a trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// The language of labels and number formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Vi,
}
