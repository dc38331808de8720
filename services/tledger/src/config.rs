//! Configuration (docs/contract.md "Running", docs/architecture.md decision 10).
//!
//! Typed settings with defaults that work on a developer machine
//! (PostgreSQL and NATS on localhost), read from an optional TOML file
//! (`--config <path>` or `TLEDGER_CONFIG`) and overridden by `TLEDGER_…`
//! environment variables: default < file < environment. Everything is
//! checked here, at start-up, so that a bad value stops the service with one
//! line naming the variable or key, not later with a confusing failure.
//!
//! Secrets stay out of logs: the admin token is a [`Secret`] whose `Debug`
//! prints `[redacted]`, and the `Debug` of [`Settings`] shows URLs with
//! their password replaced by `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::prefix::Prefix;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tledger";
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_SIGNING_KEY: &str = "./tledger-signing.key";

/// The variable naming the config file when `--config` is not given.
pub const CONFIG_VAR: &str = "TLEDGER_CONFIG";

/// Each setting: its key in the config file and its environment variable.
const KEYS: [(&str, &str); 10] = [
    ("database_url", "TLEDGER_DATABASE_URL"),
    ("nats_url", "TLEDGER_NATS_URL"),
    ("http_addr", "TLEDGER_HTTP_ADDR"),
    ("prefix", "TLEDGER_PREFIX"),
    ("admin_token", "TLEDGER_ADMIN_TOKEN"),
    ("signing_key", "TLEDGER_SIGNING_KEY"),
    ("checkpoint_events", "TLEDGER_CHECKPOINT_EVENTS"),
    ("checkpoint_seconds", "TLEDGER_CHECKPOINT_SECONDS"),
    ("park_seconds", "TLEDGER_PARK_SECONDS"),
    ("stream_replicas", "TLEDGER_STREAM_REPLICAS"),
];

/// A checkpoint is signed after this many new events ...
pub const DEFAULT_CHECKPOINT_EVENTS: u64 = 10_000;
/// ... or this many seconds after the last one, whichever comes first, when
/// the ledger has grown.
pub const DEFAULT_CHECKPOINT_SECONDS: u64 = 60;
/// A published fact waits this long for a stream it refers to before it is
/// rejected (docs/contract.md: 24 hours by default).
pub const DEFAULT_PARK_SECONDS: u64 = 24 * 60 * 60;

/// A secret value (a token). It has no `Display`, and its `Debug` prints
/// `[redacted]`, so that logging a struct that holds one cannot leak it;
/// [`Secret::expose`] is the one, greppable, way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The service's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// The ledger's database (created if missing). May hold a password:
    /// show it with [`redact_url`].
    pub database_url: String,
    pub nats_url: String,
    pub http_addr: SocketAddr,
    pub prefix: Prefix,
    /// `TLEDGER_ADMIN_TOKEN`: when set, it is an admin token.
    pub admin_token: Option<Secret>,
    /// The ed25519 key that signs checkpoints. A relative path is relative
    /// to the working directory (like the default), also in a config file.
    pub signing_key_path: PathBuf,
    /// Sign a checkpoint after this many new events ...
    pub checkpoint_events: u64,
    /// ... or this many seconds after the last one.
    pub checkpoint_seconds: u64,
    /// How long a parked published fact waits for its streams.
    pub park_seconds: u64,
    /// Replicas of the streams the service creates (3 on a JetStream
    /// cluster; 1 on a single server).
    pub stream_replicas: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            nats_url: DEFAULT_NATS_URL.to_owned(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            prefix: Prefix::default(),
            admin_token: None,
            signing_key_path: PathBuf::from(DEFAULT_SIGNING_KEY),
            checkpoint_events: DEFAULT_CHECKPOINT_EVENTS,
            checkpoint_seconds: DEFAULT_CHECKPOINT_SECONDS,
            park_seconds: DEFAULT_PARK_SECONDS,
            stream_replicas: 1,
        }
    }
}

// Hand-written so that URLs never show their password, even in a
// `{:?}` of the whole settings in a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("nats_url", &redact_url(&self.nats_url))
            .field("http_addr", &self.http_addr)
            .field("prefix", &self.prefix)
            .field("admin_token", &self.admin_token)
            .field("signing_key_path", &self.signing_key_path)
            .field("checkpoint_events", &self.checkpoint_events)
            .field("checkpoint_seconds", &self.checkpoint_seconds)
            .field("park_seconds", &self.park_seconds)
            .field("stream_replicas", &self.stream_replicas)
            .finish()
    }
}

/// Where a value came from, for error messages: the variable, or the key
/// and file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Env(&'static str),
    File { key: &'static str, path: PathBuf },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(var) => f.write_str(var),
            Origin::File { key, path } => write!(f, "`{key}` in {}", path.display()),
        }
    }
}

