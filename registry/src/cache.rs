//! Build cache as an OCI artifact, for `--cache-to`/`--cache-from` (`type=registry,ref=R` and
//! `type=local,dest=DIR|src=DIR`).
//!
//! The artifact is an OCI image manifest with `artifactType` [`ARTIFACT_TYPE`]; its config blob
//! ([`CONFIG_TYPE`]) is `{"records": [...]}` — the builder's cache records as JSON, opaque to this module
//! except for the layer descriptor each one carries — and its `layers` are the distinct layer blobs, so
//! the registry keeps them alive and garbage collection leaves them be. Import reads only the manifest
//! and the config blob; a layer is fetched when a cache hit needs it ([`fetch_layer`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::client::RegistryClient;
use super::manifest::{Descriptor, Manifest, OCI_MANIFEST};
use super::progress::{Outcome, Progress};
use super::{RegistryError, layout};
use crate::blob::BlobStore;
use crate::digest::Digest;
use crate::reference::Reference;

pub const ARTIFACT_TYPE: &str = "application/vnd.lamina.buildcache.v1";
pub const CONFIG_TYPE: &str = "application/vnd.lamina.buildcache.config.v1+json";
const MAX_RECORDS_SIZE: u64 = 64 << 20;

/// One exported record: the builder's record (any JSON) and the layer blob it points at.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CacheEntry {
    pub record: serde_json::Value,
    pub layer: Descriptor,
}

#[derive(Serialize, Deserialize)]
struct RecordsBlob {
    records: Vec<CacheEntry>,
}

fn artifact(
    entries: &[CacheEntry],
    blobs: &BlobStore,
) -> Result<(Vec<u8>, Descriptor, Vec<Descriptor>), RegistryError> {
    let config = serde_json::to_vec(&RecordsBlob {
        records: entries.to_vec(),
    })
    .expect("JSON values serialize");
    let (cd, cs) = blobs.put_bytes(&config).map_err(|source| RegistryError::Blob {
        digest: Digest::sha256_of(&config),
        source,
    })?;
    let config_desc = Descriptor::new(CONFIG_TYPE, cd, cs);
    let mut layers: Vec<Descriptor> = Vec::new();
    for e in entries {
        if !layers.iter().any(|l| l.digest == e.layer.digest) {
            let mut l = e.layer.clone();
            l.platform = None;
            layers.push(l);
        }
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config_desc,
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).expect("JSON values serialize");
    Ok((bytes, config_desc, layers))
}

/// Pushes the cache for `entries` to `reference` (layer blobs from `blobs`); returns the manifest digest.
pub async fn export(
    client: &RegistryClient,
    reference: &Reference,
    blobs: &BlobStore,
    entries: &[CacheEntry],
    progress: &dyn Progress,
) -> Result<Digest, RegistryError> {
    let (bytes, config, layers) = artifact(entries, blobs)?;
    let repo = reference.repository();
    for d in layers.iter().chain([&config]) {
        progress.start(&d.digest, d.size, "cache");
        let outcome = client
            .push_blob(repo, d, &blobs.path(&d.digest), None, progress)
            .await?;
        progress.finish(&d.digest, outcome);
    }
    let tag = reference.tag().unwrap_or("latest");
    client.put_manifest(repo, tag, &bytes, OCI_MANIFEST).await
}

/// Writes the cache into an OCI layout directory (`type=local,dest=DIR`), tagged `latest`.
pub fn export_local(dir: &Path, blobs: &BlobStore, entries: &[CacheEntry]) -> Result<Digest, RegistryError> {
    let dst = BlobStore::open(dir).map_err(|source| RegistryError::Blob {
        digest: Digest::sha256_of(b""),
        source,
    })?;
    let (bytes, config, layers) = artifact(entries, blobs)?;
    for d in layers.iter().chain([&config]) {
        if dst.contains(&d.digest) {
            continue;
        }
        let berr = |source| RegistryError::Blob {
            digest: d.digest.clone(),
            source,
        };
        let f = blobs.open_blob(&d.digest).map_err(berr)?;
        dst.put_verified(std::io::BufReader::new(f), &d.digest, Some(d.size))
            .map_err(berr)?;
    }
    let (md, ms) = dst.put_bytes(&bytes).map_err(|source| RegistryError::Blob {
        digest: Digest::sha256_of(&bytes),
        source,
    })?;
    let mut desc = Descriptor::new(OCI_MANIFEST, md.clone(), ms);
    desc.artifact_type = Some(ARTIFACT_TYPE.to_owned());
    layout::set_ref(dir, &desc, Some("latest"))?;
    Ok(md)
}

fn parse_records(bytes: &[u8], what: &str) -> Result<Vec<CacheEntry>, RegistryError> {
    let blob: RecordsBlob =
        serde_json::from_slice(bytes).map_err(|source| RegistryError::InvalidManifest {
            reference: format!("{what} (cache records)"),
            source,
        })?;
    Ok(blob.records)
}

