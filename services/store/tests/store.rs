//! The event store against a real PostgreSQL: appends, optimistic
//! concurrency, idempotency records, and the sequencer's order, timestamps
//! and hash chain, including the late-commit case on a private cluster.

use std::collections::HashSet;

use sqlx::Row;
use tledger_events::chain;
use tledger_events::facts::UnitRegistered;
use tledger_events::{AggregateKind, Date, Fact, UnitId, UnitLevel};
use tledger_store::{Append, AppendError, EventMetadata, Idempotency, NewEvent, Sequencer, Store};
use tledger_tests::{PrivatePostgres, TestDatabase};
use uuid::Uuid;

fn unit(id: &str) -> Fact {
    Fact::UnitRegistered(UnitRegistered {
        unit_id: UnitId::parse(id).expect("unit id"),
        name: format!("Unit {id}"),
        level: UnitLevel::Commune,
        parent_id: None,
        effective_date: "2007-01-01".parse::<Date>().expect("date"),
    })
}

fn metadata() -> EventMetadata {
    EventMetadata {
        publisher: "/commands/test".into(),
        actor: "test".into(),
        command_id: Some("c-1".into()),
        correlation_id: Some("corr-1".into()),
        causation_id: None,
    }
}

fn append_of(id: &str, expected_version: u64) -> Append {
    Append {
        aggregate: AggregateKind::Unit,
        aggregate_id: id.into(),
        expected_version,
        events: vec![NewEvent {
            event_id: Uuid::now_v7(),
            fact: unit(id),
            metadata: metadata(),
        }],
        idempotency: None,
    }
}

async fn store_at(url: &str) -> Store {
    let store = Store::connect(url, 8).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

async fn sequence_all(store: &Store) -> u64 {
    let sequencer = Sequencer::new(store.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let batch = sequencer.sequence_batch().await.expect("sequence");
        assert!(
            std::time::Instant::now() < deadline,
            "events held back for 30 s: {batch:?}"
        );
        // Other databases' open transactions on the shared cluster may hold
        // committed events back for a moment.
        if batch.held_back {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        if batch.events.is_empty() {
            return batch.head;
        }
    }
}

#[tokio::test]
async fn appended_events_load_back_and_get_dense_positions_in_commit_order() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    for i in 0..5 {
        store
            .append(&append_of(&format!("u{i}"), 0))
            .await
            .expect("append");
    }
    let loaded = store
        .load_stream(AggregateKind::Unit, "u3")
        .await
        .expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        (loaded[0].version, &loaded[0].fact, loaded[0].position),
        (1, &unit("u3"), None)
    );
    assert_eq!(store.head().await.expect("head"), 0);

    assert_eq!(sequence_all(&store).await, 5);
    let ledger = store.read_ledger(0, 100).await.expect("read");
    let positions: Vec<u64> = ledger.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5]);
    let ids: Vec<&str> = ledger.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["u0", "u1", "u2", "u3", "u4"],
        "commit order is position order"
    );
    assert!(ledger
        .windows(2)
        .all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert_eq!(ledger[0].publisher, "/commands/test");
    assert_eq!(ledger[0].correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(
        store
            .load_stream(AggregateKind::Unit, "u3")
            .await
            .expect("load")[0]
            .position,
        Some(4)
    );
}

#[tokio::test]
async fn the_chain_hash_is_recomputable_from_the_rows_alone() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    for i in 0..4 {
        store
            .append(&append_of(&format!("u{i}"), 0))
            .await
            .expect("append");
    }
    sequence_all(&store).await;
    let mut previous = chain::GENESIS;
    for event in store.read_ledger(0, 100).await.expect("read") {
        let stream = event.stream();
        let record = event.chain_record(&stream);
        let expected = chain::event_hash(&previous, &record).expect("hash");
        assert_eq!(
            event.hash,
            expected.to_vec(),
            "hash at position {}",
            event.position
        );
        previous = expected;
    }
    let head_hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM ledger_head")
        .fetch_one(store.pool())
        .await
        .expect("head");
    assert_eq!(head_hash, previous.to_vec());
}

#[tokio::test]
async fn it_should_not_append_twice_at_the_same_version() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    store.append(&append_of("u1", 0)).await.expect("first");
    let second = store.append(&append_of("u1", 0)).await;
    assert!(
        matches!(
            second,
            Err(AppendError::VersionConflict {
                expected_version: 0,
                ..
            })
        ),
        "{second:?}"
    );
    // Concurrent writers at one version: exactly one wins.
    let results = futures_join(&store, "u2", 8).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(AppendError::VersionConflict { .. })))
            .count(),
        7
    );
    assert_eq!(
        store
            .load_stream(AggregateKind::Unit, "u2")
            .await
            .expect("load")
            .len(),
        1
    );
}

