//! Start-up steps shared by `serve`, `migrate` and the other verbs: the
//! database (created if missing), migrations and the shipped reference
//! facts, the first admin token, the NATS connection.
//!
//! When something the service needs is not there, the error is one line
//! that says what and how to fix it (`main` prints it as `error: <line>`
//! and exits with 2): an operator starting the service should not have to
//! read a backtrace to learn that PostgreSQL is stopped. Every connection
//! attempt gives up within a few seconds for the same reason.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tledger_events::reference_data::{self, ReferenceFileError};
use tledger_events::{AggregateKind, Fact};
use tledger_store::{Append, AppendError, EventMetadata, NewEvent, Sequencer, Store, StoreError};
use uuid::Uuid;

use crate::access::{Access, AccessError, Role};
use crate::config::{redact_url, Secret, Settings};
use crate::relay::RelayError;

/// How long one connection attempt may take before it counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The pool size of a serving process (commands, reads, sequencer, relay).
pub const POOL_SIZE: u32 = 16;

/// How long `migrate` waits for the sequencer to reach the facts it
/// recorded. Only a transaction held open elsewhere in the cluster delays
/// it; the facts are recorded either way, and a serving process's
/// sequencer gives them positions later.
const SEQUENCE_WAIT: Duration = Duration::from_secs(10);

/// The name of the token made `TLEDGER_ADMIN_TOKEN`.
pub const ENV_ADMIN_TOKEN_NAME: &str = "admin (TLEDGER_ADMIN_TOKEN)";
/// The name of the admin token generated at the first start.
pub const FIRST_ADMIN_TOKEN_NAME: &str = "admin";

/// Why the service cannot start. The `Display` of each is one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    SigningKey(#[from] crate::checkpoint_signing::SigningKeyError),
    #[error(
        "PostgreSQL is not reachable at {at} ({reason}): start it (pg_ctlcluster 15 main start) \
         or set TLEDGER_DATABASE_URL"
    )]
    PostgresUnreachable { at: String, reason: String },
    #[error(
        "PostgreSQL at {at} refused the connection ({reason}): check the user and password in \
         TLEDGER_DATABASE_URL and the server's pg_hba.conf"
    )]
    PostgresRefused { at: String, reason: String },
    #[error(
        "cannot create the database {database} on {at} ({reason}): create it (createdb \
         {database}) or give the role CREATEDB"
    )]
    CreateDatabase {
        database: String,
        at: String,
        reason: String,
    },
    #[error("the database URL is not usable: {0}")]
    DatabaseUrl(String),
    #[error("cannot prepare the read models: {0}")]
    ReadModels(String),
    #[error(
        "NATS is not reachable at {url} ({reason}): start nats-server with JetStream \
         (nats-server -js) or set TLEDGER_NATS_URL"
    )]
    NatsUnreachable { url: String, reason: String },
    #[error(
        "NATS at {url} refused the login: check the user and password in TLEDGER_NATS_URL \
         (nats://user:password@host:port) against the server's authorization users"
    )]
    NatsRefused { url: String },
    #[error(
        "NATS at {url} has JetStream disabled: start nats-server with JetStream (nats-server -js) \
         or set TLEDGER_NATS_URL"
    )]
    NoJetStream { url: String },
    #[error("cannot listen on {addr} ({source}): stop what uses it or set TLEDGER_HTTP_ADDR")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the shipped reference data does not parse: {0}")]
    Reference(#[from] ReferenceFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("setting up JetStream: {0}")]
    Relay(#[from] RelayError),
    #[error("setting up the ingest stream: {0}")]
    Ingest(#[from] crate::ingest::stream::IngestStreamError),
}

impl StartupError {
    /// The process exit code: 2 when a service is unreachable or the
    /// configuration is wrong (the operator must act), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::PostgresUnreachable { .. }
            | StartupError::PostgresRefused { .. }
            | StartupError::CreateDatabase { .. }
            | StartupError::DatabaseUrl(_)
            | StartupError::NatsUnreachable { .. }
            | StartupError::NatsRefused { .. }
            | StartupError::NoJetStream { .. }
            | StartupError::Bind { .. } => 2,
            StartupError::Store(e) if e.is_unreachable() => 2,
            StartupError::Access(AccessError::Store(e)) if e.is_unreachable() => 2,
            _ => 1,
        }
    }
}

