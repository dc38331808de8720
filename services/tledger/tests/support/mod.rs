//! A ledger served in-process for the HTTP tests: a fresh database, the
//! sequencer, the projector, the command service and the HTTP router on a
//! free port.
#![allow(dead_code)] // each test binary uses part of it

pub mod random_history;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tledger::access::{Access, Role};
use tledger::commands::CommandService;
use tledger::web::{router, WebState};
use tledger::Prefix;
use tledger_events::reference_data;
use tledger_projections::projector::{ensure_schema, Projector};
use tledger_store::{Sequencer, Store};
use tledger_tests::TestDatabase;
use tokio::sync::{broadcast, oneshot, Notify};

/// How long the test server waits for a request head.
pub const SUPPORT_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the test server waits for a request body once its head is in.
pub const SUPPORT_BODY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Ledger {
    pub _db: TestDatabase,
    pub store: Store,
    pub commands: CommandService,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    /// What `/v1/ledger/head` and `/readyz` show of a relay (none runs
    /// unless a test starts one with [`tledger::relay::Relay::watched_by`]).
    pub relay: tledger::relay::RelayWatch,
    pub _stop: oneshot::Sender<()>,
}

/// A ledger served on a free port: store, sequencer, command service, HTTP.
pub async fn spawn() -> Ledger {
    spawn_with_prefix(tledger_tests::unique_prefix().parse().expect("prefix")).await
}

