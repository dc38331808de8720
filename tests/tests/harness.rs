//! Tests of the harness itself, against the real servers: if these fail,
//! every other integration test would fail for the harness's reasons.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::Connection as _;
use tledger_tests::{
    admin_url, free_port, unique_prefix, PrivateNats, PrivatePostgres, TestDatabase,
};

/// Whether `name` is among the shared server's databases.
async fn database_exists(name: &str) -> bool {
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("connect to the shared PostgreSQL as admin");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .expect("query pg_database");
    exists
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
async fn port_accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

#[tokio::test]
async fn a_test_database_is_usable_and_gone_after_drop() {
    let database = TestDatabase::create().await;
    let name = database.name().to_owned();
    assert!(
        name.starts_with("tl_test_") && name.len() == "tl_test_".len() + 10,
        "unexpected name {name}"
    );
    assert!(
        database.url().ends_with(&format!("/{name}")),
        "{}",
        database.url()
    );
    assert!(database_exists(&name).await);

    let pool = database.pool().await;
    sqlx::query("CREATE TABLE harness_probe (id int PRIMARY KEY, label text NOT NULL)")
        .execute(&pool)
        .await
        .expect("create a table");
    sqlx::query("INSERT INTO harness_probe (id, label) VALUES (1, 'kept')")
        .execute(&pool)
        .await
        .expect("insert a row");
    let label: String = sqlx::query_scalar("SELECT label FROM harness_probe WHERE id = 1")
        .fetch_one(&pool)
        .await
        .expect("select the row back");
    assert_eq!(label, "kept");

    // The pool is still open: DROP … WITH (FORCE) must end its connections.
    drop(database);
    assert!(
        !database_exists(&name).await,
        "{name} still exists after drop"
    );
    pool.close().await;
}

#[tokio::test]
async fn two_test_databases_have_different_names() {
    let first = TestDatabase::create().await;
    let second = TestDatabase::create().await;
    assert_ne!(first.name(), second.name());
    assert_ne!(first.url(), second.url());
}

#[tokio::test]
async fn a_private_postgres_answers_and_keeps_its_rows_across_stop_start_and_crash() {
    let mut postgres = PrivatePostgres::start().await;
    let port = postgres.port();
    assert_ne!(port, 5432);
    let url = postgres.url("postgres");
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );

    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to the private cluster");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connection)
        .await
        .expect("SELECT 1");
    assert_eq!(one, 1);
    sqlx::query("CREATE TABLE kept (n int NOT NULL)")
        .execute(&mut connection)
        .await
        .expect("create a table");
    sqlx::query("INSERT INTO kept SELECT generate_series(1, 3)")
        .execute(&mut connection)
        .await
        .expect("insert rows");
    connection.close().await.expect("close the connection");

    postgres.stop().await;
    assert!(!postgres.is_running());
    assert!(
        !port_accepts(port).await,
        "port {port} still open after stop"
    );

    postgres.start_again().await;
    assert_eq!(postgres.port(), port);
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect after start_again");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&mut connection)
        .await
        .expect("count rows after stop/start");
    assert_eq!(count, 3);

    // A committed row survives a crash (immediate stop) with fsync = off.
    sqlx::query("INSERT INTO kept VALUES (4)")
        .execute(&mut connection)
        .await
        .expect("insert a row before the crash");
    postgres.crash().await;
    assert!(
        connection.ping().await.is_err(),
        "the connection outlived the crash"
    );
    postgres.start_again().await;
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect after crash recovery");
    let sum: i64 = sqlx::query_scalar("SELECT sum(n) FROM kept")
        .fetch_one(&mut connection)
        .await
        .expect("sum rows after the crash");
    assert_eq!(sum, 1 + 2 + 3 + 4);
    connection.close().await.expect("close the connection");

    let data_dir = postgres.data_dir();
    drop(postgres);
    assert!(!data_dir.exists(), "{} left behind", data_dir.display());
    assert!(
        !port_accepts(port).await,
        "port {port} still open after drop"
    );
}

