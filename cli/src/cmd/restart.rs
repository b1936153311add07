//! `lamina restart`: stop (SIGTERM, then SIGKILL after `-t`) and start again, detached.

use std::process::ExitCode;

use super::container::{start, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait for the container to stop before killing it (default: its --stop-timeout,
    /// else 10).
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    for c in &args.containers {
        let rec = state::find(&root, c)?;
        super::stop::stop(&rec, super::stop::grace(&rec, args.time));
        let mut rec = state::find(&root, c)?;
        let req = start::load_request(&rec.dir)?;
        if let Err(e) = start::start_detached(&rec.dir, &mut rec.meta, &req)? {
            return super::run::start_failure(e);
        }
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
