//! The NATS side of ingest: the `<PREFIX>_INGEST` stream, its durable pull
//! consumer, receipts on `<prefix>.receipts.<publisher_id>`, and the loop
//! that retries parked facts and rejects those whose time is up.
//!
//! A message is acknowledged only after [`Intake::take`] recorded its
//! outcome in PostgreSQL; one it could not answer (database down, fact not
//! yet sequenced) is negatively acknowledged with a delay that grows with
//! each delivery, and comes again until it is answered. A message that can
//! never be recorded because of what it holds is answered `rejected`, so
//! none is delivered for ever. Messages about the same stream keep their
//! order inside a fetched batch (after one that could not be answered, the
//! rest of its group comes again too); different streams are answered side
//! by side.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{self, stream, AckKind};
use futures::StreamExt;
use serde_json::Value;

use crate::ingest::{Arrival, Intake, Receipt};
use crate::Prefix;

/// The durable consumer's name.
pub const CONSUMER: &str = "tledger-ingest";
/// Messages fetched at once.
const FETCH: usize = 1024;
/// Streams answered side by side.
const CONCURRENCY: usize = 128;
/// How long a fetch waits for messages.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// A message not acknowledged in this time is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// How soon a message that could not be answered comes again, the first
/// time; each later delivery waits twice as long, up to [`MAX_RETRY_DELAY`].
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The longest wait before a message that could not be answered comes
/// again: a PostgreSQL outage is retried at least this often.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// How often parked facts are looked at when nothing arrives.
const PARKED_EVERY: Duration = Duration::from_millis(500);
/// JetStream's own duplicate window on `Nats-Msg-Id` (its default).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The durable pull consumer of the ingest stream.
pub type IngestConsumer = async_nats::jetstream::consumer::PullConsumer;

#[derive(Debug, thiserror::Error)]
pub enum IngestStreamError {
    #[error("creating or reading the stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("creating or reading the consumer {CONSUMER} on {stream}: {message}")]
    Consumer { stream: String, message: String },
}

