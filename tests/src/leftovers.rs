//! Cleaning up after test runs that were killed.
//!
//! `Drop` does not run when a test binary is killed (Ctrl-C, a runner's
//! time-out, SIGKILL). Its databases would then stay on the shared server,
//! and its private PostgreSQL clusters would go on running (`pg_ctl` starts
//! the postmaster in a session of its own, so the terminal's signal does not
//! reach it), each holding shared memory, a port and disk. On a machine
//! that is kept from one session to the next, and whose disk is not always
//! large, that adds up.
//!
//! So every resource records its owner — host name, pid and the process's
//! start time (the start time tells a live owner from a recycled pid) — and
//! every `create`/`start` first removes the resources whose owner, on this
//! host, is gone. Resources of other hosts (a shared server reached through
//! `TLEDGER_TEST_ADMIN_URL`) and resources without a readable owner are
//! left alone.

use std::path::{Path, PathBuf};

/// Marks a resource made by this harness; followed by the owner's fields.
const TAG: &str = "tledger-tests owner";
/// The file in a private server's directory that names its owner.
pub(crate) const OWNER_FILE: &str = "owner";

/// The process that made a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    host: String,
    pid: u32,
    start: u64,
}

impl Owner {
    /// This process.
    pub(crate) fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: host_name(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// `tledger-tests owner host=… pid=… start=…`.
    pub(crate) fn tag(&self) -> String {
        format!(
            "{TAG} host={} pid={} start={}",
            self.host, self.pid, self.start
        )
    }

    /// The owner named in `text` (as written by [`Owner::tag`]), if any.
    pub(crate) fn parse(text: &str) -> Option<Owner> {
        let fields = text.trim().strip_prefix(TAG)?;
        let mut host = None;
        let mut pid = None;
        let mut start = None;
        for field in fields.split_whitespace() {
            match field.split_once('=')? {
                ("host", value) => host = Some(value.to_owned()),
                ("pid", value) => pid = value.parse().ok(),
                ("start", value) => start = value.parse().ok(),
                _ => {}
            }
        }
        Some(Owner {
            host: host?,
            pid: pid?,
            start: start?,
        })
    }

    /// Whether the owner is known to be gone: same host, and no process
    /// with its pid and start time.
    pub(crate) fn is_gone(&self) -> bool {
        self.host == host_name() && start_time(self.pid) != Some(self.start)
    }
}

/// Removes the directories `<temp dir>/<prefix>*` whose owner is gone,
/// after `stop` has ended the server that ran in each. Best effort: what
/// cannot be read or removed is left alone.
pub(crate) fn sweep_dirs(prefix: &str, stop: impl Fn(&Path)) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let abandoned: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .map(|entry| entry.path())
        .filter(|path| {
            std::fs::read_to_string(path.join(OWNER_FILE))
                .ok()
                .and_then(|text| Owner::parse(&text))
                .is_some_and(|owner| owner.is_gone())
        })
        .collect();
    for path in abandoned {
        stop(&path);
        if std::fs::remove_dir_all(&path).is_ok() {
            eprintln!(
                "note: tledger-tests removed {}, left by a test run that was killed",
                path.display()
            );
        }
    }
}

/// `/proc/sys/kernel/hostname`, or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks
/// since boot; `None` when there is no such process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `/proc/<pid>/cmdline` contains `needle` (to check that a pid
/// read from a pid file still belongs to the server that wrote it).
pub(crate) fn command_line_contains(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_its_own_live_owner() {
        let me = Owner::current();
        assert_ne!(me.start, 0, "no start time for this process");
        assert_eq!(Owner::parse(&me.tag()), Some(me.clone()));
        assert!(!me.is_gone());
    }

    #[test]
    fn a_recycled_pid_or_a_dead_one_is_gone_and_another_host_is_not() {
        let me = Owner::current();
        let recycled = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(recycled.is_gone());
        let elsewhere = Owner {
            host: format!("{}-elsewhere", me.host),
            start: me.start + 1,
            ..me
        };
        assert!(!elsewhere.is_gone());
    }

    #[test]
    fn text_without_the_tag_names_no_owner() {
        assert_eq!(Owner::parse("a comment someone wrote"), None);
        assert_eq!(Owner::parse("tledger-tests owner host=x pid=1"), None);
    }
}