async fn futures_join(store: &Store, id: &str, n: usize) -> Vec<Result<(), AppendError>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let store = store.clone();
        let append = append_of(id, 0);
        tasks.push(tokio::spawn(async move { store.append(&append).await }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("join"));
    }
    results
}

#[tokio::test]
async fn an_idempotency_key_is_recorded_with_the_events_and_cannot_be_taken_twice() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    let token = Uuid::now_v7();
    let mut first = append_of("u1", 0);
    first.idempotency = Some(Idempotency {
        token_id: token,
        key: "k-1".into(),
        command: "register_unit".into(),
        request_hash: vec![1, 2, 3],
    });
    store.append(&first).await.expect("append");
    let prior = store
        .prior_request(token, "k-1")
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(prior.command, "register_unit");
    assert_eq!(prior.request_hash, vec![1, 2, 3]);
    assert_eq!(prior.event_ids, vec![first.events[0].event_id]);
    assert_eq!(
        store
            .prior_request(Uuid::now_v7(), "k-1")
            .await
            .expect("read"),
        None
    );

    let mut again = append_of("u2", 0);
    again.idempotency = first.idempotency.clone();
    let result = store.append(&again).await;
    assert!(
        matches!(result, Err(AppendError::IdempotencyKeyTaken(ref k)) if k == "k-1"),
        "{result:?}"
    );
    // Nothing of the refused append was written.
    assert!(store
        .load_stream(AggregateKind::Unit, "u2")
        .await
        .expect("load")
        .is_empty());
}

/// docs/architecture.md decision 4: a writer whose transaction is still open
/// holds the sequencer back; nothing committed after it is sequenced (or
/// skipped) until it ends, and then everything is, in transaction order.
/// On a private cluster: the xmin horizon is cluster-wide.
#[tokio::test]
async fn a_late_commit_is_never_skipped() {
    let cluster = PrivatePostgres::start().await;
    let url = cluster.url("postgres");
    let store = store_at(&url).await;
    let sequencer = Sequencer::new(store.clone());

    // Writer A: inserts first (so it has the lowest transaction id) and
    // stays open.
    let mut held = store.pool().begin().await.expect("begin A");
    let a = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, \
         schema_version, data, metadata, effective_date, publisher, actor) \
         VALUES ($1, 'unit', 'held', 1, 'unit.registered.v1', 1, $2, '{}', '2007-01-01', 'test', 'test')",
    )
    .bind(a)
    .bind(unit("held").data())
    .execute(&mut *held)
    .await
    .expect("insert A");

    // Writers B and C commit while A is open.
    let b = append_of("b", 0);
    let c = append_of("c", 0);
    store.append(&b).await.expect("B");
    store.append(&c).await.expect("C");
    let batch = sequencer.sequence_batch().await.expect("sequence");
    assert_eq!(
        batch.events,
        vec![],
        "nothing after A's transaction is sequenced while A is open"
    );
    assert_eq!(store.head().await.expect("head"), 0);
    let unsequenced: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(unsequenced, 2, "B and C wait, committed but unsequenced");

    held.commit().await.expect("commit A");
    let batch = sequencer.sequence_batch().await.expect("sequence");
    assert_eq!(
        batch.events,
        vec![(a, 1), (b.events[0].event_id, 2), (c.events[0].event_id, 3)],
        "then everything, in transaction order, with dense positions"
    );
    let rows = sqlx::query("SELECT position FROM events ORDER BY position")
        .fetch_all(store.pool())
        .await
        .expect("rows");
    let positions: HashSet<i64> = rows.iter().map(|r| r.get::<i64, _>("position")).collect();
    assert_eq!(positions, HashSet::from([1, 2, 3]));
}

/// An aborted writer leaves no gap: its row is never visible, and the
/// sequencer moves on.
#[tokio::test]
async fn a_rolled_back_writer_leaves_no_gap() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    let mut aborted = store.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, \
         schema_version, data, metadata, effective_date, publisher, actor) \
         VALUES ($1, 'unit', 'gone', 1, 'unit.registered.v1', 1, $2, '{}', '2007-01-01', 'test', 'test')",
    )
    .bind(Uuid::now_v7())
    .bind(unit("gone").data())
    .execute(&mut *aborted)
    .await
    .expect("insert");
    aborted.rollback().await.expect("rollback");
    store.append(&append_of("kept", 0)).await.expect("append");
    assert_eq!(sequence_all(&store).await, 1);
    let ledger = store.read_ledger(0, 10).await.expect("read");
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].position, ledger[0].aggregate_id.as_str()),
        (1, "kept")
    );
}

