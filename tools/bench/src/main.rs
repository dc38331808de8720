//! `tledger-bench`: the benchmarks' command line. `tledger bench …` runs
//! it with the same arguments, so its subcommands, flags and output are
//! those of `tledger bench` (docs/benchmarks.md).
//!
//! Like `tledger`, it prints results on standard output and an error as one
//! line on standard error, with exit code 2 when a service is unreachable or
//! the configuration is wrong, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tledger::config::Settings;
use tledger::exit_status::exit_with;
use tledger::telemetry;

/// Benchmarks, on a database and prefix of their own (never real data).
#[derive(Debug, Parser)]
#[command(
    name = "tledger-bench",
    // Its usage lines name the verb it is run as.
    bin_name = "tledger bench"
)]
struct Cli {
    /// A TOML config file (keys database_url, nats_url, http_addr, prefix,
    /// admin_token, signing_key, checkpoint_events, checkpoint_seconds,
    /// park_seconds, stream_replicas);
    /// TLEDGER_CONFIG when not given.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: BenchCommand,
}

#[tokio::main]
async fn main() -> ExitCode {
    exit_with(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init_logging()?;
    let settings = Settings::load(cli.config.as_deref())?;
    tracing::debug!(?settings, "settings");
    bench(&settings, cli.command).await
}

/// What `bench verify` and `bench replay` take.
#[derive(Debug, clap::Args)]
struct InspectionOptions {
    /// Facts of the four measured types (a quarter each).
    #[arg(long, default_value_t = tledger_bench::bench_inspection::DEFAULT_FACTS)]
    facts: usize,
    #[arg(long, default_value_t = tledger_bench::bench_inspection::DEFAULT_ROUNDS)]
    rounds: usize,
    /// Where the report (and, meanwhile, the archive) goes.
    #[arg(long, value_name = "DIR", default_value = "./bench-results")]
    out: PathBuf,
    /// Keep the archive (and, with --shared-server, the database).
    #[arg(long)]
    keep: bool,
    /// Load into a throwaway database on the configured server instead of
    /// a PostgreSQL cluster of the benchmark's own (the load's long
    /// transaction holds back every other database's sequencer there).
    #[arg(long)]
    shared_server: bool,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// N nominate commands over HTTP against single-row INSERT commits of
    /// the same size, alternating, at each concurrency; medians over the
    /// rounds, written to <out>/commands.md and <out>/commands.json.
    Commands {
        /// Commands (and baseline inserts) per round and concurrency.
        #[arg(long, default_value_t = tledger_bench::bench::DEFAULT_COUNT)]
        count: usize,
        #[arg(long, default_value_t = tledger_bench::bench::DEFAULT_ROUNDS)]
        rounds: usize,
        /// Concurrent clients, a comma-separated list.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        concurrency: Vec<usize>,
        /// Where the report goes.
        #[arg(long, value_name = "DIR", default_value = "./bench-results")]
        out: PathBuf,
        /// Keep the benchmark's database instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
    /// Every benchmark in one run, and one table of each figure with its
    /// same-run baseline and the ratio: <out>/all.md and <out>/all.json.
    All {
        /// Small sizes: a smoke run of minutes, not the issues' figures.
        #[arg(long)]
        quick: bool,
        /// Where the reports go.
        #[arg(long, value_name = "DIR", default_value = "./bench-results")]
        out: PathBuf,
    },
    /// A sustained mixed load (commands, published facts, reports) on a
    /// `tledger serve` of its own: throughput, p99 and the service's RSS
    /// every minute; written to <out>/load.md and <out>/load.json.
    Load {
        #[arg(long, default_value_t = tledger_bench::bench_load::DEFAULT_MINUTES)]
        minutes: u64,
        #[arg(long, default_value_t = 8)]
        command_clients: usize,
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        #[arg(long, default_value_t = 2)]
        report_clients: usize,
        /// Where the report goes.
        #[arg(long, value_name = "DIR", default_value = "./bench-results")]
        out: PathBuf,
        /// Keep the benchmark's database instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
    /// N published facts (a quarter each of official.registered,
    /// training.nominated, training.enrolled, training.completed) from NATS
    /// to their receipts, and tledger import of as many, against PostgreSQL
    /// and JetStream baselines, alternating; written to <out>/ingest.md and
    /// <out>/ingest.json.
    Ingest {
        #[arg(long, default_value_t = tledger_bench::bench_ingest::DEFAULT_FACTS)]
        facts: usize,
        #[arg(long, default_value_t = tledger_bench::bench_ingest::DEFAULT_ROUNDS)]
        rounds: usize,
        /// Where the report goes.
        #[arg(long, value_name = "DIR", default_value = "./bench-results")]
        out: PathBuf,
        /// Keep the benchmark's database instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
    /// Rebuild every read model over N bulk-loaded facts against COPY out
    /// and in of the same facts, alternating; facts/s and peak memory,
    /// written to <out>/rebuild.md and <out>/rebuild.json.
    Rebuild {
        /// Facts of the four measured types (a quarter each).
        #[arg(long, default_value_t = tledger_bench::bench_rebuild::DEFAULT_FACTS)]
        facts: usize,
        #[arg(long, default_value_t = tledger_bench::bench_rebuild::DEFAULT_ROUNDS)]
        rounds: usize,
        /// Where the report goes.
        #[arg(long, value_name = "DIR", default_value = "./bench-results")]
        out: PathBuf,
        /// Keep the benchmark's database instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
    /// tledger verify (the table) and the archive's checks over N
    /// bulk-loaded facts, with export, against gunzip + JSON parse and
    /// gunzip + SHA-256 of the same archive; facts/s and peak memory,
    /// written to <out>/verify.md and <out>/verify.json.
    Verify(InspectionOptions),
    /// Offline replay (the archive's checks, every fact into memory, one
    /// report) over N bulk-loaded facts, with export, against the same
    /// baselines; seconds, facts/s and peak memory, written to
    /// <out>/replay.md and <out>/replay.json.
    Replay(InspectionOptions),
    /// standards and training-volume over HTTP on national-scale synthetic
    /// data, for a province and the country, recent and ten years ago,
    /// against a counting statement; p50/p99 written to <out>/reports.md
    /// and <out>/reports.json.
    Reports {
        #[arg(long, default_value_t = tledger_bench::bench_reports::DEFAULT_OFFICIALS)]
        officials: usize,
        /// Training places.
        #[arg(long, default_value_t = tledger_bench::bench_reports::DEFAULT_PLACES)]
        places: usize,
        #[arg(long, default_value_t = tledger_bench::bench_reports::DEFAULT_PROVINCES)]
        provinces: usize,
        #[arg(long, default_value_t = tledger_bench::bench_reports::DEFAULT_COMMUNES)]
        communes: usize,
        #[arg(long, default_value_t = tledger_bench::bench_reports::DEFAULT_ROUNDS)]
        rounds: usize,
        /// Requests per report, scope and date in each round.
        #[arg(long, default_value_t = tledger_bench::bench_reports::DEFAULT_REQUESTS)]
        requests: usize,
        /// Where the report goes.
        #[arg(long, value_name = "DIR", default_value = "./bench-results")]
        out: PathBuf,
        /// Keep the benchmark's database instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
}

async fn bench(settings: &Settings, command: BenchCommand) -> anyhow::Result<()> {
    use tledger_bench::bench::{self, BenchError, CommandsBench};
    let (count, rounds, concurrency, out, keep) = match command {
        BenchCommand::Commands {
            count,
            rounds,
            concurrency,
            out,
            keep,
        } => (count, rounds, concurrency, out, keep),
        BenchCommand::All { quick, out } => {
            let report = tledger_bench::bench_all::all(
                settings,
                &tledger_bench::bench_all::AllBench { quick, out },
            )
            .await?;
            print!("{}", report.markdown());
            return Ok(());
        }
        BenchCommand::Load {
            minutes,
            command_clients,
            publishers,
            report_clients,
            out,
            keep,
        } => {
            let options = tledger_bench::bench_load::LoadBench {
                minutes,
                command_clients,
                publishers,
                report_clients,
                out,
                keep,
            };
            let report = tledger_bench::bench_load::load(settings, &options).await?;
            print!("{}", report.markdown());
            return Ok(());
        }
        BenchCommand::Ingest {
            facts,
            rounds,
            out,
            keep,
        } => {
            let options = tledger_bench::bench_ingest::IngestBench {
                facts,
                rounds,
                out,
                keep,
            };
            let report = tledger_bench::bench_ingest::ingest(settings, &options).await?;
            print!("{}", report.markdown());
            return Ok(());
        }
        BenchCommand::Rebuild {
            facts,
            rounds,
            out,
            keep,
        } => {
            let options = tledger_bench::bench_rebuild::RebuildBench {
                facts,
                rounds,
                out,
                keep,
            };
            let report = tledger_bench::bench_rebuild::rebuild(settings, &options)
                .await
                .map_err(ledger_bench_error)?;
            print!("{}", report.markdown());
            if report.failures() > 0 {
                return Err(tledger_bench::bench_ledger::LedgerBenchError::Failures {
                    failed: report.failures(),
                    total: report.checks.len(),
                    out: options.out,
                }
                .into());
            }
            return Ok(());
        }
        BenchCommand::Verify(options) => {
            return bench_inspection(
                settings,
                tledger_bench::bench_inspection::Which::Verify,
                options,
            )
            .await
        }
        BenchCommand::Replay(options) => {
            return bench_inspection(
                settings,
                tledger_bench::bench_inspection::Which::Replay,
                options,
            )
            .await
        }
        BenchCommand::Reports {
            officials,
            places,
            provinces,
            communes,
            rounds,
            requests,
            out,
            keep,
        } => {
            let options = tledger_bench::bench_reports::ReportsBench {
                officials,
                places,
                provinces,
                communes,
                rounds,
                requests,
                out,
                keep,
            };
            let report = tledger_bench::bench_reports::reports(settings, &options)
                .await
                .map_err(ledger_bench_error)?;
            print!("{}", report.markdown());
            if report.mismatches > 0 {
                return Err(tledger_bench::bench_ledger::LedgerBenchError::Failures {
                    failed: report.mismatches,
                    total: report.answers,
                    out: options.out,
                }
                .into());
            }
            return Ok(());
        }
    };
    let options = CommandsBench {
        count,
        rounds,
        concurrency,
        out,
        keep,
    };
    let report = bench::commands(settings, &options)
        .await
        .map_err(|error| match error {
            // Its exit code (2: a service is unreachable) is found by type.
            BenchError::Startup(e) => anyhow::Error::from(e),
            other => anyhow::Error::from(other),
        })?;
    print!("{}", report.markdown());
    if report.failures > 0 {
        return Err(BenchError::Failures {
            failed: report.failures,
            total: report.attempted,
            out: options.out,
        }
        .into());
    }
    Ok(())
}

async fn bench_inspection(
    settings: &Settings,
    which: tledger_bench::bench_inspection::Which,
    options: InspectionOptions,
) -> anyhow::Result<()> {
    let options = tledger_bench::bench_inspection::InspectionBench {
        facts: options.facts,
        rounds: options.rounds,
        out: options.out,
        keep: options.keep,
        shared_server: options.shared_server,
    };
    let report = tledger_bench::bench_inspection::run(which, settings, &options)
        .await
        .map_err(ledger_bench_error)?;
    print!("{}", report.markdown());
    if report.failures() > 0 {
        return Err(tledger_bench::bench_ledger::LedgerBenchError::Failures {
            failed: report.failures(),
            total: report.checks.len(),
            out: options.out,
        }
        .into());
    }
    Ok(())
}

/// A benchmark's error, with a start-up failure kept findable by type (its
/// exit code, 2: a service is unreachable).
fn ledger_bench_error(error: tledger_bench::bench_ledger::LedgerBenchError) -> anyhow::Error {
    use tledger_bench::bench::BenchError;
    use tledger_bench::bench_ledger::LedgerBenchError;
    match error {
        LedgerBenchError::Startup(e) | LedgerBenchError::Bench(BenchError::Startup(e)) => {
            anyhow::Error::from(e)
        }
        other => anyhow::Error::from(other),
    }
}
