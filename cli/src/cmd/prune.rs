//! `lamina prune`: remove blobs no tag reaches, snapshots no image uses, and leftover temp files; with
//! `--all`, also build cache (least recently used first, down to `--keep-storage`), cache mounts and
//! context memos.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use lamina_store::gc::{GcOptions, parse_duration, parse_size};
use lamina_store::prune::{PruneOptions, PruneReport, prune};

use crate::output::human_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Also remove the build cache records (the next build starts cold).
    #[arg(long)]
    cache: bool,
    /// Also remove build cache, cache mounts (`RUN --mount=type=cache`) and context memos, least recently
    /// used first (all of them, unless --keep-storage or --filter until= limit it).
    #[arg(short, long)]
    all: bool,
    /// With --all: stop once the store uses at most SIZE on disk (30MB, 1.5GB, 512MiB, bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    keep_storage: Option<u64>,
    /// With --all: `until=DURATION` (Go duration: 24h, 90m) keeps anything used more recently.
    #[arg(long, value_name = "FILTER")]
    filter: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::images::ReportFormat::Table)]
    format: super::images::ReportFormat,
}

fn parse_size_arg(s: &str) -> Result<u64, lamina_store::gc::GcConfigError> {
    parse_size(s)
}

/// The `until=` of `--filter` values (the only filter there is).
fn until(filters: &[String]) -> anyhow::Result<Option<Duration>> {
    let mut out = None;
    for f in filters {
        match f.split_once('=') {
            Some(("until", d)) => {
                out = Some(parse_duration(d).with_context(|| format!("--filter {f}"))?);
            }
            _ => bail!("invalid --filter {f:?}: the only filter is until=DURATION"),
        }
    }
    Ok(out)
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let until = until(&args.filter)?;
    if !args.all && (args.keep_storage.is_some() || until.is_some()) {
        bail!("--keep-storage and --filter limit what --all removes: add --all");
    }
    let store = super::open_store(cli)?;
    let report = prune(
        &store,
        PruneOptions {
            dry_run: args.dry_run,
            cache: args.cache,
            gc: args.all.then_some(GcOptions {
                keep_storage: args.keep_storage,
                until,
            }),
        },
    )?;
    print_report(&report, args.dry_run, args.format)
}

fn paths(v: &[(std::path::PathBuf, u64)]) -> Vec<serde_json::Value> {
    v.iter()
        .map(|(p, n)| serde_json::json!({"path": p, "size": n}))
        .collect()
}

/// Prints what was removed and docker's "Total reclaimed space" line.
pub fn print_report(
    report: &PruneReport,
    dry_run: bool,
    format: super::images::ReportFormat,
) -> anyhow::Result<ExitCode> {
    if format == super::images::ReportFormat::Json {
        let v = serde_json::json!({
            "dry_run": dry_run,
            "blobs": report.blobs.iter().map(|(d, n)| serde_json::json!({"digest": d.to_string(), "size": n})).collect::<Vec<_>>(),
            "snapshots": paths(&report.snapshots),
            "tmp": paths(&report.tmp),
            "build_cache": paths(&report.cache),
            "cache_mounts": paths(&report.mounts),
            "context_memos": paths(&report.memos),
            "freed": report.freed(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    for (d, _) in &report.blobs {
        crate::outln!("{verb} blob: {d}");
    }
    for (p, _) in &report.snapshots {
        crate::outln!("{verb} snapshot: {}", p.display());
    }
    for (what, list) in [
        ("build cache", &report.cache),
        ("cache mount", &report.mounts),
        ("context memo", &report.memos),
        ("temp", &report.tmp),
    ] {
        for (p, _) in list {
            crate::outln!("{verb} {what}: {}", p.display());
        }
    }
    crate::outln!(
        "Total reclaimed space: {}{}",
        human_size(report.freed()),
        if dry_run { " (dry run)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
