//! Read models and compliance figures of training-ledger.
//!
//! Projections turn the ledger's facts into the figures supervisors and
//! inspectors ask for (training volume, the three standards, key leaders,
//! political theory, plan alignment, funding), as of any date. The pure
//! rules that decide a figure live here, apart from the PostgreSQL read
//! models that feed them, so a figure can be recomputed from the facts alone
//! (an inspector's replay does exactly that).
//!
//! Must not depend on the command side (`tledger-domain`): projections read
//! facts, never aggregates. The PostgreSQL read models ([`projector`],
//! [`schema`], [`reports`]) are adapters over the pure rules
//! ([`standards`], [`standing`], [`rate`]).

mod daily_volume;
pub mod offline;
pub mod projector;
pub mod rate;
pub mod reports;
pub mod schema;
pub mod standards;
pub mod standing;
mod standing_table;
