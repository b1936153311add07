//! `lamina rename CONTAINER NEW_NAME`.

use std::process::ExitCode;

use anyhow::bail;

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    pub new_name: String,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let name = args.new_name.trim_start_matches('/');
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        bail!("invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    let mut rec = state::find(&root, &args.container)?;
    if state::list(&root)?
        .iter()
        .any(|r| r.meta.name == name && r.meta.id != rec.meta.id)
    {
        bail!("container name {name:?} is already in use");
    }
    // Peers on user networks keep resolving the old name until the container restarts (its
    // network lease holds the names it joined with).
    rec.meta.name = name.to_string();
    state::write_meta(&rec.dir, &rec.meta)?;
    Ok(ExitCode::SUCCESS)
}
