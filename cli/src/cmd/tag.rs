//! `lamina tag SOURCE TARGET`: another name for an image.

use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::Reference;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: name, ID or digest.
    source: String,
    /// The new name, `[REGISTRY/]REPOSITORY[:TAG]`.
    target: String,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let target =
        Reference::parse(&args.target).with_context(|| format!("invalid target name {:?}", args.target))?;
    if target.digest().is_some() {
        anyhow::bail!("cannot tag with a digest reference: {}", args.target);
    }
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let source = store.resolve(&args.source)?;
    store
        .set_tag(&target, source.descriptor.clone())
        .with_context(|| format!("cannot tag {} as {}", args.source, target.familiar()))?;
    Ok(ExitCode::SUCCESS)
}
