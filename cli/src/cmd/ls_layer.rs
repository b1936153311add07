//! `lamina ls-layer IMAGE[@N]`: what each layer (or layer N) adds, changes and removes relative to the layers
//! below it — whiteouts and opaque directories resolved to the paths they delete — or with `--entries` the
//! tar entries exactly as stored.

use std::process::ExitCode;

use lamina_inspect::config::created_by_per_layer;
use lamina_inspect::diff::{flatten, read_layers};
use lamina_inspect::source::ImageView;
use lamina_inspect::{Change, ChangeKind, Meta, RemovedBy};
use serde_json::json;

use super::subject;
use super::transfer::RegistryFlags;
use crate::output::{Table, human_size};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// IMAGE, or IMAGE@N for layer N only (0 = bottom, -1 = top); `layer:FILE` for a layer file.
    #[arg(value_name = "IMAGE[@N]")]
    pub image: String,
    /// List the layer's tar entries as stored (including `.wh.` files) instead of resolved changes.
    #[arg(long)]
    pub entries: bool,
    /// Also list entries that change nothing (e.g. parent directories re-emitted as they were).
    #[arg(long, short = 'a')]
    pub all: bool,
    /// `table` (default) or `json`.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

fn letter(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "A",
        ChangeKind::Changed => "C",
        ChangeKind::Removed => "D",
        ChangeKind::Unchanged => "=",
    }
}

fn meta_cells(m: &Meta) -> [String; 3] {
    [
        m.mode_string(),
        format!("{}:{}", m.uid, m.gid),
        human_size(m.size),
    ]
}

fn note(c: &Change) -> String {
    let mut parts = Vec::new();
    if let Some(l) = c.after.as_ref().and_then(|m| m.link.as_deref()) {
        parts.push(format!("-> {l}"));
    }
    if !c.fields.is_empty() {
        parts.push(format!(
            "({})",
            c.fields.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    match c.removed_by {
        Some(RemovedBy::Whiteout) => parts.push("(whiteout)".into()),
        Some(RemovedBy::Opaque) => parts.push("(opaque dir)".into()),
        Some(RemovedBy::Replaced) => parts.push("(parent replaced)".into()),
        None => {}
    }
    parts.join(" ")
}

fn header(view: &ImageView, i: usize, created_by: &[String]) -> String {
    let l = &view.layers[i];
    let d = l
        .digest
        .as_ref()
        .map_or_else(|| "-".to_string(), |d| d.to_string());
    let by = created_by.get(i).map(String::as_str).unwrap_or("");
    format!("Layer {i}  {d}  {}  {by}", human_size(l.size))
        .trim_end()
        .to_string()
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let (view, only) = subject::open(cli, &args.image, &args.registry)?;
    let shown: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..view.layers.len()).collect(),
    };
    let created_by = created_by_per_layer(&view.config, view.layers.len());
    // Changes are relative to the layers below, so everything up to the highest shown layer is read.
    let upto = if args.entries {
        shown.clone()
    } else {
        (0..=shown.last().copied().unwrap_or(0)).collect()
    };
    let jobs: Vec<(&ImageView, usize)> = upto.iter().map(|&i| (&view, i)).collect();
    let read = read_layers(&jobs, 0)?;
    let json_out = args.format == "json";
    let mut docs = Vec::new();
    if args.entries {
        for (&i, (entries, _)) in shown.iter().zip(&read) {
            if json_out {
                let list: Vec<_> = entries
                    .iter()
                    .map(|e| json!({"path": e.path, "meta": e.meta}))
                    .collect();
                docs.push(json!({"layer": i, "digest": view.layers[i].digest, "entries": list}));
                continue;
            }
            crate::output::emit(&format!("{}\n", header(&view, i, &created_by)));
            let mut t = Table::new(&["MODE", "OWNER", "SIZE", "PATH"], &[false, false, true, false]);
            for e in entries {
                let [mode, owner, size] = meta_cells(&e.meta);
                let link = e
                    .meta
                    .link
                    .as_deref()
                    .map(|l| format!(" -> {l}"))
                    .unwrap_or_default();
                t.row(vec![mode, owner, size, format!("/{}{link}", e.path)]);
            }
            crate::output::emit(&t.render());
            crate::output::emit("\n");
        }
    } else {
        let flat = flatten(read);
        for &i in &shown {
            let changes: Vec<&Change> = flat.changes[i]
                .iter()
                .filter(|c| args.all || c.kind != ChangeKind::Unchanged)
                .collect();
            if json_out {
                docs.push(json!({"layer": i, "digest": view.layers[i].digest, "created_by": created_by[i], "changes": changes}));
                continue;
            }
            crate::output::emit(&format!("{}\n", header(&view, i, &created_by)));
            let mut t = Table::new(
                &["", "MODE", "OWNER", "SIZE", "PATH"],
                &[false, false, false, true, false],
            );
            for c in changes {
                let m = c
                    .after
                    .as_ref()
                    .or(c.before.as_ref().map(|n| &n.meta))
                    .expect("a change has a side");
                let [mode, owner, size] = meta_cells(m);
                let n = note(c);
                let path = if n.is_empty() {
                    format!("/{}", c.path)
                } else {
                    format!("/{}  {n}", c.path)
                };
                t.row(vec![letter(c.kind).to_string(), mode, owner, size, path]);
            }
            crate::output::emit(&t.render());
            crate::output::emit("\n");
        }
    }
    if json_out {
        crate::output::emit(&format!("{}\n", serde_json::to_string_pretty(&docs)?));
    }
    Ok(ExitCode::SUCCESS)
}
