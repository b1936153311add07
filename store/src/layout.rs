//! [`Store`]: the store root, which is an OCI image layout.
//!
//! ```text
//! oci-layout, index.json   tags are index.json entries annotated org.opencontainers.image.ref.name
//! blobs/sha256/<hex>       content (see blob.rs)
//! snapshots/ cache/        unpacked layers (snapshot.rs), build cache records
//! tmp/                     staging on the same filesystem; everything in it is garbage once no one runs
//! leases/                  what live builds and containers hold (lease.rs)
//! lock, index.lock         see lock.rs
//! ```
//!
//! The store is private: its root and every directory it makes are 0700, and [`Store::open`] tightens an
//! existing store whose modes are looser. Snapshots hold image layers' setuid-root binaries and device
//! nodes, and blobs hold private images' layers; with a traversable root any host user could execute or
//! open them (moby CVE-2021-41091). 0700 rather than 0711: nothing outside the owner needs a path inside
//! the store (containers reach their snapshots through overlay mounts, whose lower dirs are checked with
//! the mounter's credentials, not by walking the store's path), and 0711 would still expose blobs and
//! index.json by name. Other tools read images through `lamina save`, or as the owner.
//!
//! The ref.name of a tag is the fully normalized reference (`docker.io/library/busybox:latest`,
//! `localhost:5000/app:v1`), so `skopeo inspect oci:$ROOT:docker.io/library/busybox:latest` reads the store
//! (skopeo splits the path at the first `:` and matches the rest verbatim against ref.name; checked with
//! skopeo 1.9). index.json is rewritten whole: temp file in tmp/, fsync, rename, fsync of the root dir.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::blob::{BlobError, BlobStore};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::image::{
    Descriptor, Image, Index, LayerDesc, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Manifest, ManifestError, Parsed,
    REF_NAME_ANNOTATION, canonical_json, media,
};
use crate::lease::Lease;
use crate::lock::{self, LockGuard};
use crate::reference::Reference;
use crate::snapshot::Snapshots;

/// index.json is ours and only holds descriptors, but a store with many tags may grow large.
const MAX_INDEX_SIZE: u64 = 64 << 20;
const LAYOUT_VERSION: &str = "1.0.0";

/// Errors of the store layout, tags and image model.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path} is not a valid OCI layout file")]
    BadLayoutFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: unsupported imageLayoutVersion {version:?} (lamina reads 1.x)")]
    LayoutVersion { path: PathBuf, version: String },
    #[error("{what} {digest} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        what: &'static str,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("{path} is {size} bytes, more than the {limit}-byte limit")]
    IndexTooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("config {digest} is not a valid image config")]
    BadConfig {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "image {manifest}: config {config} lists {diff_ids} diff_ids but the manifest has {layers} layers"
    )]
    LayerCount {
        manifest: Digest,
        config: Digest,
        diff_ids: usize,
        layers: usize,
    },
    #[error("{what} {digest} is not in the store")]
    Missing { what: &'static str, digest: Digest },
    #[error("layer {digest} is {actual} bytes in the store, not {expected} as described")]
    LayerSize {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("index {digest} has no manifest for {platform} in the store")]
    NoPlatform { digest: Digest, platform: String },
    #[error("image config {config}: diff_id {index} is {expected}, but the layer given for it has {actual}")]
    DiffIdMismatch {
        config: Digest,
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("{query:?} is ambiguous, it matches: {candidates}")]
    Ambiguous { query: String, candidates: String },
    #[error("no such tag: {0}")]
    TagNotFound(String),
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
    #[error(transparent)]
    Snapshot(#[from] crate::layer::LayerError),
}

impl StoreError {
    fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}

/// A tag: a normalized reference and the manifest (or index) descriptor it points at.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    pub reference: Reference,
    pub descriptor: Descriptor,
}

/// What [`Store::resolve`] found: the manifest or index descriptor, and the tag used, if one was.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRef {
    pub reference: Option<Reference>,
    pub descriptor: Descriptor,
}

impl ImageRef {
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }
}

/// The store root.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    blobs: BlobStore,
    /// Set on a [`Store::leased`] handle.
    lease: Option<Lease>,
}

/// Directories directly under the root that [`Store::open`] makes (or tightens to) 0700.
const PRIVATE_DIRS: [&str; 6] = ["blobs", "snapshots", "tmp", "cache", "containers", "leases"];
const PRIVATE_MODE: u32 = 0o700;

