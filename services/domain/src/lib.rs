//! The rules of training-ledger.
//!
//! Aggregates on `cqrs_es::Aggregate`, one file each with its commands,
//! events, errors and tests: [`unit`], [`official`], [`enrollment`] and
//! [`reference_publication`]; shared retraction mechanics in [`retraction`]; policies
//! (facts that follow from facts) in [`policy`]; the contract's error table
//! in [`error`].
//!
//! Everything here is pure. `handle` decides from the aggregate's own state
//! and the command; whatever a rule needs from elsewhere (what a look-up
//! found of the unit named, the position taxonomy in force on the fact's
//! date, the official's tenure) is looked up by the command handler
//! *before* the command is built and travels inside it; whether what was
//! found is enough is decided here ([`existence`]). This crate must not depend on a
//! database, a broker, a clock or a random source.

/// Implements `cqrs_es::Aggregate` for an aggregate that keeps its stream as
/// `Records` and decides each command into exactly one event with
/// `fn decide(&self, command) -> Result<Event, Error>`.
macro_rules! records_aggregate {
    ($aggregate:ty, $type:literal, $command:ty, $event:ty, $error:ty) => {
        impl cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $type;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                let event = self.decide(command)?;
                sink.write(event, self).await;
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.records.apply(event);
            }
        }
    };
}

pub mod enrollment;
pub mod error;
pub mod existence;
#[cfg(test)]
mod fixtures;
pub mod official;
pub mod policy;
pub mod reference_publication;
pub mod retraction;
pub mod unit;

pub use enrollment::{
    Enrollment, EnrollmentCommand, EnrollmentError, EnrollmentEvent, EnrollmentState,
};
pub use error::{ContractError, ErrorCode};
pub use existence::Found;
pub use official::{Official, OfficialCommand, OfficialError, OfficialEvent, Tenure};
pub use reference_publication::{Reference, ReferenceCommand, ReferenceError, ReferenceEvent};
pub use retraction::{
    resolve_stream, FromFact, IntoFact, RetractFact, Retraction, RetractionError, StoredFact,
};
pub use unit::{Unit, UnitCommand, UnitError, UnitEvent};
