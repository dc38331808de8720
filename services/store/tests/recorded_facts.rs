//! A stream's recorded facts (what audit trails show) against a real
//! PostgreSQL: only sequenced facts, in ledger order, with the provenance
//! and hash the events table holds.

use sqlx::Row;
use tledger_events::facts::{UnitRegistered, UnitReorganised};
use tledger_events::{AggregateKind, Date, Fact, UnitId, UnitLevel};
use tledger_store::{Append, EventMetadata, NewEvent, Store};
use tledger_tests::TestDatabase;
use uuid::Uuid;

mod support;
use support::sequence_all;

fn date(s: &str) -> Date {
    s.parse().expect("date")
}

fn append(id: &str, expected_version: u64, fact: Fact, correlation: Option<&str>) -> Append {
    Append {
        aggregate: AggregateKind::Unit,
        aggregate_id: id.into(),
        expected_version,
        events: vec![NewEvent {
            event_id: Uuid::now_v7(),
            fact,
            metadata: EventMetadata {
                publisher: "/commands/clerk".into(),
                actor: "clerk".into(),
                command_id: Some(format!("command-{expected_version}")),
                correlation_id: correlation.map(str::to_owned),
                causation_id: None,
            },
        }],
        idempotency: None,
    }
}

#[tokio::test]
async fn recorded_facts_are_the_sequenced_ones_with_the_rows_provenance_and_hash() {
    let db = TestDatabase::create().await;
    let store = Store::connect(db.url(), 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    let registered = Fact::UnitRegistered(UnitRegistered {
        unit_id: UnitId::parse("dai-loc").expect("id"),
        name: "Đại Lộc".into(),
        level: UnitLevel::District,
        parent_id: None,
        effective_date: date("1997-01-01"),
    });
    let renamed = Fact::UnitReorganised(UnitReorganised {
        unit_id: UnitId::parse("dai-loc").expect("id"),
        name: Some("Huyện Đại Lộc".into()),
        parent_id: None,
        dissolved_into: None,
        effective_date: date("2005-01-01"),
    });
    store
        .append(&append("dai-loc", 0, registered.clone(), Some("corr-7")))
        .await
        .expect("append");
    store
        .append(&append("other", 0, registered.clone(), None))
        .await
        .expect("append");
    assert!(
        store
            .recorded_facts(AggregateKind::Unit, "dai-loc")
            .await
            .expect("read")
            .is_empty(),
        "nothing is sequenced yet"
    );
    sequence_all(&store).await;
    store
        .append(&append("dai-loc", 1, renamed.clone(), None))
        .await
        .expect("append");
    let facts = store
        .recorded_facts(AggregateKind::Unit, "dai-loc")
        .await
        .expect("read");
    assert_eq!(facts.len(), 1, "the renaming is not sequenced yet");
    let first = &facts[0];
    assert_eq!(
        (
            first.version,
            first.event_type.as_str(),
            first.effective_date.to_string(),
            first.publisher.as_str(),
            first.actor.as_str(),
            first.command_id.as_deref(),
            first.correlation_id.as_deref(),
            &first.data,
        ),
        (
            1,
            "unit.registered.v1",
            "1997-01-01".to_owned(),
            "/commands/clerk",
            "clerk",
            Some("command-0"),
            Some("corr-7"),
            &registered.data(),
        )
    );

    sequence_all(&store).await;
    let facts = store
        .recorded_facts(AggregateKind::Unit, "dai-loc")
        .await
        .expect("read");
    let rows = sqlx::query(
        "SELECT event_id, position, recorded_at, hash FROM events \
         WHERE aggregate_id = 'dai-loc' ORDER BY position",
    )
    .fetch_all(store.pool())
    .await
    .expect("rows");
    assert_eq!(facts.len(), 2);
    for (fact, row) in facts.iter().zip(&rows) {
        assert_eq!(fact.event_id, row.get::<Uuid, _>("event_id"));
        assert_eq!(fact.position as i64, row.get::<i64, _>("position"));
        assert_eq!(
            fact.recorded_at,
            row.get::<chrono::DateTime<chrono::Utc>, _>("recorded_at")
        );
        assert_eq!(fact.hash, row.get::<Vec<u8>, _>("hash"));
        assert_eq!(fact.hash.len(), 32);
    }
    assert_eq!(
        facts.iter().map(|f| f.position).collect::<Vec<_>>(),
        vec![1, 3],
        "ledger order, the other stream's fact (position 2) left out"
    );
    assert_eq!(facts[1].data, renamed.data());
    assert!(store
        .recorded_facts(AggregateKind::Official, "dai-loc")
        .await
        .expect("read")
        .is_empty());
}
