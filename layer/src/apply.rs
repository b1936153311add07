//! The in-root layer applier: tar stream → directory, never touching anything outside it.
//!
//! Archive names are untrusted. They are normalized as names (`.` dropped, `..` clamped at the root, like
//! docker and containerd), then only the *parent* directory is resolved — inside the root with `pathrs`
//! (openat2 `RESOLVE_IN_ROOT`), so symlinks in the tree, absolute or relative, are followed as if the root
//! were `/`. The last component is created with `*at` calls relative to that parent fd and never followed
//! (`O_NOFOLLOW`/`O_EXCL`/`AT_SYMLINK_NOFOLLOW`). Hardlink targets are resolved the same way. Nothing joins
//! an archive name onto a host path.
//!
//! Parent handles are cached by normalized path; the cache is dropped whenever a directory or symlink is
//! removed or replaced, since that can change where a cached path resolves to.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use pathrs::error::ErrorKind;
use pathrs::{Handle, Root};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::read::{DEFAULT_MAX_FILE_SIZE, EntryMeta, Kind, TarReader, decompress};
use super::{LayerError, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, entry_err, lossy};

/// What to do with whiteout entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Apply them: delete the named paths (flattening layers into one tree, e.g. `unpack`).
    Delete,
    /// Keep them as overlayfs whiteouts (char device 0:0, `trusted.overlay.opaque=y`), for a per-layer
    /// snapshot used as an overlay lower dir. Needs root (or CAP_MKNOD and CAP_SYS_ADMIN).
    Overlay,
}

/// How to apply a layer.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Set owners from the archive (needs root); otherwise files belong to the caller.
    pub same_owner: bool,
    /// Largest regular file accepted.
    pub max_file_size: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Delete,
            same_owner: rustix::process::geteuid().is_root(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// Counts of what an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub whiteouts: u64,
    /// Device nodes not created because the caller may not.
    pub skipped_devices: u64,
    /// xattrs the filesystem or our privileges refused.
    pub skipped_xattrs: u64,
}

/// Applies a layer (gzip, zstd or plain tar, detected) onto `dest`.
pub fn apply_layer<R: Read>(reader: R, dest: &Path, opts: &ApplyOptions) -> Result<ApplyStats, LayerError> {
    let stream = decompress(reader).map_err(|source| LayerError::Read {
        after: "<start of archive>".into(),
        source,
    })?;
    let mut tar = TarReader::new(stream, opts.max_file_size);
    apply_tar(&mut tar, dest, opts)
}

/// Applies the entries of an already-decompressed tar stream onto `dest` (which must exist).
pub fn apply_tar<R: Read>(
    tar: &mut TarReader<R>,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    let root = Root::open(dest).map_err(|source| LayerError::Resolve {
        entry: dest.display().to_string(),
        op: "open destination root",
        source,
    })?;
    let mut a = Applier {
        root,
        opts,
        stats: ApplyStats::default(),
        cache: HashMap::new(),
        created: HashSet::new(),
        dir_times: Vec::new(),
        buf: vec![0u8; 256 * 1024],
    };
    while let Some(meta) = tar.next_entry()? {
        a.stats.entries += 1;
        a.entry(&meta, tar)?;
    }
    a.finish_dir_times()?;
    Ok(a.stats)
}

struct Applier<'o> {
    root: Root,
    opts: &'o ApplyOptions,
    stats: ApplyStats,
    cache: HashMap<Vec<u8>, Rc<Handle>>,
    /// Paths this layer wrote, which an opaque marker in the same layer must keep.
    created: HashSet<Vec<u8>>,
    dir_times: Vec<(Vec<u8>, i64, u32)>,
    buf: Vec<u8>,
}

/// Symlinks a parent walk follows before giving up, as the kernel's `MAXSYMLINKS`.
const MAX_LINK_HOPS: u32 = 40;
/// Longest archive name accepted: the kernel's PATH_MAX. Nothing longer can be created by path, and a
/// bound keeps a megabyte PAX `path` of `a/a/a/…` from becoming a million-step walk.
const MAX_NAME: usize = 4096;

