//! Where a layer's SBOM events are remembered: a layer is content-addressed, so what one read of it found
//! holds for every image that has it, and a warm rebuild's SBOM reads no layer again.

use std::io::Write;

use lamina_store::{Digest, Store};

/// Remembers each layer's events (an opaque byte string) by layer digest, for a source whose blobs are
/// verified by digest (the store). `get` returns what `put` was given, or None.
pub trait LayerMemo {
    fn get(&self, layer: &Digest) -> Option<Vec<u8>>;
    fn put(&self, layer: &Digest, events: &[u8]);
}

/// No memo: every layer is read.
pub struct NoMemo;

impl LayerMemo for NoMemo {
    fn get(&self, _: &Digest) -> Option<Vec<u8>> {
        None
    }
    fn put(&self, _: &Digest, _: &[u8]) {}
}

/// The store's blob memos ([`Store::blob_memo`]): collected with its other memos, least recently used
/// first. A memo that cannot be written is no memo (the layer is read again next time).
pub struct StoreMemo<'a>(pub &'a Store);

const KIND: &str = "sbom-layer-events";

impl LayerMemo for StoreMemo<'_> {
    fn get(&self, layer: &Digest) -> Option<Vec<u8>> {
        std::fs::read(self.0.blob_memo(KIND, layer)).ok()
    }

    fn put(&self, layer: &Digest, events: &[u8]) {
        let path = self.0.blob_memo(KIND, layer);
        let Some(dir) = path.parent() else { return };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            // A dot-named temp file: GC leaves those alone while they may be in flight.
            let mut f = tempfile::NamedTempFile::new_in(dir)?;
            f.write_all(events)?;
            f.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!("SBOM memo {}: {e}", path.display());
        }
    }
}
