//! The relay (docs/architecture.md decision 5): the event table is the outbox,
//! and the relay copies its sequenced events, in position order, to the
//! JetStream stream `<PREFIX>_EVENTS`.
//!
//! Each event is published on `<prefix>.events.<aggregate>.<id>` with
//! `Nats-Msg-Id` = its event id and `Nats-Expected-Last-Sequence` =
//! position − 1 (and `Nats-Expected-Stream`), so the server stores it only
//! as the message right after position − 1: the stream sequence *is* the
//! ledger position, and a duplicate or a gap is refused by the server, not
//! by the relay's bookkeeping. The stream's last sequence is therefore the
//! relay's checkpoint; there is no checkpoint table.
//!
//! Publishing is asynchronous with a window of acks in flight (synchronous
//! publishing is an order of magnitude slower), on one connection, and the
//! acks are awaited in order. When an outcome is unknown (an ack timed out:
//! the message may still have been stored) or the server says the stream
//! moved (`wrong last sequence`), the relay forgets what it believed, reads
//! the stream's last sequence again, checks that every message stored since
//! its last confirmed position carries the ledger's event id for that
//! position (`Nats-Msg-Id`), and goes on from there: never skipping, never
//! publishing twice. A new relay checks the stream's last message the same
//! way before it publishes. A stream that does not follow the ledger (a
//! foreign message, a stream ahead of the ledger) stops the relay with an
//! error an operator must look at; it is never skipped over.
//!
//! NATS being down or the stream being full only delays publishing:
//! [`Relay::run`] logs, backs off and retries, and commands go on. After
//! [`STUCK_AFTER`] failures in a row at one position the relay counts as
//! stuck: its [`RelayWatch`] gives the position, the reason and since when
//! to `/v1/ledger/head` and `/readyz`, the gauge `tledger_relay_stuck` is
//! 1, and an error is logged at most once a minute (each failure counts in
//! `tledger_relay_publish_failures_total`). A
//! deleted stream is created again and refilled from position 1 (PostgreSQL
//! is the source of truth).
//!
//! The JetStream context's `max_ack_inflight` (5000 unless its builder set
//! it) must be at least the relay's window: acks are awaited only once the
//! window is full, so a smaller context limit would wait for ever.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_EXPECTED_STREAM, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{
    CreateStreamError, GetStreamError, GetStreamErrorKind, PublishAckFuture, PublishError,
};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, RawMessageError, RawMessageErrorKind};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self};
use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tledger_events::chain::format_instant;
use tledger_events::envelope::CONTENT_TYPE;
use tledger_events::CloudEvent;
use tledger_store::{LedgerEvent, Store, StoreError};
use tokio::sync::Notify;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::Prefix;

/// Events read from the ledger per batch.
pub const DEFAULT_BATCH_SIZE: u32 = 1000;
/// Publish acks awaited at most at once.
pub const DEFAULT_WINDOW: usize = 256;
/// How long [`Relay::run`] waits for a wake-up before it looks anyway.
pub const DEFAULT_IDLE_INTERVAL: Duration = Duration::from_millis(500);
/// The first back-off after an error; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Failures in a row at one position after which the relay counts as
/// stuck (shown in `/v1/ledger/head`, `/readyz` and `tledger_relay_stuck`).
pub const STUCK_AFTER: u64 = 3;
/// The least time between two error logs about the same stuck position.
const STUCK_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why the relay could not publish (for now). Every variant says what it
/// was doing; [`Relay::run`] logs them and retries.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{context}: {source}")]
    Store {
        context: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("creating the stream {stream}: {source}")]
    CreateStream {
        stream: String,
        #[source]
        source: CreateStreamError,
    },
    #[error("the stream {stream} does not exist")]
    StreamMissing { stream: String },
    #[error("reading the state of the stream {stream}: {source}")]
    StreamInfo {
        stream: String,
        #[source]
        source: GetStreamError,
    },
    #[error("reading message {sequence} of the stream {stream}: {source}")]
    ReadMessage {
        stream: String,
        sequence: u64,
        #[source]
        source: RawMessageError,
    },
    #[error("encoding the CloudEvent of position {position}: {source}")]
    Encode {
        position: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("publishing position {position} on {subject}: {source}")]
    Publish {
        position: u64,
        subject: String,
        #[source]
        source: PublishError,
    },
    #[error(
        "the stream {stream} answered position {position} with sequence {sequence} \
         (duplicate: {duplicate}): the stream does not follow the ledger"
    )]
    SequenceMismatch {
        stream: String,
        position: u64,
        sequence: u64,
        duplicate: bool,
    },
    #[error(
        "the stream {stream} is ahead of the ledger (last sequence {stream_last}, ledger head \
         {ledger_head}): it holds messages the ledger does not have"
    )]
    StreamAhead {
        stream: String,
        stream_last: u64,
        ledger_head: u64,
    },
    #[error(
        "message {sequence} of the stream {stream} is not the ledger's event at that position \
         (Nats-Msg-Id {found:?}, ledger event {expected})"
    )]
    StreamMismatch {
        stream: String,
        sequence: u64,
        expected: Uuid,
        found: Option<String>,
    },
    #[error("the ledger read after position {after} returned position {found}, not {expected}")]
    LedgerGap {
        after: u64,
        expected: u64,
        found: u64,
    },
}

