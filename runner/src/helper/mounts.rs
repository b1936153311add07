//! User mounts (binds, tmpfs) and the generated /etc files, made by the helper from file descriptors
//! before the container's init starts.
//!
//! runc CVE-2021-30465 was a mount made from path strings: between the runtime checking a target and
//! calling mount(2), a container swapped a path component for a symlink and the kernel followed it
//! out of the rootfs. Here no path string reaches mount(2):
//! - the source is opened once with `O_PATH | O_CLOEXEC` and cloned as a detached tree
//!   (`open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` on that fd); `ro` and private propagation are set
//!   on the detached tree (`mount_setattr`, recursive, so no submount stays writable);
//! - a tmpfs is made with `fsopen`/`fsmount`, never by name;
//! - the destination is resolved by [`Root::mount_target_fd`] with `openat2(RESOLVE_IN_ROOT)` and the
//!   tree is attached with `move_mount` onto that fd.
//!
//! The mounts sit on the rootfs the helper hands libcontainer, which bind-mounts the rootfs
//! recursively into the container's mount namespace, so they appear in the container in request
//! order. libcontainer then mounts /proc, /dev and /sys over them, so binds there are refused up
//! front (`validate::request`).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use super::SetupError;
use super::rootfs::Root;
use crate::request::Mount;

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MS_PRIVATE: u64 = 1 << 18;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// `struct mount_attr` of mount_setattr(2) (linux/mount.h, MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The mounts this run made, as fds on each mount's root, so teardown unmounts exactly them
/// (through `/proc/self/fd/N`) whatever the container did to the paths above them; with each, the
/// stubs its target needed (which may sit inside an earlier mount, e.g. a dir made in a volume).
#[derive(Default)]
pub(crate) struct Mounted(Vec<(OwnedFd, Vec<PathBuf>)>);

impl Mounted {
    /// Newest first: detach a mount, then remove its stubs while the mounts they live in are still
    /// there.
    pub(crate) fn unmount_all(&mut self, mut root: Option<&mut Root>) {
        for (fd, stubs) in self.0.drain(..).rev() {
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let _ = nix::mount::umount2(path.as_str(), nix::mount::MntFlags::MNT_DETACH);
            if let Some(root) = root.as_deref_mut() {
                root.remove(stubs);
            }
        }
    }
}

/// Make the generated /etc files (`(container path, file in the bundle)`) and then the request's
/// mounts, in order.
pub(crate) fn apply(
    root: &mut Root,
    etc_files: &[(PathBuf, PathBuf)],
    mounts: &[Mount],
    done: &mut Mounted,
) -> Result<(), SetupError> {
    for (dest, src) in etc_files {
        bind(root, src, &dest.to_string_lossy(), false, done)?;
    }
    for m in mounts {
        match m {
            Mount::Bind {
                source,
                destination,
                readonly,
            } => bind(root, source, destination, *readonly, done)?,
            Mount::Tmpfs {
                destination,
                size,
                mode,
            } => tmpfs(root, destination, *size, *mode, done)?,
        }
    }
    Ok(())
}

fn bind(
    root: &mut Root,
    source: &Path,
    destination: &str,
    readonly: bool,
    done: &mut Mounted,
) -> Result<(), SetupError> {
    let src = rustix::fs::open(source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| SetupError::io("open", source, e.into()))?;
    let is_dir = rustix::fs::fstat(&src)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
        .map_err(|e| SetupError::io("stat", source, e.into()))?;
    let tree = open_tree(
        &src,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| mount_error("bind source", source, e))?;
    let attr_set = if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    setattr(&tree, attr_set).map_err(|e| mount_error("bind attributes", source, e))?;
    attach(root, tree, destination, is_dir, done)
}

fn tmpfs(
    root: &mut Root,
    destination: &str,
    size: u64,
    mode: u32,
    done: &mut Mounted,
) -> Result<(), SetupError> {
    let what = Path::new(destination);
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| mount_error("tmpfs", what, e))?;
    fsconfig_set_string(&fs, "mode", format!("{mode:o}")).map_err(|e| mount_error("tmpfs", what, e))?;
    if size > 0 {
        fsconfig_set_string(&fs, "size", size.to_string()).map_err(|e| mount_error("tmpfs", what, e))?;
    }
    fsconfig_create(&fs).map_err(|e| mount_error("tmpfs", what, e))?;
    let tree = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(|e| mount_error("tmpfs", what, e))?;
    setattr(&tree, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV).map_err(|e| mount_error("tmpfs", what, e))?;
    attach(root, tree, destination, true, done)
}

/// Resolve `destination` in the rootfs (creating it) and move the detached `tree` onto it.
fn attach(
    root: &mut Root,
    tree: OwnedFd,
    destination: &str,
    is_dir: bool,
    done: &mut Mounted,
) -> Result<(), SetupError> {
    let before = root.created.len();
    let target = root.mount_target_fd(destination, is_dir)?;
    let stubs = root.created.split_off(before.min(root.created.len()));
    move_mount(
        &tree,
        "",
        &target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| {
        root.created.extend(stubs.iter().cloned());
        mount_error("mount", Path::new(destination), e)
    })?;
    done.0.push((tree, stubs));
    Ok(())
}

/// Set `attr_set` and private propagation on every mount of a detached tree.
fn setattr(tree: &impl AsFd, attr_set: u64) -> Result<(), rustix::io::Errno> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr(2) reads `size_of::<MountAttr>()` bytes from a live, properly laid-out
    // `struct mount_attr` (VER0, 32 bytes) and an empty NUL-terminated path; `tree` is an open fd
    // for the duration of the call. It writes nothing back.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(rustix::io::Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        ))
    }
}

fn mount_error(what: &'static str, target: &Path, e: rustix::io::Errno) -> SetupError {
    SetupError::Mount {
        what,
        target: target.to_path_buf(),
        source: e.into(),
    }
}
