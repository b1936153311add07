//! Image sizes as docker shows them (`docker images` SIZE): the unpacked size of the layers as dockerd's
//! overlay2 driver measures a layer's directory (regular files' bytes plus each symlink's target length,
//! directories and empty files nothing), not the compressed blobs. A layer's size is counted once by streaming its
//! tar and then remembered under `cache/layer-sizes/<diff_id>`: keyed by content, so never stale.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::layout::{Store, StoreError};
use lamina_oci::image::{Image, LayerDesc};

impl Store {
    /// The unpacked size of `image`: its layers' [`Store::layer_unpacked_size`] summed.
    pub fn unpacked_size(&self, image: &Image) -> Result<u64, StoreError> {
        image.layers.iter().map(|l| self.layer_unpacked_size(l)).sum()
    }

    /// The bytes of the regular files in a layer (hard links counted once, as their tar entries carry no
    /// data) plus its symlinks' target lengths (what `lstat` reports for a link). A layer whose blob is not
    /// here (a lazily pulled base) counts its blob size instead.
    pub fn layer_unpacked_size(&self, layer: &LayerDesc) -> Result<u64, StoreError> {
        let memo = self.sizes_dir().join(layer.diff_id.hex());
        if let Some(n) = fs::read_to_string(&memo).ok().and_then(|s| s.trim().parse().ok()) {
            return Ok(n);
        }
        if !self.blobs().contains(&layer.digest) {
            return Ok(layer.size);
        }
        let io_err = |path: PathBuf| {
            move |source: io::Error| StoreError::Io {
                op: "read layer",
                path,
                source,
            }
        };
        let path = self.blobs().path(&layer.digest);
        let file = self.blobs().open_blob(&layer.digest)?;
        let reader = crate::layer::read::decompress(file).map_err(io_err(path.clone()))?;
        let mut total = 0u64;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(io_err(path.clone()))? {
            let entry = entry.map_err(io_err(path.clone()))?;
            let kind = entry.header().entry_type();
            if kind.is_file() {
                total += entry.header().size().map_err(io_err(path.clone()))?;
            } else if kind.is_symlink() {
                let target = entry.link_name_bytes().map_or(0, |t| t.len() as u64);
                total += target;
            }
        }
        // Only a memo: a failed write just means counting again next time.
        let _ = fs::create_dir_all(self.sizes_dir()).and_then(|()| fs::write(&memo, total.to_string()));
        Ok(total)
    }

    fn sizes_dir(&self) -> PathBuf {
        self.cache_dir().join("layer-sizes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_regular_file_bytes_of_the_uncompressed_tar() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8], kind: tar::EntryType| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, data).unwrap();
        };
        add("dir/", b"", tar::EntryType::Directory);
        add("dir/a", &[7u8; 3000], tar::EntryType::Regular);
        add("b", b"hello", tar::EntryType::Regular);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", "dir/a").unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let blob = gz.finish().unwrap();
        let (digest, size) = store.blobs().put_bytes(&blob).unwrap();
        let layer = LayerDesc {
            digest,
            diff_id: crate::Digest::sha256_of(&tar),
            size,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        // 3000 + 5 bytes of files, 5 for the link's target `dir/a`.
        assert_eq!(store.layer_unpacked_size(&layer).unwrap(), 3010);
        assert!(size < 3005, "the compressed blob is smaller: SIZE must not be it");
        // Remembered: the second answer comes from the memo even once the blob is gone.
        store.blobs().remove(&layer.digest).unwrap();
        assert_eq!(store.layer_unpacked_size(&layer).unwrap(), 3010);
    }
}
