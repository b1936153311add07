//! The local build cache, owned by the store: step records under `cache/build/`, `RUN --mount=type=cache`
//! directories under `cache/mounts/`, and the build context stat memos under `cache/context/`.
//!
//! ```text
//! cache/build/<key hex>        one JSON [`CacheRecord`] per step key; its mtime is the last time a build
//!                              used it (set on write and on every hit), which GC orders by
//! cache/mounts/<name>/         a cache mount's files; <name> hashes (id, uid, gid, mode)
//! cache/mounts/<name>.use      flock'ed shared by every build using the mount, exclusive by GC while it
//!                              removes it; its mtime is the mount's last use
//! cache/mounts/<name>.lock     flock'ed exclusive by `sharing=locked` users for one RUN
//! cache/context/<hash>         a context dir's stat memo (written by the builder); mtime = last use
//! ```
//!
//! The builder computes cache keys and decides hits; everything about where and how the cache lives on
//! disk is here, so GC (gc.rs) reads typed records. Records written before this module have the same JSON
//! shape and load as they are; a record that does not parse is a cache miss (and GC removes it).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layout::{Store, StoreError};

/// A layer as the image manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

/// One cached step: key → the layer it produced, and the local snapshot dir id holding its unpacked files.
/// The same JSON is exported and imported by `--cache-to/--cache-from`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: Digest,
    pub layer: CachedLayer,
    /// Snapshot id (dir name under `snapshots/`) with the layer's files as an overlay lower dir; may be
    /// gone (pruned / imported cache), then the layer blob is unpacked again.
    pub snapshot: Option<String>,
    /// The history `created_by` of the step, for display and export.
    pub created_by: String,
    /// Unix seconds when the record was made.
    pub created: i64,
}

/// A record with what GC needs to know about it.
#[derive(Clone, Debug)]
pub struct RecordEntry {
    pub record: CacheRecord,
    pub path: PathBuf,
    pub last_used: SystemTime,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Marks a file used now (its mtime). Best effort: a failure only makes GC think it older.
fn touch(path: &Path) {
    if let Ok(f) = File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::symlink_metadata(path).and_then(|m| m.modified()).ok()
}

/// A temp file of an atomic write (tempfile's `.tmpXXXX`) that may still be in progress: records and memos
/// are written without the store lock, so GC leaves such files alone until they are an hour old (one write
/// takes milliseconds; older ones are leftovers of a crash).
fn maybe_in_flight(path: &Path) -> bool {
    let young = mtime(path)
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < std::time::Duration::from_secs(3600));
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
        && young
}

/// The step records: one small JSON file per key under `cache/build/<hex>`.
#[derive(Clone, Debug)]
pub struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    /// `cache/build` of the store whose cache dir is `cache_dir`, created if missing.
    pub fn open(cache_dir: &Path) -> Result<BuildCache, StoreError> {
        let dir = cache_dir.join("build");
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        Ok(BuildCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(key.hex())
    }

    /// The record of `key`, marked used now. Unreadable or foreign records are misses.
    pub fn get(&self, key: &Digest) -> Option<CacheRecord> {
        let path = self.path(key);
        let rec: CacheRecord = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
        if rec.key != *key {
            return None;
        }
        touch(&path);
        Some(rec)
    }

    /// Writes `rec` atomically (temp file in the same dir, rename).
    pub fn put(&self, rec: &CacheRecord) -> Result<(), StoreError> {
        let path = self.path(&rec.key);
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(io_err("create temp file in", &self.dir))?;
        let data = serde_json::to_vec(rec).map_err(|e| io_err("encode", &path)(io::Error::other(e)))?;
        tmp.write_all(&data).map_err(io_err("write", &path))?;
        tmp.persist(&path)
            .map_err(|e| io_err("rename into place", &path)(e.error))?;
        Ok(())
    }

    /// Every readable record, by key.
    pub fn list(&self) -> Vec<CacheRecord> {
        let mut out: Vec<CacheRecord> = self.entries().0.into_iter().map(|e| e.record).collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Every record with its last use, and the paths of files that are not records (an interrupted
    /// write's temp file, a record of an unknown format): GC removes those. A temp file that may be a
    /// write in progress is neither.
    pub fn entries(&self) -> (Vec<RecordEntry>, Vec<PathBuf>) {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return (good, bad);
        };
        for e in rd.flatten() {
            let path = e.path();
            let rec = fs::read(&path)
                .ok()
                .and_then(|d| serde_json::from_slice::<CacheRecord>(&d).ok());
            match (rec, mtime(&path)) {
                (Some(record), Some(last_used)) => good.push(RecordEntry {
                    record,
                    path,
                    last_used,
                }),
                _ if maybe_in_flight(&path) => {}
                _ => bad.push(path),
            }
        }
        (good, bad)
    }

    pub fn remove(&self, key: &Digest) {
        let _ = fs::remove_file(self.path(key));
    }
}

/// What a `RUN --mount=type=cache` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMountSpec {
    /// The mount's `id` (default: its target).
    pub id: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// `sharing=locked`: one user at a time.
    pub locked: bool,
    /// Running without privilege to chown (rootless tests): a refused chown keeps the caller's ids.
    pub unprivileged: bool,
}

