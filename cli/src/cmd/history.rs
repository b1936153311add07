//! `lamina history IMAGE`: the build steps of an image, newest first, with the layer each produced and its
//! size as stored (compressed blob size; steps that made no layer show `0 B`).

use std::process::ExitCode;

use lamina_inspect::config::history;
use serde_json::json;

use super::subject;
use super::transfer::RegistryFlags;
use crate::output::{Table, human_size};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// Don't truncate CREATED BY and digests.
    #[arg(long)]
    pub no_trunc: bool,
    /// `table` (default) or `json` (oldest first, every field).
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let view = subject::open_image(cli, &args.image, &args.registry)?;
    let items = history(&view.config, view.layers.len());
    if args.format == "json" {
        let out: Vec<_> = items
            .iter()
            .map(|h| {
                let layer = h.layer.and_then(|i| view.layers.get(i));
                json!({
                    "layer": h.layer,
                    "digest": layer.and_then(|l| l.digest.as_ref()).map(|d| d.to_string()),
                    "diff_id": layer.and_then(|l| l.diff_id.as_ref()).map(|d| d.to_string()),
                    "size": layer.map_or(0, |l| l.size),
                    "created": h.created,
                    "created_by": h.created_by,
                    "comment": h.comment,
                    "empty_layer": h.empty_layer,
                })
            })
            .collect();
        crate::output::emit(&format!("{}\n", serde_json::to_string_pretty(&out)?));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(
        &["LAYER", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &[false, false, false, true, false],
    );
    for h in items.iter().rev() {
        let layer = h.layer.and_then(|i| view.layers.get(i));
        let id = match (h.layer, layer.and_then(|l| l.digest.as_ref())) {
            (Some(i), Some(d)) if args.no_trunc => format!("{i}: {d}"),
            (Some(i), Some(d)) => format!("{i}: {}", d.short()),
            (Some(i), None) => format!("{i}"),
            (None, _) => "<empty>".to_string(),
        };
        let created = h
            .created
            .as_deref()
            .map_or(String::new(), |c| c.get(..16).unwrap_or(c).replace('T', " "));
        let by = h.created_by.replace('\t', " ");
        let by = if args.no_trunc { by } else { truncate(&by, 60) };
        t.row(vec![
            id,
            created,
            by,
            human_size(layer.map_or(0, |l| l.size)),
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    crate::output::emit(&t.render());
    Ok(ExitCode::SUCCESS)
}