/// A configuration that cannot be used. Each message is one line that
/// names the variable or the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {} is not valid TOML (line {line}): {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "the config file {} has an unknown key `{key}`; the keys are database_url, nats_url, \
         http_addr, prefix, admin_token, signing_key, checkpoint_events, checkpoint_seconds, \
         park_seconds and stream_replicas",
        path.display()
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error("{origin} must be a string")]
    NotAString { origin: Origin },
    #[error("{var} is not valid UTF-8")]
    NotUnicode { var: &'static str },
    #[error("{origin} must be 1-32 characters of a-z 0-9 _ -, not {value:?}")]
    Prefix { origin: Origin, value: String },
    #[error("{origin} must be an IP address and port like 127.0.0.1:8080, not {value:?}")]
    HttpAddr { origin: Origin, value: String },
    // The value is not repeated: it may hold a password.
    #[error(
        "{origin} is not a PostgreSQL URL like postgres://user@127.0.0.1:5432/tledger ({reason})"
    )]
    DatabaseUrl { origin: Origin, reason: String },
    #[error("{origin} must be a whole number from 1 up, not {value:?}")]
    Count { origin: Origin, value: String },
    #[error("{origin} is not a NATS URL like nats://127.0.0.1:4222 ({reason})")]
    NatsUrl { origin: Origin, reason: String },
}

/// A parsed config file: its string values by key, every key known.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigFile {
    path: PathBuf,
    values: BTreeMap<&'static str, String>,
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The values may hold secrets; the path is what identifies it.
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the file at `path`: a TOML table of string values
    /// whose keys are the settings' keys. An unknown key is an error (a typo
    /// would otherwise silently leave the default in force).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(1, |span| {
                text[..span.start.min(text.len())].lines().count().max(1)
            });
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                message: one_line(e.message()),
            }
        })?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let Some(&(known, _)) = KEYS.iter().find(|(k, _)| *k == key) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key,
                });
            };
            let value = match value {
                toml::Value::String(value) => value,
                // Counts may be written as TOML integers.
                toml::Value::Integer(n) if known.starts_with("checkpoint_") => n.to_string(),
                _ => {
                    return Err(ConfigError::NotAString {
                        origin: Origin::File {
                            key: known,
                            path: path.to_owned(),
                        },
                    })
                }
            };
            values.insert(known, value);
        }
        Ok(Self {
            path: path.to_owned(),
            values,
        })
    }
}

impl Settings {
    /// Loads the settings: defaults, then the config file (`config`, else
    /// `TLEDGER_CONFIG`, else none), then the `TLEDGER_…` variables.
    pub fn load(config: Option<&Path>) -> Result<Self, ConfigError> {
        // Non-UTF-8 values are refused up front so that the lookups below
        // can treat the environment as plain strings.
        for var in KEYS.iter().map(|(_, var)| *var).chain([CONFIG_VAR]) {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(var) {
                return Err(ConfigError::NotUnicode { var });
            }
        }
        let env = |var: &str| std::env::var(var).ok();
        let path = config
            .map(Path::to_path_buf)
            .or_else(|| env(CONFIG_VAR).filter(|p| !p.is_empty()).map(PathBuf::from));
        let file = path.as_deref().map(ConfigFile::read).transpose()?;
        Self::from_sources(file.as_ref(), env)
    }

    /// The settings from a parsed file and an environment lookup (tests
    /// pass a map). An empty variable counts as unset, so that
    /// `TLEDGER_ADMIN_TOKEN=` in a service file means "no token", not an
    /// empty one.
    pub fn from_sources(
        file: Option<&ConfigFile>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let lookup = |key: &'static str| -> Option<(String, Origin)> {
            let var = KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .map_or("", |(_, var)| *var);
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                return Some((value, Origin::Env(var)));
            }
            let file = file?;
            let value = file.values.get(key).filter(|v| !v.is_empty())?;
            Some((
                value.clone(),
                Origin::File {
                    key,
                    path: file.path.clone(),
                },
            ))
        };

        let mut settings = Settings::default();
        if let Some((value, origin)) = lookup("database_url") {
            check_database_url(&value, origin)?;
            settings.database_url = value;
        }
        if let Some((value, origin)) = lookup("nats_url") {
            check_nats_url(&value, origin)?;
            settings.nats_url = value;
        }
        if let Some((value, origin)) = lookup("http_addr") {
            settings.http_addr = value
                .parse()
                .map_err(|_| ConfigError::HttpAddr { origin, value })?;
        }
        if let Some((value, origin)) = lookup("prefix") {
            settings.prefix = value
                .parse()
                .map_err(|_| ConfigError::Prefix { origin, value })?;
        }
        if let Some((value, _)) = lookup("admin_token") {
            settings.admin_token = Some(Secret::new(value));
        }
        if let Some((value, _)) = lookup("signing_key") {
            settings.signing_key_path = PathBuf::from(value);
        }
        for (key, slot) in [
            ("checkpoint_events", &mut settings.checkpoint_events),
            ("checkpoint_seconds", &mut settings.checkpoint_seconds),
            ("park_seconds", &mut settings.park_seconds),
            ("stream_replicas", &mut settings.stream_replicas),
        ] {
            if let Some((value, origin)) = lookup(key) {
                *slot = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(ConfigError::Count { origin, value })?;
            }
        }
        Ok(settings)
    }
}

