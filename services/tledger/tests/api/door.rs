//! The service's door (issue 19, points 2, 6 and 7), against a real
//! PostgreSQL and real nats-servers: the header fields that are stored
//! (correlation id, idempotency key) are bounded and never silently
//! dropped; a fact that would not fit the NATS server's `max_payload` once
//! wrapped is refused (413) on every way in, so it cannot stop publication;
//! a relay that cannot publish anyway says so in `/v1/ledger/head` and
//! `/readyz`; and a NUL in a path or a query is a client's mistake (4xx),
//! never an outage (503).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use reqwest::header::HeaderValue;
use serde_json::{json, Value};
use support::{nomination, spawn_app, Ledger};
use tledger::ingest::{Arrival, Intake, ReceiptStatus};
use tledger::publishers::{NewPublisher, Publishers};
use tledger::relay::Relay;
use tledger_tests::PrivateNats;
use tokio::sync::Notify;

/// A `max_payload` small enough for the facts a test can make (free text
/// is at most 1,000 characters) and big enough for the shipped reference
/// facts, which the relay publishes first.
const SMALL_MAX_PAYLOAD: usize = 12_288;
const NATS_URL: &str = "nats://127.0.0.1:4222";

/// `(status, body)` of a command sent with the given headers (any bytes).
async fn send(
    ledger: &Ledger,
    name: &str,
    body: &Value,
    headers: &[(&str, HeaderValue)],
) -> (u16, Value) {
    let mut request = ledger
        .http
        .post(format!("{}/v1/commands/{name}", ledger.base))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", ledger.admin))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value.clone());
    }
    let response = request.send().await.expect("HTTP");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).expect("a header value")
}

async fn get_json(ledger: &Ledger, path: &str) -> (u16, Value) {
    let response = ledger
        .http
        .get(format!("{}{path}", ledger.base))
        .header("authorization", format!("Bearer {}", ledger.admin))
        .send()
        .await
        .expect("HTTP");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"text": text})),
    )
}

fn code(answer: &Value) -> (&str, Option<&str>) {
    (
        answer["error"]["code"].as_str().unwrap_or("(none)"),
        answer["error"]["field"].as_str(),
    )
}

fn unit(id: &str) -> Value {
    json!({"unit_id": id, "name": "Xã thử", "level": "commune", "parent_id": "dai-loc", "effective_date": "2001-01-01"})
}

/// Free text of exactly `bytes` UTF-8 bytes spread over a nomination's
/// title, institution name and decision number (each at most 1,000
/// characters): four-byte letters, then ASCII for the rest.
fn filled_nomination(enrollment: &str, bytes: usize) -> Value {
    assert!((12..=12_000).contains(&bytes), "{bytes} bytes do not fit");
    let chars: Vec<char> = std::iter::repeat_n('𝔸', bytes / 4)
        .chain(std::iter::repeat_n('a', bytes % 4))
        .collect();
    let (a, b) = (chars.len() / 3, 2 * chars.len() / 3);
    let parts: Vec<String> = [&chars[..a], &chars[a..b], &chars[b..]]
        .iter()
        .map(|c| c.iter().collect())
        .collect();
    let mut body = nomination(enrollment, "2008-08-15");
    body["program"]["title"] = json!(parts[0]);
    body["institution"]["name"] = json!(parts[1]);
    body["decision_no"] = json!(parts[2]);
    body
}

/// The size a 413 answer says the fact would have had on JetStream.
fn size_in(message: &str) -> usize {
    let rest = message
        .split("would be ")
        .nth(1)
        .unwrap_or_else(|| panic!("no size in {message:?}"));
    rest.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {message:?}"))
}

/// A private nats-server with a small `max_payload`, and a relay publishing
/// the ledger to it, reporting to what `/v1/ledger/head` shows.
struct Published {
    nats: PrivateNats,
    observer: Relay,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn publish_to_small_nats(ledger: &Ledger) -> Published {
    let nats = PrivateNats::start(&format!("max_payload: {SMALL_MAX_PAYLOAD}")).await;
    let client = async_nats::connect(nats.url())
        .await
        .expect("connect to the private NATS");
    let jetstream = async_nats::jetstream::new(client);
    let prefix = ledger.commands.prefix().clone();
    let relay = Relay::new(ledger.store.clone(), jetstream.clone(), prefix.clone())
        .watched_by(ledger.relay.clone());
    relay.ensure_stream().await.expect("the events stream");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(Arc::new(Notify::new()), async move {
        let _ = stopped.await;
    }));
    Published {
        observer: Relay::new(ledger.store.clone(), jetstream, prefix),
        nats,
        _stop: stop,
    }
}

