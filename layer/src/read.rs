//! Reading layer streams: compression autodetection and a strict tar entry reader.
//!
//! [`TarReader`] walks the archive itself and uses the `tar` crate only to decode header fields, so it can
//! enforce what the crate's iterator does not: bounded PAX/GNU-longname headers (a multi-gigabyte "PAX
//! header" would otherwise be read into memory), a PAX `size` that disagrees with the ustar size field (the
//! parser-confusion trick behind CVE-2025-62518), a per-file size limit, no sparse files, and a required
//! end-of-archive marker so a truncated layer is an error instead of a silently shorter tree.

use std::io::{self, BufReader, Chain, Cursor, Read};

use super::{LayerError, lossy};

const BLOCK: usize = 512;
/// Largest PAX extended header we accept (real ones are a few hundred bytes, xattrs included).
pub const MAX_PAX_HEADER: u64 = 1 << 20;
/// Largest GNU long name/link we accept.
pub const MAX_LONG_NAME: u64 = 64 * 1024;
/// Default largest regular file in a layer.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 40;

/// The compression a stream was detected to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    Plain,
    Gzip,
    Zstd,
}

type Peeked<R> = BufReader<Chain<Cursor<Vec<u8>>, R>>;

/// A decompressing reader chosen by the stream's magic bytes.
pub enum Decompressed<R: Read> {
    Plain(Peeked<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Peeked<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Peeked<R>>>),
}

impl<R: Read> Decompressed<R> {
    pub fn detected(&self) -> Detected {
        match self {
            Decompressed::Plain(_) => Detected::Plain,
            Decompressed::Gzip(_) => Detected::Gzip,
            Decompressed::Zstd(_) => Detected::Zstd,
        }
    }
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Plain(r) => r.read(buf),
            Decompressed::Gzip(r) => r.read(buf),
            Decompressed::Zstd(r) => r.read(buf),
        }
    }
}

/// Wraps `reader` in the decompressor its first bytes call for (gzip, zstd, or none).
pub fn decompress<R: Read>(mut reader: R) -> io::Result<Decompressed<R>> {
    let mut magic = Vec::with_capacity(4);
    (&mut reader).take(4).read_to_end(&mut magic)?;
    let kind = if magic.starts_with(&[0x1f, 0x8b]) {
        Detected::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Detected::Zstd
    } else {
        Detected::Plain
    };
    let peeked = BufReader::with_capacity(256 * 1024, Cursor::new(magic).chain(reader));
    Ok(match kind {
        Detected::Plain => Decompressed::Plain(peeked),
        Detected::Gzip => Decompressed::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(peeked))),
        Detected::Zstd => Decompressed::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(peeked)?)),
    })
}

/// What kind of entry a header describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Hardlink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

/// One archive member's metadata, PAX and GNU extensions already folded in.
#[derive(Clone, Debug)]
pub struct EntryMeta {
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A strict streaming tar reader.
pub struct TarReader<R> {
    inner: R,
    offset: u64,
    /// Unread data bytes of the current entry, then its padding.
    remaining: u64,
    padding: u64,
    last: Vec<u8>,
    max_file_size: u64,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R, max_file_size: u64) -> Self {
        TarReader {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            last: b"<start of archive>".to_vec(),
            max_file_size,
        }
    }

    /// The path of the entry read last (for error messages).
    pub fn last_path(&self) -> &[u8] {
        &self.last
    }

