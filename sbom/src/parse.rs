//! Package databases and manifests, read into [`Package`]s. Every reader is lenient about what it does not
//! need (unknown fields, odd whitespace) and skips records it cannot use rather than failing the SBOM.

use super::collect::{APK_INSTALLED, Collected, DPKG_STATUS, DPKG_STATUS_D, RPMDB_SQLITE, RPMDB_SQLITE_USR};
use super::{Ecosystem, Package};

/// The fields of /etc/os-release an SBOM uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

pub fn os_release(data: &[u8]) -> OsRelease {
    let mut o = OsRelease::default();
    for line in String::from_utf8_lossy(data).lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
        match k {
            "ID" => o.id = Some(v),
            "VERSION_ID" => o.version_id = Some(v),
            "PRETTY_NAME" => o.pretty_name = Some(v),
            _ => {}
        }
    }
    o
}

/// Every package the collected files describe.
pub fn packages(files: &Collected, namespace: Option<&str>) -> Vec<Package> {
    let mut out = Vec::new();
    if let Some(f) = files.get(DPKG_STATUS) {
        out.extend(dpkg(&f.data, DPKG_STATUS, namespace));
    }
    for (path, f) in files.matching(|p| p.starts_with(DPKG_STATUS_D)) {
        out.extend(dpkg(&f.data, path, namespace));
    }
    if let Some(f) = files.get(APK_INSTALLED) {
        out.extend(apk(&f.data, APK_INSTALLED, namespace));
    }
    for path in [RPMDB_SQLITE, RPMDB_SQLITE_USR] {
        if let Some(f) = files.get(path) {
            out.extend(super::rpm::rpmdb_sqlite(&f.data, path, namespace));
        }
    }
    for (path, (_, info)) in &files.go {
        out.extend(go_modules(info, path));
    }
    for (path, f) in files.matching(|p| p.ends_with("/METADATA") || p.ends_with("/PKG-INFO")) {
        out.extend(python(&f.data, path));
    }
    for (path, f) in files.matching(|p| p.ends_with("/package.json")) {
        out.extend(npm(&f.data, path));
    }
    for (path, f) in files.matching(|p| p == "Cargo.lock" || p.ends_with("/Cargo.lock")) {
        out.extend(cargo_lock(&f.data, path));
    }
    out
}

fn new(ecosystem: Ecosystem, name: &str, version: &str, found_in: &str) -> Package {
    Package {
        ecosystem,
        name: name.to_owned(),
        version: version.to_owned(),
        arch: None,
        license: None,
        homepage: None,
        supplier: None,
        source: None,
        found_in: format!("/{found_in}"),
        namespace: None,
    }
}

/// RFC 822-style paragraphs (dpkg status): `Field: value`, continuation lines start with a blank.
fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some(last) = cur.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// dpkg's status database: only packages whose `Status` says installed (or files without `Status`, as
/// distroless `status.d/` entries are).
pub fn dpkg(data: &[u8], path: &str, namespace: Option<&str>) -> Vec<Package> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for para in paragraphs(&text) {
        let field = |k: &str| {
            para.iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        if let Some(status) = field("Status")
            && status.split_whitespace().last().is_none_or(|s| s != "installed")
        {
            continue;
        }
        let mut p = new(Ecosystem::Deb, name, version, path);
        p.arch = field("Architecture").map(str::to_owned);
        p.homepage = field("Homepage").map(str::to_owned);
        p.supplier = field("Maintainer").map(str::to_owned);
        // `Source: name (version)` when the source version differs.
        p.source = field("Source")
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_owned);
        p.namespace = namespace.map(str::to_owned);
        out.push(p);
    }
    out
}

/// apk's installed database: `K:value` lines, one blank line between packages.
pub fn apk(data: &[u8], path: &str, namespace: Option<&str>) -> Vec<Package> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let field = |k: char| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
        };
        let (Some(name), Some(version)) = (field('P'), field('V')) else {
            continue;
        };
        let mut p = new(Ecosystem::Apk, name, version, path);
        p.arch = field('A').map(str::to_owned);
        p.license = field('L').map(str::to_owned);
        p.homepage = field('U').map(str::to_owned);
        p.supplier = field('m').map(str::to_owned);
        p.source = field('o').map(str::to_owned);
        p.namespace = Some(namespace.unwrap_or("alpine").to_owned());
        out.push(p);
    }
    out
}