impl Published {
    async fn until_published(&self, position: u64) {
        for _ in 0..200 {
            if self.observer.published_position().await.unwrap_or(0) >= position {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("position {position} was not published");
    }
}

#[tokio::test]
async fn a_correlation_id_over_128_characters_or_not_printable_ascii_is_malformed() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    // The case: a big nomination with a 40 KB correlation id.
    let big = filled_nomination("e-1", 9_000);
    for correlation in ["c".repeat(40_000), "c".repeat(129), "mã-1".into()] {
        let (status, answer) = send(
            &ledger,
            "nominate",
            &big,
            &[("x-correlation-id", value(&correlation))],
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(code(&answer), ("malformed", None), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("X-Correlation-Id"), "{message}");
    }
    assert_eq!(ledger.events().await, before, "nothing recorded");
    let longest = "c".repeat(128);
    let (status, answer) = send(
        &ledger,
        "nominate",
        &big,
        &[("x-correlation-id", value(&longest))],
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(ledger.events().await, before + 1);
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT correlation_id FROM events ORDER BY position DESC NULLS FIRST LIMIT 1",
    )
    .fetch_one(ledger.store.pool())
    .await
    .expect("correlation id");
    assert_eq!(stored.as_deref(), Some(longest.as_str()));
}

#[tokio::test]
async fn an_idempotency_key_not_printable_ascii_or_over_255_bytes_is_malformed_and_records_nothing()
{
    let ledger = spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    // Sent twice: today the key is dropped and the second records again.
    for (i, key) in ["khóa-1", "khóa-1", &"k".repeat(6_000), &"k".repeat(256)]
        .into_iter()
        .enumerate()
    {
        let (status, answer) = send(
            &ledger,
            "register_unit",
            &unit(&format!("xa-{i}")),
            &[("idempotency-key", value(key))],
        )
        .await;
        assert_eq!(status, 400, "key of {} bytes: {answer}", key.len());
        assert_eq!(code(&answer), ("malformed", None), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("Idempotency-Key"), "{message}");
    }
    assert_eq!(ledger.events().await, before, "nothing recorded");

    let key = "k".repeat(255);
    let first = send(
        &ledger,
        "register_unit",
        &unit("xa-255"),
        &[("idempotency-key", value(&key))],
    )
    .await;
    assert_eq!(first.0, 201, "{}", first.1);
    let again = send(
        &ledger,
        "register_unit",
        &unit("xa-255"),
        &[("idempotency-key", value(&key))],
    )
    .await;
    assert_eq!(again, first, "the retry gets the first answer");
    assert_eq!(ledger.events().await, before + 1, "recorded once");
}

/// The reply of a command over NATS: `(Tledger-Status, body)`.
async fn over_nats(
    client: &async_nats::Client,
    subject: &str,
    token: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut map = HeaderMap::new();
    map.insert("Authorization", format!("Bearer {token}").as_str());
    for (name, value) in headers {
        map.insert(*name, *value);
    }
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        client.request_with_headers(subject.to_owned(), map, body.to_string().into()),
    )
    .await
    .expect("a reply in time")
    .expect("a reply");
    let status = reply
        .headers
        .as_ref()
        .and_then(|h| h.get("Tledger-Status"))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0);
    (
        status,
        serde_json::from_slice(&reply.payload).expect("JSON reply"),
    )
}

#[tokio::test]
async fn over_nats_a_bad_message_id_or_correlation_id_is_malformed() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let client = async_nats::connect(NATS_URL)
        .await
        .unwrap_or_else(|e| panic!("NATS at {NATS_URL}: {e}"));
    let prefix = ledger.commands.prefix().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tledger::nats_commands::serve(
        client.clone(),
        prefix.clone(),
        ledger.commands.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let subject = prefix.command_subject("register_unit");
    // The listener subscribes in its task: wait until it answers.
    let mut ready = false;
    for _ in 0..100 {
        let probe = tokio::time::timeout(
            Duration::from_millis(200),
            client.request(subject.clone(), "{}".into()),
        )
        .await;
        if matches!(probe, Ok(Ok(_))) {
            ready = true;
            break;
        }
    }
    assert!(ready, "the NATS command listener did not answer");
    let before = ledger.events().await;
    let long_key = "k".repeat(6_000);
    let long_correlation = "c".repeat(200);
    for (i, headers) in [
        vec![("Nats-Msg-Id", "khóa-1")],
        vec![("Nats-Msg-Id", long_key.as_str())],
        vec![("X-Correlation-Id", long_correlation.as_str())],
        vec![("X-Correlation-Id", "mã-1")],
    ]
    .into_iter()
    .enumerate()
    {
        let body = unit(&format!("xa-{i}"));
        let (status, answer) = over_nats(&client, &subject, &ledger.admin, &body, &headers).await;
        assert_eq!(status, 400, "{headers:?}: {answer}");
        assert_eq!(code(&answer), ("malformed", None), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(headers[0].0), "{message}");
    }
    assert_eq!(ledger.events().await, before, "nothing recorded");
    let key = "n".repeat(255);
    let headers = [("Nats-Msg-Id", key.as_str())];
    let first = over_nats(&client, &subject, &ledger.admin, &unit("xa-n"), &headers).await;
    assert_eq!(first.0, 201, "{}", first.1);
    let again = over_nats(&client, &subject, &ledger.admin, &unit("xa-n"), &headers).await;
    assert_eq!(again, first, "the retry gets the first answer");
    assert_eq!(ledger.events().await, before + 1, "recorded once");
    drop(stop);
}

