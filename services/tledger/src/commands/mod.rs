//! Commands: the contract's commands, from a request to its answer.
//!
//! The pipeline ([`pipeline`]) takes every command through the same steps,
//! in the contract's error order (docs/contract.md, Errors;
//! docs/adr/0006-command-pipeline-and-error-order.md): authenticate → role
//! → parse → look up → decide → append → answer. The look-ups and the
//! decision are the use case's, one file per aggregate:
//!
//! - `reference_publication.rs`: `publish_reference`, and the position taxonomy in
//!   force that other use cases look up;
//! - `unit.rs`: `register_unit`, `reorganise_unit`;
//! - `official.rs`: `register_official`, `record_qualification`,
//!   `assign_position`, `plan`, `rate`, `record_leaving`;
//! - `enrollment.rs`: `nominate`, `enroll`, `complete`, `fail`, `withdraw`,
//!   `cancel`;
//! - `retraction.rs`: `retract`.
//!
//! Around them: `scope.rs` (the role and a unit officer's unit scope),
//! `loaded.rs` (an aggregate from its stream), `refusal.rs` (the
//! contract's error body) and `policies.rs` (the qualification policy,
//! which records what a fact entails through the same decisions).

mod enrollment;
mod loaded;
mod official;
mod pipeline;
mod policies;
mod reference_publication;
mod refusal;
mod retraction;
mod scope;
mod unit;

pub use pipeline::{CommandReply, CommandRequest, CommandService, COMMANDS};
pub use refusal::Refusal;
pub(crate) use refusal::Refused;
pub(crate) use unit::load_unit_tree;
