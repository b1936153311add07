//! The flattened file tree of an image: layers applied bottom to top with OCI semantics, as metadata only.
//!
//! Applying a layer follows the OCI image spec (and what containerd/umoci do on disk):
//! - whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) delete from the layers *below* only, whatever
//!   their position in the tar, so a layer can hide a directory and re-create entries in it;
//! - a non-directory replacing a directory removes everything under it; a directory replacing a file keeps
//!   nothing of the file;
//! - parents a layer never lists are created as 0755 root directories;
//! - a hardlink takes the content and attributes of its target (one inode) as the tree stood when applied;
//! - a path listed twice in one layer: the last entry wins.
//!
//! [`Tree::apply_layer`] reports what the layer did relative to the tree below it: each path at most once.

use std::collections::BTreeMap;

use serde::Serialize;

use super::entry::{Field, Kind, Meta, Whiteout, differing_fields, parent};
use super::walk::LayerEntry;

/// A path in a flattened tree and the layer that last wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    #[serde(flatten)]
    pub meta: Meta,
    pub layer: usize,
}

/// What a layer did to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
    /// The layer lists the path with exactly the metadata it already had (e.g. a parent directory re-emitted).
    Unchanged,
}

/// Why a path was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovedBy {
    /// A `.wh.NAME` entry for it or one of its parents.
    Whiteout,
    /// A `.wh..wh..opq` in one of its parents.
    Opaque,
    /// A parent directory was replaced by a non-directory.
    Replaced,
}

/// One path's change within a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<RemovedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Node>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Meta>,
}

/// The flattened tree: cleaned path → node. The root itself is implicit.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// The key range holding exactly the descendants of `dir` (`""` = the root, i.e. everything).
fn descendants_range(dir: &str) -> (std::ops::Bound<String>, std::ops::Bound<String>) {
    use std::ops::Bound;
    if dir.is_empty() {
        (Bound::Unbounded, Bound::Unbounded)
    } else {
        // '0' is the byte after '/', so [dir/, dir0) is every key starting with "dir/".
        (
            Bound::Included(format!("{dir}/")),
            Bound::Excluded(format!("{dir}0")),
        )
    }
}

struct Applying<'a> {
    tree: &'a mut Tree,
    layer: usize,
    changes: BTreeMap<String, Change>,
    /// Lower paths this layer's whiteouts removed; a later entry re-creating one turns it into a change.
    stash: BTreeMap<String, (Node, RemovedBy)>,
}

