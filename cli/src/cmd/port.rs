//! `lamina port CONTAINER [PORT[/PROTO]]`: a container's published ports, as docker prints them.

use std::process::ExitCode;

use anyhow::bail;

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    /// Only this container port (`80` or `80/tcp`).
    pub port: Option<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let rec = state::find(&cli.store_root(), &args.container)?;
    let want = args.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    // Recorded by `run` as `IP:HOST->CONTAINER/proto`.
    for m in &rec.meta.ports {
        let Some((host, ctr)) = m.split_once("->") else {
            continue;
        };
        if want.as_ref().is_some_and(|w| w != ctr) {
            continue;
        }
        found = true;
        if want.is_some() {
            crate::outln!("{host}");
        } else {
            crate::outln!("{ctr} -> {host}");
        }
    }
    if let Some(w) = want
        && !found
    {
        bail!("no public port {w} published for {}", args.container);
    }
    Ok(ExitCode::SUCCESS)
}
