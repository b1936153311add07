//! COPY/ADD executor: writes the selected sources straight into a fresh snapshot dir (the step's upper dir),
//! with BuildKit's semantics for destinations, parents, owners, modes and links. No sandbox: the parent
//! rootfs is only read through a [`View`], sources are read through the fds their lookup returned, and every
//! write goes through a [`Slot`] of the upper, which never follows a link (see `beneath.rs`).

use std::collections::{HashMap, HashSet};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};

use super::BuildError;
use super::beneath::{Beneath, Slot, is_missing_parent};
use super::context::{SourceTree, has_wildcard, select};
use super::perms::{Chmod, Owner};
use super::view::{Found, View, clean_components};

/// Extracts a local archive into a dir in the upper (ADD); returns Ok(false) when the file is no archive.
pub type Extractor<'a> = &'a dyn Fn(&Path, &Path) -> Result<bool, BuildError>;

/// One COPY/ADD after expansion.
pub struct CopySpec<'a> {
    pub line: usize,
    pub sources: Vec<String>,
    pub dest: String,
    pub workdir: String,
    pub owner: Option<Owner>,
    pub chmod: Option<Chmod>,
    pub parents: bool,
    /// `--exclude` patterns, matched against source-relative paths.
    pub exclude: &'a dyn Fn(&str, bool) -> bool,
    /// Sources from the build context get root ownership unless `--chown` (BuildKit); stage/image
    /// sources keep their owners.
    pub from_context: bool,
    /// ADD: extract local archives.
    pub extract: Option<Extractor<'a>>,
    /// Sources are committed (immutable) snapshot dirs on the store's filesystem and the destination
    /// is a new snapshot: a file whose owner, mode and mtime come out unchanged is hardlinked instead of
    /// copied (file creation is what COPY --from of a big tree spends its time on). Never for the build
    /// context (the user may change it) or scratch copies that a RUN may write to.
    pub link_files: bool,
    /// The build has no CAP_CHOWN (tests through the fake executor): an owner the kernel refuses
    /// (EPERM) is left as the caller's instead of failing the step. Never set by `lamina build`.
    pub unprivileged: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CopyStats {
    pub files: u64,
    pub bytes: u64,
}

struct Copier<'a> {
    spec: &'a CopySpec<'a>,
    tree: &'a dyn SourceTree,
    target: &'a View,
    upper: Beneath,
    /// First destination (upper components) of each source inode with several links.
    links: HashMap<(u64, u64, usize), Vec<String>>,
    /// Source inodes hardlinked by `link_files` in this COPY: one inode seen at two paths is copied the
    /// second time, so no hardlink pair appears that the source didn't have.
    linked: HashSet<(u64, u64)>,
    /// Dirs (upper components) whose mtime must be set after their content (post-order).
    dir_times: Vec<(Vec<String>, SystemTime)>,
    stats: CopyStats,
}

