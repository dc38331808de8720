//! Commands: one handler behind HTTP and NATS (CONTRACT.md "Commands").
//!
//! A command is checked in the contract's order: 401 (token), 404 (unknown
//! command), 403 (role), 400 (JSON shape), 404 (referenced stream missing),
//! 403 (unit scope), 422 (values, reference data), 409 (rules, concurrency).
//! Look-ups happen before the domain decides (ADR 2); the events and the
//! idempotency record are appended in one statement; a concurrent write to
//! the same stream is retried a bounded number of times; the answer waits
//! until the sequencer has given the events their positions.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tledger_domain::official::Tenure;
use tledger_domain::policy::{qualification_for_completion, qualification_retraction};
use tledger_domain::{
    ContractError, Enrollment, EnrollmentCommand, EnrollmentError, ErrorCode, IntoFact, Official,
    OfficialCommand, OfficialError, Reference, ReferenceCommand, RetractFact, RetractionError,
    Unit, UnitCommand, UnitError,
};
use tledger_events::facts::FactRetracted;
use tledger_events::{
    AggregateKind, Date, EnrollmentId, Fact, FactError, FactType, OfficialId, UnitId,
};
use tledger_store::{
    Append, AppendError, Cadence, EventMetadata, Idempotency, NewEvent, Sequenced, Store,
    StoreError,
};
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use crate::access::{Access, AccessError, Caller, Role};
use crate::admission::{
    check_header, check_publishable, CORRELATION_HEADER, DEFAULT_MAX_PAYLOAD, IDEMPOTENCY_HEADER,
    MAX_CORRELATION_ID, MAX_IDEMPOTENCY_KEY,
};
use crate::lookups::{load, Hierarchy, Loaded, Taxonomies};
use crate::relay::published_size;
use crate::Prefix;

/// How often a command is re-decided after another writer moved its stream.
const MAX_ATTEMPTS: usize = 5;
/// How long an answer waits for the sequencer.
const SEQUENCING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cached hierarchy serves scope checks: a re-parenting recorded
/// by another process is seen within this time (this process's own unit
/// commands refresh it at once).
const HIERARCHY_TTL: Duration = Duration::from_secs(5);

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

/// A refused command: the contract's error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    fn from_contract(error: &impl ContractError) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
            field: error.field(),
        }
    }

    pub fn reply(&self) -> CommandReply {
        let mut error = json!({"code": self.code.as_str(), "message": self.message});
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        CommandReply {
            status: self.code.http_status(),
            body: json!({ "error": error }),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        // SQLSTATE class 22 (data exception: a NUL in a string, a number out
        // of range) is about a value the request carried, not about the
        // database: a client's mistake that the door should have refused.
        if let StoreError::Database {
            source: sqlx::Error::Database(db),
            ..
        } = &error
        {
            if db.code().is_some_and(|code| code.starts_with("22")) {
                tracing::error!(%error, "a value reached the database unchecked (a bug at the door); refused as malformed");
                return Refusal::new(
                    ErrorCode::Malformed,
                    format!("a value of the request cannot be stored: {}", db.message()),
                );
            }
        }
        tracing::error!(%error, "store error while handling a command");
        Refusal::new(
            ErrorCode::NotReady,
            "the ledger's database is not available; retry later",
        )
    }
}

impl From<FactError> for Refusal {
    fn from(error: FactError) -> Self {
        Refusal::from_contract(&error)
    }
}

impl From<AccessError> for Refusal {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Store(e) => e.into(),
            other => Refusal::new(ErrorCode::Unauthenticated, other.to_string()),
        }
    }
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
    inner: Arc<Inner>,
}

struct Inner {
    /// The unit hierarchy, cached: units change rarely, and a command that
    /// needs a unit the cache lacks reloads it.
    hierarchy: tokio::sync::RwLock<Option<(Arc<Hierarchy>, std::time::Instant)>>,
    /// The position taxonomies as published, kept until reference data
    /// change.
    taxonomies: tokio::sync::RwLock<Taxonomies>,
    store: Store,
    access: Access,
    prefix: Prefix,
    wake: Arc<Notify>,
    sequenced: broadcast::Sender<Arc<Sequenced>>,
    /// The NATS server's `max_payload`: every recorded fact must fit it
    /// once wrapped for JetStream ([`crate::admission::check_publishable`]).
    max_payload: AtomicUsize,
}

