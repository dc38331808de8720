//! The training-ledger service: commands over HTTP and NATS, the relay from
//! the event store to JetStream, access tokens, and the `tledger` command
//! line. Adapters stay thin; the rules live in `tledger-domain`, the
//! storage in `tledger-store`.

pub mod access;
pub(crate) mod access_log;
pub mod admission;
pub mod app;
pub mod audit_trail;
pub(crate) mod calendar;
pub mod checkpoint_signing;
pub mod commands;
pub mod config;
pub mod exit_status;
pub mod export;
pub mod import;
pub mod ingest;
pub mod inspection;
pub mod nats_commands;
pub(crate) mod prefix;
pub mod presentation;
pub mod publishers;
pub mod quarantine;
pub mod relay;
pub mod replay;
pub mod report_cli;
pub mod seeding;
pub mod startup;
pub mod telemetry;
pub mod web;

pub use prefix::Prefix;
