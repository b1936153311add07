//! Pull: manifest (platform picked from an index) → config → layers, in parallel, into the blob store.
//!
//! Every blob is verified before it lands (see `RegistryClient::fetch_blob`); the manifest bytes are stored
//! verbatim so the image keeps its registry digest. Layers already in the store are not fetched. As each
//! layer lands, `on_ready(i, layers)` says so, and the caller can unpack it while the rest still download.

use futures_util::StreamExt;

use super::client::RegistryClient;
use super::manifest::{self, ConfigRootfs, Descriptor, Manifest, Platform};
use super::progress::{Outcome, Progress};
use super::{BlobSources, RegistryError};
use crate::blob::BlobStore;
use crate::digest::Digest;
use crate::reference::Reference;

/// Largest image config we read into memory (after it was verified on disk).
const MAX_CONFIG_SIZE: u64 = 64 << 20;

/// `on_ready(i, layers)`: layer `i` of `layers` ((blob digest, diff_id), bottom first) is in the store.
pub type LayerReady = dyn Fn(usize, &[(Digest, Digest)]) + Send + Sync;

#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Platform to pick from an index; default: the host's.
    pub platform: Option<Platform>,
    /// Fetch non-distributable (foreign) layers too.
    pub include_foreign: bool,
}

/// What a pull stored.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The image manifest (platform-specific).
    pub manifest: Descriptor,
    /// The index the reference named, if it named one (stored too).
    pub index: Option<Descriptor>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// From the config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
    /// Layers fetched (the rest were already in the store or skipped).
    pub downloaded: usize,
}

/// Resolves `reference` to an image manifest, storing the manifest (and index) blobs.
pub async fn resolve_manifest(
    client: &RegistryClient,
    reference: &Reference,
    platform: Option<&Platform>,
    blobs: Option<&BlobStore>,
) -> Result<(Descriptor, Option<Descriptor>, Manifest), RegistryError> {
    let repo = reference.repository();
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let (bytes, ctype, digest) = client
        .get_manifest(repo, &tag_or_digest, reference.digest())
        .await?;
    let parsed = Manifest::parse(&bytes, Some(&ctype), &reference.to_string())?;
    let store = |bytes: &[u8], d: &Digest| -> Result<(), RegistryError> {
        if let Some(b) = blobs {
            b.put_verified(bytes, d, Some(bytes.len() as u64))
                .map_err(|source| RegistryError::Blob {
                    digest: d.clone(),
                    source,
                })?;
        }
        Ok(())
    };
    store(&bytes, &digest)?;
    let top = Descriptor::new(parsed.media_type(), digest, bytes.len() as u64);
    match parsed {
        Manifest::Image { .. } => Ok((top, None, parsed)),
        Manifest::Index { ref manifests, .. } => {
            let want = platform.cloned().unwrap_or_else(Platform::host);
            let pick = manifest::select_platform(&want, manifests, &reference.to_string())?.clone();
            let (bytes, ctype, digest) = client
                .get_manifest(repo, &pick.digest.to_string(), Some(&pick.digest))
                .await?;
            let child = Manifest::parse(
                &bytes,
                Some(if ctype.is_empty() {
                    pick.media_type.as_str()
                } else {
                    ctype.as_str()
                }),
                &reference.to_string(),
            )?;
            if let Manifest::Index { .. } = child {
                return Err(RegistryError::UnsupportedMediaType {
                    reference: reference.to_string(),
                    media_type: "nested index".into(),
                });
            }
            store(&bytes, &digest)?;
            let mut desc = Descriptor::new(child.media_type(), digest, bytes.len() as u64);
            desc.platform = pick.platform.clone();
            Ok((desc, Some(top), child))
        }
    }
}

