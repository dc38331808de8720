//! A fact stored at an older schema version is read back as the current
//! one, through the store's upcasting, while the ledger and its hash chain
//! keep the stored form. The older form is synthetic: a `unit.registered.v0`
//! that called the name `title` and had no level (a commune).

use serde_json::{json, Value};
use tledger_events::chain;
use tledger_events::facts::UnitRegistered;
use tledger_events::upcasting::{Body, UpcastError, Upcaster, Upcasting};
use tledger_events::{AggregateKind, Date, Fact, FactType, UnitId, UnitLevel};
use tledger_store::{Store, StoreError};
use tledger_tests::TestDatabase;
use uuid::Uuid;

mod support;
use support::sequence_all;

fn unit_registered_v0(mut body: Body) -> Result<Body, String> {
    let title = body.remove("title").ok_or("no title")?;
    body.insert("name".to_owned(), title);
    body.insert("level".to_owned(), Value::String("commune".to_owned()));
    Ok(body)
}

fn with_v0() -> Upcasting {
    Upcasting::shipped().with(Upcaster {
        fact_type: FactType::UnitRegistered,
        from: 0,
        step: unit_registered_v0,
    })
}

fn stored_v0() -> Value {
    json!({"unit_id": "old", "title": "Xã Cũ", "effective_date": "2007-01-01"})
}

fn current() -> Fact {
    Fact::UnitRegistered(UnitRegistered {
        unit_id: UnitId::parse("old").expect("unit id"),
        name: "Xã Cũ".to_owned(),
        level: UnitLevel::Commune,
        parent_id: None,
        effective_date: "2007-01-01".parse::<Date>().expect("date"),
    })
}

#[tokio::test]
async fn a_fact_stored_at_an_older_version_reads_back_as_the_current_one() {
    let db = TestDatabase::create().await;
    let plain = Store::connect(db.url(), 4).await.expect("connect");
    plain.migrate().await.expect("migrate");
    let event_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, \
         schema_version, data, metadata, effective_date, publisher, actor) \
         VALUES ($1, 'unit', 'old', 1, 'unit.registered.v0', 0, $2, \
                 '{\"publisher\": \"test\", \"actor\": \"test\"}', '2007-01-01', 'test', 'test')",
    )
    .bind(event_id)
    .bind(stored_v0())
    .execute(plain.pool())
    .await
    .expect("insert the old row");
    sequence_all(&plain).await;

    // Without a step for version 0 the row is refused, never misread.
    match plain.load_stream(AggregateKind::Unit, "old").await {
        Err(StoreError::Upcast {
            event_id: id,
            source: UpcastError::UnknownVersion { version: 0, .. },
        }) => assert_eq!(id, event_id),
        other => panic!("expected an unknown version, got {other:?}"),
    }

    let store = plain.clone().with_upcasting(with_v0());
    let loaded = store
        .load_stream(AggregateKind::Unit, "old")
        .await
        .expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        (loaded[0].event_id, loaded[0].version, &loaded[0].fact),
        (event_id, 1, &current())
    );
    let streams = store
        .load_streams(AggregateKind::Unit)
        .await
        .expect("load streams");
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].1[0].fact, current());

    // The read models' path: the current type, and text that parses as it.
    let facts = store.read_facts(0, 10).await.expect("read facts");
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].event_type, "unit.registered.v1");
    let fact_type: FactType = facts[0].event_type.parse().expect("a fact type");
    assert_eq!(
        Fact::from_recorded(fact_type, &facts[0].data).expect("a fact"),
        current()
    );

    // The ledger keeps the stored form, and the chain is over it.
    let ledger = store.read_ledger(0, 10).await.expect("read ledger");
    assert_eq!(ledger.len(), 1);
    let event = &ledger[0];
    assert_eq!(
        (event.event_type.as_str(), &event.data),
        ("unit.registered.v0", &stored_v0())
    );
    let stream = event.stream();
    let record = event.chain_record(&stream);
    let expected = chain::event_hash(&chain::GENESIS, &record).expect("hash");
    assert_eq!(event.hash, expected.to_vec());
}
