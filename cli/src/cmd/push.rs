//! `lamina push IMAGE [DEST]`: upload an image from the store to a registry.

use std::process::ExitCode;

use anyhow::Context;
use lamina_registry::{BlobSources, RegistryClient, push};
use lamina_store::Reference;

use super::transfer::RegistryFlags;

/// Push an image to a registry.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image in the store.
    pub image: String,
    /// Where to push (default: the image's own name).
    pub dest: Option<String>,
    /// Print only the pushed manifest digest on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the pushed digest to this file (like `--digestfile` of buildah/skopeo).
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let mut flags = args.registry.clone();
    if args.quiet {
        flags.progress = "quiet".into();
    }
    let pushed = push_image(cli, &args.image, args.dest.as_deref(), &flags)?;
    let (dest, digest, size) = (pushed.dest, pushed.digest, pushed.size);
    if let Some(f) = &args.digestfile {
        std::fs::write(f, digest.to_string()).with_context(|| format!("writing {}", f.display()))?;
    }
    if args.quiet {
        crate::outln!("{digest}");
    } else {
        crate::outln!(
            "{}: digest: {digest} size: {}",
            dest.tag().unwrap_or("latest"),
            size
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What [`push_image`] pushed.
pub struct Pushed {
    pub dest: Reference,
    pub digest: lamina_store::Digest,
    pub size: u64,
}

/// Pushes `image` from the store to `dest` (default: the image's own name); shared by `push` and
/// `build --push`. Progress goes to stderr per `flags.progress`.
pub fn push_image(
    cli: &crate::Cli,
    image: &str,
    dest: Option<&str>,
    flags: &RegistryFlags,
) -> anyhow::Result<Pushed> {
    let root = cli.store_root();
    let store = super::open_store(cli)?;
    let blobs = store.blobs().clone();
    let found = store
        .resolve(image)
        .with_context(|| format!("looking up {image} in the store"))?;
    let source = match &found.reference {
        Some(r) => r.clone(),
        None => Reference::parse(image)?,
    };
    let dest = match dest {
        Some(d) => Reference::parse(d.strip_prefix("docker://").unwrap_or(d))?,
        None => source.clone(),
    };
    let mut top: lamina_registry::Descriptor =
        serde_json::from_value(serde_json::to_value(&found.descriptor)?)
            .context("converting the manifest descriptor")?;
    top.annotations.remove(lamina_registry::layout::REF_NAME);
    let opts = flags.options()?;
    let reporter = flags.reporter();
    reporter.line(&format!("Pushing {} to {}", source.familiar(), dest.familiar()));
    let sources = BlobSources::new(&root);
    let rt = super::transfer::runtime()?;
    let digest = rt
        .block_on(async {
            let client = RegistryClient::new(dest.registry(), &opts)?;
            push::push(&client, &dest, &blobs, &top, Some(&sources), &reporter).await
        })
        .with_context(|| format!("pushing {}", dest.familiar()))?;
    Ok(Pushed {
        dest,
        digest,
        size: top.size,
    })
}
