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

#[cfg(test)]
mod tests {
    use super::super::LayerWriter;
    use super::*;
    use lamina_store::Store;
    use lamina_store::layer::Compression;

    fn tree(w: &LayerWriter, content: &str) -> PathBuf {
        let d = w.staging().unwrap();
        std::fs::write(d.join("f"), content).unwrap();
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(d.join("f"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        d
    }

    #[test]
    fn a_hinted_tree_with_the_same_diff_id_reuses_the_blob_and_another_is_written() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("store")).unwrap();
        let w = LayerWriter::new(&store, Compression::default(), None).unwrap();
        let opts = w.opts.clone();
        let hint = Digest::sha256_of(b"COPY f /");
        // A stand-in blob under the tree's diff_id: only reuse can return it (compressing would not).
        let same = tree(&w, "hello\n");
        let diff_id = diff_id_of(&same, &opts).unwrap();
        let (stand_in, size) = store.blobs().put_bytes(b"not really gzip").unwrap();
        Hint::new(&store.cache_dir(), &hint, &opts).record(&LayerDesc {
            digest: stand_in.clone(),
            diff_id: diff_id.clone(),
            size,
            media_type: opts.compression.media_type().to_string(),
        });
        let key = Digest::sha256_of(b"k1");
        let got = w
            .spawn(same, key.clone(), &key, String::new(), 0, Some(hint.clone()))
            .wait()
            .unwrap();
        assert_eq!((got.digest, got.diff_id), (stand_in.clone(), diff_id.clone()));

        let other = tree(&w, "changed\n");
        let key = Digest::sha256_of(b"k2");
        let got = w
            .spawn(other, key.clone(), &key, String::new(), 0, Some(hint.clone()))
            .wait()
            .unwrap();
        assert_ne!(got.diff_id, diff_id);
        assert_ne!(got.digest, stand_in);
        assert!(store.blobs().contains(&got.digest));
        // The hint now names the new layer.
        let l: CachedLayer =
            serde_json::from_slice(&std::fs::read(Hint::new(&store.cache_dir(), &hint, &opts).path).unwrap())
                .unwrap();
        assert_eq!(l.digest, got.digest);
    }
}
