//! The API tests: every test that needs only the shared in-process world
//! (the machine's PostgreSQL and NATS, a database and prefix of its own, the
//! service from `support::spawn_app` or the `tledger` binary as a child), in
//! one binary so the service is linked once. Tests that need a process world
//! of their own (fault injection, the browser, the Python publisher) are
//! binaries of their own beside this folder.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod commands;
mod csv_formulas;
mod dashboard;
mod demo;
mod door;
mod history;
mod ingest;
mod inspection;
mod nats_commands;
mod relay;
mod replay_model;
mod replay_reports;
mod report_model;
mod reports;
mod security;
mod strict_input;
mod trail_from_chain;
