//! One pass over an image's layers, keeping the package-database files that the final filesystem has.
//!
//! A file is kept when a layer writes it as a regular file, and dropped again when a later layer deletes it
//! (a `.wh.` whiteout of it or of a parent), hides it (an opaque directory above it), or puts something else
//! at its path. Content is read only for wanted paths, up to [`MAX_FILE`] each and [`MAX_TOTAL`] in all;
//! a file over its cap is reported in [`Collected::skipped`], never read whole. Executables are streamed
//! through [`gobuild::scan`](super::gobuild::scan) as they pass (the tar reader reads their bytes anyway),
//! and their Go build info is kept under their path with the same layer rules.

use std::collections::BTreeMap;
use std::io::Read;

use lamina_inspect::source::ImageView;

use super::SbomError;
pub use super::memo::{LayerMemo, NoMemo, StoreMemo};

/// The largest database file read (a Debian image with thousands of packages has a status file of a few MB).
pub const MAX_FILE: u64 = 32 << 20;
/// The most content kept over all files.
pub const MAX_TOTAL: u64 = 256 << 20;

pub const OS_RELEASE: &str = "etc/os-release";
const OS_RELEASE_USR: &str = "usr/lib/os-release";
pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
pub const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d/";
pub const APK_INSTALLED: &str = "lib/apk/db/installed";
pub use super::rpm::{RPMDB_SQLITE, RPMDB_SQLITE_USR};
/// Executables smaller than this are not Go programs (the smallest is over a megabyte).
const MIN_GO_BINARY: u64 = 64 << 10;

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
    /// Go build info of executables, by path, with the layer that wrote each.
    pub go: BTreeMap<String, (usize, super::gobuild::BuildInfo)>,
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
        let hit = |p: &String, layer: usize| {
            (p == path || p.starts_with(&prefix) || path.is_empty()) && before_layer.is_none_or(|l| layer < l)
        };
        self.files.retain(|p, f| !hit(p, f.layer));
        self.go.retain(|p, (layer, _)| !hit(p, *layer));
    }

    /// Something else now sits at `path`.
    fn replace(&mut self, path: &str) {
        self.files.remove(path);
        self.go.remove(path);
    }
}

