//! `lamina container inspect`, and `lamina inspect` of a name that is a container.

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
    }
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
