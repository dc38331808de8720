//! Security of the HTTP surface (docs/contract.md "Access"): every protected
//! endpoint refuses a missing or wrong token; each role gets what the
//! contract's table gives it and no more; report parameters carrying SQL
//! are values, never SQL; oversized and deeply nested bodies are refused
//! with the contract's errors; none of it changes the ledger.

use crate::support;

use serde_json::{json, Value};
use tledger::access::Role;

/// Every endpoint that needs a token, with a request that is otherwise
/// well-formed.
const PROTECTED: &[(&str, &str)] = &[
    ("POST", "/v1/commands/register_unit"),
    ("GET", "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31"),
    (
        "GET",
        "/v1/reports/training-volume?unit=dai-loc&from=2007-01-01&to=2011-12-31",
    ),
    ("GET", "/v1/reports/alignment?unit=dai-loc&as_of=2011-12-31"),
    ("GET", "/v1/officials/o-1/history"),
    ("GET", "/v1/enrollments/e-1/history"),
    ("GET", "/v1/access-log"),
    ("GET", "/v1/receipts?source=%2Fs&id=1"),
    ("GET", "/v1/quarantine"),
];

/// Endpoints anyone may call (nothing personal in them).
const OPEN: &[&str] = &["/healthz", "/readyz", "/metrics", "/v1/ledger/head"];

