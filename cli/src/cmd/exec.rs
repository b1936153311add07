//! `lamina exec`: run a command in a running container.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Numeric user[:group].
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Keep stdin attached (always on).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal for the command, in the container's devpts.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Container name or id.
    pub container: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let rec = state::find(&cli.store_root(), &args.container)?;
    if !rec.running() {
        bail!("container {} is not running", args.container);
    }
    if rec.paused() {
        bail!(
            "container {} is paused, unpause the container before exec",
            args.container
        );
    }
    let monitor_pid = rec.status.as_ref().map(|s| s.monitor_pid).unwrap_or(0);
    let (uid, gid) = match &args.user {
        None => (None, None),
        Some(u) => {
            let (a, b) = u
                .split_once(':')
                .map(|(a, b)| (a, Some(b)))
                .unwrap_or((u.as_str(), None));
            let uid = a
                .parse::<u32>()
                .with_context(|| format!("exec -u {u}: only numeric ids are supported"))?;
            let gid = b
                .map(|g| g.parse::<u32>())
                .transpose()
                .with_context(|| format!("exec -u {u}"))?;
            (Some(uid), gid)
        }
    };
    let req = lamina_runner::ExecRequest {
        id: rec.meta.id.clone(),
        monitor_pid,
        args: args.command.clone(),
        env: args.env.clone(),
        cwd: args.workdir.clone(),
        uid,
        gid,
        tty: args.tty,
    };
    let exe = std::env::current_exe().context("locating the lamina binary")?;
    let raw = args.tty.then(lamina_runner::tty::RawMode::stdin).flatten();
    let status = std::process::Command::new(exe)
        .arg(lamina_runner::EXEC_SUBCOMMAND)
        .arg(serde_json::to_string(&req)?)
        .status()
        .context("starting the exec helper")?;
    drop(raw);
    Ok(ExitCode::from(status.code().unwrap_or(126).clamp(0, 255) as u8))
}
