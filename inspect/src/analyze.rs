//! Image efficiency, in the spirit of dive.
//!
//! - *total bytes*: file content stored across all layers (regular files; tar hardlinks store nothing);
//! - *image bytes*: file content visible in the flattened image;
//! - *wasted bytes* = total − image: content a later layer overwrote (even with identical bytes), deleted by a
//!   whiteout or opaque directory, or hid by replacing a parent directory;
//! - *efficiency* = image / total (1.0 for an image without content).
//!
//! Also: the paths wasting the most, files with identical content stored in more than one layer, and each
//! layer's largest files and directories (by the bytes that layer stores under them).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::Serialize;

use super::InspectError;
use super::config::created_by_per_layer;
use super::diff::read_layers;
use super::entry::{ContentHash, Kind, parent};
use super::source::ImageView;
use super::tree::{ChangeKind, Tree};
use crate::digest::Digest;

/// Options for [`analyze`].
#[derive(Clone, Copy, Debug)]
pub struct AnalyzeOptions {
    /// How many entries the ranked lists keep.
    pub top: usize,
    /// Worker threads for reading layers (0 = available cores, at most 4).
    pub threads: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions { top: 10, threads: 0 }
    }
}

/// A path and a byte count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathSize {
    pub path: String,
    pub bytes: u64,
}

/// Per-layer figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerAnalysis {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    pub created_by: String,
    /// Blob size as stored (compressed).
    pub size: u64,
    /// File content the layer stores.
    pub content_bytes: u64,
    pub entries: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    /// Content of this layer that later layers hide.
    pub wasted_bytes: u64,
    pub largest_files: Vec<PathSize>,
    pub largest_dirs: Vec<PathSize>,
}

/// A path whose content is stored but not visible in the final image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WastedPath {
    pub path: String,
    pub wasted_bytes: u64,
    /// Layers that stored content at this path and were hidden later.
    pub layers: Vec<usize>,
}

/// Where one copy of duplicated content lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    pub layer: usize,
    pub path: String,
}

/// The same content stored in more than one layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    pub digest: ContentHash,
    pub size: u64,
    /// `size × (copies − 1)`.
    pub redundant_bytes: u64,
    pub copies: Vec<Location>,
}

/// The analysis of one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub image: String,
    pub total_bytes: u64,
    pub image_bytes: u64,
    pub wasted_bytes: u64,
    /// Wasted bytes as a share of the bytes above the first layer (dive's "user wasted percent"), 0..1.
    pub user_wasted_ratio: f64,
    pub efficiency: f64,
    pub layers: Vec<LayerAnalysis>,
    /// The `top` paths wasting the most (`wasted_paths_total` in all).
    pub wasted_paths: Vec<WastedPath>,
    pub wasted_paths_total: usize,
    /// The `top` duplicate groups with the most redundant bytes (`duplicates_total` in all).
    pub duplicates: Vec<Duplicate>,
    pub duplicates_total: usize,
}

/// The `n` largest items, ties broken by path for stable output.
fn top_n(items: impl Iterator<Item = (u64, String)>, n: usize) -> Vec<PathSize> {
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<String>)>> = BinaryHeap::new();
    for (bytes, path) in items {
        heap.push(Reverse((bytes, Reverse(path))));
        if heap.len() > n {
            heap.pop();
        }
    }
    let mut v: Vec<PathSize> = heap
        .into_iter()
        .map(|Reverse((bytes, Reverse(path)))| PathSize { path, bytes })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    v
}