impl Applying<'_> {
    fn record(&mut self, path: &str, before: Option<Node>, after: Meta) {
        let before = match self.changes.remove(path) {
            Some(existing) => existing.before,
            None => before,
        };
        let (kind, fields) = match &before {
            None => (ChangeKind::Added, Vec::new()),
            Some(b) => {
                let f = differing_fields(&b.meta, &after, true);
                (
                    if f.is_empty() {
                        ChangeKind::Unchanged
                    } else {
                        ChangeKind::Changed
                    },
                    f,
                )
            }
        };
        self.changes.insert(
            path.to_string(),
            Change {
                path: path.to_string(),
                kind,
                fields,
                removed_by: None,
                before,
                after: Some(after),
            },
        );
    }

    fn record_removed(&mut self, path: &str, node: Node, by: RemovedBy) {
        let before = match self.changes.remove(path) {
            // Added and removed within this layer: no net change.
            Some(Change { before: None, .. }) => return,
            Some(existing) => existing.before,
            None => Some(node),
        };
        self.changes.insert(
            path.to_string(),
            Change {
                path: path.to_string(),
                kind: ChangeKind::Removed,
                fields: Vec::new(),
                removed_by: Some(by),
                before,
                after: None,
            },
        );
    }

    fn remove_subtree(&mut self, dir: &str, include_self: bool, by: RemovedBy, to_stash: bool) {
        let mut keys: Vec<String> = self
            .tree
            .nodes
            .range(descendants_range(dir))
            .map(|(k, _)| k.clone())
            .collect();
        if include_self && self.tree.nodes.contains_key(dir) {
            keys.push(dir.to_string());
        }
        for k in keys {
            if let Some(node) = self.tree.nodes.remove(&k) {
                if to_stash {
                    self.stash.insert(k, (node, by));
                } else {
                    self.record_removed(&k, node, by);
                }
            }
        }
    }

    /// Makes every ancestor of `path` a directory, as an applier's MkdirAll would.
    fn ensure_parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let anc = &path[..end + i];
            end += i + 1;
            match self.tree.nodes.get(anc) {
                Some(n) if n.meta.is_dir() => {}
                Some(_) => {
                    let prev = self.tree.nodes.remove(anc);
                    self.put(anc, Meta::implicit_dir(), prev);
                }
                None => {
                    let prev = self.stash.remove(anc).map(|(n, _)| n);
                    self.put(anc, Meta::implicit_dir(), prev);
                }
            }
        }
    }

    fn put(&mut self, path: &str, meta: Meta, prev: Option<Node>) {
        self.tree.nodes.insert(
            path.to_string(),
            Node {
                meta: meta.clone(),
                layer: self.layer,
            },
        );
        self.record(path, prev, meta);
    }

    fn entry(&mut self, path: &str, mut meta: Meta) {
        self.ensure_parents(path);
        if meta.kind == Kind::Hardlink
            && let Some(target) = meta.link.as_deref().and_then(|t| self.tree.nodes.get(t))
            && matches!(target.meta.kind, Kind::File | Kind::Hardlink)
        {
            // Same inode: the link shows the target's content and attributes, not its own header's.
            meta.size = target.meta.size;
            meta.hash = target.meta.hash;
            meta.mode = target.meta.mode;
            meta.uid = target.meta.uid;
            meta.gid = target.meta.gid;
            meta.mtime = target.meta.mtime;
        }
        let prev = match self.tree.nodes.remove(path) {
            Some(n) => Some(n),
            None => self.stash.remove(path).map(|(n, _)| n),
        };
        if !meta.is_dir() && prev.as_ref().is_some_and(|p| p.meta.is_dir()) {
            self.remove_subtree(path, false, RemovedBy::Replaced, false);
        }
        self.put(path, meta, prev);
    }
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// Applies one layer's entries (in tar order) as layer number `layer`; returns its changes sorted by path.
    pub fn apply_layer(&mut self, layer: usize, entries: &[LayerEntry]) -> Vec<Change> {
        let mut a = Applying {
            tree: self,
            layer,
            changes: BTreeMap::new(),
            stash: BTreeMap::new(),
        };
        for e in entries {
            match e.whiteout() {
                Some(Whiteout::Opaque(dir)) => a.remove_subtree(&dir, false, RemovedBy::Opaque, true),
                Some(Whiteout::Path(p)) => a.remove_subtree(&p, true, RemovedBy::Whiteout, true),
                None => {}
            }
        }
        for e in entries {
            if e.whiteout().is_none() && !matches!(e.meta.kind, Kind::Whiteout | Kind::Opaque) {
                a.entry(&e.path, e.meta.clone());
            }
        }
        for (path, (node, by)) in std::mem::take(&mut a.stash) {
            a.record_removed(&path, node, by);
        }
        a.changes.into_values().collect()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All nodes in byte order of their paths.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// The nodes strictly below `dir` (`""` for all).
    pub fn descendants<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a String, &'a Node)> + 'a {
        self.nodes.range(descendants_range(dir))
    }

    /// Sum of regular-file bytes visible in the tree (hardlinks counted once, as on disk).
    pub fn content_bytes(&self) -> u64 {
        self.nodes.values().map(|n| n.meta.stored_bytes()).sum()
    }

    /// Cumulative content bytes under each directory (and `""` for the root).
    pub fn dir_sizes(&self) -> BTreeMap<String, u64> {
        let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
        sizes.insert(String::new(), 0);
        for (path, node) in &self.nodes {
            if node.meta.is_dir() {
                sizes.entry(path.clone()).or_insert(0);
            }
            let bytes = node.meta.stored_bytes();
            if bytes == 0 {
                continue;
            }
            let mut p = parent(path);
            loop {
                *sizes.entry(p.to_string()).or_insert(0) += bytes;
                if p.is_empty() {
                    break;
                }
                p = parent(p);
            }
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TarBuilder;
    use crate::walk::read_entries;

    fn entries(t: TarBuilder) -> Vec<LayerEntry> {
        read_entries(t.finish().as_slice(), "t").unwrap().0
    }

    fn summary(changes: &[Change]) -> Vec<(String, ChangeKind, Option<RemovedBy>)> {
        changes
            .iter()
            .map(|c| (c.path.clone(), c.kind, c.removed_by))
            .collect()
    }

    fn s(p: &str, k: ChangeKind, by: Option<RemovedBy>) -> (String, ChangeKind, Option<RemovedBy>) {
        (p.to_string(), k, by)
    }

    #[test]
    fn whiteouts_opaque_and_replacement() {
        use ChangeKind::*;
        let mut tree = Tree::new();
        let mut base = TarBuilder::new();
        base.dir("etc", 0o755)
            .file("etc/a", b"a", 0o644)
            .file("etc/b", b"b", 0o644)
            .dir("var", 0o755)
            .file("var/x", b"x", 0o644)
            .dir("var/sub", 0o755)
            .file("var/sub/y", b"y", 0o644)
            .dir("d", 0o755)
            .file("d/child", b"c", 0o644)
            .file("f", b"file", 0o644);
        let c0 = tree.apply_layer(0, &entries(base));
        assert!(c0.iter().all(|c| c.kind == Added));
        assert_eq!(c0.len(), 10);

        let mut top = TarBuilder::new();
        top.mtime += 10;
        // Whiteout after re-creating a sibling, opaque marker after the new entry: positions must not matter.
        top.dir("var", 0o755)
            .file("var/x", b"new x", 0o644)
            .opaque("var")
            .whiteout("etc/a")
            .file("d", b"now a file", 0o600)
            .dir("f", 0o700)
            .file("f/inner", b"i", 0o644)
            .file("new/deep/file", b"n", 0o644);
        let c1 = tree.apply_layer(1, &entries(top));
        assert_eq!(
            summary(&c1),
            vec![
                s("d", Changed, None),
                s("d/child", Removed, Some(RemovedBy::Replaced)),
                s("etc/a", Removed, Some(RemovedBy::Whiteout)),
                s("f", Changed, None),
                s("f/inner", Added, None),
                s("new", Added, None),
                s("new/deep", Added, None),
                s("new/deep/file", Added, None),
                s("var", Changed, None),
                s("var/sub", Removed, Some(RemovedBy::Opaque)),
                s("var/sub/y", Removed, Some(RemovedBy::Opaque)),
                s("var/x", Changed, None),
            ]
        );
        let var_x = c1.iter().find(|c| c.path == "var/x").unwrap();
        assert_eq!(var_x.fields, vec![Field::Content, Field::Size, Field::Mtime]);
        let d = c1.iter().find(|c| c.path == "d").unwrap();
        assert_eq!(
            d.fields,
            vec![
                Field::Type,
                Field::Content,
                Field::Size,
                Field::Mode,
                Field::Mtime
            ]
        );
        let paths: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "d",
                "etc",
                "etc/b",
                "f",
                "f/inner",
                "new",
                "new/deep",
                "new/deep/file",
                "var",
                "var/x"
            ]
        );
        assert_eq!(tree.get("var/x").unwrap().layer, 1);
        assert_eq!(tree.get("etc/b").unwrap().layer, 0);
    }

    #[test]
    fn each_path_reported_once() {
        let mut tree = Tree::new();
        let mut base = TarBuilder::new();
        base.dir("a", 0o755).file("a/f", b"1", 0o644);
        tree.apply_layer(0, &entries(base));
        let mut top = TarBuilder::new();
        // Listed twice, whited out and re-created, and a re-emitted identical parent.
        top.dir("a", 0o755)
            .whiteout("a/f")
            .file("a/f", b"2", 0o644)
            .file("a/f", b"3", 0o644);
        top.file("tmp/t", b"t", 0o644).whiteout("tmp");
        let c = tree.apply_layer(1, &entries(top));
        assert_eq!(
            summary(&c),
            vec![
                s("a", ChangeKind::Unchanged, None),
                s("a/f", ChangeKind::Changed, None),
                s("tmp", ChangeKind::Added, None),
                s("tmp/t", ChangeKind::Added, None),
            ]
        );
        assert_eq!(tree.get("a/f").unwrap().meta.size, 1);
        assert_ne!(
            c[1].before.as_ref().unwrap().meta.hash,
            c[1].after.as_ref().unwrap().hash
        );
    }

    #[test]
    fn hardlinks_take_target_content() {
        let mut tree = Tree::new();
        let mut t = TarBuilder::new();
        t.file("bin/busybox", b"BB", 0o755)
            .hardlink("bin/sh", "bin/busybox");
        tree.apply_layer(0, &entries(t));
        let sh = &tree.get("bin/sh").unwrap().meta;
        assert_eq!(sh.size, 2);
        assert_eq!(sh.hash, tree.get("bin/busybox").unwrap().meta.hash);
        // Hardlinks store no content: visible bytes count the file once.
        assert_eq!(tree.content_bytes(), 2);
        assert_eq!(tree.dir_sizes()["bin"], 2);
    }

    #[test]
    fn root_opaque_hides_everything_below() {
        let mut tree = Tree::new();
        let mut t = TarBuilder::new();
        t.file("a", b"1", 0o644).file("b/c", b"2", 0o644);
        tree.apply_layer(0, &entries(t));
        let mut t = TarBuilder::new();
        t.opaque("").file("b/c", b"2", 0o644);
        let c = tree.apply_layer(1, &entries(t));
        assert_eq!(
            summary(&c),
            vec![
                s("a", ChangeKind::Removed, Some(RemovedBy::Opaque)),
                s("b", ChangeKind::Unchanged, None),
                s("b/c", ChangeKind::Unchanged, None),
            ]
        );
    }
}