    /// Gives back the underlying reader (e.g. to drain and hash what follows the end marker).
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, LayerError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(LayerError::Read {
                        after: lossy(&self.last),
                        source,
                    });
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), LayerError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.fill(&mut buf[..want])?;
            if got < want {
                return Err(LayerError::Truncated {
                    entry: lossy(&self.last),
                });
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads the current entry's data; 0 at its end. Missing bytes are a [`LayerError::Truncated`].
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, LayerError> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let got = self.fill(&mut buf[..want])?;
        if got == 0 {
            return Err(LayerError::Truncated {
                entry: lossy(&self.last),
            });
        }
        self.remaining -= got as u64;
        Ok(got)
    }

    fn read_small(&mut self, size: u64, limit: u64, what: &'static str) -> Result<Vec<u8>, LayerError> {
        if size > limit {
            return Err(LayerError::TooLarge {
                entry: lossy(&self.last),
                what,
                size,
                limit,
            });
        }
        let mut v = vec![0u8; size as usize];
        if self.fill(&mut v)? < v.len() {
            return Err(LayerError::Truncated {
                entry: lossy(&self.last),
            });
        }
        self.skip(pad(size))?;
        Ok(v)
    }

    /// Advances to the next member; `None` at the end-of-archive marker.
    pub fn next_entry(&mut self) -> Result<Option<EntryMeta>, LayerError> {
        let (rest, padding) = (self.remaining, self.padding);
        self.remaining = 0;
        self.padding = 0;
        self.skip(rest + padding)?;

        let mut pax: Option<Vec<u8>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let mut header = tar::Header::new_old();
            let at = self.offset;
            let n = self.fill(header.as_mut_bytes())?;
            if n == 0 {
                return Err(LayerError::MissingTrailer {
                    after: lossy(&self.last),
                });
            }
            if n < BLOCK {
                return Err(LayerError::Truncated {
                    entry: lossy(&self.last),
                });
            }
            if header.as_bytes().iter().all(|b| *b == 0) {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(LayerError::Truncated {
                        entry: lossy(&self.last),
                    });
                }
                return Ok(None);
            }
            let sum: u32 = header.as_bytes()[..148]
                .iter()
                .chain(&header.as_bytes()[156..])
                .map(|b| *b as u32)
                .sum::<u32>()
                + 8 * 32;
            if header.cksum().ok() != Some(sum) {
                return Err(LayerError::BadChecksum {
                    offset: at,
                    after: lossy(&self.last),
                });
            }
            let raw_path = long_name
                .clone()
                .unwrap_or_else(|| header.path_bytes().into_owned());
            let path = pax
                .as_deref()
                .and_then(|p| pax_value(p, b"path"))
                .map(<[u8]>::to_vec)
                .unwrap_or(raw_path);
            self.last = path.clone();
            let bad = |field| LayerError::BadHeader {
                entry: lossy(&path),
                field,
            };
            let old = header.as_old();
            let ustar_size = numeric(&old.size, header.entry_size()).ok_or_else(|| bad("size"))?;
            let ty = header.entry_type().as_byte();
            match ty {
                b'x' | b'g' | b'L' | b'K' => {
                    let limit = if matches!(ty, b'x' | b'g') {
                        MAX_PAX_HEADER
                    } else {
                        MAX_LONG_NAME
                    };
                    let what = if matches!(ty, b'x' | b'g') {
                        "PAX header"
                    } else {
                        "GNU long name"
                    };
                    let data = self.read_small(ustar_size, limit, what)?;
                    let slot = match ty {
                        b'x' => &mut pax,
                        b'L' => &mut long_name,
                        b'K' => &mut long_link,
                        // Global headers carry comments (git archive); nothing in them applies to layers.
                        _ => continue,
                    };
                    if slot.is_some() {
                        return Err(bad("duplicate extension header"));
                    }
                    let mut data = data;
                    if ty != b'x' {
                        while data.last() == Some(&0) {
                            data.pop();
                        }
                    }
                    *slot = Some(data);
                    continue;
                }
                _ => {}
            }
            let kind = match ty {
                b'0' | 0 | b'7' => Kind::File,
                b'1' => Kind::Hardlink,
                b'2' => Kind::Symlink,
                b'3' => Kind::Char,
                b'4' => Kind::Block,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                other => {
                    return Err(LayerError::UnsupportedType {
                        entry: lossy(&path),
                        kind: other as char,
                    });
                }
            };
            let mut size = ustar_size;
            let mut meta = EntryMeta {
                link: None,
                kind,
                mode: numeric(&old.mode, header.mode().map(u64::from)).ok_or_else(|| bad("mode"))? as u32,
                uid: numeric(&old.uid, header.uid()).ok_or_else(|| bad("uid"))?,
                gid: numeric(&old.gid, header.gid()).ok_or_else(|| bad("gid"))?,
                mtime: numeric(&old.mtime, header.mtime()).ok_or_else(|| bad("mtime"))? as i64,
                mtime_nsec: 0,
                size: 0,
                dev_major: 0,
                dev_minor: 0,
                xattrs: Vec::new(),
                path: Vec::new(),
            };
            if matches!(kind, Kind::Char | Kind::Block) {
                meta.dev_major = header
                    .device_major()
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad("devmajor"))?;
                meta.dev_minor = header
                    .device_minor()
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad("devminor"))?;
            }
            meta.link = long_link
                .take()
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
            if let Some(pax) = &pax {
                for ext in tar::PaxExtensions::new(pax) {
                    let ext = ext.map_err(|_| bad("PAX record"))?;
                    let (key, value) = (ext.key_bytes(), ext.value_bytes());
                    let num = || -> Result<u64, LayerError> {
                        std::str::from_utf8(value)
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad("PAX number"))
                    };
                    match key {
                        b"size" => {
                            let pax_size = num()?;
                            // Writers put 0 (or the same value) in the ustar field when PAX carries the size;
                            // anything else means two parsers would see two different archives.
                            if ustar_size != 0 && ustar_size != pax_size {
                                return Err(LayerError::PaxSizeMismatch {
                                    entry: lossy(&path),
                                    pax: pax_size,
                                    ustar: ustar_size,
                                });
                            }
                            size = pax_size;
                        }
                        b"uid" => meta.uid = num()?,
                        b"gid" => meta.gid = num()?,
                        b"linkpath" => meta.link = Some(value.to_vec()),
                        b"mtime" => {
                            (meta.mtime, meta.mtime_nsec) =
                                parse_pax_time(value).ok_or_else(|| bad("PAX mtime"))?
                        }
                        _ if key.starts_with(b"SCHILY.xattr.") => meta
                            .xattrs
                            .push((key[b"SCHILY.xattr.".len()..].to_vec(), value.to_vec())),
                        _ if key.starts_with(b"GNU.sparse.") => {
                            return Err(LayerError::UnsupportedType {
                                entry: lossy(&path),
                                kind: 'S',
                            });
                        }
                        _ => {}
                    }
                }
            }
            if kind == Kind::File && size > self.max_file_size {
                return Err(LayerError::TooLarge {
                    entry: lossy(&path),
                    what: "file",
                    size,
                    limit: self.max_file_size,
                });
            }
            meta.size = if kind == Kind::File { size } else { 0 };
            meta.path = path;
            self.remaining = size;
            self.padding = pad(size);
            return Ok(Some(meta));
        }
    }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn pax_value<'a>(pax: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    tar::PaxExtensions::new(pax)
        .filter_map(Result::ok)
        .filter(|e| e.key_bytes() == key)
        .last()
        .map(|e| e.value_bytes())
}

