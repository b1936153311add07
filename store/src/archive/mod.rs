//! Image archives and tarballs: `import` (a rootfs tarball → one-layer image), `save` (images → OCI or
//! docker-archive tar), `load` (either format → store). Everything streams: layers go from the archive
//! entry through hashing (and compression, where the store wants it) into the blob store, never whole into
//! memory; only small JSON (manifests, configs, index.json, manifest.json) is read into memory, bounded.

// Archive errors carry the archive, entry and digests they are about; they are returned once per command,
// after megabytes of I/O, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod change;
pub mod import;
pub mod load;
pub mod save;
pub mod tar_check;
pub mod unpack;

use std::io;
use std::path::PathBuf;

use crate::blob::BlobError;
use crate::digest::Digest;
use crate::layout::StoreError;
use crate::reference::ReferenceError;

/// Errors of import, save and load.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{archive}: reading entry {entry:?}")]
    Entry {
        archive: PathBuf,
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("{archive}: storing entry {entry:?}")]
    EntryBlob {
        archive: PathBuf,
        entry: String,
        #[source]
        source: BlobError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Change(#[from] change::ChangeError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{path} is not a tar archive (no ustar header in the first block)")]
    NotATar { path: PathBuf },
    #[error("{archive} is neither an OCI archive (index.json) nor a docker archive (manifest.json)")]
    UnknownFormat { archive: PathBuf },
    #[error("{archive}: {entry} is not valid")]
    BadJson {
        archive: PathBuf,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{archive}: {entry} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        archive: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{archive}: layer {entry} cannot be extracted")]
    BadLayer {
        archive: PathBuf,
        entry: String,
        #[source]
        source: tar_check::TarCheckError,
    },
    #[error("{archive}: {entry} is referenced but not in the archive")]
    MissingEntry { archive: PathBuf, entry: String },
    #[error("{archive}: layer {entry} has diff_id {actual}, the image config {config} says {expected}")]
    DiffId {
        archive: PathBuf,
        entry: String,
        config: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("{archive}: image config {config} lists {diff_ids} diff_ids but {layers} layers are given")]
    LayerCount {
        archive: PathBuf,
        config: Digest,
        diff_ids: usize,
        layers: usize,
    },
    #[error("layer {digest}")]
    Layer {
        digest: Digest,
        #[source]
        source: crate::layer::LayerError,
    },
    #[error("{path} exists and is not empty")]
    DestNotEmpty { path: PathBuf },
}

/// RFC 3339 UTC time (`2024-01-02T03:04:05Z`) of Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Now, or `SOURCE_DATE_EPOCH` when set (reproducible builds), as RFC 3339.
pub fn now_rfc3339() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    rfc3339(secs)
}

/// An I/O error met while streaming layer `entry` of `archive`: a [`tar_check::TarCheckError`] inside
/// it becomes [`ArchiveError::BadLayer`], anything else [`ArchiveError::Entry`].
pub(crate) fn layer_read_error(archive: &std::path::Path, entry: &str, e: io::Error) -> ArchiveError {
    if tar_check::tar_problem(&e).is_none() {
        return ArchiveError::Entry {
            archive: archive.to_owned(),
            entry: entry.to_owned(),
            source: e,
        };
    }
    match e
        .into_inner()
        .map(|inner| inner.downcast::<tar_check::TarCheckError>())
    {
        Some(Ok(source)) => ArchiveError::BadLayer {
            archive: archive.to_owned(),
            entry: entry.to_owned(),
            source: *source,
        },
        // tar_problem found one above, so the downcast holds; keep the error whole regardless.
        Some(Err(inner)) => ArchiveError::Entry {
            archive: archive.to_owned(),
            entry: entry.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, inner),
        },
        None => ArchiveError::Entry {
            archive: archive.to_owned(),
            entry: entry.to_owned(),
            source: io::Error::from(io::ErrorKind::InvalidData),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
