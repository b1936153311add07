//! Garbage collection: [`prune`] removes blobs no index.json entry reaches, snapshots no image uses, and
//! everything in tmp/. [`reachable`] is the mark phase, shared with fsck.
//!
//! prune runs under the exclusive store lock, which keeps out short writers (pull, load, import hold the
//! shared lock from first blob to tag). Long ones don't hold it: a build or a container holds a lease
//! (lease.rs) on its snapshots, blobs and temp dirs instead, and prune treats everything a live lease names
//! as reachable. Leases of dead processes are removed, and with them their temp dirs. Every other temp file
//! is then a leftover of a dead process.
//!
//! With [`PruneOptions::gc`], prune then runs the budgeted GC of gc.rs under the same lock: least recently
//! used build cache records (and what only they kept), cache mounts and context memos.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::gc::GcOptions;
use crate::image::{Descriptor, Parsed};
use crate::layout::{Store, StoreError};
use crate::validate::Problem;

/// One blob an image needs, and what for.
#[derive(Clone, Debug)]
pub struct Needed {
    pub what: &'static str,
    pub descriptor: Descriptor,
    /// The index entry (ref.name or digest) it was first reached from.
    pub root: String,
}

/// The content reachable from index.json, and the diff_id chains of every readable image (for snapshots).
#[derive(Debug, Default)]
pub struct Reachable {
    /// Every blob some root needs, with its descriptor (the first one seen).
    pub blobs: BTreeMap<Digest, Needed>,
    /// Chain ids of every layer prefix of every image: the snapshots in use.
    pub chain_ids: BTreeSet<Digest>,
    /// What could not be followed (missing or unreadable manifests/configs, layer count mismatches), with
    /// the index entry it was found from (ref.name or digest).
    pub problems: Vec<(String, Problem)>,
}

/// The OCI chain id of a layer on top of `parent`'s chain: `sha256(parent + " " + diff_id)`, or the diff_id
/// itself for the bottom layer.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Marks everything reachable from index.json.
pub fn reachable(store: &Store) -> Result<Reachable, StoreError> {
    let index = store.read_index()?;
    let mut out = Reachable::default();
    for root in &index.manifests {
        let name = root
            .ref_name()
            .map(str::to_owned)
            .unwrap_or_else(|| root.digest.to_string());
        mark(store, root, &name, &mut out, 0);
    }
    Ok(out)
}

fn mark(store: &Store, desc: &Descriptor, root: &str, out: &mut Reachable, depth: usize) {
    if out.blobs.contains_key(&desc.digest) {
        return;
    }
    out.blobs.insert(
        desc.digest.clone(),
        Needed {
            what: "manifest",
            descriptor: desc.clone(),
            root: root.to_owned(),
        },
    );
    // Nested indexes are legal but never deep; the bound only guards against hostile self-references.
    if depth > 8 {
        return;
    }
    match store.read_manifest(&desc.digest, Some(&desc.media_type)) {
        Err(e) => out.problems.push((root.to_owned(), e.into())),
        Ok(Parsed::Index(idx)) => {
            // Children of a multi-platform index may legitimately be absent (pulled for one platform).
            for child in &idx.manifests {
                if store.blobs().contains(&child.digest) {
                    mark(store, child, root, out, depth + 1);
                }
            }
        }
        Ok(Parsed::Manifest(m)) => {
            out.blobs.entry(m.config.digest.clone()).or_insert(Needed {
                what: "config",
                descriptor: m.config.clone(),
                root: root.to_owned(),
            });
            for l in &m.layers {
                out.blobs.entry(l.digest.clone()).or_insert(Needed {
                    what: "layer",
                    descriptor: l.clone(),
                    root: root.to_owned(),
                });
            }
            match store.read_config(&m.config.digest) {
                Err(e) => out.problems.push((root.to_owned(), e.into())),
                Ok(cfg) if cfg.rootfs.diff_ids.len() != m.layers.len() => out.problems.push((
                    root.to_owned(),
                    StoreError::LayerCount {
                        manifest: desc.digest.clone(),
                        config: m.config.digest.clone(),
                        diff_ids: cfg.rootfs.diff_ids.len(),
                        layers: m.layers.len(),
                    }
                    .into(),
                )),
                Ok(cfg) => {
                    let mut parent: Option<Digest> = None;
                    for diff_id in &cfg.rootfs.diff_ids {
                        let c = chain_id(parent.as_ref(), diff_id);
                        out.chain_ids.insert(c.clone());
                        parent = Some(c);
                    }
                }
            }
        }
    }
}

