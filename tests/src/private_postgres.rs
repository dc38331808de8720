//! A PostgreSQL cluster of one test's own.
//!
//! Why: some tests must stop, crash or restart PostgreSQL (the relay and the
//! command service must survive it), and some hold a transaction open on
//! purpose (the sequencer waits for every transaction below the cluster-wide
//! xmin horizon). Either would disturb every other test on the shared
//! server, so such tests run on a cluster made with `initdb` in a temporary
//! directory, on a free loopback port, and thrown away at the end.
//!
//! How, on this machine: `initdb`, `pg_ctl` and `postgres` refuse to run as
//! root, and tests (CI too) run as root. So when the test runs as root the
//! harness runs them as the `postgres` system user with
//! `runuser -u postgres --`, in a temporary directory chowned to that user.
//! Run as any other user, it runs them directly.
//!
//! Layout of the temporary directory: `data/` (the cluster), `socket/` (the
//! Unix socket; inside the directory so it collides with no other server),
//! `postgres.log` (the server log, quoted in startup errors), `owner` (to
//! clean up after a killed test run).
//!
//! Settings that differ from a production server, and why they are safe
//! here: `fsync = off` and `full_page_writes = off`, because written data
//! stays in the OS page cache when a *process* dies (a crash test kills
//! PostgreSQL, never the OS), so nothing a test can observe changes, and
//! the cluster is thrown away afterwards. `synchronous_commit` stays `on`:
//! with it off, a commit could be acknowledged while its WAL sits in shared
//! memory, and an immediate stop would lose it, so crash tests would lie.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use sqlx::Connection as _;
use tempfile::TempDir;

use crate::leftovers::{sweep_dirs, Owner, OWNER_FILE};
use crate::ports::try_free_port;
use crate::process::{log_tail, run_checked, run_checked_blocking, LOG_TAIL_LINES};

/// Where Debian's PostgreSQL 15 puts its server programs (not on `PATH`).
const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// How long a start may take until the server accepts connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The temporary directories' prefix (`/tmp/tl-pg-XXXXXX`).
const DIR_PREFIX: &str = "tl-pg-";
/// How many fresh ports a first start tries when its port was taken.
const PORT_ATTEMPTS: usize = 3;

