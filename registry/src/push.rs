//! Push: blobs first (HEAD-skipped, mounted from a sibling repository when we know one, else streamed
//! from the blob file), in parallel; manifests last — index children by digest, then the top by tag —
//! so a registry never holds a manifest whose blobs are missing.

use futures_util::StreamExt;

use super::client::{MAX_MANIFEST_SIZE, RegistryClient};
use super::manifest::{self, Descriptor, Manifest};
use super::progress::{Outcome, Progress};
use super::{BlobSources, RegistryError};
use crate::blob::BlobStore;
use crate::digest::Digest;
use crate::reference::Reference;

/// Pushes the image (or index) `top` from `blobs` to `dest`; returns the pushed manifest's digest.
pub async fn push(
    client: &RegistryClient,
    dest: &Reference,
    blobs: &BlobStore,
    top: &Descriptor,
    sources: Option<&BlobSources>,
    progress: &dyn Progress,
) -> Result<Digest, RegistryError> {
    let tag = match (dest.tag(), dest.digest()) {
        (Some(t), _) => t.to_owned(),
        (None, Some(d)) => {
            if d != &top.digest {
                return Err(RegistryError::DigestMismatch {
                    what: "push target",
                    reference: dest.to_string(),
                    expected: d.clone(),
                    actual: top.digest.clone(),
                });
            }
            d.to_string()
        }
        (None, None) => "latest".to_owned(),
    };
    push_tree(client, dest, blobs, top, Some(&tag), sources, progress).await?;
    if let Some(s) = sources {
        s.record(&top.digest, &dest.name());
    }
    Ok(top.digest.clone())
}

async fn push_tree(
    client: &RegistryClient,
    dest: &Reference,
    blobs: &BlobStore,
    desc: &Descriptor,
    tag: Option<&str>,
    sources: Option<&BlobSources>,
    progress: &dyn Progress,
) -> Result<(), RegistryError> {
    let bytes = blobs
        .read_small(&desc.digest, MAX_MANIFEST_SIZE)
        .map_err(|source| RegistryError::Blob {
            digest: desc.digest.clone(),
            source,
        })?;
    let parsed = Manifest::parse(&bytes, Some(&desc.media_type), &dest.to_string())?;
    match &parsed {
        Manifest::Index { manifests, .. } => {
            for child in manifests {
                if !blobs.contains(&child.digest) {
                    // Pulls keep only the selected platform; pushing the index would dangle.
                    return Err(RegistryError::Blob {
                        digest: child.digest.clone(),
                        source: crate::blob::BlobError::NotFound(child.digest.clone()),
                    });
                }
                Box::pin(push_tree(client, dest, blobs, child, None, sources, progress)).await?;
            }
        }
        Manifest::Image { .. } => push_blobs(client, dest, blobs, &parsed, sources, progress).await?,
    }
    let reference = tag.map(str::to_owned).unwrap_or_else(|| desc.digest.to_string());
    progress.message(&format!("Writing manifest {}", desc.digest));
    client
        .put_manifest(dest.repository(), &reference, &bytes, parsed.media_type())
        .await?;
    Ok(())
}

async fn push_blobs(
    client: &RegistryClient,
    dest: &Reference,
    blobs: &BlobStore,
    parsed: &Manifest,
    sources: Option<&BlobSources>,
    progress: &dyn Progress,
) -> Result<(), RegistryError> {
    let repo = dest.repository();
    let jobs = client.options().jobs.max(1);
    let list: Vec<&Descriptor> = parsed.blobs();
    let mut results = futures_util::stream::iter(list.into_iter().enumerate())
        .map(|(i, d)| async move {
            let kind = if i == 0 { "config" } else { "layer" };
            if i > 0 && manifest::is_foreign_layer(&d.media_type) && !blobs.contains(&d.digest) {
                progress.start(&d.digest, d.size, kind);
                progress.finish(&d.digest, Outcome::Skipped);
                return Ok(());
            }
            let path = blobs.path(&d.digest);
            if !path.is_file() {
                return Err(RegistryError::Blob {
                    digest: d.digest.clone(),
                    source: crate::blob::BlobError::NotFound(d.digest.clone()),
                });
            }
            let mount_from = sources.and_then(|s| s.mount_source(&d.digest, client.registry(), repo));
            progress.start(&d.digest, d.size, kind);
            let outcome = client
                .push_blob(repo, d, &path, mount_from.as_deref(), progress)
                .await?;
            progress.finish(&d.digest, outcome);
            if let Some(s) = sources {
                s.record(&d.digest, &dest.name());
            }
            Ok::<_, RegistryError>(())
        })
        .buffer_unordered(jobs);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}
