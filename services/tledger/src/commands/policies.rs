//! The qualification policy: reads the ledger in order from its position
//! and records what a fact entails on an official (a completed degree
//! programme records the qualification; a retracted completion retracts
//! it). It matches on the typed fact; its position is kept by the store
//! ([`tledger_store::Store::reader_position`]).

use std::future::Future;
use std::time::Duration;

use tledger_domain::policy::{qualification_for_completion, qualification_retraction};
use tledger_domain::{Enrollment, Official, OfficialCommand, RetractFact};
use tledger_events::facts::{FactRetracted, TrainingCompleted};
use tledger_events::{AggregateKind, Fact, FactType};
use tledger_store::{AppendError, Cadence, EventMetadata, Idempotency, StoreError};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::loaded::{load, Loaded};
use super::pipeline::{decide, decision, request_hash, CommandService, MAX_ATTEMPTS};

/// The system identity policies act under (its idempotency keys are its own).
const POLICY_TOKEN: Uuid = Uuid::from_u128(0x706f_6c69_6379_0000_0000_0000_0000_0001);
const POLICY_READER: &str = "qualification-policy";
/// Ledger events the policy reads per batch.
const POLICY_BATCH: u32 = 200;

impl CommandService {
    /// Runs the qualification policy over the ledger in order, from its
    /// position, until `shutdown`: a completed degree programme records the
    /// qualification; a retracted completion retracts it. Each effect carries
    /// an idempotency key derived from the triggering event, so a replay
    /// after a crash records nothing twice.
    pub async fn run_policies(&self, least_gap: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut announced = self.inner.sequenced.subscribe();
        let mut cadence = Cadence::new(least_gap);
        loop {
            cadence.before_batch().await;
            // Announcements of what this batch reads need no batch of their own.
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = announced.try_recv()
            {
            }
            // Short of a full batch, the policy has reached the head.
            let more = match self.policy_step().await {
                Ok(n) => n >= POLICY_BATCH as usize,
                Err(error) => {
                    tracing::warn!(%error, "qualification policy step failed; retrying");
                    false
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                _ = announced.recv() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Processes the next batch of ledger events for the policy; returns how
    /// many it read. Public so that tests drive it.
    #[tracing::instrument(level = "debug", name = "policy.step", skip_all)]
    pub async fn policy_step(&self) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let after = store.reader_position(POLICY_READER).await?;
        let events = store.read_ledger(after, POLICY_BATCH).await?;
        for event in &events {
            match policy_trigger(event) {
                Some(Trigger::Completion(completion)) => {
                    self.on_completion(event, completion).await?
                }
                Some(Trigger::EnrollmentRetraction(retraction)) => {
                    self.on_enrollment_retraction(event, retraction).await?
                }
                None => {}
            }
        }
        // One position write per batch, committed asynchronously
        // (docs/adr/0008-asynchronous-sequencer-commit.md): after a crash the
        // batch is read again, and every effect's idempotency key makes that
        // harmless.
        if let Some(event) = events.last() {
            store
                .move_reader_position(POLICY_READER, event.position)
                .await?;
        }
        Ok(events.len())
    }

    #[tracing::instrument(level = "debug", name = "policy.on_completion", skip_all, fields(event_id = %event.event_id, enrollment_id = %event.aggregate_id))]
    async fn on_completion(
        &self,
        event: &tledger_store::LedgerEvent,
        completion: TrainingCompleted,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let loaded: Loaded<Enrollment> =
            load(store, AggregateKind::Enrollment, &event.aggregate_id).await?;
        let Some(nomination) = loaded.aggregate.nomination() else {
            return Ok(());
        };
        let Some(policy) = qualification_for_completion(nomination, &completion, event.event_id)
        else {
            return Ok(());
        };
        let official_id = nomination.official_id.to_string();
        self.record_by_policy(event, &official_id, policy.idempotency_key, move |_, _| {
            Some(policy.command.clone())
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "policy.on_enrollment_retraction", skip_all, fields(event_id = %event.event_id, enrollment_id = %event.aggregate_id))]
    async fn on_enrollment_retraction(
        &self,
        event: &tledger_store::LedgerEvent,
        retraction: FactRetracted,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let Some(target) = store.locate(retraction.event_id).await? else {
            return Ok(());
        };
        if target.event_type.parse::<FactType>().ok() != Some(FactType::TrainingCompleted) {
            return Ok(());
        }
        let loaded: Loaded<Enrollment> =
            load(store, AggregateKind::Enrollment, &event.aggregate_id).await?;
        let Some(nomination) = loaded.aggregate.nomination() else {
            return Ok(());
        };
        let official_id = nomination.official_id.clone();
        let enrollment_id = nomination.enrollment_id.clone();
        let key = format!("qualification-retraction-{}", event.event_id);
        let stream_id = official_id.to_string();
        self.record_by_policy(event, &stream_id, key, move |official, loaded_events| {
            let pending = qualification_retraction(
                &official_id,
                official,
                &enrollment_id,
                event.event_id,
                &retraction,
            )?;
            let target = loaded_events
                .iter()
                .find(|e| e.version == pending.target_version)?;
            Some(OfficialCommand::Retract(RetractFact {
                fact: FactRetracted {
                    event_id: target.event_id,
                    reason: pending.reason,
                    effective_date: pending.effective_date,
                },
                target_version: pending.target_version,
                dependents: 0,
            }))
        })
        .await
    }

    /// Records a policy's command on an official, once per key.
    #[tracing::instrument(level = "debug", name = "policy.record", skip_all, fields(cause = %cause.event_id, official_id = %official_id))]
    async fn record_by_policy(
        &self,
        cause: &tledger_store::LedgerEvent,
        official_id: &str,
        key: String,
        command: impl Fn(&Official, &[tledger_store::StoredEvent]) -> Option<OfficialCommand>,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        if store.prior_request(POLICY_TOKEN, &key).await?.is_some() {
            return Ok(());
        }
        for _ in 0..MAX_ATTEMPTS {
            let loaded: Loaded<Official> =
                load(store, AggregateKind::Official, official_id).await?;
            let Some(command) = command(&loaded.aggregate, &loaded.events) else {
                return Ok(());
            };
            let events = match decide(&loaded.aggregate, command).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, cause = %cause.event_id, "the qualification policy's command was refused");
                    return Ok(());
                }
            };
            let mut decision =
                decision(AggregateKind::Official, official_id, loaded.version, events).append;
            for event in &mut decision.events {
                event.metadata = EventMetadata {
                    publisher: "/tledger/policy".into(),
                    actor: POLICY_READER.into(),
                    command_id: Some(key.clone()),
                    correlation_id: cause.correlation_id.clone(),
                    causation_id: Some(cause.event_id),
                };
            }
            decision.idempotency = Some(Idempotency {
                token_id: POLICY_TOKEN,
                key: key.clone(),
                command: POLICY_READER.into(),
                request_hash: request_hash(POLICY_READER, key.as_bytes()),
            });
            match store.append(&decision).await {
                Ok(()) => {
                    self.inner.wake.notify_one();
                    return Ok(());
                }
                Err(AppendError::VersionConflict { .. }) => continue,
                Err(AppendError::IdempotencyKeyTaken(_)) => return Ok(()),
                Err(AppendError::Store(e)) => return Err(e),
            }
        }
        tracing::warn!(cause = %cause.event_id, "the qualification policy gave up after repeated conflicts; it will retry");
        Err(StoreError::Corrupt {
            event_id: cause.event_id,
            event_type: cause.event_type.clone(),
            reason: "concurrent writes kept moving the official's stream".into(),
        })
    }
}

/// A ledger event the qualification policy acts on, as its typed fact.
enum Trigger {
    Completion(TrainingCompleted),
    /// A retraction on an enrollment stream (of a completion, perhaps).
    EnrollmentRetraction(FactRetracted),
}

/// What `event` asks of the policy, if anything; a fact that does not parse
/// as its type asks nothing.
fn policy_trigger(event: &tledger_store::LedgerEvent) -> Option<Trigger> {
    let fact_type: FactType = event.event_type.parse().ok()?;
    let on_enrollment = event.aggregate_type == AggregateKind::Enrollment.as_str();
    match Fact::from_data(fact_type, &event.data).ok()? {
        Fact::TrainingCompleted(completion) => Some(Trigger::Completion(completion)),
        Fact::FactRetracted(retraction) if on_enrollment => {
            Some(Trigger::EnrollmentRetraction(retraction))
        }
        _ => None,
    }
}
