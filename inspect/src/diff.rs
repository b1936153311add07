//! Comparing images and layers.
//!
//! - Default (strict) mode respects layer boundaries, like diffoci: configs are compared including created
//!   time, history and diff_ids, and layer N of A is compared entry by entry with layer N of B (mtimes and
//!   whiteout entries included). Layers with equal diff_ids (or digests) are not read at all.
//! - `semantic` mode compares what a container would see: the flattened trees (no mtimes) and the runtime
//!   config (no created/history/diff_ids), so two builds of the same content compare equal.
//!
//! All lists are sorted by path (or field name), so JSON output is stable.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use super::InspectError;
use super::config::{ConfigDiff, diff_configs};
use super::entry::{Field, Meta, differing_fields};
use super::source::ImageView;
use super::tree::{Change, Tree};
use super::walk::{LayerEntry, WalkStats, read_entries};
use crate::digest::Digest;

/// How a path differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    Added,
    Removed,
    Changed,
}

/// One differing path: only in B (added), only in A (removed), or in both with `fields` differing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub path: String,
    pub kind: DiffKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<Meta>,
}

/// Merge-joins two path-sorted sequences of (path, meta).
fn merge<'a>(
    a: impl Iterator<Item = (&'a String, &'a Meta)>,
    b: impl Iterator<Item = (&'a String, &'a Meta)>,
    with_mtime: bool,
) -> Vec<FileDiff> {
    let mut out = Vec::new();
    let mut a = a.peekable();
    let mut b = b.peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((pa, _)), Some((pb, _))) => pa.cmp(pb),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (p, m) = a.next().expect("peeked");
                out.push(FileDiff {
                    path: p.clone(),
                    kind: DiffKind::Removed,
                    fields: vec![],
                    a: Some(m.clone()),
                    b: None,
                });
            }
            std::cmp::Ordering::Greater => {
                let (p, m) = b.next().expect("peeked");
                out.push(FileDiff {
                    path: p.clone(),
                    kind: DiffKind::Added,
                    fields: vec![],
                    a: None,
                    b: Some(m.clone()),
                });
            }
            std::cmp::Ordering::Equal => {
                let (p, ma) = a.next().expect("peeked");
                let (_, mb) = b.next().expect("peeked");
                let fields = differing_fields(ma, mb, with_mtime);
                if !fields.is_empty() {
                    out.push(FileDiff {
                        path: p.clone(),
                        kind: DiffKind::Changed,
                        fields,
                        a: Some(ma.clone()),
                        b: Some(mb.clone()),
                    });
                }
            }
        }
    }
    out
}

/// Differences between two flattened trees.
pub fn diff_trees(a: &Tree, b: &Tree, with_mtime: bool) -> Vec<FileDiff> {
    merge(
        a.iter().map(|(p, n)| (p, &n.meta)),
        b.iter().map(|(p, n)| (p, &n.meta)),
        with_mtime,
    )
}

/// Differences between the entries of two layers (a path listed twice counts once, last entry wins).
pub fn diff_layer_entries(a: &[LayerEntry], b: &[LayerEntry], with_mtime: bool) -> Vec<FileDiff> {
    let index = |es: &[LayerEntry]| -> BTreeMap<String, Meta> {
        es.iter().map(|e| (e.path.clone(), e.meta.clone())).collect()
    };
    let (ia, ib) = (index(a), index(b));
    merge(ia.iter(), ib.iter(), with_mtime)
}

/// Identity of one side's layer in a [`LayerDiff`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    pub size: u64,
}

/// Layer `index` differs between A and B (or exists on one side only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerDiff {
    pub index: usize,
    pub a: Option<LayerId>,
    pub b: Option<LayerId>,
    /// Entry differences; empty when the layers hold the same entries in different bytes (order, padding,
    /// compression).
    pub files: Vec<FileDiff>,
}

/// Result of comparing two images (or two layers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageDiff {
    pub a: String,
    pub b: String,
    pub semantic: bool,
    pub config: Vec<ConfigDiff>,
    /// Strict mode: the layers that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerDiff>,
    /// Semantic mode: flattened-tree differences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileDiff>,
}

impl ImageDiff {
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.layers.is_empty() && self.files.is_empty()
    }
}

/// Options for [`diff_images`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DiffOptions {
    /// Ignore timestamps, history and layer boundaries.
    pub semantic: bool,
    /// Worker threads for reading layers (0 = available cores, at most 4).
    pub threads: usize,
}

/// One layer's entries (metadata only) and walk totals.
pub type ReadLayer = (Vec<LayerEntry>, WalkStats);

