//! `tledger bench all`: every benchmark of the earlier issues in one run,
//! and one table (markdown and JSON) with each figure, its same-run
//! baseline and the ratio, and whether it meets its target. Each benchmark
//! also writes its own detailed report beside it.
//!
//! `--quick` runs every benchmark at a small size (a smoke run, minutes not
//! hours): its figures show the shape, not the result.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::bench::{load_average, progress, write_files, BenchError, CommandsBench};
use crate::bench_ingest::IngestBench;
use crate::bench_load::LoadBench;
use crate::bench_rebuild::RebuildBench;
use crate::bench_reports::ReportsBench;
use tledger::config::Settings;

#[derive(Clone, Debug)]
pub struct AllBench {
    pub quick: bool,
    pub out: PathBuf,
}

/// One figure of the table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SummaryRow {
    pub benchmark: &'static str,
    pub figure: String,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub ratio: Option<f64>,
    pub target: Option<String>,
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AllReport {
    pub quick: bool,
    pub started_at: String,
    pub finished_at: String,
    pub load_average_before: String,
    pub load_average_after: String,
    pub rows: Vec<SummaryRow>,
    /// Benchmarks that failed, with why (the others still ran).
    pub failed: Vec<String>,
}

fn number(x: Option<f64>) -> String {
    match x {
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => String::new(),
    }
}

impl AllReport {
    pub fn markdown(&self) -> String {
        let mut md = String::from("# tledger bench all\n\n");
        let _ = writeln!(
            md,
            "{} run from {} to {}; load average before {} and after {}.\n",
            if self.quick {
                "A quick (small-size)"
            } else {
                "A full"
            },
            self.started_at,
            self.finished_at,
            self.load_average_before,
            self.load_average_after
        );
        let _ = writeln!(
            md,
            "| benchmark | figure | value | baseline | ratio | target | met? |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---|---|");
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.benchmark,
                r.figure,
                number(r.value),
                number(r.baseline),
                number(r.ratio),
                r.target.as_deref().unwrap_or(""),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "",
                }
            );
        }
        for failure in &self.failed {
            let _ = writeln!(md, "\nFailed: {failure}");
        }
        md
    }
}