/// Gives `dir` mode 0700 if it is group- or world-accessible. A store we can't tighten (not ours, or on
/// a read-only mount) is only warned about: refusing would lock its owner out of reading it.
fn make_private(dir: &Path) -> Result<(), StoreError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("stat", dir)(e)),
    };
    if !meta.is_dir() || meta.permissions().mode() & 0o7077 == 0 {
        return Ok(());
    }
    match fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_MODE)) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EROFS)) => {
            tracing::warn!(
                "{} is mode {:o}: other users may reach its content; can't make it private: {e}",
                dir.display(),
                meta.permissions().mode() & 0o7777
            );
            Ok(())
        }
        Err(e) => Err(StoreError::io("chmod", dir)(e)),
    }
}

fn write_atomic(dir_for_tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = tempfile::Builder::new()
        .prefix("meta-")
        .tempfile_in(dir_for_tmp)
        .map_err(StoreError::io("create temp file in", dir_for_tmp))?;
    tmp.write_all(bytes)
        .map_err(StoreError::io("write", tmp.path()))?;
    // index.json and oci-layout are read by other OCI tools, like the blobs (tempfile makes them 0600).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(crate::blob::BLOB_MODE))
        .map_err(StoreError::io("chmod", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(StoreError::io("fsync", tmp.path()))?;
    tmp.persist(dest).map_err(|e| StoreError::Io {
        op: "rename temp file to",
        path: dest.to_owned(),
        source: e.error,
    })?;
    // The rename is only durable once the directory entry is.
    let parent = dest.parent().unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", parent))
}

fn index_lock(dir: &Path) -> Result<LockGuard, StoreError> {
    let p = dir.join("index.lock");
    lock::acquire(&p, true, || {}).map_err(StoreError::io("lock", p))
}

fn read_index_file(path: &Path) -> Result<Index, StoreError> {
    let size = fs::metadata(path).map_err(StoreError::io("stat", path))?.len();
    if size > MAX_INDEX_SIZE {
        return Err(StoreError::IndexTooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_INDEX_SIZE,
        });
    }
    let bytes = fs::read(path).map_err(StoreError::io("read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::BadLayoutFile {
        path: path.to_owned(),
        source,
    })
}

/// The one index.json writer: read-modify-write of `dir/index.json` under `dir/index.lock`, the new
/// version staged in `tmp_dir` (same filesystem) and renamed into place. Every writer of an index — the
/// store's tags, base-image pulls, `oci:` layouts, local build caches — goes through here, so two lamina
/// processes never lose each other's entries.
fn locked_index_update<T>(
    dir: &Path,
    tmp_dir: &Path,
    f: impl FnOnce(&mut Index) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let _g = index_lock(dir)?;
    let path = dir.join("index.json");
    let mut index = match read_index_file(&path) {
        Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Index::default(),
        other => other?,
    };
    let out = f(&mut index)?;
    write_atomic(tmp_dir, &path, &canonical_json(&index))?;
    Ok(out)
}

/// [`locked_index_update`] on an OCI layout that is not a store (an `oci:` destination, a local build
/// cache): writes `oci-layout` if missing and stages the new index in `dir` itself.
pub fn update_layout_index<T>(
    dir: &Path,
    f: impl FnOnce(&mut Index) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        let body = format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#);
        write_atomic(dir, &layout, body.as_bytes())?;
    }
    locked_index_update(dir, dir, f)
}

