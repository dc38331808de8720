//! Access records: who read which person's history, and which unit's
//! reports, when (docs/contract.md, Access: "each read of a person's history is
//! logged"; the access log is read by admins and inspectors).
//!
//! A record is written before the answer leaves, and a read whose record
//! cannot be written is refused (503): the data are personal, so an answer
//! nobody can trace is worse than no answer.
//!
//! Records are written one at a time under an advisory lock held to the end
//! of the writing transaction, so record ids follow commit order (and
//! `read_at` with them, as far as the clock does); a reader paging with
//! `after` never skips a record that committed late (ADR 10).
//!
//! Served by [`crate::web`]: `GET /v1/access-log?since=<RFC 3339>&after=<id>&limit=<n>`: records read
//! at or after `since` (default: all) with an id above `after` (default 0),
//! oldest first, at most `limit` (default 100, at most 1,000);
//! `{"items":[{"id","read_at","token_id","token_name","role","path",
//! "official_id","enrollment_id","unit_id"}],"next"}` where `next` is the
//! `after` of the following page, `null` on the last.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::Row;
use tledger_domain::ErrorCode;
use tledger_events::chain::format_instant;
use tledger_store::{Store, StoreError};
use uuid::Uuid;

use crate::access::Caller;
use crate::commands::Refusal;

/// The advisory lock that serialises access records ("tlaccess" in ASCII).
const ACCESS_LOG_LOCK: i64 = 0x746c_6163_6365_7373;
/// Records per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page.
pub const MAX_LIMIT: u32 = 1000;

/// What was read: the request and the person or unit it was about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Read<'a> {
    /// The path and query as requested.
    pub path: &'a str,
    pub official_id: Option<&'a str>,
    pub enrollment_id: Option<&'a str>,
    pub unit_id: Option<&'a str>,
}

/// One access record as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    pub id: u64,
    pub read_at: DateTime<Utc>,
    pub token_id: Uuid,
    pub token_name: String,
    pub role: String,
    pub path: String,
    pub official_id: Option<String>,
    pub enrollment_id: Option<String>,
    pub unit_id: Option<String>,
}

impl AccessRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "read_at": format_instant(self.read_at),
            "token_id": self.token_id,
            "token_name": self.token_name,
            "role": self.role,
            "path": self.path,
            "official_id": self.official_id,
            "enrollment_id": self.enrollment_id,
            "unit_id": self.unit_id,
        })
    }
}

/// A page of records and the `after` of the next page, if there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<AccessRecord>,
    pub next: Option<u64>,
}

/// Writes the record of `caller` reading `what`. The id is drawn and the
/// clock read after the lock is taken, so both follow commit order.
pub async fn record(store: &Store, caller: &Caller, what: &Read<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "WITH turn AS (SELECT pg_advisory_xact_lock($1)) \
         INSERT INTO access_log (read_at, token_id, token_name, role, path, \
                                 official_id, enrollment_id, unit_id) \
         SELECT clock_timestamp(), $2, $3, $4, $5, $6, $7, $8 FROM turn",
    )
    .bind(ACCESS_LOG_LOCK)
    .bind(caller.token_id)
    .bind(&caller.name)
    .bind(caller.role.as_str())
    .bind(what.path)
    .bind(what.official_id)
    .bind(what.enrollment_id)
    .bind(what.unit_id)
    .execute(store.pool())
    .await
    .map_err(StoreError::db("writing an access record"))?;
    Ok(())
}

/// Records read at or after `since` with ids above `after`, oldest first, at
/// most `limit`.
pub async fn list(
    store: &Store,
    since: Option<DateTime<Utc>>,
    after: u64,
    limit: u32,
) -> Result<Page, StoreError> {
    let rows = sqlx::query(
        "SELECT access_id, read_at, token_id, token_name, role, path, \
                official_id, enrollment_id, unit_id \
         FROM access_log \
         WHERE access_id > $1 AND ($2::timestamptz IS NULL OR read_at >= $2) \
         ORDER BY access_id LIMIT $3",
    )
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(since)
    // One more than asked, to know whether another page follows.
    .bind(i64::from(limit) + 1)
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::db("listing access records"))?;
    let mut items: Vec<AccessRecord> = rows
        .iter()
        .map(|row| AccessRecord {
            id: u64::try_from(row.get::<i64, _>("access_id")).unwrap_or(0),
            read_at: row.get("read_at"),
            token_id: row.get("token_id"),
            token_name: row.get("token_name"),
            role: row.get("role"),
            path: row.get("path"),
            official_id: row.get("official_id"),
            enrollment_id: row.get("enrollment_id"),
            unit_id: row.get("unit_id"),
        })
        .collect();
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more {
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page { items, next })
}

/// Writes the record of a read about to be answered; a failure refuses the
/// read.
pub async fn record_or_refuse(
    store: &Store,
    caller: &Caller,
    what: &Read<'_>,
) -> Result<(), Refusal> {
    record(store, caller, what).await.map_err(|error| {
        tracing::error!(%error, path = what.path, "an access record could not be written; the read is refused");
        Refusal::new(
            ErrorCode::NotReady,
            "the read could not be recorded in the access log, so nothing is answered; retry later",
        )
    })
}