/// Whether a regular file carries extended attributes (a copy doesn't take them along, so a link would
/// differ); asked through the file's fd path, which the kernel follows to the inode and nowhere else.
fn has_xattrs(found: &Found) -> bool {
    !matches!(rustix::fs::listxattr(found.fd_path(), &mut [0u8; 0][..]), Ok(0))
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn set_times(path: &Path, t: SystemTime) -> Result<(), BuildError> {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let ts = Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as _,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| BuildError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

fn mtime_of(m: &Metadata) -> SystemTime {
    UNIX_EPOCH + Duration::new(m.mtime().max(0) as u64, m.mtime_nsec() as u32)
}

/// Runs the copy; `upper` is the new snapshot dir, `target` the parent rootfs (empty for `--link`).
pub fn copy(
    tree: &dyn SourceTree,
    target: &View,
    upper: &Path,
    spec: &CopySpec<'_>,
) -> Result<CopyStats, BuildError> {
    let dest_abs = if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        format!("{}/{}", spec.workdir.trim_end_matches('/'), spec.dest)
    };
    let dir_hint = spec.dest.ends_with('/') || spec.dest == "." || spec.dest.ends_with("/.");
    let dest = target
        .resolve(&dest_abs, true)
        .map_err(|e| BuildError::from(e).at_line(spec.line))?;
    let dest_is_dir = dest.is_empty() || target.lookup(&dest).is_some_and(|f| f.meta.is_dir());

    let mut selections = Vec::new();
    let mut wildcard = false;
    for s in &spec.sources {
        wildcard |= has_wildcard(s);
        let (pivot, pat) = match s.split_once("/./") {
            Some((a, b)) if spec.parents => (clean_components(a).len(), format!("{a}/{b}")),
            _ => (0, s.clone()),
        };
        for sel in select(tree, &pat).map_err(|e| e.at_line(spec.line))? {
            selections.push((sel, pivot));
        }
    }
    let into_dir = dir_hint || dest_is_dir || selections.len() > 1 || wildcard;
    if spec.sources.len() > 1 && !dir_hint && !dest_is_dir {
        return Err(BuildError::CopyDestNotDir {
            line: spec.line,
            dest: spec.dest.clone(),
        });
    }

    let mut c = Copier {
        spec,
        tree,
        target,
        upper: Beneath::open(upper)?,
        links: HashMap::new(),
        linked: HashSet::new(),
        dir_times: Vec::new(),
        stats: CopyStats::default(),
    };
    c.copy_selections(selections, &dest, into_dir)
        .map_err(|e| e.at_line(spec.line))?;
    Ok(c.stats)
}

impl Copier<'_> {
    fn copy_selections(
        &mut self,
        selections: Vec<(Vec<String>, usize)>,
        dest: &[String],
        into_dir: bool,
    ) -> Result<(), BuildError> {
        let (spec, tree) = (self.spec, self.tree);
        let c = &mut *self;
        for (sel, pivot) in selections {
            // Hardlinks are kept within one source, not across sources (BuildKit).
            c.links.clear();
            let root = tree.resolve(&sel)?;
            let Some(found) = tree.stat(&root) else {
                return Err(BuildError::SourceNotFound {
                    pattern: sel.join("/"),
                }
                .at_line(spec.line));
            };
            let meta = found.meta.clone();
            let mut base = dest.to_vec();
            if spec.parents {
                let keep = &sel[pivot.min(sel.len())..];
                if meta.is_dir() {
                    base.extend(keep.iter().cloned());
                } else {
                    base.extend(keep[..keep.len().saturating_sub(1)].iter().cloned());
                }
            }
            if meta.is_dir() {
                c.ensure_dir(&base, Some(&meta), false)?;
                c.copy_children(&root, &found, &base, "")?;
            } else {
                let name = sel.last().cloned().unwrap_or_default();
                if let Some(extract) = spec.extract
                    && meta.is_file()
                {
                    c.ensure_parents(&base)?;
                    let dir = c.ensure_dir(&base, None, false)?;
                    // The archive is read through its fd; the extractor applies it in-root under `dir`.
                    if extract(&found.fd_path(), &dir)? {
                        continue;
                    }
                }
                let to = if into_dir || spec.parents {
                    let mut t = base.clone();
                    t.push(name);
                    t
                } else {
                    base.clone()
                };
                c.ensure_parents(&to)?;
                c.copy_entry(&found, &to)?;
            }
        }
        self.finish_times()
    }
}

/// WORKDIR: creates `comps` and its missing parents in `upper` (owned by `owner`, like BuildKit's mkdir -p
/// with the stage's USER), parents that exist in `target` copied with their metadata.
pub fn mkdir_p(
    target: &View,
    upper: &Path,
    comps: &[String],
    owner: Option<Owner>,
    unprivileged: bool,
) -> Result<(), BuildError> {
    let no = |_: &str, _: bool| false;
    let spec = CopySpec {
        line: 0,
        sources: Vec::new(),
        dest: String::new(),
        workdir: "/".into(),
        owner,
        chmod: None,
        parents: false,
        exclude: &no,
        from_context: true,
        extract: None,
        link_files: false,
        unprivileged,
    };
    let empty = View::empty();
    let mut c = Copier {
        spec: &spec,
        tree: &empty,
        target,
        upper: Beneath::open(upper)?,
        links: HashMap::new(),
        linked: HashSet::new(),
        dir_times: Vec::new(),
        stats: CopyStats::default(),
    };
    c.ensure_dir(comps, None, false)?;
    c.finish_times()
}

