//! Where inspected images come from, read in place without touching any store: OCI layouts (the lamina store
//! root is one), `oci-archive` and `docker-archive` tar files (blobs read at their offsets inside the tar), and
//! single layer files. An [`ImageView`] hands out each layer as a decompressed stream.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::InspectError;
use crate::digest::Digest;
use crate::reference::Reference;

const MAX_JSON: u64 = 32 << 20;
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Where a blob's bytes are.
#[derive(Clone, Debug)]
enum BlobLoc {
    File(PathBuf),
    InTar {
        archive: PathBuf,
        offset: u64,
        size: u64,
    },
    Remote(std::sync::Arc<super::remote::RemoteBlob>),
}

impl BlobLoc {
    fn open(&self) -> Result<Box<dyn Read + Send>, InspectError> {
        match self {
            BlobLoc::File(p) => Ok(Box::new(File::open(p).map_err(io_err("opening", p))?)),
            BlobLoc::InTar {
                archive,
                offset,
                size,
            } => {
                let mut f = File::open(archive).map_err(io_err("opening", archive))?;
                f.seek(SeekFrom::Start(*offset))
                    .map_err(io_err("seeking in", archive))?;
                Ok(Box::new(f.take(*size)))
            }
            BlobLoc::Remote(blob) => Ok(blob.open()),
        }
    }

    fn read_json(&self, what: &str) -> Result<(Value, Vec<u8>), InspectError> {
        let mut bytes = Vec::new();
        self.open()?
            .take(MAX_JSON)
            .read_to_end(&mut bytes)
            .map_err(|source| InspectError::Io {
                op: "reading",
                path: PathBuf::from(what),
                source,
            })?;
        let v = serde_json::from_slice(&bytes).map_err(|source| InspectError::Json {
            what: what.to_string(),
            source,
        })?;
        Ok((v, bytes))
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InspectError + 'a {
    move |source| InspectError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One layer of an [`ImageView`].
#[derive(Clone, Debug)]
pub struct LayerRef {
    /// Digest of the (possibly compressed) blob, when known (docker archives name layers by path).
    pub digest: Option<Digest>,
    /// sha256 of the uncompressed tar, from the config's rootfs.
    pub diff_id: Option<Digest>,
    /// Size of the blob as stored.
    pub size: u64,
    pub media_type: String,
    loc: BlobLoc,
}

/// An image (or a lone layer) opened for reading.
#[derive(Clone, Debug)]
pub struct ImageView {
    /// How the user named it, for messages.
    pub name: String,
    pub manifest_digest: Option<Digest>,
    pub manifest: Option<Value>,
    pub config_digest: Option<Digest>,
    /// The config blob; `Value::Null` for a lone layer.
    pub config: Value,
    pub layers: Vec<LayerRef>,
    /// Tags the source records for this image.
    pub tags: Vec<String>,
}

/// Blobs by digest in an OCI layout or archive.
trait Blobs {
    fn locate(&self, digest: &Digest) -> Result<BlobLoc, InspectError>;
    fn location(&self) -> String;
}

struct LayoutBlobs(PathBuf);

impl Blobs for LayoutBlobs {
    fn locate(&self, digest: &Digest) -> Result<BlobLoc, InspectError> {
        let p = self
            .0
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex());
        if p.is_file() {
            Ok(BlobLoc::File(p))
        } else {
            Err(InspectError::BlobMissing {
                digest: digest.clone(),
                location: self.location(),
            })
        }
    }
    fn location(&self) -> String {
        self.0.display().to_string()
    }
}

/// A tar archive's regular files by cleaned name → (offset, size), indexed once without reading contents.
struct TarIndex {
    archive: PathBuf,
    files: HashMap<String, (u64, u64)>,
}

impl TarIndex {
    fn open(archive: &Path) -> Result<TarIndex, InspectError> {
        let f = File::open(archive).map_err(io_err("opening", archive))?;
        let tar_err = |source| InspectError::Tar {
            layer: archive.display().to_string(),
            source,
        };
        let mut ar = tar::Archive::new(BufReader::new(f));
        let mut files = HashMap::new();
        for e in ar.entries_with_seek().map_err(tar_err)? {
            let e = e.map_err(tar_err)?;
            if !matches!(
                e.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous
            ) {
                continue;
            }
            let name = super::entry::clean_path(&String::from_utf8_lossy(&e.path_bytes()));
            files.insert(name, (e.raw_file_position(), e.size()));
        }
        Ok(TarIndex {
            archive: archive.to_path_buf(),
            files,
        })
    }

