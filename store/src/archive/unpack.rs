//! `unpack`: an image's layers flattened into one directory (like `umoci unpack`'s rootfs) or one tar
//! stream (like `crane export`), using the layer applier (in-root, whiteouts deleted).

use std::io::Write;
use std::path::Path;

use super::ArchiveError;
use crate::image::Image;
use crate::layer::LayerError;
use crate::layer::apply::{ApplyOptions, ApplyStats, WhiteoutMode, apply_layer};
use crate::layer::write::{WriteOptions, write_tar};
use crate::layout::Store;

fn layer_err(digest: &crate::Digest) -> impl FnOnce(LayerError) -> ArchiveError {
    let digest = digest.clone();
    move |source| ArchiveError::Layer { digest, source }
}

/// Applies every layer of `image`, bottom first, to `dest`, which must be missing or empty.
pub fn unpack_to_dir(store: &Store, image: &Image, dest: &Path) -> Result<ApplyStats, ArchiveError> {
    let io_err = |op| {
        let path = dest.to_owned();
        move |source| ArchiveError::Io { op, path, source }
    };
    match std::fs::read_dir(dest) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(ArchiveError::DestNotEmpty {
                    path: dest.to_owned(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dest).map_err(io_err("create"))?;
        }
        Err(e) => return Err(io_err("read")(e)),
    }
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..Default::default()
    };
    let mut total = ApplyStats::default();
    for l in &image.layers {
        let blob = store.blobs().open_blob(&l.digest)?;
        let s = apply_layer(blob, dest, &opts).map_err(layer_err(&l.digest))?;
        total.entries += s.entries;
        total.files += s.files;
        total.bytes += s.bytes;
        total.dirs += s.dirs;
        total.symlinks += s.symlinks;
        total.hardlinks += s.hardlinks;
        total.whiteouts += s.whiteouts;
        total.skipped_devices += s.skipped_devices;
        total.skipped_xattrs += s.skipped_xattrs;
    }
    Ok(total)
}

/// Writes the flattened rootfs of `image` as one uncompressed tar to `out`. The tree is staged under the
/// store's tmp/ (a crash leaves it for prune) and removed afterwards.
pub fn unpack_to_tar<W: Write>(store: &Store, image: &Image, out: W) -> Result<(), ArchiveError> {
    let staging = tempfile::Builder::new()
        .prefix("unpack-")
        .tempdir_in(store.tmp_dir())
        .map_err(|source| ArchiveError::Io {
            op: "create staging directory in",
            path: store.tmp_dir().to_owned(),
            source,
        })?
        .keep();
    let root = staging.join("rootfs");
    let result = unpack_to_dir(store, image, &root).and_then(|_| {
        let opts = WriteOptions {
            threads: 1,
            ..Default::default()
        };
        write_tar(&root, &opts, out).map_err(|source| ArchiveError::Layer {
            digest: image.manifest_digest.clone(),
            source,
        })
    });
    let _ = crate::prune::remove_tree(&staging);
    result
}
