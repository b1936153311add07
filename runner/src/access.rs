//! A container's root filesystem from outside the container, for `lamina cp`, `export` and
//! `commit`. Every path inside it is resolved with `openat2(RESOLVE_IN_ROOT)` against the root's
//! fd, so a symlink in the container (`/etc -> /`, `../../..`) never leads out of it; callers get
//! an fd (and its `/proc/self/fd/N` name for APIs that want a path) and work below that.
//!
//! Two views:
//! - [`RootView::snapshot`]: the image layers with the container's upper dir on top, read-only in
//!   effect (writes go to a scratch tmpfs), in a private mount namespace of this process. It is
//!   the container's own files without its runtime mounts (/proc, binds, tmpfs), as `docker
//!   export` sees them; it works whether or not the container runs.
//! - [`RootView::live`]: a running container's root as its init sees it (`/proc/PID/root`), for
//!   writing into a running container; [`RootView::writable`] mounts a stopped one's own upper dir.
//!
//! A running container is frozen for as long as a view of it is open (as `docker commit` pauses),
//! so no process of it swaps a directory for a symlink under a walk that is under way.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::cgroupfs::Cgroup;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount the container's root filesystem")]
    Mount(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot freeze the container for the copy")]
    Freeze(#[source] crate::cgroupfs::CgroupError),
    #[error("no such file or directory in the container: {path}")]
    NotFound { path: String },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AccessError + 'a {
    move |source| AccessError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// An open container root; see the module docs.
pub struct RootView {
    root: OwnedFd,
    /// The overlay this view mounted, unmounted on drop.
    mounted: Option<PathBuf>,
    _scratch: Option<tempfile::TempDir>,
    /// Frozen by us: thawed on drop.
    frozen: Option<Cgroup>,
}

impl RootView {
    /// The image layers (`lowers`, bottom → top) under the container's `upper` dir, read-only in
    /// effect. `freeze_pid`: a running container's init, frozen while the view is open.
    pub fn snapshot(
        lowers: &[PathBuf],
        upper: &Path,
        freeze_pid: Option<i32>,
    ) -> Result<RootView, AccessError> {
        let frozen = freeze(freeze_pid)?;
        let scratch = tempfile::tempdir().map_err(io("create", Path::new("a temp dir")))?;
        private_mounts()?;
        let base = scratch.path();
        let none: Option<&str> = None;
        // upper and work of the view on a tmpfs: what a walk might write never reaches the container.
        nix::mount::mount(
            Some("tmpfs"),
            base,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID,
            none,
        )
        .map_err(|e| io("mount a tmpfs on", base)(e.into()))?;
        let (u, w, target) = (base.join("u"), base.join("w"), base.join("root"));
        for d in [&u, &w, &target] {
            std::fs::create_dir_all(d).map_err(io("create", d))?;
        }
        let mut layers = lowers.to_vec();
        layers.push(upper.to_path_buf());
        crate::helper::mount_overlay_for_access(base, &layers, &u, &w, &target)?;
        let root = open_dir(&target)?;
        Ok(RootView {
            root,
            mounted: Some(target),
            _scratch: Some(scratch),
            frozen,
        })
    }

    /// A stopped container's root with its own upper and work dirs: writes land in the container.
    pub fn writable(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<RootView, AccessError> {
        let scratch = tempfile::tempdir().map_err(io("create", Path::new("a temp dir")))?;
        private_mounts()?;
        let target = scratch.path().join("root");
        std::fs::create_dir_all(&target).map_err(io("create", &target))?;
        crate::clear_work_dir(work);
        crate::helper::mount_overlay_for_access(scratch.path(), lowers, upper, work, &target)?;
        let root = open_dir(&target)?;
        Ok(RootView {
            root,
            mounted: Some(target),
            _scratch: Some(scratch),
            frozen: None,
        })
    }

    /// A running container's root as its init `pid` sees it, frozen while the view is open.
    pub fn live(pid: i32) -> Result<RootView, AccessError> {
        let frozen = freeze(Some(pid))?;
        let root = open_dir(Path::new(&format!("/proc/{pid}/root")))?;
        Ok(RootView {
            root,
            mounted: None,
            _scratch: None,
            frozen,
        })
    }

    /// Where a mounted view's root is, in this process's mount namespace (`None` for a live view,
    /// which has only its fd).
    pub fn path(&self) -> Option<&Path> {
        self.mounted.as_deref()
    }

    /// `path` (absolute or not, taken from the container's `/`) resolved inside the root. With
    /// `follow_last` false a final symlink is the result itself, as `docker cp` copies a link.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<OwnedFd, AccessError> {
        let rel = path.trim_start_matches('/');
        let flags = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let open = |p: &str, extra: OFlags| {
            let p = if p.is_empty() { "." } else { p };
            rustix::fs::openat2(
                &self.root,
                p,
                OFlags::PATH | OFlags::CLOEXEC | extra,
                Mode::empty(),
                flags,
            )
        };
        let not_found = |e: rustix::io::Errno| {
            if e == rustix::io::Errno::NOENT {
                AccessError::NotFound {
                    path: path.to_string(),
                }
            } else {
                io("resolve", Path::new(path))(e.into())
            }
        };
        let trimmed = rel.trim_end_matches('/');
        if follow_last
            || trimmed.is_empty()
            || rel.ends_with('/')
            || trimmed.ends_with("/.")
            || trimmed == "."
        {
            return open(rel, OFlags::empty()).map_err(not_found);
        }
        let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        if name == ".." {
            return open(trimmed, OFlags::empty()).map_err(not_found);
        }
        let dir = open(parent, OFlags::DIRECTORY).map_err(not_found)?;
        rustix::fs::openat(
            &dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(not_found)
    }
}

/// The name the kernel resolves to the object `fd` refers to, for path-taking APIs; valid while the
/// fd is open. (The magic link is followed once, to exactly that object.)
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Drop for RootView {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(scratch) = &self._scratch {
            let _ = nix::mount::umount2(scratch.path(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(cg) = self.frozen.take() {
            let _ = cg.set_frozen(false);
        }
    }
}

fn open_dir(p: &Path) -> Result<OwnedFd, AccessError> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", p)(e.into()))
}

/// This process's own mount namespace, slave to the host's, so the view's mounts are nobody
/// else's and vanish with the process whatever way it ends. Needs a single-threaded caller.
fn private_mounts() -> Result<(), AccessError> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let r = DONE.get_or_init(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        let none: Option<&str> = None;
        nix::mount::mount(
            none,
            "/",
            none,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
            none,
        )
        .map_err(|e| e.to_string())
    });
    r.clone().map_err(|e| AccessError::Io {
        op: "make a private mount namespace for",
        path: PathBuf::from("the container's root"),
        source: std::io::Error::other(e),
    })
}

fn freeze(pid: Option<i32>) -> Result<Option<Cgroup>, AccessError> {
    let Some(pid) = pid else { return Ok(None) };
    let cg = Cgroup::of_pid(pid, Path::new(crate::cgroupfs::MOUNT_ROOT)).map_err(AccessError::Freeze)?;
    if cg.frozen() {
        // Paused by the user: stays paused.
        return Ok(None);
    }
    cg.set_frozen(true).map_err(AccessError::Freeze)?;
    Ok(Some(cg))
}
