//! Sources of `RUN --mount=type=bind`: always a private tree lamina made under the store's tmp dir, never a
//! path inside the context or a snapshot.
//!
//! Binding an untrusted tree's path directly lets the kernel resolve it again at mount time: a link the
//! user-space lookup left unresolved, or one swapped in between (BuildKit CVE-2024-23651), points the
//! mount at the host; `source=../../..` walks out of the context (buildah CVE-2024-1753); and a bind of
//! the context dir shows files `.dockerignore` excludes (issue 11 item 4). So the selection is copied out
//! of its [`SourceTree`] — which resolves in-tree through fds and applies `.dockerignore` — into a dir of
//! ours, and that is what the runner mounts. Read-only sources are materialised once per build and
//! source (files hardlinked where the filesystem allows: nothing can write through a read-only bind),
//! writable ones per RUN, since their writes are discarded.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::BuildError;
use super::context::SourceTree;
use super::copy::{CopySpec, copy};
use super::view::{View, clean_components};

/// Read-only materialisations of this build, by source; removed when the build ends.
#[derive(Debug, Default)]
pub struct BindSources {
    memo: Mutex<HashMap<String, PathBuf>>,
}

/// One bind source to materialise.
pub struct BindRequest<'a> {
    pub tree: &'a dyn SourceTree,
    /// Names the tree for the memo: `context`, `stage:N`, `image:NAME`.
    pub tree_key: String,
    /// The mount's `source=` (default `/`), relative to the tree's root; `..` is clamped at that root.
    pub source: &'a str,
    pub readonly: bool,
    pub line: usize,
    /// The store's tmp dir, where the private copy is made.
    pub tmp: &'a Path,
    /// See [`CopySpec::unprivileged`].
    pub unprivileged: bool,
}

impl BindSources {
    pub fn new() -> BindSources {
        BindSources::default()
    }

    /// The path to bind: a dir or file lamina created. A writable one is pushed onto `scratch` (the
    /// caller removes it after the RUN); a read-only one is kept for the rest of the build.
    pub fn materialise(
        &self,
        req: &BindRequest<'_>,
        scratch: &mut Vec<PathBuf>,
    ) -> Result<PathBuf, BuildError> {
        let comps = clean_components(req.source);
        let resolved = req
            .tree
            .resolve(&comps)
            .map_err(|e| BuildError::from(e).at_line(req.line))?;
        let key = format!("{}\0{}", req.tree_key, resolved.join("/"));
        // Held while copying: a second RUN wanting the same source waits for the first copy.
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if req.readonly
            && let Some(p) = memo.get(&key)
        {
            return Ok(p.clone());
        }
        let is_dir = req.tree.stat(&resolved).map(|f| f.meta.is_dir()).unwrap_or(true);
        let dir = req.tmp.join(format!("bind-{}", lamina_runner::new_id()));
        fs::create_dir_all(&dir).map_err(|source| BuildError::Io {
            path: dir.clone(),
            source,
        })?;
        // Removed after the RUN (writable), or on failure; a read-only copy that worked is kept instead.
        scratch.push(dir.clone());
        let no = |_: &str, _: bool| false;
        let spec = CopySpec {
            line: req.line,
            sources: vec![if comps.is_empty() {
                ".".into()
            } else {
                comps.join("/")
            }],
            dest: if is_dir { "/".into() } else { "/file".into() },
            workdir: "/".into(),
            owner: None,
            chmod: None,
            parents: false,
            exclude: &no,
            from_context: false,
            extract: None,
            // Read-only: nothing can write through the links into the snapshots or the context.
            link_files: req.readonly,
            unprivileged: req.unprivileged,
        };
        copy(req.tree, &View::empty(), &dir, &spec)?;
        let out = if is_dir { dir } else { dir.join("file") };
        if req.readonly {
            scratch.pop();
            memo.insert(key, out.clone());
        }
        Ok(out)
    }
}

impl Drop for BindSources {
    fn drop(&mut self) {
        let memo = self.memo.get_mut().unwrap_or_else(|e| e.into_inner());
        for p in memo.values() {
            // A file source lives in its own bind-* dir: remove that dir. remove_dir_all never follows
            // links (CVE-2022-21658), and the tree is ours.
            let dir = if p.is_dir() {
                p.as_path()
            } else {
                p.parent().unwrap_or(p)
            };
            let _ = fs::remove_dir_all(dir);
        }
    }
}
