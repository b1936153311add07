//! `lamina rm`: remove stopped containers (`-f`: stop them first).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    for c in &args.containers {
        let rec = state::find(&root, c)?;
        if rec.active() {
            if !args.force {
                bail!("container {c} is running: stop it first or use rm -f");
            }
            super::stop::stop(&rec, Duration::ZERO);
        }
        state::remove(&rec)?;
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
