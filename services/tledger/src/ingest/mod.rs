//! Published facts (docs/contract.md "Publishing facts", docs/architecture.md
//! decision 6): one message from a publishing body becomes exactly one
//! receipt, and exactly one of an accepted fact, a duplicate answer, a
//! parked fact or a quarantined message, all recorded in PostgreSQL before
//! the message is acknowledged.
//!
//! The checks, in order: the publisher of the subject is registered and
//! enabled; the message is JSON and a CloudEvent whose `data` is the fact
//! its `type` names (pointers relative to the message); `source` is the
//! publisher's; the publisher may publish that type; the signature, where
//! the publisher has a key; then the fact is decided as a command is, for
//! the publisher's scope. When the decision or the append refuses it, an
//! earlier acceptance of the same `(source, id)` answers first (same
//! content: `duplicate`, other content: `rejected`); a fact refused only
//! because a stream it names does not exist yet is parked and retried when
//! that stream appears; every other refusal is a rejection.
//!
//! Facts of one stream from one body are decided in the order the body
//! published them: a fact whose stream has an earlier parked fact from the
//! same source is parked behind it, without being decided, and parked facts
//! are retried in the order they were first parked. A message whose content
//! the ledger cannot store is rejected before anything is decided
//! ([`crate::ingest::content`]).
//!
//! Accepted facts are deduplicated for ever by the idempotency record
//! written in the same statement as their events (identity: the
//! publisher's source, key: the CloudEvent id, hash: the fact's content), so
//! a crash between the append and the receipt never records a fact twice.

pub(crate) mod content;
pub mod stream;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tledger_domain::ErrorCode;
use tledger_events::envelope::{verify_published, CloudEvent};
use tledger_events::facts::StreamId;
use tledger_events::{Fact, FactError};
use tledger_store::{
    EventMetadata, Idempotency, ParkedAhead, ParkedFact, QuarantineItem, ReceiptRecord, Store,
    StoreError,
};
use uuid::Uuid;

use crate::commands::{CommandService, Refusal, Refused};
use crate::publishers::{Publisher, PublisherError, Publishers};
use content::{refused_for_content, storable, storable_label};

/// A receipt's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Accepted,
    Duplicate,
    Parked,
    Rejected,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Accepted => "accepted",
            ReceiptStatus::Duplicate => "duplicate",
            ReceiptStatus::Parked => "parked",
            ReceiptStatus::Rejected => "rejected",
        }
    }
}

/// The answer to one published message, in the contract's shape. `source`
/// and `id` are `null` only for a message that did not parse that far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub source: Option<String>,
    pub id: Option<String>,
    pub status: ReceiptStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The publisher the receipt goes to (its receipts subject).
    #[serde(skip)]
    pub publisher_id: String,
}

/// A message as it arrived.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// The publisher named by the subject (`<prefix>.ingest.<publisher_id>`),
    /// or chosen by the importer from the message's source.
    pub publisher_id: String,
    pub message: Bytes,
    pub received_at: DateTime<Utc>,
}

/// What keeps a message from being answered now; it is left
/// unacknowledged and comes again.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the ledger's database is not available: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Publishers(#[from] PublisherError),
    #[error("the fact was recorded but not yet sequenced: {0}")]
    NotSequenced(String),
}

/// The checks and the recording of published facts, shared by the NATS
/// consumer, the parked-fact retries, quarantine resubmission and imports.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    commands: CommandService,
    publishers: Publishers,
}

/// A rejection before anything was recorded.
struct Rejection {
    reason: String,
    field: Option<String>,
}

impl Rejection {
    fn new(reason: impl Into<String>, field: Option<&str>) -> Self {
        Self {
            reason: reason.into(),
            field: field.map(str::to_owned),
        }
    }
}

impl From<FactError> for Rejection {
    fn from(error: FactError) -> Self {
        Self {
            reason: error.message,
            field: Some(error.pointer),
        }
    }
}

