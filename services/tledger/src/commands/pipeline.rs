//! The command pipeline: one handler behind HTTP and NATS (docs/contract.md,
//! Commands).
//!
//! A command is checked in the contract's order: 401 (token), 404 (unknown
//! command), 403 (role), 400 (JSON shape), 404 (referenced stream missing),
//! 403 (unit scope), 422 (values, reference data), 409 (rules, concurrency)
//! (docs/adr/0006-command-pipeline-and-error-order.md). Look-ups happen
//! before the domain decides (docs/adr/0002-look-ups-travel-in-commands.md);
//! the events and the idempotency record are appended in one statement; a
//! concurrent write to the same stream is retried a bounded number of times;
//! the answer waits until the sequencer has given the events their
//! positions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tledger_domain::{ErrorCode, IntoFact};
use tledger_events::{AggregateKind, Fact, FactError, FactType};
use tledger_store::{
    Append, AppendError, EventMetadata, Idempotency, NewEvent, Sequenced, Store, StoreError,
};
use tokio::sync::{broadcast, Notify};
use tracing::Instrument;
use uuid::Uuid;

use super::reference_publication::Taxonomies;
use super::refusal::{Refusal, Refused};
use super::scope::check_role;
use super::unit::load_unit_tree;
use crate::access::{Access, Caller};
use crate::admission::{
    check_header, check_publishable, CORRELATION_HEADER, DEFAULT_MAX_PAYLOAD, IDEMPOTENCY_HEADER,
    MAX_CORRELATION_ID, MAX_IDEMPOTENCY_KEY,
};
use crate::relay::published_size;
use crate::Prefix;
use tledger_events::unit_tree::UnitTree;

/// How often a command is re-decided after another writer moved its stream.
pub(super) const MAX_ATTEMPTS: usize = 5;
/// How long an answer waits for the sequencer.
const SEQUENCING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cached unit tree serves scope checks: a re-parenting recorded
/// by another process is seen within this time (this process's own unit
/// commands refresh it at once).
const UNIT_TREE_TTL: Duration = Duration::from_secs(5);

/// The command names of the contract and the fact each one records.
pub const COMMANDS: &[(&str, FactType)] = &[
    ("publish_reference", FactType::ReferencePublished),
    ("register_unit", FactType::UnitRegistered),
    ("reorganise_unit", FactType::UnitReorganised),
    ("register_official", FactType::OfficialRegistered),
    ("record_qualification", FactType::QualificationRecorded),
    ("assign_position", FactType::PositionAssigned),
    ("plan", FactType::Planned),
    ("rate", FactType::Rated),
    ("record_leaving", FactType::Left),
    ("nominate", FactType::TrainingNominated),
    ("enroll", FactType::TrainingEnrolled),
    ("complete", FactType::TrainingCompleted),
    ("fail", FactType::TrainingFailed),
    ("withdraw", FactType::TrainingWithdrawn),
    ("cancel", FactType::TrainingCancelled),
    ("retract", FactType::FactRetracted),
];

/// A command as an adapter received it.
#[derive(Clone, Debug, Default)]
pub struct CommandRequest {
    pub name: String,
    pub body: Bytes,
    /// The bearer token (HTTP `Authorization`, NATS header of the same name).
    pub bearer: Option<String>,
    /// HTTP `Idempotency-Key`, NATS `Nats-Msg-Id`.
    pub idempotency_key: Option<String>,
    pub correlation_id: Option<String>,
}

/// The answer: an HTTP status and the contract's JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandReply {
    pub status: u16,
    pub body: Value,
}

/// One recorded event as the success body lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Recorded {
    id: Uuid,
    event_type: String,
    stream: String,
    version: u64,
}

/// The command handler shared by the HTTP and NATS adapters.
#[derive(Clone)]
pub struct CommandService {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// The unit tree, cached: units change rarely, and a command that
    /// needs a unit the cache lacks reloads it.
    pub(super) unit_tree: tokio::sync::RwLock<Option<(Arc<UnitTree>, std::time::Instant)>>,
    /// The position taxonomies as published, kept until reference data
    /// change.
    pub(super) taxonomies: tokio::sync::RwLock<Taxonomies>,
    pub(super) store: Store,
    pub(super) access: Access,
    pub(super) prefix: Prefix,
    pub(super) wake: Arc<Notify>,
    pub(super) sequenced: broadcast::Sender<Arc<Sequenced>>,
    /// The NATS server's `max_payload`: every recorded fact must fit it
    /// once wrapped for JetStream ([`crate::admission::check_publishable`]).
    pub(super) max_payload: AtomicUsize,
}

