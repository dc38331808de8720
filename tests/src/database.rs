//! A fresh database per test on the machine's shared PostgreSQL.
//!
//! Why a database per test, not a schema or a transaction rolled back at the
//! end: the ledger's code opens its own connections and transactions, runs
//! migrations, and relies on commit visibility (the sequencer), so a test
//! needs a whole database it can commit to. Creating one from `template0`
//! takes a few milliseconds, so every test gets its own and tests run in
//! parallel without seeing each other's rows.
//!
//! Why `DROP DATABASE … WITH (FORCE)` in a thread that `Drop` waits for:
//! `Drop` cannot await, and it may run inside the test's runtime, where
//! blocking on that runtime would deadlock; a thread with its own small
//! runtime can connect and drop the database whatever the caller's runtime
//! is. `Drop` waits for it (at most 30 s) so that the database is gone when
//! the value is, and so that a test binary that exits right after its last
//! test does not leave the database behind. `FORCE` ends connections that a
//! pool of the test may still hold. A database left behind by a killed test
//! run is harmless (its name is unique): each database's comment names the
//! process that made it, and `create` drops those whose process is gone.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection as _;

use crate::leftovers::Owner;
use crate::names::random_lower_alnum;

/// The admin URL used when `TLEDGER_TEST_ADMIN_URL` is not set: the
/// machine's PostgreSQL service (trust authentication on loopback).
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How the shared server is started on this kind of machine.
const START_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` \
     (the machine's PostgreSQL service), or set TLEDGER_TEST_ADMIN_URL to a server that is running";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DROP_TIMEOUT: Duration = Duration::from_secs(30);

/// The URL of a role that may create databases on the shared PostgreSQL:
/// `TLEDGER_TEST_ADMIN_URL`, or `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn admin_url() -> String {
    match std::env::var("TLEDGER_TEST_ADMIN_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => DEFAULT_ADMIN_URL.to_owned(),
    }
}

/// A database of one test's own on the shared PostgreSQL, named
/// `tl_test_<10 random [a-z0-9]>`, dropped (with `FORCE`) when this value
/// is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database on the server of [`admin_url`].
    ///
    /// # Panics
    /// If PostgreSQL is not reachable (the message says how to start it) or
    /// refuses to create the database.
    pub async fn create() -> TestDatabase {
        let admin_url = admin_url();
        match Self::try_create(admin_url).await {
            Ok(database) => database,
            Err(e) => panic!("TestDatabase::create: {e:#}"),
        }
    }

    async fn try_create(admin_url: String) -> anyhow::Result<TestDatabase> {
        let mut admin = connect(&admin_url).await?;
        drop_abandoned_databases(&mut admin).await;
        let name = format!("tl_test_{}", random_lower_alnum(10));
        // template0: nothing that someone installed into template1 leaks in,
        // and no "template1 is being accessed by other users" when another
        // session happens to be connected to template1.
        let create = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name));
        sqlx::raw_sql(&create)
            .execute(&mut admin)
            .await
            .with_context(|| {
                format!(
                    "creating database {name} on {} (the role needs CREATEDB)",
                    redact(&admin_url)
                )
            })?;
        let comment = format!(
            "COMMENT ON DATABASE {} IS '{}'",
            quote_ident(&name),
            Owner::current().tag().replace('\'', "''")
        );
        sqlx::raw_sql(&comment)
            .execute(&mut admin)
            .await
            .with_context(|| format!("naming the owner of database {name}"))?;
        // Closing politely is a courtesy; the database exists either way.
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Ok(TestDatabase {
            name,
            url,
            admin_url,
        })
    }

    /// The database's name, `tl_test_…`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the database (the admin URL's server and role).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A small pool (5 connections) on the database.
    ///
    /// # Panics
    /// If it cannot connect.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "TestDatabase::pool: connecting to {}: {e}",
                    redact(&self.url)
                )
            })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("drop-{name}"))
            .spawn(move || {
                let _ = done_tx.send(drop_database_blocking(&admin_url, &name));
            });
        let outcome = match spawned {
            Ok(_handle) => match done_rx.recv_timeout(DROP_TIMEOUT) {
                Ok(result) => result,
                Err(_) => Err(anyhow!("no answer within {} s", DROP_TIMEOUT.as_secs())),
            },
            Err(e) => Err(anyhow!("could not spawn a thread: {e}")),
        };
        if let Err(e) = outcome {
            eprintln!(
                "warning: TestDatabase: database {} was not dropped: {e:#}",
                self.name
            );
        }
    }
}

/// Drops the `tl_test_…` databases whose owner process is gone (a killed
/// test run). Best effort: a failure is reported and ignored.
async fn drop_abandoned_databases(admin: &mut PgConnection) {
    let listed: Result<Vec<(String, Option<String>)>, _> = sqlx::query_as(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database \
         WHERE datname LIKE 'tl\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await;
    let Ok(listed) = listed else {
        return;
    };
    for (name, comment) in listed {
        let abandoned = comment
            .as_deref()
            .and_then(Owner::parse)
            .is_some_and(|owner| owner.is_gone());
        if !abandoned {
            continue;
        }
        let drop = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        );
        match sqlx::raw_sql(&drop).execute(&mut *admin).await {
            Ok(_) => {
                eprintln!("note: TestDatabase dropped {name}, left by a test run that was killed")
            }
            Err(e) => eprintln!("warning: TestDatabase: dropping abandoned {name}: {e}"),
        }
    }
}

/// Connects to `admin_url` and drops `name`, on a runtime of its own.
fn drop_database_blocking(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a runtime to drop the database")?;
    runtime.block_on(async {
        let mut admin = connect(admin_url).await?;
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
        sqlx::raw_sql(&drop)
            .execute(&mut admin)
            .await
            .with_context(|| format!("running {drop}"))?;
        let _ = admin.close().await;
        Ok(())
    })
}

/// One admin connection, with an error that says how to start PostgreSQL.
async fn connect(admin_url: &str) -> anyhow::Result<PgConnection> {
    let shown = redact(admin_url);
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(admin_url)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(anyhow!(e).context(format!(
            "PostgreSQL is not reachable at {shown}: {START_HINT}"
        ))),
        Err(_) => Err(anyhow!(
            "PostgreSQL at {shown} did not answer within {} s: {START_HINT}",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with its database (path) replaced by `database`; the scheme,
/// authority and query string are kept.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = authority_start + rest.find(['/', '?']).unwrap_or(rest.len());
    let after = &url[authority_end..];
    let query = after.find('?').map_or("", |i| &after[i..]);
    format!("{}/{database}{query}", &url[..authority_end])
}

/// `url` with any password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..authority_start],
                &authority[..colon],
                &url[authority_start + at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(redact("postgres://u@h:1/db"), "postgres://u@h:1/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}

#[cfg(test)]
mod unreachable {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_named_with_how_to_start_it() {
        let port = crate::ports::try_free_port().expect("a free port");
        let url = format!("postgres://postgres:pw@127.0.0.1:{port}/postgres");
        let error = TestDatabase::try_create(url)
            .await
            .expect_err("nothing listens there");
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!(
                "PostgreSQL is not reachable at postgres://postgres:***@127.0.0.1:{port}/postgres"
            )) && message.contains("pg_ctlcluster"),
            "{message}"
        );
    }
}