    fn get(&self, name: &str) -> Option<BlobLoc> {
        self.files
            .get(&super::entry::clean_path(name))
            .map(|&(offset, size)| BlobLoc::InTar {
                archive: self.archive.clone(),
                offset,
                size,
            })
    }
}

impl Blobs for TarIndex {
    fn locate(&self, digest: &Digest) -> Result<BlobLoc, InspectError> {
        self.get(&format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex()))
            .ok_or_else(|| InspectError::BlobMissing {
                digest: digest.clone(),
                location: self.location(),
            })
    }
    fn location(&self) -> String {
        format!("oci-archive:{}", self.archive.display())
    }
}

fn parse_digest(v: Option<&Value>, what: &str) -> Result<Digest, InspectError> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| InspectError::Malformed {
            what: what.to_string(),
            expected: "digest",
        })
}

fn is_index(media_type: &str, v: &Value) -> bool {
    media_type.ends_with("image.index.v1+json")
        || media_type.ends_with("manifest.list.v2+json")
        || (v.get("manifests").is_some() && v.get("layers").is_none())
}

/// From an index, the manifest descriptor for this host's platform (or the only one).
fn pick_platform<'a>(index: &'a Value, location: &str) -> Result<&'a Value, InspectError> {
    let list = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.len() == 1 {
        return Ok(&list[0]);
    }
    let host = crate::image::Platform::host();
    list.iter()
        .find(|m| {
            m.get("platform")
                .and_then(|p| serde_json::from_value::<crate::image::Platform>(p.clone()).ok())
                .is_some_and(|p| host.matches(&p))
        })
        .ok_or_else(|| InspectError::NoPlatform {
            location: location.to_string(),
            platform: host.to_string(),
        })
}

