//! `lamina pull IMAGE`: fetch an image from its registry into the store.

use std::process::ExitCode;

use anyhow::Context;
use lamina_store::Reference;
use lamina_store::registry::{BlobSources, Platform, RegistryClient, pull};

use super::transfer::RegistryFlags;

/// Pull an image from a registry.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image reference (e.g. busybox, localhost:5000/app:1.0, repo@sha256:…).
    pub image: String,
    /// Platform to pick from a multi-platform image (os/arch[/variant]); default: this machine's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Also fetch non-distributable (foreign) layers.
    #[arg(long)]
    pub include_foreign: bool,
    /// Print only the image digest on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.image)?;
    let platform = args.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let opts = args.registry.options()?;
    let root = cli.store_root();
    let store =
        lamina_store::Store::open(&root).with_context(|| format!("opening store {}", root.display()))?;
    let blobs = store.blobs().clone();
    let sources = BlobSources::new(&root);
    let mut flags = args.registry.clone();
    if args.quiet {
        flags.progress = "quiet".into();
    }
    let reporter = flags.reporter();
    reporter.line(&format!("Pulling {}", reference.familiar()));
    let rt = super::transfer::runtime()?;
    let popts = pull::PullOptions {
        platform,
        include_foreign: args.include_foreign,
    };
    let pulled = rt
        .block_on(async {
            let client = RegistryClient::new(reference.registry(), &opts)?;
            pull::pull(
                &client,
                &reference,
                &blobs,
                Some(&sources),
                &popts,
                &reporter,
                &|_, _| {},
            )
            .await
        })
        .with_context(|| format!("pulling {}", reference.familiar()))?;
    let mut desc = pulled.manifest.clone();
    desc.platform = None;
    let desc: lamina_store::Descriptor =
        serde_json::from_value(serde_json::to_value(&desc)?).context("converting the manifest descriptor")?;
    store
        .set_tag(&reference, desc)
        .with_context(|| format!("tagging {} in {}", reference.familiar(), root.display()))?;
    if args.quiet {
        println!("{}", pulled.manifest.digest);
    } else {
        reporter.line(&format!(
            "Digest: {}",
            pulled.index.as_ref().unwrap_or(&pulled.manifest).digest
        ));
        reporter.line(&format!(
            "Status: downloaded {} layer(s) for {}",
            pulled.downloaded,
            reference.familiar()
        ));
        println!("{}", reference.familiar());
    }
    Ok(ExitCode::SUCCESS)
}
