//! Writes into a new snapshot dir (a step's upper dir) that never follow a link out of it.
//!
//! The upper dir is lamina's own, but what a step puts in it is not: COPY copies symlinks from the context
//! or an image as they are, so a later source of the same COPY may have to write *below* a link it just
//! created (`COPY a b /dst/` where `a/x -> /tmp/canary` and `b/x/f` exists — a copier joining paths writes
//! the host's `/tmp/canary/f`). Every entry is therefore addressed by a [`Slot`]: its parent dir opened
//! from the upper's root fd one component at a time with `O_NOFOLLOW`, a link in the way being an error,
//! and the entry itself named as `/proc/self/fd/<parent>/<name>` so the kernel resolves nothing but the
//! last component, which every call here creates or treats without following.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::BuildError;
use super::view::proc_fd_path;

/// The upper dir, held open.
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
}

/// One entry of the upper: its parent dir's fd (kept open while the slot lives) and its name.
pub struct Slot {
    pub dir: OwnedFd,
    pub name: String,
    /// `/proc/self/fd/<dir>/<name>`: only the last component is resolved by the kernel.
    pub at: PathBuf,
    /// The entry's path under the upper, for messages.
    pub shown: PathBuf,
}

fn open_dir_nofollow(dir: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl Beneath {
    pub fn open(path: &Path) -> Result<Beneath, BuildError> {
        let root = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| BuildError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Beneath {
            root,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The slot of `comps` (non-empty): every ancestor must be a real dir of the upper. A missing one is
    /// an `Io` error of kind NotFound (callers create parents and retry); a link is [`BuildError::WriteThroughLink`].
    pub fn slot(&self, comps: &[String]) -> Result<Slot, BuildError> {
        let mut shown = self.path.clone();
        let Some((name, parents)) = comps.split_last() else {
            return Err(BuildError::Io {
                path: shown,
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        };
        let mut dir = rustix::fs::openat(
            &self.root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| BuildError::Io {
            path: shown.clone(),
            source: e.into(),
        })?;
        for c in parents {
            shown.push(c);
            dir = match open_dir_nofollow(&dir, c) {
                Ok(d) => d,
                Err(e) => {
                    // O_NOFOLLOW|O_DIRECTORY on a link fails (ENOTDIR/ELOOP): say which it was.
                    let is_link = rustix::fs::statat(&dir, c.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| {
                            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
                        });
                    if is_link {
                        return Err(BuildError::WriteThroughLink { path: shown });
                    }
                    return Err(BuildError::Io {
                        path: shown,
                        source: e,
                    });
                }
            };
        }
        shown.push(name);
        let at = proc_fd_path(&dir).join(name);
        Ok(Slot {
            dir,
            name: name.clone(),
            at,
            shown,
        })
    }
}

/// Whether `e` says a parent of the slot is missing.
pub fn is_missing_parent(e: &BuildError) -> bool {
    matches!(e, BuildError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}