#[tokio::test]
async fn a_private_nats_keeps_a_stream_across_stop_and_start_and_refuses_after_kill() {
    let mut nats = PrivateNats::start("").await;
    let port = nats.port();
    assert_ne!(port, 4222);
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));

    let prefix = unique_prefix();
    let stream_name = format!("{prefix}_KEPT");
    let subject = format!("{prefix}.kept");
    let client = async_nats::connect(nats.url())
        .await
        .expect("connect to the private nats-server");
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .expect("create a stream");
    let ack = js
        .publish(subject.clone(), "survives".into())
        .await
        .expect("publish")
        .await
        .expect("publish ack");
    assert_eq!(ack.sequence, 1);
    drop(js);

    nats.stop().await;
    assert!(!nats.is_running());
    assert!(
        !port_accepts(port).await,
        "port {port} still open after stop"
    );

    nats.start_again().await;
    assert_eq!(nats.port(), port);
    let client = async_nats::connect(nats.url())
        .await
        .expect("connect after start_again");
    let js = jetstream::new(client);
    let stream = js
        .get_stream(&stream_name)
        .await
        .expect("the stream survives stop/start");
    let info = stream.get_info().await.expect("stream info");
    assert_eq!(info.state.messages, 1);
    assert_eq!(info.state.last_sequence, 1);
    let message = stream
        .get_raw_message(1)
        .await
        .expect("message 1 survives stop/start");
    assert_eq!(message.subject.as_str(), subject);
    assert_eq!(&message.payload[..], b"survives");
    drop(js);

    nats.kill().await;
    assert!(!nats.is_running());
    assert!(
        !port_accepts(port).await,
        "port {port} still open after kill"
    );

    let store_dir = nats.store_dir();
    assert!(store_dir.exists());
    drop(nats);
    assert!(!store_dir.exists(), "{} left behind", store_dir.display());
}

#[tokio::test]
async fn a_private_nats_takes_extra_configuration() {
    let nats = PrivateNats::start("authorization {\n  user: harness\n  password: s3cret\n}").await;
    let refused = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.url())
        .await;
    assert!(refused.is_err(), "connected without credentials");
    let client = async_nats::ConnectOptions::with_user_and_password(
        "harness".to_owned(),
        "s3cret".to_owned(),
    )
    .connect(nats.url())
    .await
    .expect("connect with credentials");
    client.flush().await.expect("flush");
}

#[tokio::test]
#[should_panic(expected = "unknown field")]
async fn a_private_nats_with_a_bad_configuration_fails_with_the_servers_error() {
    let _nats = PrivateNats::start("no_such_setting: 1").await;
}

#[test]
fn unique_prefixes_differ_and_are_valid_nats_tokens() {
    let prefixes: Vec<String> = (0..10_000).map(|_| unique_prefix()).collect();
    for prefix in &prefixes {
        assert!(
            (1..=32).contains(&prefix.len())
                && prefix.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || b == b'-'),
            "{prefix:?} does not match [a-z0-9_-]{{1,32}}"
        );
    }
    let distinct: HashSet<&String> = prefixes.iter().collect();
    assert_eq!(distinct.len(), prefixes.len());
}

#[test]
fn free_port_can_be_bound() {
    let port = free_port();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the free port");
}

#[tokio::test]
async fn private_servers_start_side_by_side() {
    let (first, second, third) = tokio::join!(
        PrivatePostgres::start(),
        PrivatePostgres::start(),
        PrivatePostgres::start()
    );
    let (nats_a, nats_b, nats_c) = tokio::join!(
        PrivateNats::start(""),
        PrivateNats::start(""),
        PrivateNats::start("")
    );
    let ports: HashSet<u16> = [
        first.port(),
        second.port(),
        third.port(),
        nats_a.port(),
        nats_b.port(),
        nats_c.port(),
    ]
    .into_iter()
    .collect();
    assert_eq!(ports.len(), 6, "two servers share a port: {ports:?}");
    for postgres in [&first, &second, &third] {
        let mut connection = sqlx::PgConnection::connect(&postgres.url("postgres"))
            .await
            .expect("connect");
        let port: String = sqlx::query_scalar("SELECT current_setting('port')")
            .fetch_one(&mut connection)
            .await
            .expect("read the port setting");
        assert_eq!(port, postgres.port().to_string());
    }
}

