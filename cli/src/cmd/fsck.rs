//! `lamina fsck [--repair]`: re-hash every blob and check every indexed image; exit 1 if anything is wrong.

use std::process::ExitCode;

use lamina_store::fsck::{FsckOptions, fsck};

use crate::output::human_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove corrupt blobs (images using them then need to be pulled or loaded again) and the tags whose
    /// manifest is missing or corrupt.
    #[arg(long)]
    repair: bool,
    /// Also decompress every layer and check it against its diff_id.
    #[arg(long)]
    deep: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::images::ReportFormat::Table)]
    format: super::images::ReportFormat,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let report = fsck(
        &store,
        FsckOptions {
            repair: args.repair,
            deep: args.deep,
            threads: 0,
        },
    )?;
    if args.format == super::images::ReportFormat::Json {
        let v = serde_json::json!({
            "blobs_checked": report.blobs_checked,
            "bytes_checked": report.bytes_checked,
            "corrupt": report.corrupt.iter().map(|c| serde_json::json!({
                "digest": c.digest.to_string(),
                "actual": c.actual.as_ref().map(ToString::to_string),
                "size": c.size,
            })).collect::<Vec<_>>(),
            "problems": report.image_problems.iter().map(|(img, p)| serde_json::json!({
                "image": img, "problem": p.to_string(),
            })).collect::<Vec<_>>(),
            "removed": report.removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "untagged": report.untagged.iter().map(|u| serde_json::json!({
                "name": u.name, "manifest": u.manifest.to_string(), "reason": u.reason,
            })).collect::<Vec<_>>(),
            "clean": report.is_clean(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &report.corrupt {
            match &c.actual {
                Some(a) => crate::outln!("corrupt blob {} (content hashes to {a})", c.digest),
                None => crate::outln!("unreadable blob {}", c.digest),
            }
        }
        for (img, p) in &report.image_problems {
            crate::outln!("{img}: {p}");
        }
        for d in &report.removed {
            crate::outln!("removed {d}");
        }
        for u in &report.untagged {
            crate::outln!("untagged {} (manifest {} {})", u.name, u.manifest, u.reason);
        }
        eprintln!(
            "checked {} blobs ({}): {}",
            report.blobs_checked,
            human_size(report.bytes_checked),
            if report.is_clean() {
                "no problems".to_owned()
            } else {
                format!(
                    "{} corrupt blobs, {} image problems",
                    report.corrupt.len(),
                    report.image_problems.len()
                )
            }
        );
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
