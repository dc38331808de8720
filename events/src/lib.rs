//! The fact catalogue of training-ledger.
//!
//! Every fact of the external contract (`reference.published.v1` …
//! `fact.retracted.v1`) as Rust types, the CloudEvents 1.0 structured
//! envelope that carries them, strict parsing with errors that name the
//! field as a JSON Pointer, the shipped reference data (position
//! taxonomy, standards ruleset, post → specialty map), and the reading of a
//! stored fact of an older schema version as the current one
//! ([`upcasting`]).
//!
//! This crate does no I/O and depends on no runtime, database or broker:
//! an integrating body's developer can depend on it alone to build and check
//! the facts they publish. The shipped reference files are compiled in.

mod canonical;
pub mod chain;
mod check;
pub mod checkpoint;
pub mod codes;
pub mod envelope;
pub mod error;
pub mod facts;
pub mod ids;
pub mod json_text;
pub mod merkle;
pub mod proof;
pub mod reference_data;
pub mod schema;
mod strictness;
pub mod unit_tree;
pub mod upcasting;
pub mod values;

pub use codes::{
    CompletionResult, EvidenceKind, FundingSource, Gender, LeaveReason, Level, PositionCode,
    RatingGrade, ReferenceKind, SpecialtyCode, StaffCategory, Track, UnitLevel,
};
pub use envelope::CloudEvent;
pub use error::{FactError, FactErrorKind};
pub use facts::{AggregateKind, Fact, FactType};
pub use ids::{EnrollmentId, InstitutionId, OfficialId, PublisherId, ReferenceName, UnitId};
pub use values::{Date, Score, Vnd, Year};
