//! The `tledger` binary as an operator uses it: `migrate`, `tokens`,
//! `serve`, and what it says when PostgreSQL or NATS is not there. Each test
//! runs the real binary against its own database on the machine's
//! PostgreSQL and its own prefix on the machine's nats-server; nothing is
//! mocked.

use std::process::{Output, Stdio};
use std::time::Duration;

use sqlx::{Connection as _, Row as _};
use tledger::access::{Access, AccessError, Role};
use tledger_store::Store;
use tledger_tests::{admin_url, free_port, unique_prefix, TestDatabase};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_tledger");

/// Every variable the binary reads; the tests' own environment must not
/// leak into the runs.
const VARIABLES: &[&str] = &[
    "TLEDGER_CONFIG",
    "TLEDGER_DATABASE_URL",
    "TLEDGER_NATS_URL",
    "TLEDGER_HTTP_ADDR",
    "TLEDGER_PREFIX",
    "TLEDGER_ADMIN_TOKEN",
    "TLEDGER_SIGNING_KEY",
    "TLEDGER_CHECKPOINT_EVENTS",
    "TLEDGER_CHECKPOINT_SECONDS",
    "TLEDGER_LOG",
    "TLEDGER_LOG_FORMAT",
];

/// How long one run of the binary may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The per-test settings of a run: its database, its prefix, port 0, and a
/// signing key path of its own (never the source tree).
struct Setup {
    database_url: String,
    prefix: String,
    signing_key: std::path::PathBuf,
}

impl Setup {
    fn new(database_url: &str) -> Self {
        let prefix = unique_prefix();
        let signing_key = std::env::temp_dir().join(format!("tledger-cli-{prefix}.key"));
        Self {
            database_url: database_url.to_owned(),
            prefix,
            signing_key,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        for variable in VARIABLES {
            command.env_remove(variable);
        }
        command
            .args(args)
            .env("TLEDGER_DATABASE_URL", &self.database_url)
            .env("TLEDGER_PREFIX", &self.prefix)
            .env("TLEDGER_HTTP_ADDR", "127.0.0.1:0")
            .env("TLEDGER_SIGNING_KEY", &self.signing_key)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Deletes what a `serve` made on the shared nats-server.
    async fn remove_streams(&self) {
        let Ok(client) = async_nats::connect("nats://127.0.0.1:4222").await else {
            return;
        };
        let jetstream = async_nats::jetstream::new(client);
        let upper = self.prefix.to_uppercase();
        for stream in [format!("{upper}_EVENTS"), format!("{upper}_INGEST")] {
            let _ = jetstream.delete_stream(&stream).await;
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.signing_key);
    }
}

async fn run(mut command: Command) -> Output {
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("the binary finishes within a minute")
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

async fn access(db: &TestDatabase) -> Access {
    Access::new(Store::from_pool(db.pool().await))
}

async fn drop_database(name: &str) {
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("admin connection");
    sqlx::raw_sql(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the database");
}

#[tokio::test]
async fn migrate_creates_the_database_and_records_the_shipped_reference_facts_once() {
    let db = TestDatabase::create().await;
    // A name nobody has: TestDatabase still drops it at the end.
    drop_database(db.name()).await;
    let setup = Setup::new(db.url());

    let first = run(setup.command(&["migrate"])).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        "recorded the shipped reference data nd92-2009, qd04-2004, default-specialties; \
         the ledger head is 3\n"
    );

    let pool = db.pool().await;
    let events = || async {
        sqlx::query(
            "SELECT event_type, aggregate_type, aggregate_id, version, position, publisher, actor \
             FROM events ORDER BY position",
        )
        .fetch_all(&pool)
        .await
        .expect("read events")
        .iter()
        .map(|row| {
            (
                row.get::<String, _>("event_type"),
                row.get::<String, _>("aggregate_type"),
                row.get::<String, _>("aggregate_id"),
                row.get::<i64, _>("version"),
                row.get::<Option<i64>, _>("position"),
                row.get::<String, _>("publisher"),
                row.get::<String, _>("actor"),
            )
        })
        .collect::<Vec<_>>()
    };
    let expected: Vec<_> = [
        (1, "nd92-2009"),
        (2, "qd04-2004"),
        (3, "default-specialties"),
    ]
    .into_iter()
    .map(|(position, name)| {
        (
            "reference.published.v1".to_owned(),
            "reference".to_owned(),
            name.to_owned(),
            1,
            Some(position),
            "/tledger/migrate".to_owned(),
            "migrate".to_owned(),
        )
    })
    .collect();
    assert_eq!(events().await, expected);

    let second = run(setup.command(&["migrate"])).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout),
        "the database is up to date; the ledger head is 3\n"
    );
    assert_eq!(events().await, expected, "nothing recorded twice");
    pool.close().await;
}

#[tokio::test]
async fn tokens_are_created_listed_without_secrets_and_revoked() {
    let db = TestDatabase::create().await;
    let setup = Setup::new(db.url());

    let created =
        run(setup.command(&["tokens", "create", "--role", "inspector", "--name", "x"])).await;
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let stdout = text(&created.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let secret = lines[1];
    let caller = access(&db)
        .await
        .authenticate(Some(secret))
        .await
        .expect("the printed token is accepted");
    assert_eq!(caller.role, Role::Inspector);
    assert_eq!(caller.name, "x");
    assert_eq!(
        lines[0],
        format!(
            "created token {} (inspector, scope all) named \"x\"",
            caller.token_id
        )
    );

    let listed = run(setup.command(&["tokens", "list"])).await;
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let table = text(&listed.stdout);
    assert!(!table.contains(secret), "{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(
        rows[0],
        ["id", "name", "role", "scope", "created", "revoked"]
    );
    let id = caller.token_id.to_string();
    assert_eq!(rows[1][..4], [id.as_str(), "x", "inspector", "all"]);
    assert!(
        chrono::DateTime::parse_from_rfc3339(rows[1][4]).is_ok(),
        "{table}"
    );
    assert_eq!(rows[1][5], "no");

    let revoked = run(setup.command(&["tokens", "revoke", "x"])).await;
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked.stderr));
    assert_eq!(text(&revoked.stdout), "revoked 1 token\n");
    let refused = access(&db).await.authenticate(Some(secret)).await;
    assert!(matches!(refused, Err(AccessError::Invalid)), "{refused:?}");

