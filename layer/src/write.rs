//! Directory → deterministic layer tar stream, and the one-pass compressing writer around it.
//!
//! The tree is walked depth-first with each directory's names in byte order, so the same files always give
//! the same tar bytes: ustar headers with numeric ids only (empty uname/gname), integer mtimes (clamped to
//! `SOURCE_DATE_EPOCH` when given), PAX records only where ustar can't hold a value (long names and links,
//! big sizes/ids, times before 1970) and for xattrs, no sparse entries, and no padding to a record size.
//! Files with several links are written once; later names become hardlink entries to the first one.
//! With `overlay_upper`, overlayfs whiteouts (char device 0:0) become `.wh.NAME` and opaque directories
//! (`trusted.overlay.opaque=y` or `user.overlay.opaque=y`) get a `.wh..wh..opq` entry right after them.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::pgzip::ParGzEncoder;
use super::{Compression, LayerError, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use lamina_oci::{Digest, HashingWriter};

/// How to write a layer.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Clamp every mtime to at most this (seconds since the epoch).
    pub source_date_epoch: Option<i64>,
    /// `src` is an overlayfs upper dir: convert whiteouts and opaque markers.
    pub overlay_upper: bool,
    /// Compression threads (≥1); the output is the same for any value.
    pub threads: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::default(),
            source_date_epoch: None,
            overlay_upper: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

const OVERLAY_OPAQUE_XATTRS: [&[u8]; 2] = [b"trusted.overlay.opaque", b"user.overlay.opaque"];
const OVERLAY_WHITEOUT_XATTRS: [&[u8]; 2] = [b"trusted.overlay.whiteout", b"user.overlay.whiteout"];

/// Writes `src` as a compressed layer stream into `blob` in one pass (`tar → HashingWriter (diff_id) →
/// compressor → blob`) and hands the finished `blob` back with the diff_id, for the caller to commit (the
/// store's `write_layer` does, into its blob store; this crate stays below the store). `at` names the blob's
/// place in write errors.
pub fn write_compressed<W: Write + Send + 'static>(
    src: &Path,
    opts: &WriteOptions,
    blob: W,
    at: &Path,
) -> Result<(W, Digest), LayerError> {
    let werr = |source| LayerError::Write {
        path: at.to_path_buf(),
        source,
    };
    let threads = opts.threads.max(1);
    let compressor = match opts.compression {
        Compression::None => Compressor::None(Box::new(blob)),
        Compression::Gzip { level } => {
            Compressor::Gzip(Box::new(ParGzEncoder::new(blob, level, threads).map_err(werr)?))
        }
        Compression::Zstd { level } => {
            let mut enc = zstd::stream::write::Encoder::new(blob, level).map_err(werr)?;
            // zstd's output is identical for any worker count ≥ 1, but differs between 0 (single-threaded
            // mode) and ≥ 1, so never use 0.
            enc.multithread(threads as u32).map_err(werr)?;
            Compressor::Zstd(Box::new(enc))
        }
    };
    let mut tar = HashingWriter::new(compressor);
    write_tar(src, opts, &mut tar)?;
    let (compressor, diff_id, _) = tar.finish();
    let blob = compressor.finish().map_err(werr)?;
    Ok((blob, diff_id))
}

/// The diff_id `src` would get (sha256 of its tar stream), without compressing or storing anything: a
/// hash pass is several times cheaper than gzip, so a builder that expects to have written this tree
/// before checks first and reuses the stored blob.
pub fn diff_id_of(src: &Path, opts: &WriteOptions) -> Result<Digest, LayerError> {
    let mut tar = HashingWriter::new(io::sink());
    write_tar(src, opts, &mut tar)?;
    Ok(tar.finish().1)
}

