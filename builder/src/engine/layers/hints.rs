//! Layer hints: `cache/layer-hints/<hex>`, one JSON [`CachedLayer`] per (step hint, write options): the
//! layer that step made the last time it ran, whatever its parent was. A step rerun because an earlier
//! step changed (a COPY of unchanged files after a changed RUN) usually makes the same tree again; with
//! a hint, the tree is hashed first and, when the diff_id matches, the stored blob is reused instead of
//! compressing the same bytes again. A hint is only ever a guess: the diff_id decides, and a missing or
//! unreadable hint just means writing the layer.

use std::io::Write;
use std::path::{Path, PathBuf};

use lamina_store::buildcache::CachedLayer;
use lamina_store::layer::write::{WriteOptions, diff_id_of};
use lamina_store::{BlobStore, Digest, LayerDesc};

pub(super) struct Hint {
    path: PathBuf,
}

impl Hint {
    /// The hint file of step hint `hint` for layers written with `opts` (the same tree compressed
    /// otherwise, or with other mtime clamping, is another blob).
    pub(super) fn new(cache_dir: &Path, hint: &Digest, opts: &WriteOptions) -> Hint {
        let id = Digest::sha256_of(
            format!(
                "{hint} {:?} {:?} {}",
                opts.compression, opts.source_date_epoch, opts.overlay_upper
            )
            .as_bytes(),
        );
        Hint {
            path: cache_dir.join("layer-hints").join(id.hex()),
        }
    }

    /// The hinted layer, if `dir` hashes to its diff_id and its blob is still stored (held by the build's
    /// lease from here on). `None` on any doubt.
    pub(super) fn reuse(&self, dir: &Path, opts: &WriteOptions, blobs: &BlobStore) -> Option<LayerDesc> {
        let l: CachedLayer = serde_json::from_slice(&std::fs::read(&self.path).ok()?).ok()?;
        if l.media_type != opts.compression.media_type() || !blobs.hold(&l.digest).ok()? {
            return None;
        }
        if diff_id_of(dir, opts).ok()? != l.diff_id {
            return None;
        }
        Some(LayerDesc {
            digest: l.digest,
            diff_id: l.diff_id,
            size: l.size,
            media_type: l.media_type,
        })
    }

    /// Remembers `d` as this step's layer. Best effort: without it the next rerun compresses again.
    pub(super) fn record(&self, d: &LayerDesc) {
        let l = CachedLayer {
            digest: d.digest.clone(),
            diff_id: d.diff_id.clone(),
            size: d.size,
            media_type: d.media_type.clone(),
        };
        let Some(dir) = self.path.parent() else { return };
        let _ = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&serde_json::to_vec(&l).map_err(std::io::Error::other)?)?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        })();
    }
}
