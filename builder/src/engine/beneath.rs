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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::engine::context::Context;
    use crate::engine::copy::{CopySpec, copy};
    use crate::engine::view::View;

    /// The classic write-through: the first source of one COPY leaves `q -> <canary>` in the new layer, the
    /// second writes `q/f`. A copier joining `upper/dst/q/f` writes the host canary; ours refuses.
    #[test]
    fn copy_never_writes_through_a_link_it_created() {
        let t = tempfile::tempdir().unwrap();
        let canary = t.path().join("canary");
        fs::create_dir_all(&canary).unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("p")).unwrap();
        symlink(&canary, ctx.join("p/q")).unwrap();
        fs::create_dir_all(ctx.join("r/q")).unwrap();
        fs::write(ctx.join("r/q/f"), "pwned").unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(upper.join("dst")).unwrap();
        // Naive: the plain join of the second destination, once `q` is copied, is inside the canary.
        symlink(&canary, upper.join("dst/q")).unwrap();
        assert_eq!(
            fs::canonicalize(upper.join("dst/q")).unwrap(),
            canary,
            "payload is real"
        );
        fs::remove_file(upper.join("dst/q")).unwrap();

        let c = Context::open(&ctx, None, None).unwrap();
        let no = |_: &str, _: bool| false;
        let spec = CopySpec {
            line: 7,
            sources: vec!["p/./".into(), "r/./q/f".into()],
            dest: "/dst/".into(),
            workdir: "/".into(),
            owner: None,
            chmod: None,
            parents: true,
            exclude: &no,
            from_context: true,
            extract: None,
            link_files: false,
            unprivileged: false,
        };
        let err = copy(&c, &View::empty(), &upper, &spec).unwrap_err();
        let msg = crate::engine::layers::error_chain(&err);
        assert!(
            msg.contains("Dockerfile:7") && msg.contains("does not write through"),
            "{msg}"
        );
        assert_eq!(fs::read_dir(&canary).unwrap().count(), 0, "canary written");

        // slot() itself: a link anywhere above the entry is refused, a missing parent says so.
        let b = Beneath::open(&upper).unwrap();
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            b.slot(&s(&["dst", "q", "f"])),
            Err(BuildError::WriteThroughLink { .. })
        ));
        assert!(is_missing_parent(&b.slot(&s(&["nope", "f"])).err().unwrap()));
        assert!(
            b.slot(&s(&["dst", "q"])).is_ok(),
            "the link itself may be replaced"
        );
    }
}
