//! Space by kind, for `lamina system df`: images, containers, cache mounts ("local volumes"), build cache,
//! context memos, and what nothing references (what plain `prune` frees). Sizes are disk usage like `du`
//! (gc.rs's [`disk_usage`]); content shared by two kinds is counted once, under the first that names it
//! in that order, so the rows add up to the store's usage (give or take index.json and lock files).
//!
//! Read under the shared store lock: a report, not a decision, so a build running meanwhile may make it
//! slightly stale.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::buildcache;
use crate::digest::{Algorithm, Digest};
use crate::gc::disk_usage;
use crate::layout::{Store, StoreError};
use crate::prune::reachable;

/// The kinds `system df` prints, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Images,
    Containers,
    /// `RUN --mount=type=cache` dirs: docker's "Local Volumes" row.
    CacheMounts,
    BuildCache,
    ContextMemos,
    Unreferenced,
}

impl Kind {
    /// The TYPE column, as docker names the rows it has.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Images => "Images",
            Kind::Containers => "Containers",
            Kind::CacheMounts => "Local Volumes",
            Kind::BuildCache => "Build Cache",
            Kind::ContextMemos => "Context Memos",
            Kind::Unreferenced => "Unreferenced",
        }
    }
}

/// One thing that takes space.
#[derive(Clone, Debug)]
pub struct Item {
    /// A tag, container id, mount dir name, step key, memo file name, or blob/snapshot path.
    pub name: String,
    pub size: u64,
    /// In use: a running container, a leased build step, a mount a build holds. Not reclaimable.
    pub active: bool,
    pub last_used: Option<SystemTime>,
    /// For build cache: the step's `created_by`.
    pub description: String,
}

/// One row of `system df`, with its items for `-v`.
#[derive(Clone, Debug)]
pub struct Usage {
    pub kind: Kind,
    pub items: Vec<Item>,
    /// Bytes of the row that no active item uses.
    pub reclaimable: u64,
}

impl Usage {
    pub fn total(&self) -> usize {
        self.items.len()
    }

    pub fn active(&self) -> usize {
        self.items.iter().filter(|i| i.active).count()
    }

    pub fn size(&self) -> u64 {
        self.items.iter().map(|i| i.size).sum()
    }
}

/// Tracks what was already counted (blob digests, snapshot names).
#[derive(Default)]
struct Counted {
    blobs: HashSet<Digest>,
    snapshots: HashSet<String>,
}

impl Counted {
    fn blob(&mut self, store: &Store, d: &Digest) -> u64 {
        if self.blobs.insert(d.clone()) && store.blobs().contains(d) {
            disk_usage(&store.blobs().path(d))
        } else {
            0
        }
    }

    fn snapshot(&mut self, store: &Store, name: &str) -> u64 {
        let p = store.snapshots_dir().join(name);
        if self.snapshots.insert(name.to_owned()) && fs::symlink_metadata(&p).is_ok() {
            disk_usage(&p)
        } else {
            0
        }
    }
}