/// What prune removed (or, with `dry_run`, would remove).
#[derive(Debug, Default)]
pub struct PruneReport {
    pub blobs: Vec<(Digest, u64)>,
    pub snapshots: Vec<(PathBuf, u64)>,
    pub tmp: Vec<(PathBuf, u64)>,
    /// The build cache records, with `cache` or `gc`.
    pub cache: Vec<(PathBuf, u64)>,
    /// `RUN --mount=type=cache` directories, with `gc`.
    pub mounts: Vec<(PathBuf, u64)>,
    /// Build context stat memos, with `gc`.
    pub memos: Vec<(PathBuf, u64)>,
    /// Lease files of dead processes.
    pub leases: Vec<PathBuf>,
}

impl PruneReport {
    pub fn freed(&self) -> u64 {
        self.blobs.iter().map(|b| b.1).sum::<u64>()
            + self.snapshots.iter().map(|s| s.1).sum::<u64>()
            + self.tmp.iter().map(|t| t.1).sum::<u64>()
            + self.cache.iter().map(|t| t.1).sum::<u64>()
            + self.mounts.iter().map(|t| t.1).sum::<u64>()
            + self.memos.iter().map(|t| t.1).sum::<u64>()
    }
}

/// Bytes used by a file or tree (apparent sizes; hardlinked files counted once per link).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            total += tree_size(&e.path());
        }
    }
    total
}

/// Removes a file or a whole tree, making read-only directories writable first if removal is refused
/// (layers may contain `dr-x------` directories that even the owner can't delete from without root).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path);
            fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::symlink_metadata(dir)
        && m.is_dir()
    {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(m.permissions().mode() | 0o700));
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                make_writable(&e.path());
            }
        }
    }
}

/// What the build cache records still point at: layer blobs and snapshot directory names. prune keeps
/// them unless asked to drop the cache (or GC drops the records, gc.rs).
fn cache_roots(store: &Store) -> Result<(BTreeSet<Digest>, BTreeSet<String>), StoreError> {
    let mut blobs = BTreeSet::new();
    let mut snaps = BTreeSet::new();
    for e in store.build_cache()?.entries().0 {
        blobs.insert(e.record.layer.digest);
        if let Some(s) = e.record.snapshot {
            snaps.insert(s);
        }
    }
    Ok((blobs, snaps))
}

/// Removes snapshot dir `name`: out of its place first, so a crash never leaves a half-deleted snapshot
/// under its name.
pub(crate) fn remove_snapshot(store: &Store, name: &str) -> Result<(), StoreError> {
    let snaps = store.snapshots_dir();
    let staging = snaps.join("staging");
    let path = snaps.join(name);
    let io_err = |op, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { op, path, source }
    };
    fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
    let grave = staging.join(format!("rm-{name}"));
    fs::rename(&path, &grave).map_err(io_err("move snapshot out of place", &path))?;
    remove_tree(&grave).map_err(io_err("remove snapshot", &grave))
}

/// Options of [`prune`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneOptions {
    /// Only report.
    pub dry_run: bool,
    /// Also drop the build cache records (and with them what only they kept alive).
    pub cache: bool,
    /// After the sweep, remove least-recently-used build cache, cache mounts and context memos within
    /// these limits (gc.rs).
    pub gc: Option<GcOptions>,
}

