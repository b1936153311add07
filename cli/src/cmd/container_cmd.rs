//! `lamina container inspect|prune`, docker's `container` spellings of the container commands
//! (`container ls`, `container start`, …), and `lamina inspect` of a name that is a container.

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
    /// List containers (`lamina ps`).
    #[command(alias = "ps", alias = "list")]
    Ls(super::ps::Args),
    /// Create a container (`lamina create`).
    Create(Box<super::run::Args>),
    /// Run a command in a new container (`lamina run`).
    Run(Box<super::run::Args>),
    /// Start containers (`lamina start`).
    Start(super::start::Args),
    /// Stop containers (`lamina stop`).
    Stop(super::stop::Args),
    /// Restart containers (`lamina restart`).
    Restart(super::restart::Args),
    /// Send a signal to containers (`lamina kill`).
    Kill(super::kill::Args),
    /// Remove containers (`lamina rm`).
    Rm(super::rm::Args),
    /// Print a container's output (`lamina logs`).
    Logs(super::logs::Args),
    /// Wait for containers to stop (`lamina wait`).
    Wait(super::wait::Args),
    /// Show a container's processes (`lamina top`).
    Top(super::top::Args),
    /// Show containers' resource use (`lamina stats`).
    Stats(super::stats::Args),
    /// Freeze containers (`lamina pause`).
    Pause(super::pause::Args),
    /// Thaw containers (`lamina unpause`).
    Unpause(super::pause::Args),
    /// Copy files between a container and the host (`lamina cp`).
    Cp(super::cp::Args),
    /// Make an image of a container's changes (`lamina commit`).
    Commit(super::commit::Args),
    /// Write a container's filesystem as a tar (`lamina export`).
    Export(super::export::Args),
    /// Rename a container (`lamina rename`).
    Rename(super::rename::Args),
    /// Run a command in a running container (`lamina exec`).
    Exec(super::exec::Args),
    /// Attach to a detached `-t` container (`lamina attach`).
    Attach(super::attach::Args),
    /// List a container's published ports (`lamina port`).
    Port(super::port::Args),
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
        Sub::Ls(a) => super::ps::run(cli, a),
        Sub::Create(a) => super::create::run(cli, a),
        Sub::Run(a) => super::run::run(cli, a),
        Sub::Start(a) => super::start::run(cli, a),
        Sub::Stop(a) => super::stop::run(cli, a),
        Sub::Restart(a) => super::restart::run(cli, a),
        Sub::Kill(a) => super::kill::run(cli, a),
        Sub::Rm(a) => super::rm::run(cli, a),
        Sub::Logs(a) => super::logs::run(cli, a),
        Sub::Wait(a) => super::wait::run(cli, a),
        Sub::Top(a) => super::top::run(cli, a),
        Sub::Stats(a) => super::stats::run(cli, a),
        Sub::Pause(a) => super::pause::pause(cli, a),
        Sub::Unpause(a) => super::pause::unpause(cli, a),
        Sub::Cp(a) => super::cp::run(cli, a),
        Sub::Commit(a) => super::commit::run(cli, a),
        Sub::Export(a) => super::export::run(cli, a),
        Sub::Rename(a) => super::rename::run(cli, a),
        Sub::Exec(a) => super::exec::run(cli, a),
        Sub::Attach(a) => super::attach::run(cli, a),
        Sub::Port(a) => super::port::run(cli, a),
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
