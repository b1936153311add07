//! A read-only merged view over a stack of snapshot dirs (overlayfs semantics without a mount), so COPY can
//! look up destinations, read /etc/passwd and take `--from` sources without a sandbox.
//!
//! Lower dirs hold overlay-format whiteouts (char device 0:0) and opaque dirs (`trusted.overlay.opaque=y`),
//! exactly what an overlay upper dir or an applied layer contains.
//!
//! Every tree here (the context, a stage, a base image) is untrusted. Lookups therefore never hand a path
//! string to the kernel to resolve: each layer is walked from its root fd one component at a time with
//! `openat(O_PATH|O_NOFOLLOW)`, symlinks are read with `readlinkat` on the link's own fd and expanded inside
//! the tree (`..` clamped at the root), and what is found is used through its fd ([`Found`]). A resolution
//! that needs more than [`MAX_LINKS`] links fails with [`ResolveError::TooManyLinks`] — it never returns a
//! partial result whose last component is still a link (issue 11: a 41-link chain used to reach the host
//! when the leftover link was bind-mounted).

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

/// Symlinks followed while resolving one path, as Linux's own limit (MAXSYMLINKS).
pub const MAX_LINKS: usize = 40;

/// A stack of dirs, top first.
#[derive(Clone, Debug, Default)]
pub struct View {
    layers: Vec<PathBuf>,
}

/// Why a path of an untrusted tree could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path:?}: too many levels of symbolic links (more than {MAX_LINKS}) in the build tree")]
    TooManyLinks { path: String },
    #[error("{path:?}: reading a symbolic link of the build tree")]
    ReadLink {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// One entry found in the view: where it is (for messages and layer attribution), its metadata (not
/// followed) and an `O_PATH` fd on it, through which it is read — never through `path`.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub meta: Metadata,
    pub fd: OwnedFd,
}

/// `/proc/self/fd/N`: reopening through the magic link reaches exactly the inode the fd holds, with no
/// path resolution beyond it.
pub fn proc_fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Found {
    /// Opens the entry (a regular file) for reading, through its fd.
    pub fn open_read(&self) -> io::Result<File> {
        File::open(proc_fd_path(&self.fd))
    }

    /// The entry's link target (it must be a symlink), read from its own fd.
    pub fn read_link(&self) -> io::Result<PathBuf> {
        let t = rustix::fs::readlinkat(&self.fd, "", Vec::new())?;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(t.as_bytes())))
    }

    /// A path naming this entry through its fd (`/proc/self/fd/N`), valid while `self` lives.
    pub fn fd_path(&self) -> PathBuf {
        proc_fd_path(&self.fd)
    }
}

pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the dir open at `dir` (any fd, O_PATH included) is an overlay opaque dir.
fn is_opaque_fd(dir: &impl AsRawFd) -> bool {
    let p = proc_fd_path(dir);
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        let mut buf = [0u8; 4];
        if let Ok(n) = rustix::fs::getxattr(&p, name, &mut buf)
            && n >= 1
            && buf[0] == b'y'
        {
            return true;
        }
    }
    false
}

fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// One component below `dir`, never following a link.
fn open_child(dir: &impl AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn meta_of(fd: OwnedFd) -> io::Result<(OwnedFd, Metadata)> {
    let f = File::from(fd);
    let m = f.metadata()?;
    Ok((OwnedFd::from(f), m))
}

/// Splits an absolute-or-relative container path into normal components, dropping `.`, `/` and clamping `..`
/// at the root (container paths are resolved as if chrooted).
pub fn clean_components(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Every prefix is visible (stage and image trees).
fn all_visible(_: &[String], _: &Metadata) -> bool {
    true
}

impl View {
    /// `layers` top first.
    pub fn new(layers: Vec<PathBuf>) -> View {
        View { layers }
    }

    pub fn empty() -> View {
        View { layers: Vec::new() }
    }

    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// Looks up `comps` (already cleaned, no symlink following) through the stack, walking each layer from
    /// its root fd. The root of an empty view (scratch) is not an entry: callers treat `[]` as an existing dir.
    pub fn lookup(&self, comps: &[String]) -> Option<Found> {
        for (li, layer) in self.layers.iter().enumerate() {
            // Opaque markers only matter when there is a lower layer to hide (not in the one-layer
            // context, where the xattr reads were most of a warm build's syscalls).
            let has_lower = li + 1 < self.layers.len();
            let Ok(root) = open_root(layer) else { continue };
            let mut p = layer.clone();
            if comps.is_empty() {
                let (fd, meta) = meta_of(root).ok()?;
                return Some(Found { path: p, meta, fd });
            }
            let mut fd = root;
            // An opaque ancestor in this layer hides every lower layer below it.
            let mut last_layer = false;
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                let (next, meta) = match open_child(&fd, c).and_then(meta_of) {
                    Ok(x) => x,
                    Err(_) if last_layer => return None,
                    Err(_) => break,
                };
                if is_whiteout(&meta) {
                    return None;
                }
                if i + 1 == comps.len() {
                    return Some(Found {
                        path: p,
                        meta,
                        fd: next,
                    });
                }
                if !meta.is_dir() {
                    // A non-dir ancestor in a higher layer hides everything below it.
                    return None;
                }
                if has_lower && is_opaque_fd(&next) {
                    last_layer = true;
                }
                fd = next;
            }
        }
        None
    }

    /// Lists a directory of the merged tree: name → whether it is a dir, whiteouts and opaque dirs honoured.
    pub fn read_dir(&self, comps: &[String]) -> io::Result<BTreeMap<String, bool>> {
        let mut out = BTreeMap::new();
        let mut hidden = std::collections::BTreeSet::new();
        for (li, layer) in self.layers.iter().enumerate() {
            let has_lower = li + 1 < self.layers.len();
            let Ok(mut fd) = open_root(layer) else { continue };
            // Check this layer's ancestors: a whiteout/non-dir stops, a missing one skips the layer.
            let mut present = true;
            for c in comps {
                match open_child(&fd, c).and_then(meta_of) {
                    Ok((next, m)) if m.is_dir() => fd = next,
                    Ok(_) => return Ok(out),
                    Err(_) => {
                        present = false;
                        break;
                    }
                }
            }
            if !present {
                continue;
            }
            let dir = rustix::fs::openat(
                &fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            for ent in rustix::fs::Dir::read_from(&dir)? {
                let ent = ent?;
                let name = ent.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let name = String::from_utf8_lossy(name).into_owned();
                if out.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let st = rustix::fs::statat(&dir, ent.file_name(), AtFlags::SYMLINK_NOFOLLOW)?;
                let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
                if ft == rustix::fs::FileType::CharacterDevice && st.st_rdev == 0 {
                    hidden.insert(name);
                } else {
                    out.insert(name, ft == rustix::fs::FileType::Directory);
                }
            }
            if has_lower && is_opaque_fd(&fd) {
                break;
            }
        }
        Ok(out)
    }

    /// The entry names of `dir`, a directory of a one-layer tree (the context) found by
    /// [`View::lookup`], sorted; names that are not UTF-8 are left out, as `lookup` of a lossy
    /// `read_dir` name would. With [`View::child_of`]: one `openat` and one `fstat` per entry instead
    /// of a walk from the root.
    pub fn names_of(dir: &Found) -> io::Result<Vec<String>> {
        let rd = rustix::fs::openat(
            &dir.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for ent in rustix::fs::Dir::read_from(&rd)? {
            let ent = ent?;
            let raw = ent.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            if let Ok(name) = std::str::from_utf8(raw) {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Entry `name` of `dir` (see [`View::names_of`]), opened through `dir`'s fd; None when it is gone
    /// or a whiteout.
    pub fn child_of(dir: &Found, name: &str) -> Option<Found> {
        let (fd, meta) = open_child(&dir.fd, name).and_then(meta_of).ok()?;
        if is_whiteout(&meta) {
            return None;
        }
        Some(Found {
            path: dir.path.join(name),
            meta,
            fd,
        })
    }

    /// Resolves `path` (container-absolute or relative to `/`) following symlinks inside the view, like a
    /// chroot'ed realpath; a missing tail is kept (cleaned, `..` clamped). Returns cleaned components, every
    /// one of which exists as a non-link (but perhaps the last, when `follow_last` is false) or is missing.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<String>, ResolveError> {
        self.resolve_visible(path, follow_last, &all_visible)
    }

    /// [`View::resolve`] where `visible(prefix, meta)` false makes an entry count as missing (.dockerignore:
    /// a link may not lead into an ignored path).
    pub fn resolve_visible(
        &self,
        path: &str,
        follow_last: bool,
        visible: &dyn Fn(&[String], &Metadata) -> bool,
    ) -> Result<Vec<String>, ResolveError> {
        let mut pending: Vec<String> = clean_components(path);
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let is_last = pending.is_empty();
            if is_last && !follow_last {
                break;
            }
            let found = self.lookup(&done).filter(|f| visible(&done, &f.meta));
            let Some(found) = found else {
                // Missing: the rest is created fresh, no more links to follow; `..` in it (from a link
                // target) is clamped like any other, never left for a later join to climb out with.
                while let Some(c) = pending.pop() {
                    if c == ".." {
                        done.pop();
                    } else {
                        done.push(c);
                    }
                }
                break;
            };
            if found.meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_LINKS {
                    return Err(ResolveError::TooManyLinks {
                        path: path.to_string(),
                    });
                }
                let target = found.read_link().map_err(|source| ResolveError::ReadLink {
                    path: done.join("/"),
                    source,
                })?;
                done.pop();
                if target.is_absolute() {
                    done.clear();
                }
                let mut t: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".to_string()),
                        _ => None,
                    })
                    .collect();
                t.reverse();
                pending.extend(t);
            }
        }
        Ok(done)
    }

    /// Reads a small file of the merged tree (e.g. /etc/passwd), following symlinks in the view; None when
    /// it is missing, no regular file, or its links don't resolve.
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let comps = self.resolve(path, true).ok()?;
        let found = self.lookup(&comps)?;
        if !found.meta.is_file() {
            return None;
        }
        let mut data = Vec::new();
        // Bounded: a 1 GiB "/etc/passwd" in a hostile image must not exhaust the builder.
        found
            .open_read()
            .ok()?
            .take(64 << 20)
            .read_to_end(&mut data)
            .ok()?;
        Some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn whiteouts_and_links() {
        let t = tempfile::tempdir().unwrap();
        let low = t.path().join("low");
        let up = t.path().join("up");
        fs::create_dir_all(low.join("etc")).unwrap();
        fs::create_dir_all(low.join("gone")).unwrap();
        fs::write(low.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(low.join("gone/f"), "x").unwrap();
        fs::create_dir_all(&up).unwrap();
        symlink("/etc", up.join("cfg")).unwrap();
        let v = View::new(vec![up.clone(), low.clone()]);
        assert!(v.read_file("/cfg/passwd").unwrap().starts_with(b"root"));
        assert_eq!(v.resolve("/cfg/x", true).unwrap(), vec!["etc", "x"]);
        assert!(v.lookup(&s(&["gone", "f"])).is_some());
        let names = v.read_dir(&[]).unwrap();
        assert_eq!(
            names.keys().cloned().collect::<Vec<_>>(),
            vec!["cfg", "etc", "gone"]
        );
        // A whiteout needs mknod (root); skip the rest otherwise.
        if rustix::fs::mknodat(
            rustix::fs::CWD,
            up.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .is_err()
        {
            lamina_testkit::skip("mknod not permitted");
            return;
        }
        assert!(v.lookup(&s(&["gone", "f"])).is_none());
        assert!(!v.read_dir(&[]).unwrap().contains_key("gone"));
    }

    /// A chain of links longer than the kernel's own limit, and loops of any shape, are an error — the old
    /// resolver returned the 41st link unresolved and its caller joined it onto a host path.
    #[test]
    fn long_chains_and_loops_are_errors_never_partial() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/f"), "in-root").unwrap();
        let canary = t.path().join("canary");
        fs::create_dir_all(&canary).unwrap();
        // l0 -> l1 -> … -> lN, and lN -> the host canary dir (absolute).
        let chain = |prefix: &str, n: usize| {
            for i in 0..n {
                symlink(format!("{prefix}{}", i + 1), root.join(format!("{prefix}{i}"))).unwrap();
            }
            symlink(&canary, root.join(format!("{prefix}{n}"))).unwrap();
        };
        chain("a", 41);
        chain("b", 100);
        chain("c", 39);
        let v = View::new(vec![root.clone()]);
        // Naive: the old resolver stopped after 40 hops and handed back `a40`, still a link; its caller
        // joined that onto the layer's host path and the kernel followed it — to the canary.
        assert_eq!(
            fs::canonicalize(root.join("a40")).unwrap(),
            canary,
            "payload is real"
        );
        for p in ["/a0", "/a0/x", "/b0/f"] {
            let err = v.resolve(p, true).unwrap_err();
            assert!(matches!(err, ResolveError::TooManyLinks { .. }), "{p}: {err}");
            assert!(err.to_string().contains(p), "names the path: {err}");
        }
        // 40 links are fine, and the absolute target resolves inside the tree, not on the host.
        let c = v.resolve("/c0/x", true).unwrap();
        let mut want = clean_components(&canary.to_string_lossy());
        want.push("x".into());
        assert_eq!(c, want);
        assert!(v.lookup(&c).is_none(), "the host canary is not in the tree");

        symlink("self", root.join("self")).unwrap();
        symlink("pong", root.join("ping")).unwrap();
        symlink("ping/x", root.join("pong")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        symlink("../up/data/loop2", root.join("data/loop2")).unwrap();
        for p in ["/self", "/ping", "/data/loop2/f"] {
            assert!(
                matches!(v.resolve(p, true), Err(ResolveError::TooManyLinks { .. })),
                "{p}"
            );
        }
        // `..` past the root is clamped, in paths and in link targets.
        assert_eq!(v.resolve("/../../data/f", true).unwrap(), s(&["data", "f"]));
        assert_eq!(v.resolve("/up/up/data/f", true).unwrap(), s(&["data", "f"]));
        assert_eq!(v.read_file("/up/data/f").unwrap(), b"in-root");
        // A missing tail with `..` from a link target stays clamped (no `..` left for a later join).
        symlink("missing/../../../../etc", root.join("m")).unwrap();
        let r = v.resolve("/m/passwd", true).unwrap();
        assert!(!r.iter().any(|c| c == ".."), "{r:?}");
        assert_eq!(r, s(&["etc", "passwd"]));
        // Not following the last link keeps it as the last component.
        assert_eq!(v.resolve("/data/../self", false).unwrap(), s(&["self"]));
    }

    /// Opaque dirs still hide lower layers with the fd walk (needs trusted.* xattrs: root).
    #[test]
    fn opaque_dirs_hide_lower_layers() {
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        fs::create_dir_all(low.join("d")).unwrap();
        fs::write(low.join("d/old"), "o").unwrap();
        fs::create_dir_all(up.join("d")).unwrap();
        fs::write(up.join("d/new"), "n").unwrap();
        let v = View::new(vec![up.clone(), low.clone()]);
        assert!(v.lookup(&s(&["d", "old"])).is_some());
        if rustix::fs::setxattr(
            up.join("d"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            lamina_testkit::skip("trusted.* xattrs need root");
            return;
        }
        assert!(v.lookup(&s(&["d", "old"])).is_none());
        assert!(v.lookup(&s(&["d", "new"])).is_some());
        let names: Vec<_> = v.read_dir(&s(&["d"])).unwrap().into_keys().collect();
        assert_eq!(names, vec!["new"]);
    }
}