enum Compressor<W: Write> {
    None(Box<W>),
    Gzip(Box<ParGzEncoder<W>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
}

impl<W: Write + Send + 'static> Compressor<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(b) => Ok(*b),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(b) => b.write(buf),
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(b) => b.flush(),
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// Writes `src` as an uncompressed layer tar stream (end-of-archive marker included) to `out`.
pub fn write_tar<W: Write>(src: &Path, opts: &WriteOptions, out: W) -> Result<(), LayerError> {
    let meta = fs::symlink_metadata(src).map_err(io_err("stat", src))?;
    if !meta.is_dir() {
        return Err(LayerError::Io {
            op: "layer source is not a directory:",
            path: src.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotADirectory),
        });
    }
    let mut w = TarWriter {
        out: BufWriter::with_capacity(1 << 20, out),
        opts,
        links: HashMap::new(),
    };
    w.walk(src, &mut Vec::new())?;
    w.put(&[0u8; 1024], src)?;
    w.out.flush().map_err(|source| LayerError::Write {
        path: src.to_path_buf(),
        source,
    })
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

struct TarWriter<'a, W: Write> {
    out: BufWriter<W>,
    opts: &'a WriteOptions,
    /// (dev, ino) of multiply-linked files → the name they were first written under.
    links: HashMap<(u64, u64), Vec<u8>>,
}

/// Header fields of one member.
struct Member<'m> {
    name: &'m [u8],
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    link: Option<&'m [u8]>,
    dev: Option<(u32, u32)>,
    xattrs: &'m [(Vec<u8>, Vec<u8>)],
}

