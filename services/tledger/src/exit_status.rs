//! How a command line of the project (`tledger`, `tledger-bench`) reports a
//! failure: one line on standard error, `error: <what and how to fix it>`,
//! and an exit code of 2 when a service is unreachable or the configuration
//! is wrong, 1 otherwise (docs/contract.md, Running).

use crate::config::ConfigError;
use crate::startup::StartupError;
use crate::telemetry::TelemetryError;

/// How a command line ends: success, or the failure on one line of standard
/// error and its exit code.
pub fn exit_with(outcome: anyhow::Result<()>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            std::process::ExitCode::from(exit_code(&error))
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text
/// its parent already includes (typed errors often quote their source).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 2 when a service is unreachable or the configuration is wrong, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<StartupError>() {
            return e.exit_code();
        }
        if cause.is::<ConfigError>() || cause.is::<TelemetryError>() {
            return 2;
        }
    }
    1
}
