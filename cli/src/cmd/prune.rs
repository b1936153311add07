//! `lamina prune`: remove blobs no tag reaches, snapshots no image uses, and leftover temp files.

use std::process::ExitCode;

use lamina_store::prune::{PruneOptions, prune};

use crate::output::human_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Also remove the build cache (the next build starts cold).
    #[arg(long)]
    cache: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::images::Format::Table)]
    format: super::images::Format,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let report = prune(
        &store,
        PruneOptions {
            dry_run: args.dry_run,
            cache: args.cache,
        },
    )?;
    if args.format == super::images::Format::Json {
        let v = serde_json::json!({
            "dry_run": args.dry_run,
            "blobs": report.blobs.iter().map(|(d, n)| serde_json::json!({"digest": d.to_string(), "size": n})).collect::<Vec<_>>(),
            "snapshots": report.snapshots.iter().map(|(p, n)| serde_json::json!({"path": p, "size": n})).collect::<Vec<_>>(),
            "tmp": report.tmp.iter().map(|(p, n)| serde_json::json!({"path": p, "size": n})).collect::<Vec<_>>(),
            "freed": report.freed(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run { "Would delete" } else { "Deleted" };
    for (d, _) in &report.blobs {
        crate::outln!("{verb} blob: {d}");
    }
    for (p, _) in &report.snapshots {
        crate::outln!("{verb} snapshot: {}", p.display());
    }
    for (p, _) in &report.cache {
        crate::outln!("{verb} build cache: {}", p.display());
    }
    for (p, _) in &report.tmp {
        crate::outln!("{verb} temp: {}", p.display());
    }
    crate::outln!(
        "Total reclaimed space: {}{}",
        human_size(report.freed()),
        if args.dry_run { " (dry run)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
