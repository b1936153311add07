//! `lamina container inspect|prune`, and `lamina inspect` of a name that is a container.

use std::process::ExitCode;

use super::container::{inspect, start, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Show containers as docker's JSON (State, Config, HostConfig, Mounts, NetworkSettings).
    Inspect(InspectArgs),
    /// Remove every container that is not running (and its writable layer).
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Don't ask for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// `json`, a field path (`.State.Status`) or a template (`{{.State.ExitCode}}`).
    #[arg(long, short = 'f', default_value = "json")]
    pub format: String,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Sub::Inspect(a) => inspect_containers(cli, &a.containers, &a.format),
        Sub::Prune(a) => prune(cli, a),
    }
}

fn prune(cli: &crate::Cli, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    if !args.force {
        eprint!(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut removed = Vec::new();
    let mut bytes = 0u64;
    for rec in state::list(&cli.store_root())? {
        if rec.active() {
            continue;
        }
        bytes += dir_size(&rec.dir.join("upper"));
        state::remove(&rec)?;
        removed.push(rec.meta.id);
    }
    if !removed.is_empty() {
        crate::outln!("Deleted Containers:");
        for id in &removed {
            crate::outln!("{id}");
        }
        crate::outln!();
    }
    crate::outln!("Total reclaimed space: {}", crate::output::human_size(bytes));
    Ok(ExitCode::SUCCESS)
}

/// Bytes in regular files under `dir` (links not followed).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| Some((e.path(), std::fs::symlink_metadata(e.path()).ok()?)))
        .map(|(p, m)| {
            if m.is_dir() {
                dir_size(&p)
            } else if m.is_file() {
                m.len()
            } else {
                0
            }
        })
        .sum()
}

/// docker prints an array of documents for json, and the format once per container otherwise.
pub fn inspect_containers(cli: &crate::Cli, names: &[String], format: &str) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let mut docs = Vec::new();
    for n in names {
        let rec = state::find(&root, n)?;
        let req = start::load_request(&rec.dir).ok();
        let ips = inspect::addresses(&root, &rec.meta.id);
        docs.push(inspect::document(&rec, req.as_ref(), &ips));
    }
    if format.trim() == "json" {
        crate::outln!("{}", serde_json::to_string_pretty(&docs)?);
    } else {
        for d in &docs {
            crate::outln!("{}", super::inspect::render(d, format)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lamina inspect NAME`: a container when one has that name or id, else an image (docker looks
/// the name up in both too).
pub fn inspect_any(cli: &crate::Cli, args: &super::inspect::Args) -> anyhow::Result<ExitCode> {
    if state::find(&cli.store_root(), &args.image).is_ok() {
        return inspect_containers(cli, std::slice::from_ref(&args.image), &args.format);
    }
    super::inspect::run(cli, args)
}
