//! `lamina analyze IMAGE`: how much of an image is wasted (content overwritten or deleted by later layers),
//! duplicated across layers, and where the bytes are — like dive's CI mode. Thresholds set the exit status:
//! 0 pass, 1 a threshold failed, 2 error.

use std::process::ExitCode;

use lamina_inspect::analyze::{Analysis, AnalyzeOptions, analyze};
use serde_json::json;

use super::subject;
use super::transfer::RegistryFlags;
use crate::output::{Table, human_size, parse_size};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// Fail (exit 1) when efficiency (image bytes / bytes stored in all layers) is below this, 0..1.
    #[arg(long, value_name = "RATIO")]
    pub lowest_efficiency: Option<f64>,
    /// Fail (exit 1) when wasted bytes exceed this (e.g. 20MB, 1.5GB, 512KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub highest_wasted_bytes: Option<u64>,
    /// Fail (exit 1) when wasted bytes exceed this share of the bytes above the first layer, 0..1.
    #[arg(long, value_name = "RATIO")]
    pub highest_user_wasted_percent: Option<f64>,
    /// Entries in each ranked list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// `table` (default) or `json`.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

struct Check {
    name: &'static str,
    limit: String,
    value: String,
    pass: bool,
}

fn checks(a: &Analysis, args: &Args) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(min) = args.lowest_efficiency {
        out.push(Check {
            name: "lowest-efficiency",
            limit: format!("{min}"),
            value: format!("{:.4}", a.efficiency),
            pass: a.efficiency >= min,
        });
    }
    if let Some(max) = args.highest_wasted_bytes {
        out.push(Check {
            name: "highest-wasted-bytes",
            limit: human_size(max),
            value: human_size(a.wasted_bytes),
            pass: a.wasted_bytes <= max,
        });
    }
    if let Some(max) = args.highest_user_wasted_percent {
        out.push(Check {
            name: "highest-user-wasted-percent",
            limit: format!("{max}"),
            value: format!("{:.4}", a.user_wasted_ratio),
            pass: a.user_wasted_ratio <= max,
        });
    }
    out
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let result = (|| -> anyhow::Result<ExitCode> {
        let view = subject::open_image(cli, &args.image, &args.registry)?;
        let a = analyze(
            &view,
            AnalyzeOptions {
                top: args.top,
                threads: 0,
            },
        )?;
        let checks = checks(&a, args);
        let pass = checks.iter().all(|c| c.pass);
        if args.format == "json" {
            let c: Vec<_> = checks
                .iter()
                .map(|c| json!({"name": c.name, "limit": c.limit, "value": c.value, "pass": c.pass}))
                .collect();
            let mut doc = serde_json::to_value(&a)?;
            doc["checks"] = json!(c);
            doc["pass"] = json!(pass);
            crate::output::emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
        } else {
            crate::output::emit(&render(&a));
            if !checks.is_empty() {
                crate::output::emit("Checks:\n");
                let mut t = Table::new(
                    &["RESULT", "CHECK", "LIMIT", "VALUE"],
                    &[false, false, true, true],
                );
                for c in &checks {
                    let r = if c.pass { "PASS" } else { "FAIL" };
                    t.row(vec![r.into(), c.name.into(), c.limit.clone(), c.value.clone()]);
                }
                crate::output::emit(&t.render());
            }
        }
        Ok(if pass {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })();
    result.or_else(|e| {
        // 1 means "a threshold failed"; errors are 2.
        crate::output::report_error(&e);
        Ok(ExitCode::from(2))
    })
}

fn render(a: &Analysis) -> String {
    let mut out = format!(
        "Image: {}\n  Stored in layers:  {:>9}\n  Image content:     {:>9}\n  Wasted:            {:>9}  ({:.1}% of bytes above the first layer)\n  Efficiency:        {:>8.2}%\n\n",
        a.image,
        human_size(a.total_bytes),
        human_size(a.image_bytes),
        human_size(a.wasted_bytes),
        a.user_wasted_ratio * 100.0,
        a.efficiency * 100.0
    );
    let mut t = Table::new(
        &[
            "LAYER",
            "SIZE",
            "CONTENT",
            "WASTED",
            "ADDED",
            "CHANGED",
            "REMOVED",
            "CREATED BY",
        ],
        &[true, true, true, true, true, true, true, false],
    );
    for l in &a.layers {
        let by: String = l.created_by.chars().take(60).collect();
        t.row(vec![
            l.index.to_string(),
            human_size(l.size),
            human_size(l.content_bytes),
            human_size(l.wasted_bytes),
            l.added.to_string(),
            l.changed.to_string(),
            l.removed.to_string(),
            by,
        ]);
    }
    out.push_str(&t.render());
    if !a.wasted_paths.is_empty() {
        out.push_str(&format!(
            "\nWasted space ({} of {} paths):\n",
            a.wasted_paths.len(),
            a.wasted_paths_total
        ));
        let mut t = Table::new(&["WASTED", "LAYERS", "PATH"], &[true, false, false]);
        for w in &a.wasted_paths {
            let layers = w
                .layers
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",");
            t.row(vec![human_size(w.wasted_bytes), layers, format!("/{}", w.path)]);
        }
        out.push_str(&t.render());
    }
    if !a.duplicates.is_empty() {
        out.push_str(&format!(
            "\nDuplicate files across layers ({} of {} groups):\n",
            a.duplicates.len(),
            a.duplicates_total
        ));
        let mut t = Table::new(
            &["REDUNDANT", "SIZE", "COPIES", "PATHS"],
            &[true, true, true, false],
        );
        for d in &a.duplicates {
            let paths = d
                .copies
                .iter()
                .map(|c| format!("{}:/{}", c.layer, c.path))
                .collect::<Vec<_>>()
                .join(" ");
            t.row(vec![
                human_size(d.redundant_bytes),
                human_size(d.size),
                d.copies.len().to_string(),
                paths,
            ]);
        }
        out.push_str(&t.render());
    }
    for l in &a.layers {
        if l.largest_files.is_empty() {
            continue;
        }
        out.push_str(&format!("\nLayer {}: largest files and directories\n", l.index));
        let mut t = Table::new(
            &["SIZE", "FILE", "SIZE", "DIRECTORY"],
            &[true, false, true, false],
        );
        for i in 0..l.largest_files.len().max(l.largest_dirs.len()) {
            let f = l.largest_files.get(i);
            let d = l.largest_dirs.get(i);
            t.row(vec![
                f.map_or(String::new(), |f| human_size(f.bytes)),
                f.map_or(String::new(), |f| format!("/{}", f.path)),
                d.map_or(String::new(), |d| human_size(d.bytes)),
                d.map_or(String::new(), |d| format!("/{}/", d.path)),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}
