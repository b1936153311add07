//! Helpers shared by the layer tests: a raw tar builder that can write hostile archives, and tree dumps.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub mod breakout;

/// Builds tar archives byte by byte, without the validation a well-behaved writer would do.
#[derive(Default)]
pub struct RawTar {
    pub buf: Vec<u8>,
}

pub fn header(name: &[u8], kind: u8, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_entry_type(tar::EntryType::new(kind));
    h
}

impl RawTar {
    pub fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.push(header(name.as_bytes(), b'0', data.len() as u64, 0o644), data)
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.push(header(name.as_bytes(), b'5', 0, 0o755), b"")
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = header(name.as_bytes(), b'2', 0, 0o777);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, b"")
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = header(name.as_bytes(), b'1', 0, 0o644);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, b"")
    }
    /// An entry of any type with an explicit mode and link name (hardlinks with setuid bits, devices).
    pub fn raw(&mut self, name: &str, kind: u8, mode: u32, link: &str) -> &mut Self {
        let mut h = header(name.as_bytes(), kind, 0, mode);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        self.push(h, b"")
    }
    pub fn device(&mut self, name: &str, kind: u8, major: u32, minor: u32) -> &mut Self {
        let mut h = header(name.as_bytes(), kind, 0, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"")
    }
    /// A GNU long-name record (`L`) for the next entry.
    pub fn gnu_long_name(&mut self, name: &str) -> &mut Self {
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        self.push(header(b"././@LongLink", b'L', data.len() as u64, 0o644), &data)
    }
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while len != base + len.to_string().len() {
                len = base + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.push(header(b"PaxHeaders/x", b'x', body.len() as u64, 0o644), &body)
    }
    pub fn end(&mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&[0u8; 1024]);
        std::mem::take(&mut self.buf)
    }
}

/// A comparable description of every path under `root`: type, mode, owner, size, content hash, link target,
/// device number, xattrs, file mtime, and which paths share an inode.
pub fn dump(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>, inodes: &mut BTreeMap<u64, String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let mut desc = format!("mode={:o} uid={} gid={}", md.mode() & 0o7777, md.uid(), md.gid());
        if ft.is_dir() {
            desc = format!("dir {desc}");
        } else if ft.is_symlink() {
            desc = format!("symlink -> {}", fs::read_link(&p).unwrap().display());
        } else if ft.is_file() {
            let data = fs::read(&p).unwrap();
            desc = format!(
                "file {desc} size={} sha={} mtime={}",
                data.len(),
                lamina_store::Digest::sha256_of(&data).short(),
                md.mtime()
            );
            if md.nlink() > 1 {
                let first = inodes.entry(md.ino()).or_insert_with(|| rel.clone());
                desc = format!("{desc} inode-of={first}");
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            desc = format!("dev {desc} rdev={:x} char={}", md.rdev(), ft.is_char_device());
        } else if ft.is_fifo() {
            desc = format!("fifo {desc}");
        }
        let mut xa = Vec::new();
        let mut names = vec![0u8; 4096];
        if let Ok(n) = rustix::fs::llistxattr(&p, &mut names[..]) {
            for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
                if name.starts_with(b"security.selinux") {
                    continue;
                }
                let mut v = vec![0u8; 4096];
                let len = rustix::fs::lgetxattr(&p, name, &mut v[..]).unwrap_or(0);
                xa.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(&v[..len])
                ));
            }
        }
        xa.sort();
        if !xa.is_empty() {
            desc = format!("{desc} xattrs={}", xa.join(","));
        }
        out.insert(rel, desc);
        if ft.is_dir() {
            walk(root, &p, out, inodes);
        }
    }
    let _ = dir.as_os_str().as_bytes();
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
