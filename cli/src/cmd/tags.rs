//! `lamina tags REPO`: list a repository's tags.

use std::process::ExitCode;

use anyhow::Context;
use lamina_registry::RegistryClient;
use lamina_store::Reference;

use super::transfer::RegistryFlags;

/// List the tags of a repository in a registry.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Repository (e.g. localhost:5000/app or busybox); a tag, if given, is ignored.
    pub repository: String,
    /// Output format: text (one per line) or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(_cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.repository)?;
    let opts = args.registry.options()?;
    let rt = super::transfer::runtime()?;
    let tags = rt
        .block_on(async {
            let client = RegistryClient::new(reference.registry(), &opts)?;
            client.tags(reference.repository()).await
        })
        .with_context(|| format!("listing tags of {}", reference.name()))?;
    if args.format == "json" {
        crate::outln!(
            "{}",
            serde_json::json!({"Repository": reference.name(), "Tags": tags})
        );
    } else {
        for t in tags {
            crate::outln!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