/// Parses a PAX time such as `1700000000`, `1700000000.5` or `-1.25`.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nsec: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += (b - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    // Negative fractional times count backwards from `secs`, which the kernel can't represent directly.
    if s.starts_with('-') && nsec > 0 {
        return Some((secs - 1, 1_000_000_000 - nsec));
    }
    Some((secs, nsec))
}

/// A numeric header field as the tar crate parsed it, or 0 when the field is only NULs and spaces: some
/// writers leave fields they have no value for empty, and GNU tar and Go's archive/tar read those as 0.
/// Anything else the crate could not parse stays an error.
fn numeric(field: &[u8], parsed: io::Result<u64>) -> Option<u64> {
    match parsed {
        Ok(v) => Some(v),
        Err(_) if field.iter().all(|b| matches!(b, 0 | b' ')) => Some(0),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_numeric_fields_are_zero() {
        assert_eq!(
            numeric(b"\0\0\0\0\0\0\0\0", Err(io::ErrorKind::InvalidData.into())),
            Some(0)
        );
        assert_eq!(
            numeric(b"        ", Err(io::ErrorKind::InvalidData.into())),
            Some(0)
        );
        assert_eq!(
            numeric(b" \0 \0", Err(io::ErrorKind::InvalidData.into())),
            Some(0)
        );
        assert_eq!(numeric(b"12x4\0", Err(io::ErrorKind::InvalidData.into())), None);
        assert_eq!(numeric(b"0000017\0", Ok(15)), Some(15));
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1700000000, 0)));
        assert_eq!(parse_pax_time(b"1700000000.5"), Some((1700000000, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn detects_compression() {
        let plain = decompress(&b"hello"[..]).unwrap();
        assert_eq!(plain.detected(), Detected::Plain);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let mut d = decompress(&gz[..]).unwrap();
        assert_eq!(d.detected(), Detected::Gzip);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let zs = zstd::encode_all(&b"hello"[..], 3).unwrap();
        let mut d = decompress(&zs[..]).unwrap();
        assert_eq!(d.detected(), Detected::Zstd);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let mut d = decompress(&b"ab"[..]).unwrap();
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "ab");
    }
}
