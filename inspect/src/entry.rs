//! What inspection keeps per path: a compact [`Meta`] (type, mode, owner, size, mtime, link target, content
//! hash) — never file contents — plus the path cleaning every layer entry goes through.

use std::fmt;

use serde::Serialize;

/// sha256 of a regular file's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The type of a layer entry. `Whiteout` and `Opaque` only appear in layer listings (they are tar entries that
/// delete something below); flattened trees never contain them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A tar hardlink; `Meta::link` names the target and size/hash are the target's once resolved.
    Hardlink,
    Char,
    Block,
    Fifo,
    /// `.wh.NAME`: deletes NAME (and everything under it) from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: hides everything the layers below have in this entry's directory.
    Opaque,
}

impl Kind {
    /// One letter for listings, like `ls -l`'s first column.
    pub fn letter(self) -> char {
        match self {
            Kind::File => '-',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Hardlink => 'h',
            Kind::Char => 'c',
            Kind::Block => 'b',
            Kind::Fifo => 'p',
            Kind::Whiteout => 'w',
            Kind::Opaque => 'o',
        }
    }
}

/// Per-path metadata. Small on purpose: a 100k-file image costs a few tens of MB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Meta {
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`& 0o7777`).
    #[serde(serialize_with = "ser_mode")]
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content size for regular files (and hardlinks, once resolved); 0 otherwise.
    pub size: u64,
    /// Seconds since the epoch, as recorded in the tar header (or PAX).
    pub mtime: i64,
    /// Symlink target, or the path a hardlink points at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(rename = "digest", skip_serializing_if = "Option::is_none")]
    pub hash: Option<ContentHash>,
    /// (major, minor) of device nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdev: Option<(u32, u32)>,
}

fn ser_mode<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mode:04o}"))
}

impl Meta {
    /// What an applier creates for a parent directory a layer never listed (umoci/containerd use 0755 root).
    pub fn implicit_dir() -> Meta {
        Meta {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link: None,
            hash: None,
            rdev: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// Bytes this entry stores in its layer: content of regular files only (a tar hardlink stores none).
    pub fn stored_bytes(&self) -> u64 {
        if self.kind == Kind::File { self.size } else { 0 }
    }

    /// `drwxr-xr-x`-style rendering for listings.
    pub fn mode_string(&self) -> String {
        let mut s = String::with_capacity(10);
        s.push(self.kind.letter());
        let m = self.mode;
        let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
        let exec = |x: u32, special: u32, set: char, unset: char| match (m & x != 0, m & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
        s.push(bit(0o400, 'r'));
        s.push(bit(0o200, 'w'));
        s.push(exec(0o100, 0o4000, 's', 'S'));
        s.push(bit(0o040, 'r'));
        s.push(bit(0o020, 'w'));
        s.push(exec(0o010, 0o2000, 's', 'S'));
        s.push(bit(0o004, 'r'));
        s.push(bit(0o002, 'w'));
        s.push(exec(0o001, 0o1000, 't', 'T'));
        s
    }
}

/// A field in which two entries for the same path differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Type,
    Content,
    Size,
    Mode,
    Owner,
    Link,
    Device,
    Mtime,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Type => "type",
            Field::Content => "content",
            Field::Size => "size",
            Field::Mode => "mode",
            Field::Owner => "owner",
            Field::Link => "link",
            Field::Device => "device",
            Field::Mtime => "mtime",
        }
    }
}

/// The fields in which `a` and `b` differ; `mtime` only when `with_mtime`.
pub fn differing_fields(a: &Meta, b: &Meta, with_mtime: bool) -> Vec<Field> {
    let mut out = Vec::new();
    if a.kind != b.kind {
        out.push(Field::Type);
    }
    if a.hash != b.hash {
        out.push(Field::Content);
    }
    if a.size != b.size {
        out.push(Field::Size);
    }
    if a.mode != b.mode {
        out.push(Field::Mode);
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        out.push(Field::Owner);
    }
    if a.link != b.link {
        out.push(Field::Link);
    }
    if a.rdev != b.rdev {
        out.push(Field::Device);
    }
    if with_mtime && a.mtime != b.mtime {
        out.push(Field::Mtime);
    }
    out
}

/// Cleans a tar entry name into a root-relative path without `.`/empty components, resolving `..` lexically
/// and clamping it at the root (what `filepath.Clean("/" + name)` gives). Inspection never writes to disk, so
/// lexical cleaning is enough here; the result is only a map key. `""` is the root itself.
pub fn clean_path(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Parent of a cleaned path (`""` for top-level entries).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Last component of a cleaned path.
pub fn base_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `dir/name`, or `name` under the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// What a whiteout entry at `path` (its cleaned tar name) deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Whiteout {
    /// `.wh.NAME` → this path.
    Path(String),
    /// `.wh..wh..opq` → everything below this directory.
    Opaque(String),
}

/// The whiteout meaning of a cleaned tar path, if it is one. Other `.wh..wh.` names (aufs bookkeeping such as
/// `.wh..wh.plnk`) return `None` and are skipped by the walker.
pub fn whiteout_of(path: &str) -> Option<Whiteout> {
    let name = base_name(path);
    let dir = parent(path);
    if name == ".wh..wh..opq" {
        Some(Whiteout::Opaque(dir.to_string()))
    } else if name.starts_with(".wh..wh.") {
        None
    } else {
        name.strip_prefix(".wh.")
            .filter(|n| !n.is_empty())
            .map(|n| Whiteout::Path(join(dir, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths() {
        assert_eq!(clean_path("./a/b/"), "a/b");
        assert_eq!(clean_path("/a//./b"), "a/b");
        assert_eq!(clean_path("../../etc/passwd"), "etc/passwd");
        assert_eq!(clean_path("a/../../b"), "b");
        assert_eq!(clean_path("./"), "");
    }

    #[test]
    fn whiteouts() {
        assert_eq!(whiteout_of("a/.wh.b"), Some(Whiteout::Path("a/b".into())));
        assert_eq!(whiteout_of(".wh.b"), Some(Whiteout::Path("b".into())));
        assert_eq!(whiteout_of("a/.wh..wh..opq"), Some(Whiteout::Opaque("a".into())));
        assert_eq!(whiteout_of(".wh..wh..opq"), Some(Whiteout::Opaque("".into())));
        assert_eq!(whiteout_of("a/.wh..wh.plnk"), None);
        assert_eq!(whiteout_of("a/b"), None);
    }

    #[test]
    fn mode_strings() {
        let mut m = Meta::implicit_dir();
        assert_eq!(m.mode_string(), "drwxr-xr-x");
        m.kind = Kind::File;
        m.mode = 0o4755;
        assert_eq!(m.mode_string(), "-rwsr-xr-x");
        m.mode = 0o1777;
        m.kind = Kind::Dir;
        assert_eq!(m.mode_string(), "drwxrwxrwt");
    }
}
