//! `lamina pause` / `lamina unpause`: freeze and thaw every process of a container (the freezer
//! cgroup: v1 `freezer.state`, v2 `cgroup.freeze`).

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn pause(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    set(cli, args, true)
}

pub fn unpause(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    set(cli, args, false)
}

fn set(cli: &crate::Cli, args: &Args, frozen: bool) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    for c in &args.containers {
        let rec = state::find(&root, c)?;
        let Some(cg) = rec.cgroup() else {
            bail!("container {c} is not running");
        };
        match (frozen, cg.frozen()) {
            (true, true) => bail!("container {c} is already paused"),
            (false, false) => bail!("container {c} is not paused"),
            _ => {}
        }
        cg.set_frozen(frozen)
            .with_context(|| format!("{} container {c}", if frozen { "pausing" } else { "unpausing" }))?;
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