impl RelayError {
    /// The ledger position the failure is about, when it is about one.
    pub fn position(&self) -> Option<u64> {
        match self {
            RelayError::Encode { position, .. }
            | RelayError::Publish { position, .. }
            | RelayError::SequenceMismatch { position, .. } => Some(*position),
            RelayError::StreamMismatch { sequence, .. } => Some(*sequence),
            RelayError::LedgerGap { expected, .. } => Some(*expected),
            _ => None,
        }
    }

    /// Whether the stream and the ledger disagree: no retry fixes that, an
    /// operator must look (the relay keeps retrying and logging meanwhile).
    pub fn is_inconsistency(&self) -> bool {
        matches!(
            self,
            RelayError::SequenceMismatch { .. }
                | RelayError::StreamAhead { .. }
                | RelayError::StreamMismatch { .. }
                | RelayError::LedgerGap { .. }
        )
    }

    fn store(context: &'static str) -> impl FnOnce(StoreError) -> RelayError {
        move |source| RelayError::Store { context, source }
    }
}

/// Why the relay cannot get past a position, once it has failed there
/// [`STUCK_AFTER`] times in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// The first position not published; `None` when the failure came
    /// before the relay read the ledger (NATS not answering, say).
    pub position: Option<u64>,
    /// The last failure, as logged.
    pub reason: String,
    /// When the first of these failures happened.
    pub since: DateTime<Utc>,
    pub failures: u64,
}

impl Stuck {
    /// As `/v1/ledger/head` and `/readyz` show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "stuck_at": self.position,
            "reason": self.reason,
            "since": format_instant(self.since),
            "failures": self.failures,
        })
    }
}

/// What the relay's failures call for in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Note {
    /// The first failure at a position: a warning.
    First,
    /// A retry that failed again, not yet stuck or logged within the
    /// minute: debug only.
    Again,
    /// Stuck, and not logged as such in the last minute: an error.
    Stuck,
}

/// The failures since the relay last made progress.
#[derive(Debug, Default)]
struct Failures {
    current: Option<Stuck>,
    logged: Option<Instant>,
}

impl Failures {
    fn failed(
        &mut self,
        position: Option<u64>,
        reason: String,
        now: DateTime<Utc>,
        clock: Instant,
    ) -> Note {
        let failures = match &mut self.current {
            Some(current) if current.position == position => {
                current.failures += 1;
                current.reason = reason;
                current.failures
            }
            _ => {
                self.current = Some(Stuck {
                    position,
                    reason,
                    since: now,
                    failures: 1,
                });
                self.logged = None;
                1
            }
        };
        if failures < STUCK_AFTER {
            return if failures == 1 {
                Note::First
            } else {
                Note::Again
            };
        }
        match self.logged {
            Some(at) if clock.saturating_duration_since(at) < STUCK_LOG_EVERY => Note::Again,
            _ => {
                self.logged = Some(clock);
                Note::Stuck
            }
        }
    }

    /// Clears the failures; what was stuck, if anything.
    fn progressed(&mut self) -> Option<Stuck> {
        self.logged = None;
        self.current.take().filter(|c| c.failures >= STUCK_AFTER)
    }

    fn stuck(&self) -> Option<Stuck> {
        self.current.clone().filter(|c| c.failures >= STUCK_AFTER)
    }
}

