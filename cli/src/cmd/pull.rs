//! `lamina pull IMAGE`: fetch an image from its registry into the store.

use std::process::ExitCode;

use anyhow::Context;
use lamina_registry::{BlobSources, Platform, RegistryClient, pull};
use lamina_store::{Digest, Reference};

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
    let (reference, pulled) = fetch(cli, args)?;
    if args.quiet {
        crate::outln!("{}", pulled.manifest.digest);
    } else {
        crate::outln!("{}", reference.familiar());
    }
    Ok(ExitCode::SUCCESS)
}

/// Pulls, unpacks and tags `args.image`; progress and the summary go to stderr, nothing to stdout
/// (`run --pull` uses it before the container's own output).
pub fn fetch(cli: &crate::Cli, args: &Args) -> anyhow::Result<(Reference, pull::Pulled)> {
    let reference = Reference::parse(&args.image)?;
    let platform = args.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let opts = args.registry.options()?;
    let root = cli.store_root();
    let store = super::open_store(cli)?;
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
    // Layers are unpacked by a few threads as their blobs land, while the rest still download.
    let snapshots = lamina_store::snapshot::Snapshots::open(&root)?;
    let (tx, rx) = crossbeam_channel::unbounded::<(Digest, Digest, Digest)>();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let unpackers: Vec<_> = (0..workers)
        .map(|_| {
            let (rx, snapshots, blobs) = (rx.clone(), snapshots.clone(), blobs.clone());
            std::thread::spawn(move || -> Result<(), lamina_store::layer::LayerError> {
                for (digest, diff_id, chain) in rx {
                    snapshots.ensure_layer(&blobs, &digest, &diff_id, &chain)?;
                }
                Ok(())
            })
        })
        .collect();
    drop(rx);
    let on_ready = move |i: usize, layers: &[(Digest, Digest)]| {
        let chain = lamina_store::snapshot::chain_ids(layers.iter().map(|(_, d)| d));
        let _ = tx.send((layers[i].0.clone(), layers[i].1.clone(), chain[i].clone()));
    };
    let pulled = rt
        .block_on(async {
            let client = RegistryClient::new(reference.registry(), &opts)?;
            let r = pull::pull(
                &client,
                &reference,
                &blobs,
                Some(&sources),
                &popts,
                &reporter,
                &on_ready,
            )
            .await;
            drop(on_ready);
            r
        })
        .with_context(|| format!("pulling {}", reference.familiar()));
    let mut unpacked = Ok(());
    for u in unpackers {
        let r = u
            .join()
            .map_err(|_| anyhow::anyhow!(crate::output::Internal("unpack thread panicked".into())))?;
        if unpacked.is_ok() {
            unpacked = r;
        }
    }
    let pulled = pulled?;
    unpacked.with_context(|| format!("unpacking {}", reference.familiar()))?;
    let layers: Vec<(Digest, Digest)> = pulled
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .zip(pulled.diff_ids.iter().cloned())
        .collect();
    if layers.iter().all(|(d, _)| blobs.contains(d)) {
        snapshots
            .ensure_chain(&blobs, &layers)
            .with_context(|| format!("unpacking {}", reference.familiar()))?;
    }
    let mut desc = pulled.manifest.clone();
    desc.platform = None;
    let desc: lamina_store::Descriptor =
        serde_json::from_value(serde_json::to_value(&desc)?).context("converting the manifest descriptor")?;
    store
        .set_tag(&reference, desc)
        .with_context(|| format!("tagging {} in {}", reference.familiar(), root.display()))?;
    if !args.quiet {
        reporter.line(&format!(
            "Digest: {}",
            pulled.index.as_ref().unwrap_or(&pulled.manifest).digest
        ));
        reporter.line(&format!(
            "Status: downloaded {} layer(s) for {}",
            pulled.downloaded,
            reference.familiar()
        ));
    }
    Ok((reference, pulled))
}
