//! Logs and metrics (docs/architecture.md decision 10).
//!
//! Logs go to standard error, because standard output belongs to the
//! command line's results (a new token, a report) and must stay parseable.
//! `TLEDGER_LOG` takes `tracing-subscriber`'s filter syntax (default
//! `info`); `TLEDGER_LOG_FORMAT=json` gives one JSON object per line.
//!
//! Metrics are recorded through the `metrics` facade into one
//! process-wide Prometheus recorder, rendered at `/metrics`.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub const LOG_VAR: &str = "TLEDGER_LOG";
pub const LOG_FORMAT_VAR: &str = "TLEDGER_LOG_FORMAT";
const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{LOG_VAR} is not a valid log filter like `info` or `tledger=debug,info` ({reason})")]
    Filter { reason: String },
    #[error("{LOG_FORMAT_VAR} must be `text` or `json`, not {0:?}")]
    Format(String),
}

/// Installs the log subscriber from `TLEDGER_LOG` and `TLEDGER_LOG_FORMAT`.
/// A second call in the same process (tests that start several apps) does
/// nothing: the first subscriber stays.
pub fn init_logging() -> Result<(), TelemetryError> {
    let filter = match std::env::var(LOG_VAR) {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| TelemetryError::Filter {
                reason: e.to_string(),
            })?,
        // PostgreSQL's notices ("relation … already exists, skipping" on
        // every migration check) are noise at info.
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let format = std::env::var(LOG_FORMAT_VAR).unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files or journals.
        .with_ansi(std::io::stderr().is_terminal());
    // `try_init` fails only when a subscriber is already installed, which
    // is the "second call" case above.
    let _ = match format.as_str() {
        "" | "text" => builder.try_init(),
        "json" => builder.json().flatten_event(true).try_init(),
        other => return Err(TelemetryError::Format(other.to_owned())),
    };
    Ok(())
}

/// The process-wide Prometheus recorder's handle, installing the recorder
/// on the first call. Later calls return the same handle, so several apps
/// in one process share one registry instead of failing.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                // Someone else installed a recorder first (an embedding
                // program); `/metrics` then shows only what reaches ours.
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_can_be_set_up_twice() {
        init_logging().expect("first");
        init_logging().expect("second: a no-op");
    }

    #[test]
    fn metrics_can_be_asked_for_twice() {
        let first = metrics();
        let second = metrics();
        metrics::counter!("tledger_telemetry_test_total").increment(1);
        assert!(first.render().contains("tledger_telemetry_test_total 1"));
        assert!(second.render().contains("tledger_telemetry_test_total 1"));
    }
}