/// The ingest stream's settings (docs/contract.md: work-queue retention, discard
/// new when full, file storage).
pub fn stream_config(
    prefix: &Prefix,
    duplicate_window: Duration,
    replicas: usize,
) -> stream::Config {
    stream::Config {
        name: prefix.ingest_stream(),
        description: Some(format!(
            "training-ledger {prefix}: facts published by integrating bodies, until answered",
            prefix = prefix.as_str()
        )),
        subjects: vec![format!("{}.ingest.>", prefix.as_str())],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::WorkQueue,
        discard: stream::DiscardPolicy::New,
        duplicate_window,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Creates the stream and the consumer when missing; an existing stream's
/// settings are kept.
#[tracing::instrument(level = "debug", name = "ingest.ensure_stream", skip_all, fields(prefix = %prefix.as_str()))]
pub async fn ensure(
    jetstream: &jetstream::Context,
    prefix: &Prefix,
    duplicate_window: Duration,
    replicas: usize,
) -> Result<IngestConsumer, IngestStreamError> {
    let name = prefix.ingest_stream();
    let stream = jetstream
        .get_or_create_stream(stream_config(prefix, duplicate_window, replicas))
        .await
        .map_err(|e| IngestStreamError::Stream {
            stream: name.clone(),
            message: e.to_string(),
        })?;
    stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                description: Some("training-ledger ingest: acked once answered".into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 8 * FETCH as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| IngestStreamError::Consumer {
            stream: name,
            message: e.to_string(),
        })
}

/// The publisher a subject `<prefix>.ingest.<publisher_id>` names.
pub fn publisher_of(prefix: &Prefix, subject: &str) -> Option<String> {
    subject
        .strip_prefix(prefix.as_str())?
        .strip_prefix(".ingest.")
        .map(str::to_owned)
}

/// The streams a message is about, as far as a cheap look tells: the
/// person and the training place it names; all unit facts share one key
/// (a unit's parent comes before it), and so do reference facts. Facts
/// that merely name a unit do not count it: nearly every fact names one.
fn order_keys(message: &[u8]) -> Vec<String> {
    let value: Option<Value> = serde_json::from_slice(message).ok();
    let kind = value
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind.starts_with("unit.") {
        return vec!["units".into()];
    }
    if kind.starts_with("reference.") {
        return vec!["reference".into()];
    }
    let data = value.as_ref().and_then(|v| v.get("data"));
    ["official_id", "enrollment_id"]
        .iter()
        .filter_map(|field| {
            data.and_then(|d| d.get(*field))
                .and_then(Value::as_str)
                .map(|id| format!("{field}:{id}"))
        })
        .collect()
}

/// Splits messages into groups that can be answered side by side: two
/// messages about a common stream (directly, or through a chain of
/// messages) are in one group, in arrival order. A nomination names the
/// person and the place, so the person's registration, the nomination and
/// the place's enrolment stay in order even when they arrive in one batch.
pub(crate) fn order_groups<T>(messages: Vec<T>, payload: impl Fn(&T) -> &[u8]) -> Vec<Vec<T>> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..messages.len()).collect();
    let mut first_with: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, message) in messages.iter().enumerate() {
        for key in order_keys(payload(message)) {
            match first_with.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    first_with.insert(key, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<T>> = BTreeMap::new();
    for (i, message) in messages.into_iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(message);
    }
    groups.into_values().collect()
}

/// Publishes a receipt to its publisher (best effort: the receipt is
/// recorded already, and `GET /v1/receipts` answers with it).
#[tracing::instrument(level = "debug", name = "ingest.send_receipt", skip_all, fields(publisher_id = %receipt.publisher_id, source = ?receipt.source, id = ?receipt.id, status = receipt.status.as_str()))]
pub async fn send_receipt(client: &async_nats::Client, prefix: &Prefix, receipt: &Receipt) {
    let subject = format!("{}.receipts.{}", prefix.as_str(), receipt.publisher_id);
    let body = serde_json::to_vec(receipt).unwrap_or_default();
    if let Err(error) = client.publish(subject, body.into()).await {
        tracing::warn!(%error, "could not publish a receipt");
    }
}

/// Consumes the ingest stream until `shutdown`.
pub async fn serve(
    client: async_nats::Client,
    consumer: IngestConsumer,
    prefix: Prefix,
    intake: Intake,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let fetched = tokio::select! {
            () = &mut shutdown => return,
            fetched = fetch(&consumer) => fetched,
        };
        let messages = match fetched {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "fetching from the ingest stream; trying again");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(RETRY_DELAY) => continue,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        let all = order_groups(messages, |m: &jetstream::Message| &m.payload[..]);
        futures::stream::iter(all)
            .for_each_concurrent(CONCURRENCY, |group| {
                let (client, prefix, intake) = (&client, &prefix, &intake);
                async move {
                    let mut messages = group.into_iter();
                    while let Some(message) = messages.next() {
                        if let Err(delay) = answer(client, prefix, intake, message).await {
                            // What follows it about the same streams waits
                            // for it, so that it is not decided out of order.
                            for later in messages.by_ref() {
                                let _ = later.ack_with(AckKind::Nak(Some(delay))).await;
                            }
                        }
                    }
                }
            })
            .await;
    }
}

#[tracing::instrument(level = "debug", name = "ingest.fetch", skip_all)]
async fn fetch(consumer: &IngestConsumer) -> Result<Vec<jetstream::Message>, String> {
    let mut batch = consumer
        .fetch()
        .max_messages(FETCH)
        .expires(FETCH_WAIT)
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message.map_err(|e| e.to_string())?);
    }
    Ok(messages)
}

/// How long a message waits before its next delivery, after `delivered`
/// deliveries that could not be answered.
fn retry_delay(delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RETRY_DELAY)
}

