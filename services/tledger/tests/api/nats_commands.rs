//! Commands over NATS request-reply (`<prefix>.cmd.<name>`), against the
//! machine's nats-server and a fresh database: the same handler as HTTP,
//! the status in `Tledger-Status`, `Nats-Msg-Id` as the idempotency key.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use serde_json::{json, Value};
use tledger::access::{Access, Role};
use tledger::commands::CommandService;
use tledger::Prefix;
use tledger_store::{Sequencer, Store};
use tledger_tests::TestDatabase;
use tokio::sync::{broadcast, oneshot, Notify};

const NATS_URL: &str = "nats://127.0.0.1:4222";

struct Ledger {
    _db: TestDatabase,
    store: Store,
    client: async_nats::Client,
    prefix: Prefix,
    admin: String,
    _stop: oneshot::Sender<()>,
}

async fn spawn() -> Ledger {
    let db = TestDatabase::create().await;
    let store = Store::connect(db.url(), 8).await.expect("connect");
    store.migrate().await.expect("migrate");
    let access = Access::new(store.clone());
    let (_, admin) = access
        .create(Role::Admin, None, None, "admin")
        .await
        .expect("token");
    let prefix: Prefix = tledger_tests::unique_prefix().parse().expect("prefix");
    let wake = Arc::new(Notify::new());
    let (announce, _) = broadcast::channel(256);
    let commands = CommandService::new(
        store.clone(),
        access,
        prefix.clone(),
        wake.clone(),
        announce.clone(),
    );
    let client = async_nats::connect(NATS_URL).await.unwrap_or_else(|e| {
        panic!("NATS is not reachable at {NATS_URL} ({e}): start nats-server -js")
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_seq, stopped_seq) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = stopped.await;
        let _ = stop_seq.send(true);
    });
    let mut for_sequencer = stopped_seq.clone();
    tokio::spawn(Sequencer::new(store.clone()).run(
        wake,
        announce,
        Duration::from_millis(50),
        async move {
            let _ = for_sequencer.changed().await;
        },
    ));
    let mut for_server = stopped_seq;
    let server_client = client.clone();
    let server_prefix = prefix.clone();
    tokio::spawn(async move {
        tledger::nats_commands::serve(server_client, server_prefix, commands, async move {
            let _ = for_server.changed().await;
        })
        .await
    });
    // The subscription is made inside the spawned task: wait until it answers.
    let ledger = Ledger {
        _db: db,
        store,
        client,
        prefix,
        admin,
        _stop: stop,
    };
    for _ in 0..50 {
        if ledger
            .request("nothing", b"{}".to_vec(), None, None)
            .await
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ledger
}

impl Ledger {
    async fn request(
        &self,
        name: &str,
        body: Vec<u8>,
        token: Option<&str>,
        key: Option<&str>,
    ) -> Option<(u16, Value)> {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert("Authorization", format!("Bearer {token}").as_str());
        }
        if let Some(key) = key {
            headers.insert("Nats-Msg-Id", key);
        }
        let subject = self.prefix.command_subject(name);
        let request = self
            .client
            .request_with_headers(subject, headers, body.into());
        let reply = tokio::time::timeout(Duration::from_secs(5), request)
            .await
            .ok()?
            .ok()?;
        let status = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Tledger-Status"))
            .and_then(|v| v.as_str().parse().ok())
            .expect("a Tledger-Status header");
        Some((
            status,
            serde_json::from_slice(&reply.payload).expect("JSON body"),
        ))
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }
}

fn province() -> Vec<u8> {
    json!({"unit_id": "quang-nam", "name": "Quảng Nam", "level": "province", "effective_date": "1997-01-01"})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn a_command_over_nats_answers_like_http_and_a_retry_records_nothing() {
    let ledger = spawn().await;
    let (status, answer) = ledger
        .request(
            "register_unit",
            province(),
            Some(&ledger.admin),
            Some("m-1"),
        )
        .await
        .expect("reply");
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["events"][0]["stream"], "unit-quang-nam");
    assert_eq!(answer["events"][0]["position"], 1);
    let again = ledger
        .request(
            "register_unit",
            province(),
            Some(&ledger.admin),
            Some("m-1"),
        )
        .await
        .expect("reply");
    assert_eq!(again, (201, answer));
    assert_eq!(ledger.events().await, 1);
}

#[tokio::test]
async fn bad_commands_over_nats_get_the_contracts_errors_and_record_nothing() {
    let ledger = spawn().await;
    ledger
        .request(
            "register_unit",
            province(),
            Some(&ledger.admin),
            Some("m-1"),
        )
        .await
        .expect("reply");
    let other_body = json!({"unit_id": "dai-loc", "name": "Đại Lộc", "level": "district", "parent_id": "quang-nam", "effective_date": "1997-01-01"})
        .to_string()
        .into_bytes();
    type Case<'a> = (
        &'a str,
        Vec<u8>,
        Option<&'a str>,
        Option<&'a str>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "register_unit",
            province(),
            None,
            None,
            401,
            "unauthenticated",
        ),
        (
            "register_unit",
            b"{oops".to_vec(),
            Some(&ledger.admin),
            None,
            400,
            "malformed",
        ),
        (
            "promote",
            b"{}".to_vec(),
            Some(&ledger.admin),
            None,
            404,
            "not_found",
        ),
        (
            "register_unit",
            province(),
            Some(&ledger.admin),
            None,
            409,
            "conflict",
        ),
        (
            "register_unit",
            other_body,
            Some(&ledger.admin),
            Some("m-1"),
            409,
            "conflict",
        ),
    ];
    for (name, body, token, key, status, code) in cases {
        let (got, answer) = ledger.request(name, body, token, key).await.expect("reply");
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {answer}"
        );
    }
    assert_eq!(ledger.events().await, 1);
}

#[tokio::test]
async fn the_bearer_scheme_of_a_nats_command_is_case_insensitive() {
    let ledger = spawn().await;
    for (i, scheme) in ["bearer", "BEARER", "BeArEr"].into_iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Authorization",
            format!("{scheme} {}", ledger.admin).as_str(),
        );
        let body = json!({"unit_id": format!("p-{i}"), "name": "P", "level": "province", "effective_date": "1997-01-01"});
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            ledger.client.request_with_headers(
                ledger.prefix.command_subject("register_unit"),
                headers,
                body.to_string().into_bytes().into(),
            ),
        )
        .await
        .expect("a reply within 5 s")
        .expect("a reply");
        let status = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Tledger-Status"))
            .map(|v| v.as_str().to_owned());
        assert_eq!(
            status.as_deref(),
            Some("201"),
            "{scheme}: {}",
            String::from_utf8_lossy(&reply.payload)
        );
    }
    assert_eq!(ledger.events().await, 3, "one fact per command");
}
