//! `lamina import ROOTFS.tar [NAME]`: a one-layer image from a rootfs tarball, like `docker import`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::Reference;
use lamina_store::archive::import::{ImportOptions, import};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The tarball (plain, gzip or zstd); `-` reads stdin.
    file: PathBuf,
    /// Name to tag the image with.
    name: Option<String>,
    /// Dockerfile instruction to apply to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
    /// STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable.
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// History comment.
    #[arg(short, long)]
    message: Option<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let name = args
        .name
        .as_deref()
        .map(|n| Reference::parse(n).with_context(|| format!("invalid image name {n:?}")))
        .transpose()?;
    if name.as_ref().is_some_and(|n| n.digest().is_some()) {
        anyhow::bail!("cannot import to a digest reference");
    }
    let opts = ImportOptions {
        changes: args.changes.clone(),
        message: args.message.clone(),
        ..Default::default()
    };
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let img = if args.file.as_os_str() == "-" {
        import(&store, std::io::stdin().lock(), &args.file, &opts)?
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        import(&store, f, &args.file, &opts)?
    };
    match &name {
        Some(n) => store.set_tag(n, img.descriptor())?,
        None => store.add_untagged(img.descriptor())?,
    }
    crate::outln!("{}", img.config_digest);
    Ok(ExitCode::SUCCESS)
}