/// Loads the image a manifest (or index) descriptor points at.
fn load_from_descriptor(blobs: &dyn Blobs, desc: &Value, name: &str) -> Result<ImageView, InspectError> {
    let mut desc = desc.clone();
    // Indexes may nest (an image index inside an OCI layout's index.json); follow a few levels.
    for _ in 0..4 {
        let digest = parse_digest(desc.get("digest"), "manifest descriptor")?;
        let (manifest, _) = blobs.locate(&digest)?.read_json(&format!("manifest {digest}"))?;
        let media_type = desc
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if is_index(&media_type, &manifest) {
            desc = pick_platform(&manifest, &blobs.location())?.clone();
            continue;
        }
        let config_digest = parse_digest(
            manifest.pointer("/config/digest"),
            &format!("manifest {digest} config"),
        )?;
        let (config, _) = blobs
            .locate(&config_digest)?
            .read_json(&format!("config {config_digest}"))?;
        let diff_ids = diff_ids(&config);
        let mut layers = Vec::new();
        for (i, l) in manifest
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let ld = parse_digest(l.get("digest"), &format!("manifest {digest} layer {i}"))?;
            layers.push(LayerRef {
                loc: blobs.locate(&ld)?,
                digest: Some(ld),
                diff_id: diff_ids.get(i).cloned(),
                size: l.get("size").and_then(Value::as_u64).unwrap_or(0),
                media_type: l
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        return Ok(ImageView {
            name: name.to_string(),
            manifest_digest: Some(digest),
            manifest: Some(manifest),
            config_digest: Some(config_digest),
            config,
            layers,
            tags: Vec::new(),
        });
    }
    Err(InspectError::Malformed {
        what: format!("{name}: index nesting"),
        expected: "image index (≤4 levels)",
    })
}

fn diff_ids(config: &Value) -> Vec<Digest> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Picks the index.json entry named `name` (ref name, normalized reference, tag, or digest prefix of the
/// manifest); with no name, the only entry.
fn select<'a>(index: &'a Value, name: Option<&str>, location: &str) -> Result<&'a Value, InspectError> {
    let list = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ref_name = |m: &Value| {
        m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let Some(name) = name else {
        return match list {
            [one] => Ok(one),
            [] => Err(InspectError::ImageNotFound {
                name: String::new(),
                location: location.to_string(),
            }),
            _ => Err(InspectError::Ambiguous {
                name: String::new(),
                location: location.to_string(),
                candidates: list.iter().filter_map(ref_name).collect::<Vec<_>>().join(", "),
            }),
        };
    };
    let normalized = Reference::parse(name).ok().map(|r| r.to_string());
    let by_name: Vec<&Value> = list
        .iter()
        .filter(|m| ref_name(m).is_some_and(|r| r == name || Some(&r) == normalized.as_ref()))
        .collect();
    if let Some(m) = by_name.first() {
        return Ok(m);
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<&Value> = list
            .iter()
            .filter(|m| {
                m.get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| d.strip_prefix("sha256:"))
                    .is_some_and(|d| d.starts_with(hex))
            })
            .collect();
        match hits.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(InspectError::Ambiguous {
                    name: name.to_string(),
                    location: location.to_string(),
                    candidates: many
                        .iter()
                        .filter_map(|m| m.get("digest")?.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Err(InspectError::ImageNotFound {
        name: name.to_string(),
        location: location.to_string(),
    })
}

fn tags_of(index: &Value, manifest_digest: &Value) -> Vec<String> {
    let mut tags: Vec<String> = index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("digest") == Some(manifest_digest))
        .filter_map(|m| {
            m.pointer("/annotations/org.opencontainers.image.ref.name")?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// What [`super::remote::open_registry`] fetched.
pub(crate) struct RemoteParts {
    pub name: String,
    pub manifest_digest: Digest,
    pub manifest: Value,
    pub config_digest: Digest,
    pub config: Value,
    pub layers: Vec<(
        lamina_registry::Descriptor,
        std::sync::Arc<super::remote::RemoteBlob>,
    )>,
}

impl ImageView {
    pub(crate) fn from_remote(p: RemoteParts) -> ImageView {
        let diff_ids = diff_ids(&p.config);
        let layers = p
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, (d, blob))| LayerRef {
                digest: Some(d.digest.clone()),
                diff_id: diff_ids.get(i).cloned(),
                size: d.size,
                media_type: d.media_type.clone(),
                loc: BlobLoc::Remote(blob),
            })
            .collect();
        ImageView {
            name: p.name,
            manifest_digest: Some(p.manifest_digest),
            manifest: Some(p.manifest),
            config_digest: Some(p.config_digest),
            config: p.config,
            layers,
            tags: Vec::new(),
        }
    }

    /// An image in an OCI layout directory (such as the lamina store root). `name`: see the module docs of
    /// [`select`]; `None` picks the only image.
    pub fn open_oci_layout(dir: &Path, name: Option<&str>) -> Result<ImageView, InspectError> {
        let idx_path = dir.join("index.json");
        let (index, _) = BlobLoc::File(idx_path.clone()).read_json(&idx_path.display().to_string())?;
        let location = dir.display().to_string();
        let desc = select(&index, name, &location)?;
        let mut view =
            load_from_descriptor(&LayoutBlobs(dir.to_path_buf()), desc, name.unwrap_or(&location))?;
        view.tags = tags_of(&index, desc.get("digest").unwrap_or(&Value::Null));
        Ok(view)
    }

    /// An image from the manifest descriptor `desc` (as found in a layout's index.json) of the layout at `dir`.
    pub fn open_oci_descriptor(dir: &Path, desc: &Value, name: &str) -> Result<ImageView, InspectError> {
        load_from_descriptor(&LayoutBlobs(dir.to_path_buf()), desc, name)
    }

    /// An image inside an `oci-archive` tar (an OCI layout tarred), read in place.
    pub fn open_oci_archive(path: &Path, name: Option<&str>) -> Result<ImageView, InspectError> {
        let tar = TarIndex::open(path)?;
        let location = tar.location();
        let idx = tar.get("index.json").ok_or_else(|| InspectError::Malformed {
            what: location.clone(),
            expected: "OCI archive (no index.json)",
        })?;
        let (index, _) = idx.read_json(&format!("{location}: index.json"))?;
        let desc = select(&index, name, &location)?;
        let mut view = load_from_descriptor(&tar, desc, name.unwrap_or(&location))?;
        view.tags = tags_of(&index, desc.get("digest").unwrap_or(&Value::Null));
        Ok(view)
    }

    /// An image inside a `docker save` tar, read in place. `name` picks among several images by RepoTag.
    pub fn open_docker_archive(path: &Path, name: Option<&str>) -> Result<ImageView, InspectError> {
        let tar = TarIndex::open(path)?;
        let location = format!("docker-archive:{}", path.display());
        let m = tar.get("manifest.json").ok_or_else(|| InspectError::Malformed {
            what: location.clone(),
            expected: "docker archive (no manifest.json)",
        })?;
        let (manifest, _) = m.read_json(&format!("{location}: manifest.json"))?;
        let entries = manifest.as_array().map(Vec::as_slice).unwrap_or_default();
        let tags = |e: &Value| -> Vec<String> {
            e.get("RepoTags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        };
        let entry = match name {
            None if entries.len() == 1 => &entries[0],
            None => {
                return Err(InspectError::Ambiguous {
                    name: String::new(),
                    location,
                    candidates: entries.iter().flat_map(tags).collect::<Vec<_>>().join(", "),
                });
            }
            Some(n) => {
                let norm = Reference::parse(n).ok().map(|r| r.to_string());
                entries
                    .iter()
                    .find(|e| {
                        tags(e)
                            .iter()
                            .any(|t| t == n || Reference::parse(t).ok().map(|r| r.to_string()) == norm)
                    })
                    .ok_or_else(|| InspectError::ImageNotFound {
                        name: n.to_string(),
                        location: location.clone(),
                    })?
            }
        };
        let config_name = entry.get("Config").and_then(Value::as_str).unwrap_or_default();
        let cfg = tar.get(config_name).ok_or_else(|| InspectError::Malformed {
            what: format!("{location}: Config {config_name:?}"),
            expected: "file in the archive",
        })?;
        let (config, config_bytes) = cfg.read_json(&format!("{location}: {config_name}"))?;
        let diff_ids = diff_ids(&config);
        let mut layers = Vec::new();
        for (i, l) in entry
            .get("Layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let lname = l.as_str().unwrap_or_default();
            let loc = tar.get(lname).ok_or_else(|| InspectError::Malformed {
                what: format!("{location}: layer {lname:?}"),
                expected: "file in the archive",
            })?;
            let size = match &loc {
                BlobLoc::InTar { size, .. } => *size,
                BlobLoc::File(_) | BlobLoc::Remote(_) => 0,
            };
            // Newer docker names layers blobs/sha256/<hex>; older ones <id>/layer.tar (digest unknown).
            let digest = lname
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::new(crate::digest::Algorithm::Sha256, h).ok());
            layers.push(LayerRef {
                digest,
                diff_id: diff_ids.get(i).cloned(),
                size,
                media_type: "application/vnd.docker.image.rootfs.diff.tar".to_string(),
                loc,
            });
        }
        let entry_tags = tags(entry);
        Ok(ImageView {
            name: name.map_or_else(|| location.clone(), str::to_string),
            manifest_digest: None,
            manifest: None,
            config_digest: Some(Digest::sha256_of(&config_bytes)),
            config,
            layers,
            tags: entry_tags,
        })
    }

    /// An image of the lamina store (resolved by the caller with [`lamina_store::Store::resolve`] and loaded with
    /// [`lamina_store::Store::load_image`]); manifest and config are shown as the bytes stored, not re-serialized.
    pub fn from_store(
        store: &lamina_store::Store,
        image: &lamina_store::Image,
        name: &str,
        tags: Vec<String>,
    ) -> Result<ImageView, InspectError> {
        let blobs = store.blobs();
        let read = |d: &Digest, what: &str| -> Result<Value, InspectError> {
            BlobLoc::File(blobs.path(d))
                .read_json(&format!("{what} {d}"))
                .map(|(v, _)| v)
        };
        let manifest = read(&image.manifest_digest, "manifest")?;
        let config = read(&image.config_digest, "config")?;
        let layers = image
            .layers
            .iter()
            .map(|l| LayerRef {
                digest: Some(l.digest.clone()),
                diff_id: Some(l.diff_id.clone()),
                size: l.size,
                media_type: l.media_type.clone(),
                loc: BlobLoc::File(blobs.path(&l.digest)),
            })
            .collect();
        Ok(ImageView {
            name: name.to_string(),
            manifest_digest: Some(image.manifest_digest.clone()),
            manifest: Some(manifest),
            config_digest: Some(image.config_digest.clone()),
            config,
            layers,
            tags,
        })
    }

    /// A lone layer file (tar, tar.gz or tar.zst) as a one-layer "image" without config.
    pub fn open_layer_file(path: &Path) -> Result<ImageView, InspectError> {
        let size = std::fs::metadata(path).map_err(io_err("reading", path))?.len();
        Ok(ImageView {
            name: format!("layer:{}", path.display()),
            manifest_digest: None,
            manifest: None,
            config_digest: None,
            config: Value::Null,
            layers: vec![LayerRef {
                digest: None,
                diff_id: None,
                size,
                media_type: String::new(),
                loc: BlobLoc::File(path.to_path_buf()),
            }],
            tags: Vec::new(),
        })
    }

    /// A one-layer view of layer `index` of this image (for `IMAGE@N`).
    pub fn single_layer(&self, index: usize) -> Result<ImageView, InspectError> {
        let layer = self
            .layers
            .get(index)
            .cloned()
            .ok_or_else(|| InspectError::LayerIndex {
                image: self.name.clone(),
                index,
                count: self.layers.len(),
            })?;
        Ok(ImageView {
            name: format!("{}@{index}", self.name),
            manifest_digest: None,
            manifest: None,
            config_digest: None,
            config: Value::Null,
            layers: vec![layer],
            tags: Vec::new(),
        })
    }

    /// A name for layer `i` in messages: `IMAGE layer N (sha256:…)`.
    pub fn layer_label(&self, i: usize) -> String {
        match self.layers.get(i).and_then(|l| l.digest.as_ref()) {
            Some(d) => format!("{} layer {i} ({d})", self.name),
            None => format!("{} layer {i}", self.name),
        }
    }

    /// Layer `i` as an uncompressed tar stream (gzip and zstd detected by their magic bytes).
    pub fn open_layer(&self, i: usize) -> Result<Box<dyn Read + Send>, InspectError> {
        let layer = self.layers.get(i).ok_or_else(|| InspectError::LayerIndex {
            image: self.name.clone(),
            index: i,
            count: self.layers.len(),
        })?;
        let raw = layer.loc.open()?;
        // The layer reader's own sniffing (gzip, zstd, or plain tar by magic bytes).
        match crate::layer::read::decompress(raw) {
            Ok(r) => Ok(Box::new(r)),
            Err(source) => Err(InspectError::Tar {
                layer: self.layer_label(i),
                source,
            }),
        }
    }
}
