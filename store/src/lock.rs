//! flock-based locks shared by every lamina process using one store.
//!
//! Two lock files, always taken in this order and never the other way round, so they cannot deadlock:
//!
//! - `lock`, the store lock: shared by anything that reads or adds content (build, pull, load, import,
//!   inspect, …) for the whole operation; exclusive for `prune` and `fsck --repair`, which delete files. A
//!   writer's blobs are unreferenced until its tag lands, so holding the shared lock is what keeps prune from
//!   collecting them mid-write.
//! - `index.lock`: exclusive around each read-modify-write of index.json (taken inside `set_tag`/`untag`).
//!   Readers don't take it: index.json is replaced by rename, so they always see a whole version.
//!
//! flock locks belong to the open file description, so they vanish when the process dies (even by SIGKILL)
//! and two guards in one process conflict exactly like two processes would. Do not ask for the exclusive store
//! lock while holding a shared one in the same process: flock would wait forever.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    path: PathBuf,
    exclusive: bool,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

/// Takes a lock on `path` (created if missing), blocking until it is free. `on_wait` is called once if the
/// lock is busy, so the CLI can say what it is waiting for.
pub fn acquire(path: &Path, exclusive: bool, on_wait: impl FnOnce()) -> io::Result<LockGuard> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let (try_op, op) = if exclusive {
        (
            FlockOperation::NonBlockingLockExclusive,
            FlockOperation::LockExclusive,
        )
    } else {
        (FlockOperation::NonBlockingLockShared, FlockOperation::LockShared)
    };
    match flock(&file, try_op) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            on_wait();
            loop {
                match flock(&file, op) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(LockGuard {
        _file: file,
        path: path.to_owned(),
        exclusive,
    })
}

/// Tries to take a lock without waiting; `Ok(None)` if someone else holds it.
pub fn try_acquire(path: &Path, exclusive: bool) -> io::Result<Option<LockGuard>> {
    let mut busy = false;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(&file, op) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => busy = true,
        Err(e) => return Err(e.into()),
    }
    Ok((!busy).then(|| LockGuard {
        _file: file,
        path: path.to_owned(),
        exclusive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_exclusive_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let a = acquire(&p, false, || {}).unwrap();
        let b = try_acquire(&p, false).unwrap();
        assert!(b.is_some(), "two shared locks must coexist");
        assert!(
            try_acquire(&p, true).unwrap().is_none(),
            "exclusive while shared held"
        );
        drop(a);
        drop(b);
        let x = try_acquire(&p, true).unwrap().expect("free lock");
        assert!(x.is_exclusive());
        assert!(
            try_acquire(&p, false).unwrap().is_none(),
            "shared while exclusive held"
        );
        drop(x);
        assert!(try_acquire(&p, false).unwrap().is_some());
    }

    #[test]
    fn waiting_is_reported_and_ends_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = acquire(&p, true, || {}).unwrap();
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            let mut waited = false;
            let g = acquire(&p2, true, || waited = true).unwrap();
            drop(g);
            waited
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
        assert!(t.join().unwrap(), "on_wait must run when the lock is busy");
    }
}
