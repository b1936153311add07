//! `lamina load -i FILE`: load an OCI archive or docker-archive (detected; plain, gzip or zstd).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::Reference;
use lamina_store::archive::load::{LoadOptions, load, load_from};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The archive; stdin if not given.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Repository for OCI archives whose entries only carry a tag (ref.name `latest`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Don't print the names loaded.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let opts = LoadOptions {
        name: args
            .name
            .as_deref()
            .map(|n| Reference::parse(n).with_context(|| format!("invalid name {n:?}")))
            .transpose()?,
    };
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let report = match &args.input {
        Some(p) if p.as_os_str() != "-" => load(&store, p, &opts)?,
        _ => load_from(
            &store,
            std::io::stdin().lock(),
            std::path::Path::new("<stdin>"),
            &opts,
        )?,
    };
    if !args.quiet {
        for img in &report.images {
            if img.tags.is_empty() {
                crate::outln!("Loaded image ID: {}", img.id);
            }
            for t in &img.tags {
                crate::outln!("Loaded image: {}", t.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
