//! Streaming layer walker: one pass over a tar stream, entry by entry, hashing regular files through a fixed
//! buffer. Nothing but per-entry metadata outlives the entry, so memory does not grow with file sizes.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::InspectError;
use super::entry::{ContentHash, Kind, Meta, Whiteout, clean_path, whiteout_of};

/// One tar entry of a layer, its name cleaned. Whiteouts keep their tar name (`dir/.wh.x`) with
/// `Kind::Whiteout`/`Kind::Opaque`, so listings show what the layer really contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    pub path: String,
    pub meta: Meta,
}

impl LayerEntry {
    /// What this entry deletes, if it is a whiteout.
    pub fn whiteout(&self) -> Option<Whiteout> {
        match self.meta.kind {
            Kind::Whiteout | Kind::Opaque => whiteout_of(&self.path),
            _ => None,
        }
    }
}

/// Totals of one walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub entries: u64,
    /// Sum of regular file sizes.
    pub content_bytes: u64,
    /// Bytes of the (uncompressed) tar stream consumed.
    pub tar_bytes: u64,
}

/// Walks an uncompressed tar stream, calling `f` for each entry in tar order. `layer` names the stream in
/// errors. Entries for the root itself (`./`) and aufs bookkeeping (`.wh..wh.plnk` …) are skipped.
pub fn walk_tar<R: Read>(
    reader: R,
    layer: &str,
    mut f: impl FnMut(LayerEntry) -> Result<(), InspectError>,
) -> Result<WalkStats, InspectError> {
    let tar_err = |source: io::Error| InspectError::Tar {
        layer: layer.to_string(),
        source,
    };
    let mut counted = CountingReader {
        inner: reader,
        count: 0,
    };
    let mut stats = WalkStats::default();
    let mut buf = vec![0u8; 128 * 1024];
    {
        let mut archive = tar::Archive::new(&mut counted);
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            let header = entry.header();
            let etype = header.entry_type();
            let kind = match etype {
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                    Kind::File
                }
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink,
                tar::EntryType::Link => Kind::Hardlink,
                tar::EntryType::Char => Kind::Char,
                tar::EntryType::Block => Kind::Block,
                tar::EntryType::Fifo => Kind::Fifo,
                // Global PAX headers and other metadata-only records describe no file.
                _ => continue,
            };
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = clean_path(&raw_path);
            if path.is_empty() {
                continue;
            }
            let mut meta = Meta {
                kind,
                mode: header.mode().map_err(tar_err)? & 0o7777,
                uid: header.uid().map_err(tar_err)?,
                gid: header.gid().map_err(tar_err)?,
                size: 0,
                mtime: header.mtime().map_err(tar_err)? as i64,
                link: None,
                hash: None,
                rdev: None,
            };
            if matches!(kind, Kind::Char | Kind::Block) {
                let major = header.device_major().map_err(tar_err)?.unwrap_or(0);
                let minor = header.device_minor().map_err(tar_err)?.unwrap_or(0);
                meta.rdev = Some((major, minor));
            }
            if let Some(pax) = entry.pax_extensions().map_err(tar_err)? {
                for ext in pax {
                    let ext = ext.map_err(tar_err)?;
                    let (Ok(key), Ok(value)) = (ext.key(), ext.value()) else {
                        continue;
                    };
                    match key {
                        "uid" => meta.uid = value.parse().unwrap_or(meta.uid),
                        "gid" => meta.gid = value.parse().unwrap_or(meta.gid),
                        "mtime" => {
                            let secs = value.split('.').next().unwrap_or(value);
                            meta.mtime = secs.parse().unwrap_or(meta.mtime);
                        }
                        _ => {}
                    }
                }
            }
            match kind {
                Kind::Symlink | Kind::Hardlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    // Hardlink targets are tar names like any other; symlink targets are kept verbatim.
                    meta.link = Some(if kind == Kind::Hardlink {
                        clean_path(&target)
                    } else {
                        target
                    });
                }
                Kind::File => {
                    let mut hasher = Sha256::new();
                    let mut size = 0u64;
                    loop {
                        let n = entry.read(&mut buf).map_err(tar_err)?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        size += n as u64;
                    }
                    meta.size = size;
                    meta.hash = Some(ContentHash(hasher.finalize().into()));
                    stats.content_bytes += size;
                }
                _ => {}
            }
            if let Some(name) = path.rsplit('/').next()
                && name.starts_with(".wh.")
            {
                match whiteout_of(&path) {
                    Some(Whiteout::Opaque(_)) => meta.kind = Kind::Opaque,
                    Some(Whiteout::Path(_)) => meta.kind = Kind::Whiteout,
                    None => continue,
                }
                meta.size = 0;
                meta.hash = None;
            }
            stats.entries += 1;
            f(LayerEntry { path, meta })?;
        }
    }
    // Drain the end-of-archive padding so `tar_bytes` (and any hashing reader underneath) sees the whole stream.
    io::copy(&mut counted, &mut io::sink()).map_err(tar_err)?;
    stats.tar_bytes = counted.count;
    Ok(stats)
}

