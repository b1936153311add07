//! Layers of a build: snapshot dirs used as overlay lower dirs right away, and their blobs, compressed by
//! background threads so compression overlaps the next steps. Also base-image unpacking and `--squash`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use lamina_store::layer::apply::{ApplyOptions, WhiteoutMode, apply_layer};
use lamina_store::layer::write::{WriteOptions, write_layer};
use lamina_store::layer::{Compression, LayerError};
use lamina_store::snapshot::Snapshots;
use lamina_store::{BlobStore, Digest, Image, LayerDesc, Store};

use super::BuildError;
mod hints;
use super::cache::{CacheIndex, CacheRecord, CachedLayer};

/// Filled once by the writer thread; every stage using the layer waits on it.
type Slot = (Mutex<Option<Result<LayerDesc, Arc<LayerError>>>>, Condvar);

/// One layer of a stage: its snapshot dir (usable now) and its blob descriptor (maybe still being written).
#[derive(Clone)]
pub struct Layer {
    pub dir: PathBuf,
    /// The cache key of the build step that made it (None for base-image layers).
    pub key: Option<Digest>,
    slot: Arc<Slot>,
}

impl Layer {
    pub fn ready(dir: PathBuf, desc: LayerDesc, key: Option<Digest>) -> Layer {
        Layer {
            dir,
            key,
            slot: Arc::new((Mutex::new(Some(Ok(desc))), Condvar::new())),
        }
    }

    /// Blocks until the blob is written.
    pub fn wait(&self) -> Result<LayerDesc, BuildError> {
        let mut g = self.slot.0.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match &*g {
                Some(Ok(d)) => return Ok(d.clone()),
                Some(Err(e)) => {
                    return Err(BuildError::LayerWrite {
                        dir: self.dir.clone(),
                        source: e.clone(),
                    });
                }
                None => g = self.slot.1.wait(g).unwrap_or_else(|p| p.into_inner()),
            }
        }
    }
}

/// Writes layer blobs in the background, at most `parallel` at once.
pub struct LayerWriter {
    blobs: BlobStore,
    snapshots: Snapshots,
    cache_dir: PathBuf,
    opts: WriteOptions,
    running: Arc<(Mutex<usize>, Condvar)>,
    parallel: usize,
}

fn desc_of(info: &lamina_store::layer::LayerInfo) -> LayerDesc {
    LayerDesc {
        digest: info.digest.clone(),
        diff_id: info.diff_id.clone(),
        size: info.size,
        media_type: info.media_type.to_string(),
    }
}

impl LayerWriter {
    pub fn new(
        store: &Store,
        compression: Compression,
        source_date_epoch: Option<i64>,
    ) -> Result<LayerWriter, BuildError> {
        // Through the store, so a leased store's lease holds the build's snapshots and staging dirs.
        let snapshots = store.snapshots().map_err(|source| BuildError::Store {
            source: Box::new(source),
        })?;
        Ok(LayerWriter {
            blobs: store.blobs().clone(),
            snapshots,
            cache_dir: store.cache_dir(),
            opts: WriteOptions {
                compression,
                source_date_epoch,
                overlay_upper: true,
                ..Default::default()
            },
            running: Arc::new((Mutex::new(0), Condvar::new())),
            parallel: 2,
        })
    }

    /// A fresh empty dir on the snapshots' filesystem (an upper dir or a COPY target).
    pub fn staging(&self) -> Result<PathBuf, BuildError> {
        self.snapshots.new_staging_dir().map_err(snapshot_err)
    }

    /// The snapshot id for a step that just ran: its key, unless a snapshot of an earlier run of the same
    /// step is there (`--no-cache`, or an old run whose layer was lost). That one may be in use right now
    /// (a lower dir of another build, a layer being written), so the new output gets a fresh id of its
    /// own, which its cache record names.
    pub fn fresh_snapshot_id(&self, key: &Digest) -> Digest {
        if !self.snapshots.path(key).exists() {
            return key.clone();
        }
        let (secs, nanos) = {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (d.as_secs(), d.subsec_nanos())
        };
        Digest::sha256_of(format!("{key} rerun {secs}.{nanos} {}", std::process::id()).as_bytes())
    }