/// What a decision produced: the append to make.
struct Decision {
    append: Append,
}

fn request_hash(name: &str, body: &[u8]) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(name.as_bytes());
    digest.update(b"\n");
    digest.update(body);
    digest.finalize().to_vec()
}

/// Runs a cqrs-es aggregate's `handle` on a copy of its state.
async fn decide<A>(aggregate: &A, command: A::Command) -> Result<Vec<A::Event>, A::Error>
where
    A: Aggregate<Services = ()> + Clone,
{
    let mut state = aggregate.clone();
    let sink = EventSink::default();
    state.handle(command, &(), &sink).await?;
    Ok(sink.collect().await)
}

/// A refusal, and whether it came before anything was appended (then an
/// earlier request under the same idempotency key may answer instead).
pub(crate) enum Refused {
    Before(Refusal),
    After(Refusal),
    /// The store failed the append, so nothing was appended. Published
    /// facts tell a refusal of what the fact holds from an outage by the
    /// error itself; commands answer it as a refusal before appending.
    Store(StoreError),
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Refused::Before(refusal)
    }
}

/// Whether the events to answer for were appended by this request, after
/// it subscribed to the sequencer's announcements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

fn wrong_type(expected: &str) -> Refusal {
    Refusal::new(
        ErrorCode::Malformed,
        format!("the body is not a {expected} fact"),
    )
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
                hierarchy: tokio::sync::RwLock::new(None),
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
            match store.append(&append).await {
                Ok(()) => {
                    self.inner.wake.notify_one();
                    if append.aggregate == AggregateKind::Unit {
                        *self.inner.hierarchy.write().await = None;
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

    /// Look-ups, scope, values and the aggregate's decision for one command.
    async fn decide(
        &self,
        caller: &Caller,
        shape: &Fact,
        parsed: &Result<Fact, FactError>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let full = || parsed.clone().map_err(Refusal::from);
        match shape {
            Fact::ReferencePublished(s) => {
                let loaded: Loaded<Reference> =
                    load(store, AggregateKind::Reference, s.name.as_str()).await?;
                let Fact::ReferencePublished(fact) = full()? else {
                    return Err(wrong_type("reference"));
                };
                let events = decide(&loaded.aggregate, ReferenceCommand::Publish(fact))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                Ok(decision(
                    AggregateKind::Reference,
                    s.name.as_str(),
                    loaded.version,
                    events,
                ))
            }
            Fact::UnitRegistered(s) => {
                let hierarchy = self.fresh_hierarchy().await?;
                let parent_registered = s
                    .parent_id
                    .as_ref()
                    .is_none_or(|p| hierarchy.is_registered(p.as_str()));
                if let (Some(parent), false) = (&s.parent_id, parent_registered) {
                    return Err(Refusal::from_contract(&UnitError::UnknownParent(
                        parent.clone(),
                    )));
                }
                match &s.parent_id {
                    Some(parent) => {
                        self.check_scope(caller, &hierarchy, &[parent.as_str()], s.effective_date)?
                    }
                    None => admin_only(caller, "registering a unit without a parent")?,
                }
                let Fact::UnitRegistered(fact) = full()? else {
                    return Err(wrong_type("unit.registered"));
                };
                let loaded: Loaded<Unit> =
                    load(store, AggregateKind::Unit, fact.unit_id.as_str()).await?;
                let id = fact.unit_id.to_string();
                let events = decide(
                    &loaded.aggregate,
                    UnitCommand::Register {
                        fact,
                        parent_registered,
                    },
                )
                .await
                .map_err(|e| Refusal::from_contract(&e))?;
                Ok(decision(AggregateKind::Unit, &id, loaded.version, events))
            }
            Fact::UnitReorganised(s) => {
                let hierarchy = self.fresh_hierarchy().await?;
                let unit = s.unit_id.as_str();
                if !hierarchy.is_registered(unit) {
                    return Err(Refusal::from_contract(&UnitError::UnknownUnit(
                        s.unit_id.clone(),
                    )));
                }
                if let Some(parent) = s
                    .parent_id
                    .as_ref()
                    .filter(|p| !hierarchy.is_registered(p.as_str()))
                {
                    return Err(Refusal::from_contract(&UnitError::UnknownParent(
                        parent.clone(),
                    )));
                }
                if let Some(into) = s
                    .dissolved_into
                    .as_ref()
                    .filter(|u| !hierarchy.is_registered(u.as_str()))
                {
                    return Err(Refusal::from_contract(&UnitError::UnknownReceivingUnit(
                        into.clone(),
                    )));
                }
                let current_parent = hierarchy.parent_on(unit, s.effective_date);
                let mut scope: Vec<&str> = Vec::new();
                match &current_parent {
                    Some(p) => scope.push(p),
                    None => admin_only(caller, "reorganising a unit without a parent")?,
                }
                scope.extend(s.parent_id.as_ref().map(UnitId::as_str));
                scope.extend(s.dissolved_into.as_ref().map(UnitId::as_str));
                self.check_scope(caller, &hierarchy, &scope, s.effective_date)?;
                let Fact::UnitReorganised(fact) = full()? else {
                    return Err(wrong_type("unit.reorganised"));
                };
                let new_parent_line = fact
                    .parent_id
                    .as_ref()
                    .map(|p| hierarchy.line_on(p.as_str(), fact.effective_date))
                    .map(|line| {
                        line.into_iter()
                            .filter_map(|u| UnitId::parse(u).ok())
                            .collect()
                    });
                let loaded: Loaded<Unit> = load(store, AggregateKind::Unit, unit).await?;
                let id = fact.unit_id.to_string();
                let events = decide(
                    &loaded.aggregate,
                    UnitCommand::Reorganise {
                        fact,
                        new_parent_line,
                        dissolved_into_registered: true,
                    },
                )
                .await
                .map_err(|e| Refusal::from_contract(&e))?;
                Ok(decision(AggregateKind::Unit, &id, loaded.version, events))
            }
            Fact::OfficialRegistered(s) => {
                let hierarchy = self.hierarchy(&[s.unit_id.as_str()]).await?;
                if !hierarchy.is_registered(s.unit_id.as_str()) {
                    return Err(Refusal::from_contract(&OfficialError::UnknownUnit(
                        s.unit_id.clone(),
                    )));
                }
                self.check_scope(caller, &hierarchy, &[s.unit_id.as_str()], s.effective_date)?;
                let Fact::OfficialRegistered(fact) = full()? else {
                    return Err(wrong_type("official.registered"));
                };
                let taxonomy =
                    Taxonomies::on(&self.inner.taxonomies, store, fact.effective_date).await?;
                let loaded: Loaded<Official> =
                    load(store, AggregateKind::Official, fact.official_id.as_str()).await?;
                let id = fact.official_id.to_string();
                let events = decide(
                    &loaded.aggregate,
                    OfficialCommand::Register {
                        fact,
                        unit_registered: true,
                        taxonomy,
                    },
                )
                .await
                .map_err(|e| Refusal::from_contract(&e))?;
                Ok(decision(
                    AggregateKind::Official,
                    &id,
                    loaded.version,
                    events,
                ))
            }
            Fact::QualificationRecorded(_)
            | Fact::PositionAssigned(_)
            | Fact::Planned(_)
            | Fact::Rated(_)
            | Fact::Left(_) => self.decide_official_fact(caller, shape, full).await,
            Fact::TrainingNominated(s) => {
                // Two independent reads: in parallel, one round trip of latency.
                let (official, place) = tokio::join!(
                    load::<Official>(store, AggregateKind::Official, s.official_id.as_str()),
                    load::<Enrollment>(store, AggregateKind::Enrollment, s.enrollment_id.as_str()),
                );
                let (official, loaded) = (official?, place?);
                if !official.aggregate.is_registered() {
                    return Err(Refusal::from_contract(&EnrollmentError::UnknownOfficial(
                        s.official_id.clone(),
                    )));
                }
                let hierarchy = self.hierarchy(&[s.nominating_unit_id.as_str()]).await?;
                if !hierarchy.is_registered(s.nominating_unit_id.as_str()) {
                    return Err(Refusal::from_contract(&EnrollmentError::UnknownUnit(
                        s.nominating_unit_id.clone(),
                    )));
                }
                self.check_scope(
                    caller,
                    &hierarchy,
                    &[s.nominating_unit_id.as_str()],
                    s.effective_date,
                )?;
                let Fact::TrainingNominated(fact) = full()? else {
                    return Err(wrong_type("training.nominated"));
                };
                let id = fact.enrollment_id.to_string();
                let tenure: Tenure = official.aggregate.tenure();
                let events = decide(
                    &loaded.aggregate,
                    EnrollmentCommand::Nominate {
                        fact: Box::new(fact),
                        official: Some(tenure),
                        nominating_unit_registered: true,
                    },
                )
                .await
                .map_err(|e| Refusal::from_contract(&e))?;
                Ok(decision(
                    AggregateKind::Enrollment,
                    &id,
                    loaded.version,
                    events,
                ))
            }
            Fact::TrainingEnrolled(_)
            | Fact::TrainingCompleted(_)
            | Fact::TrainingFailed(_)
            | Fact::TrainingWithdrawn(_)
            | Fact::TrainingCancelled(_) => self.decide_enrollment_step(caller, shape, full).await,
            Fact::FactRetracted(s) => self.decide_retraction(caller, s, full).await,
        }
    }

    /// The cached hierarchy, reloaded when older than [`HIERARCHY_TTL`] or
    /// missing one of `needed` (a unit registered since).
    pub(crate) async fn hierarchy(&self, needed: &[&str]) -> Result<Arc<Hierarchy>, StoreError> {
        if let Some((hierarchy, loaded)) = self.inner.hierarchy.read().await.as_ref() {
            if loaded.elapsed() < HIERARCHY_TTL && needed.iter().all(|u| hierarchy.is_registered(u))
            {
                return Ok(hierarchy.clone());
            }
        }
        self.fresh_hierarchy().await
    }

    /// The hierarchy as the database holds it now (unit commands decide on
    /// it: a cycle check must not use a stale copy).
    async fn fresh_hierarchy(&self) -> Result<Arc<Hierarchy>, StoreError> {
        let hierarchy = Arc::new(Hierarchy::load(&self.inner.store).await?);
        *self.inner.hierarchy.write().await = Some((hierarchy.clone(), std::time::Instant::now()));
        Ok(hierarchy)
    }

    /// 403 unless every unit in `units` is within a unit officer's subtree
    /// on `date` (other roles allowed to command have no unit scope).
    fn check_scope(
        &self,
        caller: &Caller,
        hierarchy: &Hierarchy,
        units: &[&str],
        date: Date,
    ) -> Result<(), Refusal> {
        let Some(root) = caller
            .unit_id
            .as_ref()
            .filter(|_| caller.role == Role::UnitOfficer)
        else {
            return Ok(());
        };
        match units.iter().find(|u| !hierarchy.within(u, root.as_str(), date)) {
            None => Ok(()),
            Some(outside) => Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "unit {outside} is outside the scope of {} ({root} and the units below it on {date})",
                    caller.name
                ),
            )),
        }
    }

    async fn decide_official_fact(
        &self,
        caller: &Caller,
        shape: &Fact,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let (official_id, date, new_unit): (&OfficialId, Date, Option<&UnitId>) = match shape {
            Fact::QualificationRecorded(s) => (&s.official_id, s.effective_date, None),
            Fact::PositionAssigned(s) => (&s.official_id, s.effective_date, Some(&s.unit_id)),
            Fact::Planned(s) => (&s.official_id, s.effective_date, None),
            Fact::Rated(s) => (&s.official_id, s.effective_date, None),
            Fact::Left(s) => (&s.official_id, s.effective_date, None),
            _ => return Err(wrong_type("official")),
        };
        let loaded: Loaded<Official> =
            load(store, AggregateKind::Official, official_id.as_str()).await?;
        if !loaded.aggregate.is_registered() {
            return Err(Refusal::from_contract(&OfficialError::UnknownOfficial(
                official_id.clone(),
            )));
        }
        let hierarchy = self
            .hierarchy(&new_unit.map(UnitId::as_str).into_iter().collect::<Vec<_>>())
            .await?;
        if let Some(unit) = new_unit.filter(|u| !hierarchy.is_registered(u.as_str())) {
            return Err(Refusal::from_contract(&OfficialError::UnknownUnit(
                unit.clone(),
            )));
        }
        let mut scope: Vec<&str> = loaded
            .aggregate
            .unit_on(date)
            .map(UnitId::as_str)
            .into_iter()
            .collect();
        scope.extend(new_unit.map(UnitId::as_str));
        self.check_scope(caller, &hierarchy, &scope, date)?;
        let fact = full()?;
        let command = match fact {
            Fact::QualificationRecorded(f) => OfficialCommand::RecordQualification(f),
            Fact::PositionAssigned(f) => OfficialCommand::AssignPosition {
                taxonomy: Taxonomies::on(&self.inner.taxonomies, store, f.effective_date).await?,
                fact: f,
                unit_registered: true,
            },
            Fact::Planned(f) => OfficialCommand::Plan {
                taxonomy: Taxonomies::on(&self.inner.taxonomies, store, f.effective_date).await?,
                fact: f,
            },
            Fact::Rated(f) => OfficialCommand::Rate(f),
            Fact::Left(f) => OfficialCommand::RecordLeaving(f),
            _ => return Err(wrong_type("official")),
        };
        let events = decide(&loaded.aggregate, command)
            .await
            .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Official,
            official_id.as_str(),
            loaded.version,
            events,
        ))
    }

    async fn decide_enrollment_step(
        &self,
        caller: &Caller,
        shape: &Fact,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let (enrollment_id, date): (&EnrollmentId, Date) = match shape {
            Fact::TrainingEnrolled(s) => (&s.enrollment_id, s.effective_date),
            Fact::TrainingCompleted(s) => (&s.enrollment_id, s.effective_date),
            Fact::TrainingFailed(s) | Fact::TrainingWithdrawn(s) | Fact::TrainingCancelled(s) => {
                (&s.enrollment_id, s.effective_date)
            }
            _ => return Err(wrong_type("training")),
        };
        let loaded: Loaded<Enrollment> =
            load(store, AggregateKind::Enrollment, enrollment_id.as_str()).await?;
        let Some(nomination) = loaded.aggregate.nomination() else {
            return Err(Refusal::from_contract(&EnrollmentError::UnknownEnrollment(
                enrollment_id.clone(),
            )));
        };
        if caller.role == Role::UnitOfficer {
            let hierarchy = self.hierarchy(&[]).await?;
            self.check_scope(
                caller,
                &hierarchy,
                &[nomination.nominating_unit_id.as_str()],
                date,
            )?;
        }
        let command = match full()? {
            Fact::TrainingEnrolled(f) => EnrollmentCommand::Enroll(f),
            Fact::TrainingCompleted(f) => EnrollmentCommand::Complete(f),
            Fact::TrainingFailed(f) => EnrollmentCommand::Fail(f),
            Fact::TrainingWithdrawn(f) => EnrollmentCommand::Withdraw(f),
            Fact::TrainingCancelled(f) => EnrollmentCommand::Cancel(f),
            _ => return Err(wrong_type("training")),
        };
        let events = decide(&loaded.aggregate, command)
            .await
            .map_err(|e| Refusal::from_contract(&e))?;
        Ok(decision(
            AggregateKind::Enrollment,
            enrollment_id.as_str(),
            loaded.version,
            events,
        ))
    }

    async fn decide_retraction(
        &self,
        caller: &Caller,
        shape: &FactRetracted,
        full: impl Fn() -> Result<Fact, Refusal>,
    ) -> Result<Decision, Refusal> {
        let store = &self.inner.store;
        let not_found = || Refusal::from_contract(&RetractionError::UnknownEvent(shape.event_id));
        let location = store.locate(shape.event_id).await?.ok_or_else(not_found)?;
        let kind = AggregateKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == location.aggregate_type)
            .ok_or_else(not_found)?;
        let id = location.aggregate_id.as_str();
        let date = shape.effective_date;
        // Scope: the unit the retracted fact belongs to.
        if caller.role == Role::UnitOfficer {
            let hierarchy = self.hierarchy(&[]).await?;
            let unit: Option<String> = match kind {
                AggregateKind::Reference => None,
                AggregateKind::Unit => hierarchy.parent_on(id, date),
                AggregateKind::Official => load::<Official>(store, kind, id)
                    .await?
                    .aggregate
                    .unit_on(date)
                    .map(ToString::to_string),
                AggregateKind::Enrollment => load::<Enrollment>(store, kind, id)
                    .await?
                    .aggregate
                    .nomination()
                    .map(|n| n.nominating_unit_id.to_string()),
            };
            match unit {
                Some(unit) => self.check_scope(caller, &hierarchy, &[unit.as_str()], date)?,
                None => admin_only(caller, "retracting this fact")?,
            }
        }
        let Fact::FactRetracted(fact) = full()? else {
            return Err(wrong_type("fact.retracted"));
        };
        let dependents = match kind {
            AggregateKind::Unit | AggregateKind::Official if location.version == 1 => {
                store.dependents(kind, id).await?
            }
            _ => 0,
        };
        let retract = RetractFact {
            fact,
            target_version: location.version,
            dependents,
        };
        Ok(match kind {
            AggregateKind::Reference => {
                let loaded: Loaded<Reference> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, ReferenceCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
            AggregateKind::Unit => {
                let loaded: Loaded<Unit> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, UnitCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
            AggregateKind::Official => {
                let loaded: Loaded<Official> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, OfficialCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
            AggregateKind::Enrollment => {
                let loaded: Loaded<Enrollment> = load(store, kind, id).await?;
                let events = decide(&loaded.aggregate, EnrollmentCommand::Retract(retract))
                    .await
                    .map_err(|e| Refusal::from_contract(&e))?;
                decision(kind, id, loaded.version, events)
            }
        })
    }
}

fn decision<E: IntoFact>(kind: AggregateKind, id: &str, version: u64, events: Vec<E>) -> Decision {
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

/// 403 unless the role may send this command at all.
fn check_role(caller: &Caller, fact_type: FactType) -> Result<(), Refusal> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::UnitOfficer if fact_type != FactType::ReferencePublished => Ok(()),
        role => Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("a {role} token may not send this command"),
        )),
    }
}

