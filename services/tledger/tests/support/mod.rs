//! A ledger served in-process for the HTTP tests, on the wiring the binary
//! uses (`tledger::app::build_with`): a fresh database and prefix, port 0,
//! no NATS, short HTTP deadlines, the policy stepped by the tests. Logs
//! show only when `TEST_LOG` is set (`RUST_LOG` filters them, default
//! `tledger=debug`).
#![allow(dead_code)] // each test binary uses part of it

pub mod random_history;

use std::time::Duration;

use serde_json::{json, Value};
use tledger::access::{Access, Role};
use tledger::app::Wiring;
use tledger::commands::CommandService;
use tledger::config::Settings;
use tledger::web::Deadlines;
use tledger::Prefix;
use tledger_events::reference_data;
use tledger_store::Store;
use tledger_tests::TestDatabase;
use tokio::sync::oneshot;

/// How long the test server waits for a request head.
pub const SUPPORT_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the test server waits for a request body once its head is in.
pub const SUPPORT_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the in-process world changes of the service's wiring.
pub fn in_process() -> Wiring {
    Wiring {
        // Short deadlines: the security tests play slow clients.
        deadlines: Deadlines {
            head: SUPPORT_HEADER_TIMEOUT,
            body: SUPPORT_BODY_TIMEOUT,
        },
        // A test that needs NATS starts what it needs ([`serve_ingest`], a
        // relay watched by [`Ledger::relay`]).
        nats: false,
        // Tests step the policy themselves, so they know when it has run.
        policies: false,
        // Published through the commands below, as a publisher would.
        shipped_reference: false,
        sequencer_idle: Duration::from_millis(50),
        projector_idle: Duration::from_millis(100),
    }
}

/// Logs to the test's output when `TEST_LOG` is set, else nothing.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("TEST_LOG").is_some() {
        ONCE.call_once(|| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("tledger=debug"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        });
    }
}

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
    /// Dropped with the ledger: the service then stops.
    pub _stop: oneshot::Sender<()>,
}

/// A ledger served on a free port with a prefix of its own, the shipped
/// reference data published.
pub async fn spawn_app() -> Ledger {
    spawn_app_with_prefix(tledger_tests::unique_prefix().parse().expect("prefix")).await
}

/// [`spawn_app`], with the NATS prefix given (a test that configures NATS
/// users for it).
pub async fn spawn_app_with_prefix(prefix: Prefix) -> Ledger {
    init_logs();
    let db = TestDatabase::create().await;
    let settings = Settings {
        database_url: db.url().to_owned(),
        prefix,
        http_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Settings::default()
    };
    let app = tledger::app::build_with(&settings, in_process())
        .await
        .unwrap_or_else(|e| panic!("the service does not start: {e}"));
    let (_, admin) = app
        .access()
        .create(Role::Admin, None, None, "admin")
        .await
        .expect("admin token");
    let store = app.store().clone();
    let commands = app.commands().clone();
    let relay = app.relay_watch().clone();
    let base = format!("http://{}", app.address());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let run = app.run_until_stopped(async move {
            let _ = stopped.await;
        });
        if let Err(e) = run.await {
            eprintln!("the in-process service failed: {e}");
        }
    });
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