    /// Renames a filled staging dir into place as the step's snapshot `id`.
    pub fn commit(&self, dir: PathBuf, key: &Digest) -> Result<PathBuf, BuildError> {
        self.snapshots.commit(dir, key).map_err(snapshot_err)
    }

    /// Whether layer mtimes are clamped (`SOURCE_DATE_EPOCH`), so a rerun RUN step may make the same tar.
    pub fn clamps_mtimes(&self) -> bool {
        self.opts.source_date_epoch.is_some()
    }

    /// Starts writing the layer blob of snapshot `dir` in the background; records the cache entry when done.
    ///
    /// `hint` (a step's parent-independent key) names the layer the same step made last time, under
    /// another parent. When there is one and its blob is still stored, the tree is hashed first (a tar
    /// pass into sha256, several times cheaper than gzip): the same diff_id means the same tar, so that
    /// blob is reused and nothing is compressed. Otherwise the layer is written as usual.
    pub fn spawn(
        &self,
        dir: PathBuf,
        key: Digest,
        snapshot: &Digest,
        created_by: String,
        created: i64,
        hint: Option<Digest>,
    ) -> Layer {
        let snapshot_digest = snapshot.clone();
        let snapshot = snapshot.hex().to_string();
        let slot: Arc<Slot> = Arc::new((Mutex::new(None), Condvar::new()));
        let layer = Layer {
            dir: dir.clone(),
            key: Some(key.clone()),
            slot: slot.clone(),
        };
        let blobs = self.blobs.clone();
        let opts = self.opts.clone();
        let running = self.running.clone();
        let parallel = self.parallel;
        let cache_dir = self.cache_dir.clone();
        let snapshots = self.snapshots.clone();
        let snapshot_id = snapshot_digest.clone();
        std::thread::spawn(move || {
            {
                let mut n = running.0.lock().unwrap_or_else(|p| p.into_inner());
                while *n >= parallel {
                    n = running.1.wait(n).unwrap_or_else(|p| p.into_inner());
                }
                *n += 1;
            }
            let hint = hint.map(|h| hints::Hint::new(&cache_dir, &h, &opts));
            let reused = hint.as_ref().and_then(|h| h.reuse(&dir, &opts, &blobs));
            let r = match reused {
                Some(d) => Ok(d),
                None => write_layer(&dir, &opts, &blobs)
                    .map(|i| desc_of(&i))
                    .map_err(Arc::new),
            };
            if let (Some(h), Ok(d)) = (&hint, &r) {
                h.record(d);
            }
            {
                *running.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                running.1.notify_one();
            }
            if let Ok(d) = &r {
                // Best effort: without the alias a later `run` just unpacks the blob.
                let _ = snapshots.alias(&d.diff_id, &snapshot_id);
            }
            if let Ok(d) = &r
                && let Ok(idx) = CacheIndex::open(&cache_dir)
            {
                let _ = idx.put(&CacheRecord {
                    key: key.clone(),
                    layer: CachedLayer {
                        digest: d.digest.clone(),
                        diff_id: d.diff_id.clone(),
                        size: d.size,
                        media_type: d.media_type.clone(),
                    },
                    snapshot: Some(snapshot),
                    created_by,
                    created,
                });
            }
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            slot.1.notify_all();
        });
        layer
    }