/// Walks and collects every entry of a layer (metadata only).
pub fn read_entries<R: Read>(reader: R, layer: &str) -> Result<(Vec<LayerEntry>, WalkStats), InspectError> {
    let mut out = Vec::new();
    let stats = walk_tar(reader, layer, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok((out, stats))
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TarBuilder;

    #[test]
    fn walks_every_kind() {
        let mut t = TarBuilder::new();
        t.dir("etc", 0o755)
            .file("etc/passwd", b"root:x:0:0\n", 0o644)
            .symlink("etc/link", "/etc/passwd")
            .hardlink("etc/hard", "etc/passwd")
            .fifo("run/fifo")
            .whiteout("etc/old")
            .opaque("var")
            .file_raw_name("./a/../../b", b"", 0o600);
        let (entries, stats) = read_entries(t.finish().as_slice(), "test").unwrap();
        let got: Vec<(&str, Kind)> = entries.iter().map(|e| (e.path.as_str(), e.meta.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("etc", Kind::Dir),
                ("etc/passwd", Kind::File),
                ("etc/link", Kind::Symlink),
                ("etc/hard", Kind::Hardlink),
                ("run/fifo", Kind::Fifo),
                ("etc/.wh.old", Kind::Whiteout),
                ("var/.wh..wh..opq", Kind::Opaque),
                ("b", Kind::File),
            ]
        );
        assert_eq!(entries[1].meta.size, 11);
        assert_eq!(
            entries[1].meta.hash.unwrap().to_string(),
            "sha256:".to_string() + &hex::encode(Sha256::digest(b"root:x:0:0\n"))
        );
        assert_eq!(entries[2].meta.link.as_deref(), Some("/etc/passwd"));
        assert_eq!(entries[3].meta.link.as_deref(), Some("etc/passwd"));
        assert_eq!(entries[5].whiteout(), Some(Whiteout::Path("etc/old".into())));
        assert_eq!(entries[6].whiteout(), Some(Whiteout::Opaque("var".into())));
        assert_eq!(stats.content_bytes, 11);
        assert_eq!(stats.entries, 8);
    }

    #[test]
    fn long_names_and_big_ids_via_pax() {
        let long = format!("d/{}", "x".repeat(200));
        let mut t = TarBuilder::new();
        t.file_owned(&long, b"hi", 0o644, 3_000_000, 4_000_000);
        let (entries, _) = read_entries(t.finish().as_slice(), "test").unwrap();
        assert_eq!(entries[0].path, long);
        assert_eq!((entries[0].meta.uid, entries[0].meta.gid), (3_000_000, 4_000_000));
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut t = TarBuilder::new();
        t.file("a", &[7u8; 5000], 0o644);
        let bytes = t.finish();
        let err = read_entries(&bytes[..2048], "layer-x").unwrap_err();
        assert!(err.to_string().contains("layer-x"), "{err}");
    }
}
