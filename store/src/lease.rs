//! Leases: what a live build or container uses, which garbage collection must not remove (containerd's
//! leases, kept in files instead of a database).
//!
//! ```text
//! leases/<id>                       held with an exclusive flock by its owner for its lifetime; one line
//!                                   per protected item, appended before the item is created or used:
//!                                   `snapshot <name>`, `blob <digest>`, `while <path under the root>`
//! tmp/lease-<id>/                   the owner's temp files (a leased [`crate::Store`]'s `tmp_dir`)
//! snapshots/staging/lease-<id>/     its unpacks and overlay upper dirs in progress
//! ```
//!
//! A lease is live while its flock is held, or, once [`Lease::persist`]ed (a detached container outlives
//! the `lamina run` that started it), while one of its `while` paths exists (the container's state dir).
//! flock locks die with their process, even by SIGKILL, so a dead owner's lease is detectably dead: prune
//! takes its lock and removes the file and its temp dirs.
//!
//! Races with prune are closed by the store lock: a lease is created and every item is recorded under the
//! shared store lock, and prune holds the exclusive one while it marks and sweeps. An item recorded before
//! prune starts is seen by it; one recorded after it is created (or re-created, by `ensure_chain`) after
//! prune is done. A lease file is created under a dot name, locked, then renamed into place, so prune never
//! sees an unlocked live lease.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{FlockOperation, flock};

use crate::digest::Digest;

/// Prefix of a lease's directories under `tmp/` and `snapshots/staging/`.
pub const DIR_PREFIX: &str = "lease-";
/// Lease files are at most this big when read by prune (a build records a few lines per step).
const MAX_LEASE_SIZE: u64 = 16 << 20;

/// Errors of leases.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease: {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lease {lease}: {path} is not a plain relative path under the store root")]
    BadPath { lease: String, path: PathBuf },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LeaseError + 'a {
    move |source| LeaseError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// A held lease; cheap to clone (all clones are one lease). The lease ends when the last clone is dropped:
/// its file and temp dirs are removed (or, if persisted, only its temp dirs).
#[derive(Clone, Debug)]
pub struct Lease {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: String,
    root: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    staging: PathBuf,
    /// Locked exclusively for the lease's lifetime; appended to (O_APPEND, one write per line).
    file: File,
    persist: AtomicBool,
}

fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // pid: unique among live processes; time and counter: unique against a dead owner's leftovers.
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// A private (0700) directory, created with that mode so it is never briefly open to others.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

