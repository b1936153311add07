//! lamina's layers: directories ⇄ OCI layer tar streams, and their compression.
//!
//! This crate sits between the OCI model (`lamina_oci`, for digests) and the store: the store uses it to
//! unpack snapshots and archives and to write layer blobs (`lamina_store::layer::write_layer` commits what
//! [`write::write_compressed`] produced into the blob store), so nothing here knows the store.
//!
//! - [`write`]: a directory or an overlay upper dir → a deterministic tar stream (sorted entries, numeric
//!   owners, PAX for long names and xattrs, hardlinks by inode, overlay whiteouts converted), written in one
//!   streaming pass `tar → HashingWriter (diff_id) → compressor → blob writer (digest, size)`.
//! - [`pgzip`]: a pigz-style parallel gzip encoder whose output does not depend on the thread count.
//! - [`read`]: compression autodetection and a strict tar entry reader with limits (the `tar` crate is used
//!   only to decode header fields).
//! - [`apply`]: the in-root layer applier (every path resolved with `pathrs`, openat2 `RESOLVE_IN_ROOT`).

pub mod apply;
pub mod pgzip;
pub mod read;
pub mod write;

use std::io;
use std::path::PathBuf;

use lamina_oci::Digest;

pub use apply::{ApplyOptions, ApplyStats, WhiteoutMode, apply_layer};
pub use read::decompress;
pub use write::{WriteOptions, write_compressed, write_tar};

/// OCI media type of an uncompressed layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI media type of a gzip layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI media type of a zstd layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema2 media type of a gzip layer (read only).
pub const DOCKER_MEDIA_TYPE_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Prefix of a whiteout entry name (`.wh.NAME` hides `NAME` of lower layers).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker entry.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip, level 0–9.
    Gzip {
        level: u32,
    },
    /// zstd, level 1–22.
    Zstd {
        level: i32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        }
    }
}

/// Default gzip level. zlib-rs at level 4 measured ~3x faster than at 6 (zlib's default, docker's) for
/// ~5% larger layers on bench/layers.sh; `gzip:6` (or `:9`) is there when size matters more.
pub const DEFAULT_GZIP_LEVEL: u32 = 4;
/// Default zstd level (the zstd CLI's default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_TYPE_TAR,
            Compression::Gzip { .. } => MEDIA_TYPE_TAR_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_TAR_ZSTD,
        }
    }

    /// Parses `gzip`, `gzip:9`, `zstd`, `zstd:19`, `none`/`uncompressed`.
    pub fn parse(s: &str) -> Option<Compression> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s, None),
        };
        match name {
            "none" | "uncompressed" if level.is_none() => Some(Compression::None),
            "gzip" => {
                let level = match level {
                    Some(l) => l.parse().ok().filter(|l| *l <= 9)?,
                    None => DEFAULT_GZIP_LEVEL,
                };
                Some(Compression::Gzip { level })
            }
            "zstd" => {
                let level = match level {
                    Some(l) => l.parse().ok().filter(|l| (1..=22).contains(l))?,
                    None => DEFAULT_ZSTD_LEVEL,
                };
                Some(Compression::Zstd { level })
            }
            _ => None,
        }
    }
}

/// What writing a layer produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the (compressed) blob as stored.
    pub digest: Digest,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    pub media_type: &'static str,
}

/// Errors of writing and applying layers. Entry paths are the (untrusted) names from the archive.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: {op}")]
    Entry {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: {op}")]
    Resolve {
        entry: String,
        op: &'static str,
        #[source]
        source: pathrs::error::Error,
    },
    #[error("reading layer stream (after entry {after:?})")]
    Read {
        after: String,
        #[source]
        source: io::Error,
    },
    #[error("writing layer stream (at {path})")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer archive is truncated in entry {entry:?}")]
    Truncated { entry: String },
    #[error("layer archive ends without an end-of-archive marker after entry {after:?} (truncated?)")]
    MissingTrailer { after: String },
    #[error("layer archive header checksum mismatch at byte offset {offset} (after entry {after:?})")]
    BadChecksum { offset: u64, after: String },
    #[error("layer entry {entry:?}: invalid header field {field}")]
    BadHeader { entry: String, field: &'static str },
    #[error("layer entry {entry:?}: PAX size {pax} disagrees with header size {ustar}")]
    PaxSizeMismatch { entry: String, pax: u64, ustar: u64 },
    #[error("layer entry {entry:?}: {what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        entry: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("layer entry {entry:?}: unsupported entry type {kind:?}")]
    UnsupportedType { entry: String, kind: char },
    #[error("layer entry {entry:?}: invalid name: {reason}")]
    InvalidName { entry: String, reason: &'static str },
    #[error("layer entry {entry:?}: hardlink target {target:?} is {reason}")]
    BadHardlink {
        entry: String,
        target: String,
        reason: &'static str,
    },
    #[error("source path {path} is not representable in a tar archive: {reason}")]
    Unrepresentable { path: PathBuf, reason: &'static str },
    #[error("layer diff_id mismatch for {layer}: expected {expected}, uncompressed tar hashes to {actual}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "layer entry {entry:?} is owned by {uid}:{gid}, which this user namespace does not map: give \
         the user a subordinate range in /etc/subuid and /etc/subgid (newuidmap/newgidmap, package uidmap)"
    )]
    UnmappedId { entry: String, uid: u32, gid: u32 },
    /// The store under a layer operation failed (its blob store or leases). Boxed because the store
    /// depends on this crate, not the other way round; the store converts its errors (`From` impls there),
    /// and the concrete error stays reachable by downcasting.
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Are we in a user namespace other than the initial one (rootless, or a container's)? There
/// overlayfs runs with `userxattr`, so snapshots mark opaque dirs with `user.overlay.opaque`, and
/// device nodes cannot be made.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
    })
}

/// The xattr overlayfs reads as "opaque directory" in lower dirs of the mounts the runner makes.
pub(crate) fn overlay_opaque_xattr() -> &'static str {
    if in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

pub(crate) fn entry_err(entry: &[u8], op: &'static str) -> impl FnOnce(io::Error) -> LayerError {
    let entry = String::from_utf8_lossy(entry).into_owned();
    move |source| LayerError::Entry { entry, op, source }
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
