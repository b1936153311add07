//! Go build information in ELF executables: since Go 1.18 the linker writes a `.go.buildinfo` section that
//! starts, 16-byte aligned, with the magic `\xff Go buildinf:`, a pointer size, a flags byte (bit 2:
//! strings inline), and at offset 32 two length-prefixed (uvarint) strings: the Go version and the module
//! info, whose lines name the main module (`mod`), the dependencies (`dep`, each maybe followed by a `=>`
//! replacement) and the build settings. This reader streams the file once, as the layer's tar stream
//! passes it, looking for the magic at aligned offsets; it never needs the section table (at the file's
//! end) nor the whole binary in memory. Pre-1.18 binaries (pointers instead of inline strings) are skipped.

use std::io::{self, Read};

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The module info of a large program is tens of kilobytes; this bounds what one hit may read.
const MAX_INFO: usize = 1 << 20;
const CHUNK: usize = 64 << 10;
/// The sentinels the linker puts around the module info.
const SENTINEL_LEN: usize = 16;

/// One module: path and version (a `=>` replacement already applied).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Module {
    pub path: String,
    pub version: String,
}

/// What a Go binary says about how it was built.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildInfo {
    /// `go1.22.1`.
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: Option<String>,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
}

/// Reads `r` (a file's content) and returns its Go build info, if it is an ELF file that has one.
pub fn scan(mut r: impl Read) -> io::Result<Option<BuildInfo>> {
    let mut buf = Vec::with_capacity(CHUNK);
    // `base` is the file offset of buf[0]; hits must be 16-byte aligned in the file, as the section is.
    let mut base = 0usize;
    let mut from = 0usize;
    let mut eof = fill(&mut r, &mut buf, 4)?;
    if !buf.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    loop {
        match memchr::memmem::find(&buf[from..], MAGIC).map(|i| from + i) {
            Some(p) if (base + p).is_multiple_of(16) => {
                if !eof && buf.len() < p + MAX_INFO {
                    eof = fill(&mut r, &mut buf, p + MAX_INFO)?;
                }
                if let Some(info) = decode(&buf[p..]) {
                    return Ok(Some(info));
                }
                from = p + 1;
            }
            Some(p) => from = p + 1,
            None if eof => return Ok(None),
            None => {
                // Keep a magic's worth of tail so a hit across two chunks is seen.
                let keep = buf.len().min(MAGIC.len() - 1);
                let drop = buf.len() - keep;
                buf.drain(..drop);
                base += drop;
                from = 0;
                eof = fill(&mut r, &mut buf, keep + CHUNK)?;
            }
        }
    }
}

/// Reads until `buf` holds `want` bytes or the reader ends; true at the end.
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    while buf.len() < want {
        let n = r.read(&mut chunk[..(want - buf.len()).min(8192)])?;
        if n == 0 {
            return Ok(true);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(false)
}

/// Go's `binary.Uvarint`: little-endian groups of 7 bits.
fn uvarint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(v).ok()?, i + 1));
        }
    }
    None
}

fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, n) = uvarint(b)?;
    let s = b.get(n..n.checked_add(len)?)?;
    Some((s, &b[n + len..]))
}

/// The section's content from its magic on.
fn decode(sec: &[u8]) -> Option<BuildInfo> {
    let flags = *sec.get(15)?;
    if flags & 2 == 0 {
        return None;
    }
    let (version, rest) = string(sec.get(32..)?)?;
    let (modinfo, _) = string(rest)?;
    let version = std::str::from_utf8(version).ok()?;
    if !version.starts_with("go") {
        return None;
    }
    let modinfo = if modinfo.len() > 2 * SENTINEL_LEN && modinfo[modinfo.len() - SENTINEL_LEN - 1] == b'\n' {
        &modinfo[SENTINEL_LEN..modinfo.len() - SENTINEL_LEN]
    } else {
        &[][..]
    };
    let mut info = BuildInfo {
        go_version: version.to_owned(),
        path: None,
        main: None,
        deps: Vec::new(),
    };
    for line in String::from_utf8_lossy(modinfo).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let module = || Module {
            path: f.get(1).copied().unwrap_or_default().to_owned(),
            version: f.get(2).copied().unwrap_or_default().to_owned(),
        };
        match f[0] {
            "path" => info.path = f.get(1).map(|s| (*s).to_owned()),
            "mod" => info.main = Some(module()),
            "dep" => info.deps.push(module()),
            // A replacement names the module actually built in: it takes the replaced one's place.
            "=>" => {
                if let Some(last) = info.deps.last_mut() {
                    *last = module();
                } else if let Some(m) = info.main.as_mut() {
                    *m = module();
                }
            }
            _ => {}
        }
    }
    Some(info)
}

