//! The conformance golden formats in Rust: `tree.txt` from a flattened rootfs tar and the normalized
//! `config.json`, byte-for-byte what `testdata/conformance/dump.py` prints (the format is defined in
//! `testdata/conformance/README.md`), plus the differ that reports every mismatch.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

#[derive(Clone, Debug)]
enum Kind {
    File {
        size: u64,
        sha: String,
        inode: u64,
        text: Option<String>,
    },
    Dir,
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Path relative to the root without `./`, `/` decorations; `..` is refused (the dump never resolves it).
fn norm(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for p in raw.split(|&b| b == b'/') {
        match p {
            b"" | b"." => {}
            b".." => return Err(format!("path escapes the root: {}", esc(raw))),
            p => parts.push(p),
        }
    }
    Ok(parts.join(&b'/'))
}

fn parent(p: &[u8]) -> &[u8] {
    p.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &p[..i])
}

#[derive(Default)]
struct Tree {
    nodes: BTreeMap<Vec<u8>, Node>,
    next_inode: u64,
}

impl Tree {
    fn remove_subtree(&mut self, p: &[u8]) {
        let mut prefix = p.to_vec();
        prefix.push(b'/');
        self.nodes
            .retain(|k, _| k.as_slice() != p && !k.starts_with(&prefix));
    }

    fn put(&mut self, p: Vec<u8>, node: Node) {
        if let Some(old) = self.nodes.get(&p)
            && !(matches!(old.kind, Kind::Dir) && matches!(node.kind, Kind::Dir))
        {
            self.remove_subtree(&p);
        }
        // Docker's applier creates missing parents as root-owned 0755 directories.
        let mut q = parent(&p).to_vec();
        while !q.is_empty() && !self.nodes.contains_key(&q) {
            let next = parent(&q).to_vec();
            self.nodes.insert(
                q,
                Node {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            );
            q = next;
        }
        self.nodes.insert(p, node);
    }
}

/// Files up to this size that are UTF-8 have their text kept, to show next to a content difference.
const SMALL: usize = 512;

/// `tree.txt` of one already-flattened rootfs tar (what `lamina unpack -o` writes). Whiteout names are kept
/// literally: a flattened tree must not contain any, so one showing up is a difference to report.
pub fn dump_tar(reader: impl Read) -> Result<String, String> {
    dump_tar_with_texts(reader).map(|(tree, _)| tree)
}

/// One tar's entries in order, content hashed; with `whiteouts`, `.wh.` names become deletions.
fn read_entries(reader: impl Read, tree: &mut Tree, whiteouts: bool) -> Result<Vec<Pending>, String> {
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| format!("reading tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("reading tar entry: {e}"))?;
        let p = norm(&entry.path_bytes())?;
        if p.is_empty() {
            continue; // the root directory itself is not part of the format
        }
        let name = p.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if whiteouts && name == b".wh..wh..opq" {
            out.push(Pending::Opaque(parent(&p).to_vec()));
            continue;
        }
        if whiteouts && let Some(victim) = name.strip_prefix(b".wh.") {
            let mut v = parent(&p).to_vec();
            if !v.is_empty() {
                v.push(b'/');
            }
            v.extend_from_slice(victim);
            out.push(Pending::Whiteout(v));
            continue;
        }
        let h = entry.header().clone();
        let mode = h.mode().map_err(|e| format!("{}: mode: {e}", esc(&p)))? & 0o7777;
        let uid = h.uid().map_err(|e| format!("{}: uid: {e}", esc(&p)))?;
        let gid = h.gid().map_err(|e| format!("{}: gid: {e}", esc(&p)))?;
        let dev = || -> Result<(u32, u32), String> {
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            Ok((major, minor))
        };
        let et = h.entry_type();
        let kind = if et.is_file() || et == tar::EntryType::Continuous {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut size = 0u64;
            let mut head = Vec::new();
            loop {
                let n = entry
                    .read(&mut buf)
                    .map_err(|e| format!("{}: reading: {e}", esc(&p)))?;
                if n == 0 {
                    break;
                }
                if head.len() <= SMALL {
                    head.extend_from_slice(&buf[..n.min(SMALL + 1 - head.len())]);
                }
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            tree.next_inode += 1;
            let text = if head.len() <= SMALL {
                String::from_utf8(head).ok()
            } else {
                None
            };
            Kind::File {
                size,
                sha: hex::encode(hasher.finalize()),
                inode: tree.next_inode,
                text,
            }
        } else if et.is_dir() {
            Kind::Dir
        } else if et.is_symlink() {
            Kind::Symlink(
                entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            )
        } else if et.is_hard_link() {
            let target = norm(
                &entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            )?;
            out.push(Pending::Hardlink(p, target));
            continue;
        } else if et.is_character_special() {
            let (a, b) = dev()?;
            Kind::Char(a, b)
        } else if et.is_block_special() {
            let (a, b) = dev()?;
            Kind::Block(a, b)
        } else if et.is_fifo() {
            Kind::Fifo
        } else {
            return Err(format!("unsupported tar entry type {et:?} for {}", esc(&p)));
        };
        out.push(Pending::Node(p, Node { kind, mode, uid, gid }));
    }
    Ok(out)
}

enum Pending {
    Node(Vec<u8>, Node),
    Hardlink(Vec<u8>, Vec<u8>),
    Whiteout(Vec<u8>),
    Opaque(Vec<u8>),
}

/// Applies one layer's entries: its deletions first (they only concern lower layers), then its entries.
fn apply(tree: &mut Tree, entries: Vec<Pending>) -> Result<(), String> {
    for e in &entries {
        match e {
            Pending::Whiteout(p) => tree.remove_subtree(p),
            Pending::Opaque(d) => {
                let mut prefix = d.clone();
                if !prefix.is_empty() {
                    prefix.push(b'/');
                }
                tree.nodes.retain(|k, _| !k.starts_with(&prefix) || k == d);
            }
            _ => {}
        }
    }
    for e in entries {
        match e {
            Pending::Node(p, n) => tree.put(p, n),
            Pending::Hardlink(p, target) => match tree.nodes.get(&target) {
                Some(
                    t @ Node {
                        kind: Kind::File { .. },
                        ..
                    },
                ) => {
                    let t = t.clone();
                    tree.put(p, t);
                }
                _ => {
                    return Err(format!(
                        "hardlink {} to missing or non-file {}",
                        esc(&p),
                        esc(&target)
                    ));
                }
            },
            Pending::Whiteout(_) | Pending::Opaque(_) => {}
        }
    }
    Ok(())
}

/// `tree.txt` plus the text of every small UTF-8 file, by escaped absolute path (like `dump.py contents`).
pub fn dump_tar_with_texts(reader: impl Read) -> Result<(String, BTreeMap<String, String>), String> {
    let mut tree = Tree::default();
    let entries = read_entries(reader, &mut tree, false)?;
    apply(&mut tree, entries)?;
    Ok(finish(&tree))
}

/// Like `dump.py tree LAYER...`: image layers bottom first (plain, gzip or zstd), whiteouts applied.
pub fn dump_layers(layers: Vec<Box<dyn Read>>) -> Result<(String, BTreeMap<String, String>), String> {
    let mut tree = Tree::default();
    for layer in layers {
        let entries = read_entries(decompress(layer)?, &mut tree, true)?;
        apply(&mut tree, entries)?;
    }
    Ok(finish(&tree))
}

fn decompress(mut r: Box<dyn Read>) -> Result<Box<dyn Read>, String> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        let k = r
            .read(&mut magic[n..])
            .map_err(|e| format!("reading layer: {e}"))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let whole = std::io::Cursor::new(magic[..n].to_vec()).chain(r);
    Ok(match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(whole)),
        [0x28, 0xb5, 0x2f, 0xfd] => {
            Box::new(zstd::stream::read::Decoder::new(whole).map_err(|e| format!("zstd: {e}"))?)
        }
        _ => Box::new(whole),
    })
}

