//! A read-only merged view over a stack of snapshot dirs (overlayfs semantics without a mount), so COPY can
//! look up destinations, read /etc/passwd and take `--from` sources without a sandbox.
//!
//! Lower dirs hold overlay-format whiteouts (char device 0:0) and opaque dirs (`trusted.overlay.opaque=y`),
//! exactly what an overlay upper dir or an applied layer contains.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// A stack of dirs, top first.
#[derive(Clone, Debug, Default)]
pub struct View {
    layers: Vec<PathBuf>,
}

/// One entry found in the view: the real path on disk and its metadata (not followed).
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub meta: Metadata,
}

pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

pub fn is_opaque(path: &Path) -> bool {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        let mut buf = [0u8; 4];
        if let Ok(n) = rustix::fs::lgetxattr(path, name, &mut buf)
            && n >= 1
            && buf[0] == b'y'
        {
            return true;
        }
    }
    false
}

/// Splits an absolute-or-relative container path into normal components, dropping `.`, `/` and clamping `..`
/// at the root (container paths are resolved as if chrooted).
pub fn clean_components(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl View {
    /// `layers` top first.
    pub fn new(layers: Vec<PathBuf>) -> View {
        View { layers }
    }

    pub fn empty() -> View {
        View { layers: Vec::new() }
    }

    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// Looks up `comps` (already cleaned, no symlink following) through the stack.
    pub fn lookup(&self, comps: &[String]) -> Option<Found> {
        if comps.is_empty() {
            // The root always exists, even in an empty view (scratch).
            let path = self.layers.first().cloned().unwrap_or_else(|| PathBuf::from("/"));
            return fs::symlink_metadata(&path).ok().map(|meta| Found { path, meta });
        }
        for layer in &self.layers {
            let mut p = layer.clone();
            // An opaque ancestor in this layer hides every lower layer below it.
            let mut last_layer = false;
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                let meta = match fs::symlink_metadata(&p) {
                    Ok(m) => m,
                    Err(_) if last_layer => return None,
                    Err(_) => break,
                };
                if is_whiteout(&meta) {
                    return None;
                }
                if i + 1 == comps.len() {
                    return Some(Found { path: p, meta });
                }
                if !meta.is_dir() {
                    // A non-dir ancestor in a higher layer hides everything below it.
                    return None;
                }
                if is_opaque(&p) {
                    last_layer = true;
                }
            }
        }
        None
    }

    /// Lists a directory of the merged tree: name → real path, whiteouts and opaque dirs honoured.
    pub fn read_dir(&self, comps: &[String]) -> io::Result<BTreeMap<String, PathBuf>> {
        let mut out = BTreeMap::new();
        let mut hidden = std::collections::BTreeSet::new();
        for layer in &self.layers {
            // Check this layer's ancestors: a whiteout/non-dir stops, a missing one skips the layer.
            let mut p = layer.clone();
            let mut present = true;
            for c in comps {
                p.push(c);
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Ok(out),
                    Err(_) => {
                        present = false;
                        break;
                    }
                }
            }
            if !present {
                continue;
            }
            for ent in fs::read_dir(&p)? {
                let ent = ent?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if out.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let meta = ent.metadata()?;
                if is_whiteout(&meta) {
                    hidden.insert(name);
                } else {
                    out.insert(name, ent.path());
                }
            }
            if is_opaque(&p) {
                break;
            }
            // A dir in a lower layer is shadowed by a non-dir of the same name above it: lookups of
            // children only descend while every layer above agrees the path is a dir, approximated here by
            // stopping at the first layer where the dir itself is opaque.
        }
        Ok(out)
    }

    /// Resolves `path` (container-absolute or relative to `/`) following symlinks inside the view, like a
    /// chroot'ed realpath; a missing tail is kept as is. Returns cleaned components.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Vec<String> {
        let mut pending: Vec<String> = clean_components(path);
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let is_last = pending.is_empty();
            if is_last && !follow_last {
                break;
            }
            let Some(found) = self.lookup(&done) else {
                // Missing: the rest is created fresh, no more links to follow.
                done.extend(pending.drain(..).rev());
                break;
            };
            if found.meta.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    break;
                }
                let target = fs::read_link(&found.path).unwrap_or_default();
                done.pop();
                if target.is_absolute() {
                    done.clear();
                }
                let mut t: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".to_string()),
                        _ => None,
                    })
                    .collect();
                t.reverse();
                pending.extend(t);
            }
        }
        done
    }

    /// Reads a small file of the merged tree (e.g. /etc/passwd), following symlinks in the view.
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let comps = self.resolve(path, true);
        let found = self.lookup(&comps)?;
        if !found.meta.is_file() {
            return None;
        }
        fs::read(found.path).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_and_links() {
        let t = tempfile::tempdir().unwrap();
        let low = t.path().join("low");
        let up = t.path().join("up");
        fs::create_dir_all(low.join("etc")).unwrap();
        fs::create_dir_all(low.join("gone")).unwrap();
        fs::write(low.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(low.join("gone/f"), "x").unwrap();
        fs::create_dir_all(&up).unwrap();
        std::os::unix::fs::symlink("/etc", up.join("cfg")).unwrap();
        let v = View::new(vec![up.clone(), low.clone()]);
        assert!(v.read_file("/cfg/passwd").unwrap().starts_with(b"root"));
        assert_eq!(v.resolve("/cfg/x", true), vec!["etc", "x"]);
        assert!(v.lookup(&["gone".into(), "f".into()]).is_some());
        let names = v.read_dir(&[]).unwrap();
        assert_eq!(
            names.keys().cloned().collect::<Vec<_>>(),
            vec!["cfg", "etc", "gone"]
        );
        // A whiteout needs mknod (root); skip the rest otherwise.
        if rustix::fs::mknodat(
            rustix::fs::CWD,
            up.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .is_err()
        {
            lamina_testkit::skip("mknod not permitted");
            return;
        }
        assert!(v.lookup(&["gone".into(), "f".into()]).is_none());
        assert!(!v.read_dir(&[]).unwrap().contains_key("gone"));
    }
}
