//! `load`: an OCI archive or docker-archive (plain, gzip or zstd) → the store. The format is detected from
//! what the archive holds (`manifest.json` → docker, else `index.json` → OCI), so entries can come in any
//! order: each is processed as it streams by — `blobs/<alg>/<hex>` verified against its name, an
//! uncompressed `*.tar` layer hashed (its diff_id) while being gzip-compressed into the store, top-level
//! `*.json` configs stored by content — and the images are assembled at the end, every layer checked against
//! its config's diff_id and read once through a tar check (`tar_check.rs`). Nothing is tagged unless the
//! content of every image in the archive verified.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use super::ArchiveError;
use super::save::CONTAINERD_NAME_ANNOTATION;
use super::tar_check::TarCheck;
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::image::{Descriptor, Index, LayerDesc, REF_NAME_ANNOTATION, media};
use crate::layout::Store;
use crate::reference::Reference;
use crate::validate::decompress;

/// Limit for the archive's own JSON files (manifest.json, index.json, repositories).
const MAX_META_SIZE: u64 = 16 << 20;

/// What was loaded: each image's manifest digest, image ID, and the names it was tagged with.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub images: Vec<LoadedImage>,
}

#[derive(Debug)]
pub struct LoadedImage {
    pub manifest: Digest,
    pub id: Digest,
    pub tags: Vec<Reference>,
}

/// A layer stored from an archive entry.
#[derive(Clone, Debug)]
struct StoredLayer {
    digest: Digest,
    size: u64,
    diff_id: Option<Digest>,
    media_type: String,
}

/// `a/./b/../c` → `a/c` on the entry *name* (used as a lookup key only, never as a filesystem path).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Sniffs a stored blob's compression for its media type.
fn layer_media_type(store: &Store, d: &Digest) -> Result<&'static str, ArchiveError> {
    let mut head = [0u8; 4];
    let mut f = store.blobs().open_blob(d)?;
    let n = f.read(&mut head).map_err(|source| ArchiveError::Io {
        op: "read",
        path: store.blobs().path(d),
        source,
    })?;
    Ok(if head[..n].starts_with(&[0x1f, 0x8b]) {
        media::OCI_LAYER_GZIP
    } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        media::OCI_LAYER_ZSTD
    } else {
        media::OCI_LAYER_TAR
    })
}

/// Options of [`load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Name for images the archive gives no full name (an OCI ref.name that is only a tag is appended).
    pub name: Option<Reference>,
}

/// Loads the archive at `path`. Hold [`Store::lock_shared`] while it runs.
pub fn load(store: &Store, path: &Path, opts: &LoadOptions) -> Result<LoadReport, ArchiveError> {
    let file = std::fs::File::open(path).map_err(|source| ArchiveError::Io {
        op: "open",
        path: path.to_owned(),
        source,
    })?;
    load_from(store, file, path, opts)
}