impl<W: Write> TarWriter<'_, W> {
    fn put(&mut self, bytes: &[u8], path: &Path) -> Result<(), LayerError> {
        self.out.write_all(bytes).map_err(|source| LayerError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    fn walk(&mut self, dir: &Path, prefix: &mut Vec<u8>) -> Result<(), LayerError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err("read directory", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err("read directory", dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let base = prefix.len();
            prefix.extend_from_slice(name.as_bytes());
            self.entry(&path, prefix)?;
            prefix.truncate(base);
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &mut Vec<u8>) -> Result<(), LayerError> {
        let md = fs::symlink_metadata(path).map_err(io_err("stat", path))?;
        let ft = md.file_type();
        let mtime = match self.opts.source_date_epoch {
            Some(sde) => md.mtime().min(sde),
            None => md.mtime(),
        };
        let mut m = Member {
            name: &[],
            kind: b'0',
            mode: md.mode() & 0o7777,
            uid: md.uid() as u64,
            gid: md.gid() as u64,
            mtime,
            size: 0,
            link: None,
            dev: None,
            xattrs: &[],
        };
        // Kernel whiteouts are char 0:0 (also in a user namespace: whiteout mknod needs no
        // CAP_MKNOD); since 6.7 overlayfs also honours zero-size files carrying an
        // `overlay.whiteout` xattr (made by unprivileged tools that cannot mknod): read both forms.
        let xwhiteout = self.opts.overlay_upper
            && ft.is_file()
            && md.len() == 0
            && OVERLAY_WHITEOUT_XATTRS
                .iter()
                .any(|n| rustix::fs::lgetxattr(path, *n, &mut [0u8; 4][..]).is_ok());
        if self.opts.overlay_upper && (xwhiteout || ft.is_char_device() && md.rdev() == 0) {
            let cut = rel.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
            let mut wh = rel[..cut].to_vec();
            wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            wh.extend_from_slice(&rel[cut..]);
            m.name = &wh;
            return self.header(&m, path);
        }
        if ft.is_socket() {
            // Sockets can't be archived meaningfully (docker and tar skip them too).
            return Ok(());
        }
        let xattrs = read_xattrs(path)?;
        m.xattrs = &xattrs;
        if ft.is_dir() {
            rel.push(b'/');
            m.kind = b'5';
            m.name = rel;
            self.header(&m, path)?;
            let opaque = self.opts.overlay_upper && xattrs_opaque(path);
            if opaque {
                let mut name = rel.clone();
                name.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
                let marker = Member {
                    name: &name,
                    kind: b'0',
                    mode: 0,
                    uid: 0,
                    gid: 0,
                    mtime,
                    size: 0,
                    link: None,
                    dev: None,
                    xattrs: &[],
                };
                self.header(&marker, path)?;
            }
            let mut prefix = std::mem::take(rel);
            let r = self.walk(path, &mut prefix);
            *rel = prefix;
            rel.pop();
            return r;
        }
        m.name = rel;
        let first = if md.nlink() > 1 {
            match self.links.get(&(md.dev(), md.ino())) {
                Some(first) => Some(first.clone()),
                None => {
                    self.links.insert((md.dev(), md.ino()), rel.clone());
                    None
                }
            }
        } else {
            None
        };
        if let Some(first) = &first {
            m.kind = b'1';
            m.link = Some(first);
            return self.header(&m, path);
        }
        let target;
        if ft.is_symlink() {
            target = fs::read_link(path).map_err(io_err("read link", path))?;
            m.kind = b'2';
            m.link = Some(target.as_os_str().as_bytes());
            m.mode = 0o777;
            return self.header(&m, path);
        }
        if ft.is_char_device() || ft.is_block_device() {
            m.kind = if ft.is_char_device() { b'3' } else { b'4' };
            m.dev = Some((rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev())));
            return self.header(&m, path);
        }
        if ft.is_fifo() {
            m.kind = b'6';
            return self.header(&m, path);
        }
        // Regular file: exactly the size stat saw, so a file changing under us can't desync the archive.
        m.size = md.len();
        self.header(&m, path)?;
        let file = File::open(path).map_err(io_err("open", path))?;
        let copied = io::copy(&mut file.take(m.size), &mut self.out).map_err(io_err("read", path))?;
        if copied != m.size {
            return Err(LayerError::Io {
                op: "file shrank while being archived:",
                path: path.to_path_buf(),
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            });
        }
        let pad = (512 - m.size % 512) % 512;
        self.put(&[0u8; 512][..pad as usize], path)
    }

    /// Writes the member's header (preceded by a PAX header when ustar can't hold something).
    fn header(&mut self, m: &Member<'_>, path: &Path) -> Result<(), LayerError> {
        let mut pax: Vec<u8> = Vec::new();
        let mut h = tar::Header::new_ustar();
        if !set_ustar_name(&mut h, m.name) {
            pax_record(&mut pax, b"path", m.name);
            let cut = m.name.len().min(100);
            h.as_old_mut().name[..cut].copy_from_slice(&m.name[..cut]);
        }
        if let Some(link) = m.link {
            if link.len() <= 100 {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            } else {
                pax_record(&mut pax, b"linkpath", link);
            }
        }
        const MAX_OCTAL_11: u64 = 0o77777777777;
        const MAX_OCTAL_7: u64 = 0o7777777;
        if m.size > MAX_OCTAL_11 {
            pax_record(&mut pax, b"size", m.size.to_string().as_bytes());
            h.set_size(0);
        } else {
            h.set_size(m.size);
        }
        for (key, id, set) in [
            (
                &b"uid"[..],
                m.uid,
                tar::Header::set_uid as fn(&mut tar::Header, u64),
            ),
            (&b"gid"[..], m.gid, tar::Header::set_gid),
        ] {
            if id > MAX_OCTAL_7 {
                pax_record(&mut pax, key, id.to_string().as_bytes());
                set(&mut h, 0);
            } else {
                set(&mut h, id);
            }
        }
        if m.mtime < 0 || m.mtime as u64 > MAX_OCTAL_11 {
            pax_record(&mut pax, b"mtime", m.mtime.to_string().as_bytes());
            h.set_mtime(0);
        } else {
            h.set_mtime(m.mtime as u64);
        }
        for (k, v) in m.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax_record(&mut pax, &key, v);
        }
        h.set_mode(m.mode);
        h.set_entry_type(tar::EntryType::new(m.kind));
        let (major, minor) = m.dev.unwrap_or((0, 0));
        h.set_device_major(major)
            .map_err(io_err("set device number of", path))?;
        h.set_device_minor(minor)
            .map_err(io_err("set device number of", path))?;
        h.set_cksum();
        if !pax.is_empty() {
            let mut ph = tar::Header::new_ustar();
            let base = m
                .name
                .rsplit(|b| *b == b'/')
                .find(|s| !s.is_empty())
                .unwrap_or(b"entry");
            let mut pname = b"PaxHeaders.0/".to_vec();
            pname.extend_from_slice(&base[..base.len().min(80)]);
            ph.as_old_mut().name[..pname.len()].copy_from_slice(&pname);
            ph.set_size(pax.len() as u64);
            ph.set_mode(0o644);
            ph.set_uid(0);
            ph.set_gid(0);
            ph.set_mtime(0);
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_device_major(0).map_err(io_err("set header of", path))?;
            ph.set_device_minor(0).map_err(io_err("set header of", path))?;
            ph.set_cksum();
            self.put(ph.as_bytes(), path)?;
            let padlen = (512 - pax.len() % 512) % 512;
            pax.resize(pax.len() + padlen, 0);
            self.put(&pax, path)?;
        }
        self.put(h.as_bytes(), path)
    }
}

