//! The container's root filesystem: the overlay mount, and path work confined to it.
//!
//! Everything that touches a path inside the image resolves it with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink planted in the image (`/etc/passwd -> /host/file`, a mount target `-> /`) resolves inside the
//! rootfs, never on the host.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::SetupError;

/// overlayfs options that keep the upper dir a plain diff: no redirect xattrs for renamed dirs, no
/// metadata-only copy-ups, no inode index (the layer writer reads the upper dir as a tree).
/// `volatile`: no syncfs of the whole upper filesystem on unmount, which took up to half a second on a
/// busy disk. Upper dirs are never mounted as upper again after a crash (they become snapshots or
/// are discarded), so overlayfs' volatile caveat does not apply; durability of snapshots is the layer
/// store's business, like docker's overlay2 which does not fsync layers either.
const OVERLAY_FLAGS: &str = "index=off,redirect_dir=off,metacopy=off,volatile";

/// Mount the overlay at `target`. Lower dirs are given bottom → top. Short symlinks `base/l/N` stand
/// in for the lower paths (relative to `base`, which becomes the cwd for the mount call) so even a
/// hundred-layer chain fits in the one page the kernel accepts for mount options.
pub(crate) fn mount_overlay(
    base: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    userxattr: bool,
) -> Result<(), SetupError> {
    let links = base.join("l");
    std::fs::create_dir_all(&links).map_err(|e| SetupError::io("create", &links, e))?;
    let mut names = Vec::new();
    if lowers.is_empty() {
        let empty = links.join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| SetupError::io("create", &empty, e))?;
        names.push("l/empty".to_string());
    }
    for (i, lower) in lowers.iter().enumerate().rev() {
        let link = links.join(i.to_string());
        std::os::unix::fs::symlink(lower, &link).map_err(|e| SetupError::io("symlink", &link, e))?;
        names.push(format!("l/{i}"));
    }
    // In a user namespace overlayfs may not use trusted.* xattrs; `userxattr` (kernel 5.11) makes it
    // keep opaque markers in user.overlay.* instead, which the layer writer reads. The kernel then
    // rejects `redirect_dir=off` (redirects could be followed from user xattrs), but `nofollow` —
    // neither created nor followed — keeps the upper dir a plain diff just the same.
    let flags = if userxattr {
        OVERLAY_FLAGS.replace("redirect_dir=off", "redirect_dir=nofollow") + ",userxattr"
    } else {
        OVERLAY_FLAGS.to_string()
    };
    let data = format!(
        "lowerdir={},upperdir={},workdir={},{flags}",
        names.join(":"),
        upper.display(),
        work.display(),
    );
    if data.len() >= 4096 {
        return Err(SetupError::OverlayOptionsTooLong { layers: lowers.len() });
    }
    std::env::set_current_dir(base).map_err(|e| SetupError::io("chdir", base, e))?;
    let res = nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    );
    let _ = std::env::set_current_dir("/");
    res.map_err(|e| SetupError::Mount {
        what: "overlay rootfs",
        target: target.to_path_buf(),
        source: e.into(),
    })
}

/// Where no mount target may resolve: the runtime mounts proc, sysfs and the /dev tmpfs after the
/// user mounts, so a mount there is hidden at best, and a bind into /proc is how procfs
/// over-mount attacks (runc CVE-2019-16884) start.
pub(crate) const MOUNT_FORBIDDEN: &[&str] = &["/proc", "/sys", "/dev"];
/// Where no working directory may resolve (see [`Root::mkdir_all`]).
pub(crate) const CWD_FORBIDDEN: &[&str] = &["/proc"];

/// An open rootfs directory; all lookups are confined to it.
pub(crate) struct Root {
    fd: OwnedFd,
    host_path: PathBuf,
    /// Paths this run created as mount targets (container paths), removed again afterwards so they
    /// don't end up in a build step's diff.
    pub(crate) created: Vec<PathBuf>,
}

/// No RESOLVE_NO_XDEV: by the time a later mount target is resolved, the rootfs holds this run's
/// earlier mounts (a bind at /a, then one at /a/b), and crossing into them is wanted. IN_ROOT keeps
/// every lookup, through whatever mount, inside the rootfs.
fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