    let listed = run(setup.command(&["tokens", "list"])).await;
    let table = text(&listed.stdout);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.ends_with("  yes")),
        "{table}"
    );
    assert!(!table.contains(secret), "{table}");
}

#[tokio::test]
async fn tokens_create_should_not_make_a_unit_officer_without_a_unit() {
    let db = TestDatabase::create().await;
    let setup = Setup::new(db.url());
    let output = run(setup.command(&[
        "tokens",
        "create",
        "--role",
        "unit_officer",
        "--name",
        "officer",
    ]))
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        "error: a unit_officer token needs --unit\n"
    );
    assert!(access(&db).await.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn an_unreachable_postgresql_is_one_line_with_the_fix_and_exit_code_2() {
    let port = free_port();
    // The password must not show in the message.
    let setup = Setup::new(&format!(
        "postgres://postgres:hunter2@127.0.0.1:{port}/tledger"
    ));
    for args in [&["serve"][..], &["migrate"], &["tokens", "list"]] {
        let output = run(setup.command(args)).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&output.stdout), "", "{args:?}");
        assert_eq!(
            text(&output.stderr),
            format!(
                "error: PostgreSQL is not reachable at 127.0.0.1:{port} (connection refused): \
                 start it (pg_ctlcluster 15 main start) or set TLEDGER_DATABASE_URL\n"
            ),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_nats_is_one_line_with_the_fix_and_exit_code_2() {
    let db = TestDatabase::create().await;
    let setup = Setup::new(db.url());
    let port = free_port();
    let mut command = setup.command(&["serve"]);
    command.env("TLEDGER_NATS_URL", format!("nats://127.0.0.1:{port}"));
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stdout),
        "",
        "no admin token before the service can start"
    );
    let stderr = text(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [format!(
            "error: NATS is not reachable at nats://127.0.0.1:{port} (connection refused): \
             start nats-server with JetStream (nats-server -js) or set TLEDGER_NATS_URL"
        )],
        "{stderr}"
    );
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
}