/// The relay's state as the HTTP handlers read it: a handle shared with
/// the running [`Relay`] ([`Relay::watched_by`]). It shows this process's
/// relay only.
#[derive(Clone, Debug, Default)]
pub struct RelayWatch(Arc<Mutex<Failures>>);

impl RelayWatch {
    /// Why publishing is stuck, or `None` while it goes on (or has only
    /// just failed).
    pub fn stuck(&self) -> Option<Stuck> {
        self.lock().stuck()
    }

    fn failed(&self, position: Option<u64>, reason: String) -> (Note, u64) {
        let mut failures = self.lock();
        let note = failures.failed(position, reason, Utc::now(), Instant::now());
        let count = failures.current.as_ref().map_or(0, |c| c.failures);
        (note, count)
    }

    fn progressed(&self) -> Option<Stuck> {
        self.lock().progressed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Copies sequenced events to `<PREFIX>_EVENTS`, exactly once in effect.
#[derive(Debug)]
pub struct Relay {
    store: Store,
    jetstream: jetstream::Context,
    prefix: Prefix,
    stream: String,
    batch_size: u32,
    window: usize,
    idle: Duration,
    checkpoint: Mutex<Checkpoint>,
    replicas: usize,
    watch: RelayWatch,
}

/// Where the relay believes the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checkpoint {
    /// The stream's last sequence, as this relay's own acks confirmed it.
    Confirmed(u64),
    /// Unknown (a new relay, or after a failure): read the stream's last
    /// sequence and check the messages from `verify_from` (only the last
    /// one when `None`) against the ledger before publishing.
    Unknown { verify_from: Option<u64> },
}

impl Relay {
    pub fn new(store: Store, jetstream: jetstream::Context, prefix: Prefix) -> Self {
        let stream = prefix.events_stream();
        Self {
            store,
            jetstream,
            prefix,
            stream,
            batch_size: DEFAULT_BATCH_SIZE,
            window: DEFAULT_WINDOW,
            idle: DEFAULT_IDLE_INTERVAL,
            checkpoint: Mutex::new(Checkpoint::Unknown { verify_from: None }),
            replicas: 1,
            watch: RelayWatch::default(),
        }
    }

    /// Reports the relay's failures to `watch` (the HTTP handlers' copy).
    #[must_use]
    pub fn watched_by(mut self, watch: RelayWatch) -> Self {
        self.watch = watch;
        self
    }

    /// The handle that shows whether this relay is stuck.
    pub fn watch(&self) -> RelayWatch {
        self.watch.clone()
    }

