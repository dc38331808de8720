//! A PostgreSQL cluster of the benchmark's own, made with `initdb` in a
//! temporary directory and thrown away at the end.
//!
//! Why: `bench verify` and `bench replay` bulk-load a million facts in one
//! long transaction. On a shared server that transaction holds back the
//! cluster-wide xmin horizon, and every other database's sequencer waits
//! for it (ADR 8), so the load would stall whatever else runs there. A
//! cluster of its own disturbs nobody and leaves nothing behind.
//!
//! This is the small equivalent of `tledger-tests`' `PrivatePostgres` (a
//! dev-dependency, so the binary cannot use it): `initdb`, `pg_ctl` and
//! `postgres` refuse to run as root, so as root they run as the `postgres`
//! system user (`runuser -u postgres --`) in a directory given to it.
//! `fsync = off`: the cluster is thrown away, and no benchmark figure reads
//! the disk's flush speed (the load is not one of the measured passes).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bench_ledger::LedgerBenchError;

/// Where Debian's PostgreSQL 15 keeps its server programs (not on `PATH`).
const DEBIAN_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A running private cluster; dropping it stops the server and removes its
/// directory.
pub(crate) struct PrivateCluster {
    dir: PathBuf,
    bin_dir: Option<PathBuf>,
    as_postgres: bool,
    port: u16,
    running: bool,
}

fn cluster_error(what: &str, detail: impl std::fmt::Display) -> LedgerBenchError {
    LedgerBenchError::Cluster(format!("{what}: {detail}"))
}

impl PrivateCluster {
    /// `initdb`, then `pg_ctl start` on a free loopback port.
    pub(crate) fn start() -> Result<Self, LedgerBenchError> {
        let bin_dir = std::env::var_os("TLEDGER_PG_BINDIR")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(DEBIAN_BIN_DIR)).filter(|d| d.is_dir()));
        // Root's own processes have uid 0; so does /proc/self's owner.
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| cluster_error("a random name", e))?;
        let dir = std::env::temp_dir().join(format!("tledger-bench-pg-{}", hex::encode(random)));
        std::fs::create_dir(&dir)
            .map_err(|e| cluster_error(&format!("creating {}", dir.display()), e))?;
        let mut cluster = Self {
            dir,
            bin_dir,
            as_postgres,
            port: 0,
            running: false,
        };
        if as_postgres {
            cluster.run(Command::new("chown").arg("postgres:").arg(&cluster.dir))?;
        }
        let data = cluster.data_dir();
        cluster.run(
            cluster
                .program("initdb")
                .arg("--pgdata")
                .arg(&data)
                .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
                .args(["--locale=C", "--no-sync", "--no-instructions"]),
        )?;
        cluster.port = free_port()?;
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nshared_buffers = 256MB\n\
             max_wal_size = 4GB\n",
            cluster.port,
            cluster.dir.display().to_string().replace('\'', "''"),
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| cluster_error(&format!("reading {}", conf.display()), e))?;
        text.push_str(&settings);
        std::fs::write(&conf, text)
            .map_err(|e| cluster_error(&format!("writing {}", conf.display()), e))?;
        let log = cluster.dir.join("postgres.log");
        cluster.run(
            cluster
                .program("pg_ctl")
                .arg("start")
                .arg("--pgdata")
                .arg(&data)
                .arg("--log")
                .arg(&log)
                .args(["--wait", "--timeout=60", "--silent"]),
        )?;
        cluster.running = true;
        Ok(cluster)
    }

    /// The URL of `database` on this cluster.
    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn program(&self, name: &str) -> Command {
        let path = self
            .bin_dir
            .as_deref()
            .map_or_else(|| PathBuf::from(name), |d| d.join(name));
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // runuser keeps the working directory, which postgres may not read.
        command.current_dir(&self.dir);
        command
    }

    fn run(&self, command: &mut Command) -> Result<(), LedgerBenchError> {
        let what = format!("{command:?}");
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| cluster_error(&what, e))?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(cluster_error(
            &what,
            format!(
                "{}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                tail.into_iter()
                    .rev()
                    .map(|l| format!("\n  {l}"))
                    .collect::<String>()
            ),
        ))
    }

    /// Stops the server now (also done on drop).
    pub(crate) fn stop(&mut self) -> Result<(), LedgerBenchError> {
        if self.running {
            self.running = false;
            let data = self.data_dir();
            self.run(
                self.program("pg_ctl")
                    .arg("stop")
                    .arg("--pgdata")
                    .arg(&data)
                    .args(["--mode=immediate", "--wait", "--silent"]),
            )?;
        }
        Ok(())
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            crate::bench::progress(&format!("warning: {e}"));
        }
        if let Err(e) = remove(&self.dir) {
            crate::bench::progress(&format!(
                "warning: could not remove {}: {e}",
                self.dir.display()
            ));
        }
    }
}

fn remove(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(dir)
}

/// A loopback port nobody listens on now (another process could take it
/// before the server binds it; `pg_ctl start` then fails and says so).
fn free_port() -> Result<u16, LedgerBenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| cluster_error("finding a free port", e))
}
