//! The blob store: `blobs/<algo>/<hex>` under the store root, written verify-then-rename.
//!
//! Every blob is written to a temp file in `tmp/` (same filesystem), hashed and counted while it is written,
//! compared with the expected digest and size, fsynced and only then renamed to its content address. A blob
//! at its final path is therefore always whole; a crash leaves at worst a temp file that `prune` removes.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::lease::Lease;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the store")]
    NotFound(Digest),
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
}

impl BlobError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BlobError {
        let path = path.into();
        move |source| BlobError::Io { op, path, source }
    }
}

/// Blobs are public content (what any OCI layout holds), readable by tools that are not the store's owner
/// (skopeo, umoci, a registry serving the layout) whatever the umask was.
pub const BLOB_MODE: u32 = 0o644;
const BLOB_DIR_MODE: u32 = 0o755;
/// Staging holds half-written blobs, unpacked layers and secrets for RUN mounts: owner only, never
/// world-writable (a shared writable staging dir invites symlink races).
const TMP_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and parents) and gives a directory it creates `mode` exactly, not `mode & !umask`; an
/// existing directory keeps its mode.
fn create_dir_with_mode(dir: &Path, mode: u32) -> Result<(), BlobError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(BlobError::io("create directory", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(BlobError::io("chmod", dir))
}

/// Content-addressed blobs under a store root.
#[derive(Clone, Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    /// Set on a leased store: blobs written are recorded in the lease before they land, and temp files go
    /// to the lease's own temp dir, so a concurrent prune keeps both.
    lease: Option<Lease>,
}