/// Loads an archive streamed from `reader` (e.g. stdin); `path` names it in errors.
pub fn load_from(
    store: &Store,
    reader: impl Read,
    path: &Path,
    opts: &LoadOptions,
) -> Result<LoadReport, ArchiveError> {
    let plain = decompress(reader).map_err(|source| ArchiveError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    let mut archive = tar::Archive::new(plain);
    let mut meta: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut blobs: BTreeMap<String, Digest> = BTreeMap::new();
    let mut layers: BTreeMap<String, StoredLayer> = BTreeMap::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let entries = archive.entries().map_err(|source| ArchiveError::Io {
        op: "read archive",
        path: path.to_owned(),
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ArchiveError::Io {
            op: "read archive",
            path: path.to_owned(),
            source,
        })?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = clean(&raw);
        let eerr = |source| ArchiveError::Entry {
            archive: path.to_owned(),
            entry: name.clone(),
            source,
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            // docker save links identical layers to one copy.
            if let Some(target) = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
            {
                let base = if kind.is_symlink() {
                    name.rsplit_once('/').map_or("", |(d, _)| d).to_owned()
                } else {
                    String::new()
                };
                links.insert(name.clone(), clean(&format!("{base}/{target}")));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.header().size().map_err(eerr)?;
        let parts: Vec<&str> = name.split('/').collect();
        match parts.as_slice() {
            ["oci-layout"] | ["index.json"] | ["manifest.json"] | ["repositories"] => {
                if size > MAX_META_SIZE {
                    return Err(ArchiveError::TooLarge {
                        archive: path.to_owned(),
                        entry: name,
                        size,
                        limit: MAX_META_SIZE,
                    });
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(eerr)?;
                meta.insert(name, buf);
            }
            ["blobs", alg, hex] => {
                let alg = match *alg {
                    "sha256" => Algorithm::Sha256,
                    "sha512" => Algorithm::Sha512,
                    _ => continue,
                };
                let Ok(d) = Digest::new(alg, hex) else { continue };
                if !store.blobs().contains(&d) {
                    store
                        .blobs()
                        .put_verified(&mut entry, &d, Some(size))
                        .map_err(|source| ArchiveError::EntryBlob {
                            archive: path.to_owned(),
                            entry: name.clone(),
                            source,
                        })?;
                }
                blobs.insert(name, d);
            }
            [file] if file.ends_with(".json") => {
                if size > crate::image::MAX_CONFIG_SIZE {
                    continue;
                }
                let mut w = store.blobs().writer()?;
                io::copy(&mut entry, &mut w).map_err(eerr)?;
                let (d, _) = w.commit()?;
                blobs.insert(name, d);
            }
            _ if name.ends_with(".tar") => {
                let layer = store_layer(store, &mut entry).map_err(|e| match e {
                    LayerErr::Io(source) => super::layer_read_error(path, &name, source),
                    LayerErr::Blob(source) => ArchiveError::EntryBlob {
                        archive: path.to_owned(),
                        entry: name.clone(),
                        source,
                    },
                })?;
                layers.insert(name, layer);
            }
            _ => {}
        }
    }

    let resolve = |mut name: String| {
        for _ in 0..8 {
            match links.get(&name) {
                Some(t) => name = t.clone(),
                None => break,
            }
        }
        name
    };
    if let Some(m) = meta.get("manifest.json") {
        load_docker(store, path, m, &resolve, &blobs, &layers)
    } else if let Some(i) = meta.get("index.json") {
        load_oci(store, path, i, opts)
    } else {
        Err(ArchiveError::UnknownFormat {
            archive: path.to_owned(),
        })
    }
}

enum LayerErr {
    Io(io::Error),
    Blob(crate::BlobError),
}

/// Stores a layer entry: an uncompressed tar is gzip-compressed on the way in (its diff_id hashed and its
/// framing checked in the same pass); an already compressed one is stored as it is and checked later
/// ([`checked_diff_id`]).
fn store_layer(store: &Store, entry: &mut impl Read) -> Result<StoredLayer, LayerErr> {
    let mut br = io::BufReader::with_capacity(256 * 1024, entry);
    let head = io::BufRead::fill_buf(&mut br).map_err(LayerErr::Io)?;
    let compressed = head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let w = store.blobs().writer().map_err(LayerErr::Blob)?;
    if compressed {
        let mut w = w;
        io::copy(&mut br, &mut w).map_err(LayerErr::Io)?;
        let (digest, size) = w.commit().map_err(LayerErr::Blob)?;
        return Ok(StoredLayer {
            digest,
            size,
            diff_id: None,
            media_type: if gz {
                media::OCI_LAYER_GZIP
            } else {
                media::OCI_LAYER_ZSTD
            }
            .to_owned(),
        });
    }
    let mut tar = HashingReader::new(TarCheck::new(br));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut gz = crate::layer::pgzip::ParGzEncoder::new(w, 6, threads).map_err(LayerErr::Io)?;
    io::copy(&mut tar, &mut gz).map_err(LayerErr::Io)?;
    let mut w = gz.finish().map_err(LayerErr::Io)?;
    w.flush().map_err(LayerErr::Io)?;
    let (digest, size) = w.commit().map_err(LayerErr::Blob)?;
    Ok(StoredLayer {
        digest,
        size,
        diff_id: Some(tar.finish().1),
        media_type: media::OCI_LAYER_GZIP.to_owned(),
    })
}

/// The diff_id of stored layer blob `digest` (`entry` of `archive`), its tar framing checked in the same
/// streamed read: a layer that could never be unpacked is refused here, before any tag.
fn checked_diff_id(
    store: &Store,
    archive: &Path,
    entry: &str,
    digest: &Digest,
) -> Result<Digest, ArchiveError> {
    let f = store.blobs().open_blob(digest)?;
    let plain = decompress(f).map_err(|e| super::layer_read_error(archive, entry, e))?;
    let mut r = HashingReader::new(TarCheck::new(plain));
    io::copy(&mut r, &mut io::sink()).map_err(|e| super::layer_read_error(archive, entry, e))?;
    Ok(r.finish().1)
}

fn load_docker(
    store: &Store,
    path: &Path,
    manifest_json: &[u8],
    resolve: &dyn Fn(String) -> String,
    blobs: &BTreeMap<String, Digest>,
    layers: &BTreeMap<String, StoredLayer>,
) -> Result<LoadReport, ArchiveError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> =
        serde_json::from_slice(manifest_json).map_err(|source| ArchiveError::BadJson {
            archive: path.to_owned(),
            entry: "manifest.json".to_owned(),
            source,
        })?;
    let missing = |entry: &str| ArchiveError::MissingEntry {
        archive: path.to_owned(),
        entry: entry.to_owned(),
    };
    let mut checked = Vec::new();
    for e in entries {
        let config_name = resolve(clean(&e.config));
        let config_digest = blobs.get(&config_name).ok_or_else(|| missing(&e.config))?;
        let config = store.read_config(config_digest)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(ArchiveError::LayerCount {
                archive: path.to_owned(),
                config: config_digest.clone(),
                diff_ids: config.rootfs.diff_ids.len(),
                layers: e.layers.len(),
            });
        }
        let mut descs = Vec::new();
        for (name, expected) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let key = resolve(clean(name));
            let layer = if let Some(l) = layers.get(&key) {
                l.clone()
            } else if let Some(d) = blobs.get(&key) {
                StoredLayer {
                    digest: d.clone(),
                    size: store.blobs().size(d)?,
                    diff_id: None,
                    media_type: layer_media_type(store, d)?.to_owned(),
                }
            } else {
                return Err(missing(name));
            };
            let actual = match layer.diff_id {
                Some(d) => d,
                None => checked_diff_id(store, path, name, &layer.digest)?,
            };
            if &actual != expected {
                return Err(ArchiveError::DiffId {
                    archive: path.to_owned(),
                    entry: name.clone(),
                    config: config_digest.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
            descs.push(LayerDesc {
                digest: layer.digest,
                diff_id: actual,
                size: layer.size,
                media_type: layer.media_type,
            });
        }
        let img = store.write_manifest(config_digest, &descs)?;
        let tags = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        checked.push((
            img.descriptor(),
            img.manifest_digest.clone(),
            img.config_digest.clone(),
            tags,
        ));
    }
    // Every layer of every image verified: only now does anything get a name.
    let mut report = LoadReport::default();
    for (desc, manifest, id, tags) in checked {
        for r in &tags {
            store.set_tag(r, desc.clone())?;
        }
        if tags.is_empty() {
            store.add_untagged(desc)?;
        }
        report.images.push(LoadedImage { manifest, id, tags });
    }
    Ok(report)
}

/// The name an OCI index entry gives its image.
fn oci_name(d: &Descriptor, opts: &LoadOptions) -> Option<Reference> {
    if let Some(n) = d.annotations.get(CONTAINERD_NAME_ANNOTATION)
        && let Ok(r) = Reference::parse(n)
    {
        return Some(r);
    }
    let Some(n) = d.annotations.get(REF_NAME_ANNOTATION) else {
        return opts.name.clone();
    };
    if n.contains('/') || n.contains(':') {
        return Reference::parse(n).ok();
    }
    // Only a tag: it needs a repository name from the user.
    opts.name.as_ref().and_then(|r| r.with_tag(n).ok())
}

fn load_oci(
    store: &Store,
    path: &Path,
    index_json: &[u8],
    opts: &LoadOptions,
) -> Result<LoadReport, ArchiveError> {
    let index: Index = serde_json::from_slice(index_json).map_err(|source| ArchiveError::BadJson {
        archive: path.to_owned(),
        entry: "index.json".to_owned(),
        source,
    })?;
    let mut checked = Vec::new();
    for entry in &index.manifests {
        if !store.blobs().contains(&entry.digest) {
            return Err(ArchiveError::MissingEntry {
                archive: path.to_owned(),
                entry: format!(
                    "blobs/{}/{}",
                    entry.digest.algorithm().as_str(),
                    entry.digest.hex()
                ),
            });
        }
        let img = store.load_image(&entry.digest)?;
        for l in &img.layers {
            if !store.blobs().contains(&l.digest) {
                return Err(ArchiveError::MissingEntry {
                    archive: path.to_owned(),
                    entry: format!("blobs/{}/{}", l.digest.algorithm().as_str(), l.digest.hex()),
                });
            }
            let entry = format!("blobs/{}/{}", l.digest.algorithm().as_str(), l.digest.hex());
            let actual = checked_diff_id(store, path, &entry, &l.digest)?;
            if actual != l.diff_id {
                return Err(ArchiveError::DiffId {
                    archive: path.to_owned(),
                    entry: format!("blobs/{}/{}", l.digest.algorithm().as_str(), l.digest.hex()),
                    config: img.config_digest.clone(),
                    expected: l.diff_id.clone(),
                    actual,
                });
            }
        }
        let mut desc = entry.clone();
        desc.annotations.clear();
        checked.push((
            desc,
            oci_name(entry, opts),
            img.manifest_digest.clone(),
            img.config_digest.clone(),
        ));
    }
    // Every layer of every image verified: only now does anything get a name.
    let mut report = LoadReport::default();
    for (desc, name, manifest, id) in checked {
        let mut tags = Vec::new();
        if let Some(r) = name {
            store.set_tag(&r, desc)?;
            tags.push(r);
        } else {
            store.add_untagged(desc)?;
        }
        report.images.push(LoadedImage { manifest, id, tags });
    }
    Ok(report)
}