/// Puts `name` into the ustar name/prefix fields; false if it doesn't fit (a PAX `path` is needed).
fn set_ustar_name(h: &mut tar::Header, name: &[u8]) -> bool {
    if name.len() <= 100 {
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        return true;
    }
    if name.len() > 256 {
        return false;
    }
    // Split at a '/' so that prefix ≤ 155 and name ≤ 100 (a directory's trailing '/' stays in the name).
    let search_end = name.len().saturating_sub(1).min(155);
    let Some(split) = name[..=search_end.min(name.len() - 1)]
        .iter()
        .rposition(|b| *b == b'/')
        .filter(|&i| i > 0 && name.len() - i - 1 <= 100 && name.len() - i - 1 > 0)
    else {
        return false;
    };
    let Some(u) = h.as_ustar_mut() else { return false };
    u.prefix[..split].copy_from_slice(&name[..split]);
    u.name[..name.len() - split - 1].copy_from_slice(&name[split + 1..]);
    true
}

/// Appends one `LEN key=value\n` record; LEN counts the whole record including its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Extended attributes worth carrying into an image, sorted by name.
/// (name, value) pairs.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn read_xattrs(path: &Path) -> Result<Xattrs, LayerError> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list xattrs of", path)(e.into())),
        }
    };
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        // Overlay's own bookkeeping is converted (opaque) or meaningless in an image; SELinux labels are
        // the host's policy, not the image's.
        if name.starts_with(b"trusted.overlay.")
            || name.starts_with(b"user.overlay.")
            || name == b"security.selinux"
        {
            continue;
        }
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, name, &mut value[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(rustix::io::Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(io_err("read xattr of", path)(e.into())),
            }
        };
        if len != usize::MAX {
            value.truncate(len);
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

fn xattrs_opaque(path: &Path) -> bool {
    OVERLAY_OPAQUE_XATTRS.iter().any(|name| {
        let mut v = [0u8; 4];
        matches!(rustix::fs::lgetxattr(path, *name, &mut v[..]), Ok(1) if v[0] == b'y')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        for n in 0..200 {
            let mut v = Vec::new();
            pax_record(&mut v, b"k", &vec![b'x'; n]);
            let len: usize = std::str::from_utf8(&v[..v.iter().position(|b| *b == b' ').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, v.len(), "record for value length {n}");
        }
    }

    /// What overlayfs writes in a user namespace (`userxattr`): opaque dirs as `user.overlay.opaque=y`,
    /// whiteouts as zero-size files with `user.overlay.whiteout` (kernel 6.7 xwhiteouts) — user xattrs,
    /// so no root is needed to make them. "x" marks a dir holding xwhiteouts, not an opaque one.
    #[test]
    fn reads_user_xattr_opaque_dirs_and_xwhiteouts() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        fs::create_dir(up.join("opq")).unwrap();
        fs::write(up.join("opq/new"), b"n").unwrap();
        fs::create_dir(up.join("mixed")).unwrap();
        fs::write(up.join("mixed/gone"), b"").unwrap();
        let set = |p: &str, k: &str, v: &[u8]| {
            rustix::fs::setxattr(up.join(p), k, v, rustix::fs::XattrFlags::empty())
        };
        if set("opq", "user.overlay.opaque", b"y").is_err() {
            lamina_testkit::skip("the temp dir's filesystem has no user xattrs");
            return;
        }
        set("mixed", "user.overlay.opaque", b"x").unwrap();
        set("mixed/gone", "user.overlay.whiteout", b"").unwrap();
        let opts = WriteOptions {
            overlay_upper: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        write_tar(up, &opts, &mut out).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["mixed/", "mixed/.wh.gone", "opq/", "opq/.wh..wh..opq", "opq/new"],
            "opaque marker for `y` only, whiteout for the xattr-marked file, no overlay xattrs carried"
        );
    }

    #[test]
    fn ustar_name_split() {
        let mut h = tar::Header::new_ustar();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        assert!(set_ustar_name(&mut h, long.as_bytes()));
        assert_eq!(h.path_bytes().as_ref(), long.as_bytes());
        let mut h = tar::Header::new_ustar();
        assert!(!set_ustar_name(&mut h, "x".repeat(150).as_bytes()));
    }
}
