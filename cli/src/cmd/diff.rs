//! `lamina diff A B`: compare two images, or two layers (`IMAGE@N`, `layer:FILE`). Exit 0 when equal,
//! 1 when different, 2 on error — for CI.

use std::process::ExitCode;

use lamina_inspect::diff::{DiffKind, DiffOptions, FileDiff, ImageDiff, diff_images};
use lamina_inspect::source::ImageView;

use super::subject;
use super::transfer::RegistryFlags;
use crate::output::human_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// First image or layer (IMAGE, IMAGE@N, layer:FILE[.gz|.zst]; see `lamina inspect --help` for IMAGE).
    pub a: String,
    /// Second image or layer.
    pub b: String,
    /// Compare what a container sees: flattened trees and runtime config, ignoring timestamps, history and
    /// layer boundaries.
    #[arg(long)]
    pub semantic: bool,
    /// `text` (default) or `json` (stable: sorted by path and field).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Print nothing; only set the exit status.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

fn operand(cli: &crate::Cli, spec: &str, flags: &RegistryFlags) -> anyhow::Result<(ImageView, bool)> {
    if spec.starts_with("layer:") {
        return Ok((subject::open_image(cli, spec, flags)?, true));
    }
    let (view, layer) = subject::open(cli, spec, flags)?;
    match layer {
        Some(i) => Ok((view.single_layer(i)?, true)),
        None => Ok((view, false)),
    }
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    match compare(cli, args) {
        Ok(code) => Ok(code),
        Err(e) => {
            // Errors are exit 2 here: 1 means "different".
            crate::output::report_error(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn compare(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let (a, a_layer) = operand(cli, &args.a, &args.registry)?;
    let (b, b_layer) = operand(cli, &args.b, &args.registry)?;
    if a_layer != b_layer {
        anyhow::bail!(
            "cannot compare a layer with an image ({} vs {}): give two images or two layers",
            args.a,
            args.b
        );
    }
    let d = diff_images(
        &a,
        &b,
        DiffOptions {
            semantic: args.semantic,
            threads: 0,
        },
    )?;
    if !args.quiet {
        if args.format == "json" {
            crate::output::emit(&format!("{}\n", serde_json::to_string_pretty(&d)?));
        } else {
            crate::output::emit(&render(&d));
        }
    }
    Ok(if d.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn file_line(f: &FileDiff) -> String {
    let (sym, m) = match f.kind {
        DiffKind::Added => ("+", f.b.as_ref()),
        DiffKind::Removed => ("-", f.a.as_ref()),
        DiffKind::Changed => ("~", f.b.as_ref()),
    };
    let m = m.expect("a diff has a side");
    let mut line = format!(
        "  {sym} {} {:>8}  /{}",
        m.mode_string(),
        human_size(m.size),
        f.path
    );
    if !f.fields.is_empty() {
        let detail: Vec<String> = f
            .fields
            .iter()
            .map(|field| {
                let (a, b) = (f.a.as_ref().expect("changed"), f.b.as_ref().expect("changed"));
                use lamina_inspect::Field::*;
                match field {
                    Mode => format!("mode {:04o}→{:04o}", a.mode, b.mode),
                    Owner => format!("owner {}:{}→{}:{}", a.uid, a.gid, b.uid, b.gid),
                    Size => format!("size {}→{}", a.size, b.size),
                    Link => format!(
                        "link {}→{}",
                        a.link.as_deref().unwrap_or("-"),
                        b.link.as_deref().unwrap_or("-")
                    ),
                    Type => format!("type {:?}→{:?}", a.kind, b.kind).to_lowercase(),
                    Mtime => format!("mtime {}→{}", a.mtime, b.mtime),
                    other => other.as_str().to_string(),
                }
            })
            .collect();
        line.push_str(&format!("  ({})", detail.join(", ")));
    }
    line.push('\n');
    line
}

fn counts(files: &[FileDiff]) -> (usize, usize, usize) {
    let n = |k| files.iter().filter(|f| f.kind == k).count();
    (n(DiffKind::Added), n(DiffKind::Changed), n(DiffKind::Removed))
}

fn render(d: &ImageDiff) -> String {
    let mut out = String::new();
    if d.is_empty() {
        out.push_str(&format!(
            "{} and {} are the same{}\n",
            d.a,
            d.b,
            if d.semantic { " (semantic)" } else { "" }
        ));
        return out;
    }
    out.push_str(&format!("--- {}\n+++ {}\n", d.a, d.b));
    if !d.config.is_empty() {
        out.push_str("Config:\n");
        for c in &d.config {
            let show =
                |v: &Option<serde_json::Value>| v.as_ref().map_or("(unset)".to_string(), |v| v.to_string());
            out.push_str(&format!("  {}: {} → {}\n", c.field, show(&c.a), show(&c.b)));
        }
    }
    let mut all = Vec::new();
    for l in &d.layers {
        let id = |x: &Option<lamina_inspect::diff::LayerId>| {
            x.as_ref().map_or("(none)".to_string(), |l| {
                l.diff_id
                    .as_ref()
                    .or(l.digest.as_ref())
                    .map_or("(unknown)".to_string(), |d| d.short().to_string())
            })
        };
        out.push_str(&format!("Layer {}: {} → {}\n", l.index, id(&l.a), id(&l.b)));
        if l.files.is_empty() {
            out.push_str("  (same entries, different bytes)\n");
        }
        for f in &l.files {
            out.push_str(&file_line(f));
        }
        all.extend(l.files.iter().cloned());
    }
    if !d.files.is_empty() {
        out.push_str("Files:\n");
        for f in &d.files {
            out.push_str(&file_line(f));
        }
        all.extend(d.files.iter().cloned());
    }
    let (a, c, r) = counts(&all);
    out.push_str(&format!(
        "{a} added, {c} changed, {r} removed; {} config differences\n",
        d.config.len()
    ));
    out
}