/// `host:port` (or the socket path) of a PostgreSQL URL, for messages.
fn server_of(options: &PgConnectOptions) -> String {
    if let Some(socket) = options.get_socket() {
        return socket.display().to_string();
    }
    let host = options.get_host();
    // sqlx keeps the brackets of an IPv6 literal from the URL, but not of
    // one given otherwise (PGHOST).
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", options.get_port())
    } else {
        format!("{host}:{}", options.get_port())
    }
}

/// A short, lower-case reason for an I/O failure.
fn io_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut => "timed out".into(),
        ErrorKind::NotFound => "no such socket".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => one_line(&error.to_string()),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a failed connection to PostgreSQL shows.
fn connect_error(at: &str, error: sqlx::Error) -> StartupError {
    let at = at.to_owned();
    match error {
        sqlx::Error::Io(e) => StartupError::PostgresUnreachable {
            at,
            reason: io_reason(&e),
        },
        sqlx::Error::Tls(e) => StartupError::PostgresUnreachable {
            at,
            reason: format!("TLS: {}", one_line(&e.to_string())),
        },
        sqlx::Error::PoolTimedOut => StartupError::PostgresUnreachable {
            at,
            reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        },
        sqlx::Error::Database(e) => StartupError::PostgresRefused {
            at,
            reason: one_line(e.message()),
        },
        other => StartupError::PostgresUnreachable {
            at,
            reason: one_line(&other.to_string()),
        },
    }
}

async fn connect_once(options: &PgConnectOptions, at: &str) -> Result<PgConnection, sqlx::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
    .inspect_err(|e| tracing::debug!(server = at, error = %e, "a connection attempt failed"))
}

/// Whether PostgreSQL said "database does not exist".
fn is_missing_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("3D000"))
}

/// Connects to the ledger's database at `url`, creating it first if the
/// server lacks it (`CREATE DATABASE`, through the server's `postgres`
/// database), and returns a store with a pool of [`POOL_SIZE`].
pub async fn ensure_database(url: &str) -> Result<Store, StartupError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StartupError::DatabaseUrl(one_line(&e.to_string())))?
        .disable_statement_logging();
    let at = server_of(&options);
    // Without a database in the URL, PostgreSQL uses the user's name.
    let database = options
        .get_database()
        .unwrap_or(options.get_username())
        .to_owned();

    // Try the ledger's own database first: a role that may only connect
    // there (a managed server) must still be able to start.
    match connect_once(&options, &at).await {
        Ok(connection) => {
            let _ = connection.close().await;
        }
        Err(e) if is_missing_database(&e) => create_database(&options, &at, &database).await?,
        Err(e) => return Err(connect_error(&at, e)),
    }
    Store::connect(url, POOL_SIZE).await.map_err(|e| match e {
        StoreError::Database { source, .. } => connect_error(&at, source),
        other => StartupError::Store(other),
    })
}