/// Normalizes an archive name into components: `.` and empty parts dropped, `..` clamped at the root
/// (docker and containerd clean names lexically too; only link targets get physical `..`).
fn normalize(raw: &[u8]) -> Result<Vec<&[u8]>, LayerError> {
    if raw.len() > MAX_NAME {
        return Err(LayerError::InvalidName {
            entry: lossy(&raw[..256]),
            reason: "longer than PATH_MAX (4096 bytes)",
        });
    }
    if raw.contains(&0) {
        return Err(LayerError::InvalidName {
            entry: lossy(raw),
            reason: "contains a NUL byte",
        });
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn join_owned(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

/// A symlink target's components for an in-root walk: empty parts and `.` dropped, `..` kept, so the
/// resolver gives them the kernel's physical meaning.
fn link_components(target: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    target
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn errno_of(e: &pathrs::error::Error) -> Option<i32> {
    match e.kind() {
        ErrorKind::OsError(n) => n,
        _ => None,
    }
}

fn ts(sec: i64, nsec: u32) -> Timestamps {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Applier<'_> {
    fn resolve_err(entry: &[u8], op: &'static str) -> impl FnOnce(pathrs::error::Error) -> LayerError {
        let entry = lossy(entry);
        move |source| LayerError::Resolve { entry, op, source }
    }

    /// The directory `comps` inside the root, created (0755) where missing.
    fn parent(&mut self, comps: &[&[u8]], entry: &[u8]) -> Result<Rc<Handle>, LayerError> {
        let key = join(comps);
        if let Some(h) = self.cache.get(&key) {
            return Ok(h.clone());
        }
        let h = Rc::new(self.ensure_dir(comps, entry)?);
        if self.cache.len() > 4096 {
            self.cache.clear();
        }
        self.cache.insert(key, h.clone());
        Ok(h)
    }

    /// Like `mkdir -p` with the root as `/`: a dangling symlink on the way (`var/run -> /run`) gets its
    /// target created in-root, which `pathrs`' own mkdir_all refuses.
    ///
    /// Every lookup is `pathrs` (openat2 `RESOLVE_IN_ROOT`) or an `*at` call on a handle it returned, so the
    /// kernel keeps each step inside the root. A dangling link is followed by splicing its target into the
    /// remaining path *unnormalized*: its `..` then resolve physically, as the kernel would, not lexically
    /// against the link's name. Only followed links count toward the limit (the kernel's 40), so a deep
    /// path of missing directories is fine; past the limit the walk fails with ELOOP rather than handing
    /// anything unresolved back.
    fn ensure_dir(&self, comps: &[&[u8]], entry: &[u8]) -> Result<Handle, LayerError> {
        let mut path: Vec<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        let mut hops = 0u32;
        'walk: loop {
            let (mut k, mut h) = self.deepest_existing(&path, entry)?;
            while k < path.len() {
                if path[k] == b".." {
                    // The parent of a directory created just now: one more in-root lookup.
                    h = self
                        .root
                        .resolve(os(&join_owned(&path[..=k])))
                        .map_err(Self::resolve_err(entry, "resolve parent directory in root"))?;
                    k += 1;
                    continue;
                }
                match rustix::fs::mkdirat(&h, path[k].as_slice(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let target = match rustix::fs::readlinkat(&h, path[k].as_slice(), Vec::new()) {
                            Ok(t) => t.into_bytes(),
                            // Not a link: an existing directory (the open below checks) reached by a
                            // route the prefix search did not take, e.g. after a `..`.
                            Err(Errno::INVAL) => Vec::new(),
                            Err(e) => return Err(entry_err(entry, "create parent directory")(e.into())),
                        };
                        if target.is_empty() {
                            let fd = rustix::fs::openat(
                                &h,
                                path[k].as_slice(),
                                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                                Mode::empty(),
                            )
                            .map_err(|e| entry_err(entry, "open parent directory")(e.into()))?;
                            h = Handle::from_fd(fd);
                            k += 1;
                            continue;
                        }
                        hops += 1;
                        if hops > MAX_LINK_HOPS {
                            return Err(entry_err(entry, "resolve parent directory in root")(
                                Errno::LOOP.into(),
                            ));
                        }
                        let mut next: Vec<Vec<u8>> = if target.starts_with(b"/") {
                            Vec::new()
                        } else {
                            path[..k].to_vec()
                        };
                        next.extend(link_components(&target));
                        next.extend_from_slice(&path[k + 1..]);
                        path = next;
                        continue 'walk;
                    }
                    Err(e) => return Err(entry_err(entry, "create parent directory")(e.into())),
                }
                let fd = rustix::fs::openat(
                    &h,
                    path[k].as_slice(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(entry, "open new parent directory")(e.into()))?;
                h = Handle::from_fd(fd);
                k += 1;
            }
            return Ok(h);
        }
    }

    /// The longest prefix of `path` that resolves in-root, and its handle. Missing components (ENOENT)
    /// shorten the prefix; anything else (ELOOP, ENOTDIR) is an error.
    fn deepest_existing(&self, path: &[Vec<u8>], entry: &[u8]) -> Result<(usize, Handle), LayerError> {
        let mut k = path.len();
        loop {
            let p = if k == 0 {
                b"/".to_vec()
            } else {
                join_owned(&path[..k])
            };
            match self.root.resolve(os(&p)) {
                Ok(h) => return Ok((k, h)),
                Err(e) if errno_of(&e) == Some(libc::ENOENT) && k > 0 => k -= 1,
                Err(e) => return Err(Self::resolve_err(entry, "resolve parent directory in root")(e)),
            }
        }
    }

    /// The existing directory `comps` inside the root, or `None` if it is missing.
    fn existing_dir(&mut self, comps: &[&[u8]], entry: &[u8]) -> Result<Option<Rc<Handle>>, LayerError> {
        let key = join(comps);
        if let Some(h) = self.cache.get(&key) {
            return Ok(Some(h.clone()));
        }
        let path = if key.is_empty() { b"/".to_vec() } else { key };
        match self.root.resolve(os(&path)) {
            Ok(h) => Ok(Some(Rc::new(h))),
            Err(e) if matches!(errno_of(&e), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
            Err(e) => Err(Self::resolve_err(entry, "resolve directory in root")(e)),
        }
    }

    /// Removes `name` in `parent` whatever it is; `full` is its normalized path for recursive removal.
    fn remove(
        &mut self,
        parent: &Handle,
        name: &[u8],
        full: &[u8],
        entry: &[u8],
    ) -> Result<bool, LayerError> {
        let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(entry_err(entry, "stat existing path")(e.into())),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Directory {
            self.cache.clear();
            self.root
                .remove_all(os(full))
                .map_err(Self::resolve_err(entry, "remove existing directory"))?;
        } else {
            if ft == FileType::Symlink {
                self.cache.clear();
            }
            rustix::fs::unlinkat(parent, name, AtFlags::empty())
                .map_err(|e| entry_err(entry, "remove existing path")(e.into()))?;
        }
        Ok(true)
    }

    fn entry<R: Read>(&mut self, m: &EntryMeta, tar: &mut TarReader<R>) -> Result<(), LayerError> {
        let comps = normalize(&m.path)?;
        let Some((name, parent_comps)) = comps.split_last() else {
            if m.kind == Kind::Dir {
                let root = self.parent(&[], &m.path)?;
                let fd = rustix::fs::openat(
                    &*root,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(&m.path, "open root directory")(e.into()))?;
                self.set_fd_meta(&fd, m)?;
                self.dir_times.push((Vec::new(), m.mtime, m.mtime_nsec));
                return Ok(());
            }
            return Err(LayerError::InvalidName {
                entry: lossy(&m.path),
                reason: "names the root directory itself",
            });
        };
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            self.stats.whiteouts += 1;
            if *name == WHITEOUT_OPAQUE.as_bytes() {
                return self.opaque(parent_comps, &m.path);
            }
            if matches!(target, b"" | b"." | b"..") {
                return Err(LayerError::InvalidName {
                    entry: lossy(&m.path),
                    reason: "whiteout of an invalid name",
                });
            }
            return self.whiteout(parent_comps, target, &m.path);
        }
        let full = join(&comps);
        let parent = self.parent(parent_comps, &m.path)?;
        if self.opts.whiteouts == WhiteoutMode::Delete {
            self.created.insert(full.clone());
        }
        match m.kind {
            Kind::File => self.file(&parent, name, &full, m, tar),
            Kind::Dir => self.dir(&parent, name, &full, m),
            Kind::Symlink => self.symlink(&parent, name, &full, m),
            Kind::Hardlink => self.hardlink(&parent, name, &full, m),
            Kind::Char | Kind::Block | Kind::Fifo => self.node(&parent, name, &full, m),
        }
    }

    fn file<R: Read>(
        &mut self,
        parent: &Handle,
        name: &[u8],
        full: &[u8],
        m: &EntryMeta,
        tar: &mut TarReader<R>,
    ) -> Result<(), LayerError> {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(parent, name, flags, Mode::from_raw_mode(0o600)) {
            Err(Errno::EXIST) => {
                self.remove(parent, name, full, &m.path)?;
                rustix::fs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
            }
            r => r,
        }
        .map_err(|e| entry_err(&m.path, "create file")(e.into()))?;
        let mut f = File::from(fd);
        loop {
            let n = tar.read_data(&mut self.buf)?;
            if n == 0 {
                break;
            }
            f.write_all(&self.buf[..n])
                .map_err(entry_err(&m.path, "write file"))?;
        }
        self.stats.files += 1;
        self.stats.bytes += m.size;
        let fd: OwnedFd = f.into();
        self.set_fd_meta(&fd, m)?;
        rustix::fs::futimens(&fd, &ts(m.mtime, m.mtime_nsec))
            .map_err(|e| entry_err(&m.path, "set mtime")(e.into()))
    }

    fn dir(&mut self, parent: &Handle, name: &[u8], full: &[u8], m: &EntryMeta) -> Result<(), LayerError> {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| entry_err(&m.path, "stat existing path")(e.into()))?;
                // An existing directory is merged into; anything else is replaced.
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.remove(parent, name, full, &m.path)?;
                    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                        .map_err(|e| entry_err(&m.path, "create directory")(e.into()))?;
                }
            }
            Err(e) => return Err(entry_err(&m.path, "create directory")(e.into())),
        }
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| entry_err(&m.path, "open directory")(e.into()))?;
        self.set_fd_meta(&fd, m)?;
        self.stats.dirs += 1;
        self.dir_times.push((full.to_vec(), m.mtime, m.mtime_nsec));
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: &Handle,
        name: &[u8],
        full: &[u8],
        m: &EntryMeta,
    ) -> Result<(), LayerError> {
        let target = m.link.as_deref().unwrap_or_default();
        if target.is_empty() || target.contains(&0) {
            return Err(LayerError::InvalidName {
                entry: lossy(&m.path),
                reason: "symlink with an empty or NUL-containing target",
            });
        }
        // A new symlink can redirect paths that were cached through a directory of the same name.
        self.cache.clear();
        match rustix::fs::symlinkat(target, parent, name) {
            Err(Errno::EXIST) => {
                self.remove(parent, name, full, &m.path)?;
                rustix::fs::symlinkat(target, parent, name)
            }
            r => r,
        }
        .map_err(|e| entry_err(&m.path, "create symlink")(e.into()))?;
        self.stats.symlinks += 1;
        self.set_at_meta(parent, name, m, false)
    }

    fn hardlink(
        &mut self,
        parent: &Handle,
        name: &[u8],
        full: &[u8],
        m: &EntryMeta,
    ) -> Result<(), LayerError> {
        let raw = m.link.as_deref().unwrap_or_default();
        let bad = |reason| LayerError::BadHardlink {
            entry: lossy(&m.path),
            target: lossy(raw),
            reason,
        };
        let tcomps = normalize(raw)?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(bad("the root directory"));
        };
        if join(&tcomps) == full {
            return Err(bad("the entry itself"));
        }
        let Some(tdir) = self.existing_dir(tparent, &m.path)? else {
            return Err(bad("missing"));
        };
        let link = |p: &Handle| rustix::fs::linkat(&*tdir, *tname, p, name, AtFlags::empty());
        match link(parent) {
            Err(Errno::EXIST) => {
                self.remove(parent, name, full, &m.path)?;
                link(parent)
            }
            r => r,
        }
        .map_err(|e| match e {
            Errno::NOENT => bad("missing"),
            Errno::PERM => bad("a directory or not linkable"),
            Errno::XDEV => bad("on another filesystem"),
            e => entry_err(&m.path, "create hardlink")(e.into()),
        })?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    fn node(&mut self, parent: &Handle, name: &[u8], full: &[u8], m: &EntryMeta) -> Result<(), LayerError> {
        let (ft, dev) = match m.kind {
            Kind::Char => (
                FileType::CharacterDevice,
                rustix::fs::makedev(m.dev_major, m.dev_minor),
            ),
            Kind::Block => (
                FileType::BlockDevice,
                rustix::fs::makedev(m.dev_major, m.dev_minor),
            ),
            _ => (FileType::Fifo, 0),
        };
        let mode = Mode::from_raw_mode(m.mode & 0o777);
        let r = match rustix::fs::mknodat(parent, name, ft, mode, dev) {
            Err(Errno::EXIST) => {
                self.remove(parent, name, full, &m.path)?;
                rustix::fs::mknodat(parent, name, ft, mode, dev)
            }
            r => r,
        };
        match r {
            Ok(()) => {}
            // Not even root in a user namespace may make device nodes: skip them as for non-root.
            Err(Errno::PERM)
                if ft != FileType::Fifo && (!self.opts.same_owner || super::in_user_namespace()) =>
            {
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            Err(e) => return Err(entry_err(&m.path, "create device node")(e.into())),
        }
        self.set_at_meta(parent, name, m, true)
    }

    /// Owner, mode and xattrs through an fd we opened on the new inode.
    fn set_fd_meta(&mut self, fd: &OwnedFd, m: &EntryMeta) -> Result<(), LayerError> {
        if self.opts.same_owner {
            let (uid, gid) = ids(m)?;
            rustix::fs::fchown(fd, Some(uid), Some(gid)).map_err(|e| owner_err(m, uid, gid, e))?;
        }
        // After chown, which clears setuid/setgid.
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode & 0o7777))
            .map_err(|e| entry_err(&m.path, "set mode")(e.into()))?;
        for (k, v) in &m.xattrs {
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") || k.contains(&0) {
                // A layer must not forge overlayfs metadata (redirects, origins, opaque flags).
                self.stats.skipped_xattrs += 1;
                continue;
            }
            match rustix::fs::fsetxattr(fd, k.as_slice(), v, rustix::fs::XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS) => self.stats.skipped_xattrs += 1,
                Err(e) => return Err(entry_err(&m.path, "set xattr")(e.into())),
            }
        }
        Ok(())
    }

    /// Owner, mode and times by name for inodes we hold no fd on (symlinks, devices, fifos).
    fn set_at_meta(
        &mut self,
        parent: &Handle,
        name: &[u8],
        m: &EntryMeta,
        chmod: bool,
    ) -> Result<(), LayerError> {
        if self.opts.same_owner {
            let (uid, gid) = ids(m)?;
            rustix::fs::chownat(parent, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| owner_err(m, uid, gid, e))?;
        }
        if chmod {
            // The node was created by us just now and is not a symlink, so following is safe.
            rustix::fs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(m.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|e| entry_err(&m.path, "set mode")(e.into()))?;
        }
        if !m.xattrs.is_empty() {
            self.stats.skipped_xattrs += m.xattrs.len() as u64;
        }
        rustix::fs::utimensat(
            parent,
            name,
            &ts(m.mtime, m.mtime_nsec),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| entry_err(&m.path, "set mtime")(e.into()))
    }

    fn whiteout(&mut self, parent_comps: &[&[u8]], target: &[u8], entry: &[u8]) -> Result<(), LayerError> {
        let mut full = join(parent_comps);
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(target);
        match self.opts.whiteouts {
            WhiteoutMode::Delete => {
                let Some(parent) = self.existing_dir(parent_comps, entry)? else {
                    return Ok(());
                };
                self.remove(&parent, target, &full, entry)?;
            }
            WhiteoutMode::Overlay => {
                let parent = self.parent(parent_comps, entry)?;
                self.remove(&parent, target, &full, entry)?;
                rustix::fs::mknodat(
                    &*parent,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|e| entry_err(entry, "create overlay whiteout")(e.into()))?;
            }
        }
        Ok(())
    }

    fn opaque(&mut self, dir_comps: &[&[u8]], entry: &[u8]) -> Result<(), LayerError> {
        match self.opts.whiteouts {
            WhiteoutMode::Delete => {
                let Some(dir) = self.existing_dir(dir_comps, entry)? else {
                    return Ok(());
                };
                let fd = rustix::fs::openat(
                    &*dir,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(entry, "open opaque directory")(e.into()))?;
                let mut names = Vec::new();
                for ent in rustix::fs::Dir::read_from(&fd)
                    .map_err(|e| entry_err(entry, "read opaque directory")(e.into()))?
                {
                    let ent = ent.map_err(|e| entry_err(entry, "read opaque directory")(e.into()))?;
                    let n = ent.file_name().to_bytes();
                    if n != b"." && n != b".." {
                        names.push(n.to_vec());
                    }
                }
                let base = join(dir_comps);
                for n in names {
                    let mut full = base.clone();
                    if !full.is_empty() {
                        full.push(b'/');
                    }
                    full.extend_from_slice(&n);
                    if !self.created.contains(&full) {
                        self.remove(&dir, &n, &full, entry)?;
                    }
                }
            }
            WhiteoutMode::Overlay => {
                let dir = self.parent(dir_comps, entry)?;
                let fd = rustix::fs::openat(
                    &*dir,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(entry, "open opaque directory")(e.into()))?;
                rustix::fs::fsetxattr(
                    &fd,
                    super::overlay_opaque_xattr(),
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| entry_err(entry, "mark directory opaque")(e.into()))?;
            }
        }
        Ok(())
    }

    /// Directory mtimes last, deepest first, since creating their contents changed them.
    fn finish_dir_times(&mut self) -> Result<(), LayerError> {
        let times = std::mem::take(&mut self.dir_times);
        for (path, sec, nsec) in times.iter().rev() {
            let p = if path.is_empty() { &b"/"[..] } else { path };
            let Ok(h) = self.root.resolve_nofollow(os(p)) else {
                continue; // removed or replaced later in the layer
            };
            let Ok(f) = h.reopen(pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_DIRECTORY)
            else {
                continue; // no longer a directory
            };
            rustix::fs::futimens(&f, &ts(*sec, *nsec))
                .map_err(|e| entry_err(path, "set directory mtime")(e.into()))?;
        }
        Ok(())
    }
}