/// Whether an SBOM reads the file at `path`.
pub fn wanted(path: &str) -> bool {
    if matches!(
        path,
        OS_RELEASE | OS_RELEASE_USR | DPKG_STATUS | APK_INSTALLED | RPMDB_SQLITE | RPMDB_SQLITE_USR
    ) {
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

/// What one tar entry of a layer means for the SBOM: the layer reduced to what [`apply`] needs, so a
/// layer read once can be replayed from a [`LayerMemo`] instead of decompressed again.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// `.wh..wh..opq` in this directory: hides what lower layers have below it.
    Opaque(String),
    /// `.wh.NAME`: deletes the path and everything below it.
    Whiteout(String),
    /// Something that is not kept (a directory, a link, an ordinary file) now sits at the path.
    Replace(String),
    /// A wanted file and its content (at most [`MAX_FILE`]).
    Wanted(String, Vec<u8>),
    /// A wanted file over [`MAX_FILE`], left unread.
    TooBig(String),
    /// An executable with Go build info.
    Go(String, super::gobuild::BuildInfo),
}

/// Walks every layer of `view` in order.
pub fn collect(view: &ImageView) -> Result<Collected, SbomError> {
    collect_with(view, &NoMemo)
}

/// [`collect`], replaying layers `memo` has and recording the others in it.
pub fn collect_with(view: &ImageView, memo: &dyn LayerMemo) -> Result<Collected, SbomError> {
    let mut out = Collected::default();
    let mut total = 0u64;
    for i in 0..view.layers.len() {
        let digest = view.layers[i].digest.as_ref();
        if let Some(events) = digest.and_then(|d| memo.get(d)).and_then(|b| decode(&b)) {
            for e in events {
                apply(&mut out, i, e, &mut total);
            }
            continue;
        }
        let events = layer_events(view, i)?;
        if let Some(d) = digest {
            memo.put(d, &encode(&events));
        }
        for e in events {
            apply(&mut out, i, e, &mut total);
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

/// Reads layer `i` once, in tar order.
fn layer_events(view: &ImageView, i: usize) -> Result<Vec<Event>, SbomError> {
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
    let mut events = Vec::new();
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if name == ".wh..wh..opq" {
            events.push(Event::Opaque(dir.to_owned()));
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            if !gone.starts_with(".wh.") {
                let target = if dir.is_empty() {
                    gone.to_owned()
                } else {
                    format!("{dir}/{gone}")
                };
                events.push(Event::Whiteout(target));
            }
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            events.push(Event::Replace(path));
            continue;
        }
        if !wanted(&path) {
            let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
            if executable
                && entry.size() >= MIN_GO_BINARY
                && let Some(info) = super::gobuild::scan(&mut entry).map_err(tar_err)?
            {
                events.push(Event::Go(path, info));
            } else {
                events.push(Event::Replace(path));
            }
            continue;
        }
        if entry.size() > MAX_FILE {
            events.push(Event::TooBig(path));
            continue;
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(MAX_FILE)
            .read_to_end(&mut data)
            .map_err(tar_err)?;
        events.push(Event::Wanted(path, data));
    }
    Ok(events)
}

/// One event of layer `i` on the files kept so far.
fn apply(out: &mut Collected, i: usize, e: Event, total: &mut u64) {
    match e {
        Event::Opaque(dir) => out.remove_at_or_below(&dir, Some(i)),
        Event::Whiteout(target) => out.remove_at_or_below(&target, None),
        // A directory over a kept file replaces it; files below a directory entry stay.
        Event::Replace(path) => out.replace(&path),
        Event::TooBig(path) => {
            out.replace(&path);
            out.skipped.push(path);
        }
        Event::Go(path, info) => {
            out.replace(&path);
            out.go.insert(path, (i, info));
        }
        Event::Wanted(path, data) => {
            out.replace(&path);
            if *total + data.len() as u64 > MAX_TOTAL {
                out.skipped.push(path);
                return;
            }
            *total += data.len() as u64;
            out.files.insert(path, File { layer: i, data });
        }
    }
}

/// The memo's format version: a memo of another version is read as missing.
const MEMO_MAGIC: &[u8] = b"lamina-sbom-layer-events-1\n";

/// Events as bytes: per event a tag byte, the path (u32 length + bytes), then the content (u64 length +
/// bytes) for `Wanted` or the build info as JSON (u32 length + bytes) for `Go`.
fn encode(events: &[Event]) -> Vec<u8> {
    let mut b = MEMO_MAGIC.to_vec();
    let put = |b: &mut Vec<u8>, tag: u8, path: &str| {
        b.push(tag);
        b.extend_from_slice(&(path.len() as u32).to_le_bytes());
        b.extend_from_slice(path.as_bytes());
    };
    for e in events {
        match e {
            Event::Opaque(p) => put(&mut b, 1, p),
            Event::Whiteout(p) => put(&mut b, 2, p),
            Event::Replace(p) => put(&mut b, 3, p),
            Event::TooBig(p) => put(&mut b, 4, p),
            Event::Wanted(p, data) => {
                put(&mut b, 5, p);
                b.extend_from_slice(&(data.len() as u64).to_le_bytes());
                b.extend_from_slice(data);
            }
            Event::Go(p, info) => {
                put(&mut b, 6, p);
                let json = serde_json::to_vec(info).unwrap_or_default();
                b.extend_from_slice(&(json.len() as u32).to_le_bytes());
                b.extend_from_slice(&json);
            }
        }
    }
    b
}

/// [`encode`]'s inverse; None for anything malformed (the layer is then read again).
fn decode(b: &[u8]) -> Option<Vec<Event>> {
    let mut r = b.strip_prefix(MEMO_MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (h, t) = (r.get(..n)?, r.get(n..)?);
        r = t;
        Some(h)
    };
    let mut out = Vec::new();
    while let Some(tag) = take(1) {
        let tag = tag[0];
        let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let path = String::from_utf8(take(n)?.to_vec()).ok()?;
        out.push(match tag {
            1 => Event::Opaque(path),
            2 => Event::Whiteout(path),
            3 => Event::Replace(path),
            4 => Event::TooBig(path),
            5 => {
                let n = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
                Event::Wanted(path, take(n)?.to_vec())
            }
            6 => {
                let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
                Event::Go(path, serde_json::from_slice(take(n)?).ok()?)
            }
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_memo_format() {
        let events = vec![
            Event::Opaque("etc".into()),
            Event::Whiteout("var/lib/dpkg/status".into()),
            Event::Replace("bin/sh".into()),
            Event::TooBig("var/lib/rpm/rpmdb.sqlite".into()),
            Event::Wanted("etc/os-release".into(), b"ID=debian\n".to_vec()),
            Event::Go(
                "usr/bin/app".into(),
                crate::gobuild::BuildInfo {
                    go_version: "go1.22.1".into(),
                    path: Some("x.io/app".into()),
                    main: None,
                    deps: Vec::new(),
                },
            ),
        ];
        let b = encode(&events);
        assert_eq!(decode(&b).unwrap(), events);
        assert!(decode(&b[..b.len() - 1]).is_none(), "a truncated memo is no memo");
        assert!(decode(b"lamina-sbom-layer-events-0\n").is_none());
    }

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