/// What a decision produced: the append to make.
pub(super) struct Decision {
    pub(super) append: Append,
}

pub(super) fn request_hash(name: &str, body: &[u8]) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(name.as_bytes());
    digest.update(b"\n");
    digest.update(body);
    digest.finalize().to_vec()
}

/// Runs a cqrs-es aggregate's `handle` on a copy of its state.
pub(super) async fn decide<A>(aggregate: &A, command: A::Command) -> Result<Vec<A::Event>, A::Error>
where
    A: Aggregate<Services = ()> + Clone,
{
    let mut state = aggregate.clone();
    let sink = EventSink::default();
    state.handle(command, &(), &sink).await?;
    Ok(sink.collect().await)
}

/// Whether the events to answer for were appended by this request, after
/// it subscribed to the sequencer's announcements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

impl CommandService {
    pub fn new(
        store: Store,
        access: Access,
        prefix: Prefix,
        wake: Arc<Notify>,
        sequenced: broadcast::Sender<Arc<Sequenced>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                unit_tree: tokio::sync::RwLock::new(None),
                taxonomies: tokio::sync::RwLock::default(),
                store,
                access,
                prefix,
                wake,
                sequenced,
                max_payload: AtomicUsize::new(DEFAULT_MAX_PAYLOAD),
            }),
        }
    }

    /// Sets the `max_payload` facts must fit once wrapped (the NATS
    /// server's, read at start; 0, a server that did not say, keeps 1 MiB).
    pub fn set_max_payload(&self, bytes: usize) {
        let bytes = if bytes == 0 {
            DEFAULT_MAX_PAYLOAD
        } else {
            bytes
        };
        self.inner.max_payload.store(bytes, Ordering::Relaxed);
    }

    /// The `max_payload` facts must fit once wrapped.
    pub fn max_payload(&self) -> usize {
        self.inner.max_payload.load(Ordering::Relaxed)
    }

    pub fn prefix(&self) -> &Prefix {
        &self.inner.prefix
    }

    pub fn access(&self) -> &Access {
        &self.inner.access
    }

    /// Handles one command and gives the answer to send back.
    #[tracing::instrument(skip_all, fields(command = %request.name))]
    pub async fn execute(&self, request: CommandRequest) -> CommandReply {
        match self
            .inner
            .access
            .authenticate(request.bearer.as_deref())
            .await
        {
            Ok(caller) => self.execute_as(&caller, request).await,
            Err(error) => Refusal::from(error).reply(),
        }
    }

    /// Handles a command for a caller already known (in-process callers such
    /// as the demo seeding and imports; adapters use [`Self::execute`]).
    pub async fn execute_as(&self, caller: &Caller, request: CommandRequest) -> CommandReply {
        let started = std::time::Instant::now();
        let reply = match self.try_execute(caller, &request).await {
            Ok(events) => CommandReply {
                status: 201,
                body: json!({ "events": events }),
            },
            Err(refusal) => refusal.reply(),
        };
        metrics::counter!("tledger_commands_total", "command" => request.name.clone(), "status" => reply.status.to_string()).increment(1);
        metrics::histogram!("tledger_command_seconds").record(started.elapsed().as_secs_f64());
        reply
    }

    async fn try_execute(
        &self,
        caller: &Caller,
        request: &CommandRequest,
    ) -> Result<Vec<Value>, Refusal> {
        let fact_type = COMMANDS
            .iter()
            .find(|(name, _)| *name == request.name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NotFound,
                    format!("unknown command {:?}", request.name),
                )
            })?;
        check_role(caller, fact_type)?;
        // Stored header fields, checked with the body's shape (400).
        if let Some(key) = &request.idempotency_key {
            check_header(IDEMPOTENCY_HEADER, key, MAX_IDEMPOTENCY_KEY)?;
        }
        if let Some(correlation) = &request.correlation_id {
            check_header(CORRELATION_HEADER, correlation, MAX_CORRELATION_ID)?;
        }

        let hash = request_hash(&request.name, &request.body);
        match self.record(caller, request, fact_type, &hash).await {
            Ok(answer) => Ok(answer),
            // A replay is refused where the first request was accepted (its
            // stream has moved on): the idempotency record decides. Looking
            // it up only when refused saves a round trip on every command;
            // the answers are those of ADR 6's order.
            Err(Refused::Before(refusal)) => match &request.idempotency_key {
                Some(key) => match self.prior_answer(caller, key, &request.name, &hash).await? {
                    Some(answer) => Ok(answer),
                    None => Err(refusal),
                },
                None => Err(refusal),
            },
            Err(Refused::After(refusal)) => Err(refusal),
            // `record` answers a failed append as refused before appending.
            Err(Refused::Store(e)) => Err(Refusal::from(e)),
        }
    }

    /// Parses, decides and appends; the answer waits for the positions.
    async fn record(
        &self,
        caller: &Caller,
        request: &CommandRequest,
        fact_type: FactType,
        hash: &[u8],
    ) -> Result<Vec<Value>, Refused> {
        // Duplicate member names and U+0000 are malformed here, before
        // anything is looked up or stored (see `json_text`).
        // A body that is not JSON at all names no member: no `field`, as the
        // error table has it.
        let value = tledger_events::json_text::parse(&request.body, "body").map_err(|e| {
            if e.pointer.is_empty() {
                Refusal::new(ErrorCode::Malformed, e.message)
            } else {
                Refusal::from(e)
            }
        })?;
        let metadata = EventMetadata {
            publisher: format!("/commands/{}", caller.name),
            actor: caller.name.clone(),
            command_id: Some(Uuid::now_v7().to_string()),
            correlation_id: request.correlation_id.clone(),
            causation_id: None,
        };
        let idempotency = request.idempotency_key.as_ref().map(|key| Idempotency {
            token_id: caller.token_id,
            key: key.clone(),
            command: request.name.clone(),
            request_hash: hash.to_vec(),
        });
        self.record_fact(caller, fact_type, &value, &metadata, idempotency)
            .await
            .map_err(|refused| match refused {
                Refused::Store(e) => Refused::Before(Refusal::from(e)),
                other => other,
            })
    }

    /// Decides one fact's data for a caller and appends what it records,
    /// under `metadata` and with the idempotency record if any; the answer
    /// waits for the positions. Commands and published facts both end here.
    #[tracing::instrument(level = "debug", name = "command.record", skip_all, fields(fact_type = %fact_type))]
    pub(crate) async fn record_fact(
        &self,
        caller: &Caller,
        fact_type: FactType,
        value: &Value,
        metadata: &EventMetadata,
        idempotency: Option<Idempotency>,
    ) -> Result<Vec<Value>, Refused> {
        let store = &self.inner.store;
        let shape = Fact::shape_only(fact_type, value).map_err(Refusal::from)?;
        // With the door's bounds: what a new fact may hold, not what a
        // recorded one is read as.
        let parsed = Fact::admit(fact_type, value);

        // Subscribed before appending, so no announcement of ours is missed.
        let mut announced = self.inner.sequenced.subscribe();
        for _ in 0..MAX_ATTEMPTS {
            let Decision { mut append } = self.decide(caller, &shape, &parsed).await?;
            for event in &mut append.events {
                event.metadata = metadata.clone();
            }
            self.check_publishable(&append)?;
            append.idempotency = idempotency.clone();
            let appended = store.append(&append).instrument(tracing::debug_span!(
                "command.append",
                aggregate = %append.aggregate,
                aggregate_id = %append.aggregate_id,
                expected_version = append.expected_version,
                events = append.events.len(),
            ));
            match appended.await {
                Ok(()) => {
                    self.inner.wake.notify_one();
                    if append.aggregate == AggregateKind::Unit {
                        *self.inner.unit_tree.write().await = None;
                    }
                    let recorded: Vec<Recorded> = append
                        .events
                        .iter()
                        .enumerate()
                        .map(|(i, e)| Recorded {
                            id: e.event_id,
                            event_type: e.fact.fact_type().as_str().to_owned(),
                            stream: format!("{}-{}", append.aggregate, append.aggregate_id),
                            version: append.expected_version + 1 + i as u64,
                        })
                        .collect();
                    return self
                        .answer(recorded, &mut announced, Fresh::Yes)
                        .await
                        .map_err(Refused::After);
                }
                Err(AppendError::VersionConflict { .. }) => continue,
                // Another request under this key (or this request's first
                // attempt) recorded first: the idempotency record decides.
                Err(AppendError::IdempotencyKeyTaken(_)) => {
                    return Err(Refused::Before(Refusal::new(
                        ErrorCode::Conflict,
                        "the idempotency key is in use",
                    )))
                }
                Err(AppendError::Store(e)) => return Err(Refused::Store(e)),
            }
        }
        Err(Refusal::new(
            ErrorCode::Conflict,
            format!("the stream kept changing: gave up after {MAX_ATTEMPTS} attempts; retry"),
        )
        .into())
    }

    /// 413 unless every event of `append`, wrapped as the relay will wrap
    /// it, fits the server's `max_payload`: a recorded fact that cannot be
    /// published would stop publication for good. Position and time are
    /// not known yet; the widest ones are assumed.
    fn check_publishable(&self, append: &Append) -> Result<(), Refusal> {
        let max_payload = self.max_payload();
        for (i, event) in append.events.iter().enumerate() {
            let as_published = tledger_store::LedgerEvent {
                position: u64::MAX,
                event_id: event.event_id,
                aggregate_type: append.aggregate.as_str().to_owned(),
                aggregate_id: append.aggregate_id.clone(),
                version: append.expected_version + 1 + i as u64,
                event_type: event.fact.fact_type().as_str().to_owned(),
                effective_date: event.fact.effective_date().naive(),
                recorded_at: chrono::Utc::now(),
                data: event.fact.data(),
                metadata: Value::Null,
                publisher: event.metadata.publisher.clone(),
                correlation_id: event.metadata.correlation_id.clone(),
                hash: Vec::new(),
            };
            let size = published_size(&self.inner.prefix, &as_published).map_err(|e| {
                Refusal::new(
                    ErrorCode::Malformed,
                    format!("the fact cannot be encoded for JetStream: {e}"),
                )
            })?;
            check_publishable(size, max_payload)?;
        }
        Ok(())
    }

    /// The first answer to a request already made with this key, if any; a
    /// different body under the same key is a conflict.
    #[tracing::instrument(level = "debug", name = "command.prior_answer", skip_all, fields(command = %name))]
    pub(crate) async fn prior_answer(
        &self,
        caller: &Caller,
        key: &str,
        name: &str,
        hash: &[u8],
    ) -> Result<Option<Vec<Value>>, Refusal> {
        let Some(prior) = self.inner.store.prior_request(caller.token_id, key).await? else {
            return Ok(None);
        };
        if prior.command != name || prior.request_hash != hash {
            return Err(Refusal {
                code: ErrorCode::Conflict,
                message: format!(
                    "idempotency key {key:?} was used for another request ({}); use a new key",
                    prior.command
                ),
                field: None,
            });
        }
        let located = self.inner.store.locate_many(&prior.event_ids).await?;
        let recorded = located
            .into_iter()
            .map(|(id, l)| Recorded {
                id,
                event_type: l.event_type,
                stream: format!("{}-{}", l.aggregate_type, l.aggregate_id),
                version: l.version,
            })
            .collect();
        let mut announced = self.inner.sequenced.subscribe();
        self.answer(recorded, &mut announced, Fresh::No)
            .await
            .map(Some)
    }

    /// The success body, once every event has its position.
    #[tracing::instrument(level = "debug", name = "command.answer", skip_all, fields(events = recorded.len()))]
    async fn answer(
        &self,
        recorded: Vec<Recorded>,
        announced: &mut broadcast::Receiver<Arc<Sequenced>>,
        fresh: Fresh,
    ) -> Result<Vec<Value>, Refusal> {
        let ids: Vec<Uuid> = recorded.iter().map(|r| r.id).collect();
        let positions = self.wait_for_positions(&ids, announced, fresh).await?;
        Ok(recorded
            .into_iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "type": r.event_type,
                    "stream": r.stream,
                    "version": r.version,
                    "position": positions.get(&r.id),
                })
            })
            .collect())
    }

    async fn wait_for_positions(
        &self,
        ids: &[Uuid],
        announced: &mut broadcast::Receiver<Arc<Sequenced>>,
        fresh: Fresh,
    ) -> Result<HashMap<Uuid, u64>, Refusal> {
        let deadline = tokio::time::Instant::now() + SEQUENCING_TIMEOUT;
        let mut found: HashMap<Uuid, u64> = HashMap::with_capacity(ids.len());
        // A replay's events may have been sequenced before we subscribed;
        // fresh ones were appended after.
        if fresh == Fresh::No {
            found.extend(self.inner.store.positions(ids).await?);
        }
        while found.len() < ids.len() {
            tokio::select! {
                batch = announced.recv() => match batch {
                    Ok(batch) => found.extend(batch.events.iter().filter(|(id, _)| ids.contains(id)).copied()),
                    Err(_) => found.extend(self.inner.store.positions(ids).await?),
                },
                // Another process may run the sequencer: look, now and then.
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    found.extend(self.inner.store.positions(ids).await?);
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Refusal::new(
                        ErrorCode::NotReady,
                        "recorded, but not yet given a ledger position (a long transaction holds the sequencer back); retry with the same Idempotency-Key for the positions",
                    ));
                }
            }
        }
        Ok(found)
    }

    /// Look-ups, scope, values and the aggregate's decision for one command:
    /// each use case in the file of its aggregate.
    async fn decide(
        &self,
        caller: &Caller,
        shape: &Fact,
        parsed: &Result<Fact, FactError>,
    ) -> Result<Decision, Refusal> {
        let full = || parsed.clone().map_err(Refusal::from);
        match shape {
            Fact::ReferencePublished(s) => self.publish_reference(s, full).await,
            Fact::UnitRegistered(s) => self.register_unit(caller, s, full).await,
            Fact::UnitReorganised(s) => self.reorganise_unit(caller, s, full).await,
            Fact::OfficialRegistered(s) => self.register_official(caller, s, full).await,
            Fact::QualificationRecorded(_)
            | Fact::PositionAssigned(_)
            | Fact::Planned(_)
            | Fact::Rated(_)
            | Fact::Left(_) => self.record_official_fact(caller, shape, full).await,
            Fact::TrainingNominated(s) => self.nominate(caller, s, full).await,
            Fact::TrainingEnrolled(_)
            | Fact::TrainingCompleted(_)
            | Fact::TrainingFailed(_)
            | Fact::TrainingWithdrawn(_)
            | Fact::TrainingCancelled(_) => self.record_enrollment_step(caller, shape, full).await,
            Fact::FactRetracted(s) => self.retract(caller, s, full).await,
        }
    }

    /// The cached unit tree, reloaded when older than [`UNIT_TREE_TTL`] or
    /// missing one of `needed` (a unit registered since).
    pub(crate) async fn unit_tree(&self, needed: &[&str]) -> Result<Arc<UnitTree>, StoreError> {
        if let Some((tree, loaded)) = self.inner.unit_tree.read().await.as_ref() {
            if loaded.elapsed() < UNIT_TREE_TTL && needed.iter().all(|u| tree.contains(u)) {
                return Ok(tree.clone());
            }
        }
        self.fresh_unit_tree().await
    }

    /// The unit tree as the database holds it now (unit commands decide on
    /// it: a cycle check must not use a stale copy).
    #[tracing::instrument(level = "debug", name = "command.unit_tree", skip_all)]
    pub(super) async fn fresh_unit_tree(&self) -> Result<Arc<UnitTree>, StoreError> {
        let tree = Arc::new(load_unit_tree(&self.inner.store).await?);
        *self.inner.unit_tree.write().await = Some((tree.clone(), std::time::Instant::now()));
        Ok(tree)
    }
}

pub(super) fn decision<E: IntoFact>(
    kind: AggregateKind,
    id: &str,
    version: u64,
    events: Vec<E>,
) -> Decision {
    Decision {
        append: Append {
            aggregate: kind,
            aggregate_id: id.to_owned(),
            expected_version: version,
            events: events
                .into_iter()
                .map(|e| NewEvent {
                    event_id: Uuid::now_v7(),
                    fact: e.into_fact(),
                    metadata: EventMetadata::default(),
                })
                .collect(),
            idempotency: None,
        },
    }
}
