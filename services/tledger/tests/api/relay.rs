//! The relay against real servers: each test has its own database on the
//! shared PostgreSQL, its own nats-server (`PrivateNats`) and its own prefix.
//! A missing server fails the test (the harness panics), never skips it.
//!
//! What they show (docs/architecture.md#decision-5): every sequenced event lands
//! on `<PREFIX>_EVENTS` exactly once, at the stream sequence equal to its
//! ledger position, through NATS outages, relay restarts at any point and
//! lost acks; and the server itself refuses a message whose expected last
//! sequence is wrong.
//!
//! `TEST_LOG=1` prints the relay's logs through the harness's subscriber
//! (`RUST_LOG` filters them, default `tledger=debug`). `RELAY_TEST_SEED=<n>`
//! replays the random restart test with a given seed (it prints the seed it
//! used).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, stream};
use serde_json::{json, Value};
use tledger::relay::{ledger_cloud_event, Relay, RelayError};
use tledger::Prefix;
use tledger_events::facts::UnitRegistered;
use tledger_events::{AggregateKind, CloudEvent, Date, Fact, UnitId, UnitLevel};
use tledger_store::{Append, EventMetadata, LedgerEvent, NewEvent, Sequencer, Store};
use tledger_tests::{unique_prefix, PrivateNats, TestDatabase};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::support::init_logs;

const PUBLISHER: &str = "/commands/relay-test";

/// A fresh, migrated store that appends `unit.registered.v1` facts.
struct Ledger {
    store: Store,
    units: u64,
    // Dropped last: the database goes when the test ends.
    _database: TestDatabase,
}

impl Ledger {
    async fn new() -> Ledger {
        let database = TestDatabase::create().await;
        let store = Store::connect(database.url(), 5)
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        Ledger {
            store,
            units: 0,
            _database: database,
        }
    }

    /// Appends `n` facts (one per new unit `u-<k>`; every other one with a
    /// correlation id), sequences them all, and returns the ledger head.
    async fn append(&mut self, n: u64) -> u64 {
        for _ in 0..n {
            self.units += 1;
            let k = self.units;
            let unit_id = format!("u-{k}");
            let month = u32::try_from(k % 12).expect("small") + 1;
            let day = u32::try_from(k % 28).expect("small") + 1;
            let fact = Fact::UnitRegistered(UnitRegistered {
                unit_id: UnitId::parse(unit_id.clone()).expect("a valid unit id"),
                name: format!("Xã {k}"),
                level: UnitLevel::Commune,
                parent_id: None,
                effective_date: Date::from_ymd(2011, month, day).expect("a valid date"),
            });
            let append = Append {
                aggregate: AggregateKind::Unit,
                aggregate_id: unit_id,
                expected_version: 0,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    fact,
                    metadata: EventMetadata {
                        publisher: PUBLISHER.into(),
                        actor: "relay-test".into(),
                        command_id: None,
                        correlation_id: (k % 2 == 0).then(|| format!("corr-{k}")),
                        causation_id: None,
                    },
                }],
                idempotency: None,
            };
            self.store.append(&append).await.expect("append a fact");
        }
        self.sequence_all().await
    }

    /// Runs the sequencer until every appended fact has its position.
    async fn sequence_all(&self) -> u64 {
        let sequencer = Sequencer::new(self.store.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let batch = sequencer.sequence_batch().await.expect("sequence a batch");
            if batch.head == self.units {
                return batch.head;
            }
            assert!(
                Instant::now() < deadline,
                "the sequencer is stuck at {} of {} (a transaction held open on the shared cluster?)",
                batch.head,
                self.units
            );
            if batch.events.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// The whole ledger, in position order.
    async fn events(&self) -> Vec<LedgerEvent> {
        self.store
            .read_ledger(0, u32::MAX)
            .await
            .expect("read the ledger")
    }
}

fn new_prefix() -> Prefix {
    unique_prefix()
        .parse()
        .expect("unique_prefix is a valid prefix")
}

/// A client that reconnects quickly (as the service's should), and a
/// JetStream context whose requests and acks time out after 2 s.
async fn connect(nats: &PrivateNats) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(u64::try_from(attempts).unwrap_or(10).min(10) * 100)
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect to the private nats-server {}: {e}", nats.url()));
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client)
}

