//! One pass over an image's layers, keeping the package-database files that the final filesystem has.
//!
//! A file is kept when a layer writes it as a regular file, and dropped again when a later layer deletes it
//! (a `.wh.` whiteout of it or of a parent), hides it (an opaque directory above it), or puts something else
//! at its path. Content is read only for wanted paths, up to [`MAX_FILE`] each and [`MAX_TOTAL`] in all;
//! a file over its cap is reported in [`Collected::skipped`], never read whole.

use std::collections::BTreeMap;
use std::io::Read;

use lamina_inspect::source::ImageView;

use super::SbomError;

/// The largest database file read (a Debian image with thousands of packages has a status file of a few MB).
pub const MAX_FILE: u64 = 32 << 20;
/// The most content kept over all files.
pub const MAX_TOTAL: u64 = 256 << 20;

pub const OS_RELEASE: &str = "etc/os-release";
const OS_RELEASE_USR: &str = "usr/lib/os-release";
pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
pub const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d/";
pub const APK_INSTALLED: &str = "lib/apk/db/installed";

/// A kept file: its content and the layer that wrote it.
#[derive(Clone, Debug)]
pub struct File {
    pub layer: usize,
    pub data: Vec<u8>,
}

/// The files kept, by cleaned path (no leading `/`).
#[derive(Debug, Default)]
pub struct Collected {
    pub files: BTreeMap<String, File>,
    /// Wanted files left unread because they pass a cap.
    pub skipped: Vec<String>,
}

impl Collected {
    pub fn get(&self, path: &str) -> Option<&File> {
        self.files.get(path)
    }

    /// Kept files whose path satisfies `f`.
    pub fn matching<'a>(
        &'a self,
        f: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a str, &'a File)> + 'a {
        self.files
            .iter()
            .filter(move |(p, _)| f(p))
            .map(|(p, f)| (p.as_str(), f))
    }

    fn remove_at_or_below(&mut self, path: &str, before_layer: Option<usize>) {
        let prefix = format!("{path}/");
        self.files.retain(|p, f| {
            let hit = p == path || p.starts_with(&prefix) || path.is_empty();
            !(hit && before_layer.is_none_or(|l| f.layer < l))
        });
    }
}

/// Whether an SBOM reads the file at `path`.
pub fn wanted(path: &str) -> bool {
    if matches!(path, OS_RELEASE | OS_RELEASE_USR | DPKG_STATUS | APK_INSTALLED) {
        return true;
    }
    if let Some(name) = path.strip_prefix(DPKG_STATUS_D) {
        return !name.contains('/') && !name.ends_with(".md5sums") && !name.is_empty();
    }
    let file = path.rsplit('/').next().unwrap_or(path);
    match file {
        "METADATA" => parent_name(path).is_some_and(|d| d.ends_with(".dist-info")),
        "PKG-INFO" => parent_name(path).is_some_and(|d| d.ends_with(".egg-info")),
        "package.json" => npm_package_dir(path),
        "Cargo.lock" => true,
        _ => false,
    }
}

fn parent_name(path: &str) -> Option<&str> {
    let dir = path.rsplit_once('/')?.0;
    Some(dir.rsplit('/').next().unwrap_or(dir))
}

/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`: a package's own
/// manifest, not one of the many package.json files inside a package's sources.
fn npm_package_dir(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    (n >= 3 && parts[n - 3] == "node_modules" && !parts[n - 2].starts_with('@'))
        || (n >= 4 && parts[n - 4] == "node_modules" && parts[n - 3].starts_with('@'))
}

fn clean(raw: &str) -> String {
    raw.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Walks every layer of `view` in order.
pub fn collect(view: &ImageView) -> Result<Collected, SbomError> {
    let mut out = Collected::default();
    let mut total = 0u64;
    for i in 0..view.layers.len() {
        let label = view.layer_label(i);
        let tar_err = |source| SbomError::Tar {
            image: view.name.clone(),
            layer: label.clone(),
            source,
        };
        let stream = view.open_layer(i).map_err(|source| SbomError::Layer {
            image: view.name.clone(),
            layer: label.clone(),
            source,
        })?;
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == ".wh..wh..opq" {
                out.remove_at_or_below(dir, Some(i));
                continue;
            }
            if let Some(gone) = name.strip_prefix(".wh.") {
                if !gone.starts_with(".wh.") {
                    let target = if dir.is_empty() {
                        gone.to_owned()
                    } else {
                        format!("{dir}/{gone}")
                    };
                    out.remove_at_or_below(&target, None);
                }
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                // A directory over a kept file replaces it; files below a directory entry stay.
                out.files.remove(&path);
                continue;
            }
            out.files.remove(&path);
            if !(kind.is_file() || kind == tar::EntryType::Continuous) || !wanted(&path) {
                continue;
            }
            let size = entry.size();
            if size > MAX_FILE || total + size > MAX_TOTAL {
                out.skipped.push(path);
                continue;
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(MAX_FILE)
                .read_to_end(&mut data)
                .map_err(tar_err)?;
            total += data.len() as u64;
            out.files.insert(path, File { layer: i, data });
        }
    }
    if !out.files.contains_key(OS_RELEASE)
        && let Some(f) = out.files.remove(OS_RELEASE_USR)
    {
        // Debian's /etc/os-release is a symlink to ../usr/lib/os-release.
        out.files.insert(OS_RELEASE.to_owned(), f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_paths() {
        for p in [
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/base-files",
            "lib/apk/db/installed",
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            "usr/lib/python3.11/site-packages/six-1.16.0-py3.11.egg-info/PKG-INFO",
            "app/node_modules/left-pad/package.json",
            "app/node_modules/@types/node/package.json",
            "app/node_modules/a/node_modules/b/package.json",
            "src/Cargo.lock",
            "etc/os-release",
        ] {
            assert!(wanted(p), "{p}");
        }
        for p in [
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/status.d/base-files.md5sums",
            "app/node_modules/left-pad/lib/package.json",
            "app/package.json",
            "usr/share/doc/METADATA",
            "etc/passwd",
        ] {
            assert!(!wanted(p), "{p}");
        }
    }
}