#[tokio::test]
async fn a_refused_nats_login_is_one_line_with_the_fix_and_exit_code_2() {
    let db = TestDatabase::create().await;
    let setup = Setup::new(db.url());
    let nats = tledger_tests::PrivateNats::start(
        "authorization { users: [ { user: \"tledger\", password: \"right\" } ] }\n",
    )
    .await;
    let mut command = setup.command(&["serve"]);
    let url = format!("nats://tledger:wrong@127.0.0.1:{}", nats.port());
    command.env("TLEDGER_NATS_URL", &url);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [format!(
            "error: NATS at nats://tledger:***@127.0.0.1:{} refused the login: check the user and \
             password in TLEDGER_NATS_URL (nats://user:password@host:port) against the server's \
             authorization users",
            nats.port()
        )],
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong"),
        "the password is never shown: {stderr}"
    );
}

#[tokio::test]
async fn a_bad_setting_is_one_line_naming_it_and_exit_code_2() {
    let setup = Setup::new("postgres://postgres@127.0.0.1:5432/unused");
    let mut command = setup.command(&["migrate"]);
    command.env("TLEDGER_PREFIX", "TL");
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "error: TLEDGER_PREFIX must be 1-32 characters of a-z 0-9 _ -, not \"TL\"\n"
    );

    let file = std::env::temp_dir().join(format!("tledger-cli-{}.toml", setup.prefix));
    std::fs::write(&file, "prefix = \"tl\"\nhttp_adress = \"127.0.0.1:1\"\n").expect("write");
    let mut command = setup.command(&["--config", file.to_str().expect("UTF-8 path"), "migrate"]);
    command.env_remove("TLEDGER_PREFIX");
    let output = run(command).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "error: the config file {} has an unknown key `http_adress`; the keys are \
             database_url, nats_url, http_addr, prefix, admin_token, signing_key, \
             checkpoint_events, checkpoint_seconds, park_seconds and stream_replicas\n",
            file.display()
        )
    );
}

/// A running `serve`: its process, its HTTP port, and its standard error
/// so far.
struct Serving {
    child: Child,
    port: u16,
    stderr: String,
    stderr_rest: tokio::task::JoinHandle<String>,
}

/// Starts `serve` and waits until it listens (its log says where).
async fn start_serving(mut command: Command) -> Serving {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stderr = String::new();
    let port = tokio::time::timeout(RUN_LIMIT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            stderr.push_str(&line);
            stderr.push('\n');
            if let Some((_, rest)) = line.split_once("listening on http://127.0.0.1:") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<u16>().expect("a port");
            }
        }
        panic!("serve ended before listening:\n{stderr}");
    })
    .await
    .unwrap_or_else(|_| panic!("serve did not listen within a minute"));
    // Keep draining standard error so that the process never blocks on it.
    let stderr_rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    Serving {
        child,
        port,
        stderr,
        stderr_rest,
    }
}

