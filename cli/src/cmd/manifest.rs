//! `lamina manifest inspect REF`: print a remote manifest (or index).

use std::process::ExitCode;

use anyhow::Context;
use lamina_store::Reference;
use lamina_store::registry::{Platform, RegistryClient, pull};

use super::transfer::RegistryFlags;

/// Work with remote manifests.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Print the manifest (or index) a reference points to.
    Inspect(InspectArgs),
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    pub reference: String,
    /// Resolve an index to the manifest for this platform (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print the bytes exactly as the registry sent them.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(_cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let Sub::Inspect(a) = &args.command;
    let reference = Reference::parse(&a.reference)?;
    let opts = a.registry.options()?;
    let platform = a.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let rt = super::transfer::runtime()?;
    let bytes = rt
        .block_on(async {
            let client = RegistryClient::new(reference.registry(), &opts)?;
            let repo = reference.repository();
            let target = reference
                .digest()
                .map(|d| d.to_string())
                .or(reference.tag().map(str::to_owned))
                .unwrap_or_else(|| "latest".into());
            match &platform {
                None => client
                    .get_manifest(repo, &target, reference.digest())
                    .await
                    .map(|(b, _, _)| b),
                Some(p) => {
                    let (desc, _, _) = pull::resolve_manifest(&client, &reference, Some(p), None).await?;
                    client
                        .get_manifest(repo, &desc.digest.to_string(), Some(&desc.digest))
                        .await
                        .map(|(b, _, _)| b)
                }
            }
        })
        .with_context(|| format!("fetching the manifest of {}", reference.familiar()))?;
    if a.raw {
        use std::io::Write;
        std::io::stdout().write_all(&bytes)?;
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes).context("manifest is not JSON")?;
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}