/// A private PostgreSQL cluster: role `postgres`, trust authentication,
/// listening on `127.0.0.1:<free port>`. Dropping it stops the server
/// (`pg_ctl stop -m immediate`) and removes its directory.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: TempDir,
    port: u16,
    bin_dir: PathBuf,
    run_as: RunAs,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster (`initdb`) and starts it; returns once it answers
    /// `SELECT 1` (at most 30 s).
    ///
    /// # Panics
    /// If `initdb`/`pg_ctl` are missing, the `postgres` user is missing, or
    /// the server does not start; the message quotes the server log.
    pub async fn start() -> PrivatePostgres {
        match Self::try_start().await {
            Ok(postgres) => postgres,
            Err(e) => panic!("PrivatePostgres::start: {e:#}"),
        }
    }

    /// The URL of database `database` on this cluster, as role `postgres`.
    /// The cluster has the databases `postgres`, `template0` and `template1`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the cluster listens on (the same across stops and starts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Whether the server was started and not stopped since.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`: connections are
    /// ended, a checkpoint is written) and waits until it has exited.
    ///
    /// # Panics
    /// If `pg_ctl stop` fails.
    pub async fn stop(&mut self) {
        if let Err(e) = self.pg_ctl_stop("fast").await {
            panic!("PrivatePostgres::stop: {e:#}");
        }
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`:
    /// no checkpoint; the next start runs crash recovery from the WAL).
    ///
    /// # Panics
    /// If `pg_ctl stop` fails.
    pub async fn crash(&mut self) {
        if let Err(e) = self.pg_ctl_stop("immediate").await {
            panic!("PrivatePostgres::crash: {e:#}");
        }
    }

    /// Starts the stopped server again, on the same data directory and the
    /// same port, and waits until it answers (at most 30 s).
    ///
    /// # Panics
    /// If it is already running or does not start (for example because
    /// another process took the port meanwhile); the message quotes the log.
    pub async fn start_again(&mut self) {
        if self.running {
            panic!("PrivatePostgres::start_again: the server is already running");
        }
        if let Err(e) = self.pg_ctl_start().await {
            panic!("PrivatePostgres::start_again: {e:#}");
        }
    }

    /// `stop` then `start_again`.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    async fn try_start() -> anyhow::Result<PrivatePostgres> {
        let bin_dir = bin_dir();
        for program in ["initdb", "pg_ctl", "postgres"] {
            let path = bin_dir.join(program);
            if !path.is_file() {
                bail!(
                    "{} does not exist: install PostgreSQL 15's server \
                     (`apt-get install postgresql-15`) or set TLEDGER_PG_BINDIR \
                     to the directory that holds initdb, pg_ctl and postgres",
                    path.display()
                );
            }
        }
        let run_as = RunAs::detect()?;
        sweep_dirs(DIR_PREFIX, |dir| stop_abandoned(run_as, &bin_dir, dir));
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .context("creating a temporary directory for the cluster")?;
        let owner_file = dir.path().join(OWNER_FILE);
        std::fs::write(&owner_file, Owner::current().tag())
            .with_context(|| format!("writing {}", owner_file.display()))?;
        let socket_dir = dir.path().join("socket");
        std::fs::create_dir(&socket_dir)
            .with_context(|| format!("creating {}", socket_dir.display()))?;
        run_as.give(dir.path())?;
        run_as.give(&socket_dir)?;
        let mut postgres = PrivatePostgres {
            dir,
            port: 0,
            bin_dir,
            run_as,
            running: false,
        };
        postgres.initdb().await?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            postgres.port = try_free_port()?;
            postgres.write_settings()?;
            // A fresh log per attempt, so that the check below reads this one.
            let _ = std::fs::remove_file(postgres.log_path());
            match postgres.pg_ctl_start().await {
                Ok(()) => return Ok(postgres),
                Err(e) if postgres.port_was_taken() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow!("no attempt was made"))
            .context(format!(
                "{PORT_ATTEMPTS} free ports in a row were in use by the time the server bound them"
            )))
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        let mut command = self
            .run_as
            .command(&self.bin_dir.join("initdb"), self.dir.path());
        command
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--auth=trust", "--username=postgres"])
            // Deterministic whatever the caller's LANG: UTF-8 text, C
            // collation (byte order, as the shared server's C.UTF-8).
            .args(["--encoding=UTF8", "--locale=C"])
            // A throwaway cluster: no fsync of the new files.
            .args(["--no-sync", "--no-instructions"]);
        let mut command = tokio::process::Command::from(command);
        run_checked(&mut command, "initdb")
            .await
            .map(|_| ())
            .with_context(|| {
                format!(
                    "creating a cluster in {} (the user that runs initdb must be \
                     able to reach it)",
                    self.data_dir().display()
                )
            })
    }

    /// Writes the harness's settings to `tledger_test.conf`, included from
    /// `postgresql.conf` (rewritten, not appended, when a port is retried).
    fn write_settings(&self) -> anyhow::Result<()> {
        let data_dir = self.data_dir();
        let socket_dir = self.dir.path().join("socket");
        let settings = format!(
            "# Written by tledger-tests for a throwaway test cluster.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             # Safe for process crashes, see tledger-tests' private_postgres.rs.\n\
             fsync = off\n\
             full_page_writes = off\n\
             shared_buffers = 32MB\n\
             max_connections = 100\n\
             log_line_prefix = '%m [%p] '\n",
            port = self.port,
            socket = socket_dir.display().to_string().replace('\'', "''"),
        );
        let settings_path = data_dir.join("tledger_test.conf");
        std::fs::write(&settings_path, settings)
            .with_context(|| format!("writing {}", settings_path.display()))?;
        self.run_as.give(&settings_path)?;
        let main_conf = data_dir.join("postgresql.conf");
        let conf = std::fs::read_to_string(&main_conf)
            .with_context(|| format!("reading {}", main_conf.display()))?;
        let include = "include = 'tledger_test.conf'";
        if !conf.lines().any(|line| line.trim() == include) {
            let conf = format!("{conf}\n{include}\n");
            std::fs::write(&main_conf, conf)
                .with_context(|| format!("writing {}", main_conf.display()))?;
        }
        Ok(())
    }

    async fn pg_ctl_start(&mut self) -> anyhow::Result<()> {
        let mut command = self.pg_ctl();
        command
            .arg("start")
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.log_path())
            .arg("--wait")
            .arg(format!("--timeout={}", START_TIMEOUT.as_secs()))
            .arg("--silent");
        let mut command = tokio::process::Command::from(command);
        let deadline = Instant::now() + START_TIMEOUT;
        if let Err(e) = run_checked(&mut command, "pg_ctl start").await {
            // pg_ctl may have given up while the postmaster lives on.
            let _ = self.pg_ctl_stop_blocking("immediate");
            return Err(anyhow!(
                "starting PostgreSQL on 127.0.0.1:{}: {e:#}\n{}",
                self.port,
                log_tail(&self.log_path(), LOG_TAIL_LINES)
            ));
        }
        self.running = true;
        self.wait_until_it_answers(deadline).await
    }

    /// Polls `SELECT 1` until the server answers or the deadline passes.
    async fn wait_until_it_answers(&self, deadline: Instant) -> anyhow::Result<()> {
        let url = self.url("postgres");
        loop {
            let attempt = async {
                let mut connection = sqlx::PgConnection::connect(&url).await?;
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(&mut connection)
                    .await?;
                let _ = connection.close().await;
                Ok::<i32, sqlx::Error>(one)
            };
            let error = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(1)) => return Ok(()),
                Ok(Ok(other)) => format!("SELECT 1 returned {other}"),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within 5 s".to_owned(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "PostgreSQL at {url} started but does not answer SELECT 1 \
                     after {} s: {error}\n{}",
                    START_TIMEOUT.as_secs(),
                    log_tail(&self.log_path(), LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn pg_ctl_stop(&mut self, mode: &str) -> anyhow::Result<()> {
        if !self.running {
            bail!("the server is not running");
        }
        let mut command = tokio::process::Command::from(self.pg_ctl_stop_command(mode));
        if let Err(e) = run_checked(&mut command, "pg_ctl stop").await {
            bail!(
                "stopping PostgreSQL on 127.0.0.1:{}: {e:#}\n{}",
                self.port,
                log_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        }
        self.running = false;
        Ok(())
    }

    fn pg_ctl_stop_blocking(&self, mode: &str) -> anyhow::Result<()> {
        run_checked_blocking(&mut self.pg_ctl_stop_command(mode), "pg_ctl stop").map(|_| ())
    }

    fn pg_ctl_stop_command(&self, mode: &str) -> std::process::Command {
        let mut command = self.pg_ctl();
        command
            .arg("stop")
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg(format!("--mode={mode}"))
            .arg("--wait")
            .arg("--timeout=30")
            .arg("--silent");
        command
    }

    fn pg_ctl(&self) -> std::process::Command {
        self.run_as
            .command(&self.bin_dir.join("pg_ctl"), self.dir.path())
    }

    /// Whether the last start failed because the port was in use.
    fn port_was_taken(&self) -> bool {
        std::fs::read_to_string(self.log_path())
            .map(|log| log.contains("Address already in use"))
            .unwrap_or(false)
    }

    /// Last resort when `pg_ctl stop` failed in `Drop`: SIGQUIT (immediate
    /// shutdown) to the postmaster named in `postmaster.pid`.
    fn signal_postmaster(&self) -> anyhow::Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        let raw: i32 = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .with_context(|| format!("parsing the pid in {}", pid_file.display()))?;
        let pid = rustix::process::Pid::from_raw(raw)
            .ok_or_else(|| anyhow!("{} names pid {raw}", pid_file.display()))?;
        rustix::process::kill_process(pid, rustix::process::Signal::QUIT)
            .with_context(|| format!("sending SIGQUIT to postmaster {raw}"))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        if let Err(e) = self.pg_ctl_stop_blocking("immediate") {
            let fallback = self.signal_postmaster();
            eprintln!(
                "warning: PrivatePostgres on port {}: pg_ctl stop failed: {e:#}; \
                 SIGQUIT to the postmaster: {fallback:?}",
                self.port
            );
        }
        self.running = false;
        // The TempDir field then removes the directory.
    }
}

/// Stops the cluster in `dir`, left by a test run that was killed.
fn stop_abandoned(run_as: RunAs, bin_dir: &Path, dir: &Path) {
    let data_dir = dir.join("data");
    if !data_dir.join("postmaster.pid").exists() {
        return;
    }
    let mut command = run_as.command(&bin_dir.join("pg_ctl"), dir);
    command.arg("stop").arg("--pgdata").arg(&data_dir).args([
        "--mode=immediate",
        "--wait",
        "--timeout=10",
        "--silent",
    ]);
    // It may have died with its test run already.
    let _ = run_checked_blocking(&mut command, "stopping an abandoned cluster");
}

/// `TLEDGER_PG_BINDIR`, or Debian's directory for PostgreSQL 15.
fn bin_dir() -> PathBuf {
    match std::env::var_os("TLEDGER_PG_BINDIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_BIN_DIR),
    }
}

/// Who runs the server programs: the current user, or (when that is root,
/// which PostgreSQL refuses) the `postgres` system user through `runuser`.
#[derive(Debug, Clone, Copy)]
enum RunAs {
    CurrentUser,
    Postgres { uid: u32, gid: u32 },
}

impl RunAs {
    fn detect() -> anyhow::Result<RunAs> {
        if !rustix::process::geteuid().is_root() {
            return Ok(RunAs::CurrentUser);
        }
        let uid = id_of("-u")?;
        let gid = id_of("-g")?;
        Ok(RunAs::Postgres { uid, gid })
    }

    /// A command running `program` as this user, in `dir`.
    fn command(&self, program: &Path, dir: &Path) -> std::process::Command {
        let mut command = match self {
            RunAs::CurrentUser => std::process::Command::new(program),
            RunAs::Postgres { .. } => {
                let mut command = std::process::Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
        };
        // The caller's directory may be closed to the postgres user.
        command.current_dir(dir);
        command
    }

    /// Makes `path` owned by this user (no-op for the current user), with
    /// mode 0700 for directories (PostgreSQL insists on it for its own).
    fn give(&self, path: &Path) -> anyhow::Result<()> {
        if let RunAs::Postgres { uid, gid } = *self {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the postgres user", path.display()))?;
        }
        if path.is_dir() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("setting mode 0700 on {}", path.display()))?;
        }
        Ok(())
    }
}

/// `id <flag> postgres`, as a number.
fn id_of(flag: &str) -> anyhow::Result<u32> {
    let output = run_checked_blocking(
        std::process::Command::new("id").arg(flag).arg("postgres"),
        "looking up the postgres user (PostgreSQL refuses to run as root, so the \
         harness runs it as `postgres`; install postgresql-15 to create that user)",
    )?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("parsing `id {flag} postgres` output {text:?}"))
}