/// chown to an id the user namespace does not map fails with EINVAL: say what to do about it.
fn owner_err(m: &EntryMeta, uid: rustix::fs::Uid, gid: rustix::fs::Gid, e: Errno) -> LayerError {
    if e == Errno::INVAL && super::in_user_namespace() {
        return LayerError::UnmappedId {
            entry: lossy(&m.path),
            uid: uid.as_raw(),
            gid: gid.as_raw(),
        };
    }
    entry_err(&m.path, "set owner")(e.into())
}

fn ids(m: &EntryMeta) -> Result<(rustix::fs::Uid, rustix::fs::Gid), LayerError> {
    let bad = |field| LayerError::BadHeader {
        entry: lossy(&m.path),
        field,
    };
    let uid = u32::try_from(m.uid)
        .ok()
        .filter(|u| *u != u32::MAX)
        .ok_or_else(|| bad("uid"))?;
    let gid = u32::try_from(m.gid)
        .ok()
        .filter(|g| *g != u32::MAX)
        .ok_or_else(|| bad("gid"))?;
    Ok((rustix::fs::Uid::from_raw(uid), rustix::fs::Gid::from_raw(gid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        let n = |s: &str| {
            normalize(s.as_bytes())
                .unwrap()
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("/")
        };
        assert_eq!(n("./a/b/"), "a/b");
        assert_eq!(n("/etc/passwd"), "etc/passwd");
        assert_eq!(n("../../etc/passwd"), "etc/passwd");
        assert_eq!(n("a/../../b"), "b");
        assert_eq!(n("./"), "");
        assert!(normalize(b"a\0b").is_err());
        assert!(normalize("a/".repeat(2049).as_bytes()).is_err());
    }

    /// A tar of (name, type, link) entries with 1-byte files.
    fn tar(entries: &[(&str, u8, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::new(*kind));
            h.set_mode(0o755);
            h.set_size(if *kind == b'0' { 1 } else { 0 });
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            let data: &[u8] = if *kind == b'0' { b"x" } else { b"" };
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn deep_missing_parents_are_created() {
        // Only followed links count toward the hop limit, not directories created on the way.
        let d = tempfile::tempdir().unwrap();
        let name = format!("{}f", "d/".repeat(100));
        let t = tar(&[(name.as_str(), b'0', "")]);
        apply_layer(&t[..], d.path(), &ApplyOptions::default()).unwrap();
        assert!(d.path().join(&name).is_file());
    }

    #[test]
    fn dangling_link_dotdot_resolves_physically() {
        // `a -> real/sub`, `real/sub/b -> ../c` (dangling): the kernel reads a/b/f as real/c/f, since the
        // `..` is taken from real/sub, not from the name `a`. A lexical join would make root/c instead.
        let d = tempfile::tempdir().unwrap();
        let t = tar(&[
            ("real/sub/", b'5', ""),
            ("a", b'2', "real/sub"),
            ("real/sub/b", b'2', "../c"),
            ("a/b/f", b'0', ""),
            ("a/b/g", b'0', ""),
        ]);
        apply_layer(&t[..], d.path(), &ApplyOptions::default()).unwrap();
        assert!(d.path().join("real/c/f").is_file());
        assert!(d.path().join("real/c/g").is_file());
        assert!(!d.path().join("c").exists());
    }

    #[test]
    fn dangling_link_chains_follow_to_the_limit_then_fail() {
        let d = tempfile::tempdir().unwrap();
        // 40 dangling links: followed, the directory made at the end of the chain.
        let mut e: Vec<(String, u8, String)> = (0..40)
            .map(|i| (format!("l{i}"), b'2', format!("l{}", i + 1)))
            .collect();
        e.push(("l0/f".into(), b'0', String::new()));
        let refs: Vec<_> = e.iter().map(|(a, k, b)| (a.as_str(), *k, b.as_str())).collect();
        apply_layer(&tar(&refs)[..], d.path(), &ApplyOptions::default()).unwrap();
        assert!(d.path().join("l40/f").is_file());
        // 41: ELOOP, not a path handed on.
        let d = tempfile::tempdir().unwrap();
        e.insert(40, ("l40".into(), b'2', "l41".into()));
        let refs: Vec<_> = e.iter().map(|(a, k, b)| (a.as_str(), *k, b.as_str())).collect();
        let err = apply_layer(&tar(&refs)[..], d.path(), &ApplyOptions::default()).unwrap_err();
        assert!(err.to_string().contains("l0/f"), "{err}");
        assert!(!d.path().join("l41").exists());
    }
}