fn check_database_url(url: &str, origin: Origin) -> Result<(), ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError::DatabaseUrl {
            origin,
            reason: "it must start with postgres://".into(),
        });
    }
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map(drop)
        .map_err(|e| ConfigError::DatabaseUrl {
            origin,
            reason: one_line(&match e {
                sqlx::Error::Configuration(inner) => inner.to_string(),
                other => other.to_string(),
            }),
        })
}

fn check_nats_url(url: &str, origin: Origin) -> Result<(), ConfigError> {
    // Several servers may be listed, separated by commas, as nats-server's
    // own tools accept.
    for server in url.split(',').map(str::trim) {
        async_nats::ServerAddr::from_str(server).map_err(|e| ConfigError::NatsUrl {
            origin: origin.clone(),
            reason: one_line(&e.to_string()),
        })?;
    }
    Ok(())
}

/// `url` with the password of its user info (if any) replaced by `***`,
/// for messages and logs.
pub fn redact_url(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..authority_start],
        &authority[..colon],
        &url[authority_start + at..]
    )
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |var| map.get(var).cloned()
    }

    fn file(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("/etc/tledger.toml"), text)
    }

    #[test]
    fn defaults_are_the_contracts() {
        let settings = Settings::from_sources(None, env(&[])).expect("defaults");
        assert_eq!(settings, Settings::default());
        assert_eq!(
            settings.database_url,
            "postgres://postgres@127.0.0.1:5432/tledger"
        );
        assert_eq!(settings.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(settings.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.prefix.as_str(), "tl");
        assert_eq!(settings.admin_token, None);
        assert_eq!(
            settings.signing_key_path,
            PathBuf::from("./tledger-signing.key")
        );
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let file = file(
            r#"
            database_url = "postgres://file@db:5432/ledger"
            nats_url = "nats://file:4222"
            http_addr = "0.0.0.0:9000"
            prefix = "file"
            admin_token = "from-file"
            signing_key = "/var/lib/tledger/key"
            "#,
        )
        .expect("valid file");
        let from_file = Settings::from_sources(Some(&file), env(&[])).expect("file");
        assert_eq!(from_file.database_url, "postgres://file@db:5432/ledger");
        assert_eq!(from_file.nats_url, "nats://file:4222");
        assert_eq!(from_file.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(from_file.prefix.as_str(), "file");
        assert_eq!(from_file.admin_token, Some(Secret::new("from-file")));
        assert_eq!(
            from_file.signing_key_path,
            PathBuf::from("/var/lib/tledger/key")
        );

        let both = Settings::from_sources(
            Some(&file),
            env(&[
                ("TLEDGER_DATABASE_URL", "postgres://env@db:5432/other"),
                ("TLEDGER_HTTP_ADDR", "127.0.0.1:0"),
                ("TLEDGER_PREFIX", "env"),
                ("TLEDGER_ADMIN_TOKEN", "from-env"),
            ]),
        )
        .expect("file and environment");
        assert_eq!(both.database_url, "postgres://env@db:5432/other");
        assert_eq!(both.nats_url, "nats://file:4222", "not overridden");
        assert_eq!(both.http_addr.to_string(), "127.0.0.1:0");
        assert_eq!(both.prefix.as_str(), "env");
        assert_eq!(both.admin_token, Some(Secret::new("from-env")));
        assert_eq!(both.signing_key_path, PathBuf::from("/var/lib/tledger/key"));
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let file = file(r#"admin_token = "from-file""#).expect("valid file");
        let settings = Settings::from_sources(
            Some(&file),
            env(&[("TLEDGER_ADMIN_TOKEN", ""), ("TLEDGER_PREFIX", "")]),
        )
        .expect("valid");
        assert_eq!(settings.admin_token, Some(Secret::new("from-file")));
        assert_eq!(settings.prefix.as_str(), "tl");
    }

    #[test]
    fn it_should_not_accept_a_bad_prefix() {
        let error = Settings::from_sources(None, env(&[("TLEDGER_PREFIX", "TL.x")]))
            .expect_err("upper case and a dot");
        assert_eq!(
            error.to_string(),
            r#"TLEDGER_PREFIX must be 1-32 characters of a-z 0-9 _ -, not "TL.x""#
        );
        let file = file(r#"prefix = "a b""#).expect("valid TOML");
        let error = Settings::from_sources(Some(&file), env(&[])).expect_err("a space");
        assert_eq!(
            error.to_string(),
            r#"`prefix` in /etc/tledger.toml must be 1-32 characters of a-z 0-9 _ -, not "a b""#
        );
    }

    #[test]
    fn it_should_not_accept_a_bad_http_address() {
        let error = Settings::from_sources(None, env(&[("TLEDGER_HTTP_ADDR", "localhost:80")]))
            .expect_err("a host name, not an address");
        assert_eq!(
            error.to_string(),
            r#"TLEDGER_HTTP_ADDR must be an IP address and port like 127.0.0.1:8080, not "localhost:80""#
        );
        let error = Settings::from_sources(None, env(&[("TLEDGER_HTTP_ADDR", "127.0.0.1")]))
            .expect_err("no port");
        assert_eq!(
            error.to_string(),
            r#"TLEDGER_HTTP_ADDR must be an IP address and port like 127.0.0.1:8080, not "127.0.0.1""#
        );
    }

    #[test]
    fn it_should_not_accept_a_bad_database_url_and_never_repeats_it() {
        let error = Settings::from_sources(
            None,
            env(&[("TLEDGER_DATABASE_URL", "mysql://u:hunter2@h/db")]),
        )
        .expect_err("not PostgreSQL");
        assert_eq!(
            error.to_string(),
            "TLEDGER_DATABASE_URL is not a PostgreSQL URL like \
             postgres://user@127.0.0.1:5432/tledger (it must start with postgres://)"
        );
        let error = Settings::from_sources(
            None,
            env(&[("TLEDGER_DATABASE_URL", "postgres://u:hunter2@h:notaport/db")]),
        )
        .expect_err("bad port");
        let message = error.to_string();
        assert!(
            message.starts_with("TLEDGER_DATABASE_URL is not a PostgreSQL URL")
                && !message.contains("hunter2"),
            "{message}"
        );
    }

    #[test]
    fn it_should_not_accept_a_bad_nats_url() {
        let error = Settings::from_sources(None, env(&[("TLEDGER_NATS_URL", "http://x:4222")]))
            .expect_err("not a NATS scheme");
        let message = error.to_string();
        assert!(
            message.starts_with("TLEDGER_NATS_URL is not a NATS URL like nats://127.0.0.1:4222 ("),
            "{message}"
        );
    }

    #[test]
    fn it_should_not_accept_an_unknown_key_or_a_non_string() {
        let error =
            file("database_url = \"postgres://x@h/db\"\nnats_ulr = \"x\"\n").expect_err("a typo");
        assert_eq!(
            error.to_string(),
            "the config file /etc/tledger.toml has an unknown key `nats_ulr`; the keys are \
             database_url, nats_url, http_addr, prefix, admin_token, signing_key, checkpoint_events, \
             checkpoint_seconds, park_seconds and stream_replicas"
        );
        let error = file("http_addr = 8080").expect_err("a number");
        assert_eq!(
            error.to_string(),
            "`http_addr` in /etc/tledger.toml must be a string"
        );
    }

    #[test]
    fn it_should_name_the_line_of_a_syntax_error() {
        let error = file("prefix = \"tl\"\nnats_url = \n").expect_err("no value");
        let message = error.to_string();
        assert!(
            message.starts_with("the config file /etc/tledger.toml is not valid TOML (line 2): "),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = ConfigFile::read(Path::new("/nonexistent/tledger.toml")).expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("cannot read the config file /nonexistent/tledger.toml: "),
            "{error}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let file = file(r#"admin_token = "s3cret-token""#).expect("valid");
        let settings = Settings::from_sources(
            Some(&file),
            env(&[(
                "TLEDGER_DATABASE_URL",
                "postgres://app:hunter2@db:5432/tledger",
            )]),
        )
        .expect("valid");
        let shown = format!("{settings:?} {file:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/tledger"),
            "{shown}"
        );
        assert!(shown.contains("admin_token: Some([redacted])"), "{shown}");
    }

    #[test]
    fn redact_url_replaces_only_the_password() {
        assert_eq!(
            redact_url("postgres://u:pw@h:1/db?x=1"),
            "postgres://u:***@h:1/db?x=1"
        );
        assert_eq!(redact_url("postgres://u@h:1/db"), "postgres://u@h:1/db");
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact_url("nats://u:p:w@h:4222"), "nats://u:***@h:4222");
    }
}