    /// A cached step: its snapshot, re-created from the blob (diff_id verified) when it was pruned or
    /// the record was imported from another machine's cache.
    pub fn from_cache(&self, rec: &CacheRecord) -> Result<Option<Layer>, BuildError> {
        let desc = LayerDesc {
            digest: rec.layer.digest.clone(),
            diff_id: rec.layer.diff_id.clone(),
            size: rec.layer.size,
            media_type: rec.layer.media_type.clone(),
        };
        // Without a cache record (prune --cache), only the build's lease keeps this blob.
        if !self
            .blobs
            .hold(&desc.digest)
            .map_err(|e| blob_err(&desc.digest, e))?
        {
            return Ok(None);
        }
        let id = rec
            .snapshot
            .as_deref()
            .and_then(|h| Digest::new(lamina_store::Algorithm::Sha256, h).ok())
            .unwrap_or_else(|| rec.key.clone());
        let dir = self
            .snapshots
            .ensure_layer(&self.blobs, &desc.digest, &desc.diff_id, &id)
            .map_err(|e| BuildError::LayerWrite {
                dir: self.snapshots.path(&id),
                source: Arc::new(e),
            })?;
        let _ = self.snapshots.alias(&desc.diff_id, &id);
        Ok(Some(Layer::ready(dir, desc, Some(rec.key.clone()))))
    }

    fn apply_blob(&self, digest: &Digest, dest: &Path, mode: WhiteoutMode) -> Result<(), BuildError> {
        let f = self.blobs.open_blob(digest).map_err(|e| blob_err(digest, e))?;
        let opts = ApplyOptions {
            whiteouts: mode,
            ..Default::default()
        };
        apply_layer(std::io::BufReader::with_capacity(256 * 1024, f), dest, &opts).map_err(|e| {
            BuildError::LayerWrite {
                dir: dest.to_path_buf(),
                source: Arc::new(e),
            }
        })?;
        Ok(())
    }

    /// The unpacked snapshot dirs of an image's layers, bottom → top.
    pub fn base_layers(&self, img: &Image) -> Result<Vec<Layer>, BuildError> {
        let pairs: Vec<(Digest, Digest)> = img
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.diff_id.clone()))
            .collect();
        // The base's blobs end up in the built image: held until it is tagged, even if the base is
        // untagged and pruned meanwhile.
        for (digest, _) in &pairs {
            self.blobs.hold(digest).map_err(|e| blob_err(digest, e))?;
        }
        let dirs = self
            .snapshots
            .ensure_chain(&self.blobs, &pairs)
            .map_err(snapshot_err)?;
        Ok(dirs
            .into_iter()
            .zip(&img.layers)
            .map(|(d, l)| Layer::ready(d, l.clone(), None))
            .collect())
    }

    /// `--squash`: the given layers merged into one (whiteouts against the base kept).
    pub fn squash(&self, layers: &[Layer]) -> Result<LayerDesc, BuildError> {
        let staging = self.staging()?;
        for l in layers {
            let d = l.wait()?;
            self.apply_blob(&d.digest, &staging, WhiteoutMode::Overlay)?;
        }
        let info = write_layer(&staging, &self.opts, &self.blobs).map_err(|e| BuildError::LayerWrite {
            dir: staging.clone(),
            source: Arc::new(e),
        })?;
        let _ = fs::remove_dir_all(&staging);
        Ok(desc_of(&info))
    }

    /// Flattens an image's layers into `dest` (for `--output type=local|tar`).
    pub fn flatten(&self, layers: &[LayerDesc], dest: &Path) -> Result<(), BuildError> {
        fs::create_dir_all(dest).map_err(|source| BuildError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        for l in layers {
            self.apply_blob(&l.digest, dest, WhiteoutMode::Delete)?;
        }
        Ok(())
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, BuildError> {
        self.blobs.open_blob(d).map_err(|e| blob_err(d, e))
    }
}

fn snapshot_err(e: LayerError) -> BuildError {
    BuildError::Snapshot { source: Box::new(e) }
}

fn blob_err(digest: &Digest, e: lamina_store::blob::BlobError) -> BuildError {
    BuildError::Blob {
        digest: digest.clone(),
        source: Box::new(e),
    }
}

/// An error and its causes on one line.
pub use lamina_runner::error_chain;