/// A cache mount in use: its directory, and the locks that keep GC (and, if locked, other builds) off it
/// until this is dropped.
#[derive(Debug)]
pub struct CacheMount {
    pub path: PathBuf,
    _use: File,
    _locked: Option<File>,
}

/// A cache mount as GC and `system df` see it.
#[derive(Clone, Debug)]
pub struct MountEntry {
    pub name: String,
    pub path: PathBuf,
    pub last_used: SystemTime,
}

/// `cache/mounts` of a store root.
pub(crate) fn mounts_dir(root: &Path) -> PathBuf {
    root.join("cache").join("mounts")
}

/// `cache/context` of a store root.
pub(crate) fn context_dir(root: &Path) -> PathBuf {
    root.join("cache").join("context")
}

fn lock_file(path: &Path) -> Result<File, StoreError> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open", path))
}

impl Store {
    /// The build cache records.
    pub fn build_cache(&self) -> Result<BuildCache, StoreError> {
        BuildCache::open(&self.cache_dir())
    }

    /// The directory of a cache mount, created (owned by uid:gid, with `mode`) if missing, and held for
    /// the caller until the returned guard is dropped. With `locked`, waits for other locked users.
    ///
    /// The mount is created and its use lock taken under the shared store lock, so GC (which holds the
    /// exclusive one) either removed it before or sees it in use.
    pub fn cache_mount(&self, spec: &CacheMountSpec) -> Result<CacheMount, StoreError> {
        let name =
            Digest::sha256_of(format!("{}\0{}\0{}\0{:o}", spec.id, spec.uid, spec.gid, spec.mode).as_bytes());
        let mounts = mounts_dir(self.root());
        let dir = mounts.join(&name.hex()[..32]);
        let use_lock = {
            let _store = self.lock_shared()?;
            fs::create_dir_all(&mounts).map_err(io_err("create directory", &mounts))?;
            let use_path = dir.with_extension("use");
            let f = lock_file(&use_path)?;
            flock(&f, FlockOperation::LockShared).map_err(|e| io_err("lock", &use_path)(e.into()))?;
            let _ = f.set_modified(SystemTime::now());
            if !dir.exists() {
                self.create_mount_dir(&dir, spec)?;
            }
            f
        };
        let locked = if spec.locked {
            // Outside the store lock: this may wait for a whole RUN of another build.
            let lp = dir.with_extension("lock");
            let f = lock_file(&lp)?;
            flock(&f, FlockOperation::LockExclusive).map_err(|e| io_err("lock", &lp)(e.into()))?;
            Some(f)
        } else {
            None
        };
        Ok(CacheMount {
            path: dir,
            _use: use_lock,
            _locked: locked,
        })
    }

    fn create_mount_dir(&self, dir: &Path, spec: &CacheMountSpec) -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let staging = tempfile::Builder::new()
            .prefix("cache-mount-")
            .tempdir_in(self.tmp_dir())
            .map_err(io_err("create temp dir in", self.tmp_dir()))?
            .keep();
        let io = io_err("prepare cache mount", &staging);
        fs::set_permissions(&staging, fs::Permissions::from_mode(spec.mode))
            .and_then(
                |()| match std::os::unix::fs::chown(&staging, Some(spec.uid), Some(spec.gid)) {
                    Err(e) if spec.unprivileged && e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
                    r => r,
                },
            )
            .map_err(io)?;
        if fs::rename(&staging, dir).is_err() {
            // Lost a race: another build created it.
            let _ = fs::remove_dir(&staging);
        }
        Ok(())
    }

    /// Every cache mount directory with its last use.
    pub fn cache_mounts(&self) -> Vec<MountEntry> {
        let mut out = Vec::new();
        let dir = mounts_dir(self.root());
        let Ok(rd) = fs::read_dir(&dir) else {
            return out;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.contains('.') || !path.is_dir() {
                continue;
            }
            let last_used = mtime(&path.with_extension("use"))
                .or_else(|| mtime(&path))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.push(MountEntry {
                name,
                path,
                last_used,
            });
        }
        out
    }

    /// The stat memo file of the build context at `context_root` (canonical), marked used now. The
    /// builder reads and writes it; GC removes memos not used for a while.
    pub fn context_memo(&self, context_root: &Path) -> PathBuf {
        context_memo(&self.cache_dir(), context_root)
    }

    /// The memo `kind` derives from blob `digest` (the SBOM's events of a layer, say), marked used now. It
    /// lives beside the context memos and is collected with them, least recently used first; a caller
    /// writes it whole (temp file and rename in the same dir) and treats an unreadable one as missing.
    pub fn blob_memo(&self, kind: &str, digest: &Digest) -> PathBuf {
        let id = Digest::sha256_of(format!("{kind}\0{digest}").as_bytes());
        let path = context_dir(self.root()).join(&id.hex()[..32]);
        touch(&path);
        path
    }
}