impl Serving {
    /// SIGTERM, then the exit status, standard output and standard error.
    async fn stop(mut self) -> (Option<i32>, String, String) {
        let pid = self.child.id().expect("still running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let status = tokio::time::timeout(RUN_LIMIT, self.child.wait())
            .await
            .expect("serve stops within a minute of SIGTERM")
            .expect("wait for serve");
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .await
            .expect("read stdout");
        let rest = self.stderr_rest.await.expect("stderr reader");
        let stderr = self.stderr + &rest;
        assert!(!stderr.contains("panicked"), "{stderr}");
        (status.code(), stdout, stderr)
    }
}

async fn healthz(port: u16) -> reqwest::StatusCode {
    reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("GET /healthz")
        .status()
}

#[tokio::test]
async fn the_first_start_prints_an_admin_token_once_and_no_secret_is_logged() {
    let db = TestDatabase::create().await;
    // A password in the URL (trust authentication ignores it) must never
    // be logged.
    let url = db.url().replacen("postgres@", "postgres:hunter2@", 1);
    assert_ne!(url, db.url(), "the harness URL names the postgres user");
    let setup = Setup::new(&url);

    let first = start_serving(setup.command(&["serve"])).await;
    assert_eq!(healthz(first.port).await, 200);
    let (code, stdout, stderr_1) = first.stop().await;
    assert_eq!(code, Some(0), "{stderr_1}");
    let token = stdout
        .strip_prefix("admin token: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("one `admin token: …` line, not {stdout:?}"));
    assert!(!token.contains('\n'), "{stdout:?}");
    let caller = access(&db)
        .await
        .authenticate(Some(token))
        .await
        .expect("the printed token is accepted");
    assert_eq!(caller.role, Role::Admin);

    // The second start generates nothing (even after the first token is
    // revoked: an admin token was created once).
    access(&db)
        .await
        .revoke(&caller.token_id.to_string())
        .await
        .expect("revoke");
    let second = start_serving(setup.command(&["serve"])).await;
    let (code, stdout, stderr_2) = second.stop().await;
    assert_eq!(code, Some(0), "{stderr_2}");
    assert_eq!(stdout, "");

    // TLEDGER_ADMIN_TOKEN becomes an admin token, silently, even with
    // debug logs.
    let chosen = "tl_chosen-admin-token-0123456789";
    let mut command = setup.command(&["serve"]);
    command
        .env("TLEDGER_ADMIN_TOKEN", chosen)
        .env("TLEDGER_LOG", "debug");
    let third = start_serving(command).await;
    assert_eq!(healthz(third.port).await, 200);
    let (code, stdout, stderr_3) = third.stop().await;
    assert_eq!(code, Some(0), "{stderr_3}");
    assert_eq!(stdout, "");
    let caller = access(&db)
        .await
        .authenticate(Some(chosen))
        .await
        .expect("TLEDGER_ADMIN_TOKEN is accepted");
    assert_eq!(caller.role, Role::Admin);

    for stderr in [&stderr_1, &stderr_2, &stderr_3] {
        for secret in [token, chosen, "hunter2"] {
            assert!(!stderr.contains(secret), "{secret} logged:\n{stderr}");
        }
    }
    assert!(
        stderr_3.contains("postgres:***@"),
        "the redacted settings are logged at debug"
    );
    setup.remove_streams().await;
}

#[tokio::test]
async fn the_nats_password_is_never_logged_even_at_debug() {
    let db = TestDatabase::create().await;
    let setup = Setup::new(db.url());
    let password = "nats-pw-0c5e9d";
    let nats = tledger_tests::PrivateNats::start(&format!(
        "authorization {{ users: [ {{ user: \"tledger\", password: \"{password}\" }} ] }}\n"
    ))
    .await;
    let mut command = setup.command(&["serve"]);
    command
        .env(
            "TLEDGER_NATS_URL",
            format!("nats://tledger:{password}@127.0.0.1:{}", nats.port()),
        )
        .env("TLEDGER_LOG", "debug");
    let serving = start_serving(command).await;
    // Logged in with the password: the service serves.
    assert_eq!(healthz(serving.port).await, 200);
    let (code, _, stderr) = serving.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("NATS connection"),
        "the client's events are logged: {stderr}"
    );
    assert!(
        !stderr.contains(password),
        "the NATS password was logged:\n{}",
        stderr
            .lines()
            .filter(|l| l.contains(password))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A copy of the binary alone in a directory of its own, and that directory.
fn lone_binary() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("tledger");
    // A hard link is quicker than a copy of the debug binary; a symlink
    // would not do (the binary finds its directory through /proc/self/exe).
    if std::fs::hard_link(BIN, &copy).is_err() {
        std::fs::copy(BIN, &copy).expect("copy the binary");
    }
    (dir, copy)
}

#[tokio::test]
async fn bench_without_the_benchmarks_built_says_how_to_build_them() {
    let (_dir, binary) = lone_binary();
    let mut command = Command::new(&binary);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
        .args(["bench", "commands", "--count", "10"])
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null());
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("cargo build --release -p tledger-bench"),
        "{stderr}"
    );
}

#[tokio::test]
async fn bench_runs_the_benchmarks_beside_it_with_the_same_arguments() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, binary) = lone_binary();
    // Stands in for tledger-bench: prints its arguments, exits 3.
    let bench = dir.path().join("tledger-bench");
    std::fs::write(&bench, "#!/bin/sh\necho \"$@\"\nexit 3\n").expect("write the stand-in");
    std::fs::set_permissions(&bench, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut command = Command::new(&binary);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
        .args(["--config", "/etc/tledger.toml", "bench", "commands"])
        .args(["--count", "10", "--help"])
        .stdin(Stdio::null());
    let output = run(command).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "its exit code is the bench's"
    );
    assert_eq!(
        text(&output.stdout),
        "--config /etc/tledger.toml commands --count 10 --help\n"
    );
}