fn admin_only(caller: &Caller, what: &str) -> Result<(), Refusal> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("{what} needs an admin token"),
        ))
    }
}

/// The system identity policies act under (its idempotency keys are its own).
const POLICY_TOKEN: Uuid = Uuid::from_u128(0x706f_6c69_6379_0000_0000_0000_0000_0001);
const POLICY_READER: &str = "qualification-policy";
/// Ledger events the policy reads per batch.
const POLICY_BATCH: u32 = 200;

impl CommandService {
    /// Runs the qualification policy over the ledger in order, from its
    /// checkpoint, until `shutdown`: a completed degree programme records the
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
    pub async fn policy_step(&self) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let after: i64 =
            sqlx::query_scalar("SELECT position FROM reader_checkpoints WHERE reader = $1")
                .bind(POLICY_READER)
                .fetch_optional(store.pool())
                .await
                .map_err(|e| StoreError::Database {
                    context: "reading the policy checkpoint",
                    source: e,
                })?
                .unwrap_or(0);
        let events = store
            .read_ledger(u64::try_from(after).unwrap_or(0), POLICY_BATCH)
            .await?;
        for event in &events {
            match event.event_type.as_str() {
                "training.completed.v1" => self.on_completion(event).await?,
                "fact.retracted.v1" if event.aggregate_type == "enrollment" => {
                    self.on_enrollment_retraction(event).await?
                }
                _ => {}
            }
        }
        // One checkpoint write per batch, committed asynchronously (ADR 8):
        // after a crash the batch is read again, and every effect's
        // idempotency key makes that harmless.
        if let Some(event) = events.last() {
            sqlx::query(
                "WITH lazily AS (SELECT set_config('synchronous_commit', 'off', true)) \
                 INSERT INTO reader_checkpoints (reader, position) SELECT $1, $2 FROM lazily \
                 ON CONFLICT (reader) DO UPDATE SET position = EXCLUDED.position",
            )
            .bind(POLICY_READER)
            .bind(i64::try_from(event.position).unwrap_or(i64::MAX))
            .execute(store.pool())
            .await
            .map_err(|e| StoreError::Database {
                context: "moving the policy checkpoint",
                source: e,
            })?;
        }
        Ok(events.len())
    }

    async fn on_completion(&self, event: &tledger_store::LedgerEvent) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let loaded: Loaded<Enrollment> =
            load(store, AggregateKind::Enrollment, &event.aggregate_id).await?;
        let completion = match Fact::from_data(FactType::TrainingCompleted, &event.data) {
            Ok(Fact::TrainingCompleted(c)) => c,
            _ => return Ok(()),
        };
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

    async fn on_enrollment_retraction(
        &self,
        event: &tledger_store::LedgerEvent,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let Ok(Fact::FactRetracted(retraction)) =
            Fact::from_data(FactType::FactRetracted, &event.data)
        else {
            return Ok(());
        };
        let Some(target) = store.locate(retraction.event_id).await? else {
            return Ok(());
        };
        if target.event_type != FactType::TrainingCompleted.as_str() {
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
