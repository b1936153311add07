//! `lamina start [-a] [-i] CONTAINER...`: run created or stopped containers again.

use std::process::ExitCode;

use anyhow::bail;

use super::container::{start, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Attach stdout and stderr and exit with the container's status.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach stdin (with a terminal, type into it).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let attach = args.attach || args.interactive;
    if attach && args.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    for c in &args.containers {
        let mut rec = state::find(&root, c)?;
        if rec.active() {
            // docker: starting a running container is a no-op.
            crate::outln!("{c}");
            continue;
        }
        let req = start::load_request(&rec.dir)?;
        if attach {
            let how = start::Attach {
                interactive: args.interactive,
                sig_proxy: true,
            };
            let result = start::run_attached(&rec.dir, &mut rec.meta, &req, &how)?;
            if rec.meta.auto_remove {
                let _ = state::remove(&rec);
            }
            return super::run::exit_status(&rec.meta.id, result, None);
        }
        if let Err(e) = start::start_detached(&rec.dir, &mut rec.meta, &req)? {
            return super::run::start_failure(e);
        }
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