/// [`Store::context_memo`] given the store's cache dir.
pub fn context_memo(cache_dir: &Path, context_root: &Path) -> PathBuf {
    let id = Digest::sha256_of(context_root.as_os_str().as_encoded_bytes());
    let path = cache_dir.join("context").join(&id.hex()[..32]);
    touch(&path);
    path
}

/// Tries to take a cache mount for removal: `None` while some build uses it. Call under the exclusive
/// store lock (no build is then between creating the mount and locking it).
pub(crate) fn try_take_mount(entry: &MountEntry) -> Result<Option<File>, StoreError> {
    let use_path = entry.path.with_extension("use");
    let f = lock_file(&use_path)?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(io_err("lock", &use_path)(e.into())),
    }
}

/// Every context memo with its last use.
pub(crate) fn context_memos(root: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(rd) = fs::read_dir(context_dir(root)) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()) && !maybe_in_flight(&e.path()))
        .map(|e| {
            let p = e.path();
            let t = mtime(&p).unwrap_or(SystemTime::UNIX_EPOCH);
            (p, t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &Digest) -> CacheRecord {
        CacheRecord {
            key: key.clone(),
            layer: CachedLayer {
                digest: Digest::sha256_of(b"blob"),
                diff_id: Digest::sha256_of(b"tar"),
                size: 4,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            },
            snapshot: Some("abc".into()),
            created_by: "RUN x".into(),
            created: 0,
        }
    }

    #[test]
    fn records_roundtrip_and_hits_refresh_last_use() {
        let t = tempfile::tempdir().unwrap();
        let c = BuildCache::open(t.path()).unwrap();
        let key = Digest::sha256_of(b"k");
        assert!(c.get(&key).is_none());
        c.put(&rec(&key)).unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        File::options()
            .write(true)
            .open(c.path(&key))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(c.entries().0[0].last_used, old);
        assert_eq!(c.get(&key).unwrap(), rec(&key));
        assert!(c.entries().0[0].last_used > old, "a hit is a use");
        assert_eq!(c.list().len(), 1);
    }

    #[test]
    fn old_format_loads_and_junk_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let c = BuildCache::open(t.path()).unwrap();
        let key = Digest::sha256_of(b"k");
        // A record exactly as the builder wrote them before the store owned the cache.
        let old = serde_json::json!({"key": key.to_string(),
            "layer": {"digest": Digest::sha256_of(b"b").to_string(), "diff_id": Digest::sha256_of(b"d").to_string(),
                      "size": 1, "media_type": "application/vnd.oci.image.layer.v1.tar+gzip"},
            "snapshot": null, "created_by": "RUN y", "created": 5});
        fs::write(c.path(&key), old.to_string()).unwrap();
        fs::write(c.dir().join(".tmpXYZ"), b"{half").unwrap();
        fs::write(c.dir().join(".tmpNEW"), b"{in progress").unwrap();
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(c.dir().join(".tmpXYZ"))
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        // Filed under another key: never a hit for it.
        let other = Digest::sha256_of(b"other");
        fs::write(c.path(&other), serde_json::to_vec(&rec(&key)).unwrap()).unwrap();
        assert!(c.get(&other).is_none());
        assert_eq!(c.get(&key).unwrap().created_by, "RUN y");
        let (good, bad) = c.entries();
        assert_eq!(good.len(), 2);
        assert_eq!(
            bad,
            vec![c.dir().join(".tmpXYZ")],
            "an old half-written file, not a fresh one"
        );
    }

    #[test]
    fn cache_mounts_are_held_while_used() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let spec = CacheMountSpec {
            id: "/root/.cache".into(),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            mode: 0o755,
            locked: false,
            unprivileged: false,
        };
        let m = store.cache_mount(&spec).unwrap();
        assert!(m.path.is_dir());
        let again = store.cache_mount(&spec).unwrap();
        assert_eq!(again.path, m.path, "same spec, same dir");
        let entries = store.cache_mounts();
        assert_eq!(entries.len(), 1);
        assert!(try_take_mount(&entries[0]).unwrap().is_none(), "in use");
        drop((m, again));
        assert!(
            try_take_mount(&entries[0]).unwrap().is_some(),
            "free once dropped"
        );
    }
}