impl Store {
    /// Opens the store at `root`, creating the layout if it is not there yet.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        if !root.is_dir() {
            // 0700 from the start (parents too: the XDG data dir is meant to be 0700 anyway).
            fs::DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_MODE)
                .create(root)
                .map_err(StoreError::io("create store root", root))?;
        }
        make_private(root)?;
        for sub in PRIVATE_DIRS {
            let p = root.join(sub);
            crate::lease::private_dir(&p).map_err(StoreError::io("create directory", &p))?;
            make_private(&p)?;
        }
        let blobs = BlobStore::open(root)?;
        let store = Store {
            root: root.to_owned(),
            blobs,
            lease: None,
        };
        let layout = root.join("oci-layout");
        match fs::read(&layout) {
            Ok(bytes) => {
                #[derive(serde::Deserialize)]
                struct OciLayout {
                    #[serde(rename = "imageLayoutVersion")]
                    version: String,
                }
                let l: OciLayout =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::BadLayoutFile {
                        path: layout.clone(),
                        source,
                    })?;
                if !l.version.starts_with("1.") {
                    return Err(StoreError::LayoutVersion {
                        path: layout,
                        version: l.version,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let body = format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#);
                write_atomic(store.blobs.tmp_dir(), &layout, body.as_bytes())?;
            }
            Err(e) => return Err(StoreError::io("read", layout)(e)),
        }
        let index = store.index_path();
        if !index.exists() {
            // Under the index lock so a concurrent first tag is never overwritten by an empty index.
            let _g = store.index_lock()?;
            if !index.exists() {
                store.write_index(&Index::default())?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes a new lease (see lease.rs): what is recorded in it survives prune while the lease lives.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        Ok(Lease::create(&self.root)?)
    }

    /// This store, with every blob written, snapshot made or used (through [`Store::snapshots`]) and
    /// temp file created in [`Store::tmp_dir`] held by `lease`.
    pub fn leased(&self, lease: &Lease) -> Store {
        Store {
            root: self.root.clone(),
            blobs: self.blobs.leased(lease),
            lease: Some(lease.clone()),
        }
    }

    /// The lease of a [`Store::leased`] handle.
    pub fn current_lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The snapshots, under this handle's lease if it has one.
    pub fn snapshots(&self) -> Result<Snapshots, StoreError> {
        let s = Snapshots::open(&self.root)?;
        Ok(match &self.lease {
            Some(l) => s.leased(l),
            None => s,
        })
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// `root/snapshots` (the layout inside belongs to snapshot.rs).
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// `root/cache` (build cache records).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// `root/tmp` (or, on a leased handle, the lease's own dir in it): staging on the store's filesystem.
    /// Create uniquely named entries in it (tempfile).
    pub fn tmp_dir(&self) -> &Path {
        self.blobs.tmp_dir()
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// The shared store lock: hold it while reading or adding content (see lock.rs).
    pub fn lock_shared(&self) -> Result<LockGuard, StoreError> {
        let p = self.root.join("lock");
        lock::acquire(&p, false, || {
            tracing::info!(
                "waiting for the store lock on {} (prune or fsck --repair running)",
                p.display()
            )
        })
        .map_err(StoreError::io("lock", self.root.join("lock")))
    }

    /// The exclusive store lock: hold it while deleting content (prune, fsck --repair).
    pub fn lock_exclusive(&self) -> Result<LockGuard, StoreError> {
        let p = self.root.join("lock");
        lock::acquire(&p, true, || {
            tracing::info!(
                "waiting for other lamina processes using {} to finish",
                self.root.display()
            )
        })
        .map_err(StoreError::io("lock", self.root.join("lock")))
    }

    fn index_lock(&self) -> Result<LockGuard, StoreError> {
        index_lock(&self.root)
    }

    /// Reads index.json.
    pub fn read_index(&self) -> Result<Index, StoreError> {
        read_index_file(&self.index_path())
    }

    fn write_index(&self, index: &Index) -> Result<(), StoreError> {
        write_atomic(self.tmp_dir(), &self.index_path(), &canonical_json(index))
    }

    /// Read-modify-write of index.json under the index lock. `f`'s error aborts without writing.
    pub fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        locked_index_update(&self.root, self.tmp_dir(), f)
    }

    /// All tags, in index order. Entries whose ref.name is not a normalized reference (written by other tools,
    /// e.g. `skopeo copy … oci:$ROOT:latest`) are not tags here but still keep their content alive.
    pub fn tags(&self) -> Result<Vec<Tag>, StoreError> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .filter_map(|d| {
                let name = d.ref_name()?;
                let r = Reference::parse(name).ok().filter(|r| r.to_string() == name)?;
                Some(Tag {
                    reference: r,
                    descriptor: d,
                })
            })
            .collect())
    }

    /// Points `reference` at `descriptor` (a manifest or index already in the store), replacing any
    /// previous target of that tag.
    pub fn set_tag(&self, reference: &Reference, descriptor: Descriptor) -> Result<(), StoreError> {
        if !self.blobs.contains(&descriptor.digest) {
            return Err(StoreError::Missing {
                what: "manifest",
                digest: descriptor.digest,
            });
        }
        let name = reference.to_string();
        let mut entry = descriptor;
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name.clone());
        self.update_index(|index| {
            // A tagged image no longer needs its untagged placeholder entry.
            index
                .manifests
                .retain(|d| d.ref_name().is_some() || d.digest != entry.digest);
            match index.manifests.iter_mut().find(|d| d.ref_name() == Some(&name)) {
                Some(slot) => *slot = entry,
                None => index.manifests.push(entry),
            }
            Ok(())
        })
    }

    /// Removes a tag, returning what it pointed at.
    pub fn untag(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        let name = reference.to_string();
        self.update_index(|index| {
            let pos = index
                .manifests
                .iter()
                .position(|d| d.ref_name() == Some(&name))
                .ok_or_else(|| StoreError::TagNotFound(reference.familiar()))?;
            Ok(index.manifests.remove(pos))
        })
    }

    fn read_limited(&self, what: &'static str, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let size = match self.blobs.size(digest) {
            Ok(s) => s,
            Err(BlobError::NotFound(d)) => return Err(StoreError::Missing { what, digest: d }),
            Err(e) => return Err(e.into()),
        };
        if size > limit {
            return Err(StoreError::TooLarge {
                what,
                digest: digest.clone(),
                size,
                limit,
            });
        }
        Ok(self.blobs.read_small(digest, limit)?)
    }

    /// Reads and parses a manifest or index blob (at most [`MAX_MANIFEST_SIZE`] bytes).
    pub fn read_manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<Parsed, StoreError> {
        let bytes = self.read_limited("manifest", digest, MAX_MANIFEST_SIZE)?;
        Ok(crate::image::parse_manifest(digest, &bytes, media_type)?)
    }

    /// Reads and parses a config blob (at most [`MAX_CONFIG_SIZE`] bytes).
    pub fn read_config(&self, digest: &Digest) -> Result<ImageConfig, StoreError> {
        let bytes = self.read_limited("config", digest, MAX_CONFIG_SIZE)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadConfig {
            digest: digest.clone(),
            source,
        })
    }

    /// Loads the image a manifest digest names. An index resolves to its linux manifest for this host's
    /// architecture (or its only manifest present in the store).
    pub fn load_image(&self, digest: &Digest) -> Result<Image, StoreError> {
        self.load_image_for(digest, &crate::image::Platform::host())
    }

    /// [`Store::load_image`] picking `platform`'s manifest from an index (`run --platform`).
    pub fn load_image_for(
        &self,
        digest: &Digest,
        platform: &crate::image::Platform,
    ) -> Result<Image, StoreError> {
        match self.read_manifest(digest, None)? {
            Parsed::Manifest(m) => self.image_from_manifest(digest, m),
            Parsed::Index(idx) => {
                let host = platform;
                let present: Vec<&Descriptor> = idx
                    .manifests
                    .iter()
                    .filter(|d| self.blobs.contains(&d.digest))
                    .filter(|d| d.media_type == media::OCI_MANIFEST || d.media_type == media::DOCKER_MANIFEST)
                    .collect();
                let pick = present
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| host.matches(p)))
                    .or_else(|| if present.len() == 1 { present.first() } else { None })
                    .ok_or_else(|| StoreError::NoPlatform {
                        digest: digest.clone(),
                        platform: host.to_string(),
                    })?;
                let child = pick.digest.clone();
                match self.read_manifest(&child, Some(&pick.media_type))? {
                    Parsed::Manifest(m) => self.image_from_manifest(&child, m),
                    Parsed::Index(_) => Err(StoreError::NoPlatform {
                        digest: digest.clone(),
                        platform: host.to_string(),
                    }),
                }
            }
        }
    }

    fn image_from_manifest(&self, digest: &Digest, manifest: Manifest) -> Result<Image, StoreError> {
        let config_digest = manifest.config.digest.clone();
        let config = self.read_config(&config_digest)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::LayerCount {
                manifest: digest.clone(),
                config: config_digest,
                diff_ids: diff_ids.len(),
                layers: manifest.layers.len(),
            });
        }
        let layers = manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(l, diff_id)| LayerDesc {
                digest: l.digest.clone(),
                diff_id: diff_id.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .collect();
        let manifest_size = self.blobs.size(digest)?;
        Ok(Image {
            manifest_digest: digest.clone(),
            manifest_size,
            manifest_media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.to_owned()),
            config_digest,
            config,
            layers,
            manifest,
        })
    }

    /// Writes an image made of `config` and `layers` (whose blobs must already be in the store): the config's
    /// `rootfs` is set from the layers, config and OCI manifest are stored as canonical JSON.
    /// Hold [`Store::lock_shared`] from writing the layers until the image is tagged.
    pub fn write_image(&self, config: &ImageConfig, layers: &[LayerDesc]) -> Result<Image, StoreError> {
        self.write_image_with(config, layers, Default::default())
    }

    /// [`Store::write_image`] with manifest annotations.
    pub fn write_image_with(
        &self,
        config: &ImageConfig,
        layers: &[LayerDesc],
        annotations: std::collections::BTreeMap<String, String>,
    ) -> Result<Image, StoreError> {
        for l in layers {
            let actual = match self.blobs.size(&l.digest) {
                Ok(s) => s,
                Err(BlobError::NotFound(d)) => {
                    return Err(StoreError::Missing {
                        what: "layer",
                        digest: d,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if actual != l.size {
                return Err(StoreError::LayerSize {
                    digest: l.digest.clone(),
                    expected: l.size,
                    actual,
                });
            }
        }
        let mut config = config.clone();
        config.rootfs.kind = "layers".to_owned();
        config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        let (config_digest, config_size) = self.blobs.put_bytes(&canonical_json(&config))?;
        self.put_oci_manifest(config_digest, config_size, config, layers, annotations)
    }

    /// Writes an OCI manifest for a config blob already in the store, kept byte for byte (so an image ID
    /// from docker stays the same), and `layers`, which must match the config's `rootfs.diff_ids`.
    pub fn write_manifest(&self, config_digest: &Digest, layers: &[LayerDesc]) -> Result<Image, StoreError> {
        let config = self.read_config(config_digest)?;
        let config_size = self.blobs.size(config_digest)?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(StoreError::LayerCount {
                manifest: config_digest.clone(),
                config: config_digest.clone(),
                diff_ids: config.rootfs.diff_ids.len(),
                layers: layers.len(),
            });
        }
        for (i, (want, l)) in config.rootfs.diff_ids.iter().zip(layers).enumerate() {
            if want != &l.diff_id {
                return Err(StoreError::DiffIdMismatch {
                    config: config_digest.clone(),
                    index: i,
                    expected: want.clone(),
                    actual: l.diff_id.clone(),
                });
            }
            if !self.blobs.contains(&l.digest) {
                return Err(StoreError::Missing {
                    what: "layer",
                    digest: l.digest.clone(),
                });
            }
        }
        self.put_oci_manifest(
            config_digest.clone(),
            config_size,
            config,
            layers,
            Default::default(),
        )
    }

    /// Stores the OCI manifest of a config blob already in the store and `layers` (given media types are
    /// mapped to their OCI names), and returns the image.
    fn put_oci_manifest(
        &self,
        config_digest: Digest,
        config_size: u64,
        config: ImageConfig,
        layers: &[LayerDesc],
        annotations: std::collections::BTreeMap<String, String>,
    ) -> Result<Image, StoreError> {
        let layers: Vec<LayerDesc> = layers
            .iter()
            .map(|l| LayerDesc {
                media_type: media::to_oci_layer(&l.media_type).to_owned(),
                ..l.clone()
            })
            .collect();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_owned()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, config_digest.clone(), config_size),
            layers: layers
                .iter()
                .map(|l| Descriptor::new(l.media_type.clone(), l.digest.clone(), l.size))
                .collect(),
            subject: None,
            annotations,
            extra: Default::default(),
        };
        let (manifest_digest, manifest_size) = self.blobs.put_bytes(&canonical_json(&manifest))?;
        Ok(Image {
            manifest_digest,
            manifest_size,
            manifest_media_type: media::OCI_MANIFEST.to_owned(),
            manifest,
            config_digest,
            config,
            layers,
        })
    }

    /// Writes an OCI image index of `manifests` (each naming its platform; their blobs already in the
    /// store) and returns its descriptor, for tagging or pushing.
    pub fn write_image_index(&self, manifests: Vec<Descriptor>) -> Result<Descriptor, StoreError> {
        for m in &manifests {
            if !self.blobs.contains(&m.digest) {
                return Err(StoreError::Missing {
                    what: "manifest",
                    digest: m.digest.clone(),
                });
            }
        }
        let index = Index {
            manifests,
            ..Default::default()
        };
        let (digest, size) = self.blobs.put_bytes(&canonical_json(&index))?;
        Ok(Descriptor::new(media::OCI_INDEX, digest, size))
    }

    /// Records an image without a tag (it shows as `<none>` and is kept by prune), unless an entry for the
    /// same digest is already there.
    pub fn add_untagged(&self, descriptor: Descriptor) -> Result<(), StoreError> {
        let entry = strip_ref(&descriptor);
        self.update_index(|index| {
            if !index.manifests.iter().any(|d| d.digest == entry.digest) {
                index.manifests.push(entry);
            }
            Ok(())
        })
    }

    /// Finds an image by tag (`busybox`, `docker.io/library/busybox:latest`, `localhost/app:v1`), by digest
    /// (`sha256:…` of the manifest or of the config, i.e. the image ID), by `name@sha256:…`, or by a unique hex
    /// prefix of a tagged image's ID or manifest digest. A bare name that is not tagged under docker.io also
    /// matches a unique tag of that name under another registry (`app` → `localhost/app:latest`).
    pub fn resolve(&self, query: &str) -> Result<ImageRef, StoreError> {
        let not_found = || StoreError::ImageNotFound(query.to_owned());
        if query.is_empty() {
            return Err(not_found());
        }
        let index = self.read_index()?;
        let tags = self.tags()?;
        if let Ok(d) = query.parse::<Digest>() {
            if let Some(e) = index.manifests.iter().find(|e| e.digest == d) {
                return Ok(ImageRef {
                    reference: None,
                    descriptor: strip_ref(e),
                });
            }
            if let Some(r) = self.by_digest(&d)? {
                return Ok(r);
            }
            return self
                .by_id_prefix(query, d.hex(), &index)
                .and_then(|r| r.ok_or_else(not_found));
        }
        let parsed = Reference::parse(query);
        if let Ok(r) = &parsed {
            if let Some(d) = r.digest() {
                let mut found = self.by_digest(d)?.ok_or_else(not_found)?;
                found.reference = Some(r.clone());
                return Ok(found);
            }
            let name = r.to_string();
            if let Some(t) = tags.iter().find(|t| t.reference.to_string() == name) {
                return Ok(ImageRef {
                    reference: Some(t.reference.clone()),
                    descriptor: strip_ref(&t.descriptor),
                });
            }
        }
        let is_hex = query.len() >= 3
            && query
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex && let Some(r) = self.by_id_prefix(query, query, &index)? {
            return Ok(r);
        }
        // Short-name fallback for names without a registry part.
        if let Ok(r) = &parsed
            && !query.split(':').next().unwrap_or("").contains('/')
        {
            let last = r.repository().rsplit('/').next().unwrap_or_default();
            let matches: Vec<&Tag> = tags
                .iter()
                .filter(|t| {
                    t.reference.tag() == r.tag() && t.reference.repository().rsplit('/').next() == Some(last)
                })
                .collect();
            match matches.as_slice() {
                [one] => {
                    return Ok(ImageRef {
                        reference: Some(one.reference.clone()),
                        descriptor: strip_ref(&one.descriptor),
                    });
                }
                [] => {}
                many => {
                    return Err(StoreError::Ambiguous {
                        query: query.to_owned(),
                        candidates: many
                            .iter()
                            .map(|t| t.reference.familiar())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(not_found())
    }

    /// A manifest or index blob in the store, tagged or not.
    fn by_digest(&self, d: &Digest) -> Result<Option<ImageRef>, StoreError> {
        if !self.blobs.contains(d) {
            return Ok(None);
        }
        let size = self.blobs.size(d)?;
        if size > MAX_MANIFEST_SIZE {
            return Ok(None);
        }
        let media_type = match self.read_manifest(d, None) {
            Ok(Parsed::Manifest(m)) => m.media_type.unwrap_or_else(|| media::OCI_MANIFEST.to_owned()),
            Ok(Parsed::Index(i)) => i.media_type.unwrap_or_else(|| media::OCI_INDEX.to_owned()),
            // A layer or config blob: not something to resolve to (the caller may try it as an image ID).
            Err(_) => return Ok(None),
        };
        Ok(Some(ImageRef {
            reference: None,
            descriptor: Descriptor::new(media_type, d.clone(), size),
        }))
    }

    /// Tagged images whose manifest digest or config digest (image ID) starts with `prefix`.
    fn by_id_prefix(&self, query: &str, prefix: &str, index: &Index) -> Result<Option<ImageRef>, StoreError> {
        let mut found: Vec<ImageRef> = Vec::new();
        for e in &index.manifests {
            let mut hit = e.digest.hex().starts_with(prefix);
            if !hit && let Ok(img) = self.load_image(&e.digest) {
                hit = img.config_digest.hex().starts_with(prefix);
            }
            if hit && !found.iter().any(|f| f.descriptor.digest == e.digest) {
                found.push(ImageRef {
                    reference: None,
                    descriptor: strip_ref(e),
                });
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(StoreError::Ambiguous {
                query: query.to_owned(),
                candidates: found
                    .iter()
                    .map(|f| f.descriptor.digest.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

fn strip_ref(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    d.annotations.remove(REF_NAME_ANNOTATION);
    d
}