/// Removes unreachable blobs, unused snapshots and every temp file. Takes the exclusive store lock itself
/// (so don't hold the shared one in this process).
pub fn prune(store: &Store, opts: PruneOptions) -> Result<PruneReport, StoreError> {
    let dry_run = opts.dry_run;
    let _lock = store.lock_exclusive()?;
    let mut report = PruneReport::default();
    let io_err = |op, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { op, path, source }
    };
    // layer-hints/: the builder's step → last layer guesses (see builder engine/layers/hints.rs).
    for name in ["build", "layer-hints"] {
        let cache_dir = store.cache_dir().join(name);
        if opts.cache && cache_dir.is_dir() {
            let size = tree_size(&cache_dir);
            if !dry_run {
                remove_tree(&cache_dir).map_err(io_err("remove build cache", &cache_dir))?;
            }
            report.cache.push((cache_dir, size));
        }
    }
    let live = reachable(store)?;
    // Stable while we hold the exclusive lock: leases are created and extended under the shared one.
    let mut leases = crate::lease::scan(store.root())?;
    let (cache_blobs, cache_snaps) = if opts.cache {
        Default::default()
    } else {
        cache_roots(store)?
    };

    for d in store.blobs().list()? {
        if live.blobs.contains_key(&d) || cache_blobs.contains(&d) || leases.protected.blobs.contains(&d) {
            continue;
        }
        let size = store.blobs().size(&d).unwrap_or(0);
        if !dry_run {
            store.blobs().remove(&d)?;
        }
        report.blobs.push((d, size));
    }

    // Snapshots (layout of snapshot.rs): `<chain hex>/` dirs, `l/<short>` symlinks to them, `staging/`.
    let snaps = store.snapshots_dir();
    let staging = snaps.join("staging");
    let rd = match fs::read_dir(&snaps) {
        Ok(rd) => Some(rd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("list", &snaps)(e)),
    };
    for e in rd.into_iter().flatten() {
        let e = e.map_err(io_err("list", &snaps))?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Ok(chain) = Digest::new(crate::digest::Algorithm::Sha256, &name) else {
            continue;
        };
        if live.chain_ids.contains(&chain)
            || cache_snaps.contains(&name)
            || leases.protected.snapshots.contains(&name)
        {
            continue;
        }
        let path = e.path();
        let size = tree_size(&path);
        if !dry_run {
            remove_snapshot(store, &name)?;
        }
        report.snapshots.push((path, size));
    }
    let links = snaps.join("l");
    if !dry_run && let Ok(rd) = fs::read_dir(&links) {
        for e in rd.flatten() {
            // A short link whose snapshot is gone.
            if fs::metadata(e.path()).is_err() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    if let Ok(rd) = fs::read_dir(&staging) {
        for e in rd.flatten() {
            if e.file_name().to_str().is_some_and(|n| leases.owns_dir(n)) {
                continue;
            }
            let path = e.path();
            let size = tree_size(&path);
            if !dry_run {
                remove_tree(&path).map_err(io_err("remove staging leftover", &path))?;
            }
            report.tmp.push((path, size));
        }
    }

    let tmp = &store.root().join("tmp");
    let rd = fs::read_dir(tmp).map_err(io_err("list", tmp))?;
    for e in rd {
        let e = e.map_err(io_err("list", tmp))?;
        if e.file_name().to_str().is_some_and(|n| leases.owns_dir(n)) {
            continue;
        }
        let path = e.path();
        let size = tree_size(&path);
        if !dry_run {
            remove_tree(&path).map_err(io_err("remove temp file", &path))?;
        }
        report.tmp.push((path, size));
    }
    for path in std::mem::take(&mut leases.dead) {
        if !dry_run {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("remove lease", &path)(e));
                }
                _ => {}
            }
        }
        report.leases.push(path);
    }
    if let Some(gc) = &opts.gc {
        crate::gc::collect(store, &live, &leases, gc, dry_run, &mut report)?;
    }
    Ok(report)
}
