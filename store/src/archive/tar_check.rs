//! A streaming structural check of a layer tar, for `import` and `load` (issue 11, item 7): layers that
//! can never be extracted (a 2 TiB size field in a small blob, a truncated tar, an oversize PAX header)
//! are refused before anything is tagged, not at the first unpack. [`TarCheck`] is a `Read` adapter:
//! bytes pass through unchanged (into the hasher and compressor of the caller's one pass) while their
//! tar framing is parsed: every header's checksum and size field, PAX and GNU long-name headers bounded
//! to [`MAX_EXTENDED_HEADER`] (1 MiB, as Go's archive/tar), PAX records well-formed, and no entry
//! extending past the end of the stream. A problem is an `io::Error` of kind `InvalidData` carrying a
//! [`TarCheckError`]; [`tar_problem`] gets it back.

use std::io::{self, Read};

/// Largest PAX (`x`, `g`) or GNU long name/link (`L`, `K`) header body accepted.
pub const MAX_EXTENDED_HEADER: u64 = 1 << 20;

const BLOCK: usize = 512;

/// Why a layer tar cannot be extracted. `entry` is the tar member's name as far as it is known.
#[derive(Debug, thiserror::Error)]
pub enum TarCheckError {
    #[error("tar header at byte {offset}: checksum does not match")]
    BadChecksum { offset: u64 },
    #[error("tar header at byte {offset} ({entry:?}): invalid size field")]
    BadSize { offset: u64, entry: String },
    #[error("{entry:?}: {kind} header of {size} bytes is larger than the {limit}-byte limit")]
    HeaderTooLarge {
        entry: String,
        kind: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("{entry:?}: malformed PAX record")]
    BadPax { entry: String },
    #[error("{entry:?}: declares {size} bytes, but the stream ends after {available}")]
    Truncated {
        entry: String,
        size: u64,
        available: u64,
    },
    #[error("the stream ends inside a tar header at byte {offset}")]
    TruncatedHeader { offset: u64 },
}

enum State {
    /// Collecting a 512-byte header block.
    Header,
    /// `left` bytes of the body of `entry` (declared `size`), then `pad` bytes of padding.
    Body {
        entry: String,
        size: u64,
        left: u64,
        pad: u64,
        /// A PAX or GNU long-name body being kept (bounded by [`MAX_EXTENDED_HEADER`]).
        keep: Option<(u8, Vec<u8>)>,
    },
    /// After the end-of-archive block: whatever follows is record padding.
    Ended,
}

/// Passes `inner` through while checking its tar framing (see the module docs).
pub struct TarCheck<R> {
    inner: R,
    state: State,
    block: Vec<u8>,
    offset: u64,
    /// From a preceding PAX header or GNU long name: the next entry's name and size.
    next_name: Option<String>,
    next_size: Option<u64>,
}