fn finish(tree: &Tree) -> (String, BTreeMap<String, String>) {
    let texts = tree
        .nodes
        .iter()
        .filter_map(|(p, n)| match &n.kind {
            Kind::File { text: Some(t), .. } => Some((format!("/{}", esc(p)), t.clone())),
            _ => None,
        })
        .collect();
    (render(tree), texts)
}

/// Escapes a raw path for a `tree.txt` line: invalid UTF-8 bytes and control characters as `\xNN`, `\` as
/// `\\`, everything else as UTF-8.
pub fn esc(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

fn render(tree: &Tree) -> String {
    let mut groups: HashMap<u64, Vec<&Vec<u8>>> = HashMap::new();
    for (p, n) in &tree.nodes {
        if let Kind::File { inode, .. } = n.kind {
            groups.entry(inode).or_default().push(p);
        }
    }
    let mut leader: HashMap<&Vec<u8>, &Vec<u8>> = HashMap::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        let first = members.iter().min().copied().unwrap_or(members[0]);
        for m in members {
            leader.insert(m, first);
        }
    }
    let mut out = String::new();
    for (p, n) in &tree.nodes {
        let (kind, size, sha, link) = match &n.kind {
            Kind::File { size, sha, .. } => {
                let link = leader.get(p).map_or("-".to_string(), |l| format!("=/{}", esc(l)));
                ("file", size.to_string(), sha.clone(), link)
            }
            Kind::Dir => ("dir", "-".into(), "-".into(), "-".into()),
            Kind::Symlink(t) => ("symlink", "-".into(), "-".into(), esc(t)),
            Kind::Char(a, b) => ("char", "-".into(), "-".into(), format!("{a},{b}")),
            Kind::Block(a, b) => ("block", "-".into(), "-".into(), format!("{a},{b}")),
            Kind::Fifo => ("fifo", "-".into(), "-".into(), "-".into()),
        };
        out.push_str(&format!(
            "/{}\t{kind}\t{:04o}\t{}\t{}\t{size}\t{sha}\t{link}\n",
            esc(p),
            n.mode,
            n.uid,
            n.gid
        ));
    }
    out
}