#[tokio::test]
async fn a_fact_that_would_not_fit_max_payload_is_too_large_and_one_that_just_fits_is_published() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    let published = publish_to_small_nats(&ledger).await;
    // As the service does at start: the limit is the server's own.
    let client = async_nats::connect(published.nats.url())
        .await
        .expect("connect");
    ledger
        .commands
        .set_max_payload(client.server_info().max_payload);
    assert_eq!(ledger.commands.max_payload(), SMALL_MAX_PAYLOAD);
    let head = ledger.projected().await;
    published.until_published(head).await;
    let before = ledger.events().await;

    // A probe too big by far tells the size of the rest of the fact.
    let probe_text = 12_000;
    let (status, answer) = ledger
        .post("nominate", &filled_nomination("e-1", probe_text))
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(code(&answer), ("too_large", None), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("max_payload of {SMALL_MAX_PAYLOAD} bytes")),
        "{message}"
    );
    let rest = size_in(message) - probe_text;
    let room = SMALL_MAX_PAYLOAD - tledger::admission::PUBLISH_RESERVE;
    let fits = room - rest;

    let (status, answer) = ledger
        .post("nominate", &filled_nomination("e-2", fits + 1))
        .await;
    assert_eq!(status, 413, "one byte over: {answer}");
    assert_eq!(
        size_in(answer["error"]["message"].as_str().unwrap_or_default()),
        room + 1
    );
    assert_eq!(ledger.events().await, before, "nothing recorded");
    assert_eq!(
        ledger.store.head().await.expect("head"),
        head,
        "head unchanged"
    );

    let (status, answer) = ledger
        .post("nominate", &filled_nomination("e-3", fits))
        .await;
    assert_eq!(status, 201, "just fits: {answer}");
    let position = answer["events"][0]["position"].as_u64().expect("position");
    assert_eq!(position, head + 1);
    published.until_published(position).await;
    assert_eq!(ledger.relay.stuck(), None);
    // Published once, at its position.
    let info = published
        .observer
        .published_position()
        .await
        .expect("stream");
    assert_eq!(info, position);
}

#[tokio::test]
async fn a_published_fact_that_would_not_fit_max_payload_is_rejected_and_quarantined() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    ledger.commands.set_max_payload(SMALL_MAX_PAYLOAD);
    let publishers = Publishers::new(ledger.store.clone());
    publishers
        .add(&NewPublisher {
            id: "dai-loc".into(),
            source: "/bodies/dai-loc".into(),
            unit: Some("dai-loc".into()),
            types: Some(vec!["training.nominated.v1".into()]),
            key_hex: None,
        })
        .await
        .expect("publisher");
    // Facts published over NATS and `tledger import` both enter here.
    let intake = Intake::new(ledger.store.clone(), ledger.commands.clone(), publishers);
    let before = ledger.events().await;
    let message = |id: &str, enrollment: &str, bytes: usize| Arrival {
        publisher_id: "dai-loc".into(),
        message: json!({
            "specversion": "1.0", "id": id, "source": "/bodies/dai-loc",
            "type": "training.nominated.v1", "time": "2011-01-01T00:00:00Z",
            "datacontenttype": "application/json",
            "data": filled_nomination(enrollment, bytes)
        })
        .to_string()
        .into(),
        received_at: chrono::Utc::now(),
    };
    let receipt = intake
        .take(&message("n-1", "e-1", 12_000))
        .await
        .expect("answered");
    assert_eq!(receipt.status, ReceiptStatus::Rejected, "{receipt:?}");
    let reason = receipt.reason.clone().unwrap_or_default();
    assert!(reason.contains("max_payload of 12288 bytes"), "{reason}");
    let quarantined: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine")
        .fetch_one(ledger.store.pool())
        .await
        .expect("quarantine");
    assert_eq!(quarantined, 1);
    assert_eq!(ledger.events().await, before, "nothing recorded");
    let receipt = intake
        .take(&message("n-2", "e-2", 3_000))
        .await
        .expect("answered");
    assert_eq!(receipt.status, ReceiptStatus::Accepted, "{receipt:?}");
    assert_eq!(ledger.events().await, before + 1);
}

