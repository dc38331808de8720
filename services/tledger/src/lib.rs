//! The training-ledger service: commands over HTTP and NATS, the relay from
//! the event store to JetStream, access tokens, and the `tledger` command
//! line. Adapters stay thin; the rules live in `tledger-domain`, the
//! storage in `tledger-store`.

pub mod access;
pub mod access_log;
pub mod admission;
pub mod app;
pub mod bench;
pub mod bench_all;
mod bench_cluster;
pub mod bench_ingest;
pub mod bench_inspection;
pub mod bench_ledger;
pub mod bench_load;
pub mod bench_rebuild;
pub mod bench_reports;
pub mod browser_policy;
pub mod checkpointer;
pub mod commands;
pub mod config;
mod csv;
pub mod dashboard;
pub mod demo;
pub mod export;
pub mod history;
pub mod http;
pub mod import;
pub mod ingest;
pub mod inspection;
pub mod lookups;
pub mod nats_commands;
pub mod prefix;
pub mod publishers;
pub mod quarantine;
pub mod relay;
pub mod replay;
pub mod report_cli;
pub mod reports;
pub mod seeding;
pub mod startup;
pub mod telemetry;

pub use prefix::Prefix;