impl Copier<'_> {
    fn lchown(&self, p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        match std::os::unix::fs::lchown(p, Some(uid), Some(gid)) {
            Err(e) if self.spec.unprivileged && e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
            r => r,
        }
    }

    /// Dir mtimes, last (a dir's content changes it), deepest first.
    fn finish_times(&mut self) -> Result<(), BuildError> {
        for (comps, t) in std::mem::take(&mut self.dir_times).iter().rev() {
            let s = self.upper.slot(comps)?;
            set_times(&s.at, *t).map_err(|_| BuildError::Io {
                path: s.shown.clone(),
                source: io::Error::last_os_error(),
            })?;
        }
        Ok(())
    }

    /// The slot of `comps`, creating missing parents first.
    fn slot_creating_parents(&mut self, comps: &[String]) -> Result<Slot, BuildError> {
        match self.upper.slot(comps) {
            Err(e) if is_missing_parent(&e) => {
                self.ensure_parents(comps)?;
                self.upper.slot(comps)
            }
            r => r,
        }
    }

    fn owner_for(&self, meta: Option<&Metadata>) -> (u32, u32) {
        match (self.spec.owner, meta) {
            (Some(o), _) => (o.uid, o.gid),
            (None, Some(m)) if !self.spec.from_context => (m.uid(), m.gid()),
            _ => (0, 0),
        }
    }

    /// Creates the ancestors of `comps` in the upper: copies of the parent's dirs (same mode, owner, mtime)
    /// where they exist, else 0755 dirs owned by the --chown user (BuildKit's MkdirAll with the chowner).
    fn ensure_parents(&mut self, comps: &[String]) -> Result<(), BuildError> {
        for i in 0..comps.len().saturating_sub(1) {
            let sub = &comps[..=i];
            let s = self.upper.slot(sub)?;
            let (p, shown) = (&s.at, &s.shown);
            // Present (a dir, or a link the next slot() refuses to pass).
            if fs::symlink_metadata(p).is_ok() {
                continue;
            }
            // Freshly created by us just now, so chmod following the last component is safe.
            match self.target.lookup(sub) {
                Some(f) if f.meta.is_dir() => {
                    fs::create_dir(p).map_err(io_err(shown))?;
                    fs::set_permissions(p, fs::Permissions::from_mode(f.meta.mode() & 0o7777))
                        .map_err(io_err(shown))?;
                    self.lchown(p, f.meta.uid(), f.meta.gid())
                        .map_err(io_err(shown))?;
                    self.dir_times.push((sub.to_vec(), mtime_of(&f.meta)));
                }
                _ => {
                    fs::create_dir(p).map_err(io_err(shown))?;
                    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).map_err(io_err(shown))?;
                    let (u, g) = self.owner_for(None);
                    self.lchown(p, u, g).map_err(io_err(shown))?;
                }
            }
        }
        Ok(())
    }

    /// Makes `comps` a dir in the upper for copying a dir's contents into; `src` gives its metadata when it
    /// is created fresh, an existing dir of the parent keeps its own.
    fn ensure_dir(
        &mut self,
        comps: &[String],
        src: Option<&Metadata>,
        chmod: bool,
    ) -> Result<PathBuf, BuildError> {
        if comps.is_empty() {
            return Ok(self.upper.path().to_path_buf());
        }
        let s = self.slot_creating_parents(comps)?;
        let (p, shown) = (&s.at, &s.shown);
        if let Ok(m) = fs::symlink_metadata(p) {
            if m.is_dir() {
                return Ok(shown.clone());
            }
            // A file or link an earlier source left here: replaced, never followed.
            fs::remove_file(p).map_err(io_err(shown))?;
        }
        let existing = self.target.lookup(comps).filter(|f| f.meta.is_dir());
        fs::create_dir(p).map_err(io_err(shown))?;
        let (mode, (uid, gid), mtime) = match (&existing, src) {
            (Some(f), _) => (
                f.meta.mode() & 0o7777,
                (f.meta.uid(), f.meta.gid()),
                Some(mtime_of(&f.meta)),
            ),
            (None, Some(m)) => {
                let mut mode = m.mode() & 0o7777;
                if let Some(c) = self.spec.chmod.as_ref().filter(|_| chmod) {
                    mode = c.apply(mode, true);
                }
                (mode, self.owner_for(Some(m)), Some(mtime_of(m)))
            }
            (None, None) => (0o755, self.owner_for(None), None),
        };
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io_err(shown))?;
        self.lchown(p, uid, gid).map_err(io_err(shown))?;
        if let Some(t) = mtime {
            self.dir_times.push((comps.to_vec(), t));
        }
        Ok(shown.clone())
    }

    /// Copies the entries of dir `src` (found as `dir`) to `dest`.
    fn copy_children(
        &mut self,
        src: &[String],
        dir: &Found,
        dest: &[String],
        rel: &str,
    ) -> Result<(), BuildError> {
        let names = self
            .tree
            .names(src, dir)
            .map_err(io_err(Path::new(&src.join("/"))))?;
        for n in names {
            let r = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            let mut s = src.to_vec();
            s.push(n.clone());
            let Some(found) = self.tree.child(&s, dir, &n) else {
                continue;
            };
            let meta = &found.meta;
            if (self.spec.exclude)(&r, meta.is_dir()) {
                continue;
            }
            let mut d = dest.to_vec();
            d.push(n);
            if meta.is_dir() {
                self.ensure_dir(&d, Some(meta), true)?;
                // A dir copied over an existing dir of the parent keeps the source's metadata (BuildKit
                // copies the dir's mode/owner/mtime onto the destination).
                let slot = self.upper.slot(&d)?;
                self.apply_meta(&slot, &d, meta, true)?;
                self.copy_children(&s, &found, &d, &r)?;
            } else {
                self.copy_entry(&found, &d)?;
            }
        }
        Ok(())
    }

    /// Owner, mode and times of `slot` (`comps` in the upper) from the source's `meta`. The entry was
    /// created by this copy (a dir, node or link), so chmod following its last component stays on it.
    fn apply_meta(
        &mut self,
        slot: &Slot,
        comps: &[String],
        meta: &Metadata,
        is_dir: bool,
    ) -> Result<(), BuildError> {
        let (p, shown) = (&slot.at, &slot.shown);
        let (uid, gid) = self.owner_for(Some(meta));
        self.lchown(p, uid, gid).map_err(io_err(shown))?;
        if !meta.file_type().is_symlink() {
            let mut mode = meta.mode() & 0o7777;
            if let Some(c) = &self.spec.chmod {
                mode = c.apply(mode, is_dir);
            }
            // chown clears setuid/setgid, so the mode goes last.
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io_err(shown))?;
        }
        if is_dir {
            self.dir_times.retain(|(q, _)| q != comps);
            self.dir_times.push((comps.to_vec(), mtime_of(meta)));
        } else {
            set_times(p, mtime_of(meta)).map_err(|_| BuildError::Io {
                path: shown.clone(),
                source: io::Error::last_os_error(),
            })?;
        }
        Ok(())
    }

    /// Whether a copy of a file with `meta` gets exactly its owner and mode (mtime is always kept).
    fn unchanged_by_copy(&self, meta: &Metadata) -> bool {
        let mode = meta.mode() & 0o7777;
        self.owner_for(Some(meta)) == (meta.uid(), meta.gid())
            && self
                .spec
                .chmod
                .as_ref()
                .is_none_or(|c| c.apply(mode, false) == mode)
    }

    fn copy_entry(&mut self, found: &Found, to: &[String]) -> Result<(), BuildError> {
        let slot = self.slot_creating_parents(to)?;
        // Most destinations are new: create first, and only clear the path when that says it exists
        // (an earlier source of this COPY, or a file replacing a dir), saving a stat per file.
        match self.create_entry(found, &slot, to) {
            Err(BuildError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                let (p, shown) = (&slot.at, &slot.shown);
                let m = fs::symlink_metadata(p).map_err(io_err(shown))?;
                // Neither removal follows a link at `p` (remove_dir_all is symlink-safe since
                // CVE-2022-21658).
                if m.is_dir() {
                    fs::remove_dir_all(p).map_err(io_err(shown))?;
                } else {
                    fs::remove_file(p).map_err(io_err(shown))?;
                }
                // The failed attempt may have named `to` as the first of a hardlink pair.
                self.links.retain(|_, first| first != to);
                self.create_entry(found, &slot, to)
            }
            r => r,
        }
    }

    fn create_entry(&mut self, found: &Found, slot: &Slot, to: &[String]) -> Result<(), BuildError> {
        let meta = &found.meta;
        let (p, shown) = (&slot.at, &slot.shown);
        let ft = meta.file_type();
        if meta.nlink() > 1 && !ft.is_dir() {
            // A pair only within one layer dir: the same inode in two layers is one of our own links
            // (see `link_files`), not a hardlink of the image.
            let k = (meta.dev(), meta.ino(), self.tree.layer_of(&found.path));
            if let Some(first) = self.links.get(&k) {
                let first = self.upper.slot(first)?;
                // linkat without AT_SYMLINK_FOLLOW: a link at `first` is linked as a link, not followed.
                return rustix::fs::linkat(
                    &first.dir,
                    first.name.as_str(),
                    &slot.dir,
                    slot.name.as_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err(shown)(e.into()));
            }
            self.links.insert(k, to.to_vec());
        }
        if ft.is_file() {
            if self.spec.link_files
                && self.unchanged_by_copy(meta)
                && !has_xattrs(found)
                && self.linked.insert((meta.dev(), meta.ino()))
            {
                // Linked from the source's fd (the magic link is followed to that inode, nothing else).
                let linked = rustix::fs::linkat(
                    CWD,
                    found.fd_path(),
                    &slot.dir,
                    slot.name.as_str(),
                    AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(io::Error::from);
                match linked {
                    Ok(()) => {
                        self.stats.files += 1;
                        self.stats.bytes += meta.size();
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.linked.remove(&(meta.dev(), meta.ino()));
                        return Err(io_err(shown)(e));
                    }
                    Err(_) => {} // another filesystem, too many links…: copy
                }
            }
            return self.copy_regular(found, slot);
        }
        if ft.is_symlink() {
            let t = found.read_link().map_err(io_err(&found.path))?;
            rustix::fs::symlinkat(&t, &slot.dir, slot.name.as_str()).map_err(|e| io_err(shown)(e.into()))?;
        } else {
            let kind = if ft.is_char_device() {
                rustix::fs::FileType::CharacterDevice
            } else if ft.is_block_device() {
                rustix::fs::FileType::BlockDevice
            } else if ft.is_fifo() {
                rustix::fs::FileType::Fifo
            } else {
                return Ok(()); // sockets are not copied (BuildKit skips them too)
            };
            rustix::fs::mknodat(
                &slot.dir,
                slot.name.as_str(),
                kind,
                rustix::fs::Mode::from_raw_mode(0o600),
                meta.rdev(),
            )
            .map_err(|e| io_err(shown)(e.into()))?;
        }
        let _ = p;
        self.apply_meta(slot, to, meta, false)
    }

    /// A regular file's bytes (copy_file_range, in-kernel) and metadata, all through the two open fds:
    /// owner, then mode (chown clears setuid bits), then times.
    fn copy_regular(&mut self, found: &Found, slot: &Slot) -> Result<(), BuildError> {
        use std::os::unix::fs::OpenOptionsExt;
        let (meta, real, p) = (&found.meta, &found.path, &slot.shown);
        let src = found.open_read().map_err(io_err(real))?;
        // O_EXCL: never opens an existing entry, a link included.
        let dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&slot.at)
            .map_err(io_err(p))?;
        let mut left = meta.size();
        while left > 0 {
            match rustix::fs::copy_file_range(&src, None, &dst, None, left.min(1 << 30) as usize) {
                Ok(0) => break, // the source shrank meanwhile
                Ok(n) => left -= n as u64,
                Err(_) => {
                    // Filesystems without copy_file_range: a plain copy of the rest.
                    io::copy(&mut &src, &mut &dst).map_err(io_err(real))?;
                    break;
                }
            }
        }
        let (uid, gid) = self.owner_for(Some(meta));
        let mut mode = meta.mode() & 0o7777;
        if let Some(c) = &self.spec.chmod {
            mode = c.apply(mode, false);
        }
        let d = mtime_of(meta)
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let ts = Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as _,
        };
        let fd_err = |e: rustix::io::Errno| BuildError::Io {
            path: p.to_path_buf(),
            source: e.into(),
        };
        match rustix::fs::fchown(
            &dst,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        ) {
            Err(rustix::io::Errno::PERM) if self.spec.unprivileged => {}
            r => r.map_err(fd_err)?,
        }
        rustix::fs::fchmod(&dst, rustix::fs::Mode::from_raw_mode(mode)).map_err(fd_err)?;
        rustix::fs::futimens(
            &dst,
            &Timestamps {
                last_access: ts,
                last_modification: ts,
            },
        )
        .map_err(fd_err)?;
        self.stats.files += 1;
        self.stats.bytes += meta.size();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::context::Context;

    fn spec<'a>(sources: &[&str], dest: &str, exclude: &'a dyn Fn(&str, bool) -> bool) -> CopySpec<'a> {
        CopySpec {
            line: 3,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            workdir: "/work".into(),
            owner: None,
            chmod: None,
            parents: false,
            exclude,
            from_context: true,
            extract: None,
            link_files: false,
            unprivileged: false,
        }
    }

    /// COPY --from a snapshot tree hardlinks files whose metadata a copy would keep, copies the rest
    /// (--chmod, --chown to another owner), and never invents a hardlink pair: one inode visible at two
    /// paths through two layers (our own earlier link) comes out as two files.
    #[test]
    fn snapshot_sources_are_linked_only_when_unchanged() {
        let t = tempfile::tempdir().unwrap();
        let (lower, top, upper) = (t.path().join("l1"), t.path().join("l2"), t.path().join("up"));
        for d in [&lower, &top, &upper] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(lower.join("a"), "same inode").unwrap();
        fs::hard_link(lower.join("a"), top.join("b")).unwrap();
        fs::write(top.join("c"), "c").unwrap();
        let view = View::new(vec![top.clone(), lower.clone()]);
        let no = |_: &str, _: bool| false;
        let mut sp = spec(&["/"], "/out/", &no);
        sp.from_context = false;
        sp.link_files = true;
        copy(&view, &View::empty(), &upper, &sp).unwrap();
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&upper.join("out/c")),
            ino(&top.join("c")),
            "unchanged file is linked"
        );
        let (a, b) = (ino(&upper.join("out/a")), ino(&upper.join("out/b")));
        assert_ne!(a, b, "no hardlink pair the source tree didn't have");
        assert_eq!(fs::read_to_string(upper.join("out/b")).unwrap(), "same inode");

        let up2 = t.path().join("up2");
        fs::create_dir_all(&up2).unwrap();
        sp.chmod = Some(crate::engine::perms::parse_chmod("600", 1).unwrap());
        copy(&view, &View::empty(), &up2, &sp).unwrap();
        assert_ne!(
            ino(&up2.join("out/c")),
            ino(&top.join("c")),
            "--chmod needs a copy"
        );
        assert_eq!(
            fs::metadata(top.join("c")).unwrap().mode() & 0o777,
            0o644,
            "source untouched"
        );
        assert_eq!(fs::metadata(up2.join("out/c")).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn destinations_and_dirs() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("dir/sub")).unwrap();
        fs::write(ctx.join("a.txt"), "a").unwrap();
        fs::write(ctx.join("b.txt"), "b").unwrap();
        fs::write(ctx.join("dir/sub/c"), "c").unwrap();
        fs::set_permissions(ctx.join("dir/sub/c"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("c", ctx.join("dir/sub/l")).unwrap();
        let lower = t.path().join("lower");
        fs::create_dir_all(lower.join("opt")).unwrap();
        fs::set_permissions(lower.join("opt"), fs::Permissions::from_mode(0o711)).unwrap();
        let view = View::new(vec![lower.clone()]);
        let c = Context::open(&ctx, None, None).unwrap();
        let no = |_: &str, _: bool| false;
        let up = t.path().join("up");
        fs::create_dir(&up).unwrap();

        copy(&c, &view, &up, &spec(&["a.txt"], "/x/y", &no)).unwrap();
        assert_eq!(fs::read(up.join("x/y")).unwrap(), b"a");
        copy(&c, &view, &up, &spec(&["*.txt"], "rel/", &no)).unwrap();
        assert!(up.join("work/rel/a.txt").is_file() && up.join("work/rel/b.txt").is_file());
        copy(&c, &view, &up, &spec(&["a.txt"], "/opt", &no)).unwrap();
        assert!(
            up.join("opt/a.txt").is_file(),
            "existing dir in parent: copy into it"
        );
        assert_eq!(
            fs::metadata(up.join("opt")).unwrap().mode() & 0o7777,
            0o711,
            "parent dir metadata kept"
        );
        copy(&c, &view, &up, &spec(&["dir"], "/d", &no)).unwrap();
        assert!(up.join("d/sub/c").is_file(), "dir contents, not the dir");
        assert_eq!(fs::metadata(up.join("d/sub/c")).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::read_link(up.join("d/sub/l")).unwrap(), Path::new("c"));
        let ex = |r: &str, _: bool| r == "sub/l";
        copy(&c, &view, &up, &spec(&["dir"], "/e", &ex)).unwrap();
        assert!(up.join("e/sub/c").is_file() && fs::symlink_metadata(up.join("e/sub/l")).is_err());
        let err = copy(&c, &view, &up, &spec(&["a.txt", "b.txt"], "/nodir", &no)).unwrap_err();
        assert!(matches!(err, BuildError::CopyDestNotDir { line: 3, .. }), "{err}");
        let err = copy(&c, &view, &up, &spec(&["missing"], "/", &no)).unwrap_err();
        let msg = crate::engine::layers::error_chain(&err);
        assert!(msg.contains("Dockerfile:3") && msg.contains("missing"), "{msg}");

        // A later source replaces what an earlier one wrote (file over file, file over dir, dir content
        // over a file) — the destination exists, so creation fails first and the path is cleared.
        copy(&c, &view, &up, &spec(&["b.txt"], "/x/y", &no)).unwrap();
        assert_eq!(fs::read(up.join("x/y")).unwrap(), b"b");
        copy(&c, &view, &up, &spec(&["a.txt"], "/d/sub", &no)).unwrap();
        assert_eq!(fs::read(up.join("d/sub")).unwrap(), b"a", "file replaces dir");
        copy(&c, &view, &up, &spec(&["dir"], "/d", &no)).unwrap();
        assert!(up.join("d/sub/c").is_file(), "dir replaces file");

        let mut s = spec(&["dir/./sub/c"], "/p/", &no);
        s.parents = true;
        copy(&c, &view, &up, &s).unwrap();
        assert!(up.join("p/sub/c").is_file(), "--parents keeps the path after /./");

        let mut s = spec(&["a.txt"], "/own/", &no);
        s.owner = Some(Owner { uid: 1234, gid: 99 });
        s.chmod = Some(crate::engine::perms::parse_chmod("640", 1).unwrap());
        copy(&c, &view, &up, &s).unwrap();
        let m = fs::metadata(up.join("own/a.txt")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 99, 0o640));
        let m = fs::metadata(up.join("own")).unwrap();
        assert_eq!(
            (m.uid(), m.mode() & 0o7777),
            (1234, 0o755),
            "created dest dir owned by --chown user"
        );
    }
}
