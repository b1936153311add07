//! `lamina copy SRC DEST`: copy an image between registries and OCI layouts, like `skopeo copy`.

use std::process::ExitCode;

use anyhow::Context;
use lamina_registry::Platform;
use lamina_registry::copy::{self, CopyOptions, Location};

use super::transfer::RegistryFlags;

/// Copy an image: docker://REF (or a bare reference) and oci:DIR[:TAG] on either side.
#[derive(clap::Args, Debug)]
pub struct Args {
    pub src: String,
    pub dest: String,
    /// Copy every platform of a multi-platform image (default: only this machine's, like skopeo).
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Platform to copy from a multi-platform image.
    #[arg(long, conflicts_with = "all")]
    pub platform: Option<String>,
    /// Leave the image's referrers (SBOMs, attestations) and cosign signature tags behind; by default a
    /// registry-to-registry copy brings them along.
    #[arg(long)]
    pub skip_referrers: bool,
    /// Print only the written manifest digest on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(_cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let src: Location = args.src.parse()?;
    let dst: Location = args.dest.parse()?;
    let opts = args.registry.options()?;
    let copts = CopyOptions {
        all: args.all,
        platform: args.platform.as_deref().map(str::parse::<Platform>).transpose()?,
        skip_referrers: args.skip_referrers,
    };
    let mut flags = args.registry.clone();
    if args.quiet {
        flags.progress = "quiet".into();
    }
    let reporter = flags.reporter();
    let rt = super::transfer::runtime()?;
    let digest = rt
        .block_on(copy::copy(&src, &dst, &opts, &copts, &reporter))
        .with_context(|| format!("copying {} to {}", args.src, args.dest))?;
    crate::outln!("{digest}");
    Ok(ExitCode::SUCCESS)
}
