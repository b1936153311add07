//! `import`: a rootfs tarball (plain, gzip or zstd) → a one-layer image, like `docker import`.
//!
//! One pass: the input is decompressed, hashed (diff_id), gzip-compressed and hashed again (digest) on its
//! way into a blob temp file, its tar framing checked on the way ([`super::tar_check`]).

use std::io::{self, Read, Write};
use std::path::Path;

use super::ArchiveError;
use super::change::apply_change;
use super::tar_check::TarCheck;
use crate::config::{History, ImageConfig};
use crate::digest::HashingReader;
use crate::image::{Image, LayerDesc, media};
use crate::layout::Store;
use crate::validate::decompress;

/// Options of [`import`].
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// `--change` instructions, applied in order.
    pub changes: Vec<String>,
    /// History comment (`docker import --message`).
    pub message: Option<String>,
    /// gzip level 0–9.
    pub gzip_level: u32,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            changes: Vec::new(),
            message: None,
            gzip_level: 6,
        }
    }
}

/// Reads the first tar block to refuse non-tar input early, then hands back a reader over everything.
fn check_tar<R: Read>(mut r: R, path: &Path) -> Result<impl Read, ArchiveError> {
    let mut block = [0u8; 512];
    let mut n = 0;
    while n < block.len() {
        match r.read(&mut block[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ArchiveError::Io {
                    op: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    let is_tar =
        n == 512 && (&block[257..262] == b"ustar" || block.iter().all(|&b| b == 0) || v7_checksum_ok(&block));
    if !is_tar {
        return Err(ArchiveError::NotATar {
            path: path.to_owned(),
        });
    }
    Ok(io::Cursor::new(block).chain(r))
}

/// Old (v7) tars have no magic; their header checksum still has to add up.
fn v7_checksum_ok(block: &[u8; 512]) -> bool {
    let field = String::from_utf8_lossy(&block[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
        .sum();
    sum == want
}

/// Imports the tarball read from `reader` (`path` names it in errors and history) as a one-layer image.
/// The caller tags it; hold [`Store::lock_shared`] until then.
pub fn import(
    store: &Store,
    reader: impl Read,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Image, ArchiveError> {
    let io_err = |op| {
        let path = path.to_owned();
        move |source| ArchiveError::Io { op, path, source }
    };
    let mut config = ImageConfig::scratch();
    for c in &opts.changes {
        apply_change(&mut config, c)?;
    }
    let plain = decompress(reader).map_err(io_err("read"))?;
    // Checked while it streams, so a tar that could never be unpacked is refused before the image exists.
    let mut tar = HashingReader::new(TarCheck::new(check_tar(plain, path)?));
    let blob = store.blobs().writer()?;
    // pigz-style parallel gzip: same bytes for any thread count.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut gz = crate::layer::pgzip::ParGzEncoder::new(blob, opts.gzip_level.min(9), threads)
        .map_err(io_err("compress"))?;
    io::copy(&mut tar, &mut gz).map_err(|e| super::layer_read_error(path, "(the imported tarball)", e))?;
    let mut blob = gz.finish().map_err(io_err("compress"))?;
    blob.flush().map_err(io_err("write layer from"))?;
    let (digest, size) = blob.commit()?;
    let (_, diff_id, _) = tar.finish();

    let created = super::now_rfc3339();
    config.created = Some(created.clone());
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    config.history = vec![History {
        created: Some(created),
        created_by: Some(format!("lamina import {name}")),
        comment: Some(
            opts.message
                .clone()
                .unwrap_or_else(|| format!("Imported from {name}")),
        ),
        ..Default::default()
    }];
    let layer = LayerDesc {
        digest,
        diff_id,
        size,
        media_type: media::OCI_LAYER_GZIP.to_owned(),
    };
    Ok(store.write_image(&config, &[layer])?)
}