impl<R: Read> TarCheck<R> {
    pub fn new(inner: R) -> Self {
        TarCheck {
            inner,
            state: State::Header,
            block: Vec::with_capacity(BLOCK),
            offset: 0,
            next_name: None,
            next_size: None,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), TarCheckError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Ended => return Ok(()),
                State::Header => {
                    let take = (BLOCK - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    self.offset += take as u64;
                    if self.block.len() == BLOCK {
                        let block = std::mem::take(&mut self.block);
                        self.header(&block)?;
                        self.block = block;
                        self.block.clear();
                    }
                }
                State::Body { left, pad, keep, .. } => {
                    let in_body = (*left).min(data.len() as u64) as usize;
                    if let Some((_, buf)) = keep {
                        buf.extend_from_slice(&data[..in_body]);
                    }
                    *left -= in_body as u64;
                    let in_pad = (*pad).min((data.len() - in_body) as u64) as usize;
                    *pad -= in_pad as u64;
                    data = &data[in_body + in_pad..];
                    self.offset += (in_body + in_pad) as u64;
                    if *left == 0 && *pad == 0 {
                        let State::Body { keep, entry, .. } =
                            std::mem::replace(&mut self.state, State::Header)
                        else {
                            unreachable!("matched above")
                        };
                        if let Some((kind, buf)) = keep {
                            self.extended(kind, &buf, &entry)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn header(&mut self, b: &[u8]) -> Result<(), TarCheckError> {
        let offset = self.offset - BLOCK as u64;
        if b.iter().all(|&x| x == 0) {
            self.state = State::Ended;
            return Ok(());
        }
        let want = octal(&b[148..156]).ok_or(TarCheckError::BadChecksum { offset })?;
        let unsigned: u64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| if (148..156).contains(&i) { 32 } else { u64::from(x) })
            .sum();
        let signed: i64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    i64::from(x as i8)
                }
            })
            .sum();
        if want != unsigned && Some(want) != u64::try_from(signed).ok() {
            return Err(TarCheckError::BadChecksum { offset });
        }
        let kind = b[156];
        let entry = self.next_name.take().unwrap_or_else(|| header_name(b));
        let size = match size_field(&b[124..136]) {
            Some(s) => s,
            None => return Err(TarCheckError::BadSize { offset, entry }),
        };
        let extended = matches!(kind, b'x' | b'g' | b'L' | b'K');
        // A PAX `size` record applies to the entry it precedes, not to the extended header itself.
        let size = if extended {
            size
        } else {
            self.next_size.take().unwrap_or(size)
        };
        // Links, directories, devices and FIFOs carry no body whatever their size field says.
        let body = match kind {
            b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => 0,
            _ => size,
        };
        if extended && size > MAX_EXTENDED_HEADER {
            return Err(TarCheckError::HeaderTooLarge {
                entry,
                kind: if matches!(kind, b'x' | b'g') {
                    "PAX"
                } else {
                    "GNU long name"
                },
                size,
                limit: MAX_EXTENDED_HEADER,
            });
        }
        let pad = (BLOCK as u64 - body % BLOCK as u64) % BLOCK as u64;
        self.state = if body == 0 {
            if extended {
                self.extended(kind, &[], &entry)?;
            }
            State::Header
        } else {
            State::Body {
                entry,
                size: body,
                left: body,
                pad,
                keep: extended.then(|| (kind, Vec::with_capacity(body as usize))),
            }
        };
        Ok(())
    }

    fn extended(&mut self, kind: u8, body: &[u8], entry: &str) -> Result<(), TarCheckError> {
        match kind {
            b'L' => {
                let name = body.split(|&c| c == 0).next().unwrap_or_default();
                self.next_name = Some(String::from_utf8_lossy(name).into_owned());
            }
            b'x' | b'g' => {
                let bad = || TarCheckError::BadPax {
                    entry: entry.to_owned(),
                };
                for (key, value) in pax_records(body).ok_or_else(bad)? {
                    if kind == b'x' && key == b"path" {
                        self.next_name = Some(String::from_utf8_lossy(value).into_owned());
                    }
                    if kind == b'x' && key == b"size" {
                        let s = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                        self.next_size = Some(s.ok_or_else(bad)?);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn at_eof(&self) -> Result<(), TarCheckError> {
        match &self.state {
            State::Ended => Ok(()),
            // Like Go's archive/tar, a stream that stops cleanly between entries is accepted.
            State::Header if self.block.is_empty() => Ok(()),
            State::Header => Err(TarCheckError::TruncatedHeader {
                offset: self.offset - self.block.len() as u64,
            }),
            State::Body {
                entry, size, left, ..
            } if *left > 0 => Err(TarCheckError::Truncated {
                entry: entry.clone(),
                size: *size,
                available: size - left,
            }),
            // Only the padding after the last body is missing: the content is whole.
            State::Body { .. } => Ok(()),
        }
    }
}

impl<R: Read> Read for TarCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let checked = if n == 0 {
            self.at_eof()
        } else {
            self.feed(&buf[..n])
        };
        checked.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }
}

/// The [`TarCheckError`] inside an I/O error from a [`TarCheck`], if that is what it is.
pub fn tar_problem(e: &io::Error) -> Option<&TarCheckError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<TarCheckError>())
}

/// Reads `r` to its end through a [`TarCheck`], discarding the bytes.
pub fn check_stream(r: impl Read) -> io::Result<u64> {
    io::copy(&mut TarCheck::new(r), &mut io::sink())
}

fn octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Octal, or GNU base-256 (high bit set; a set sign bit is a negative size, refused).
fn size_field(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 == 0 {
        return octal(field);
    }
    if field[0] & 0x40 != 0 {
        return None;
    }
    let mut v: u64 = u64::from(field[0] & 0x3f);
    for &b in &field[1..] {
        v = v.checked_mul(256)?.checked_add(u64::from(b))?;
    }
    Some(v)
}

fn header_name(b: &[u8]) -> String {
    let cstr = |f: &[u8]| {
        let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let name = cstr(&b[0..100]);
    let prefix = if &b[257..262] == b"ustar" {
        cstr(&b[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// PAX records `"<len> <key>=<value>\n"`, or `None` if one is malformed.
fn pax_records(mut body: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    // Trailing NUL padding some writers leave is tolerated.
    while !body.is_empty() && body.iter().any(|&c| c != 0) {
        let sp = body.iter().position(|&c| c == b' ')?;
        let len: usize = std::str::from_utf8(&body[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > body.len() || body[len - 1] != b'\n' {
            return None;
        }
        let rec = &body[sp + 1..len - 1];
        let eq = rec.iter().position(|&c| c == b'=')?;
        out.push((&rec[..eq], &rec[eq + 1..]));
        body = &body[len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn problem(data: &[u8]) -> Option<String> {
        check_stream(data)
            .err()
            .map(|e| tar_problem(&e).expect("a tar problem").to_string())
    }

    #[test]
    fn a_sound_tar_passes_through_unchanged() {
        let t = tar_of(&[("a", b"hello"), ("d/b", &[1u8; 1000])]);
        let mut out = Vec::new();
        io::copy(&mut TarCheck::new(&t[..]), &mut out).unwrap();
        assert_eq!(out, t);
        // Without the end-of-archive blocks, too (Go accepts it).
        assert_eq!(problem(&t[..t.len() - 1024]), None);
    }

    #[test]
    fn truncation_and_bad_checksums_are_found() {
        let t = tar_of(&[("a", &[1u8; 1000])]);
        let p = problem(&t[..700]).unwrap();
        assert!(
            p.contains("\"a\": declares 1000 bytes, but the stream ends after 188"),
            "{p}"
        );
        assert!(problem(&t[..300]).unwrap().contains("inside a tar header"));
        let mut bad = t.clone();
        bad[0] ^= 1;
        assert!(problem(&bad).unwrap().contains("checksum"));
    }
}