async fn stream_info(js: &jetstream::Context, prefix: &Prefix) -> stream::Info {
    js.get_stream(prefix.events_stream())
        .await
        .expect("the events stream exists")
        .cached_info()
        .clone()
}

/// Calls `try_execute_task` until it publishes nothing; returns the total.
async fn drain(relay: &Relay) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut total = 0;
    loop {
        let published = relay.try_execute_task().await.expect("publish a batch");
        if published == 0 {
            return total;
        }
        total += published;
        assert!(Instant::now() < deadline, "the relay never drains");
    }
}

/// Waits until the stream's last sequence is `position` (errors while NATS
/// comes back are retried).
async fn wait_until_published(relay: &Relay, position: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let last = match relay.published_position().await {
            Ok(p) if p == position => return,
            Ok(p) => Ok(p),
            Err(e) => Err(e.to_string()),
        };
        assert!(
            Instant::now() < deadline,
            "published position never reached {position} within {within:?}; last answer {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream holds the whole ledger, each event once, at the sequence equal
/// to its position, on its subject, as its CloudEvent.
async fn assert_stream_is_the_ledger(js: &jetstream::Context, prefix: &Prefix, ledger: &Ledger) {
    let events = ledger.events().await;
    let head = events.len() as u64;
    let info = stream_info(js, prefix).await;
    assert_eq!(
        (
            info.state.messages,
            info.state.first_sequence,
            info.state.last_sequence
        ),
        (head, 1, head),
        "messages, first and last sequence of the stream vs. a ledger of {head}"
    );
    let stream = js
        .get_stream_no_info(prefix.events_stream())
        .await
        .expect("a stream handle");
    for event in &events {
        let message = stream
            .get_raw_message(event.position)
            .await
            .unwrap_or_else(|e| panic!("read message {}: {e}", event.position));
        assert_eq!(message.sequence, event.position);
        assert_eq!(
            message.headers.get(NATS_MESSAGE_ID).map(|v| v.as_str()),
            Some(event.event_id.to_string().as_str()),
            "Nats-Msg-Id of sequence {}",
            event.position
        );
        assert_eq!(
            message.subject.as_str(),
            prefix.event_subject(&event.aggregate_type, &event.aggregate_id)
        );
        let cloud_event: CloudEvent =
            serde_json::from_slice(&message.payload).expect("the body is a CloudEvent");
        assert_eq!(cloud_event, ledger_cloud_event(prefix, event));
    }
}

/// Publishes a message to the events stream as some other writer would.
async fn publish_raw(
    js: &jetstream::Context,
    subject: String,
    message_id: &str,
    expected_last_sequence: u64,
    body: Vec<u8>,
) -> Result<PublishAck, PublishError> {
    let message = PublishMessage::build()
        .payload(body.into())
        .message_id(message_id)
        .expected_last_sequence(expected_last_sequence)
        .header("content-type", "application/cloudevents+json");
    js.send_publish(subject, message).await?.await
}

/// Publishes the ledger event `event` exactly as the relay would, as if a
/// relay had crashed after the server stored it but before the ack arrived.
async fn publish_as_the_relay(
    js: &jetstream::Context,
    prefix: &Prefix,
    event: &LedgerEvent,
) -> PublishAck {
    let body = serde_json::to_vec(&ledger_cloud_event(prefix, event)).expect("encode");
    let ack = publish_raw(
        js,
        prefix.event_subject(&event.aggregate_type, &event.aggregate_id),
        &event.event_id.to_string(),
        event.position - 1,
        body,
    )
    .await
    .expect("the server stores the next position");
    assert_eq!((ack.sequence, ack.duplicate), (event.position, false));
    ack
}

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn from_env_or_random() -> Rng {
        let seed = std::env::var("RELAY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| Uuid::new_v4().as_u64_pair().0);
        println!("RELAY_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_once_at_the_sequence_of_its_position() {
    init_logs();
    let started = Instant::now();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    let head = ledger.append(600).await;
    assert_eq!(head, 600);

    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone())
        .with_batch_size(250)
        .with_window(64);
    relay.ensure_stream().await.expect("create the stream");
    relay.ensure_stream().await.expect("ensure_stream again");
    assert_eq!(relay.published_position().await.expect("position"), 0);

    let mut batches = Vec::new();
    loop {
        let published = relay.try_execute_task().await.expect("publish a batch");
        if published == 0 {
            break;
        }
        batches.push(published);
    }
    assert_eq!(batches, [250, 250, 100]);
    assert_eq!(relay.published_position().await.expect("position"), head);
    assert_eq!(ledger.store.head().await.expect("head"), head);

    let info = stream_info(&js, &prefix).await;
    assert_eq!(info.config.subjects, [format!("{prefix}.events.>")]);
    assert_eq!(info.config.storage, stream::StorageType::File);
    assert_eq!(info.config.retention, stream::RetentionPolicy::Limits);
    assert_eq!(info.config.discard, stream::DiscardPolicy::New);
    assert_eq!(info.config.max_age, Duration::ZERO);
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;

    // One message read back field by field, as a consumer would see it.
    let events = ledger.events().await;
    for position in [1u64, 42] {
        let event = &events[usize::try_from(position - 1).expect("small")];
        let message = js
            .get_stream_no_info(prefix.events_stream())
            .await
            .expect("stream")
            .get_raw_message(position)
            .await
            .expect("message");
        assert_eq!(
            message.headers.get("content-type").map(|v| v.as_str()),
            Some("application/cloudevents+json")
        );
        let body: Value = serde_json::from_slice(&message.payload).expect("JSON");
        let unit_id = event.aggregate_id.as_str();
        assert_eq!(
            message.subject.as_str(),
            format!("{prefix}.events.unit.{unit_id}")
        );
        assert_eq!(body["specversion"], "1.0");
        assert_eq!(body["id"], event.event_id.to_string());
        assert_eq!(body["source"], format!("/tledger/{prefix}"));
        assert_eq!(body["type"], "unit.registered.v1");
        assert_eq!(body["datacontenttype"], "application/json");
        assert_eq!(body["position"], json!(position));
        let recorded_at = body["recordedat"].as_str().expect("recordedat is a string");
        assert_eq!(body["time"], recorded_at);
        assert!(recorded_at.ends_with('Z'), "{recorded_at}");
        let parsed = chrono::DateTime::parse_from_rfc3339(recorded_at).expect("RFC 3339");
        assert_eq!(parsed.with_timezone(&chrono::Utc), event.recorded_at);
        let effective = event.effective_date.format("%Y-%m-%d").to_string();
        assert_eq!(body["effectivedate"], effective.as_str());
        assert_eq!(body["data"]["effective_date"], effective.as_str());
        assert_eq!(body["data"]["unit_id"], unit_id);
        assert_eq!(body["data"], event.data);
        assert_eq!(body["publisher"], PUBLISHER);
        match &event.correlation_id {
            Some(id) => assert_eq!(body["correlationid"], id.as_str()),
            None => assert!(body.get("correlationid").is_none(), "{body}"),
        }
    }

    // Nothing more to do, and nothing published twice by asking again.
    assert_eq!(relay.try_execute_task().await.expect("idle"), 0);
    assert_eq!(stream_info(&js, &prefix).await.state.messages, head);
    println!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_delays_publishing_and_loses_or_doubles_nothing() {
    init_logs();
    let started = Instant::now();
    let mut nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    let head = ledger.append(100).await;

    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone())
        .with_batch_size(50)
        .with_window(16)
        .with_idle_interval(Duration::from_millis(100));
    relay.ensure_stream().await.expect("create the stream");
    // A second relay value only to ask the stream where it is.
    let observer = Relay::new(ledger.store.clone(), js.clone(), prefix.clone());
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(wake.clone(), async move {
        let _ = stopped.await;
    }));
    wait_until_published(&observer, head, Duration::from_secs(10)).await;

    nats.stop().await;
    // The store goes on: appends and sequencing do not wait for NATS.
    let mut head = head;
    for _ in 0..10 {
        let t = Instant::now();
        head = ledger.append(20).await;
        wake.notify_one();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "appending 20 facts took {:?} with NATS down",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(head, 300);
    assert!(
        observer.published_position().await.is_err(),
        "NATS is down: the stream cannot be asked"
    );

    nats.start_again().await;
    wait_until_published(&observer, head, Duration::from_secs(20)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the relay stops after shutdown")
        .expect("the relay task does not panic");

    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;
    println!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restarts_at_random_points_and_lost_acks_leave_no_gap_and_no_duplicate() {
    init_logs();
    let started = Instant::now();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    let mut rng = Rng::from_env_or_random();
    let store = ledger.store.clone();
    let relay = |batch: u64, window: u64| {
        Relay::new(store.clone(), js.clone(), prefix.clone())
            .with_batch_size(u32::try_from(batch).expect("small"))
            .with_window(usize::try_from(window).expect("small"))
    };
    relay(1, 1)
        .ensure_stream()
        .await
        .expect("create the stream");

    for _ in 0..8 {
        ledger.append(rng.between(1, 60)).await;
        let current = relay(rng.between(1, 40), rng.between(1, 16));
        for _ in 0..rng.between(0, 3) {
            if rng.between(0, 2) == 0 {
                // A crash in the middle of a batch: the future is dropped
                // with publishes sent and acks not awaited.
                let within = Duration::from_micros(rng.between(0, 3000));
                let _ = tokio::time::timeout(within, current.try_execute_task()).await;
            } else {
                current
                    .try_execute_task()
                    .await
                    .expect("publish after a restart");
            }
        }
        drop(current);
    }
    let current = relay(rng.between(1, 40), rng.between(1, 16));
    drain(&current).await;
    let head = ledger.store.head().await.expect("head");
    assert_eq!(current.published_position().await.expect("position"), head);
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;

    // A lost ack, seen by the same relay: the server stored the next event
    // but the relay never heard. Its retry is answered as a duplicate.
    let head = ledger.append(3).await;
    let events = ledger.events().await;
    publish_as_the_relay(&js, &prefix, &events[events.len() - 3]).await;
    assert_eq!(drain(&current).await, 3);
    assert_eq!(current.published_position().await.expect("position"), head);
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;

    // A lost ack, then a new relay: it starts from the stream's last
    // sequence (the message there is checked against the ledger).
    drop(current);
    let head = ledger.append(3).await;
    let events = ledger.events().await;
    publish_as_the_relay(&js, &prefix, &events[events.len() - 3]).await;
    let restarted = relay(rng.between(1, 40), rng.between(1, 16));
    assert_eq!(drain(&restarted).await, 2);
    assert_eq!(
        restarted.published_position().await.expect("position"),
        head
    );
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;
    println!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_checkpoint_is_stale_rereads_the_stream_when_it_moved() {
    init_logs();
    let started = Instant::now();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    // The stream exists already, with a short duplicate window, so that a
    // retry is not answered from the window but refused for its sequence.
    js.create_stream(stream::Config {
        name: prefix.events_stream(),
        subjects: vec![format!("{prefix}.events.>")],
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("create the stream with a short duplicate window");
    // One ack in flight, so that the first call stops at the refusal (with
    // a wider window the publishes after it, expecting 11, 12 …, would be
    // stored and checked on re-reading: also right, but less telling).
    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone()).with_window(1);
    relay
        .ensure_stream()
        .await
        .expect("keeps the existing stream");

    ledger.append(10).await;
    assert_eq!(drain(&relay).await, 10);
    let head = ledger.append(10).await;
    let events = ledger.events().await;
    publish_as_the_relay(&js, &prefix, &events[10]).await;
    publish_as_the_relay(&js, &prefix, &events[11]).await;
    // Past the window, the server no longer knows these ids.
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The relay believes 10; its publish of 11 is refused (the stream is at
    // 12), so it re-reads the stream, checks message 12, and goes on.
    let first = relay
        .try_execute_task()
        .await
        .expect("progress after re-reading");
    assert_eq!(first, 2, "the stream moved from 10 to 12");
    assert_eq!(drain(&relay).await, 8);
    assert_eq!(relay.published_position().await.expect("position"), head);
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;
    println!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_a_message_with_a_wrong_expected_sequence() {
    init_logs();
    let started = Instant::now();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    ledger.append(10).await;
    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone());
    relay.ensure_stream().await.expect("create the stream");
    assert_eq!(drain(&relay).await, 10);

    let intruder = |position: u64| {
        serde_json::to_vec(&json!({
            "specversion": "1.0", "id": Uuid::new_v4().to_string(), "source": "/intruder",
            "type": "unit.registered.v1", "position": position,
            "data": {"unit_id": "intruder", "name": "X", "level": "commune",
                     "effective_date": "2011-01-01"}
        }))
        .expect("encode")
    };
    let subject = prefix.event_subject("unit", "intruder");
    // A writer that is behind, one that is ahead, and a stale copy of
    // position 3 under a new id: all refused by the server.
    for (expected, label) in [(5, "behind"), (11, "ahead"), (2, "stale copy")] {
        let refused = publish_raw(
            &js,
            subject.clone(),
            &Uuid::new_v4().to_string(),
            expected,
            intruder(expected + 1),
        )
        .await
        .expect_err(label);
        assert_eq!(
            refused.kind(),
            PublishErrorKind::WrongLastSequence,
            "{label}: {refused}"
        );
    }
    // A replay of position 3 exactly as the relay sent it: answered from
    // the duplicate window with its original sequence, not stored again.
    let events = ledger.events().await;
    let third = &events[2];
    let replay = publish_raw(
        &js,
        prefix.event_subject(&third.aggregate_type, &third.aggregate_id),
        &third.event_id.to_string(),
        2,
        serde_json::to_vec(&ledger_cloud_event(&prefix, third)).expect("encode"),
    )
    .await
    .expect("a duplicate is acknowledged");
    assert_eq!((replay.sequence, replay.duplicate), (3, true));

    let info = stream_info(&js, &prefix).await;
    assert_eq!((info.state.messages, info.state.last_sequence), (10, 10));

    // The relay goes on as if nothing happened.
    ledger.append(5).await;
    assert_eq!(drain(&relay).await, 5);
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;
    println!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_message_at_the_head_stops_the_relay_instead_of_skipping_an_event() {
    init_logs();
    let started = Instant::now();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    ledger.append(5).await;
    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone());
    relay.ensure_stream().await.expect("create the stream");
    assert_eq!(drain(&relay).await, 5);

    // Someone who knows the protocol but is not the relay publishes with
    // the right expected sequence: the server cannot tell, so it lands at 6.
    let foreign_id = Uuid::new_v4().to_string();
    let ack = publish_raw(
        &js,
        prefix.event_subject("unit", "foreign"),
        &foreign_id,
        5,
        br#"{"specversion":"1.0","id":"x","source":"/foreign","type":"x","data":{}}"#.to_vec(),
    )
    .await
    .expect("stored");
    assert_eq!(ack.sequence, 6);

    // A new relay: the stream is ahead of the ledger.
    let restarted = Relay::new(ledger.store.clone(), js.clone(), prefix.clone());
    let error = restarted
        .try_execute_task()
        .await
        .expect_err("stream ahead");
    assert!(
        matches!(
            error,
            RelayError::StreamAhead {
                stream_last: 6,
                ledger_head: 5,
                ..
            }
        ),
        "{error}"
    );
    // The ledger reaches position 6: message 6 is not its event there, so
    // the relay refuses to continue past it rather than skip position 6.
    let head = ledger.append(1).await;
    let sixth = ledger.events().await[5].event_id;
    let error = restarted
        .try_execute_task()
        .await
        .expect_err("stream mismatch");
    match &error {
        RelayError::StreamMismatch {
            sequence,
            expected,
            found,
            ..
        } => {
            assert_eq!(*sequence, head);
            assert_eq!(*expected, sixth);
            assert_eq!(found.as_deref(), Some(foreign_id.as_str()));
        }
        other => panic!("expected StreamMismatch, got {other}"),
    }
    // The relay that was running believes 5 and publishes 6 and 7 in one
    // window: 6 is refused, but 7 (expecting 6) is stored after the foreign
    // message. So after a refusal the relay checks every message stored
    // since its checkpoint, not only the last, and stops at 6.
    ledger.append(1).await;
    for attempt in ["refused, then re-read", "again"] {
        let error = relay.try_execute_task().await.expect_err(attempt);
        assert!(
            matches!(error, RelayError::StreamMismatch { sequence: 6, .. }),
            "{attempt}: {error}"
        );
        assert!(error.is_inconsistency());
    }
    assert_eq!(stream_info(&js, &prefix).await.state.last_sequence, 7);
    println!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_created_again_and_refilled_from_the_ledger() {
    init_logs();
    let started = Instant::now();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    let head = ledger.append(50).await;
    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone())
        .with_batch_size(20)
        .with_idle_interval(Duration::from_millis(100));
    let observer = Relay::new(ledger.store.clone(), js.clone(), prefix.clone());
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // `run` creates the stream itself.
    let running = tokio::spawn(relay.run(wake.clone(), async move {
        let _ = stopped.await;
    }));
    wait_until_published(&observer, head, Duration::from_secs(10)).await;

    js.delete_stream(prefix.events_stream())
        .await
        .expect("delete the stream");
    let head = ledger.append(10).await;
    wake.notify_one();
    // PostgreSQL is the source of truth: the whole ledger goes back.
    wait_until_published(&observer, head, Duration::from_secs(15)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the relay stops after shutdown")
        .expect("the relay task does not panic");
    assert_stream_is_the_ledger(&js, &prefix, &ledger).await;
    println!("took {:?}", started.elapsed());
}

/// Reads `count` messages of an ordered consumer with `deliver` and
/// returns them as CloudEvents with their stream sequences.
async fn replay(
    js: &jetstream::Context,
    prefix: &Prefix,
    deliver: jetstream::consumer::DeliverPolicy,
    count: usize,
) -> Vec<(u64, CloudEvent)> {
    use futures::StreamExt as _;
    let stream = js
        .get_stream_no_info(prefix.events_stream())
        .await
        .expect("a stream handle");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: deliver,
            ..Default::default()
        })
        .await
        .expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut replayed = Vec::with_capacity(count);
    while replayed.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the replay goes on")
            .expect("a message")
            .expect("a message, not an error");
        let sequence = message.info().expect("JetStream metadata").stream_sequence;
        let event: CloudEvent =
            serde_json::from_slice(&message.payload).expect("the body is a CloudEvent");
        replayed.push((sequence, event));
    }
    // Nothing more: the replay ends at the ledger's head.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), messages.next())
            .await
            .is_err(),
        "no message beyond the head"
    );
    replayed
}

/// docs/architecture.md decision 5, "a replay from a position is a consumer
/// starting at that sequence": a consumer of `<PREFIX>_EVENTS` from a
/// position, or from a time, gets exactly the ledger's facts from there, in
/// order (docs/replay-from-nats.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_replays_the_ledger_from_a_position_or_a_time() {
    init_logs();
    let nats = PrivateNats::start("").await;
    let js = connect(&nats).await;
    let prefix = new_prefix();
    let mut ledger = Ledger::new().await;
    let relay = Relay::new(ledger.store.clone(), js.clone(), prefix.clone());
    relay.ensure_stream().await.expect("create the stream");
    ledger.append(150).await;
    assert_eq!(drain(&relay).await, 150);
    // Everything before `since` was published before it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(50)).await;
    ledger.append(150).await;
    assert_eq!(drain(&relay).await, 150);
    let events = ledger.events().await;

    let from_position = replay(
        &js,
        &prefix,
        jetstream::consumer::DeliverPolicy::ByStartSequence {
            start_sequence: 101,
        },
        200,
    )
    .await;
    let expected: Vec<(u64, CloudEvent)> = events[100..]
        .iter()
        .map(|e| (e.position, ledger_cloud_event(&prefix, e)))
        .collect();
    assert_eq!(from_position, expected, "positions 101..=300, in order");

    let from_time = replay(
        &js,
        &prefix,
        jetstream::consumer::DeliverPolicy::ByStartTime { start_time: since },
        150,
    )
    .await;
    assert_eq!(
        from_time,
        expected[50..],
        "what was published since, in order"
    );
}
