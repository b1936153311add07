//! `lamina top CONTAINER [ps OPTIONS]`: the container's processes, as docker does it: the host's
//! `ps` (default `-ef`), keeping the rows whose PID is in the container's cgroup.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let rec = state::find(&cli.store_root(), &args.container)?;
    let Some(cg) = rec.cgroup() else {
        bail!("container {} is not running", args.container);
    };
    let pids = cg
        .pids()
        .with_context(|| format!("listing the processes of {}", args.container))?;
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {} prints no PID column", ps_args.join(" "));
    };
    crate::outln!("{header}");
    for l in lines {
        let pid = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            crate::outln!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
