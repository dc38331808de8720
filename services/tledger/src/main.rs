//! `tledger`: the training-ledger service and its command line
//! (docs/contract.md "Running" and "Access").
//!
//! Standard output carries results only (a new token, a table), so that
//! scripts can read them; logs and errors go to standard error. An error is
//! printed as one line, `error: <what and how to fix it>`, and the exit code
//! is 2 when a service is unreachable or the configuration is wrong, 1
//! otherwise (clap's usage errors are 2 as well).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tledger::access::{Access, Caller, Role, TokenInfo};
use tledger::app;
use tledger::config::Settings;
use tledger::exit_status::exit_with;
use tledger::startup::{self, StartupError};
use tledger::telemetry;
use tledger_events::{PublisherId, UnitId};

#[derive(Debug, Parser)]
#[command(
    name = "tledger",
    version,
    about = "The training ledger of commune cadres: an event-sourced ledger in PostgreSQL, \
             copied to NATS JetStream.",
    after_help = "Settings come from the config file, overridden by TLEDGER_DATABASE_URL, \
                  TLEDGER_NATS_URL, TLEDGER_HTTP_ADDR, TLEDGER_PREFIX, TLEDGER_ADMIN_TOKEN and \
                  TLEDGER_SIGNING_KEY. Logs: TLEDGER_LOG (default info), TLEDGER_LOG_FORMAT=json."
)]
struct Cli {
    /// A TOML config file (keys database_url, nats_url, http_addr, prefix,
    /// admin_token, signing_key, checkpoint_events, checkpoint_seconds,
    /// park_seconds, stream_replicas);
    /// TLEDGER_CONFIG when not given.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and migrate the database, then serve HTTP and NATS commands,
    /// sequence and relay the ledger until SIGINT or SIGTERM.
    Serve,
    /// Create the database if missing, apply migrations and record the
    /// shipped reference data, then exit.
    Migrate,
    /// Create, list and revoke access tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Seed the demo district (Đại Lộc) through the command path, print its
    /// reports, then serve; running it again records nothing twice.
    Demo {
        /// Seed and print, then exit instead of serving.
        #[arg(long)]
        seed_only: bool,
        /// table or json.
        #[arg(long, default_value = "table", value_parser = parse_demo_format)]
        format: tledger::presentation::Format,
        /// en or vi.
        #[arg(long, default_value = "en", value_parser = parse_lang)]
        lang: tledger::presentation::Lang,
        /// The generator's seed (the figures do not depend on it).
        #[arg(long, default_value_t = tledger_demo_plan::DEFAULT_SEED)]
        seed: u64,
    },
    /// Print a report: training-volume, standards or alignment.
    Report {
        #[command(flatten)]
        selection: ReportSelection,
        /// The cut: facts up to this ledger position (default: the latest).
        #[arg(long)]
        at_position: Option<u64>,
        /// table, json or csv.
        #[arg(long, default_value = "table", value_parser = parse_format)]
        format: tledger::presentation::Format,
        /// en or vi.
        #[arg(long, default_value = "en", value_parser = parse_lang)]
        lang: tledger::presentation::Lang,
    },
    /// The audit trail of a person or a training place: every sequenced fact
    /// of its stream in ledger order, with who recorded it and any
    /// retraction.
    History {
        /// official or enrollment.
        #[arg(value_name = "official|enrollment")]
        trail: tledger::audit_trail::Trail,
        #[arg(value_name = "ID")]
        id: String,
        /// Facts effective on or after this date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<tledger_events::Date>,
        /// Facts effective on or before this date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: Option<tledger_events::Date>,
        /// Only facts of these types (repeat, or separate with commas).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// table, json or csv.
        #[arg(long, default_value = "table", value_parser = parse_format)]
        format: tledger::presentation::Format,
    },
    /// The read models: how far they are, or rebuild them beside the live ones.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// The ed25519 key that signs checkpoints (TLEDGER_SIGNING_KEY).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Sign a checkpoint at the ledger's head now (the service also signs
    /// every TLEDGER_CHECKPOINT_EVENTS events or TLEDGER_CHECKPOINT_SECONDS).
    Checkpoint,
    /// Verify the ledger against the public key: recompute every event hash
    /// and the Merkle root at every checkpoint, check every signature and,
    /// with --checkpoint, a checkpoint kept outside the database. Exits 1 and
    /// names the first bad position when anything was changed. `verify
    /// proof` checks one inclusion proof without the database.
    Verify {
        #[command(subcommand)]
        proof: Option<VerifyCommand>,
        /// The ledger's public key: 64 hex digits, or a file holding them.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
        /// A checkpoint saved earlier (JSON of GET /v1/ledger/checkpoint).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Write the ledger up to a position or a date (transaction time, like
    /// known_at), with its checkpoints, to a signed archive
    /// (docs/export-format.md).
    Export {
        /// A ledger position, or a date (YYYY-MM-DD): facts recorded by its
        /// end (UTC). Default: everything sequenced.
        #[arg(long, value_name = "POSITION|DATE")]
        until: Option<tledger::export::Until>,
        #[arg(value_name = "ARCHIVE")]
        archive: PathBuf,
    },
    /// Verify an export with the ledger's public key, without PostgreSQL or
    /// NATS: its signed digest, the chain and every checkpoint in it; with
    /// `report`, then compute a report from the archive alone.
    Replay {
        #[arg(value_name = "ARCHIVE")]
        archive: PathBuf,
        /// The ledger's public key: 64 hex digits, or a file holding them.
        #[arg(long, value_name = "KEY")]
        public_key: String,
        #[command(subcommand)]
        report: Option<ReplayCommand>,
    },
    /// Register, list and disable publishing bodies.
    Publishers {
        #[command(subcommand)]
        command: PublishersCommand,
    },
    /// Rejected messages: list, show, resubmit (after correction), discard.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Import a publisher's history (CloudEvents JSON lines) through the
    /// same checks, deduplication and receipts as facts from NATS;
    /// resumable: running it again records nothing twice.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The publisher of every line (default: found by each line's source).
        #[arg(long, value_name = "PUBLISHER_ID")]
        publisher: Option<String>,
    },
    /// Benchmarks, on a database and prefix of their own (never real data).
    /// Runs the tledger-bench binary (next to this one, else on PATH) with
    /// these arguments: `tledger bench --help` lists them.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum ReplayCommand {
    /// Print a report computed in memory from the verified archive: the
    /// JSON the server gives at the archive's last position (or known_at).
    Report {
        #[command(flatten)]
        selection: ReportSelection,
        /// The cut: the facts recorded by this RFC 3339 instant (default:
        /// the whole archive).
        #[arg(long, value_name = "INSTANT", value_parser = parse_instant)]
        known_at: Option<chrono::DateTime<chrono::Utc>>,
        /// json (the server's body, one line), table or csv.
        #[arg(long, default_value = "json", value_parser = parse_format)]
        format: tledger::presentation::Format,
        /// en or vi.
        #[arg(long, default_value = "en", value_parser = parse_lang)]
        lang: tledger::presentation::Lang,
    },
}

fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("known_at must be an RFC 3339 instant, not {s:?}"))
}

/// Which report, for which unit and dates: the same for `report` and
/// `replay … report`.
#[derive(Debug, clap::Args)]
struct ReportSelection {
    /// training-volume, standards or alignment.
    #[arg(value_name = "NAME")]
    name: String,
    /// The unit and every unit below it (default: the whole country).
    #[arg(long)]
    unit: Option<String>,
    /// The report's date (standards, alignment); default today.
    #[arg(long, value_name = "YYYY-MM-DD")]
    as_of: Option<tledger_events::Date>,
    /// The window of training-volume; default the five calendar years to --to.
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<tledger_events::Date>,
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<tledger_events::Date>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new signing key at PATH (mode 600; never overwrites) and print
    /// its public key.
    Generate {
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Print the public key of TLEDGER_SIGNING_KEY (hex).
    Public,
}

#[derive(Debug, Subcommand)]
enum VerifyCommand {
    /// Check an inclusion proof (JSON of GET /v1/ledger/proof/<position>)
    /// with the ledger's public key; needs no database.
    Proof {
        /// The ledger's public key: 64 hex digits, or a file holding them.
        #[arg(long, value_name = "KEY")]
        public_key: String,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// The read models' position against the ledger head.
    Status,
    /// Rebuild every read model from position 0 beside the live ones and
    /// swap them in when caught up (reports keep answering meanwhile).
    Rebuild,
}

fn parse_format(s: &str) -> Result<tledger::presentation::Format, String> {
    match s {
        "table" => Ok(tledger::presentation::Format::Table),
        "json" => Ok(tledger::presentation::Format::Json),
        "csv" => Ok(tledger::presentation::Format::Csv),
        other => Err(format!("unknown format {other:?}: table, json or csv")),
    }
}

fn parse_demo_format(s: &str) -> Result<tledger::presentation::Format, String> {
    match parse_format(s)? {
        tledger::presentation::Format::Csv => Err("the demo prints table or json".into()),
        format => Ok(format),
    }
}

fn parse_lang(s: &str) -> Result<tledger::presentation::Lang, String> {
    match s {
        "en" => Ok(tledger::presentation::Lang::En),
        "vi" => Ok(tledger::presentation::Lang::Vi),
        other => Err(format!("unknown language {other:?}: en or vi")),
    }
}

#[derive(Debug, Subcommand)]
enum PublishersCommand {
    /// Register a publisher: it may publish facts of its types about its
    /// unit subtree on <prefix>.ingest.<publisher_id>.
    Add {
        #[arg(value_name = "PUBLISHER_ID")]
        publisher_id: String,
        /// The CloudEvents source its facts carry (a URI).
        #[arg(long)]
        source: String,
        /// The root of its unit subtree (default: every unit).
        #[arg(long, value_name = "UNIT_ID")]
        unit: Option<String>,
        /// The fact types it may publish, comma-separated (default: all).
        #[arg(long, value_name = "TYPE,…", value_delimiter = ',')]
        types: Option<Vec<String>>,
        /// Its ed25519 public key in hex: every fact must then be signed.
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// Also print the NATS user block to add to the server's
        /// authorization (with a new password).
        #[arg(long)]
        nats_user: bool,
    },
    /// List the publishers.
    List,
    /// Disable a publisher: its facts are rejected from then on.
    Disable {
        #[arg(value_name = "PUBLISHER_ID")]
        publisher_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// Quarantined messages, oldest first.
    List {
        #[arg(long, value_name = "PUBLISHER_ID")]
        publisher: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One message, as received, with why it was rejected.
    Show {
        #[arg(value_name = "ITEM_ID")]
        item: uuid::Uuid,
    },
    /// Send a message through the checks again, as it is or corrected.
    Resubmit {
        #[arg(value_name = "ITEM_ID")]
        item: uuid::Uuid,
        /// The corrected message (default: the message as received).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Who resubmits it (recorded).
        #[arg(long)]
        by: String,
    },
    /// Close a message without recording it; who and why are recorded.
    Discard {
        #[arg(value_name = "ITEM_ID")]
        item: uuid::Uuid,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create a token; the token is printed alone on the last line, once.
    Create {
        /// admin, unit_officer, inspector or publisher.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The root of a unit officer's scope (required for unit_officer).
        #[arg(long, value_name = "UNIT_ID")]
        unit: Option<UnitId>,
        /// A publisher token's publisher (required for publisher).
        #[arg(long, value_name = "PUBLISHER_ID")]
        publisher: Option<PublisherId>,
        /// A name to recognise (and revoke) the token by.
        #[arg(long)]
        name: String,
    },
    /// List the tokens (never their secrets).
    List,
    /// Revoke the token with this id, or every live token with this name.
    Revoke {
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: tledger::access::AccessError| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    exit_with(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench { args } = &cli.command {
        // The benchmarks read their own settings and set up their own logs.
        return Err(forward_to_bench(cli.config.as_deref(), args).into());
    }
    telemetry::init_logging()?;
    let settings = Settings::load(cli.config.as_deref())?;
    tracing::debug!(?settings, "settings");
    match cli.command {
        Command::Serve => serve(&settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Tokens { command } => tokens(&settings, command).await,
        Command::Publishers { command } => publishers(&settings, command).await,
        Command::Quarantine { command } => quarantine(&settings, command).await,
        Command::Import { file, publisher } => {
            use std::io::IsTerminal;
            let store = startup::ensure_database(&settings.database_url).await?;
            startup::migrate(&store).await?;
            let summary = tledger::import::import(
                &store,
                &settings.prefix,
                &file,
                publisher.as_deref(),
                std::io::stderr().is_terminal(),
            )
            .await?;
            println!("{summary}");
            Ok(())
        }
        Command::Bench { args } => Err(forward_to_bench(cli.config.as_deref(), &args).into()),
        Command::Keys { command } => keys(&settings, command),
        Command::Checkpoint => checkpoint(&settings).await,
        Command::Export { until, archive } => {
            let store = existing_ledger(&settings).await?;
            let signer = tledger::checkpoint_signing::read_signing_key(&settings.signing_key_path)?;
            let until = until.unwrap_or(tledger::export::Until::Head);
            let exported = tledger::export::export(&store, &signer, until, &archive).await?;
            println!(
                "exported positions 1 to {} ({} checkpoint(s)) to {}",
                exported.until_position,
                exported.checkpoints,
                archive.display()
            );
            Ok(())
        }
        Command::Replay {
            archive,
            public_key,
            report:
                Some(ReplayCommand::Report {
                    selection:
                        ReportSelection {
                            name,
                            unit,
                            as_of,
                            from,
                            to,
                        },
                    known_at,
                    format,
                    lang,
                }),
        } => {
            use tledger::replay::{ReplayReport, ReplayReportError, REPORTS};
            if !REPORTS.contains(&name.as_str()) {
                return Err(ReplayReportError::UnknownReport(name).into());
            }
            let key = tledger::inspection::read_public_key(&public_key)?;
            let (replayed, ledger) = tledger::replay::load(&archive, &key)?;
            // Standard output carries the report alone.
            eprintln!(
                "verified: {} events up to position {}, {} checkpoint(s), signed by key {}",
                replayed.events,
                replayed.header.until_position,
                replayed.checkpoints,
                key.key_id()
            );
            let request = ReplayReport {
                name,
                unit,
                as_of,
                from,
                to,
                known_at,
            };
            let body = tledger::replay::report_json(&ledger, &request)?;
            match format {
                tledger::presentation::Format::Json => println!("{body}"),
                tledger::presentation::Format::Csv => {
                    print!(
                        "{}",
                        tledger::presentation::report_csv::to_csv(&request.name, &body)
                    );
                }
                tledger::presentation::Format::Table => {
                    print!("{}", tledger::report_cli::table(&request.name, &body, lang));
                }
            }
            Ok(())
        }
        Command::Replay {
            archive,
            public_key,
            report: None,
        } => {
            let key = tledger::inspection::read_public_key(&public_key)?;
            let replayed = tledger::export::read_archive(&archive, &key)
                .map_err(|e| anyhow::anyhow!("the archive does not verify: {e}"))?;
            println!(
                "verified: {} events up to position {}, {} checkpoint(s), signed by key {}",
                replayed.events,
                replayed.header.until_position,
                replayed.checkpoints,
                key.key_id()
            );
            Ok(())
        }
        Command::Verify {
            proof,
            public_key,
            checkpoint,
        } => verify(&settings, proof, public_key, checkpoint).await,
        Command::Demo {
            seed_only,
            format,
            lang,
            seed,
        } => {
            use std::io::IsTerminal;
            let options = tledger::seeding::DemoOptions {
                seed,
                seed_only,
                format,
                lang,
                progress: std::io::stderr().is_terminal(),
            };
            tledger::seeding::run_demo(&settings, options).await?;
            Ok(())
        }
        Command::Report {
            selection:
                ReportSelection {
                    name,
                    unit,
                    as_of,
                    from,
                    to,
                },
            at_position,
            format,
            lang,
        } => {
            let store = read_models(&settings).await?;
            let request = tledger::report_cli::ReportRequest {
                name,
                unit,
                as_of,
                from,
                to,
                at_position,
                format,
                lang,
            };
            print!("{}", tledger::report_cli::render(&store, &request).await?);
            Ok(())
        }
        Command::History {
            trail,
            id,
            from,
            to,
            types,
            format,
        } => {
            let store = startup::ensure_database(&settings.database_url).await?;
            store.migrate().await.map_err(StartupError::from)?;
            let request = tledger::audit_trail::HistoryRequest {
                trail,
                id,
                from,
                to,
                types,
                format,
            };
            print!("{}", tledger::audit_trail::render(&store, &request).await?);
            Ok(())
        }
        Command::Projections { command } => {
            let store = read_models(&settings).await?;
            match command {
                ProjectionsCommand::Status => {
                    let head = store.head().await?;
                    let at = tledger_projections::projector::position(store.pool(), "rm").await?;
                    println!(
                        "read models at position {at} of {head} (lag {})",
                        head.saturating_sub(at)
                    );
                }
                ProjectionsCommand::Rebuild => {
                    let reached = tledger_projections::projector::rebuild(&store).await?;
                    println!("read models rebuilt up to position {reached} and swapped in");
                }
            }
            Ok(())
        }
    }
}

fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    use tledger::checkpoint_signing::{generate_signing_key, read_signing_key};
    let signer = match command {
        KeysCommand::Generate { out } => {
            let signer = generate_signing_key(&out)?;
            eprintln!(
                "wrote a new signing key to {} (key id {}); its public key:",
                out.display(),
                signer.key_id()
            );
            signer
        }
        KeysCommand::Public => read_signing_key(&settings.signing_key_path)?,
    };
    println!("{}", signer.public_hex());
    Ok(())
}

async fn checkpoint(settings: &Settings) -> anyhow::Result<()> {
    let store = existing_ledger(settings).await?;
    let signer = tledger::checkpoint_signing::read_signing_key(&settings.signing_key_path)?;
    let mut checkpointer = tledger::checkpoint_signing::CheckpointSigning::new(
        store,
        signer,
        settings.checkpoint_events,
        std::time::Duration::from_secs(settings.checkpoint_seconds),
    );
    match checkpointer.checkpoint().await? {
        Some(checkpoint) => println!("{}", serde_json::to_string_pretty(&checkpoint)?),
        None => eprintln!("the latest checkpoint already covers the ledger's head"),
    }
    Ok(())
}

async fn verify(
    settings: &Settings,
    proof: Option<VerifyCommand>,
    public_key: Option<String>,
    checkpoint: Option<PathBuf>,
) -> anyhow::Result<()> {
    use tledger::inspection::{read_outside_checkpoint, read_public_key, verify_ledger};
    if let Some(VerifyCommand::Proof { public_key, file }) = proof {
        let key = read_public_key(&public_key)?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        let proof: tledger_events::proof::InclusionProof = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not an inclusion proof: {e}", file.display()))?;
        proof
            .verify(&key)
            .map_err(|e| anyhow::anyhow!("the proof does not hold: {e}"))?;
        println!(
            "the event at position {} ({}, {}) is in the ledger signed by key {} at position {}",
            proof.position,
            proof.record.event_type,
            proof.record.stream,
            proof.checkpoint.key_id,
            proof.checkpoint.position
        );
        return Ok(());
    }
    let public_key = public_key.ok_or_else(|| {
        anyhow::anyhow!(
            "--public-key is required: the trust anchor must come from outside the database \
             (tledger keys public prints it where the key is)"
        )
    })?;
    let key = read_public_key(&public_key)?;
    let outside = checkpoint
        .as_deref()
        .map(read_outside_checkpoint)
        .transpose()?;
    let store = existing_ledger(settings).await?;
    let found = verify_ledger(&store, &key, outside.as_ref()).await?;
    if let Some(bad) = found.first_bad {
        anyhow::bail!(
            "verification FAILED: first bad position {}: {}",
            bad.position,
            bad.reason
        );
    }
    println!(
        "verified: {} events, chain and Merkle roots recomputed; {} checkpoint(s) signed by key \
         {}{}{}",
        found.events,
        found.checkpoints,
        key.key_id(),
        found
            .outside_checkpoint
            .map(|p| format!("; the outside checkpoint at position {p} matches"))
            .unwrap_or_default(),
        if found.unsequenced > 0 {
            format!(
                "; {} committed event(s) not yet sequenced",
                found.unsequenced
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// An existing ledger's database, without migrating or recording anything
/// (verification must not write to what it checks).
async fn existing_ledger(settings: &Settings) -> anyhow::Result<tledger_store::Store> {
    tledger_store::Store::connect(&settings.database_url, 4)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the ledger at {}: {e}",
                tledger::config::redact_url(&settings.database_url)
            )
        })
}

/// The database with its migrations and read-model tables.
async fn read_models(settings: &Settings) -> anyhow::Result<tledger_store::Store> {
    let store = startup::ensure_database(&settings.database_url).await?;
    startup::migrate(&store).await?;
    tledger_projections::projector::ensure_schema(store.pool(), "rm").await?;
    Ok(store)
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = app::build(settings).await?;
    startup::admin_token(app.access(), settings).await?;
    app.run_until_stopped(app::shutdown_signal()).await?;
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = startup::ensure_database(&settings.database_url).await?;
    let migrated = startup::migrate(&store).await?;
    if migrated.recorded.is_empty() {
        println!(
            "the database is up to date; the ledger head is {}",
            migrated.head
        );
    } else {
        println!(
            "recorded the shipped reference data {}; the ledger head is {}",
            migrated.recorded.join(", "),
            migrated.head
        );
    }
    Ok(())
}

async fn publishers(settings: &Settings, command: PublishersCommand) -> anyhow::Result<()> {
    use tledger::publishers::{nats_user_block, new_password, NewPublisher, Publishers};
    let store = startup::ensure_database(&settings.database_url).await?;
    store.migrate().await.map_err(StartupError::from)?;
    let publishers = Publishers::new(store);
    match command {
        PublishersCommand::Add {
            publisher_id,
            source,
            unit,
            types,
            key,
            nats_user,
        } => {
            let added = publishers
                .add(&NewPublisher {
                    id: publisher_id,
                    source,
                    unit,
                    types,
                    key_hex: key,
                })
                .await?;
            println!(
                "added publisher {} (source {}, units {}, types {}, {}); it publishes on {}.ingest.{}",
                added.id,
                added.source,
                added.unit.as_ref().map_or("all".into(), |u| format!("{u} and below")),
                added.types.as_ref().map_or("all".into(), |t| t
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(",")),
                if added.key.is_some() { "signed" } else { "unsigned" },
                settings.prefix.as_str(),
                added.id,
            );
            if nats_user {
                let password = new_password().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                println!("add to the NATS server's authorization users:");
                print!(
                    "{}",
                    nats_user_block(&settings.prefix, added.id.as_str(), &password)
                );
            }
        }
        PublishersCommand::List => {
            println!("ID\tSOURCE\tUNIT\tTYPES\tSIGNED\tSTATUS");
            for (publisher, record) in publishers.list().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    publisher.id,
                    publisher.source,
                    record.unit_id.as_deref().unwrap_or("*"),
                    record.types.map_or("*".into(), |t| t.join(",")),
                    if publisher.key.is_some() { "yes" } else { "no" },
                    if publisher.disabled {
                        "disabled"
                    } else {
                        "enabled"
                    },
                );
            }
        }
        PublishersCommand::Disable { publisher_id } => {
            publishers.disable(&publisher_id).await?;
            println!("disabled publisher {publisher_id}");
        }
    }
    Ok(())
}

async fn quarantine(settings: &Settings, command: QuarantineCommand) -> anyhow::Result<()> {
    use tledger::quarantine as q;
    let store = startup::ensure_database(&settings.database_url).await?;
    store.migrate().await.map_err(StartupError::from)?;
    match command {
        QuarantineCommand::List { publisher, limit } => {
            let items = store.quarantine_items(publisher.as_deref(), limit).await?;
            print!("{}", q::item_table(&items));
        }
        QuarantineCommand::Show { item } => {
            let found = store
                .quarantine_item(item)
                .await?
                .ok_or(q::QuarantineError::NotFound(item))?;
            println!("{}", serde_json::to_string_pretty(&q::item_json(&found))?);
        }
        QuarantineCommand::Resubmit { item, file, by } => {
            let corrected = file
                .map(|path| {
                    std::fs::read(&path)
                        .map(bytes::Bytes::from)
                        .map_err(|source| q::QuarantineError::Read {
                            path: path.display().to_string(),
                            source,
                        })
                })
                .transpose()?;
            let intake = tledger::import::standalone_intake(&store, &settings.prefix);
            let receipt = q::resubmit(&intake.intake, item, corrected, &by).await;
            intake.stop().await;
            println!("{}", serde_json::to_string(&receipt?)?);
        }
        QuarantineCommand::Discard { item, by, reason } => {
            q::discard(&store, item, &by, &reason).await?;
            println!("discarded {item} (by {by}: {reason})");
        }
    }
    Ok(())
}

async fn tokens(settings: &Settings, command: TokensCommand) -> anyhow::Result<()> {
    let store = startup::ensure_database(&settings.database_url).await?;
    // The tokens table may not exist yet on a fresh database; only the
    // schema is needed here, not the reference facts.
    store.migrate().await.map_err(StartupError::from)?;
    let access = Access::new(store);
    match command {
        TokensCommand::Create {
            role,
            unit,
            publisher,
            name,
        } => {
            let (caller, secret) = access.create(role, unit, publisher, &name).await?;
            println!(
                "created token {} ({}, scope {}) named {:?}",
                caller.token_id,
                caller.role,
                scope(&caller),
                caller.name
            );
            println!("{secret}");
        }
        TokensCommand::List => {
            let tokens = access.list().await?;
            print!("{}", token_table(&tokens));
        }
        TokensCommand::Revoke { id_or_name } => {
            let revoked = access.revoke(&id_or_name).await?;
            let plural = if revoked == 1 { "" } else { "s" };
            println!("revoked {revoked} token{plural}");
        }
    }
    Ok(())
}

/// Why `tledger bench` could not run the benchmarks.
#[derive(Debug, thiserror::Error)]
enum BenchForwardError {
    #[error(
        "the benchmarks are not built: no {BENCH_BINARY} next to this binary ({beside}) nor on \
         PATH; build them with `cargo build --release -p tledger-bench`"
    )]
    Missing { beside: String },
    #[error("cannot run {program}: {source}")]
    Run {
        program: String,
        source: std::io::Error,
    },
}

/// The benchmarks' binary (tools/bench).
const BENCH_BINARY: &str = "tledger-bench";

/// Runs `tledger-bench` with the same arguments (and `--config`), in place
/// of this process: the benchmarks stay out of the service's binary, and
/// their output, signals and exit code are theirs (ADR 21,
/// docs/adr/0021-benchmarks-and-demo-plan-outside-the-service.md).
/// Returns only when it could not be started.
fn forward_to_bench(
    config: Option<&std::path::Path>,
    args: &[std::ffi::OsString],
) -> BenchForwardError {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
        .map(|dir| dir.join(format!("{BENCH_BINARY}{}", std::env::consts::EXE_SUFFIX)));
    let program = match &beside {
        Some(path) if path.is_file() => path.clone().into_os_string(),
        // exec(2) searches PATH for a bare name.
        _ => BENCH_BINARY.into(),
    };
    let mut command = std::process::Command::new(&program);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args);
    let error = run_in_place(command);
    if error.kind() == std::io::ErrorKind::NotFound {
        return BenchForwardError::Missing {
            beside: beside
                .as_deref()
                .and_then(std::path::Path::parent)
                .map_or_else(|| "unknown".to_owned(), |d| d.display().to_string()),
        };
    }
    BenchForwardError::Run {
        program: program.to_string_lossy().into_owned(),
        source: error,
    }
}

/// Replaces this process with `command`; returns why it could not.
#[cfg(unix)]
fn run_in_place(mut command: std::process::Command) -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    command.exec()
}

/// Where there is no exec(2): runs `command` and exits with its code.
#[cfg(not(unix))]
fn run_in_place(mut command: std::process::Command) -> std::io::Error {
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(error) => error,
    }
}

/// What a token may reach, in words.
fn scope(caller: &Caller) -> String {
    match (&caller.unit_id, &caller.publisher_id) {
        (Some(unit), _) => format!("unit {unit}"),
        (None, Some(publisher)) => format!("publisher {publisher}"),
        (None, None) => "all".to_owned(),
    }
}

/// The tokens as an aligned table, with a header line.
fn token_table(tokens: &[TokenInfo]) -> String {
    let header = ["id", "name", "role", "scope", "created", "revoked"];
    let rows: Vec<[String; 6]> = tokens
        .iter()
        .map(|t| {
            [
                t.caller.token_id.to_string(),
                t.caller.name.clone(),
                t.caller.role.to_string(),
                scope(&t.caller),
                t.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                if t.revoked { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}