impl Root {
    pub(crate) fn open(host_path: &Path) -> Result<Root, SetupError> {
        let fd = rustix::fs::open(
            host_path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SetupError::io("open", host_path, e.into()))?;
        Ok(Root {
            fd,
            host_path: host_path.to_path_buf(),
            created: Vec::new(),
        })
    }

    fn open_in(&self, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel = relative(path);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel.as_path()
        };
        rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        )
    }

    /// Read a small file of the image (/etc/passwd, /etc/group); `None` when it does not exist.
    pub(crate) fn read(&self, path: &str) -> Result<Option<String>, SetupError> {
        match self.open_in(Path::new(path), OFlags::RDONLY) {
            Ok(fd) => {
                let mut f = std::fs::File::from(fd);
                let mut s = String::new();
                use std::io::Read;
                f.read_to_string(&mut s)
                    .map_err(|e| SetupError::io("read", Path::new(path), e))?;
                Ok(Some(s))
            }
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
            Err(e) => Err(SetupError::io("open", Path::new(path), e.into())),
        }
    }

    /// Where `fd` really is, as a path inside the container.
    fn container_path(&self, fd: &impl AsFd) -> Result<PathBuf, SetupError> {
        let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd()));
        let real = std::fs::read_link(&link).map_err(|e| SetupError::io("readlink", Path::new(&link), e))?;
        match real.strip_prefix(&self.host_path) {
            Ok(rel) => Ok(Path::new("/").join(rel)),
            Err(_) => Err(SetupError::Escape { path: real }),
        }
    }

    /// `mkdir -p` inside the rootfs; returns the resolved container path. A dangling symlink on the
    /// way is followed inside the rootfs and its target created, like runc's securejoin + MkdirAll.
    ///
    /// A path that resolves (through an image symlink) into one of `forbidden` is refused before
    /// anything is created there: `WORKDIR /w` with `/w -> /proc/self/fd/7` in the image passes any
    /// lexical check yet is CVE-2024-21626's host-fd cwd once the runtime chdirs into it.
    pub(crate) fn mkdir_all(&mut self, path: &Path, forbidden: &[&str]) -> Result<PathBuf, SetupError> {
        self.mkdir_all_depth(path, forbidden, 0)
    }

    fn refuse(resolved: &Path, asked: &Path, forbidden: &[&str]) -> Result<(), SetupError> {
        if forbidden.iter().any(|f| resolved.starts_with(f)) {
            return Err(SetupError::IntoKernelFs {
                path: asked.to_path_buf(),
                resolved: resolved.to_path_buf(),
            });
        }
        Ok(())
    }

    fn mkdir_all_depth(
        &mut self,
        path: &Path,
        forbidden: &[&str],
        depth: u32,
    ) -> Result<PathBuf, SetupError> {
        if depth > 40 {
            return Err(SetupError::io("resolve", path, Errno::LOOP.into()));
        }
        let comps: Vec<_> = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let mut cur = PathBuf::from("/");
        for (i, comp) in comps.iter().enumerate() {
            let Component::Normal(name) = comp else { continue };
            let next = cur.join(name);
            match self.open_in(&next, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => {
                    cur = self.container_path(&fd)?;
                    Self::refuse(&cur, path, forbidden)?;
                }
                Err(Errno::NOENT) => {
                    let parent = self
                        .open_in(&cur, OFlags::PATH | OFlags::DIRECTORY)
                        .map_err(|e| SetupError::io("open", &cur, e.into()))?;
                    match rustix::fs::mkdirat(&parent, *name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => self.created.push(next.clone()),
                        Err(Errno::EXIST) => {
                            let rest: PathBuf = comps[i + 1..].iter().collect();
                            let target = self.dangling_target(&parent, &cur, name.as_ref(), &next)?;
                            return self.mkdir_all_depth(&target.join(rest), forbidden, depth + 1);
                        }
                        Err(e) => return Err(SetupError::io("mkdir", &next, e.into())),
                    }
                    let fd = self
                        .open_in(&next, OFlags::PATH | OFlags::DIRECTORY)
                        .map_err(|e| SetupError::io("open", &next, e.into()))?;
                    cur = self.container_path(&fd)?;
                    Self::refuse(&cur, path, forbidden)?;
                }
                Err(e) => return Err(SetupError::io("open", &next, e.into())),
            }
        }
        Ok(cur)
    }

    /// `name` in `parent` exists but does not resolve: a dangling symlink. Its target, interpreted
    /// inside the rootfs.
    fn dangling_target(
        &self,
        parent: &OwnedFd,
        cur: &Path,
        name: &std::ffi::OsStr,
        full: &Path,
    ) -> Result<PathBuf, SetupError> {
        let link = rustix::fs::readlinkat(parent, name, Vec::new())
            .map_err(|e| SetupError::io("readlink", full, e.into()))?;
        let link = PathBuf::from(std::ffi::OsStr::from_bytes(link.as_bytes()));
        let joined = if link.is_absolute() { link } else { cur.join(link) };
        Ok(crate::validate::normalize(&joined))
    }

    /// Make sure a mount target exists (a dir, or an empty file for file binds) and return its
    /// resolved container path: the spec names that path, so the runtime never follows an image
    /// symlink when it mounts.
    pub(crate) fn mount_target(&mut self, path: &str, dir: bool) -> Result<PathBuf, SetupError> {
        self.mount_target_depth(&crate::validate::normalize(Path::new(path)), dir, 0)
    }

    /// [`Root::mount_target`], opened: an `O_PATH` fd on the target for `move_mount`, looked up
    /// in-root by the kernel.
    pub(crate) fn mount_target_fd(&mut self, path: &str, dir: bool) -> Result<OwnedFd, SetupError> {
        let resolved = self.mount_target(path, dir)?;
        let flags = if dir {
            OFlags::PATH | OFlags::DIRECTORY
        } else {
            OFlags::PATH
        };
        self.open_in(&resolved, flags)
            .map_err(|e| SetupError::io("open", &resolved, e.into()))
    }

    fn mount_target_depth(&mut self, path: &Path, dir: bool, depth: u32) -> Result<PathBuf, SetupError> {
        if dir {
            return self.mkdir_all(path, MOUNT_FORBIDDEN);
        }
        if depth > 40 {
            return Err(SetupError::io("resolve", path, Errno::LOOP.into()));
        }
        if let Ok(fd) = self.open_in(path, OFlags::PATH) {
            let resolved = self.container_path(&fd)?;
            Self::refuse(&resolved, path, MOUNT_FORBIDDEN)?;
            return Ok(resolved);
        }
        let parent_path = path.parent().unwrap_or(Path::new("/"));
        let name = path.file_name().ok_or_else(|| SetupError::Escape {
            path: path.to_path_buf(),
        })?;
        let parent = self.mkdir_all(parent_path, MOUNT_FORBIDDEN)?;
        let pfd = self
            .open_in(&parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| SetupError::io("open", &parent, e.into()))?;
        match rustix::fs::openat(
            &pfd,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(_) => self.created.push(parent.join(name)),
            Err(Errno::EXIST) => {
                let target = self.dangling_target(&pfd, &parent, name, path)?;
                return self.mount_target_depth(&target, false, depth + 1);
            }
            Err(e) => return Err(SetupError::io("create", path, e.into())),
        }
        let fd = self
            .open_in(&parent.join(name), OFlags::PATH)
            .map_err(|e| SetupError::io("open", path, e.into()))?;
        self.container_path(&fd)
    }

    /// Remove the mount targets this run created (newest first; dirs only when empty).
    pub(crate) fn remove_created(&mut self) {
        let created = std::mem::take(&mut self.created);
        self.remove(created);
    }

    /// Remove these created paths, newest first (dirs only when empty).
    pub(crate) fn remove(&mut self, created: Vec<PathBuf>) {
        for path in created.into_iter().rev() {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let rel = relative(parent);
            let rel = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel.as_path()
            };
            let Ok(pfd) = rustix::fs::openat2(
                &self.fd,
                rel,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve_flags(),
            ) else {
                continue;
            };
            if rustix::fs::unlinkat(&pfd, name, rustix::fs::AtFlags::empty()).is_err() {
                let _ = rustix::fs::unlinkat(&pfd, name, rustix::fs::AtFlags::REMOVEDIR);
            }
        }
    }
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}
