//! Layer blobs: a directory written as a layer straight into the blob store, and the store's errors as
//! layer errors (layer operations on snapshots and archives fail on blobs and leases too).

use std::path::Path;

use lamina_layer::{LayerError, LayerInfo, WriteOptions, write_compressed};

use crate::blob::{BlobError, BlobStore};
use crate::lease::LeaseError;

/// Writes `src` as a layer blob into `blobs` in one pass and returns its digest, diff_id and size.
pub fn write_layer(src: &Path, opts: &WriteOptions, blobs: &BlobStore) -> Result<LayerInfo, LayerError> {
    let blob = blobs.writer()?;
    let (blob, diff_id) = write_compressed(src, opts, blob, blobs.tmp_dir())?;
    let (digest, size) = blob.commit()?;
    Ok(LayerInfo {
        digest,
        diff_id,
        size,
        media_type: opts.compression.media_type(),
    })
}

impl From<BlobError> for LayerError {
    fn from(e: BlobError) -> Self {
        LayerError::Store(Box::new(e))
    }
}

impl From<LeaseError> for LayerError {
    fn from(e: LeaseError) -> Self {
        LayerError::Store(Box::new(e))
    }
}
