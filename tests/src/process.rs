//! Running server tools (`initdb`, `pg_ctl`, `nats-server -t`) and reading
//! server logs, so that a failure names the command, its exit status, what
//! it printed and what the server logged.

use std::path::Path;
use std::process::{Output, Stdio};

use anyhow::{bail, Context as _};

/// How many log lines a startup error quotes.
pub(crate) const LOG_TAIL_LINES: usize = 30;

/// Runs `command` to completion (stdin closed, output captured) and fails
/// unless it exits with status 0. The error names the command and quotes
/// its output.
pub(crate) async fn run_checked(
    command: &mut tokio::process::Command,
    what: &str,
) -> anyhow::Result<Output> {
    let shown = format!("{:?}", command.as_std());
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("{what}: could not run {shown}"))?;
    if !output.status.success() {
        bail!(
            "{what}: {shown} failed with {}\n{}",
            output.status,
            printed(&output)
        );
    }
    Ok(output)
}

/// Blocking twin of [`run_checked`] for `Drop`, where nothing can be awaited.
pub(crate) fn run_checked_blocking(
    command: &mut std::process::Command,
    what: &str,
) -> anyhow::Result<Output> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("{what}: could not run {shown}"))?;
    if !output.status.success() {
        bail!(
            "{what}: {shown} failed with {}\n{}",
            output.status,
            printed(&output)
        );
    }
    Ok(output)
}

/// Stdout and stderr of a finished command, labelled, empty streams left out.
fn printed(output: &Output) -> String {
    let mut text = String::new();
    for (label, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let stream = String::from_utf8_lossy(bytes);
        let stream = stream.trim_end();
        if !stream.is_empty() {
            text.push_str(&format!("--- {label} ---\n{stream}\n"));
        }
    }
    if text.is_empty() {
        text.push_str("(it printed nothing)\n");
    }
    text
}

/// The last `lines` lines of a log file, labelled with its path, or a note
/// saying why they cannot be read.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            if all.is_empty() {
                format!("--- {} is empty ---", path.display())
            } else {
                format!(
                    "--- last {} lines of {} ---\n{}",
                    all.len() - start,
                    path.display(),
                    all[start..].join("\n")
                )
            }
        }
        Err(e) => format!("--- {} cannot be read: {e} ---", path.display()),
    }
}