/// Answers and acknowledges one message; `Err` with the delay it was
/// negatively acknowledged with when it could not be answered now.
#[tracing::instrument(level = "debug", name = "ingest.answer_message", skip_all, fields(subject = %message.subject))]
async fn answer(
    client: &async_nats::Client,
    prefix: &Prefix,
    intake: &Intake,
    message: jetstream::Message,
) -> Result<(), Duration> {
    let arrival = Arrival {
        publisher_id: publisher_of(prefix, message.subject.as_str()).unwrap_or_default(),
        message: message.payload.clone(),
        received_at: chrono::Utc::now(),
    };
    match intake.take(&arrival).await {
        Ok(receipt) => {
            metrics::counter!("tledger_ingest_total", "status" => receipt.status.as_str())
                .increment(1);
            send_receipt(client, prefix, &receipt).await;
            if let Err(error) = message.ack().await {
                // Delivered again later; answered from what was recorded.
                tracing::warn!(%error, "could not acknowledge an ingest message");
            }
            Ok(())
        }
        Err(error) => {
            let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
            let delay = retry_delay(delivered);
            tracing::warn!(
                %error,
                delivered,
                "could not answer a published fact now; it comes again in {delay:?}"
            );
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            Err(delay)
        }
    }
}

/// Retries parked facts whose streams appeared, and rejects those parked
/// longer than `park_for`, until `shutdown`.
pub async fn tend_parked(
    client: async_nats::Client,
    prefix: Prefix,
    intake: Intake,
    park_for: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let mut receipts = match intake.retry_parked().await {
            Ok(receipts) => receipts,
            Err(error) => {
                tracing::warn!(%error, "retrying parked facts");
                Vec::new()
            }
        };
        let deadline = chrono::Utc::now()
            - chrono::Duration::from_std(park_for).unwrap_or(chrono::Duration::MAX);
        match intake.expire_parked(deadline, park_for).await {
            Ok(expired) => receipts.extend(expired),
            Err(error) => tracing::warn!(%error, "rejecting expired parked facts"),
        }
        for receipt in &receipts {
            metrics::counter!("tledger_ingest_total", "status" => receipt.status.as_str())
                .increment(1);
            send_receipt(&client, &prefix, receipt).await;
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(PARKED_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_publisher() {
        let prefix: Prefix = "tl".parse().expect("prefix");
        assert_eq!(
            publisher_of(&prefix, "tl.ingest.school-a").as_deref(),
            Some("school-a")
        );
        assert_eq!(publisher_of(&prefix, "tlx.ingest.school-a"), None);
        assert_eq!(publisher_of(&prefix, "tl.cmd.nominate"), None);
    }

    #[test]
    fn a_message_that_cannot_be_answered_comes_again_later_each_time() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(6), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(i64::MAX), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(0), RETRY_DELAY);
    }

    #[test]
    fn messages_linked_through_a_nomination_stay_in_one_group_in_order() {
        let messages: Vec<&[u8]> = vec![
            br#"{"type":"official.registered.v1","data":{"official_id":"o-1"}}"#,
            br#"{"type":"official.registered.v1","data":{"official_id":"o-2"}}"#,
            br#"{"type":"training.enrolled.v1","data":{"enrollment_id":"e-1"}}"#,
            br#"{"type":"training.nominated.v1","data":{"enrollment_id":"e-1","official_id":"o-1"}}"#,
            b"not json",
            br#"{"type":"unit.registered.v1","data":{"unit_id":"u-1"}}"#,
            br#"{"type":"unit.registered.v1","data":{"unit_id":"u-2","parent_id":"u-1"}}"#,
        ];
        let groups = order_groups(messages, |m| m);
        let texts: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(groups.len(), 4, "{texts:?}");
        assert_eq!(
            groups[0].len(),
            3,
            "o-1, e-1 and its nomination, in arrival order"
        );
        assert!(texts[0][1].contains("training.enrolled"));
        assert!(texts[0][2].contains("training.nominated"));
        assert_eq!(groups[1].len(), 1);
        assert_eq!(texts[2], vec!["not json".to_owned()]);
        assert_eq!(groups[3].len(), 2, "units in one group");
    }
}