fn records_desc(bytes: &[u8], what: &str) -> Result<Descriptor, RegistryError> {
    match Manifest::parse(bytes, Some(OCI_MANIFEST), what)? {
        Manifest::Image { config, .. } if config.media_type == CONFIG_TYPE => Ok(config),
        m => Err(RegistryError::UnsupportedMediaType {
            reference: what.to_owned(),
            media_type: match m {
                Manifest::Image { config, .. } => config.media_type,
                Manifest::Index { media_type, .. } => media_type,
            },
        }),
    }
}

/// Reads the records of the cache at `reference`; `Ok(None)` when there is no cache there yet.
/// Only the manifest and the records blob are fetched (the latter into `blobs`, verified).
pub async fn import(
    client: &RegistryClient,
    reference: &Reference,
    blobs: &BlobStore,
) -> Result<Option<Vec<CacheEntry>>, RegistryError> {
    let repo = reference.repository();
    let tag = reference
        .digest()
        .map(|d| d.to_string())
        .or(reference.tag().map(str::to_owned))
        .unwrap_or_else(|| "latest".into());
    let bytes = match client.get_manifest(repo, &tag, reference.digest()).await {
        Ok((b, _, _)) => b,
        Err(RegistryError::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let config = records_desc(&bytes, &reference.to_string())?;
    if config.size > MAX_RECORDS_SIZE {
        return Err(RegistryError::ManifestTooLarge {
            reference: reference.to_string(),
            size: Some(config.size),
            limit: MAX_RECORDS_SIZE,
        });
    }
    client
        .fetch_blob(repo, &config, blobs, &super::NoProgress)
        .await?;
    let data = blobs
        .read_small(&config.digest, MAX_RECORDS_SIZE)
        .map_err(|source| RegistryError::Blob {
            digest: config.digest.clone(),
            source,
        })?;
    parse_records(&data, &reference.to_string()).map(Some)
}

/// Reads the records of a local cache directory (`type=local,src=DIR`); `Ok(None)` if there is none.
pub fn import_local(dir: &Path) -> Result<Option<Vec<CacheEntry>>, RegistryError> {
    if !dir.join("index.json").is_file() {
        return Ok(None);
    }
    let src = BlobStore::read_only(dir);
    let top = layout::find_ref(dir, Some("latest"))?;
    // The directory is untrusted input like a registry: every blob read is checked against its digest.
    let read = |d: &Digest| {
        let data = src
            .read_small(d, MAX_RECORDS_SIZE)
            .map_err(|source| RegistryError::Blob {
                digest: d.clone(),
                source,
            })?;
        let actual = Digest::sha256_of(&data);
        if d.algorithm() == actual.algorithm() && &actual != d {
            return Err(RegistryError::DigestMismatch {
                what: "cache blob",
                reference: dir.display().to_string(),
                expected: d.clone(),
                actual,
            });
        }
        Ok(data)
    };
    let what = dir.display().to_string();
    let config = records_desc(&read(&top.digest)?, &what)?;
    parse_records(&read(&config.digest)?, &what).map(Some)
}

/// Fetches one cached layer on demand (a cache hit whose blob isn't in the store).
pub async fn fetch_layer(
    client: &RegistryClient,
    reference: &Reference,
    layer: &Descriptor,
    blobs: &BlobStore,
    progress: &dyn Progress,
) -> Result<Outcome, RegistryError> {
    progress.start(&layer.digest, layer.size, "layer");
    let o = client
        .fetch_blob(reference.repository(), layer, blobs, progress)
        .await?;
    progress.finish(&layer.digest, o);
    Ok(o)
}

/// Copies one cached layer out of a local cache directory into the store.
pub fn fetch_layer_local(dir: &Path, layer: &Descriptor, blobs: &BlobStore) -> Result<(), RegistryError> {
    if blobs.contains(&layer.digest) {
        return Ok(());
    }
    let src = BlobStore::read_only(dir);
    let berr = |source| RegistryError::Blob {
        digest: layer.digest.clone(),
        source,
    };
    let f = src.open_blob(&layer.digest).map_err(berr)?;
    blobs
        .put_verified(std::io::BufReader::new(f), &layer.digest, Some(layer.size))
        .map_err(berr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_round_trip() {
        let store = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(store.path()).unwrap();
        let (d, n) = blobs.put_bytes(b"layer bytes").unwrap();
        let entries = vec![CacheEntry {
            record: serde_json::json!({"key": "k1", "created_by": "RUN x"}),
            layer: Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", d.clone(), n),
        }];
        let out = tempfile::tempdir().unwrap();
        export_local(out.path(), &blobs, &entries).unwrap();
        assert_eq!(import_local(out.path()).unwrap().unwrap(), entries);
        let other = tempfile::tempdir().unwrap();
        let b2 = BlobStore::open(other.path()).unwrap();
        fetch_layer_local(out.path(), &entries[0].layer, &b2).unwrap();
        assert!(b2.contains(&d));
        assert_eq!(import_local(other.path().join("none").as_path()).unwrap(), None);
    }
}