/// [`spawn`], with the NATS prefix given (a test that configures NATS users
/// for it).
pub async fn spawn_with_prefix(prefix: Prefix) -> Ledger {
    let db = TestDatabase::create().await;
    let store = Store::connect(db.url(), 16).await.expect("connect");
    store.migrate().await.expect("migrate");
    let access = Access::new(store.clone());
    let (_, admin) = access
        .create(Role::Admin, None, None, "admin")
        .await
        .expect("admin token");
    let wake = Arc::new(Notify::new());
    let (announce, _) = broadcast::channel(1024);
    let commands = CommandService::new(
        store.clone(),
        access,
        prefix,
        wake.clone(),
        announce.clone(),
    );
    // As the service does: a token revoked by another process is dropped.
    let follower = commands.access().clone();
    tokio::spawn(async move {
        follower
            .follow_token_changes(std::future::pending::<()>())
            .await
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_all, stopped_all) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = stopped.await;
        let _ = stop_all.send(true);
    });
    let mut sequencer_stopped = stopped_all.clone();
    let projector_wake = Arc::new(Notify::new());
    let mut announced = announce.subscribe();
    let woken = projector_wake.clone();
    tokio::spawn(async move {
        while announced.recv().await.is_ok() {
            woken.notify_one();
        }
    });
    tokio::spawn(Sequencer::new(store.clone()).run(
        wake,
        announce,
        Duration::from_millis(50),
        async move {
            let _ = sequencer_stopped.changed().await;
        },
    ));
    ensure_schema(store.pool(), "rm")
        .await
        .expect("read models");
    let mut projector_stopped = stopped_all;
    tokio::spawn(Projector::new(store.clone()).run(
        projector_wake,
        Duration::from_millis(100),
        // As the service paces it (ADR 18).
        Duration::from_millis(10),
        async move {
            let _ = projector_stopped.changed().await;
        },
    ));
    // A test that runs a relay reports to this, as the service does.
    let relay = tledger::relay::RelayWatch::default();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let app = router(WebState {
        commands: commands.clone(),
        store: store.clone(),
        metrics,
        jetstream: None,
        dashboard: tledger::web::dashboard::DashboardState::new(None),
        read_models: tledger_projections::reports::ReadModels::new(store.pool().clone()),
        relay: relay.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // Short deadlines: the security tests play slow clients.
    tokio::spawn(tledger::web::serve_with_deadlines(
        listener,
        app,
        tledger::web::Deadlines {
            head: SUPPORT_HEADER_TIMEOUT,
            body: SUPPORT_BODY_TIMEOUT,
        },
        std::future::pending(),
    ));
    let ledger = Ledger {
        _db: db,
        store,
        commands,
        base,
        admin,
        http: reqwest::Client::new(),
        relay,
        _stop: stop,
    };
    for (i, (published, _)) in reference_data::shipped()
        .expect("shipped reference data")
        .into_iter()
        .enumerate()
    {
        let body = serde_json::to_vec(&published).expect("json");
        let key = format!("shipped-{i}");
        let started = tokio::time::Instant::now();
        loop {
            let (status, answer) = ledger
                .send(
                    "publish_reference",
                    body.clone(),
                    Some(&ledger.admin),
                    Some(&key),
                )
                .await;
            // A long transaction anywhere on the shared PostgreSQL holds the
            // sequencer back; the same key then gives the first answer.
            if status == 503 && started.elapsed() < Duration::from_secs(300) {
                continue;
            }
            assert_eq!(status, 201, "{answer}");
            break;
        }
    }
    ledger
}

impl Ledger {
    /// The ledger head, once every committed event is sequenced and the
    /// read models have reached it.
    pub async fn projected(&self) -> u64 {
        for _ in 0..400 {
            let unsequenced: i64 =
                sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
                    .fetch_one(self.store.pool())
                    .await
                    .expect("count");
            let head = self.store.head().await.expect("head");
            let at = tledger_projections::projector::position(self.store.pool(), "rm")
                .await
                .expect("checkpoint");
            if unsequenced == 0 && at >= head {
                return head;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the ledger did not settle");
    }

    pub async fn get(&self, path: &str, token: Option<&str>, csv: bool) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if csv {
            request = request.header("accept", "text/csv");
        }
        let response = request.send().await.expect("HTTP");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    pub async fn send(
        &self,
        name: &str,
        body: Vec<u8>,
        token: Option<&str>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/commands/{name}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.expect("HTTP");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.expect("JSON answer");
        (status, body)
    }

    pub async fn post(&self, name: &str, body: &Value) -> (u16, Value) {
        self.send(name, body.to_string().into_bytes(), Some(&self.admin), None)
            .await
    }

    pub async fn token(&self, role: Role, unit: Option<&str>) -> String {
        let access = Access::new(self.store.clone());
        let unit = unit.map(|u| tledger_events::UnitId::parse(u).expect("unit"));
        let publisher = (role == Role::Publisher)
            .then(|| tledger_events::PublisherId::parse("school").expect("publisher"));
        access
            .create(role, unit, publisher, &format!("{role}-token"))
            .await
            .expect("token")
            .1
    }

    pub async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    /// Registers Quảng Nam, Đại Lộc, two communes and one official.
    pub async fn seed(&self) {
        for (name, body) in [
            (
                "register_unit",
                json!({"unit_id": "quang-nam", "name": "Quảng Nam", "level": "province", "effective_date": "1997-01-01"}),
            ),
            (
                "register_unit",
                json!({"unit_id": "dai-loc", "name": "Đại Lộc", "level": "district", "parent_id": "quang-nam", "effective_date": "1997-01-01"}),
            ),
            (
                "register_unit",
                json!({"unit_id": "dai-loc-dai-an", "name": "Đại An", "level": "commune", "parent_id": "dai-loc", "effective_date": "1997-01-01"}),
            ),
            (
                "register_unit",
                json!({"unit_id": "dien-ban", "name": "Điện Bàn", "level": "district", "parent_id": "quang-nam", "effective_date": "1997-01-01"}),
            ),
            ("register_official", official("o-1", "dai-loc-dai-an")),
        ] {
            let (status, answer) = self.post(name, &body).await;
            assert_eq!(status, 201, "{name}: {answer}");
        }
    }
}

pub fn official(id: &str, unit: &str) -> Value {
    json!({
        "official_id": id, "full_name": "Nguyễn Văn A", "birth_year": 1970, "gender": "male",
        "ethnic_minority": false, "unit_id": unit, "staff_category": "cadre",
        "position": "committee_chair", "effective_date": "2005-01-01"
    })
}

pub fn nomination(enrollment: &str, date: &str) -> Value {
    json!({
        "enrollment_id": enrollment, "official_id": "o-1", "nominating_unit_id": "dai-loc-dai-an",
        "program": {"track": "professional", "level": "intermediate", "specialty": "public_admin", "title": "Trung cấp Hành chính"},
        "institution": {"institution_id": "qn-school", "name": "Trường Chính trị Quảng Nam", "in_province": true},
        "planned_start": "2008-09-01", "planned_end": "2010-06-30",
        "funding": [{"source": "district", "amount_vnd": 4500000}],
        "decision_no": "45/QĐ-UBND", "effective_date": date
    })
}

/// The ingest side of the service for `ledger`: the ingest stream and its
/// consumer on `nats_url` (the service's own way in: a URL's
/// `user:password@` is its login), and the parked-fact loop. Both stop when
/// the returned sender is dropped.
pub async fn serve_ingest(
    ledger: &Ledger,
    nats_url: &str,
    publishers: tledger::publishers::Publishers,
    duplicate_window: Duration,
    park_for: Duration,
) -> (
    tledger::ingest::Intake,
    async_nats::Client,
    async_nats::jetstream::Context,
    tokio::sync::watch::Sender<bool>,
) {
    use tledger::ingest::stream as ingest_stream;
    let (client, jetstream) = tledger::startup::connect_nats(nats_url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let prefix = ledger.commands.prefix().clone();
    let consumer = ingest_stream::ensure(&jetstream, &prefix, duplicate_window, 1)
        .await
        .expect("ingest stream");
    let intake =
        tledger::ingest::Intake::new(ledger.store.clone(), ledger.commands.clone(), publishers);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut serve_stopped = stopped.clone();
    tokio::spawn(ingest_stream::serve(
        client.clone(),
        consumer,
        prefix.clone(),
        intake.clone(),
        async move {
            let _ = serve_stopped.changed().await;
        },
    ));
    let mut parked_stopped = stopped;
    tokio::spawn(ingest_stream::tend_parked(
        client.clone(),
        prefix,
        intake.clone(),
        park_for,
        async move {
            let _ = parked_stopped.changed().await;
        },
    ));
    (intake, client, jetstream, stop)
}