impl Lease {
    /// Creates a lease in the store at `root`. Takes the shared store lock while it does.
    pub(crate) fn create(root: &Path) -> Result<Lease, LeaseError> {
        let _lock = shared_store_lock(root)?;
        let dir = root.join("leases");
        private_dir(&dir).map_err(io_err("create directory", &dir))?;
        let id = new_id();
        let path = dir.join(&id);
        let new = dir.join(format!(".new-{id}"));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&new)
            .map_err(io_err("create", &new))?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| io_err("lock", &new)(e.into()))?;
        fs::rename(&new, &path).map_err(io_err("rename into place", &path))?;
        let tmp = root.join("tmp").join(format!("{DIR_PREFIX}{id}"));
        let staging = root
            .join("snapshots")
            .join("staging")
            .join(format!("{DIR_PREFIX}{id}"));
        let lease = Lease {
            inner: Arc::new(Inner {
                id,
                root: root.to_owned(),
                path,
                tmp,
                staging,
                file,
                persist: AtomicBool::new(false),
            }),
        };
        let parents = [
            root.join("tmp"),
            root.join("snapshots"),
            root.join("snapshots").join("staging"),
        ];
        for d in parents.iter().chain([&lease.inner.tmp, &lease.inner.staging]) {
            private_dir(d).map_err(io_err("create directory", d))?;
        }
        Ok(lease)
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// `leases/<id>`.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The lease's own temp dir, `tmp/lease-<id>`: whatever is in it lives as long as the lease.
    pub fn tmp_dir(&self) -> &Path {
        &self.inner.tmp
    }

    /// `snapshots/staging/lease-<id>`: the lease's snapshot staging dirs (unpacks, overlay upper dirs).
    pub fn staging_dir(&self) -> &Path {
        &self.inner.staging
    }

    fn record(&self, line: String) -> Result<(), LeaseError> {
        let _lock = shared_store_lock(&self.inner.root)?;
        // One write(2) of a whole line on an O_APPEND file: prune never sees half an entry of an item that
        // already exists (the item is created only after this returns).
        (&self.inner.file)
            .write_all(line.as_bytes())
            .map_err(io_err("append to", &self.inner.path))
    }

    /// Protects the snapshot named `name` (a directory or alias under `snapshots/`). Call before creating
    /// or using it; if it was about to be collected, check it still exists afterwards.
    pub fn protect_snapshot(&self, name: &str) -> Result<(), LeaseError> {
        self.record(format!("snapshot {name}\n"))
    }

    /// Protects a blob. Call before its rename into place (or, for an existing blob, before relying on it).
    pub fn protect_blob(&self, digest: &Digest) -> Result<(), LeaseError> {
        self.record(format!("blob {digest}\n"))
    }

    /// Keeps a persisted lease alive while `rel` (a path relative to the store root, e.g. a container's
    /// state dir) exists.
    pub fn keep_while(&self, rel: &Path) -> Result<(), LeaseError> {
        if !is_plain_relative(rel) {
            return Err(LeaseError::BadPath {
                lease: self.inner.id.clone(),
                path: rel.to_owned(),
            });
        }
        let Some(s) = rel.to_str().filter(|s| !s.contains('\n')) else {
            return Err(LeaseError::BadPath {
                lease: self.inner.id.clone(),
                path: rel.to_owned(),
            });
        };
        self.record(format!("while {s}\n"))
    }

    /// Leaves the lease file in place when this process lets go of it: from then on it is live only while
    /// one of its [`Lease::keep_while`] paths exists.
    pub fn persist(self) {
        self.inner.persist.store(true, Ordering::SeqCst);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Temp dirs are this process's scratch space either way; the file goes unless persisted. The file
        // last, so prune never sees our dirs without a live lease while we still use them.
        let _ = crate::prune::remove_tree(&self.tmp);
        let _ = crate::prune::remove_tree(&self.staging);
        if !self.persist.load(Ordering::SeqCst) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn is_plain_relative(p: &Path) -> bool {
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn shared_store_lock(root: &Path) -> Result<crate::lock::LockGuard, LeaseError> {
    let p = root.join("lock");
    crate::lock::acquire(&p, false, || {}).map_err(io_err("lock", &p))
}

/// What one lease protects.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Protected {
    pub snapshots: BTreeSet<String>,
    pub blobs: BTreeSet<Digest>,
    pub while_paths: Vec<PathBuf>,
}

/// Parses a lease file. Unknown or incomplete lines (a write in progress) are skipped.
pub fn parse(text: &str) -> Protected {
    let mut out = Protected::default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    for line in complete.lines() {
        match line.split_once(' ') {
            Some(("snapshot", name)) => {
                out.snapshots.insert(name.to_owned());
            }
            Some(("blob", d)) => {
                if let Ok(d) = d.parse() {
                    out.blobs.insert(d);
                }
            }
            Some(("while", p)) if is_plain_relative(Path::new(p)) => out.while_paths.push(PathBuf::from(p)),
            _ => {}
        }
    }
    out
}

/// The leases of a store, as prune sees them. Call only under the exclusive store lock (nothing is then
/// added to a lease, and no lease is created).
#[derive(Debug, Default)]
pub struct LeaseScan {
    /// Ids of live leases.
    pub live: BTreeSet<String>,
    /// Everything the live leases protect.
    pub protected: Protected,
    /// Lease files of dead owners (not locked, no `while` path left), and leftovers of interrupted
    /// creations (`.new-*`).
    pub dead: Vec<PathBuf>,
}

impl LeaseScan {
    /// Whether a `tmp/` or `snapshots/staging/` entry named `name` belongs to a live lease.
    pub fn owns_dir(&self, name: &str) -> bool {
        name.strip_prefix(DIR_PREFIX)
            .is_some_and(|id| self.live.contains(id))
    }
}

/// Reads every lease under `root/leases`, telling live from dead by trying their locks.
pub fn scan(root: &Path) -> Result<LeaseScan, LeaseError> {
    let dir = root.join("leases");
    let mut out = LeaseScan::default();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err("list", &dir)(e)),
    };
    for e in rd {
        let e = e.map_err(io_err("list", &dir))?;
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(".new-") {
            // Created under the shared store lock and renamed before it was released: a leftover.
            out.dead.push(path);
            continue;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let held = match flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => false,
            Err(rustix::io::Errno::WOULDBLOCK) => true,
            Err(e) => return Err(io_err("lock", &path)(e.into())),
        };
        let mut text = String::new();
        (&file)
            .take(MAX_LEASE_SIZE)
            .read_to_string(&mut text)
            .map_err(io_err("read", &path))?;
        let p = parse(&text);
        let live = held
            || p.while_paths
                .iter()
                .any(|w| fs::symlink_metadata(root.join(w)).is_ok());
        if live {
            out.live.insert(name);
            out.protected.snapshots.extend(p.snapshots);
            out.protected.blobs.extend(p.blobs);
        } else {
            out.dead.push(path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_partial_and_unknown_lines() {
        let d = Digest::sha256_of(b"x");
        let p = parse(&format!(
            "snapshot abc\nblob {d}\nwhile containers/1\nwhile ../etc\nbogus\nsnapshot half"
        ));
        assert_eq!(p.snapshots, BTreeSet::from(["abc".to_owned()]));
        assert_eq!(p.blobs, BTreeSet::from([d]));
        assert_eq!(p.while_paths, vec![PathBuf::from("containers/1")]);
    }

    #[test]
    fn a_lease_is_live_while_held_and_dead_once_dropped() {
        let t = tempfile::tempdir().unwrap();
        let lease = Lease::create(t.path()).unwrap();
        lease.protect_snapshot("s1").unwrap();
        let s = scan(t.path()).unwrap();
        assert!(s.live.contains(lease.id()));
        assert!(s.protected.snapshots.contains("s1"));
        assert!(s.owns_dir(&format!("lease-{}", lease.id())));
        let path = lease.path().to_owned();
        let tmp = lease.tmp_dir().to_owned();
        drop(lease);
        assert!(!path.exists() && !tmp.exists(), "a dropped lease leaves nothing");
    }

    #[test]
    fn a_persisted_lease_lives_while_its_path_exists() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("containers/c1")).unwrap();
        let lease = Lease::create(t.path()).unwrap();
        lease.keep_while(Path::new("containers/c1")).unwrap();
        lease.protect_snapshot("s1").unwrap();
        assert!(lease.keep_while(Path::new("../c1")).is_err());
        let id = lease.id().to_owned();
        lease.persist();
        let s = scan(t.path()).unwrap();
        assert!(s.live.contains(&id), "unlocked but its container exists");
        assert!(s.protected.snapshots.contains("s1"));
        fs::remove_dir(t.path().join("containers/c1")).unwrap();
        let s = scan(t.path()).unwrap();
        assert!(s.live.is_empty());
        assert_eq!(s.dead, vec![t.path().join("leases").join(&id)]);
    }
}
