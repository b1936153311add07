//! `lamina export CONTAINER`: the container's filesystem (image layers and its changes, flattened,
//! without its runtime mounts) as one tar, like `docker export`.

use std::process::ExitCode;

use anyhow::Context;
use lamina_runner::access::RootView;

use super::container::{start, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    pub container: String,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let rec = state::find(&cli.store_root(), &args.container)?;
    let req = start::load_request(&rec.dir)?;
    let output = args.output.as_deref().map(std::path::absolute).transpose()?;
    if output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("refusing to write a tar to a terminal: use -o FILE or redirect stdout");
    }
    let view = RootView::snapshot(&req.lower_dirs, &req.upper_dir, rec.pid())?;
    let top = view
        .path()
        .context("the snapshot view has a mount path")?
        .to_path_buf();
    let opts = lamina_store::layer::WriteOptions::default();
    match output {
        Some(p) => {
            let f = std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
            lamina_store::layer::write_tar(&top, &opts, f)
        }
        None => lamina_store::layer::write_tar(&top, &opts, std::io::stdout().lock()),
    }
    .with_context(|| format!("exporting {}", args.container))?;
    Ok(ExitCode::SUCCESS)
}