/// Pulls an image into `blobs`. `on_ready(i, layers)` is called as soon as layer `i` is in the store
/// (`layers` = every (blob digest, diff_id), bottom first); it runs on the async workers, so it should only
/// hand work to another thread.
pub async fn pull(
    client: &RegistryClient,
    reference: &Reference,
    blobs: &BlobStore,
    sources: Option<&BlobSources>,
    opts: &PullOptions,
    progress: &dyn Progress,
    on_ready: &LayerReady,
) -> Result<Pulled, RegistryError> {
    let (manifest_desc, index, parsed) =
        resolve_manifest(client, reference, opts.platform.as_ref(), Some(blobs)).await?;
    let Manifest::Image { config, layers, .. } = parsed else {
        unreachable!("resolve_manifest returns image manifests")
    };
    let repo = reference.repository();
    let name = reference.to_string();
    for l in &layers {
        if manifest::is_foreign_layer(&l.media_type) && !opts.include_foreign && !blobs.contains(&l.digest) {
            progress.start(&l.digest, l.size, "layer");
            progress.finish(&l.digest, Outcome::Skipped);
        }
    }

    // Refused before the download: the config is read into memory whole once it is here.
    if config.size > MAX_CONFIG_SIZE {
        return Err(RegistryError::ConfigTooLarge {
            reference: name.clone(),
            digest: config.digest.clone(),
            size: config.size,
            limit: MAX_CONFIG_SIZE,
        });
    }
    progress.start(&config.digest, config.size, "config");
    let outcome = client.fetch_blob(repo, &config, blobs, progress).await?;
    progress.finish(&config.digest, outcome);
    let cfg_bytes = blobs
        .read_small(&config.digest, MAX_CONFIG_SIZE)
        .map_err(|source| RegistryError::Blob {
            digest: config.digest.clone(),
            source,
        })?;
    let cfg: ConfigRootfs =
        serde_json::from_slice(&cfg_bytes).map_err(|source| RegistryError::InvalidManifest {
            reference: format!("{name} (config {})", config.digest),
            source,
        })?;
    let diff_ids = cfg.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    if diff_ids.len() != layers.len() {
        return Err(RegistryError::UnsupportedMediaType {
            reference: name,
            media_type: format!(
                "config lists {} diff_ids for {} layers",
                diff_ids.len(),
                layers.len()
            ),
        });
    }

    let pairs: Vec<(Digest, Digest)> = layers
        .iter()
        .map(|l| l.digest.clone())
        .zip(diff_ids.iter().cloned())
        .collect();
    let mark = |i: usize| on_ready(i, &pairs);
    let jobs = client.options().jobs.max(1);
    let mut downloaded = 0;
    let mut results = futures_util::stream::iter(layers.iter().enumerate())
        .map(|(i, l)| {
            let name = &name;
            async move {
                if manifest::is_foreign_layer(&l.media_type)
                    && !opts.include_foreign
                    && !blobs.contains(&l.digest)
                {
                    return Ok::<_, RegistryError>((i, Outcome::Skipped));
                }
                if blobs.contains(&l.digest) {
                    progress.start(&l.digest, l.size, "layer");
                    progress.finish(&l.digest, Outcome::Exists);
                    return Ok((i, Outcome::Exists));
                }
                if !manifest::is_foreign_layer(&l.media_type) || opts.include_foreign {
                    progress.start(&l.digest, l.size, "layer");
                }
                let outcome = client
                    .fetch_blob(repo, l, blobs, progress)
                    .await
                    .map_err(|e| match e {
                        RegistryError::Status { status: 404, .. }
                            if manifest::is_foreign_layer(&l.media_type) =>
                        {
                            RegistryError::ForeignLayer {
                                reference: name.clone(),
                                digest: l.digest.clone(),
                                media_type: l.media_type.clone(),
                            }
                        }
                        e => e,
                    })?;
                progress.finish(&l.digest, outcome);
                Ok((i, outcome))
            }
        })
        .buffer_unordered(jobs);
    while let Some(r) = results.next().await {
        let (i, outcome) = r?;
        if outcome == Outcome::Downloaded {
            downloaded += 1;
        }
        if outcome != Outcome::Skipped {
            mark(i);
        }
    }
    drop(results);
    if let Some(s) = sources {
        let repo_name = reference.name();
        for d in layers.iter().map(|l| &l.digest).chain([&config.digest]) {
            s.record(d, &repo_name);
        }
    }
    Ok(Pulled {
        manifest: manifest_desc,
        index,
        config,
        layers,
        diff_ids,
        downloaded,
    })
}
