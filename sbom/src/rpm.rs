//! rpm's package database in its sqlite form (`/var/lib/rpm/rpmdb.sqlite`, Fedora 33+, RHEL 9, current
//! openSUSE): table `Packages` holds one rpm *header blob* per installed package. A blob is two big-endian
//! counts (index entries, data bytes), the entries (tag, type, offset, count; 16 bytes each) and the data
//! store they point into. Only the tags an SBOM needs are read. The older Berkeley DB (`Packages`) and
//! SUSE's ndb (`Packages.db`) forms are not read.

use super::sqlite::{Database, Value};
use super::{Ecosystem, Package};

pub const RPMDB_SQLITE: &str = "var/lib/rpm/rpmdb.sqlite";
/// Where rpm-ostree images (Fedora CoreOS, bootc) keep it.
pub const RPMDB_SQLITE_USR: &str = "usr/lib/sysimage/rpm/rpmdb.sqlite";

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const VENDOR: u32 = 1011;
const LICENSE: u32 = 1014;
const URL: u32 = 1020;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The tags of one header blob that hold a string or an int32.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    strings: Vec<(u32, String)>,
    ints: Vec<(u32, i32)>,
}

impl Header {
    /// Parses a header blob; None when its counts or offsets do not fit the blob.
    pub fn parse(blob: &[u8]) -> Option<Header> {
        let be = |at: usize| {
            blob.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let il = be(0)? as usize;
        let dl = be(4)? as usize;
        let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
        let data = blob.get(data_start..data_start.checked_add(dl)?)?;
        let mut h = Header::default();
        for i in 0..il {
            let e = 8 + 16 * i;
            let (tag, typ, off, count) = (be(e)?, be(e + 4)?, be(e + 8)? as usize, be(e + 12)?);
            match typ {
                TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING if count > 0 => {
                    // The first string (an I18N table's first entry is the C locale's).
                    let rest = data.get(off..)?;
                    let end = rest.iter().position(|b| *b == 0)?;
                    h.strings
                        .push((tag, String::from_utf8_lossy(&rest[..end]).into_owned()));
                }
                TYPE_INT32 if count > 0 => {
                    let b = data.get(off..off + 4)?;
                    h.ints.push((tag, i32::from_be_bytes([b[0], b[1], b[2], b[3]])));
                }
                _ => {}
            }
        }
        Some(h)
    }

    fn string(&self, tag: u32) -> Option<&str> {
        self.strings
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, s)| s.as_str())
    }

    fn int(&self, tag: u32) -> Option<i32> {
        self.ints.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }

    /// The package it describes, `[epoch:]version-release` as rpm prints it; None without name or version.
    pub fn package(&self, path: &str, namespace: Option<&str>) -> Option<Package> {
        let name = self.string(NAME)?;
        let mut version = self.string(VERSION)?.to_owned();
        if let Some(r) = self.string(RELEASE) {
            version = format!("{version}-{r}");
        }
        if let Some(e) = self.int(EPOCH).filter(|e| *e != 0) {
            version = format!("{e}:{version}");
        }
        let own = |t| {
            self.string(t)
                .filter(|s| !s.is_empty() && *s != "(none)")
                .map(str::to_owned)
        };
        Some(Package {
            ecosystem: Ecosystem::Rpm,
            name: name.to_owned(),
            version,
            arch: own(ARCH),
            license: own(LICENSE),
            homepage: own(URL),
            supplier: own(VENDOR),
            source: own(SOURCERPM),
            found_in: format!("/{path}"),
            namespace: namespace.map(str::to_owned),
        })
    }
}

/// The packages of an `rpmdb.sqlite`; a database that does not read gives none (logged by the caller's
/// SBOM as nothing found, as for any unreadable database).
pub fn rpmdb_sqlite(data: &[u8], path: &str, namespace: Option<&str>) -> Vec<Package> {
    let Ok(db) = Database::open(data) else {
        return Vec::new();
    };
    let Ok(rows) = db.rows("Packages") else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|(_, cols)| {
            let blob = cols.iter().find_map(|c| match c {
                Value::Blob(b) => Some(b.as_slice()),
                _ => None,
            })?;
            Header::parse(blob)?.package(path, namespace)
        })
        .collect()
}

/// A header blob with the given string and int32 tags (for tests, here and in the integration tests).
pub fn make_header(strings: &[(u32, &str)], ints: &[(u32, i32)]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (tag, s) in strings {
        entries.push((*tag, TYPE_STRING, data.len() as u32, 1u32));
        data.extend_from_slice(s.as_bytes());
        data.push(0);
    }
    for (tag, v) in ints {
        while !data.len().is_multiple_of(4) {
            data.push(0);
        }
        entries.push((*tag, TYPE_INT32, data.len() as u32, 1));
        data.extend_from_slice(&v.to_be_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    for (t, ty, off, n) in entries {
        for v in [t, ty, off, n] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out.extend_from_slice(&data);
    out
}

/// Tag numbers for [`make_header`].
pub mod tags {
    pub const NAME: u32 = super::NAME;
    pub const VERSION: u32 = super::VERSION;
    pub const RELEASE: u32 = super::RELEASE;
    pub const EPOCH: u32 = super::EPOCH;
    pub const ARCH: u32 = super::ARCH;
    pub const LICENSE: u32 = super::LICENSE;
    pub const SOURCERPM: u32 = super::SOURCERPM;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_blobs_give_name_epoch_version_release_arch() {
        let blob = make_header(
            &[
                (NAME, "bash"),
                (VERSION, "5.2.26"),
                (RELEASE, "3.fc40"),
                (ARCH, "x86_64"),
                (LICENSE, "GPL-3.0-or-later"),
                (SOURCERPM, "bash-5.2.26-3.fc40.src.rpm"),
            ],
            &[(EPOCH, 2)],
        );
        let p = Header::parse(&blob)
            .unwrap()
            .package(RPMDB_SQLITE, Some("fedora"))
            .unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("bash", "2:5.2.26-3.fc40"));
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.license.as_deref(), Some("GPL-3.0-or-later"));
        assert_eq!(
            p.purl(),
            "pkg:rpm/fedora/bash@2%3A5.2.26-3.fc40?arch=x86_64&upstream=bash-5.2.26-3.fc40.src.rpm"
        );
        // A truncated blob or an offset past the data is refused, not read past.
        assert!(Header::parse(&blob[..blob.len() - 3]).is_none());
        let mut bad = blob.clone();
        bad[8 + 8..8 + 12].copy_from_slice(&9999u32.to_be_bytes());
        assert!(Header::parse(&bad).is_none());
        // No version: no package.
        let h = Header::parse(&make_header(&[(NAME, "x")], &[])).unwrap();
        assert!(h.package(RPMDB_SQLITE, None).is_none());
    }
}