    /// Replicas of the stream when the relay creates it (a JetStream
    /// cluster keeps it on that many servers).
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// Events read and published per batch (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Publish acks in flight at most (at least 1). The JetStream context's
    /// own `max_ack_inflight` (5000 by default) must not be lower.
    #[must_use]
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// How long [`Relay::run`] sleeps when idle and not woken.
    #[must_use]
    pub fn with_idle_interval(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// `<PREFIX>_EVENTS`.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// Creates `<PREFIX>_EVENTS` if missing: subjects `<prefix>.events.>`,
    /// file storage, limits retention, no age limit, discard new, the
    /// server's default duplicate window. An existing stream is kept as it
    /// is; settings that differ are logged.
    #[tracing::instrument(name = "relay.ensure_stream", skip(self), fields(stream = %self.stream))]
    pub async fn ensure_stream(&self) -> Result<(), RelayError> {
        let config = self.stream_config();
        let existing = match self.jetstream.get_stream(&self.stream).await {
            Ok(stream) => stream,
            Err(error) => match self.stream_info_error(error) {
                RelayError::StreamMissing { .. } => {
                    self.jetstream
                        .create_stream(config)
                        .await
                        .map_err(|source| RelayError::CreateStream {
                            stream: self.stream.clone(),
                            source,
                        })?;
                    tracing::info!("created the stream");
                    return Ok(());
                }
                other => return Err(other),
            },
        };
        let actual = &existing.cached_info().config;
        let differences: Vec<&str> = [
            ("subjects", actual.subjects != config.subjects),
            ("retention", actual.retention != config.retention),
            ("discard", actual.discard != config.discard),
            ("max_age", actual.max_age != config.max_age),
            ("storage", actual.storage != config.storage),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        if differences.is_empty() {
            tracing::debug!("the stream exists");
        } else {
            tracing::warn!(
                ?differences,
                subjects = ?actual.subjects,
                "the existing stream's settings differ from the relay's; keeping them"
            );
        }
        Ok(())
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            description: Some(format!(
                "training-ledger {}: every committed fact, stream sequence = ledger position",
                self.prefix
            )),
            subjects: vec![format!("{}.events.>", self.prefix)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            max_age: Duration::ZERO,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// The stream's last sequence: the last published ledger position.
    pub async fn published_position(&self) -> Result<u64, RelayError> {
        self.stream_last_sequence().await
    }

    /// Publishes what is sequenced and not yet on the stream, up to one
    /// batch, and returns how far the stream advanced (the number of events
    /// now stored that were not when it started). Public so that tests can
    /// drive the relay step by step.
    ///
    /// After a failure whose outcome is unknown it reads the stream's last
    /// sequence again: if the stream advanced, that is progress (`Ok`);
    /// otherwise the failure is returned and the next call starts from the
    /// stream's state.
    #[tracing::instrument(
        name = "relay.batch",
        skip(self),
        fields(stream = %self.stream, after = tracing::field::Empty, published = tracing::field::Empty)
    )]
    pub async fn try_execute_task(&self) -> Result<usize, RelayError> {
        let start = match self.checkpoint() {
            Checkpoint::Confirmed(position) => position,
            Checkpoint::Unknown { verify_from } => {
                let position = self.synchronise(verify_from).await?;
                self.set_checkpoint(Checkpoint::Confirmed(position));
                position
            }
        };
        tracing::Span::current().record("after", start);
        let events = self
            .store
            .read_ledger_durable(start, self.batch_size)
            .await
            .map_err(RelayError::store("reading the ledger to publish"))?;
        if events.is_empty() {
            return Ok(0);
        }
        check_dense(start, &events)?;

        let (stored, failure) = self.publish_in_order(&events).await;
        let Some(failure) = failure else {
            self.set_checkpoint(Checkpoint::Confirmed(start + stored));
            tracing::Span::current().record("published", stored);
            tracing::debug!(
                published = stored,
                last = start + stored,
                "published a batch"
            );
            return Ok(count(stored));
        };

        // What became of the rest is unknown, and messages sent after a
        // refused one may have been stored after someone else's: ask the
        // stream, and check every message stored since `start`.
        let unknown = Checkpoint::Unknown {
            verify_from: Some(start + 1),
        };
        self.set_checkpoint(unknown);
        tracing::info!(error = %failure, acked = stored, "publishing stopped; re-reading the stream");
        match self.synchronise(Some(start + 1)).await {
            Ok(last) => {
                self.set_checkpoint(Checkpoint::Confirmed(last));
                if last > start {
                    tracing::Span::current().record("published", last - start);
                    Ok(count(last - start))
                } else {
                    Err(failure)
                }
            }
            // These say more than the publish error that led here.
            Err(error)
                if error.is_inconsistency()
                    || matches!(error, RelayError::StreamMissing { .. }) =>
            {
                Err(error)
            }
            Err(error) => {
                tracing::debug!(%error, "re-reading the stream failed too");
                Err(failure)
            }
        }
    }

    /// Loops until `shutdown` completes: after a productive batch it goes on
    /// at once; otherwise it waits for `wake` (notified when the sequencer
    /// advances) or the idle interval. On an error (NATS down, the stream
    /// full or missing) it logs, backs off (100 ms doubling to 5 s) and
    /// retries; a missing stream is created again. A batch in flight is
    /// finished before it returns.
    pub async fn run(self, wake: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        let span = tracing::info_span!("relay", stream = %self.stream);
        self.run_inner(wake, shutdown).instrument(span).await;
    }

    async fn run_inner(self, wake: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = MIN_BACKOFF;
        let mut stream_ready = false;
        tracing::info!("relay started");
        metrics::gauge!("tledger_relay_stuck").set(0.0);
        loop {
            // Registered before the batch, so a wake-up during it is kept.
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let outcome = if stream_ready {
                self.try_execute_task().await
            } else {
                match self.ensure_stream().await {
                    Ok(()) => {
                        stream_ready = true;
                        self.try_execute_task().await
                    }
                    Err(error) => Err(error),
                }
            };
            match outcome {
                Ok(published) => {
                    backoff = MIN_BACKOFF;
                    if let Some(was) = self.watch.progressed() {
                        metrics::gauge!("tledger_relay_stuck").set(0.0);
                        tracing::info!(
                            position = ?was.position,
                            failures = was.failures,
                            "the relay publishes again"
                        );
                    }
                    // Short of a full batch, the relay has published up to
                    // the head it read: it waits for the next wake-up (kept
                    // if it came meanwhile) rather than asking for nothing.
                    if published >= usize::try_from(self.batch_size).unwrap_or(usize::MAX) {
                        if futures::FutureExt::now_or_never(shutdown.as_mut()).is_some() {
                            break;
                        }
                        continue;
                    }
                    tokio::select! {
                        () = &mut woken => {}
                        () = tokio::time::sleep(self.idle) => {}
                        () = &mut shutdown => break,
                    }
                }
                Err(error) => {
                    if matches!(error, RelayError::StreamMissing { .. }) {
                        stream_ready = false;
                    }
                    let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
                    metrics::counter!("tledger_relay_publish_failures_total").increment(1);
                    let position = error.position();
                    // Logged once when it starts and once a minute while
                    // stuck, not on every retry.
                    match self.watch.failed(position, error.to_string()) {
                        (Note::First, _) if error.is_inconsistency() => tracing::error!(
                            %error,
                            retry_in_ms,
                            "the stream does not follow the ledger; publishing is stopped \
                             until an operator repairs it"
                        ),
                        (Note::First, _) => {
                            tracing::warn!(%error, retry_in_ms, "the relay cannot publish now; retrying")
                        }
                        (Note::Again, failures) => {
                            tracing::debug!(%error, retry_in_ms, failures, "the relay failed again")
                        }
                        (Note::Stuck, failures) => {
                            metrics::gauge!("tledger_relay_stuck").set(1.0);
                            tracing::error!(
                                %error,
                                position = ?position,
                                failures,
                                "the relay is stuck: it keeps failing at the same place and \
                                 publishes nothing after it; /v1/ledger/head shows why"
                            );
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::info!("relay stopped");
    }

    /// Publishes `events` (dense, in position order) with up to `window`
    /// acks in flight, awaiting them in order. Returns how many were acked
    /// in order and, if it stopped early, why. Acks still in flight when it
    /// stops are dropped: the stream's state decides what happened to them.
    #[tracing::instrument(level = "debug", name = "relay.publish", skip_all, fields(stream = %self.stream, from = events.first().map_or(0, |e| e.position), events = events.len()))]
    async fn publish_in_order(&self, events: &[LedgerEvent]) -> (u64, Option<RelayError>) {
        let mut in_flight: VecDeque<(u64, String, PublishAckFuture)> =
            VecDeque::with_capacity(self.window.min(events.len()));
        let mut stored = 0u64;
        for event in events {
            if in_flight.len() >= self.window {
                if let Some((position, subject, ack)) = in_flight.pop_front() {
                    if let Err(error) = self.confirm(position, subject, ack).await {
                        return (stored, Some(error));
                    }
                    stored += 1;
                }
            }
            let subject = self
                .prefix
                .event_subject(&event.aggregate_type, &event.aggregate_id);
            let sent = match self.message(event) {
                Ok(message) => self
                    .jetstream
                    .send_publish(subject.clone(), message)
                    .await
                    .map_err(|source| RelayError::Publish {
                        position: event.position,
                        subject: subject.clone(),
                        source,
                    }),
                Err(error) => Err(error),
            };
            match sent {
                Ok(ack) => in_flight.push_back((event.position, subject, ack)),
                Err(error) => {
                    // What was sent before may still be stored: count it.
                    let (acked, failure) = self.drain(in_flight).await;
                    return (stored + acked, Some(failure.unwrap_or(error)));
                }
            }
        }
        let (acked, failure) = self.drain(in_flight).await;
        (stored + acked, failure)
    }

    async fn drain(
        &self,
        in_flight: VecDeque<(u64, String, PublishAckFuture)>,
    ) -> (u64, Option<RelayError>) {
        let mut acked = 0;
        for (position, subject, ack) in in_flight {
            if let Err(error) = self.confirm(position, subject, ack).await {
                return (acked, Some(error));
            }
            acked += 1;
        }
        (acked, None)
    }

    /// Awaits one ack: stored at `position`, or a duplicate of what is
    /// already stored there.
    #[tracing::instrument(level = "debug", name = "relay.confirm", skip_all, fields(position, subject = %subject))]
    async fn confirm(
        &self,
        position: u64,
        subject: String,
        ack: PublishAckFuture,
    ) -> Result<(), RelayError> {
        let ack = ack.await.map_err(|source| RelayError::Publish {
            position,
            subject,
            source,
        })?;
        if ack.sequence != position || ack.stream != self.stream {
            return Err(RelayError::SequenceMismatch {
                stream: ack.stream,
                position,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            });
        }
        if ack.duplicate {
            tracing::debug!(position, "already on the stream (duplicate)");
        }
        Ok(())
    }

    /// The message of `event`: its CloudEvent, with the headers that make
    /// the server store it only right after position − 1.
    fn message(&self, event: &LedgerEvent) -> Result<PublishMessage, RelayError> {
        let (headers, body) =
            ledger_message(&self.prefix, &self.stream, event).map_err(|source| {
                RelayError::Encode {
                    position: event.position,
                    source,
                }
            })?;
        Ok(PublishMessage::build().headers(headers).payload(body))
    }

    /// Reads the stream's last sequence and checks it against the ledger:
    /// not beyond the ledger's head, and each message from `verify_from`
    /// (only the last one when `None`) to the last is the ledger's event at
    /// that position (messages deleted since are taken on trust).
    #[tracing::instrument(level = "debug", name = "relay.synchronise", skip_all, fields(stream = %self.stream, verify_from = ?verify_from))]
    async fn synchronise(&self, verify_from: Option<u64>) -> Result<u64, RelayError> {
        let last = self.stream_last_sequence().await?;
        if last == 0 {
            return Ok(0);
        }
        let head = self
            .store
            .head()
            .await
            .map_err(RelayError::store("reading the ledger head"))?;
        if last > head {
            return Err(RelayError::StreamAhead {
                stream: self.stream.clone(),
                stream_last: last,
                ledger_head: head,
            });
        }
        let stream = self
            .jetstream
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|source| self.stream_info_error(source))?;
        let mut after = verify_from.map_or(last, |from| from.clamp(1, last)) - 1;
        while after < last {
            let limit = u32::try_from(last - after)
                .unwrap_or(u32::MAX)
                .min(self.batch_size);
            let expected = self
                .store
                .read_ledger(after, limit)
                .await
                .map_err(RelayError::store("reading the ledger to check the stream"))?;
            check_dense(after, &expected)?;
            let Some(next) = expected.last().map(|e| e.position) else {
                return Err(RelayError::LedgerGap {
                    after,
                    expected: after + 1,
                    found: 0,
                });
            };
            for event in &expected {
                self.check_message(&stream, event).await?;
            }
            after = next;
        }
        tracing::debug!(last, "the stream follows the ledger");
        Ok(last)
    }

    /// Whether message `event.position` of the stream carries `event`'s id.
    #[tracing::instrument(level = "debug", name = "relay.check_message", skip_all, fields(position = event.position))]
    async fn check_message(
        &self,
        stream: &stream::Stream<()>,
        event: &LedgerEvent,
    ) -> Result<(), RelayError> {
        match stream.get_raw_message(event.position).await {
            Ok(message) => {
                let found = message
                    .headers
                    .get(NATS_MESSAGE_ID)
                    .map(|v| v.as_str().to_owned());
                if found.as_deref() == Some(event.event_id.to_string().as_str()) {
                    Ok(())
                } else {
                    Err(RelayError::StreamMismatch {
                        stream: self.stream.clone(),
                        sequence: event.position,
                        expected: event.event_id,
                        found,
                    })
                }
            }
            Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => {
                tracing::warn!(
                    sequence = event.position,
                    "message deleted from the stream; trusting its sequence"
                );
                Ok(())
            }
            Err(source) => Err(RelayError::ReadMessage {
                stream: self.stream.clone(),
                sequence: event.position,
                source,
            }),
        }
    }

    #[tracing::instrument(level = "debug", name = "relay.stream_head", skip_all, fields(stream = %self.stream))]
    async fn stream_last_sequence(&self) -> Result<u64, RelayError> {
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|source| self.stream_info_error(source))?;
        Ok(stream.cached_info().state.last_sequence)
    }

    fn stream_info_error(&self, source: GetStreamError) -> RelayError {
        match source.kind() {
            GetStreamErrorKind::JetStream(error)
                if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                RelayError::StreamMissing {
                    stream: self.stream.clone(),
                }
            }
            _ => RelayError::StreamInfo {
                stream: self.stream.clone(),
                source,
            },
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_checkpoint(&self, checkpoint: Checkpoint) {
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = checkpoint;
    }
}

/// The ledger's events are dense: a batch read after `after` starts at
/// `after + 1` and has no holes. Anything else is a broken store, and
/// publishing past it would skip.
fn check_dense(after: u64, events: &[LedgerEvent]) -> Result<(), RelayError> {
    for (expected, event) in (after + 1..).zip(events) {
        if event.position != expected {
            return Err(RelayError::LedgerGap {
                after,
                expected,
                found: event.position,
            });
        }
    }
    Ok(())
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The message the relay publishes for `event` on `stream`: the headers
/// (`Nats-Msg-Id` = the event id, `Nats-Expected-Last-Sequence` = position
/// − 1, `Nats-Expected-Stream`, the content type) and the CloudEvent.
pub fn ledger_message(
    prefix: &Prefix,
    stream: &str,
    event: &LedgerEvent,
) -> Result<(HeaderMap, Bytes), serde_json::Error> {
    let body = serde_json::to_vec(&ledger_cloud_event(prefix, event))?;
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, event.event_id.to_string());
    headers.insert(
        NATS_EXPECTED_LAST_SEQUENCE,
        event.position.saturating_sub(1).to_string(),
    );
    headers.insert(NATS_EXPECTED_STREAM, stream);
    headers.insert("content-type", CONTENT_TYPE);
    Ok((headers, Bytes::from(body)))
}

/// The bytes the server counts against its `max_payload` for a message:
/// the header block as sent (`NATS/1.0␍␊`, one `name: value␍␊` per value,
/// a blank line) and the payload.
pub fn wire_size(headers: &HeaderMap, payload: &[u8]) -> usize {
    let block = headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| (name, v)))
        .map(|(name, value)| {
            AsRef::<str>::as_ref(name).len() + ": ".len() + value.as_str().len() + 2
        })
        .sum::<usize>();
    "NATS/1.0\r\n".len() + block + "\r\n".len() + payload.len()
}

/// The size of `event` as the relay would publish it on `<PREFIX>_EVENTS`.
pub fn published_size(prefix: &Prefix, event: &LedgerEvent) -> Result<usize, serde_json::Error> {
    let (headers, body) = ledger_message(prefix, &prefix.events_stream(), event)?;
    Ok(wire_size(&headers, &body))
}

/// The structured-mode CloudEvent of a ledger event, as published on the
/// ledger's own stream (docs/contract.md "The ledger's own stream").
pub fn ledger_cloud_event(prefix: &Prefix, event: &LedgerEvent) -> CloudEvent {
    let recorded_at = format_instant(event.recorded_at);
    CloudEvent {
        specversion: "1.0".into(),
        id: event.event_id.to_string(),
        source: prefix.source(),
        event_type: event.event_type.clone(),
        time: Some(recorded_at.clone()),
        datacontenttype: Some("application/json".into()),
        subject: None,
        dataschema: None,
        data: event.data.clone(),
        tlsignature: None,
        position: Some(event.position),
        recordedat: Some(recorded_at),
        effectivedate: Some(event.effective_date.format("%Y-%m-%d").to_string()),
        publisher: Some(event.publisher.clone()),
        correlationid: event.correlation_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use serde_json::json;

    fn event(position: u64, correlation_id: Option<&str>) -> LedgerEvent {
        LedgerEvent {
            position,
            event_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            aggregate_type: "unit".into(),
            aggregate_id: "dai-loc".into(),
            version: 1,
            event_type: "unit.registered.v1".into(),
            effective_date: NaiveDate::from_ymd_opt(2011, 3, 4).expect("date"),
            recorded_at: Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("instant")
                + chrono::Duration::microseconds(120),
            data: json!({"unit_id": "dai-loc", "name": "Đại Lộc", "level": "district",
                         "effective_date": "2011-03-04"}),
            metadata: json!({"publisher": "/commands/admin", "actor": "admin"}),
            publisher: "/commands/admin".into(),
            correlation_id: correlation_id.map(str::to_owned),
            hash: vec![0; 32],
        }
    }

    #[test]
    fn the_cloud_event_carries_the_ledger_extensions() {
        let prefix: Prefix = "tl".parse().expect("prefix");
        let value = serde_json::to_value(ledger_cloud_event(&prefix, &event(7, Some("c-1"))))
            .expect("serialises");
        assert_eq!(
            value,
            json!({
                "specversion": "1.0",
                "id": "01900000-0000-7000-8000-000000000001",
                "source": "/tledger/tl",
                "type": "unit.registered.v1",
                "time": "2026-01-02T03:04:05.000120Z",
                "datacontenttype": "application/json",
                "data": {"unit_id": "dai-loc", "name": "Đại Lộc", "level": "district",
                         "effective_date": "2011-03-04"},
                "position": 7,
                "recordedat": "2026-01-02T03:04:05.000120Z",
                "effectivedate": "2011-03-04",
                "publisher": "/commands/admin",
                "correlationid": "c-1"
            })
        );
    }

    #[test]
    fn it_should_not_send_a_correlation_id_that_is_absent() {
        let prefix: Prefix = "tl".parse().expect("prefix");
        let value =
            serde_json::to_value(ledger_cloud_event(&prefix, &event(1, None))).expect("serialises");
        assert!(value.get("correlationid").is_none(), "{value}");
    }

    #[test]
    fn the_wire_size_counts_the_header_block_as_nats_sends_it() {
        let prefix: Prefix = "tl".parse().expect("prefix");
        let event = event(7, Some("c-1"));
        let (headers, body) = ledger_message(&prefix, "TL_EVENTS", &event).expect("encodes");
        // NATS/1.0␍␊ + four "name: value␍␊" lines + ␍␊, then the payload.
        let block = "NATS/1.0\r\n".len()
            + "Nats-Msg-Id: 01900000-0000-7000-8000-000000000001\r\n".len()
            + "Nats-Expected-Last-Sequence: 6\r\n".len()
            + "Nats-Expected-Stream: TL_EVENTS\r\n".len()
            + format!("content-type: {CONTENT_TYPE}\r\n").len()
            + "\r\n".len();
        assert_eq!(wire_size(&headers, &body), block + body.len());
        assert_eq!(
            published_size(&prefix, &event).expect("encodes"),
            block + body.len()
        );
    }

    #[test]
    fn the_relay_is_stuck_after_repeated_failures_at_one_position_and_logs_once_a_minute() {
        let mut failures = Failures::default();
        let now = Utc::now();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(
            failures.failed(Some(9), "a".into(), now, at(0)),
            Note::First
        );
        assert_eq!(
            failures.failed(Some(9), "b".into(), now, at(1)),
            Note::Again
        );
        assert_eq!(failures.stuck(), None, "two failures are not stuck yet");
        assert_eq!(
            failures.failed(Some(9), "c".into(), now, at(2)),
            Note::Stuck
        );
        let stuck = failures.stuck().expect("stuck");
        assert_eq!(
            (
                stuck.position,
                stuck.reason.as_str(),
                stuck.since,
                stuck.failures
            ),
            (Some(9), "c", now, 3)
        );
        assert_eq!(
            failures.failed(Some(9), "c".into(), now, at(30)),
            Note::Again
        );
        assert_eq!(
            failures.failed(Some(9), "c".into(), now, at(62)),
            Note::Stuck
        );
        // Another position starts over.
        assert_eq!(
            failures.failed(Some(10), "d".into(), now, at(63)),
            Note::First
        );
        assert_eq!(failures.stuck(), None);
        assert_eq!(failures.progressed(), None, "it was not stuck there yet");
        for s in 0..3 {
            failures.failed(None, "e".into(), now, at(70 + s));
        }
        assert_eq!(failures.progressed().map(|s| s.failures), Some(3));
        assert_eq!(failures.stuck(), None, "progress clears it");
    }

    #[test]
    fn it_should_not_accept_a_ledger_batch_with_a_hole() {
        let batch = [event(5, None), event(6, None), event(8, None)];
        assert!(check_dense(4, &batch).is_err());
        assert!(check_dense(4, &batch[..2]).is_ok());
        assert!(matches!(
            check_dense(3, &batch[..1]),
            Err(RelayError::LedgerGap {
                expected: 4,
                found: 5,
                ..
            })
        ));
    }
}