/// Set in the environment of the child process that
/// [`what_a_killed_test_run_leaves_is_removed_by_the_next_one`] starts.
const LEAVER: &str = "TLEDGER_HARNESS_LEAVER";

/// Run only as that child (it returns at once anywhere else, including
/// under `--include-ignored`): makes one of each resource, says where, and
/// waits to be killed.
#[tokio::test]
#[ignore = "helper: a child process of what_a_killed_test_run_leaves_is_removed_by_the_next_one"]
async fn leaver() {
    if std::env::var_os(LEAVER).is_none() {
        return;
    }
    let database = TestDatabase::create().await;
    let postgres = PrivatePostgres::start().await;
    let nats = PrivateNats::start("").await;
    println!("leaver database={}", database.name());
    println!("leaver postgres_port={}", postgres.port());
    println!("leaver postgres_dir={}", postgres.data_dir().display());
    println!("leaver nats_port={}", nats.port());
    println!("leaver nats_dir={}", nats.store_dir().display());
    println!("leaver ready");
    // Bounded, in case the parent dies before it kills this process.
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn what_a_killed_test_run_leaves_is_removed_by_the_next_one() {
    use std::io::BufRead as _;

    let mut child =
        std::process::Command::new(std::env::current_exe().expect("the path of this test binary"))
            .args(["--exact", "leaver", "--include-ignored", "--nocapture"])
            .env(LEAVER, "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start this test binary as a child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let reader = tokio::task::spawn_blocking(move || {
        let mut said = std::collections::HashMap::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("read the child's stdout");
            if line == "leaver ready" {
                return said;
            }
            if let Some((key, value)) = line
                .strip_prefix("leaver ")
                .and_then(|rest| rest.split_once('='))
            {
                said.insert(key.to_owned(), value.to_owned());
            }
        }
        panic!("the child ended before it was ready; it said {said:?}");
    });
    let said = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the child is ready within 60 s")
        .expect("the child's stdout was read");
    child
        .kill()
        .expect("kill the child (SIGKILL: no Drop runs)");
    child.wait().expect("reap the child");

    let field = |key: &str| said.get(key).cloned().expect(key);
    let database = field("database");
    let postgres_port: u16 = field("postgres_port").parse().expect("a port");
    let postgres_dir = std::path::PathBuf::from(field("postgres_dir"));
    let nats_port: u16 = field("nats_port").parse().expect("a port");
    let nats_dir = std::path::PathBuf::from(field("nats_dir"));
    assert!(
        database_exists(&database).await,
        "the child made {database}"
    );
    assert!(
        port_accepts(postgres_port).await,
        "the child's cluster outlives it"
    );
    assert!(
        port_accepts(nats_port).await,
        "the child's nats-server outlives it"
    );

    let _database = TestDatabase::create().await;
    let _postgres = PrivatePostgres::start().await;
    let _nats = PrivateNats::start("").await;

    // Another test process may be sweeping the same leftovers concurrently:
    // allow it a moment to finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = [
            database_exists(&database).await.then_some("database"),
            port_accepts(postgres_port).await.then_some("postgres port"),
            postgres_dir.exists().then_some("postgres directory"),
            port_accepts(nats_port).await.then_some("nats port"),
            nats_dir.exists().then_some("nats directory"),
        ];
        let left: Vec<&str> = left.into_iter().flatten().collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still there after the next run started: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