/// The positions of the ledger, in order, with their event ids.
async fn positions_of(store: &Store) -> Vec<(Uuid, u64)> {
    store
        .read_ledger(0, 10_000)
        .await
        .expect("read the ledger")
        .iter()
        .map(|e| (e.event_id, e.position))
        .collect()
}

/// Whether every commit so far is flushed to the write-ahead log on disk.
async fn flushed(store: &Store) -> bool {
    sqlx::query_scalar("SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()")
        .fetch_one(store.pool())
        .await
        .expect("read the log positions")
}

/// ADR 8: the sequencer commits asynchronously. A batch lost with a crash of
/// PostgreSQL is sequenced again with the same positions (they follow from
/// the durable events alone), and `flush_commits`, which the relay runs
/// before publishing, makes a batch survive the crash. On a private cluster
/// whose log writer is slowed down, so that the crash really loses the
/// batch.
#[tokio::test]
async fn a_sequencer_batch_lost_in_a_crash_comes_back_with_the_same_positions() {
    let mut cluster = PrivatePostgres::start().await;
    let url = cluster.url("postgres");
    let store = store_at(&url).await;
    for setting in [
        "ALTER SYSTEM SET wal_writer_delay = '10s'",
        "ALTER SYSTEM SET autovacuum = off",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::query(setting)
            .execute(store.pool())
            .await
            .expect("configure the cluster");
    }
    for i in 0..20 {
        store
            .append(&append_of(&format!("u{i:02}"), 0))
            .await
            .expect("append");
    }
    assert_eq!(sequence_all(&store).await, 20);
    let before = positions_of(&store).await;
    assert!(
        !flushed(&store).await,
        "the sequencer's commit is not yet on disk"
    );
    store.pool().close().await;

    cluster.crash().await;
    cluster.start_again().await;
    let store = store_at(&url).await;
    assert_eq!(
        store.head().await.expect("head"),
        0,
        "the crash lost the batch (the appends, committed synchronously, are kept)"
    );
    let unsequenced: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(unsequenced, 20);

    assert_eq!(sequence_all(&store).await, 20);
    assert_eq!(
        positions_of(&store).await,
        before,
        "sequenced again, every event has the position it had"
    );

    // With the flush the relay makes before publishing, a batch survives.
    for i in 20..30 {
        store
            .append(&append_of(&format!("u{i:02}"), 0))
            .await
            .expect("append");
    }
    assert_eq!(sequence_all(&store).await, 30);
    let durable = positions_of(&store).await;
    store.flush_commits().await.expect("flush");
    assert!(flushed(&store).await);
    store.pool().close().await;
    cluster.crash().await;
    cluster.start_again().await;
    let store = store_at(&url).await;
    assert_eq!(store.head().await.expect("head"), 30);
    assert_eq!(positions_of(&store).await, durable);
}

fn keyed(append: Append, token: Uuid, key: &str) -> Append {
    Append {
        idempotency: Some(Idempotency {
            token_id: token,
            key: key.into(),
            command: "register_unit".into(),
            request_hash: key.as_bytes().to_vec(),
        }),
        ..append
    }
}

/// Runs `appends` at the same time; the answers in the same order.
async fn append_together(store: &Store, appends: Vec<Append>) -> Vec<Result<(), AppendError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, append) in appends.into_iter().enumerate() {
        let store = store.clone();
        tasks.spawn(async move { (i, store.append(&append).await) });
    }
    let mut answers: Vec<(usize, Result<(), AppendError>)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answers.push(joined.expect("join"));
    }
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// Group commit: appends made at the same time share a statement (and a
/// transaction), and each idempotency record lists its own events only,
/// in their order.
#[tokio::test]
async fn appends_made_together_share_one_statement_and_keep_their_own_records() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    let token = Uuid::now_v7();
    let appends: Vec<Append> = (0..64)
        .map(|i| {
            let mut append = keyed(append_of(&format!("g{i}"), 0), token, &format!("k-{i}"));
            if i % 4 == 0 {
                // A command recording two events.
                append.events.push(NewEvent {
                    event_id: Uuid::now_v7(),
                    fact: unit(&format!("g{i}")),
                    metadata: metadata(),
                });
            }
            append
        })
        .collect();
    let answers = append_together(&store, appends.clone()).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT xid) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert!(
        transactions < 64,
        "64 appends made together took {transactions} transactions"
    );
    for (i, append) in appends.iter().enumerate() {
        let prior = store
            .prior_request(token, &format!("k-{i}"))
            .await
            .expect("read")
            .expect("recorded");
        let own: Vec<Uuid> = append.events.iter().map(|e| e.event_id).collect();
        assert_eq!(prior.event_ids, own, "append {i}");
        let loaded = store
            .load_stream(AggregateKind::Unit, &append.aggregate_id)
            .await
            .expect("load");
        let versions: Vec<u64> = loaded.iter().map(|e| e.version).collect();
        let expected: Vec<u64> = (1..=own.len() as u64).collect();
        assert_eq!(versions, expected, "append {i}");
        assert_eq!(
            loaded.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            own,
            "append {i}"
        );
    }
    // Inside the shared transaction, events keep the order they were
    // appended in: the sequencer orders by it.
    let head = sequence_all(&store).await;
    assert_eq!(head, 64 + 16);
}

