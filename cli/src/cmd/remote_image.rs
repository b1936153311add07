//! `docker://REF` operands: an image read straight from its registry, layers streamed, nothing stored.

use anyhow::Context;
use lamina_store::Reference;
use lamina_store::inspect::remote::open_registry;
use lamina_store::inspect::source::ImageView;
use lamina_store::registry::RegistryClient;

use super::transfer::RegistryFlags;

pub fn open(reference: &str, flags: &RegistryFlags) -> anyhow::Result<ImageView> {
    let r = Reference::parse(reference)?;
    let opts = flags.options()?;
    let runtime = super::transfer::runtime()?.handle().clone();
    let client = RegistryClient::new(r.registry(), &opts)
        .with_context(|| format!("connecting to {}", r.registry()))?;
    let mut v = open_registry(client, runtime, &r, None)?;
    v.name = format!("docker://{}", r.familiar());
    Ok(v)
}
