//! `docker://REF` operands: an image read straight from its registry, layers streamed, nothing stored.

use anyhow::Context;
use lamina_inspect::remote::open_registry;
use lamina_inspect::source::ImageView;
use lamina_registry::{Descriptor, RegistryClient, RegistryError};
use lamina_store::Digest;
use lamina_store::Reference;

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

/// An image reference as `sign`, `verify`, `referrers` and `attach` take it (`docker://` optional).
pub fn image_ref(s: &str) -> anyhow::Result<Reference> {
    Reference::parse(s.strip_prefix("docker://").unwrap_or(s))
        .with_context(|| format!("invalid image reference {s:?}"))
}

/// The manifest the reference names now: its media type, digest and size.
pub async fn resolve_descriptor(client: &RegistryClient, r: &Reference) -> Result<Descriptor, RegistryError> {
    let reference = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let (bytes, ctype, digest) = client
        .get_manifest(r.repository(), &reference, r.digest())
        .await?;
    let media_type = lamina_registry::Manifest::parse(&bytes, Some(&ctype), &r.to_string())?
        .media_type()
        .to_owned();
    Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
}

/// The manifest digest the reference names now.
pub async fn resolve(client: &RegistryClient, r: &Reference) -> Result<Digest, RegistryError> {
    Ok(resolve_descriptor(client, r).await?.digest)
}