/// Group commit: when appends made together include conflicts, each gets
/// the answer it would have got alone, and only the refused ones are
/// missing.
#[tokio::test]
async fn appends_made_together_get_the_answers_they_would_get_alone() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    let token = Uuid::now_v7();
    store
        .append(&keyed(append_of("taken", 0), token, "used"))
        .await
        .expect("first");
    let mut appends = Vec::new();
    for i in 0..20 {
        appends.push(keyed(
            append_of(&format!("f{i}"), 0),
            token,
            &format!("f-{i}"),
        ));
    }
    // A stream already at version 1, and a key already used.
    appends.push(append_of("taken", 0));
    appends.push(keyed(append_of("other", 0), token, "used"));
    // Two appends at one version of a new stream: one of them wins.
    appends.push(append_of("twice", 0));
    appends.push(append_of("twice", 0));
    let answers = append_together(&store, appends.clone()).await;

    assert!(answers[..20].iter().all(Result::is_ok), "{answers:?}");
    assert!(
        matches!(
            answers[20],
            Err(AppendError::VersionConflict {
                expected_version: 0,
                ..
            })
        ),
        "{:?}",
        answers[20]
    );
    assert!(
        matches!(answers[21], Err(AppendError::IdempotencyKeyTaken(ref k)) if k == "used"),
        "{:?}",
        answers[21]
    );
    assert_eq!(answers[22..].iter().filter(|a| a.is_ok()).count(), 1);
    assert_eq!(
        answers[22..]
            .iter()
            .filter(|a| matches!(a, Err(AppendError::VersionConflict { .. })))
            .count(),
        1
    );

    let written: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM events ORDER BY event_id")
        .fetch_all(store.pool())
        .await
        .expect("read");
    let mut expected: Vec<Uuid> = vec![
        store
            .prior_request(token, "used")
            .await
            .expect("read")
            .expect("first")
            .event_ids[0],
    ];
    for (append, answer) in appends.iter().zip(&answers) {
        if answer.is_ok() {
            expected.push(append.events[0].event_id);
        }
    }
    expected.sort();
    assert_eq!(written, expected, "exactly the accepted appends' events");
    assert!(store
        .load_stream(AggregateKind::Unit, "other")
        .await
        .expect("load")
        .is_empty());
}

/// Loads asked for together are answered by one statement, each with its
/// own stream's events in version order (an unknown stream: none).
#[tokio::test]
async fn streams_loaded_together_each_get_their_own_events() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    for i in 0..30u64 {
        let mut append = append_of(&format!("l{i}"), 0);
        for _ in 0..i % 3 {
            append.events.push(NewEvent {
                event_id: Uuid::now_v7(),
                fact: unit(&format!("l{i}")),
                metadata: metadata(),
            });
        }
        store.append(&append).await.expect("append");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32u64 {
        let store = store.clone();
        tasks.spawn(async move {
            let events = store
                .load_stream(AggregateKind::Unit, &format!("l{i}"))
                .await
                .expect("load");
            (i, events)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, events) = joined.expect("join");
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        let expected: Vec<u64> = if i < 30 {
            (1..=1 + i % 3).collect()
        } else {
            Vec::new()
        };
        assert_eq!(versions, expected, "stream l{i}");
        assert!(
            events
                .iter()
                .all(|e| matches!(&e.fact, Fact::UnitRegistered(u) if u.unit_id.as_str() == format!("l{i}"))),
            "stream l{i} holds another stream's events"
        );
    }
}

/// The store's connections run without JIT: its statements are short, and
/// a compile costs more than they do.
#[tokio::test]
async fn the_store_connects_without_jit_compilation() {
    let db = TestDatabase::create().await;
    let store = store_at(db.url()).await;
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(store.pool())
        .await
        .expect("show");
    assert_eq!(jit, "off");
}
