//! `lamina manifest`: assemble multi-platform indexes from separately built images in the store, as
//! `buildah manifest` / `docker manifest` do, and inspect or push them.
//!
//! A list is an OCI image index in the store, tagged LIST; each change writes a new index blob and moves
//! the tag (blobs are content-addressed, so an old index stays valid until GC). `inspect` prints a local
//! list, else asks the registry.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use lamina_registry::{Platform, RegistryClient, pull};
use lamina_store::image::{Descriptor, Parsed};
use lamina_store::{Reference, Store};

use super::transfer::RegistryFlags;

/// Create, change, inspect and push manifest lists (image indexes).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Create list LIST from images in the store (each under its config's platform).
    Create(CreateArgs),
    /// Add an image of the store to list LIST (replacing an entry of the same platform).
    Add(AddArgs),
    /// Change the platform or annotations of an image's entry in LIST.
    Annotate(AddArgs),
    /// Print a list from the store, or the manifest (or index) a registry reference points to.
    Inspect(InspectArgs),
    /// Push LIST and every image it names to DEST.
    Push(PushArgs),
    /// Remove list LIST from the store (its images stay).
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    pub list: String,
    pub images: Vec<String>,
    /// Replace LIST if it exists.
    #[arg(long)]
    pub amend: bool,
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    pub list: String,
    pub image: String,
    /// Operating system to record (default: the image config's).
    #[arg(long)]
    pub os: Option<String>,
    /// Architecture to record (default: the image config's).
    #[arg(long)]
    pub arch: Option<String>,
    /// Architecture variant to record (default: the image config's).
    #[arg(long)]
    pub variant: Option<String>,
    /// Annotation on the entry (`KEY=VALUE`); repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    pub reference: String,
    /// Resolve an index to the manifest for this platform (os/arch[/variant]); remote only.
    #[arg(long)]
    pub platform: Option<String>,
    /// Print the bytes exactly as stored or as the registry sent them.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    pub list: String,
    /// Destination (`registry/repo:tag`, `docker://` optional); default: LIST's own name.
    pub dest: Option<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    pub lists: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Sub::Create(a) => create(cli, a),
        Sub::Add(a) => add(cli, a, false),
        Sub::Annotate(a) => add(cli, a, true),
        Sub::Inspect(a) => inspect(cli, a),
        Sub::Push(a) => {
            let pushed = super::push::push_image(cli, &a.list, a.dest.as_deref(), &a.registry)?;
            crate::outln!("{}", pushed.digest);
            Ok(ExitCode::SUCCESS)
        }
        Sub::Rm(a) => {
            let store = super::open_store(cli)?;
            for l in &a.lists {
                let r = list_ref(l)?;
                index_of(&store, &r)?;
                store.untag(&r).with_context(|| format!("removing {l}"))?;
                crate::outln!("{l}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list_ref(list: &str) -> anyhow::Result<Reference> {
    Reference::parse(list).with_context(|| format!("invalid list name {list:?}"))
}

/// The entries of the index LIST names in the store.
fn index_of(store: &Store, list: &Reference) -> anyhow::Result<Vec<Descriptor>> {
    let name = list.to_string();
    let found = store
        .resolve(&name)
        .with_context(|| format!("manifest list {} is not in the store", list.familiar()))?;
    match store.read_manifest(found.digest(), Some(&found.descriptor.media_type))? {
        Parsed::Index(idx) => Ok(idx.manifests),
        Parsed::Manifest(_) => bail!("{} is an image, not a manifest list", list.familiar()),
    }
}

/// An image of the store as an index entry, under its config's platform.
fn entry_for(store: &Store, image: &str) -> anyhow::Result<Descriptor> {
    let found = store
        .resolve(image)
        .with_context(|| format!("image {image} is not in the store"))?;
    if let Parsed::Index(_) = store.read_manifest(found.digest(), None)? {
        bail!("{image} is itself a manifest list: add its images one by one");
    }
    let img = store
        .load_image(found.digest())
        .with_context(|| format!("loading {image}"))?;
    Ok(Descriptor {
        platform: Some(img.config.platform()),
        ..img.descriptor()
    })
}

fn write_list(store: &Store, list: &Reference, manifests: Vec<Descriptor>) -> anyhow::Result<()> {
    let index = store.write_image_index(manifests)?;
    store
        .set_tag(list, index.clone())
        .with_context(|| format!("tagging {}", list.familiar()))?;
    crate::outln!("{}", index.digest);
    Ok(())
}

fn create(cli: &crate::Cli, a: &CreateArgs) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let list = list_ref(&a.list)?;
    if !a.amend && store.resolve(&list.to_string()).is_ok() {
        bail!(
            "{} already exists in the store (pass --amend to replace it)",
            list.familiar()
        );
    }
    let mut manifests: Vec<Descriptor> = Vec::new();
    for i in &a.images {
        put(&mut manifests, entry_for(&store, i)?);
    }
    write_list(&store, &list, manifests)?;
    Ok(ExitCode::SUCCESS)
}

/// Adds `entry`, replacing one of the same digest or the same platform (one image per platform).
fn put(manifests: &mut Vec<Descriptor>, entry: Descriptor) {
    let plat = entry.platform.as_ref().map(|p| p.to_string());
    manifests.retain(|d| d.digest != entry.digest && d.platform.as_ref().map(|p| p.to_string()) != plat);
    manifests.push(entry);
}

fn add(cli: &crate::Cli, a: &AddArgs, annotate: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let list = list_ref(&a.list)?;
    let mut manifests = index_of(&store, &list)?;
    let mut entry = entry_for(&store, &a.image)?;
    if annotate {
        entry = manifests
            .iter()
            .find(|d| d.digest == entry.digest)
            .cloned()
            .with_context(|| format!("{} is not in {}", a.image, list.familiar()))?;
    }
    let mut p = entry
        .platform
        .clone()
        .unwrap_or_else(|| Platform::new("linux", "", None));
    if let Some(os) = &a.os {
        p.os = os.clone();
    }
    if let Some(arch) = &a.arch {
        p.architecture = arch.clone();
    }
    if let Some(v) = &a.variant {
        p.variant = Some(v.clone()).filter(|v| !v.is_empty());
    }
    entry.platform = Some(p.normalized());
    let mut notes = BTreeMap::new();
    for kv in &a.annotations {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("invalid --annotation {kv:?}: expected KEY=VALUE"))?;
        notes.insert(k.to_string(), v.to_string());
    }
    entry.annotations.extend(notes);
    if annotate {
        // In place: annotating never drops another entry.
        for d in manifests.iter_mut().filter(|d| d.digest == entry.digest) {
            *d = entry.clone();
        }
    } else {
        put(&mut manifests, entry);
    }
    write_list(&store, &list, manifests)?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(cli: &crate::Cli, a: &InspectArgs) -> anyhow::Result<ExitCode> {
    if a.platform.is_none()
        && let Some(bytes) = local_list(cli, &a.reference)
    {
        return print(&bytes, a.raw);
    }
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
    print(&bytes, a.raw)
}

/// The bytes of a manifest list the store has under `name` (not images: those are `lamina inspect`'s).
fn local_list(cli: &crate::Cli, name: &str) -> Option<Vec<u8>> {
    let store = Store::open(&cli.store_root()).ok()?;
    let found = store.resolve(name).ok()?;
    match store.read_manifest(found.digest(), None).ok()? {
        Parsed::Index(_) => store
            .blobs()
            .read_small(found.digest(), lamina_store::image::MAX_MANIFEST_SIZE)
            .ok(),
        Parsed::Manifest(_) => None,
    }
}

fn print(bytes: &[u8], raw: bool) -> anyhow::Result<ExitCode> {
    if raw {
        use std::io::Write;
        std::io::stdout().write_all(bytes)?;
    } else {
        let v: serde_json::Value = serde_json::from_slice(bytes).context("manifest is not JSON")?;
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}
