//! How figures and rows are written for people and spreadsheets: shared by
//! the command line's reports and trails and by the dashboard.

pub(crate) mod csv;