/// Reads the given layers (`(view, layer index)`) on up to `threads` threads; results in job order.
pub fn read_layers(jobs: &[(&ImageView, usize)], threads: usize) -> Result<Vec<ReadLayer>, InspectError> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
        n => n,
    }
    .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<ReadLayer, InspectError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(view, layer)) = jobs.get(i) else { break };
            let label = view.layer_label(layer);
            let r = view
                .open_layer(layer)
                .and_then(|stream| read_entries(stream, &label));
            let failed = r.is_err();
            results.lock().expect("no panics while locked")[i] = Some(r);
            if failed {
                // Stop handing out work; the first error is reported.
                next.store(jobs.len(), Ordering::Relaxed);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let mut out = Vec::with_capacity(jobs.len());
    for (i, r) in results
        .into_inner()
        .expect("workers joined")
        .into_iter()
        .enumerate()
    {
        match r {
            Some(r) => out.push(r?),
            None => {
                return Err(InspectError::Worker {
                    what: jobs[i].0.layer_label(jobs[i].1),
                });
            }
        }
    }
    Ok(out)
}

/// The flattened tree of an image plus each layer's changes and walk stats.
pub struct Flattened {
    pub tree: Tree,
    pub changes: Vec<Vec<Change>>,
    pub stats: Vec<WalkStats>,
}

/// Applies already-read layers bottom to top.
pub fn flatten(layers: Vec<ReadLayer>) -> Flattened {
    let mut tree = Tree::new();
    let mut changes = Vec::with_capacity(layers.len());
    let mut stats = Vec::with_capacity(layers.len());
    for (i, (entries, st)) in layers.into_iter().enumerate() {
        changes.push(tree.apply_layer(i, &entries));
        stats.push(st);
    }
    Flattened { tree, changes, stats }
}

/// Reads and flattens every layer of `view`.
pub fn flatten_image(view: &ImageView, threads: usize) -> Result<Flattened, InspectError> {
    let jobs: Vec<(&ImageView, usize)> = (0..view.layers.len()).map(|i| (view, i)).collect();
    Ok(flatten(read_layers(&jobs, threads)?))
}

fn layer_id(view: &ImageView, i: usize) -> Option<LayerId> {
    view.layers.get(i).map(|l| LayerId {
        digest: l.digest.clone(),
        diff_id: l.diff_id.clone(),
        size: l.size,
    })
}

fn same_layer(a: &ImageView, b: &ImageView, i: usize) -> bool {
    let (la, lb) = (&a.layers[i], &b.layers[i]);
    (la.diff_id.is_some() && la.diff_id == lb.diff_id) || (la.digest.is_some() && la.digest == lb.digest)
}

/// Compares two images (or two single-layer views).
pub fn diff_images(a: &ImageView, b: &ImageView, opts: DiffOptions) -> Result<ImageDiff, InspectError> {
    let config = if a.config.is_null() && b.config.is_null() {
        Vec::new()
    } else {
        diff_configs(&a.config, &b.config, !opts.semantic)
    };
    let mut out = ImageDiff {
        a: a.name.clone(),
        b: b.name.clone(),
        semantic: opts.semantic,
        config,
        layers: vec![],
        files: vec![],
    };
    if opts.semantic {
        let mut jobs: Vec<(&ImageView, usize)> = (0..a.layers.len()).map(|i| (a, i)).collect();
        jobs.extend((0..b.layers.len()).map(|i| (b, i)));
        let mut read = read_layers(&jobs, opts.threads)?;
        let rb = read.split_off(a.layers.len());
        let (ta, tb) = (flatten(read).tree, flatten(rb).tree);
        out.files = diff_trees(&ta, &tb, false);
        return Ok(out);
    }
    let n = a.layers.len().max(b.layers.len());
    let mut jobs: Vec<(&ImageView, usize)> = Vec::new();
    let mut differing = Vec::new();
    for i in 0..n {
        let both = i < a.layers.len() && i < b.layers.len();
        if both && same_layer(a, b, i) {
            continue;
        }
        differing.push(i);
        if i < a.layers.len() {
            jobs.push((a, i));
        }
        if i < b.layers.len() {
            jobs.push((b, i));
        }
    }
    let mut read = read_layers(&jobs, opts.threads)?.into_iter();
    for i in differing {
        let ea = if i < a.layers.len() {
            read.next().map(|r| r.0).unwrap_or_default()
        } else {
            Vec::new()
        };
        let eb = if i < b.layers.len() {
            read.next().map(|r| r.0).unwrap_or_default()
        } else {
            Vec::new()
        };
        out.layers.push(LayerDiff {
            index: i,
            a: layer_id(a, i),
            b: layer_id(b, i),
            files: diff_layer_entries(&ea, &eb, true),
        });
    }
    Ok(out)
}