async fn call(
    ledger: &support::Ledger,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let url = format!("{}{path}", ledger.base);
    let mut request = match method {
        "POST" => ledger
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(
                json!({"unit_id": "x-1", "name": "X", "level": "commune", "parent_id": "dai-loc", "effective_date": "2000-01-01"})
                    .to_string(),
            ),
        _ => ledger.http.get(url),
    };
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("HTTP");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn every_protected_endpoint_refuses_a_missing_or_wrong_token() {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    for (method, path) in PROTECTED {
        for token in [None, Some("tl_not-a-token"), Some("")] {
            let (status, body) = call(&ledger, method, path, token).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            assert_eq!(
                body["error"]["code"], "unauthenticated",
                "{method} {path}: {body}"
            );
        }
    }
    for path in OPEN {
        let (status, body) = call(&ledger, "GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // A revoked token is a wrong token.
    let officer = ledger.token(Role::UnitOfficer, Some("dai-loc")).await;
    tledger::access::Access::new(ledger.store.clone())
        .revoke("unit_officer-token")
        .await
        .expect("revoke");
    let (status, _) = call(&ledger, "GET", PROTECTED[1].1, Some(&officer)).await;
    assert_eq!(status, 401);
    assert_eq!(ledger.events().await, before, "nothing was recorded");
}

#[tokio::test]
async fn each_role_gets_what_the_contract_gives_it_and_no_more() {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    let publisher = ledger.token(Role::Publisher, None).await;
    let officer = ledger.token(Role::UnitOfficer, Some("dien-ban")).await;

    // An inspector reads everything and writes nothing.
    let (status, body) = call(&ledger, "POST", PROTECTED[0].1, Some(&inspector)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden")),
        "{body}"
    );
    for (_, path) in &PROTECTED[1..] {
        let (status, body) = call(&ledger, "GET", path, Some(&inspector)).await;
        // A receipt that does not exist is 404: the read itself was allowed.
        assert!(
            status == 200 || status == 404,
            "inspector GET {path}: {status} {body}"
        );
    }
    // A publisher token reads only its own receipts and quarantine.
    let (status, _) = call(&ledger, "POST", PROTECTED[0].1, Some(&publisher)).await;
    assert_eq!(status, 403);
    for path in [
        PROTECTED[1].1,
        PROTECTED[4].1,
        PROTECTED[5].1,
        PROTECTED[6].1,
    ] {
        let (status, body) = call(&ledger, "GET", path, Some(&publisher)).await;
        assert_eq!(status, 403, "publisher GET {path}: {body}");
    }
    let (status, body) = call(
        &ledger,
        "GET",
        "/v1/quarantine?publisher=another",
        Some(&publisher),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // A unit officer of Điện Bàn neither writes in nor reads Đại Lộc.
    let (status, body) = call(&ledger, "POST", PROTECTED[0].1, Some(&officer)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&ledger, "GET", PROTECTED[1].1, Some(&officer)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&ledger, "GET", PROTECTED[4].1, Some(&officer)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&ledger, "GET", "/v1/access-log", Some(&officer)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(ledger.events().await, before, "nothing was recorded");
}

#[tokio::test]
async fn parameters_carrying_sql_are_values_never_sql() {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let admin = ledger.admin.clone();
    for evil in [
        "dai-loc'; DROP TABLE events; --",
        "dai-loc' OR '1'='1",
        "\"; SELECT pg_sleep(10); --",
        "%00",
    ] {
        let encoded: String = evil
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        for path in [
            format!("/v1/reports/standards?unit={encoded}&as_of=2011-12-31"),
            format!("/v1/reports/standards?unit=dai-loc&as_of={encoded}"),
            format!("/v1/officials/{encoded}/history"),
            format!("/v1/receipts?source={encoded}&id={encoded}"),
            format!("/v1/quarantine?publisher={encoded}"),
        ] {
            let (status, body) = call(&ledger, "GET", &path, Some(&admin)).await;
            assert!(
                [200, 400, 404, 422].contains(&status),
                "{path}: {status} {body}"
            );
            if status != 200 {
                assert!(body["error"]["code"].is_string(), "{path}: {body}");
            }
        }
    }
    // Still there, still whole.
    assert_eq!(ledger.events().await, before);
    let (status, body) = call(&ledger, "GET", PROTECTED[1].1, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn oversized_and_deeply_nested_bodies_are_refused_with_the_contracts_errors() {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let admin = ledger.admin.clone();

    let mut oversized = json!({"unit_id": "big", "name": "", "level": "commune", "parent_id": "dai-loc", "effective_date": "2000-01-01"});
    oversized["name"] = json!("x".repeat(2 << 20));
    let (status, body) = ledger
        .send(
            "register_unit",
            oversized.to_string().into_bytes(),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (413, json!("too_large")),
        "{body}"
    );

    // 100,000 nested arrays: refused as malformed, not a crash.
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let (status, body) = ledger
        .send("register_unit", nested.into_bytes(), Some(&admin), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("malformed")),
        "{body}"
    );
    // Nested objects inside a valid field, too deep for any fact.
    let deep_name = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let body = format!(
        "{{\"unit_id\":\"deep\",\"name\":{deep_name},\"level\":\"commune\",\"parent_id\":\"dai-loc\",\"effective_date\":\"2000-01-01\"}}"
    );
    let (status, answer) = ledger
        .send("register_unit", body.into_bytes(), Some(&admin), None)
        .await;
    assert_eq!(status, 400, "{answer}");
    // The service still answers, and nothing was recorded.
    let (status, _) = call(&ledger, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    assert_eq!(ledger.events().await, before);
}

#[tokio::test]
async fn a_client_that_trickles_its_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ledger = support::spawn_app().await;
    let address = ledger.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"GET /v1/ledger/head HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("part of a head");
    // Never finishes the head: the server closes the connection after its
    // deadline (1 s here), not never.
    let started = std::time::Instant::now();
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(
        support::SUPPORT_HEADER_TIMEOUT * 10,
        slow.read_to_end(&mut buffer),
    )
    .await;
    assert!(closed.is_ok(), "the connection was still open after 10 s");
    assert!(started.elapsed() >= support::SUPPORT_HEADER_TIMEOUT / 2);
    // Meanwhile and afterwards, other clients are served.
    let (status, _) = call(&ledger, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let path = format!("{}{}", ledger.base, PROTECTED[1].1);
    for (i, scheme) in ["Bearer", "bearer", "BEARER", "BeArEr"]
        .into_iter()
        .enumerate()
    {
        let authorization = format!("{scheme} {}", ledger.admin);
        let read = ledger
            .http
            .get(&path)
            .header("authorization", &authorization)
            .send()
            .await
            .expect("HTTP");
        assert_eq!(read.status().as_u16(), 200, "{scheme}");
        let command = ledger
            .http
            .post(format!("{}/v1/commands/register_unit", ledger.base))
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(
                json!({"unit_id": format!("x-{i}"), "name": "X", "level": "commune", "parent_id": "dai-loc", "effective_date": "2000-01-01"})
                    .to_string(),
            )
            .send()
            .await
            .expect("HTTP");
        let status = command.status().as_u16();
        assert_eq!(
            status,
            201,
            "{scheme}: {}",
            command.text().await.expect("body")
        );
    }
    assert_eq!(ledger.events().await, before + 4, "one fact per command");
    // Another scheme is no bearer token.
    let (status, _) = call(&ledger, "GET", PROTECTED[1].1, None).await;
    assert_eq!(status, 401);
    let basic = ledger
        .http
        .get(&path)
        .header("authorization", format!("Basic {}", ledger.admin))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(basic.status().as_u16(), 401);
}

#[tokio::test]
async fn a_token_revoked_by_another_process_is_refused_within_a_second() {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    // The service verifies the token once and keeps it in its cache.
    for _ in 0..2 {
        let (status, body) = call(&ledger, "GET", PROTECTED[1].1, Some(&inspector)).await;
        assert_eq!(status, 200, "{body}");
    }
    // `tledger tokens revoke` is another process: its own pool on the same
    // database, the same code.
    let other = tledger_store::Store::connect(ledger._db.url(), 2)
        .await
        .expect("another process's pool");
    let revoked = tledger::access::Access::new(other)
        .revoke("inspector-token")
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    let since = std::time::Instant::now();
    loop {
        let (status, body) = call(&ledger, "GET", PROTECTED[1].1, Some(&inspector)).await;
        if status == 401 {
            assert_eq!(body["error"]["code"], "unauthenticated");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            since.elapsed() < std::time::Duration::from_secs(1),
            "the revoked token was still accepted after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // The admin token, which was not revoked, still works.
    let (status, _) = call(&ledger, "GET", PROTECTED[1].1, Some(&ledger.admin)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_that_trickles_its_request_body_is_answered_408_within_the_bound() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    let before = ledger.events().await;
    let address = ledger.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let body = json!({"unit_id": "slow-1", "name": "Slow", "level": "commune", "parent_id": "dai-loc", "effective_date": "2000-01-01"})
        .to_string();
    let head = format!(
        "POST /v1/commands/register_unit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        ledger.admin,
        body.len()
    );
    writer.write_all(head.as_bytes()).await.expect("the head");
    let started = std::time::Instant::now();
    // One byte every 200 ms: the whole body would take minutes... or, here,
    // about 20 s; the writer stops when the server closes.
    let trickle = tokio::spawn(async move {
        for byte in body.into_bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        support::SUPPORT_BODY_TIMEOUT * 4,
        reader.read_to_end(&mut answer),
    )
    .await;
    trickle.abort();
    let elapsed = started.elapsed();
    assert!(
        read.is_ok(),
        "the connection was still open after {elapsed:?}: {}",
        String::from_utf8_lossy(&answer)
    );
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"code\":\"malformed\""), "{answer}");
    assert!(elapsed >= support::SUPPORT_BODY_TIMEOUT, "{elapsed:?}");
    assert!(
        elapsed < support::SUPPORT_BODY_TIMEOUT + std::time::Duration::from_secs(2),
        "{elapsed:?}"
    );
    // Nothing was recorded, and other clients are served.
    assert_eq!(ledger.events().await, before);
    let (status, _) = call(&ledger, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
}
