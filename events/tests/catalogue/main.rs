//! The fact catalogue's contract, tested from outside the crate: generated
//! JSON Schemas against the checked-in copies, round trips of every fact
//! type, strict parsing with exact errors, the CloudEvents envelope and the
//! shipped reference data.
//!
//! One test binary: `cargo test -p tledger-events --test catalogue`.

mod envelope;
mod reference_files;
mod round_trip;
mod schemas;
mod strategies;
mod strict_parsing;
mod support;