/// Space by kind. `running`: ids of the containers that are running (the CLI knows; the store doesn't).
pub fn usage(store: &Store, running: &BTreeSet<String>) -> Result<Vec<Usage>, StoreError> {
    let _lock = store.lock_shared()?;
    let live = reachable(store)?;
    let leases = crate::lease::scan(store.root())?;
    let mut counted = Counted::default();
    let mut rows = Vec::new();

    // Images: each index entry with the blobs it reaches first, plus the snapshots of its chains.
    let index = store.read_index()?;
    let mut images = Vec::new();
    for entry in &index.manifests {
        let name = entry
            .ref_name()
            .map(str::to_owned)
            .unwrap_or_else(|| entry.digest.to_string());
        let mut size = 0;
        let mut active = false;
        for (d, needed) in &live.blobs {
            if needed.root == name {
                size += counted.blob(store, d);
                active |= leases.protected.blobs.contains(d);
            }
        }
        images.push(Item {
            name,
            size,
            active,
            last_used: None,
            description: String::new(),
        });
    }
    let mut chain_size = 0;
    for c in &live.chain_ids {
        chain_size += counted.snapshot(store, c.hex());
    }
    // Chains are shared between images; they are attributed to the first image (docker's SHARED SIZE).
    if let Some(first) = images.first_mut() {
        first.size += chain_size;
    }
    rows.push(row(Kind::Images, images));

    // Containers: their state dirs (upper dirs included).
    let mut containers = Vec::new();
    if let Ok(rd) = fs::read_dir(store.root().join("containers")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            containers.push(Item {
                size: disk_usage(&e.path()),
                active: running.contains(&name),
                last_used: e.metadata().and_then(|m| m.modified()).ok(),
                description: String::new(),
                name,
            });
        }
    }
    rows.push(row(Kind::Containers, containers));

    let mut mounts = Vec::new();
    for m in store.cache_mounts() {
        // Taking the use lock for a moment is how to tell; a build that wants it meanwhile just waits.
        let active = buildcache::try_take_mount(&m)?.is_none();
        mounts.push(Item {
            size: disk_usage(&m.path),
            active,
            last_used: Some(m.last_used),
            description: String::new(),
            name: m.name,
        });
    }
    rows.push(row(Kind::CacheMounts, mounts));

    let mut records = Vec::new();
    let cache = store.build_cache()?;
    for e in cache.entries().0 {
        let r = &e.record;
        let mut size = disk_usage(&e.path) + counted.blob(store, &r.layer.digest);
        let mut active = leases.protected.blobs.contains(&r.layer.digest);
        if let Some(s) = &r.snapshot {
            size += counted.snapshot(store, s);
            active |= leases.protected.snapshots.contains(s);
        }
        records.push(Item {
            name: r.key.hex().to_owned(),
            size,
            active,
            last_used: Some(e.last_used),
            description: r.created_by.clone(),
        });
    }
    rows.push(row(Kind::BuildCache, records));

    let memos = buildcache::context_memos(store.root())
        .into_iter()
        .map(|(p, t)| Item {
            name: file_name(&p),
            size: disk_usage(&p),
            active: false,
            last_used: Some(t),
            description: String::new(),
        })
        .collect();
    rows.push(row(Kind::ContextMemos, memos));

    // What no tag, record or lease names: blobs, snapshot dirs, temp files of no live lease.
    let mut garbage = Vec::new();
    for d in store.blobs().list()? {
        if !counted.blobs.contains(&d) && !leases.protected.blobs.contains(&d) {
            garbage.push(Item {
                name: format!("blob {d}"),
                size: counted.blob(store, &d),
                active: false,
                last_used: None,
                description: String::new(),
            });
        }
    }
    if let Ok(rd) = fs::read_dir(store.snapshots_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if Digest::new(Algorithm::Sha256, &name).is_err()
                || counted.snapshots.contains(&name)
                || leases.protected.snapshots.contains(&name)
            {
                continue;
            }
            garbage.push(Item {
                size: counted.snapshot(store, &name),
                name: format!("snapshot {name}"),
                active: false,
                last_used: None,
                description: String::new(),
            });
        }
    }
    let mut tmp: Vec<PathBuf> = Vec::new();
    for dir in [store.root().join("tmp"), store.snapshots_dir().join("staging")] {
        if let Ok(rd) = fs::read_dir(&dir) {
            tmp.extend(
                rd.flatten()
                    .filter(|e| !e.file_name().to_str().is_some_and(|n| leases.owns_dir(n)))
                    .map(|e| e.path()),
            );
        }
    }
    for p in tmp {
        garbage.push(Item {
            size: disk_usage(&p),
            name: format!("temp {}", file_name(&p)),
            active: false,
            last_used: None,
            description: String::new(),
        });
    }
    rows.push(row(Kind::Unreferenced, garbage));
    Ok(rows)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A row: what its inactive items use is reclaimable (for images: by untagging them first).
fn row(kind: Kind, items: Vec<Item>) -> Usage {
    let reclaimable = items.iter().filter(|i| !i.active).map(|i| i.size).sum();
    Usage {
        kind,
        items,
        reclaimable,
    }
}