/// Why a fact is parked: what it waits for, in its receipt's words.
struct Parking {
    waiting_for: Vec<String>,
    reason: String,
    field: Option<String>,
}

/// What became of a parsed, permitted fact.
enum Outcome {
    Accepted(u64),
    Duplicate(u64),
    Parked(Parking),
    Rejected(Rejection),
}

/// SHA-256 of the fact's content: its type and its data, canonical. The
/// envelope's `time` and signature are not content: a re-send that differs
/// only there is the same fact.
pub fn content_hash(event: &CloudEvent) -> Vec<u8> {
    let canonical = tledger_events::chain::canonical_json(&serde_json::json!({
        "type": event.event_type,
        "data": event.data,
    }))
    .unwrap_or_default();
    Sha256::digest(canonical).to_vec()
}

/// `source` and `id` of a message that is JSON, whatever else is wrong.
fn source_and_id(value: Option<&Value>) -> (Option<String>, Option<String>) {
    let text = |key: &str| {
        value
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    (text("source"), text("id"))
}

/// The message's field that names `stream`, for a reason a person can act on.
pub fn field_naming(data: &Value, stream: &StreamId) -> String {
    let fields: &[&str] = match stream.aggregate {
        tledger_events::AggregateKind::Official => &["official_id"],
        tledger_events::AggregateKind::Enrollment => &["enrollment_id"],
        tledger_events::AggregateKind::Unit => &[
            "nominating_unit_id",
            "parent_id",
            "dissolved_into",
            "unit_id",
        ],
        tledger_events::AggregateKind::Reference => &["name"],
    };
    fields
        .iter()
        .find(|f| data.get(**f).and_then(Value::as_str) == Some(stream.id.as_str()))
        .map(|f| format!("/data/{f}"))
        .unwrap_or_else(|| "/data".to_owned())
}

fn streams_text(streams: &[StreamId]) -> String {
    streams
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Intake {
    pub fn new(store: Store, commands: CommandService, publishers: Publishers) -> Self {
        Self {
            store,
            commands,
            publishers,
        }
    }

    pub fn publishers(&self) -> &Publishers {
        &self.publishers
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Answers one message and records the answer; `Err` leaves it to be
    /// delivered again.
    #[tracing::instrument(level = "debug", name = "ingest.receive", skip_all, fields(publisher_id = %arrival.publisher_id, source = tracing::field::Empty, id = tracing::field::Empty))]
    pub async fn take(&self, arrival: &Arrival) -> Result<Receipt, IntakeError> {
        let value: Option<Value> = serde_json::from_slice(&arrival.message).ok();
        let (source, id) = source_and_id(value.as_ref());
        let publisher = match self.publishers.get(&arrival.publisher_id).await? {
            Some(p) if !p.disabled => p,
            found => {
                let reason = match (found, &source) {
                    (Some(_), _) => format!("publisher {} is disabled", arrival.publisher_id),
                    (None, Some(source)) if arrival.publisher_id.is_empty() => {
                        format!("no publisher is registered with source {source:?}")
                    }
                    (None, _) => format!("no publisher {:?} is registered", arrival.publisher_id),
                };
                return self
                    .reject(arrival, source, id, Rejection::new(reason, None))
                    .await;
            }
        };
        // The strict reading refuses U+0000 anywhere (and duplicate member
        // names) before any reason could quote such a string.
        let (event, fact) = match CloudEvent::parse_published(&arrival.message) {
            Ok(parsed) => parsed,
            Err(error) => return self.reject(arrival, source, id, error.into()).await,
        };
        let (source, id) = (Some(event.source.clone()), Some(event.id.clone()));
        let span = tracing::Span::current();
        span.record("source", event.source.as_str());
        span.record("id", event.id.as_str());
        let checked = value
            .as_ref()
            .ok_or_else(|| Rejection::new("the message is not JSON", Some("")))
            .and_then(|value| permitted(&publisher, &event, value));
        if let Err(rejection) = checked {
            return self.reject(arrival, source, id, rejection).await;
        }
        let stream = fact.stream();
        let outcome = match &stream {
            Some(stream) => match self.behind(&publisher, &event, &fact, stream).await? {
                Some(outcome) => outcome,
                None => self.record(&publisher, &event).await?,
            },
            None => self.record(&publisher, &event).await?,
        };
        match outcome {
            Outcome::Accepted(position) => {
                self.answer(&publisher, &event, ReceiptStatus::Accepted, Some(position))
                    .await
            }
            Outcome::Duplicate(position) => {
                self.answer(&publisher, &event, ReceiptStatus::Duplicate, Some(position))
                    .await
            }
            Outcome::Rejected(rejection) => self.reject(arrival, source, id, rejection).await,
            Outcome::Parked(parking) => {
                self.park(arrival, &publisher, &event, stream.as_ref(), parking)
                    .await
            }
        }
    }

    /// Parked behind the earliest fact parked ahead of it from the same
    /// body on its stream, if there is one; an id accepted before is
    /// answered from its record instead. `None`: nothing holds it back.
    ///
    /// The fact that opens the stream the one ahead waits for (a body's
    /// nomination after its own enrolment of that place) is not held: it is
    /// what the one ahead waits for, and holding it would hold both for
    /// ever.
    #[tracing::instrument(level = "debug", name = "ingest.behind", skip_all, fields(source = %event.source, id = %event.id, stream = %stream))]
    async fn behind(
        &self,
        publisher: &Publisher,
        event: &CloudEvent,
        fact: &Fact,
        stream: &StreamId,
    ) -> Result<Option<Outcome>, IntakeError> {
        let name = stream.to_string();
        let Some(ahead) = self
            .store
            .parked_ahead(&event.source, &name, &event.id)
            .await?
        else {
            return Ok(None);
        };
        if opens_its_stream(fact) && ahead.waiting_for.contains(&name) {
            return Ok(None);
        }
        if let Some(outcome) = self.earlier(publisher, event, &content_hash(event)).await? {
            return Ok(Some(outcome));
        }
        Ok(Some(Outcome::Parked(parked_behind(event, stream, ahead))))
    }

    /// Rejects what is still parked after `deadline` (after one more try:
    /// its stream may have just appeared). Returns the receipts.
    #[tracing::instrument(level = "debug", name = "ingest.expire_parked", skip_all)]
    pub async fn expire_parked(
        &self,
        parked_before: DateTime<Utc>,
        waited: std::time::Duration,
    ) -> Result<Vec<Receipt>, IntakeError> {
        let mut receipts = Vec::new();
        for parked in self.store.parked_before(parked_before, 256).await? {
            let arrival = parked_arrival(&parked);
            let receipt = self.take(&arrival).await?;
            if receipt.status != ReceiptStatus::Parked {
                receipts.push(receipt);
                continue;
            }
            let data = serde_json::from_slice::<Value>(&parked.message)
                .ok()
                .and_then(|m| m.get("data").cloned())
                .unwrap_or(Value::Null);
            let first = parked.waiting_for.first().and_then(|s| stream_from_name(s));
            let rejection = Rejection {
                reason: format!(
                    "waited {} for {}, which never appeared; publish what it refers to, then send this fact again",
                    humanise(waited),
                    parked.waiting_for.join(", ")
                ),
                field: Some(first.map_or("/data".into(), |s| field_naming(&data, &s))),
            };
            receipts.push(
                self.reject(
                    &arrival,
                    Some(parked.source.clone()),
                    Some(parked.id.clone()),
                    rejection,
                )
                .await?,
            );
        }
        Ok(receipts)
    }

    /// Retries the parked facts whose streams now exist. Returns the
    /// receipts of those that moved on.
    #[tracing::instrument(level = "debug", name = "ingest.retry_parked", skip_all)]
    pub async fn retry_parked(&self) -> Result<Vec<Receipt>, IntakeError> {
        let mut receipts = Vec::new();
        for parked in self.store.parked_ready(256).await? {
            let receipt = self.take(&parked_arrival(&parked)).await?;
            if receipt.status != ReceiptStatus::Parked {
                receipts.push(receipt);
            }
        }
        Ok(receipts)
    }

    #[tracing::instrument(level = "debug", name = "ingest.admit", skip_all, fields(publisher_id = %publisher.id, source = %event.source, id = %event.id, fact_type = %event.event_type))]
    async fn record(
        &self,
        publisher: &Publisher,
        event: &CloudEvent,
    ) -> Result<Outcome, IntakeError> {
        let hash = content_hash(event);
        let fact_type: tledger_events::FactType = match event.event_type.parse() {
            Ok(t) => t,
            Err(e) => {
                return Ok(Outcome::Rejected(Rejection::new(
                    format!("{e}"),
                    Some("/type"),
                )))
            }
        };
        // An id accepted before is found when the decision or the append
        // refuses it (the idempotency record is written with the events):
        // a fresh fact, the common case, costs no look-up.
        let metadata = EventMetadata {
            publisher: event.source.clone(),
            actor: format!("publisher:{}", publisher.id),
            command_id: Some(event.id.clone()),
            correlation_id: None,
            causation_id: None,
        };
        let idempotency = Idempotency {
            token_id: publisher.dedup_id,
            key: event.id.clone(),
            command: fact_type.as_str().to_owned(),
            request_hash: hash.clone(),
        };
        let caller = publisher.caller();
        match self
            .commands
            .record_fact(
                &caller,
                fact_type,
                &event.data,
                &metadata,
                Some(idempotency),
            )
            .await
        {
            Ok(events) => Ok(Outcome::Accepted(first_position(&events))),
            Err(Refused::After(refusal)) => Err(IntakeError::NotSequenced(refusal.message)),
            Err(Refused::Before(refusal)) => self.refused(publisher, event, &hash, refusal).await,
            Err(Refused::Store(error)) => match refused_for_content(&error) {
                Some(reason) => match self.earlier(publisher, event, &hash).await? {
                    Some(outcome) => Ok(outcome),
                    None => Ok(Outcome::Rejected(Rejection::new(reason, None))),
                },
                None => Err(IntakeError::Store(error)),
            },
        }
    }

    /// The answer for an id accepted before, if it was.
    #[tracing::instrument(level = "debug", name = "ingest.earlier", skip_all, fields(source = %event.source, id = %event.id))]
    async fn earlier(
        &self,
        publisher: &Publisher,
        event: &CloudEvent,
        hash: &[u8],
    ) -> Result<Option<Outcome>, IntakeError> {
        let Some(prior) = self
            .store
            .prior_request(publisher.dedup_id, &event.id)
            .await?
        else {
            return Ok(None);
        };
        if prior.request_hash != hash {
            return Ok(Some(Outcome::Rejected(Rejection::new(
                format!(
                    "id {:?} was accepted before from {} with other content; the first is kept: \
                     publish a new fact under a new id (or retract the first)",
                    event.id, event.source
                ),
                Some("/id"),
            ))));
        }
        let positions = self.store.positions(&prior.event_ids).await?;
        let Some(position) = prior
            .event_ids
            .iter()
            .filter_map(|id| positions.get(id))
            .min()
            .copied()
        else {
            return Err(IntakeError::NotSequenced(format!(
                "id {:?} is recorded and waits for its position",
                event.id
            )));
        };
        // A fact whose first receipt was never issued (the service stopped
        // between recording it and answering, or between accepting a parked
        // fact and answering) is answered as accepted. A later rejection of
        // other content under the id does not make the fact unanswered.
        let answered = self
            .store
            .receipt(&event.source, &event.id)
            .await?
            .is_some_and(|r| r.status != "parked");
        Ok(Some(if answered {
            Outcome::Duplicate(position)
        } else {
            Outcome::Accepted(position)
        }))
    }

    /// A refusal of the decision or the append: the earlier answer when
    /// the id was accepted before; parked when it names a stream that does
    /// not exist yet; otherwise rejected.
    #[tracing::instrument(level = "debug", name = "ingest.refused", skip_all, fields(source = %event.source, id = %event.id, code = ?refusal.code))]
    async fn refused(
        &self,
        publisher: &Publisher,
        event: &CloudEvent,
        hash: &[u8],
        refusal: Refusal,
    ) -> Result<Outcome, IntakeError> {
        if refusal.code == ErrorCode::NotReady {
            return Err(IntakeError::NotSequenced(refusal.message));
        }
        // The same id accepted before (a repeat, a redelivery, another
        // content) is answered from its record, whatever the decision said.
        if let Some(outcome) = self.earlier(publisher, event, hash).await? {
            return Ok(outcome);
        }
        if refusal.code == ErrorCode::NotFound {
            let fact = match event.event_type.parse() {
                Ok(t) => tledger_events::Fact::from_data(t, &event.data),
                Err(_) => return Ok(Outcome::Rejected(rejection_of(refusal))),
            };
            if let Ok(fact) = fact {
                let referenced = fact.referenced_streams();
                let names: Vec<String> = referenced.iter().map(ToString::to_string).collect();
                let existing = self.store.existing_streams(&names).await?;
                let missing: Vec<StreamId> = referenced
                    .into_iter()
                    .filter(|s| !existing.contains(&s.to_string()))
                    .collect();
                if !missing.is_empty() {
                    return Ok(Outcome::Parked(Parking {
                        waiting_for: missing.iter().map(ToString::to_string).collect(),
                        reason: format!(
                            "waiting for {} (not recorded yet); retried when it appears",
                            streams_text(&missing)
                        ),
                        field: missing.first().map(|s| field_naming(&event.data, s)),
                    }));
                }
            }
        }
        Ok(Outcome::Rejected(rejection_of(refusal)))
    }

    #[tracing::instrument(level = "debug", name = "ingest.answer", skip_all, fields(source = %event.source, id = %event.id, status = status.as_str(), position = ?position))]
    async fn answer(
        &self,
        publisher: &Publisher,
        event: &CloudEvent,
        status: ReceiptStatus,
        position: Option<u64>,
    ) -> Result<Receipt, IntakeError> {
        let receipt = Receipt {
            source: Some(event.source.clone()),
            id: Some(event.id.clone()),
            status,
            reason: None,
            field: None,
            position,
            publisher_id: publisher.id.to_string(),
        };
        if let Some(record) = receipt_record(&receipt) {
            self.store.record_receipt(&record).await?;
        }
        Ok(receipt)
    }

    #[tracing::instrument(level = "debug", name = "ingest.quarantine", skip_all, fields(publisher_id = %arrival.publisher_id, source = ?source, id = ?id))]
    async fn reject(
        &self,
        arrival: &Arrival,
        source: Option<String>,
        id: Option<String>,
        rejection: Rejection,
    ) -> Result<Receipt, IntakeError> {
        let receipt = Receipt {
            source: source.clone(),
            id: id.clone(),
            status: ReceiptStatus::Rejected,
            reason: Some(rejection.reason.clone()),
            field: rejection.field.clone(),
            position: None,
            publisher_id: arrival.publisher_id.clone(),
        };
        // A source or id PostgreSQL cannot hold is answered on NATS only:
        // no receipt is kept under it, and the item keeps the message alone.
        let labels_storable = [&source, &id]
            .iter()
            .all(|l| l.as_deref().is_none_or(storable));
        let mut item = QuarantineItem {
            // The same message rejected for the same reason is one item,
            // also when it is delivered again after a crash.
            item_id: quarantine_id(arrival, &rejection.reason),
            publisher_id: storable_label(&arrival.publisher_id),
            source: source.filter(|_| labels_storable),
            id: id.filter(|_| labels_storable),
            received_at: arrival.received_at,
            reason: rejection.reason,
            field: rejection.field,
            status: "quarantined".into(),
            message: arrival.message.to_vec(),
            resolved_by: None,
            resolved_note: None,
            resolved_at: None,
        };
        let record = receipt_record(&receipt).filter(|_| labels_storable);
        match self.store.quarantine(&item, record.as_ref()).await {
            Ok(()) => Ok(receipt),
            // Still refused for what it holds: keep the message (bytes, which
            // PostgreSQL always takes) under labels it can store, so that it
            // is answered and does not come again for ever.
            Err(error) if refused_for_content(&error).is_some() => {
                item.source = None;
                item.id = None;
                item.reason = storable_label(&item.reason);
                item.field = item.field.as_deref().map(storable_label);
                self.store.quarantine(&item, None).await?;
                Ok(receipt)
            }
            Err(error) => Err(error.into()),
        }
    }

    #[tracing::instrument(level = "debug", name = "ingest.park", skip_all, fields(source = %event.source, id = %event.id, stream = ?stream.map(ToString::to_string)))]
    async fn park(
        &self,
        arrival: &Arrival,
        publisher: &Publisher,
        event: &CloudEvent,
        stream: Option<&StreamId>,
        parking: Parking,
    ) -> Result<Receipt, IntakeError> {
        let receipt = Receipt {
            source: Some(event.source.clone()),
            id: Some(event.id.clone()),
            status: ReceiptStatus::Parked,
            reason: Some(parking.reason),
            field: parking.field,
            position: None,
            publisher_id: publisher.id.to_string(),
        };
        let parked = ParkedFact {
            source: event.source.clone(),
            id: event.id.clone(),
            publisher_id: publisher.id.to_string(),
            message: arrival.message.to_vec(),
            waiting_for: parking.waiting_for,
            parked_at: arrival.received_at,
            stream: stream.map(ToString::to_string),
        };
        let Some(record) = receipt_record(&receipt) else {
            return Ok(receipt);
        };
        self.store.park(&parked, &record).await?;
        Ok(receipt)
    }
}

/// The checks that need no database: source, type, signature.
fn permitted(publisher: &Publisher, event: &CloudEvent, value: &Value) -> Result<(), Rejection> {
    if event.source != publisher.source {
        return Err(Rejection::new(
            format!(
                "forbidden: source {:?} is not the source registered for publisher {} ({:?})",
                event.source, publisher.id, publisher.source
            ),
            Some("/source"),
        ));
    }
    let fact_type = event
        .event_type
        .parse::<tledger_events::FactType>()
        .map_err(|e| Rejection::new(format!("{e}"), Some("/type")))?;
    if !publisher.may_publish(fact_type) {
        return Err(Rejection::new(
            format!(
                "forbidden: publisher {} may not publish {} facts",
                publisher.id,
                fact_type.as_str()
            ),
            Some("/type"),
        ));
    }
    if let Some(key) = &publisher.key {
        verify_published(value, key)?;
    }
    Ok(())
}

/// Whether the fact is the first of its stream: the one that opens it.
fn opens_its_stream(fact: &Fact) -> bool {
    matches!(
        fact,
        Fact::TrainingNominated(_) | Fact::OfficialRegistered(_) | Fact::UnitRegistered(_)
    )
}

/// Parked behind `ahead` without being decided. It waits for what `ahead`
/// waits for: when that appears, both are retried, `ahead` first; when
/// `ahead` is rejected for its time, this one is decided on its own (and
/// waits, if it must, until its own time is up).
fn parked_behind(event: &CloudEvent, stream: &StreamId, ahead: ParkedAhead) -> Parking {
    Parking {
        reason: format!(
            "waiting behind {:?}, an earlier fact of {stream} from this body that is parked \
             (waiting for {}); decided after it, in the order published",
            ahead.id,
            ahead.waiting_for.join(", ")
        ),
        waiting_for: ahead.waiting_for,
        field: Some(field_naming(&event.data, stream)),
    }
}

fn rejection_of(refusal: Refusal) -> Rejection {
    let reason = match refusal.code {
        ErrorCode::Forbidden => format!("forbidden: {}", refusal.message),
        _ => refusal.message,
    };
    Rejection {
        reason,
        // The decision's pointers are relative to the fact's data.
        field: refusal.field.map(|f| format!("/data{f}")),
    }
}

fn first_position(events: &[Value]) -> u64 {
    events
        .iter()
        .filter_map(|e| e.get("position").and_then(Value::as_u64))
        .min()
        .unwrap_or(0)
}

fn receipt_record(receipt: &Receipt) -> Option<ReceiptRecord> {
    Some(ReceiptRecord {
        source: receipt.source.clone()?,
        id: receipt.id.clone()?,
        publisher_id: receipt.publisher_id.clone(),
        status: receipt.status.as_str().to_owned(),
        reason: receipt.reason.clone(),
        field: receipt.field.clone(),
        position: receipt.position,
    })
}

fn quarantine_id(arrival: &Arrival, reason: &str) -> Uuid {
    let mut digest = Sha256::new();
    digest.update(arrival.publisher_id.as_bytes());
    digest.update([0]);
    digest.update(&arrival.message);
    digest.update([0]);
    digest.update(reason.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.finalize()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn parked_arrival(parked: &ParkedFact) -> Arrival {
    Arrival {
        publisher_id: parked.publisher_id.clone(),
        message: Bytes::from(parked.message.clone()),
        received_at: parked.parked_at,
    }
}

fn stream_from_name(name: &str) -> Option<StreamId> {
    let (kind, id) = name.split_once('-')?;
    let aggregate = tledger_events::AggregateKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == kind)?;
    Some(StreamId {
        aggregate,
        id: id.to_owned(),
    })
}

fn humanise(waited: std::time::Duration) -> String {
    let s = waited.as_secs();
    match s {
        s if s % 3600 == 0 && s >= 3600 => format!("{} hours", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tledger_events::AggregateKind;

    #[test]
    fn the_field_named_is_the_one_holding_the_missing_stream() {
        let data =
            json!({"enrollment_id": "e-1", "official_id": "o-1", "nominating_unit_id": "u-1"});
        let official = StreamId {
            aggregate: AggregateKind::Official,
            id: "o-1".into(),
        };
        let unit = StreamId {
            aggregate: AggregateKind::Unit,
            id: "u-1".into(),
        };
        assert_eq!(field_naming(&data, &official), "/data/official_id");
        assert_eq!(field_naming(&data, &unit), "/data/nominating_unit_id");
        assert_eq!(
            stream_from_name("unit-dai-loc-dai-an").map(|s| s.id),
            Some("dai-loc-dai-an".into())
        );
    }

    #[test]
    fn content_is_the_type_and_the_data_not_the_envelope() {
        let message = |time: &str, date: &str| -> CloudEvent {
            serde_json::from_value(json!({
                "specversion": "1.0", "id": "x", "source": "/s", "type": "training.enrolled.v1",
                "time": time, "data": {"enrollment_id": "e", "effective_date": date}
            }))
            .expect("event")
        };
        let a = content_hash(&message("2011-01-01T00:00:00Z", "2011-01-01"));
        let b = content_hash(&message("2012-01-01T00:00:00Z", "2011-01-01"));
        let c = content_hash(&message("2011-01-01T00:00:00Z", "2011-01-02"));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_refusal_for_the_data_points_into_the_message() {
        let refusal = Refusal {
            code: ErrorCode::Conflict,
            message: "illegal".into(),
            field: Some("/effective_date".into()),
        };
        let rejection = rejection_of(refusal);
        assert_eq!(rejection.field.as_deref(), Some("/data/effective_date"));
        assert_eq!(humanise(std::time::Duration::from_secs(86_400)), "24 hours");
        assert_eq!(humanise(std::time::Duration::from_secs(2)), "2 seconds");
    }
}