impl BlobStore {
    /// Opens (creating if needed) `root/blobs/sha256` and `root/tmp`.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        for (dir, mode) in [
            (blobs.clone(), BLOB_DIR_MODE),
            (blobs.join("sha256"), BLOB_DIR_MODE),
            (tmp.clone(), TMP_DIR_MODE),
        ] {
            create_dir_with_mode(&dir, mode)?;
        }
        Ok(BlobStore {
            blobs,
            tmp,
            lease: None,
        })
    }

    /// A blob store that is only read (an import source such as a `--cache-from` directory): nothing
    /// is created or chmod'ed in `root`.
    pub fn read_only(root: &Path) -> Self {
        BlobStore {
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            lease: None,
        }
    }

    /// This blob store, with writes under `lease` (see [`crate::lease`]).
    pub fn leased(&self, lease: &Lease) -> Self {
        BlobStore {
            blobs: self.blobs.clone(),
            tmp: lease.tmp_dir().to_owned(),
            lease: Some(lease.clone()),
        }
    }

    /// Holds an existing blob in this handle's lease (if any) and tells whether it is (still) there.
    pub fn hold(&self, digest: &Digest) -> Result<bool, BlobError> {
        if let Some(l) = &self.lease {
            l.protect_blob(digest)?;
        }
        Ok(self.contains(digest))
    }

    /// The lease this handle writes under, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The path a blob lives at (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.algorithm().as_str()).join(digest.hex())
    }

    /// The staging directory on the store's filesystem.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, BlobError> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BlobError::NotFound(digest.clone())),
            Err(e) => Err(BlobError::Io {
                op: "stat",
                path: self.path(digest),
                source: e,
            }),
        }
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, BlobError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BlobError::NotFound(digest.clone()),
            _ => BlobError::Io {
                op: "open",
                path,
                source: e,
            },
        })
    }

    /// Reads a small blob (manifest, config, index) fully, checking it against `max` bytes first.
    pub fn read_small(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, BlobError> {
        let size = self.size(digest)?;
        if size > max {
            return Err(BlobError::SizeMismatch {
                digest: digest.clone(),
                expected: max,
                actual: size,
            });
        }
        let path = self.path(digest);
        fs::read(&path).map_err(BlobError::io("read", path))
    }

    /// Starts writing a blob whose digest is computed as it is written (sha256).
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        self.writer_with(Algorithm::Sha256)
    }

    /// Starts writing a blob hashed with `algorithm` (to verify a sha512-addressed blob).
    pub fn writer_with(&self, algorithm: Algorithm) -> Result<BlobWriter, BlobError> {
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.tmp)
            .map_err(BlobError::io("create temp file in", &self.tmp))?;
        // tempfile makes it 0600; the blob it becomes is public.
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(BLOB_MODE))
            .map_err(BlobError::io("chmod", tmp.path()))?;
        Ok(BlobWriter {
            inner: HashingWriter::with_algorithm(io::BufWriter::with_capacity(256 * 1024, tmp), algorithm),
            blobs: self.blobs.clone(),
            lease: self.lease.clone(),
        })
    }

    /// Stores bytes, returning their digest.
    pub fn put_bytes(&self, data: &[u8]) -> Result<(Digest, u64), BlobError> {
        let digest = Digest::sha256_of(data);
        if self.contains(&digest) {
            // An existing blob may be unreferenced garbage to prune: lease it, then check it survived.
            if let Some(l) = &self.lease {
                l.protect_blob(&digest)?;
            }
            if self.contains(&digest) {
                return Ok((digest, data.len() as u64));
            }
        }
        let mut w = self.writer()?;
        w.write_all(data).map_err(BlobError::io("write", &self.tmp))?;
        w.commit()
    }

    /// Streams `reader` into the store, verifying it against `expected` digest and size.
    /// On mismatch nothing is stored and the temp file is removed.
    pub fn put_verified<R: Read>(
        &self,
        mut reader: R,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<u64, BlobError> {
        let mut w = self.writer_with(expected.algorithm())?;
        // Copy with a bound so a lying source can't make us write more than announced (+1 to detect it).
        let n = match expected_size {
            Some(size) => io::copy(&mut (&mut reader).take(size + 1), &mut w),
            None => io::copy(&mut reader, &mut w),
        }
        .map_err(BlobError::io("write blob from stream into", &self.tmp))?;
        if let Some(size) = expected_size
            && n != size
        {
            return Err(BlobError::SizeMismatch {
                digest: expected.clone(),
                expected: size,
                actual: n,
            });
        }
        w.commit_expect(expected)?;
        Ok(n)
    }

    /// Removes a blob (used by `rmi`/`prune`/`fsck --repair`). Missing blobs are not an error.
    pub fn remove(&self, digest: &Digest) -> Result<(), BlobError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BlobError::Io {
                op: "remove",
                path,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// All digests present under `blobs/` (entries that are not valid digests are skipped).
    pub fn list(&self) -> Result<Vec<Digest>, BlobError> {
        let mut out = Vec::new();
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.blobs.join(algo.as_str());
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(BlobError::Io {
                        op: "list",
                        path: dir,
                        source: e,
                    });
                }
            };
            for entry in rd {
                let entry = entry.map_err(BlobError::io("list", &dir))?;
                if let Some(name) = entry.file_name().to_str()
                    && let Ok(d) = Digest::new(algo, name)
                {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written: hashes and counts as it goes, lands at its address only on `commit`.
/// Dropping it without committing removes the temp file.
pub struct BlobWriter {
    inner: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
    blobs: PathBuf,
    lease: Option<Lease>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.inner.count()
    }

    /// Finishes the blob and moves it to its content address; returns digest and size.
    pub fn commit(self) -> Result<(Digest, u64), BlobError> {
        let (buf, digest, size) = self.inner.finish();
        let tmp = buf.into_inner().map_err(|e| BlobError::Io {
            op: "flush blob",
            path: PathBuf::from("tmp"),
            source: e.into_error(),
        })?;
        let dir = self.blobs.join(digest.algorithm().as_str());
        let dest = dir.join(digest.hex());
        tmp.as_file()
            .sync_all()
            .map_err(BlobError::io("fsync", tmp.path()))?;
        create_dir_with_mode(&dir, BLOB_DIR_MODE)?;
        // Recorded before the blob appears: until the image is tagged, the lease is all that keeps it.
        if let Some(l) = &self.lease {
            l.protect_blob(&digest)?;
        }
        tmp.persist(&dest).map_err(|e| BlobError::Io {
            op: "rename blob to",
            path: dest,
            source: e.error,
        })?;
        Ok((digest, size))
    }

    /// Like `commit`, but only if the content hashes to `expected`.
    pub fn commit_expect(self, expected: &Digest) -> Result<u64, BlobError> {
        let actual = self.inner.hasher_peek();
        if &actual != expected {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let (_, size) = self.commit()?;
        Ok(size)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (d, n) = store.put_bytes(b"abc").unwrap();
        assert_eq!(n, 3);
        assert_eq!(d, Digest::sha256_of(b"abc"));
        assert_eq!(fs::read(store.path(&d)).unwrap(), b"abc");
        assert_eq!(store.list().unwrap(), vec![d]);
    }

    #[test]
    fn mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let wrong = Digest::sha256_of(b"something else");
        let err = store.put_verified(&b"abc"[..], &wrong, Some(3)).unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }), "{err}");
        let err = store
            .put_verified(&b"abcd"[..], &Digest::sha256_of(b"abc"), Some(3))
            .unwrap_err();
        assert!(matches!(err, BlobError::SizeMismatch { .. }), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(store.tmp_dir()).unwrap().count(),
            0,
            "temp files left behind"
        );
    }

    #[test]
    fn modes_do_not_come_from_tempfile_or_umask() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let (d, _) = store.put_bytes(b"public").unwrap();
        assert_eq!(mode(&store.path(&d)), 0o644);
        let mut w = store.writer().unwrap();
        w.write_all(b"streamed").unwrap();
        let (d, _) = w.commit().unwrap();
        assert_eq!(mode(&store.path(&d)), 0o644);
        assert_eq!(mode(&dir.path().join("store/blobs")), 0o755);
        assert_eq!(mode(&dir.path().join("store/blobs/sha256")), 0o755);
        assert_eq!(mode(store.tmp_dir()), 0o700);
        // A sha512 blob lands in a directory made on demand, with the same mode.
        let data = b"sha512 content";
        let mut h = crate::digest::Hasher::new(Algorithm::Sha512);
        h.update(data);
        let want = h.finish();
        store.put_verified(&data[..], &want, None).unwrap();
        assert_eq!(mode(&dir.path().join("store/blobs/sha512")), 0o755);
        assert_eq!(mode(&store.path(&want)), 0o644);
    }

    #[test]
    fn verified_put_accepts_right_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"abc");
        assert_eq!(store.put_verified(&b"abc"[..], &d, Some(3)).unwrap(), 3);
        assert!(store.contains(&d));
    }
}