/// Runs every benchmark, one after the other, and writes `<out>/all.md` and
/// `<out>/all.json`.
pub async fn all(settings: &Settings, options: &AllBench) -> Result<AllReport, BenchError> {
    let out = options.out.clone();
    let mut report = AllReport {
        quick: options.quick,
        started_at: chrono::Utc::now().to_rfc3339(),
        load_average_before: load_average(),
        ..AllReport::default()
    };
    let q = options.quick;

    progress("bench all: commands");
    let commands = CommandsBench {
        count: if q {
            2_000
        } else {
            crate::bench::DEFAULT_COUNT
        },
        rounds: if q { 1 } else { crate::bench::DEFAULT_ROUNDS },
        out: out.clone(),
        ..CommandsBench::default()
    };
    match crate::bench::commands(settings, &commands).await {
        Ok(r) => report.rows.extend(r.medians.iter().map(|f| SummaryRow {
            benchmark: "commands",
            figure: format!("{} at concurrency {}", f.figure, f.concurrency),
            value: f.command,
            baseline: f.baseline,
            ratio: f.ratio,
            target: f.target.clone(),
            met: f.met,
        })),
        Err(e) => report.failed.push(format!("commands: {e}")),
    }

    progress("bench all: rebuild");
    let rebuild = RebuildBench {
        facts: if q {
            100_000
        } else {
            crate::bench_rebuild::DEFAULT_FACTS
        },
        rounds: if q {
            1
        } else {
            crate::bench_rebuild::DEFAULT_ROUNDS
        },
        out: out.clone(),
        keep: false,
    };
    match crate::bench_rebuild::rebuild(settings, &rebuild).await {
        Ok(r) => {
            report.rows.push(SummaryRow {
                benchmark: "rebuild",
                figure: "read models rebuilt, facts/s (baseline: COPY out and in)".into(),
                value: Some(r.rebuild_facts_per_s),
                baseline: Some(r.baseline_rows_per_s),
                ratio: Some(r.ratio),
                ..SummaryRow::default()
            });
            report.rows.extend(r.targets.iter().map(|t| SummaryRow {
                benchmark: "rebuild",
                figure: t.figure.to_owned(),
                value: Some(t.value),
                target: Some(t.target.clone()),
                met: Some(t.met),
                ..SummaryRow::default()
            }));
        }
        Err(e) => report.failed.push(format!("rebuild: {e}")),
    }

    progress("bench all: reports");
    let reports = if q {
        ReportsBench {
            officials: 20_000,
            places: 100_000,
            provinces: 4,
            communes: 200,
            rounds: 1,
            requests: 20,
            out: out.clone(),
            keep: false,
        }
    } else {
        ReportsBench {
            out: out.clone(),
            ..ReportsBench::default()
        }
    };
    match crate::bench_reports::reports(settings, &reports).await {
        Ok(r) => report.rows.extend(r.medians.iter().map(|c| SummaryRow {
            benchmark: "reports",
            figure: format!("{} p99 ms, {} as of {}", c.report.name(), c.scope, c.as_of),
            value: Some(c.p99_ms),
            baseline: Some(c.baseline_p99_ms),
            ratio: c.ratio_p99,
            target: Some(format!("≤ {} ms", c.target_p99_ms)),
            met: Some(c.met),
        })),
        Err(e) => report.failed.push(format!("reports: {e}")),
    }

    for which in [
        crate::bench_inspection::Which::Verify,
        crate::bench_inspection::Which::Replay,
    ] {
        progress(&format!("bench all: {which:?}").to_lowercase());
        let inspection = crate::bench_inspection::InspectionBench {
            facts: if q {
                100_000
            } else {
                crate::bench_inspection::DEFAULT_FACTS
            },
            rounds: if q {
                1
            } else {
                crate::bench_inspection::DEFAULT_ROUNDS
            },
            out: out.clone(),
            ..crate::bench_inspection::InspectionBench::default()
        };
        match crate::bench_inspection::run(which, settings, &inspection).await {
            Ok(r) => {
                report.rows.extend(r.summary.iter().map(|p| SummaryRow {
                    benchmark: if which == crate::bench_inspection::Which::Verify {
                        "verify"
                    } else {
                        "replay"
                    },
                    figure: format!("{}, facts/s (baseline: gunzip + JSON parse)", p.pass),
                    value: Some(p.facts_per_s),
                    baseline: (p.ratio_to_parse > 0.0).then(|| p.facts_per_s / p.ratio_to_parse),
                    ratio: Some(p.ratio_to_parse),
                    ..SummaryRow::default()
                }));
                report.rows.extend(r.targets.iter().map(|t| SummaryRow {
                    benchmark: "inspection",
                    figure: t.figure.to_owned(),
                    value: Some(t.value),
                    target: Some(t.target.clone()),
                    met: Some(t.met),
                    ..SummaryRow::default()
                }));
            }
            Err(e) => report.failed.push(format!("{which:?}: {e}")),
        }
    }

    progress("bench all: ingest");
    let ingest = IngestBench {
        facts: if q {
            20_000
        } else {
            crate::bench_ingest::DEFAULT_FACTS
        },
        rounds: if q {
            1
        } else {
            crate::bench_ingest::DEFAULT_ROUNDS
        },
        out: out.clone(),
        keep: false,
    };
    match crate::bench_ingest::ingest(settings, &ingest).await {
        Ok(r) => report.rows.extend(r.summary()),
        Err(e) => report.failed.push(format!("ingest: {e}")),
    }

    progress("bench all: load");
    let load = LoadBench {
        minutes: if q {
            3
        } else {
            crate::bench_load::DEFAULT_MINUTES
        },
        command_clients: 8,
        publishers: 4,
        report_clients: 2,
        out: out.clone(),
        keep: false,
    };
    match crate::bench_load::load(settings, &load).await {
        Ok(r) => report.rows.extend(r.summary()),
        Err(e) => report.failed.push(format!("load: {e}")),
    }

    report.finished_at = chrono::Utc::now().to_rfc3339();
    report.load_average_after = load_average();
    write_files(&out, "all", &report.markdown(), &report)?;
    Ok(report)
}
