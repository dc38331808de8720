//! Receipts and the quarantine, read over HTTP (`GET /v1/receipts`,
//! `GET /v1/quarantine`, served by [`crate::web`]) and tended from the command line (`tledger
//! quarantine list|show|resubmit|discard`).
//!
//! Who reads what (docs/contract.md, Access): admins and inspectors everything;
//! a publisher token its own publisher's; a unit officer the publishers
//! registered for a unit in its subtree. A resubmission goes through the
//! same checks as a message from NATS; a discard is recorded with who and
//! why, and the message stays.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use tledger_store::{QuarantineItem, ReceiptRecord, Store, StoreError};
use uuid::Uuid;

use crate::access::{Caller, Role};
use crate::commands::Refusal;
use crate::ingest::{Arrival, Intake, IntakeError, Receipt};

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("no quarantined message {0}")]
    NotFound(Uuid),
    #[error(
        "message {0} is {1} already; only a quarantined message can be resubmitted or discarded"
    )]
    Resolved(Uuid, String),
    #[error("reading the corrected message {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A message as the contract shows it: text, or base64 when not UTF-8.
pub fn message_text(message: &[u8]) -> String {
    match std::str::from_utf8(message) {
        Ok(text) => text.to_owned(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(message),
    }
}

/// One item in the contract's shape (with who resolved it, when someone did).
pub fn item_json(item: &QuarantineItem) -> Value {
    let mut v = json!({
        "id": item.item_id,
        "publisher": item.publisher_id,
        "received_at": tledger_events::chain::format_instant(item.received_at),
        "reason": item.reason,
        "status": item.status,
        "message": message_text(&item.message),
    });
    if let Some(field) = &item.field {
        v["field"] = json!(field);
    }
    if let (Some(by), Some(at)) = (&item.resolved_by, item.resolved_at) {
        v["resolved"] = json!({
            "by": by,
            "note": item.resolved_note,
            "at": tledger_events::chain::format_instant(at),
        });
    }
    v
}

/// A receipt record in the contract's shape.
pub fn receipt_json(receipt: &ReceiptRecord) -> Value {
    let mut v = json!({
        "source": receipt.source,
        "id": receipt.id,
        "status": receipt.status,
    });
    for (key, value) in [("reason", &receipt.reason), ("field", &receipt.field)] {
        if let Some(value) = value {
            v[key] = json!(value);
        }
    }
    if let Some(position) = receipt.position {
        v["position"] = json!(position);
    }
    v
}

/// Whether `caller` may read what `publisher_id` sent.
pub(crate) async fn may_read(
    store: &Store,
    caller: &Caller,
    publisher_id: &str,
) -> Result<bool, Refusal> {
    Ok(match caller.role {
        Role::Admin | Role::Inspector => true,
        Role::Publisher => caller
            .publisher_id
            .as_ref()
            .is_some_and(|p| p.as_str() == publisher_id),
        Role::UnitOfficer => {
            let Some(root) = &caller.unit_id else {
                return Ok(false);
            };
            let publishers = store.publishers().await?;
            let Some(unit) = publishers
                .iter()
                .find(|p| p.publisher_id == publisher_id)
                .and_then(|p| p.unit_id.clone())
            else {
                return Ok(false);
            };
            let hierarchy = crate::commands::load_unit_tree(store).await?;
            hierarchy.within(&unit, root.as_str(), crate::calendar::today())
        }
    })
}

/// Sends a quarantined message (or its correction) through the same checks
/// again, then closes the item as resubmitted with who did it.
pub async fn resubmit(
    intake: &Intake,
    item_id: Uuid,
    corrected: Option<Bytes>,
    by: &str,
) -> Result<Receipt, QuarantineError> {
    let item = open_item(intake.store(), item_id).await?;
    let message = corrected.unwrap_or_else(|| Bytes::from(item.message.clone()));
    let arrival = Arrival {
        publisher_id: item.publisher_id.clone(),
        message,
        received_at: chrono::Utc::now(),
    };
    let receipt = intake.take(&arrival).await?;
    let note = format!(
        "resubmitted: {}{}",
        receipt.status.as_str(),
        receipt
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    if !intake
        .store()
        .resolve_quarantine(item_id, "resubmitted", by, &note)
        .await?
    {
        return Err(QuarantineError::Resolved(item_id, "resolved".into()));
    }
    Ok(receipt)
}

/// Closes a quarantined message as discarded, with who and why.
pub async fn discard(
    store: &Store,
    item_id: Uuid,
    by: &str,
    why: &str,
) -> Result<(), QuarantineError> {
    open_item(store, item_id).await?;
    if !store
        .resolve_quarantine(item_id, "discarded", by, why)
        .await?
    {
        return Err(QuarantineError::Resolved(item_id, "resolved".into()));
    }
    Ok(())
}

async fn open_item(store: &Store, item_id: Uuid) -> Result<QuarantineItem, QuarantineError> {
    let item = store
        .quarantine_item(item_id)
        .await?
        .ok_or(QuarantineError::NotFound(item_id))?;
    if item.status != "quarantined" {
        return Err(QuarantineError::Resolved(item_id, item.status));
    }
    Ok(item)
}

/// `tledger quarantine list` as a table.
pub fn item_table(items: &[QuarantineItem]) -> String {
    let mut out = String::from("ID\tPUBLISHER\tRECEIVED\tSTATUS\tFIELD\tREASON\n");
    for item in items {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            item.item_id,
            item.publisher_id,
            tledger_events::chain::format_instant(item.received_at),
            item.status,
            item.field.as_deref().unwrap_or("-"),
            item.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_that_is_not_utf8_is_shown_in_base64() {
        assert_eq!(message_text(b"{\"a\":1}"), "{\"a\":1}");
        assert_eq!(message_text(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn a_receipt_leaves_out_what_it_does_not_have() {
        let receipt = ReceiptRecord {
            source: "/s".into(),
            id: "1".into(),
            publisher_id: "p".into(),
            status: "accepted".into(),
            reason: None,
            field: None,
            position: Some(7),
        };
        assert_eq!(
            receipt_json(&receipt),
            json!({"source": "/s", "id": "1", "status": "accepted", "position": 7})
        );
    }
}
