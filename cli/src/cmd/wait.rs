//! `lamina wait CONTAINER...`: block until each container stops, print its exit code.

use std::process::ExitCode;
use std::time::Duration;

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    for c in &args.containers {
        let id = state::find(&root, c)?.meta.id;
        let code = loop {
            // Re-found each time: a `--rm` container's record goes away when it ends.
            let Ok(rec) = state::find(&root, &id) else {
                break 0;
            };
            // A created container that hasn't started counts as running, as docker's wait has it.
            if let Some(s) = &rec.status
                && !rec.active()
            {
                break s.outcome.map_or(-1, |o| o.exit_code);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        crate::outln!("{code}");
    }
    Ok(ExitCode::SUCCESS)
}