const CONFIG_KEYS: [&str; 12] = [
    "Cmd",
    "Entrypoint",
    "Env",
    "ExposedPorts",
    "Healthcheck",
    "Labels",
    "OnBuild",
    "Shell",
    "StopSignal",
    "User",
    "Volumes",
    "WorkingDir",
];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The normalized `config.json` value of an image config's `config` object (the inner one with Env, Cmd…).
pub fn normalize_config(cfg: &Value) -> Value {
    let mut out = Map::new();
    for k in CONFIG_KEYS {
        let v = cfg.get(k).cloned().unwrap_or(Value::Null);
        let v = if is_empty(&v) {
            Value::Null
        } else {
            match k {
                "Env" => {
                    let mut env: Vec<Value> = v.as_array().cloned().unwrap_or_default();
                    env.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                    Value::Array(env)
                }
                "ExposedPorts" | "Volumes" => {
                    let mut keys: Vec<String> = v
                        .as_object()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    keys.sort();
                    Value::Array(keys.into_iter().map(Value::String).collect())
                }
                "Healthcheck" => {
                    let kept: Map<String, Value> = v
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, hv)| !is_empty(hv) && hv.as_i64() != Some(0))
                        .map(|(hk, hv)| (hk.clone(), hv.clone()))
                        .collect();
                    if kept.is_empty() {
                        Value::Null
                    } else {
                        Value::Object(kept)
                    }
                }
                _ => v,
            }
        };
        out.insert(k.to_string(), v);
    }
    Value::Object(out)
}

/// Every difference between two `tree.txt` texts, one line each; empty when they are equal.
pub fn diff_trees(expected: &str, actual: &str) -> Vec<String> {
    const FIELDS: [&str; 7] = ["type", "mode", "uid", "gid", "size", "sha256", "link"];
    let parse = |s: &str| -> BTreeMap<String, Vec<String>> {
        s.lines()
            .map(|l| {
                let mut f = l.split('\t');
                let path = f.next().unwrap_or_default().to_string();
                (path, f.map(str::to_string).collect())
            })
            .collect()
    };
    let (e, a) = (parse(expected), parse(actual));
    let mut out = Vec::new();
    for (path, ef) in &e {
        match a.get(path) {
            None => out.push(format!("missing {path}  (expected {})", ef.join(" "))),
            Some(af) if af != ef => {
                let what: Vec<String> = FIELDS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| ef.get(*i) != af.get(*i))
                    .map(|(i, name)| {
                        let d = "?".to_string();
                        format!(
                            "{name} {} != {}",
                            ef.get(i).unwrap_or(&d),
                            af.get(i).unwrap_or(&d)
                        )
                    })
                    .collect();
                out.push(format!(
                    "differs {path}: {} (expected != actual)",
                    what.join(", ")
                ));
            }
            Some(_) => {}
        }
    }
    for (path, af) in &a {
        if !e.contains_key(path) {
            out.push(format!("extra {path}  ({})", af.join(" ")));
        }
    }
    out
}

/// Adds docker's and lamina's text under each content difference of a small text file.
pub fn annotate_contents(
    diffs: &mut [String],
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) {
    for d in diffs.iter_mut() {
        let Some(rest) = d.strip_prefix("differs ") else {
            continue;
        };
        let Some((path, what)) = rest.split_once(": ") else {
            continue;
        };
        if !what.contains("sha256") {
            continue;
        }
        let (e, a) = (expected.get(path), actual.get(path));
        if e.is_some() || a.is_some() {
            let show =
                |t: Option<&String>| t.map_or("(not text or too large)".to_string(), |t| format!("{t:?}"));
            d.push_str(&format!("\n      docker: {}\n      lamina: {}", show(e), show(a)));
        }
    }
}

/// Every difference between two normalized configs, one line per key.
pub fn diff_configs(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in CONFIG_KEYS {
        let (e, a) = (
            expected.get(k).unwrap_or(&Value::Null),
            actual.get(k).unwrap_or(&Value::Null),
        );
        if e != a {
            out.push(format!("config {k}: expected {e}, got {a}"));
        }
    }
    out
}