#[tokio::test]
async fn a_relay_that_cannot_publish_a_fact_says_why_while_the_service_stays_ready() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    // The door still believes 1 MiB (say the server's limit was lowered
    // after the service started): the fact is recorded, the server refuses it.
    let published = publish_to_small_nats(&ledger).await;
    let head = ledger.projected().await;
    published.until_published(head).await;
    let (status, answer) = ledger
        .post("nominate", &filled_nomination("e-1", 12_000))
        .await;
    assert_eq!(status, 201, "{answer}");
    let position = answer["events"][0]["position"].as_u64().expect("position");

    let mut shown = Value::Null;
    for _ in 0..200 {
        let (status, body) = get_json(&ledger, "/v1/ledger/head").await;
        assert_eq!(status, 200, "{body}");
        if !body["relay"].is_null() {
            shown = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown["position"], position, "{shown}");
    assert_eq!(shown["relay"]["stuck_at"], position, "{shown}");
    let reason = shown["relay"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("position {position}")), "{reason}");
    assert!(reason.contains("max payload"), "{reason}");
    assert!(
        shown["relay"]["since"]
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "{shown}"
    );

    let (status, ready) = get_json(&ledger, "/readyz").await;
    assert_eq!(status, 200, "PostgreSQL answers: {ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["relay"]["stuck_at"], position, "{ready}");
    assert!(ready["relay"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("max payload")));
    // Nothing after the stuck fact was published, nothing twice.
    assert_eq!(
        published
            .observer
            .published_position()
            .await
            .expect("stream"),
        position - 1
    );
}

/// Every GET endpoint's path and query strings with a NUL in each: a 4xx
/// naming the field, never 503.
#[tokio::test]
async fn a_nul_in_any_path_or_query_string_is_a_client_error_never_an_outage() {
    let ledger = spawn_app().await;
    ledger.seed().await;
    // (path, the field the answer names, if it names one)
    let cases: &[(&str, Option<&str>)] = &[
        ("/v1/officials/a%00b/history", Some("/official_id")),
        ("/v1/enrollments/a%00b/history", Some("/enrollment_id")),
        ("/v1/officials/o-1/history?from=%00", Some("/from")),
        ("/v1/officials/o-1/history?to=2010-01-01%00", Some("/to")),
        ("/v1/officials/o-1/history?type=a%00b", Some("/type")),
        (
            "/v1/enrollments/e-1/history?type=%00",
            Some("/enrollment_id"),
        ),
        ("/v1/ledger/proof/1%00", None),
        ("/v1/ledger/proof/%00", None),
        ("/v1/reports/a%00b", None),
        ("/v1/reports/training-volume?unit=a%00b", Some("/unit")),
        ("/v1/reports/standards?unit=a%00b", Some("/unit")),
        ("/v1/reports/alignment?unit=a%00b", Some("/unit")),
        ("/v1/reports/training-volume?from=%00", Some("/from")),
        ("/v1/reports/training-volume?to=%00", Some("/to")),
        ("/v1/reports/standards?as_of=%00", Some("/as_of")),
        (
            "/v1/reports/standards?at_position=%00",
            Some("/at_position"),
        ),
        ("/v1/reports/standards?known_at=%00", Some("/known_at")),
        (
            "/v1/reports/standards?min_position=%00",
            Some("/min_position"),
        ),
        ("/v1/reports/standards?a%00b=1", None),
        ("/v1/receipts?source=a%00b&id=x", Some("/source")),
        ("/v1/receipts?source=/bodies/x&id=a%00b", Some("/id")),
        ("/v1/quarantine?publisher=a%00b", Some("/publisher")),
        ("/v1/quarantine?limit=%00", Some("/limit")),
        ("/v1/access-log?since=%00", Some("/since")),
        ("/v1/access-log?after=%00", Some("/after")),
        ("/v1/access-log?limit=%00", Some("/limit")),
    ];
    let mut wrong = Vec::new();
    for (path, field) in cases {
        let (status, answer) = get_json(&ledger, path).await;
        let named = answer["error"]["field"].as_str();
        let fine = (400..500).contains(&status)
            && answer["error"]["code"].is_string()
            && (field.is_none() || named == *field);
        if !fine {
            wrong.push(format!("{path}: {status} {answer}"));
        }
    }
    assert!(wrong.is_empty(), "answered wrongly:\n{}", wrong.join("\n"));
    // The service still answers what is right.
    let (status, answer) = get_json(&ledger, "/v1/officials/o-1/history").await;
    assert_eq!(status, 200, "{answer}");
}
