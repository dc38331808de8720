//! What publishing bodies sent, beside the facts it became: publishers,
//! receipts, quarantine, parked facts and import progress.
//!
//! Accepted facts themselves are deduplicated through the idempotency
//! records written with their events ([`crate::Idempotency`]); everything
//! else a publisher sent ends here, so that nothing is dropped without a
//! record. Writes that belong together (a quarantined message and its
//! receipt; a parked fact and its receipt) are one transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::append::to_i64;
use crate::group_commit::{replicate, BatchAnswers};
use crate::{Store, StoreError};

/// A registered publishing body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherRecord {
    pub publisher_id: String,
    pub source: String,
    /// The root of its unit subtree; `None`: every unit.
    pub unit_id: Option<String>,
    /// The fact types it may publish; `None`: every type.
    pub types: Option<Vec<String>>,
    /// Its ed25519 public key; `None`: it does not sign.
    pub public_key: Option<Vec<u8>>,
    /// The idempotency identity its accepted facts are recorded under.
    pub dedup_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The latest answer to one `(source, id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub source: String,
    pub id: String,
    pub publisher_id: String,
    /// `accepted`, `duplicate`, `parked` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
    pub field: Option<String>,
    pub position: Option<u64>,
}

/// A rejected message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineItem {
    pub item_id: Uuid,
    pub publisher_id: String,
    pub source: Option<String>,
    pub id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub field: Option<String>,
    /// `quarantined`, `resubmitted` or `discarded`.
    pub status: String,
    pub message: Vec<u8>,
    pub resolved_by: Option<String>,
    pub resolved_note: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A fact waiting for the streams it refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedFact {
    pub source: String,
    pub id: String,
    pub publisher_id: String,
    pub message: Vec<u8>,
    /// Stream names (`official-…`, `enrollment-…`, `unit-…`).
    pub waiting_for: Vec<String>,
    pub parked_at: DateTime<Utc>,
    /// The fact's own stream, which later facts of its body wait behind it
    /// on; `None` for a retraction.
    pub stream: Option<String>,
}

/// The earliest parked fact that a fact of the same body and stream waits
/// behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedAhead {
    pub id: String,
    pub waiting_for: Vec<String>,
}

const UPSERT_RECEIPT: &str = r#"
INSERT INTO ingest_receipts (source, id, publisher_id, status, reason, field, position, issued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now())
ON CONFLICT (source, id) DO UPDATE
SET publisher_id = EXCLUDED.publisher_id, status = EXCLUDED.status, reason = EXCLUDED.reason,
    field = EXCLUDED.field, position = EXCLUDED.position, issued_at = EXCLUDED.issued_at
"#;

/// Receipts for many `(source, id)` in one statement; where one key comes
/// twice, the later receipt is the one kept, as if written one by one.
const UPSERT_RECEIPTS: &str = r#"
WITH r AS (
    SELECT DISTINCT ON (source, id) *
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::bigint[])
         WITH ORDINALITY AS r(source, id, publisher_id, status, reason, field, position, ord)
    ORDER BY source, id, ord DESC
), unparked AS (
    DELETE FROM parked_facts p USING r
    WHERE p.source = r.source AND p.id = r.id AND r.status <> 'parked'
)
INSERT INTO ingest_receipts (source, id, publisher_id, status, reason, field, position, issued_at)
SELECT source, id, publisher_id, status, reason, field, position, now() FROM r
ON CONFLICT (source, id) DO UPDATE
SET publisher_id = EXCLUDED.publisher_id, status = EXCLUDED.status, reason = EXCLUDED.reason,
    field = EXCLUDED.field, position = EXCLUDED.position, issued_at = EXCLUDED.issued_at
"#;

/// The most receipts gathered into one statement.
pub(crate) const MAX_RECEIPTS_PER_STATEMENT: usize = 512;

/// Runs gathered receipts in one statement; when the server refuses it,
/// each on its own, so that each gets the answer it would have got alone.
pub(crate) fn receipt_batch(
    pool: PgPool,
    receipts: Vec<ReceiptRecord>,
) -> BatchAnswers<Result<(), StoreError>> {
    Box::pin(async move {
        let context = "recording a receipt";
        match record_receipts(&pool, &receipts).await {
            Ok(()) => receipts.iter().map(|_| Ok(())).collect(),
            Err(sqlx::Error::Database(_)) if receipts.len() > 1 => {
                let mut answers = Vec::with_capacity(receipts.len());
                for receipt in &receipts {
                    answers.push(
                        record_receipts(&pool, std::slice::from_ref(receipt))
                            .await
                            .map_err(StoreError::db(context)),
                    );
                }
                answers
            }
            Err(e) => receipts
                .iter()
                .map(|_| Err(StoreError::db(context)(replicate(&e))))
                .collect(),
        }
    })
}

async fn record_receipts(pool: &PgPool, receipts: &[ReceiptRecord]) -> Result<(), sqlx::Error> {
    let column = |f: fn(&ReceiptRecord) -> Option<&str>| -> Vec<Option<&str>> {
        receipts.iter().map(f).collect()
    };
    sqlx::query(UPSERT_RECEIPTS)
        .bind(column(|r| Some(&r.source)))
        .bind(column(|r| Some(&r.id)))
        .bind(column(|r| Some(&r.publisher_id)))
        .bind(column(|r| Some(&r.status)))
        .bind(column(|r| r.reason.as_deref()))
        .bind(column(|r| r.field.as_deref()))
        .bind(
            receipts
                .iter()
                .map(|r| r.position.map(to_i64))
                .collect::<Vec<_>>(),
        )
        .execute(pool)
        .await
        .map(|_| ())
}

fn bind_receipt<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    receipt: &'q ReceiptRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&receipt.source)
        .bind(&receipt.id)
        .bind(&receipt.publisher_id)
        .bind(&receipt.status)
        .bind(&receipt.reason)
        .bind(&receipt.field)
        .bind(receipt.position.map(to_i64))
}

fn publisher_from(row: &sqlx::postgres::PgRow) -> PublisherRecord {
    PublisherRecord {
        publisher_id: row.get("publisher_id"),
        source: row.get("source"),
        unit_id: row.get("unit_id"),
        types: row.get("types"),
        public_key: row.get("public_key"),
        dedup_id: row.get("dedup_id"),
        created_at: row.get("created_at"),
        disabled_at: row.get("disabled_at"),
    }
}

fn quarantine_from(row: &sqlx::postgres::PgRow) -> QuarantineItem {
    QuarantineItem {
        item_id: row.get("item_id"),
        publisher_id: row.get("publisher_id"),
        source: row.get("source"),
        id: row.get("id"),
        received_at: row.get("received_at"),
        reason: row.get("reason"),
        field: row.get("field"),
        status: row.get("status"),
        message: row.get("message"),
        resolved_by: row.get("resolved_by"),
        resolved_note: row.get("resolved_note"),
        resolved_at: row.get("resolved_at"),
    }
}

fn parked_from(row: &sqlx::postgres::PgRow) -> ParkedFact {
    ParkedFact {
        source: row.get("source"),
        id: row.get("id"),
        publisher_id: row.get("publisher_id"),
        message: row.get("message"),
        waiting_for: row.get("waiting_for"),
        parked_at: row.get("parked_at"),
        stream: row.get("stream"),
    }
}

const PUBLISHER_COLUMNS: &str =
    "publisher_id, source, unit_id, types, public_key, dedup_id, created_at, disabled_at";
const QUARANTINE_COLUMNS: &str = "item_id, publisher_id, source, id, received_at, reason, field, \
     status, message, resolved_by, resolved_note, resolved_at";

impl Store {
    /// Registers a publisher; `false` when its id or source is taken.
    #[tracing::instrument(level = "debug", name = "store.add_publisher", skip_all, fields(publisher_id = %publisher.publisher_id))]
    pub async fn add_publisher(&self, publisher: &PublisherRecord) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO publishers (publisher_id, source, unit_id, types, public_key, dedup_id) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&publisher.publisher_id)
        .bind(&publisher.source)
        .bind(&publisher.unit_id)
        .bind(&publisher.types)
        .bind(&publisher.public_key)
        .bind(publisher.dedup_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("registering a publisher"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Every publisher, by id.
    #[tracing::instrument(level = "debug", name = "store.publishers", skip_all)]
    pub async fn publishers(&self) -> Result<Vec<PublisherRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PUBLISHER_COLUMNS} FROM publishers ORDER BY publisher_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("listing publishers"))?;
        Ok(rows.iter().map(publisher_from).collect())
    }

    /// Disables a publisher (its facts are rejected from now on); `false`
    /// when there is no such enabled publisher.
    #[tracing::instrument(level = "debug", name = "store.disable_publisher", skip_all, fields(publisher_id = %publisher_id))]
    pub async fn disable_publisher(&self, publisher_id: &str) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE publishers SET disabled_at = now() \
             WHERE publisher_id = $1 AND disabled_at IS NULL",
        )
        .bind(publisher_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("disabling a publisher"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Records the latest receipt for its `(source, id)`; an accepted or
    /// duplicate fact is no longer parked. A receipt is written for every
    /// fact published, so receipts recorded at the same time are gathered
    /// into one statement (group commit).
    #[tracing::instrument(level = "debug", name = "store.record_receipt", skip_all, fields(source = %receipt.source, id = %receipt.id, status = %receipt.status))]
    pub async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<(), StoreError> {
        self.batches()
            .receipts
            .submit(self.pool(), receipt.clone())
            .await
            .unwrap_or_else(|unanswered| Err(unanswered.into_error("recording a receipt", "")))
    }

    /// The latest receipt for `(source, id)`.
    #[tracing::instrument(level = "debug", name = "store.receipt", skip_all, fields(source = %source, id = %id))]
    pub async fn receipt(
        &self,
        source: &str,
        id: &str,
    ) -> Result<Option<ReceiptRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT source, id, publisher_id, status, reason, field, position \
             FROM ingest_receipts WHERE source = $1 AND id = $2",
        )
        .bind(source)
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading a receipt"))?;
        Ok(row.map(|row| ReceiptRecord {
            source: row.get("source"),
            id: row.get("id"),
            publisher_id: row.get("publisher_id"),
            status: row.get("status"),
            reason: row.get("reason"),
            field: row.get("field"),
            position: row.get::<Option<i64>, _>("position").map(|p| p as u64),
        }))
    }

    /// Keeps a rejected message and its receipt, in one transaction.
    #[tracing::instrument(level = "debug", name = "store.quarantine", skip_all, fields(item_id = %item.item_id, publisher_id = %item.publisher_id))]
    pub async fn quarantine(
        &self,
        item: &QuarantineItem,
        receipt: Option<&ReceiptRecord>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("quarantining a message"))?;
        sqlx::query(
            "INSERT INTO quarantine (item_id, publisher_id, source, id, received_at, reason, field, \
             status, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (item_id) DO NOTHING",
        )
        .bind(item.item_id)
        .bind(&item.publisher_id)
        .bind(&item.source)
        .bind(&item.id)
        .bind(item.received_at)
        .bind(&item.reason)
        .bind(&item.field)
        .bind(&item.status)
        .bind(&item.message)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("quarantining a message"))?;
        if let Some(receipt) = receipt {
            bind_receipt(sqlx::query(UPSERT_RECEIPT), receipt)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("recording a receipt"))?;
            sqlx::query("DELETE FROM parked_facts WHERE source = $1 AND id = $2")
                .bind(&receipt.source)
                .bind(&receipt.id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("unparking a fact"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("quarantining a message"))
    }

    /// Quarantined messages, oldest first, of one publisher or of all.
    #[tracing::instrument(level = "debug", name = "store.quarantine_items", skip_all, fields(publisher_id = ?publisher_id, limit))]
    pub async fn quarantine_items(
        &self,
        publisher_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QuarantineItem>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine \
             WHERE $1::text IS NULL OR publisher_id = $1 \
             ORDER BY received_at, item_id LIMIT $2"
        ))
        .bind(publisher_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("listing the quarantine"))?;
        Ok(rows.iter().map(quarantine_from).collect())
    }

    /// One quarantined message.
    #[tracing::instrument(level = "debug", name = "store.quarantine_item", skip_all, fields(item_id = %item_id))]
    pub async fn quarantine_item(
        &self,
        item_id: Uuid,
    ) -> Result<Option<QuarantineItem>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE item_id = $1"
        ))
        .bind(item_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading the quarantine"))?;
        Ok(row.as_ref().map(quarantine_from))
    }

    /// Closes a quarantined message as `resubmitted` or `discarded`, with who
    /// and why; `false` when it was not (or no longer) quarantined.
    #[tracing::instrument(level = "debug", name = "store.resolve_quarantine", skip_all, fields(item_id = %item_id, status = %status))]
    pub async fn resolve_quarantine(
        &self,
        item_id: Uuid,
        status: &str,
        by: &str,
        note: &str,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE quarantine SET status = $2, resolved_by = $3, resolved_note = $4, \
             resolved_at = now() WHERE item_id = $1 AND status = 'quarantined'",
        )
        .bind(item_id)
        .bind(status)
        .bind(by)
        .bind(note)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("resolving a quarantined message"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Parks a fact with its receipt, in one transaction. A fact parked
    /// again (a redelivery, a retry) keeps its first parking time, which
    /// its deadline counts from, and its place in the order of retries.
    #[tracing::instrument(level = "debug", name = "store.park", skip_all, fields(source = %fact.source, id = %fact.id, publisher_id = %fact.publisher_id))]
    pub async fn park(&self, fact: &ParkedFact, receipt: &ReceiptRecord) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("parking a fact"))?;
        sqlx::query(
            "INSERT INTO parked_facts (source, id, publisher_id, message, waiting_for, parked_at, \
             stream) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source, id) DO UPDATE \
             SET publisher_id = EXCLUDED.publisher_id, message = EXCLUDED.message, \
                 waiting_for = EXCLUDED.waiting_for, stream = EXCLUDED.stream",
        )
        .bind(&fact.source)
        .bind(&fact.id)
        .bind(&fact.publisher_id)
        .bind(&fact.message)
        .bind(&fact.waiting_for)
        .bind(fact.parked_at)
        .bind(&fact.stream)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("parking a fact"))?;
        bind_receipt(sqlx::query(UPSERT_RECEIPT), receipt)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("recording a receipt"))?;
        tx.commit().await.map_err(StoreError::db("parking a fact"))
    }

    /// Parked facts whose every awaited stream now exists, in the order
    /// they were first parked (so a body's facts of one stream come in the
    /// order it published them).
    #[tracing::instrument(level = "debug", name = "store.parked_ready", skip_all, fields(limit))]
    pub async fn parked_ready(&self, limit: u32) -> Result<Vec<ParkedFact>, StoreError> {
        // A stream name is `<kind>-<id>`; kinds have no `-`, ids may.
        let rows = sqlx::query(
            "SELECT p.source, p.id, p.publisher_id, p.message, p.waiting_for, p.parked_at, p.stream \
             FROM parked_facts p \
             WHERE NOT EXISTS ( \
                 SELECT 1 FROM unnest(p.waiting_for) AS w(stream) \
                 WHERE NOT EXISTS ( \
                     SELECT 1 FROM events e \
                     WHERE e.aggregate_type = split_part(w.stream, '-', 1) \
                       AND e.aggregate_id = substr(w.stream, length(split_part(w.stream, '-', 1)) + 2) \
                       AND e.version = 1)) \
             ORDER BY p.park_order LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading parked facts"))?;
        Ok(rows.iter().map(parked_from).collect())
    }

    /// Parked facts parked before `before`, in the order they were first
    /// parked: their time is up.
    #[tracing::instrument(level = "debug", name = "store.parked_before", skip_all, fields(limit))]
    pub async fn parked_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ParkedFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, id, publisher_id, message, waiting_for, parked_at, stream \
             FROM parked_facts WHERE parked_at < $1 ORDER BY park_order LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading parked facts"))?;
        Ok(rows.iter().map(parked_from).collect())
    }

    /// The earliest fact parked from `source` on `stream` ahead of the fact
    /// `id`: before it in the order of parking when `id` is parked itself,
    /// otherwise any.
    #[tracing::instrument(level = "debug", name = "store.parked_ahead", skip_all, fields(source = %source, stream = %stream, id = %id))]
    pub async fn parked_ahead(
        &self,
        source: &str,
        stream: &str,
        id: &str,
    ) -> Result<Option<ParkedAhead>, StoreError> {
        let row = sqlx::query(
            "SELECT p.id, p.waiting_for FROM parked_facts p \
             WHERE p.source = $1 AND p.stream = $2 AND p.id <> $3 \
               AND p.park_order < COALESCE( \
                   (SELECT own.park_order FROM parked_facts own \
                    WHERE own.source = $1 AND own.id = $3), 9223372036854775807) \
             ORDER BY p.park_order LIMIT 1",
        )
        .bind(source)
        .bind(stream)
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading parked facts"))?;
        Ok(row.map(|row| ParkedAhead {
            id: row.get("id"),
            waiting_for: row.get("waiting_for"),
        }))
    }

    /// How many facts are parked.
    #[tracing::instrument(level = "debug", name = "store.parked_count", skip_all)]
    pub async fn parked_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_facts")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("counting parked facts"))?;
        Ok(n as u64)
    }

    /// Which of these streams (`<kind>-<id>`) exist.
    #[tracing::instrument(level = "debug", name = "store.existing_streams", skip_all, fields(streams = streams.len()))]
    pub async fn existing_streams(&self, streams: &[String]) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT w.stream FROM unnest($1::text[]) AS w(stream) \
             WHERE EXISTS (SELECT 1 FROM events e \
                 WHERE e.aggregate_type = split_part(w.stream, '-', 1) \
                   AND e.aggregate_id = substr(w.stream, length(split_part(w.stream, '-', 1)) + 2) \
                   AND e.version = 1)",
        )
        .bind(streams)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("looking up streams"))
    }

    /// How many lines of the file with this digest an import has finished.
    #[tracing::instrument(level = "debug", name = "store.import_progress", skip_all)]
    pub async fn import_progress(&self, file_sha256: &[u8]) -> Result<u64, StoreError> {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT lines_done FROM import_progress WHERE file_sha256 = $1")
                .bind(file_sha256)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::db("reading import progress"))?;
        Ok(done.unwrap_or(0) as u64)
    }

    /// Records that the first `lines_done` lines of the file are finished.
    #[tracing::instrument(
        level = "debug",
        name = "store.set_import_progress",
        skip_all,
        fields(lines_done)
    )]
    pub async fn set_import_progress(
        &self,
        file_sha256: &[u8],
        lines_done: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO import_progress (file_sha256, lines_done) VALUES ($1, $2) \
             ON CONFLICT (file_sha256) DO UPDATE \
             SET lines_done = GREATEST(import_progress.lines_done, EXCLUDED.lines_done), \
                 updated_at = now()",
        )
        .bind(file_sha256)
        .bind(to_i64(lines_done))
        .execute(self.pool())
        .await
        .map_err(StoreError::db("recording import progress"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tledger_tests::TestDatabase;

    fn receipt(id: &str, status: &str, position: Option<u64>) -> ReceiptRecord {
        ReceiptRecord {
            source: "/school".into(),
            id: id.into(),
            publisher_id: "school".into(),
            status: status.into(),
            reason: (status != "accepted").then(|| format!("{status} because")),
            field: None,
            position,
        }
    }

    /// Receipts gathered into one statement end as if written one by one:
    /// of two for one `(source, id)`, the later is kept, and an accepted
    /// fact is no longer parked, while a fact still parked stays parked.
    #[tokio::test]
    async fn receipts_written_together_end_as_if_written_in_turn() {
        let db = TestDatabase::create().await;
        let store = Store::connect(db.url(), 4).await.expect("connect");
        store.migrate().await.expect("migrate");
        for id in ["f-1", "f-2"] {
            let parked = ParkedFact {
                source: "/school".into(),
                id: id.into(),
                publisher_id: "school".into(),
                message: b"{}".to_vec(),
                waiting_for: vec!["official-o-1".into()],
                parked_at: Utc::now(),
                stream: None,
            };
            store
                .park(&parked, &receipt(id, "parked", None))
                .await
                .expect("park");
        }
        let answers = receipt_batch(
            store.pool().clone(),
            vec![
                receipt("f-1", "parked", None),
                receipt("f-1", "accepted", Some(7)),
                receipt("f-2", "parked", None),
                receipt("f-3", "rejected", None),
            ],
        )
        .await;
        assert_eq!(answers.len(), 4);
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");

        let f1 = store.receipt("/school", "f-1").await.expect("read");
        assert_eq!(f1, Some(receipt("f-1", "accepted", Some(7))));
        let f3 = store.receipt("/school", "f-3").await.expect("read");
        assert_eq!(f3, Some(receipt("f-3", "rejected", None)));
        let parked: Vec<String> = sqlx::query_scalar("SELECT id FROM parked_facts ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("read");
        assert_eq!(parked, vec!["f-2".to_owned()]);
    }
}