/// A section as the Go linker writes it (for tests here and in the crate's integration tests).
pub fn make_section(go_version: &str, modinfo: &str) -> Vec<u8> {
    let mut s = MAGIC.to_vec();
    s.extend_from_slice(&[8, 2]);
    s.resize(32, 0);
    let mut put = |b: &[u8]| {
        let mut n = b.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                s.push(byte);
                break;
            }
            s.push(byte | 0x80);
        }
        s.extend_from_slice(b);
    };
    put(go_version.as_bytes());
    let mut m = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
    m.extend_from_slice(modinfo.as_bytes());
    m.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
    put(&m);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODINFO: &str = "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\n\
        dep\tgolang.org/x/text\tv0.14.0\th1:abc=\n\
        dep\tgithub.com/old/thing\tv1.0.0\th1:def=\n=>\tgithub.com/new/thing\tv1.2.0\th1:ghi=\n\
        build\tGOOS=linux\n";

    /// An ELF-looking file with the section at `at` (16-aligned or not) inside filler bytes.
    fn binary(at: usize, total: usize) -> Vec<u8> {
        let mut f = b"\x7fELF\x02\x01\x01".to_vec();
        f.resize(at, 0x90);
        f.extend_from_slice(&make_section("go1.22.1", MODINFO));
        f.resize(total.max(f.len()), 0x90);
        f
    }

    #[test]
    fn finds_the_section_anywhere_in_the_stream() {
        // Across a chunk boundary, and far into the file.
        for at in [4096, CHUNK - 16, 3 * CHUNK + 16 * 7] {
            let info = scan(&binary(at, 5 * CHUNK)[..]).unwrap().unwrap();
            assert_eq!(info.go_version, "go1.22.1");
            assert_eq!(info.path.as_deref(), Some("example.com/hello"));
            assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
            let deps: Vec<(&str, &str)> = info
                .deps
                .iter()
                .map(|m| (m.path.as_str(), m.version.as_str()))
                .collect();
            assert_eq!(
                deps,
                [
                    ("golang.org/x/text", "v0.14.0"),
                    ("github.com/new/thing", "v1.2.0")
                ]
            );
        }
    }

    #[test]
    fn misaligned_magic_non_elf_and_old_formats_give_nothing() {
        assert_eq!(scan(&binary(4096 + 3, 8192)[..]).unwrap(), None);
        let mut not_elf = binary(4096, 8192);
        not_elf[0] = b'#';
        assert_eq!(scan(&not_elf[..]).unwrap(), None);
        let mut old = binary(4096, 8192);
        old[4096 + 15] = 0; // pointer-based (pre-1.18) strings
        assert_eq!(scan(&old[..]).unwrap(), None);
        // A stray magic first (as in the Go linker's own rodata), the real section later.
        let mut two = b"\x7fELF".to_vec();
        two.resize(1024, 0);
        two.extend_from_slice(b"\xff Go buildinf:\x08\x00");
        two.resize(8192, 0);
        two.extend_from_slice(&make_section("go1.21.0", "mod\tx.io/y\tv1.0.0\t\n"));
        assert_eq!(scan(&two[..]).unwrap().unwrap().go_version, "go1.21.0");
    }
}