/// Python core metadata (`METADATA`, `PKG-INFO`): the header part, before the first blank line.
pub fn python(data: &[u8], path: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\n\n").next().unwrap_or("");
    let para = paragraphs(head).into_iter().next()?;
    let field = |k: &str| {
        para.iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let mut p = new(Ecosystem::Python, field("Name")?, field("Version")?, path);
    p.license = field("License-Expression")
        .or(field("License"))
        .filter(|l| !l.is_empty() && !l.contains('\n') && *l != "UNKNOWN")
        .map(str::to_owned);
    p.homepage = field("Home-page").map(str::to_owned);
    p.supplier = field("Author").map(str::to_owned);
    Some(p)
}

/// An installed npm package's own `package.json`.
pub fn npm(data: &[u8], path: &str) -> Option<Package> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let mut p = new(
        Ecosystem::Npm,
        v.get("name")?.as_str()?,
        v.get("version")?.as_str()?,
        path,
    );
    p.license = match v.get("license") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => o.get("type").and_then(|t| t.as_str()).map(str::to_owned),
        _ => None,
    };
    p.homepage = v.get("homepage").and_then(|h| h.as_str()).map(str::to_owned);
    Some(p)
}

/// `Cargo.lock`: every `[[package]]` table's name and version (the format is simple enough to read
/// without a TOML parser: one `key = "value"` per line).
pub fn cargo_lock(data: &[u8], path: &str) -> Vec<Package> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for table in text.split("[[package]]").skip(1) {
        let field = |k: &str| {
            table.lines().find_map(|l| {
                let (key, val) = l.split_once('=')?;
                (key.trim() == k).then(|| val.trim().trim_matches('"').to_owned())
            })
        };
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            continue;
        };
        let mut p = new(Ecosystem::Cargo, &name, &version, path);
        p.source = None;
        if field("source").is_none() {
            // A workspace member of the lock file itself, not a dependency from a registry or git.
            p.supplier = Some("local".to_owned());
        }
        out.push(p);
    }
    out
}

/// A Go binary's main module, dependencies and standard library (as `stdlib` at the Go version).
pub fn go_modules(info: &super::gobuild::BuildInfo, path: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for m in info.main.iter().chain(&info.deps) {
        if !m.path.is_empty() {
            out.push(new(Ecosystem::Go, &m.path, &m.version, path));
        }
    }
    let go = info.go_version.strip_prefix("go").unwrap_or(&info.go_version);
    out.push(new(Ecosystem::Go, "stdlib", &format!("v{go}"), path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: base-files\nEssential: yes\nStatus: install ok installed\nPriority: required\n\
Architecture: amd64\nVersion: 12.4+deb12u5\nMaintainer: Santiago Vila <sanvila@debian.org>\nDescription: Debian base system\n \
 miscellaneous files\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\
Homepage: https://www.gnu.org/software/libc/libc.html\n";

    #[test]
    fn dpkg_lists_installed_packages_only() {
        let p = dpkg(STATUS.as_bytes(), "var/lib/dpkg/status", Some("debian"));
        let names: Vec<_> = p.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(
            names,
            [("base-files", "12.4+deb12u5"), ("libc6", "2.36-9+deb12u4")]
        );
        assert_eq!(p[1].source.as_deref(), Some("glibc"));
        assert_eq!(p[0].arch.as_deref(), Some("amd64"));
        assert_eq!(p[0].found_in, "/var/lib/dpkg/status");
    }

    #[test]
    fn apk_database() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\nU:https://musl.libc.org/\no:musl\n\n\
C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n\n";
        let p = apk(db.as_bytes(), "lib/apk/db/installed", None);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[1].name.as_str(), p[1].license.as_deref()),
            ("busybox", Some("GPL-2.0-only"))
        );
        assert_eq!(p[0].purl(), "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
    }

    #[test]
    fn python_npm_cargo() {
        let m = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nlong description\nName: nope\n";
        let p = python(m.as_bytes(), "x/requests-2.31.0.dist-info/METADATA").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("requests", "2.31.0"));
        let j = br#"{"name":"@scope/pkg","version":"1.2.3","license":{"type":"MIT"}}"#;
        let n = npm(j, "node_modules/@scope/pkg/package.json").unwrap();
        assert_eq!(n.license.as_deref(), Some("MIT"));
        assert!(npm(b"{not json", "x").is_none());
        let lock = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"serde\"\n\
version = \"1.0.197\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let c = cargo_lock(lock.as_bytes(), "Cargo.lock");
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].purl(), "pkg:cargo/serde@1.0.197");
    }

    #[test]
    fn os_release_fields() {
        let o = os_release(b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(o.id.as_deref(), Some("debian"));
        assert_eq!(o.pretty_name.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }
}
