//! The build context: source selection (wildcards, .dockerignore), and the content digest of exactly the
//! selected files for cache keys, with a persistent stat memo so an unchanged context costs only stat calls.
//!
//! The context is untrusted (a cloned repository): it is walked and read through fds like any other tree
//! ([`View`]), and `.dockerignore` is applied here, once — every consumer (COPY/ADD, cache keys, RUN bind
//! mounts, which get a filtered copy) sees the context only through [`SourceTree`].

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lamina_store::digest::Hasher;
use lamina_store::{Algorithm, Digest};

use super::BuildError;
use super::view::{Found, ResolveError, View, clean_components};

/// What .dockerignore (or `COPY --exclude`) says about a context-relative path (`a/b`, no leading slash).
pub trait Ignore: Send + Sync {
    fn excluded(&self, rel: &str, is_dir: bool) -> bool;
    /// Whether an excluded dir may still contain re-included entries (a `!` pattern), so it must be walked.
    fn may_reinclude(&self, _rel_dir: &str) -> bool {
        false
    }
}

/// A tree sources are taken from: the context dir (with .dockerignore) or a stage/image rootfs view.
pub trait SourceTree: Sync {
    /// The entry `comps` (not followed, held by an fd), None when missing or ignored.
    fn stat(&self, comps: &[String]) -> Option<Found>;
    /// Entry names of dir `comps`, sorted, ignored ones left out.
    fn list(&self, comps: &[String]) -> io::Result<Vec<String>>;
    /// Resolve symlinks in `comps` inside the tree (for source roots, which BuildKit follows); a link loop
    /// or a chain past [`super::view::MAX_LINKS`] is an error, never a half-resolved path.
    fn resolve(&self, comps: &[String]) -> Result<Vec<String>, ResolveError>;
    /// Which layer dir of the tree `real` (a path `stat` returned) lives in; 0 for single-dir trees.
    fn layer_of(&self, _real: &Path) -> usize {
        0
    }
    /// Entry names of dir `comps`, which `stat` returned as `dir`; with [`SourceTree::child`]. A one-dir
    /// tree reads them through `dir`'s fd instead of walking from the root (may list ignored names,
    /// which `child` then leaves out).
    fn names(&self, comps: &[String], dir: &Found) -> io::Result<Vec<String>> {
        let _ = dir;
        self.list(comps)
    }
    /// Entry `comps` (a child of `dir`, named `name`) as `stat` gives it, opened through `dir`'s fd in a
    /// one-dir tree. One at a time: a huge dir must not hold an fd per entry.
    fn child(&self, comps: &[String], dir: &Found, name: &str) -> Option<Found> {
        let _ = (dir, name);
        self.stat(comps)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct MemoEntry {
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
    digest: String,
}

/// The build context dir.
pub struct Context {
    root: PathBuf,
    /// The context dir as a one-layer tree: every lookup is an fd walk from its root.
    tree: View,
    ignore: Option<Box<dyn Ignore>>,
    memo_path: Option<PathBuf>,
    memo: Mutex<(HashMap<String, MemoEntry>, bool)>,
    /// Files whose content was actually read (hashed) in this build; tests assert a warm build reads none.
    pub hashed: std::sync::atomic::AtomicUsize,
}

fn ns(sec: i64, nsec: i64) -> i128 {
    sec as i128 * 1_000_000_000 + nsec as i128
}

impl Context {
    /// `cache_dir`: the store's cache/ dir; where the memo lives in it is the store's business.
    pub fn open(
        root: &Path,
        ignore: Option<Box<dyn Ignore>>,
        cache_dir: Option<&Path>,
    ) -> Result<Context, BuildError> {
        let root = fs::canonicalize(root).map_err(|source| BuildError::Context {
            path: root.to_path_buf(),
            source,
        })?;
        let memo_path = cache_dir.map(|d| lamina_store::buildcache::context_memo(d, &root));
        let mut map = HashMap::new();
        if let Some(p) = &memo_path
            && let Ok(f) = File::open(p)
        {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                let mut it = line.splitn(6, ' ');
                let (Some(ino), Some(size), Some(mt), Some(ct), Some(dg), Some(path)) =
                    (it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
                else {
                    continue;
                };
                let (Ok(ino), Ok(size), Ok(mtime), Ok(ctime)) =
                    (ino.parse(), size.parse(), mt.parse(), ct.parse())
                else {
                    continue;
                };
                map.insert(
                    path.to_string(),
                    MemoEntry {
                        ino,
                        size,
                        mtime,
                        ctime,
                        digest: dg.to_string(),
                    },
                );
            }
        }
        Ok(Context {
            tree: View::new(vec![root.clone()]),
            root,
            ignore,
            memo_path,
            memo: Mutex::new((map, false)),
            hashed: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// sha256 of a regular file's content (read through its fd), from the memo when (ino, size, mtime,
    /// ctime) still match.
    pub fn file_digest(&self, rel: &str, found: &Found) -> Result<String, BuildError> {
        let meta = &found.meta;
        let key = MemoEntry {
            ino: meta.ino(),
            size: meta.size(),
            mtime: ns(meta.mtime(), meta.mtime_nsec()),
            ctime: ns(meta.ctime(), meta.ctime_nsec()),
            digest: String::new(),
        };
        {
            let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = memo.0.get(rel)
                && e.ino == key.ino
                && e.size == key.size
                && e.mtime == key.mtime
                && e.ctime == key.ctime
            {
                return Ok(e.digest.clone());
            }
        }
        let digest = hash_file(found).map_err(|source| BuildError::Context {
            path: found.path.clone(),
            source,
        })?;
        self.hashed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.0.insert(
            rel.to_string(),
            MemoEntry {
                digest: digest.clone(),
                ..key
            },
        );
        memo.1 = true;
        Ok(digest)
    }

    /// Writes the memo back when it changed (atomically; a lost race only costs re-hashing).
    pub fn save_memo(&self) -> Result<(), BuildError> {
        let Some(path) = &self.memo_path else {
            return Ok(());
        };
        let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if !memo.1 {
            return Ok(());
        }
        let err = |source| BuildError::Context {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        {
            let mut w = io::BufWriter::new(tmp.as_file_mut());
            for (p, e) in &memo.0 {
                if p.contains('\n') {
                    continue;
                }
                writeln!(
                    w,
                    "{} {} {} {} {} {}",
                    e.ino, e.size, e.mtime, e.ctime, e.digest, p
                )
                .map_err(err)?;
            }
            w.flush().map_err(err)?;
        }
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }

    fn rel(comps: &[String]) -> String {
        comps.join("/")
    }

    /// Whether .dockerignore hides `comps` (the root never is).
    fn ignored(&self, comps: &[String], is_dir: bool) -> bool {
        let Some(ig) = &self.ignore else {
            return false;
        };
        let rel = Self::rel(comps);
        !comps.is_empty() && ig.excluded(&rel, is_dir) && !(is_dir && ig.may_reinclude(&rel))
    }
}

fn hash_file(found: &Found) -> io::Result<String> {
    let mut f = found.open_read()?;
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish().hex().to_string())
}

impl SourceTree for Context {
    fn stat(&self, comps: &[String]) -> Option<Found> {
        let found = self.tree.lookup(comps)?;
        if self.ignored(comps, found.meta.is_dir()) {
            return None;
        }
        Some(found)
    }

    fn list(&self, comps: &[String]) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for (name, is_dir) in self.tree.read_dir(comps)? {
            let mut c = comps.to_vec();
            c.push(name.clone());
            if !self.ignored(&c, is_dir) {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn names(&self, _comps: &[String], dir: &Found) -> io::Result<Vec<String>> {
        View::names_of(dir)
    }

    fn child(&self, comps: &[String], dir: &Found, name: &str) -> Option<Found> {
        let f = View::child_of(dir, name)?;
        (!self.ignored(comps, f.meta.is_dir())).then_some(f)
    }

    fn resolve(&self, comps: &[String]) -> Result<Vec<String>, ResolveError> {
        // A link may not lead into an ignored path: BuildKit never transfers those, so they don't exist.
        let visible = |prefix: &[String], meta: &Metadata| !self.ignored(prefix, meta.is_dir());
        self.tree.resolve_visible(&comps.join("/"), true, &visible)
    }
}

/// A rootfs (stage or image) as a source tree.
impl SourceTree for View {
    fn stat(&self, comps: &[String]) -> Option<Found> {
        self.lookup(comps)
    }
    fn layer_of(&self, real: &Path) -> usize {
        self.layers()
            .iter()
            .position(|l| real.starts_with(l))
            .unwrap_or(0)
    }
    fn list(&self, comps: &[String]) -> io::Result<Vec<String>> {
        Ok(self.read_dir(comps)?.into_keys().collect())
    }
    fn resolve(&self, comps: &[String]) -> Result<Vec<String>, ResolveError> {
        View::resolve(self, &comps.join("/"), true)
    }
}

pub use crate::glob::{has_wildcard, match_component};

/// Expands a source pattern (context- or rootfs-relative) to the matching paths (as components), sorted.
/// A pattern without wildcards names exactly one path, which must exist.
pub fn select(tree: &dyn SourceTree, pattern: &str) -> Result<Vec<Vec<String>>, BuildError> {
    let comps = clean_components(pattern);
    if !comps.iter().any(|c| has_wildcard(c)) {
        let resolved = tree.resolve(&comps)?;
        if tree.stat(&resolved).is_none() {
            return Err(BuildError::SourceNotFound {
                pattern: pattern.to_string(),
            });
        }
        return Ok(vec![comps]);
    }
    let mut found: Vec<Vec<String>> = vec![Vec::new()];
    for c in &comps {
        let mut next = Vec::new();
        for base in &found {
            if has_wildcard(c) {
                let dir = tree.resolve(base)?;
                let Ok(names) = tree.list(&dir) else { continue };
                for n in names {
                    if match_component(c, &n) {
                        let mut b = base.clone();
                        b.push(n);
                        next.push(b);
                    }
                }
            } else {
                let mut b = base.clone();
                b.push(c.clone());
                if tree.stat(&tree.resolve(&b)?).is_some() {
                    next.push(b);
                }
            }
        }
        found = next;
    }
    // A wildcard matching nothing is not an error (BuildKit's AllowEmptyWildcard).
    found.sort();
    Ok(found)
}

/// Digest of the selected sources: every entry below them (after ignores and `exclude`) as
/// path, type, mode, owner, size, content digest or link target. Reads content only on memo misses.
pub fn selection_digest(
    ctx: &Context,
    selected: &[Vec<String>],
    exclude: &dyn Fn(&str, bool) -> bool,
) -> Result<Digest, BuildError> {
    let mut h = Hasher::new(Algorithm::Sha256);
    for sel in selected {
        let root = ctx.resolve(sel)?;
        h.update(format!("src {}\0{}\n", sel.join("/"), root.join("/")).as_bytes());
        if let Some(found) = ctx.stat(&root) {
            walk_digest(ctx, &root, found, "", &mut h, exclude)?;
        }
    }
    Ok(h.finish())
}

/// `found` is `comps`, visible (not ignored); children are opened through its fd, not walked from the
/// root again.
fn walk_digest(
    ctx: &Context,
    comps: &[String],
    found: Found,
    rel_to_src: &str,
    h: &mut Hasher,
    exclude: &dyn Fn(&str, bool) -> bool,
) -> Result<(), BuildError> {
    let (real, meta) = (&found.path, &found.meta);
    let rel = comps.join("/");
    if !rel_to_src.is_empty() && exclude(rel_to_src, meta.is_dir()) {
        return Ok(());
    }
    let ft = meta.file_type();
    let kind_and_data = if ft.is_file() {
        format!("f {} {}", meta.size(), ctx.file_digest(&rel, &found)?)
    } else if ft.is_symlink() {
        let t = found.read_link().map_err(|source| BuildError::Context {
            path: real.clone(),
            source,
        })?;
        format!("l {}", t.to_string_lossy())
    } else if ft.is_dir() {
        "d".to_string()
    } else {
        format!("s {}", meta.rdev())
    };
    h.update(
        format!(
            "{}\0{:o}\0{}\0{}\0{}\n",
            rel_to_src,
            meta.permissions().mode() & 0o7777,
            meta.uid(),
            meta.gid(),
            kind_and_data
        )
        .as_bytes(),
    );
    if ft.is_dir() {
        let names = ctx.names(comps, &found).map_err(|source| BuildError::Context {
            path: real.clone(),
            source,
        })?;
        for n in names {
            let mut c = comps.to_vec();
            c.push(n.clone());
            let Some(child) = ctx.child(&c, &found, &n) else {
                continue;
            };
            let r = if rel_to_src.is_empty() {
                n
            } else {
                format!("{rel_to_src}/{n}")
            };
            walk_digest(ctx, &c, child, &r, h, exclude)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_components() {
        assert!(match_component("*.txt", "a.txt"));
        assert!(!match_component("*.txt", "a.txt.bak"));
        assert!(match_component("f?le", "file"));
        assert!(match_component("[a-c]x", "bx"));
        assert!(!match_component("[^a-c]x", "bx"));
        assert!(match_component("\\*", "*"));
    }

    struct NoTxt;
    impl Ignore for NoTxt {
        fn excluded(&self, rel: &str, _d: bool) -> bool {
            rel.ends_with(".log")
        }
    }

    #[test]
    fn memo_avoids_rehash_and_detects_change() {
        let t = tempfile::tempdir().unwrap();
        let ctx_dir = t.path().join("ctx");
        let cache = t.path().join("cache");
        fs::create_dir_all(ctx_dir.join("src")).unwrap();
        fs::write(ctx_dir.join("src/a.txt"), "a").unwrap();
        fs::write(ctx_dir.join("src/b.txt"), "b").unwrap();
        fs::write(ctx_dir.join("src/x.log"), "x").unwrap();
        let no = |_: &str, _: bool| false;
        let d1 = {
            let c = Context::open(&ctx_dir, Some(Box::new(NoTxt)), Some(&cache)).unwrap();
            let sel = select(&c, "src/*.txt").unwrap();
            assert_eq!(sel.len(), 2);
            assert!(select(&c, "src/x.log").is_err(), "ignored file is not selectable");
            let d = selection_digest(&c, &select(&c, "src").unwrap(), &no).unwrap();
            assert_eq!(c.hashed.load(std::sync::atomic::Ordering::Relaxed), 2);
            c.save_memo().unwrap();
            d
        };
        // Touch (mtime only): re-hashed once, same digest; then no re-hash at all.
        let f = File::options()
            .write(true)
            .open(ctx_dir.join("src/a.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let c = Context::open(&ctx_dir, Some(Box::new(NoTxt)), Some(&cache)).unwrap();
        assert_eq!(
            selection_digest(&c, &select(&c, "src").unwrap(), &no).unwrap(),
            d1
        );
        assert_eq!(c.hashed.load(std::sync::atomic::Ordering::Relaxed), 1);
        c.save_memo().unwrap();
        let c = Context::open(&ctx_dir, Some(Box::new(NoTxt)), Some(&cache)).unwrap();
        assert_eq!(
            selection_digest(&c, &select(&c, "src").unwrap(), &no).unwrap(),
            d1
        );
        assert_eq!(c.hashed.load(std::sync::atomic::Ordering::Relaxed), 0);
        // Content change → new digest; an excluded file does not count.
        fs::write(ctx_dir.join("src/b.txt"), "B").unwrap();
        let d2 = selection_digest(&c, &select(&c, "src").unwrap(), &no).unwrap();
        assert_ne!(d1, d2);
        fs::write(ctx_dir.join("src/x.log"), "changed").unwrap();
        assert_eq!(
            selection_digest(&c, &select(&c, "src").unwrap(), &no).unwrap(),
            d2
        );
        let excl = |r: &str, _: bool| r == "b.txt";
        assert_ne!(
            selection_digest(&c, &select(&c, "src").unwrap(), &excl).unwrap(),
            d2
        );
    }
}
