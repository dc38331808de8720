//! The benchmarks of training-ledger, apart from the service: the shipped
//! `tledger` binary holds only the service, and `tledger bench …` runs the
//! `tledger-bench` binary built from this crate (ADR 21,
//! docs/adr/0021-benchmarks-and-demo-plan-outside-the-service.md).
//!
//! Each benchmark measures the service's real code (its library, `tledger`)
//! against a baseline of the same size in the same run, on a database and
//! prefix of its own, never real data (docs/benchmarks.md).

pub mod bench;
pub mod bench_all;
mod bench_cluster;
pub mod bench_ingest;
pub mod bench_inspection;
pub mod bench_ledger;
pub mod bench_load;
pub mod bench_rebuild;
pub mod bench_reports;