/// Reads every layer of `view` once and computes its [`Analysis`].
pub fn analyze(view: &ImageView, opts: AnalyzeOptions) -> Result<Analysis, InspectError> {
    let jobs: Vec<(&ImageView, usize)> = (0..view.layers.len()).map(|i| (view, i)).collect();
    let read = read_layers(&jobs, opts.threads)?;
    let created_by = created_by_per_layer(&view.config, view.layers.len());
    let mut tree = Tree::new();
    let mut layers = Vec::with_capacity(read.len());
    let mut wasted: BTreeMap<String, WastedPath> = BTreeMap::new();
    let mut per_layer_wasted = vec![0u64; read.len()];
    let mut by_hash: HashMap<ContentHash, Vec<(usize, String, u64)>> = HashMap::new();
    let mut total = 0u64;
    let mut first_layer_bytes = 0u64;

    for (i, (entries, stats)) in read.into_iter().enumerate() {
        let mut dirs: HashMap<&str, u64> = HashMap::new();
        for e in entries.iter().filter(|e| e.meta.kind == Kind::File) {
            let bytes = e.meta.size;
            if bytes > 0 {
                let mut p = parent(&e.path);
                while !p.is_empty() {
                    *dirs.entry(p).or_insert(0) += bytes;
                    p = parent(p);
                }
                if let Some(h) = e.meta.hash {
                    by_hash.entry(h).or_default().push((i, e.path.clone(), bytes));
                }
            }
        }
        let largest_files = top_n(
            entries
                .iter()
                .filter(|e| e.meta.kind == Kind::File)
                .map(|e| (e.meta.size, e.path.clone())),
            opts.top,
        );
        let largest_dirs = top_n(dirs.into_iter().map(|(p, b)| (b, p.to_string())), opts.top);
        let changes = tree.apply_layer(i, &entries);
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        for c in &changes {
            match c.kind {
                ChangeKind::Added => added += 1,
                ChangeKind::Changed => changed += 1,
                ChangeKind::Removed => removed += 1,
                ChangeKind::Unchanged => {}
            }
            // Any lower file replaced or removed (even by identical bytes) is content nobody sees.
            if let Some(before) = &c.before
                && before.meta.kind == Kind::File
                && before.meta.size > 0
            {
                per_layer_wasted[before.layer] += before.meta.size;
                let w = wasted.entry(c.path.clone()).or_insert_with(|| WastedPath {
                    path: c.path.clone(),
                    wasted_bytes: 0,
                    layers: vec![],
                });
                w.wasted_bytes += before.meta.size;
                w.layers.push(before.layer);
            }
        }
        total += stats.content_bytes;
        if i == 0 {
            first_layer_bytes = stats.content_bytes;
        }
        let l = view.layers.get(i);
        layers.push(LayerAnalysis {
            index: i,
            digest: l.and_then(|l| l.digest.clone()),
            created_by: created_by.get(i).cloned().unwrap_or_default(),
            size: l.map_or(0, |l| l.size),
            content_bytes: stats.content_bytes,
            entries: stats.entries,
            added,
            changed,
            removed,
            wasted_bytes: 0,
            largest_files,
            largest_dirs,
        });
    }
    for (l, w) in layers.iter_mut().zip(per_layer_wasted) {
        l.wasted_bytes = w;
    }
    let image_bytes = tree.content_bytes();
    let wasted_bytes = total.saturating_sub(image_bytes);
    let efficiency = if total == 0 {
        1.0
    } else {
        image_bytes as f64 / total as f64
    };
    let above_base = total.saturating_sub(first_layer_bytes);
    let user_wasted_ratio = if above_base == 0 {
        0.0
    } else {
        wasted_bytes as f64 / above_base as f64
    };

    let mut wasted_paths: Vec<WastedPath> = wasted.into_values().collect();
    let wasted_paths_total = wasted_paths.len();
    wasted_paths.sort_by(|a, b| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then_with(|| a.path.cmp(&b.path))
    });
    wasted_paths.truncate(opts.top);

    let mut duplicates: Vec<Duplicate> = by_hash
        .into_iter()
        .filter(|(_, copies)| copies.iter().any(|c| c.0 != copies[0].0))
        .map(|(digest, mut copies)| {
            copies.sort();
            let size = copies[0].2;
            Duplicate {
                digest,
                size,
                redundant_bytes: size * (copies.len() as u64 - 1),
                copies: copies
                    .into_iter()
                    .map(|(layer, path, _)| Location { layer, path })
                    .collect(),
            }
        })
        .collect();
    let duplicates_total = duplicates.len();
    duplicates.sort_by(|a, b| {
        b.redundant_bytes
            .cmp(&a.redundant_bytes)
            .then_with(|| a.copies[0].path.cmp(&b.copies[0].path))
    });
    duplicates.truncate(opts.top);

    Ok(Analysis {
        image: view.name.clone(),
        total_bytes: total,
        image_bytes,
        wasted_bytes,
        user_wasted_ratio,
        efficiency,
        layers,
        wasted_paths,
        wasted_paths_total,
        duplicates,
        duplicates_total,
    })
}