async fn create_database(
    options: &PgConnectOptions,
    at: &str,
    database: &str,
) -> Result<(), StartupError> {
    let maintenance = options.clone().database("postgres");
    let mut connection = connect_once(&maintenance, at)
        .await
        .map_err(|e| connect_error(at, e))?;
    let statement = format!("CREATE DATABASE {}", quote_ident(database));
    let created = sqlx::raw_sql(&statement).execute(&mut connection).await;
    let _ = connection.close().await;
    match created {
        Ok(_) => {
            tracing::info!(database, server = at, "created the database");
            Ok(())
        }
        // Another process created it at the same moment: what we wanted.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
        Err(e) => Err(StartupError::CreateDatabase {
            database: database.to_owned(),
            at: at.to_owned(),
            reason: match &e {
                sqlx::Error::Database(db) => one_line(db.message()),
                other => one_line(&other.to_string()),
            },
        }),
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What [`migrate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The names of the shipped reference facts recorded now (empty when
    /// the ledger had them all).
    pub recorded: Vec<String>,
    /// The ledger head afterwards.
    pub head: u64,
    /// Whether every recorded fact has its position (false only when a
    /// transaction held open elsewhere kept the sequencer back).
    pub sequenced: bool,
}

/// Runs the store's migrations, records each shipped reference fact that
/// the ledger lacks (`reference.published.v1` in `reference-<name>`), and
/// sequences them. Idempotent: a second run records nothing.
pub async fn migrate(store: &Store) -> Result<Migrated, StartupError> {
    store.migrate().await?;
    let mut recorded = Vec::new();
    let mut event_ids = Vec::new();
    for (published, _content) in reference_data::shipped()? {
        let name = published.name.as_str().to_owned();
        if !store
            .load_stream(AggregateKind::Reference, &name)
            .await?
            .is_empty()
        {
            continue;
        }
        let event_id = Uuid::now_v7();
        let append = Append {
            aggregate: AggregateKind::Reference,
            aggregate_id: name.clone(),
            expected_version: 0,
            events: vec![NewEvent {
                event_id,
                fact: Fact::ReferencePublished(published),
                metadata: EventMetadata {
                    publisher: "/tledger/migrate".into(),
                    actor: "migrate".into(),
                    ..EventMetadata::default()
                },
            }],
            idempotency: None,
        };
        match store.append(&append).await {
            Ok(()) => {
                tracing::info!(reference = %name, "recorded the shipped reference fact");
                recorded.push(name);
                event_ids.push(event_id);
            }
            // Another process recorded it since we looked: the ledger has it.
            Err(AppendError::VersionConflict { .. }) => {}
            Err(AppendError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(e.into()),
        }
    }
    let sequenced = sequence(store, &event_ids).await?;
    let head = store.head().await?;
    Ok(Migrated {
        recorded,
        head,
        sequenced,
    })
}

/// Drives the sequencer until nothing committed is left and `event_ids`
/// have positions, or [`SEQUENCE_WAIT`] has passed.
async fn sequence(store: &Store, event_ids: &[Uuid]) -> Result<bool, StartupError> {
    let sequencer = Sequencer::new(store.clone());
    let deadline = Instant::now() + SEQUENCE_WAIT;
    loop {
        let batch = sequencer.sequence_batch().await?;
        if !batch.events.is_empty() {
            continue;
        }
        if store.positions(event_ids).await?.len() == event_ids.len() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                "a transaction held open elsewhere in the PostgreSQL cluster keeps the sequencer \
                 back; the reference facts are recorded and will be sequenced when it ends"
            );
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What [`admin_token`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminToken {
    /// `TLEDGER_ADMIN_TOKEN` is set: it is (now) an admin token.
    FromEnvironment,
    /// First start: this token was generated, stored hashed and printed.
    Generated(Secret),
    /// An admin token was created before (maybe revoked since): nothing to
    /// do.
    Existing,
}

/// Makes sure an administrator can get in: with `TLEDGER_ADMIN_TOKEN` set,
/// it becomes an admin token; otherwise, on the first start only (no admin
/// token was ever created), one is generated and printed once on standard
/// output as `admin token: <token>`. A revoked admin token counts as
/// created, so that revoking it does not make the next start print a new
/// one. Two processes making the very first start together may each
/// generate (and print) one; both are valid admin tokens.
pub async fn admin_token(access: &Access, settings: &Settings) -> Result<AdminToken, StartupError> {
    if let Some(secret) = &settings.admin_token {
        access
            .ensure(Role::Admin, ENV_ADMIN_TOKEN_NAME, secret.expose())
            .await?;
        return Ok(AdminToken::FromEnvironment);
    }
    let outcome = if access.admin_ever_created().await? {
        AdminToken::Existing
    } else {
        let (caller, secret) = access
            .create(Role::Admin, None, None, FIRST_ADMIN_TOKEN_NAME)
            .await?;
        tracing::info!(
            token_id = %caller.token_id,
            "generated the first admin token; it is shown once, on standard output"
        );
        println!("admin token: {secret}");
        AdminToken::Generated(Secret::new(secret))
    };
    Ok(outcome)
}

/// Connects to NATS at `url` (one server, or several separated by commas),
/// giving up within [`CONNECT_TIMEOUT`], and checks that JetStream is
/// enabled. Client events (disconnections, permission violations, slow
/// consumers) are logged: a denied publish shows only there.
pub async fn connect_nats(
    url: &str,
) -> Result<(async_nats::Client, async_nats::jetstream::Context), StartupError> {
    let shown = redact_url(url);
    let unreachable = |reason: String| StartupError::NatsUnreachable {
        url: shown.clone(),
        reason,
    };
    let servers = url
        .split(',')
        .map(|s| async_nats::ServerAddr::from_str(s.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreachable(one_line(&e.to_string())))?;
    // A URL's `user:password@` is the service's NATS login (the client does
    // not take it from the address by itself).
    let login = servers
        .iter()
        .find_map(|s| Some((s.username()?.to_owned(), s.password()?.to_owned())));
    // The client logs each server address at debug, password and all
    // (`ServerAddr`'s `Debug` is the URL's): it gets the addresses without
    // their login, which goes in the options.
    let servers = servers
        .into_iter()
        .map(without_login)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreachable(one_line(&e.to_string())))?;
    let options = match login {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        None => async_nats::ConnectOptions::new(),
    };
    let options = options
        .name("tledger")
        .connection_timeout(CONNECT_TIMEOUT)
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected
                | async_nats::Event::Draining
                | async_nats::Event::Closed => tracing::info!(%event, "NATS connection"),
                async_nats::Event::ServerError(e) => {
                    tracing::warn!(error = %e, "NATS server error")
                }
                async_nats::Event::ClientError(e) => {
                    tracing::warn!(error = %e, "NATS client error")
                }
                other => tracing::warn!(event = %other, "NATS connection event"),
            }
        });
    // The outer timeout bounds name resolution and the handshake as well.
    let client = match tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        options.connect(servers),
    )
    .await
    {
        Ok(Ok(client)) => client,
        Ok(Err(e)) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation => {
            return Err(StartupError::NatsRefused { url: shown })
        }
        Ok(Err(e)) => return Err(unreachable(nats_reason(&e))),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    if !client.server_info().jetstream {
        return Err(StartupError::NoJetStream { url: shown });
    }
    let jetstream = async_nats::jetstream::new(client.clone());
    Ok((client, jetstream))
}

/// A NATS server address without its `user:password@`.
fn without_login(server: async_nats::ServerAddr) -> std::io::Result<async_nats::ServerAddr> {
    if !server.has_user_pass() {
        return Ok(server);
    }
    let mut url = server.into_inner();
    // Neither fails on a `nats://host` URL, which has a host to log in to.
    let _ = url.set_password(None);
    let _ = url.set_username("");
    async_nats::ServerAddr::from_url(url)
}

fn nats_reason(error: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind;
    use std::error::Error as _;
    let io = error
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>());
    match (error.kind(), io) {
        (ConnectErrorKind::Io, Some(io)) => io_reason(io),
        (ConnectErrorKind::TimedOut, _) => "timed out".into(),
        _ => one_line(&error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_address_loses_its_login_and_keeps_the_rest() {
        let server: async_nats::ServerAddr = "nats://tledger:pw@127.0.0.1:4223"
            .parse()
            .expect("an address");
        let bare = without_login(server).expect("still an address");
        assert!(!format!("{bare:?}").contains("pw"), "{bare:?}");
        assert!(!bare.has_user_pass());
        assert_eq!(bare.into_inner().as_str(), "nats://127.0.0.1:4223");
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("tl"), "\"tl\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn server_of_names_host_and_port() {
        let options = |url: &str| PgConnectOptions::from_str(url).expect("valid URL");
        assert_eq!(
            server_of(&options("postgres://u@127.0.0.1:5433/x")),
            "127.0.0.1:5433"
        );
        assert_eq!(server_of(&options("postgres://u@db/x")), "db:5432");
        assert_eq!(
            server_of(&options("postgres://u@[::1]:5432/x")),
            "[::1]:5432"
        );
    }

    #[test]
    fn unreachable_services_are_one_line_with_the_fix() {
        let pg = StartupError::PostgresUnreachable {
            at: "127.0.0.1:5432".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            pg.to_string(),
            "PostgreSQL is not reachable at 127.0.0.1:5432 (connection refused): start it \
             (pg_ctlcluster 15 main start) or set TLEDGER_DATABASE_URL"
        );
        assert_eq!(pg.exit_code(), 2);
        let nats = StartupError::NatsUnreachable {
            url: "nats://127.0.0.1:4222".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            nats.to_string(),
            "NATS is not reachable at nats://127.0.0.1:4222 (connection refused): start \
             nats-server with JetStream (nats-server -js) or set TLEDGER_NATS_URL"
        );
        assert_eq!(nats.exit_code(), 2);
    }
}
