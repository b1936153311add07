//! Software bills of materials for images, made by lamina itself (no scanner image).
//!
//! Data flow: [`collect::collect`] makes one pass over an image's layers (any [`ImageView`]: the store, an
//! OCI layout or archive, a registry) and keeps only the package-database files that survive the layer
//! stack (whiteouts and opaque directories honoured), each capped in size → [`parse`] reads them into
//! [`Package`]s — dpkg (`/var/lib/dpkg/status`, `status.d/*`), apk (`/lib/apk/db/installed`), Python
//! (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`), npm (`node_modules/**/package.json`) and Cargo
//! (`Cargo.lock`) → [`spdx`] or [`cyclonedx`] render an [`Inventory`] as JSON. Nothing from an image is
//! executed, and memory is bounded by the caps, not by layer sizes. rpm databases (sqlite/bdb) and Go build
//! info in binaries are not read.

pub mod collect;
pub mod cyclonedx;
pub mod parse;
pub mod spdx;

use lamina_inspect::InspectError;
use lamina_inspect::source::ImageView;

/// Which package manager a package comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    Deb,
    Apk,
    Python,
    Npm,
    Cargo,
}

impl Ecosystem {
    /// The package-url type (purl spec).
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Python => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "cargo",
        }
    }
}

/// One package found in the image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// The license as the package database states it (free text for dpkg-less formats).
    pub license: Option<String>,
    pub homepage: Option<String>,
    pub supplier: Option<String>,
    /// The source package, where it differs (dpkg `Source:`, apk `o:`).
    pub source: Option<String>,
    /// The file in the image the package was read from.
    pub found_in: String,
    /// The distribution namespace of OS packages (`debian`, `alpine`, from /etc/os-release).
    pub namespace: Option<String>,
}

impl Package {
    /// The package URL, e.g. `pkg:deb/debian/bash@5.2.15-2?arch=amd64`.
    pub fn purl(&self) -> String {
        let name = match self.ecosystem {
            // npm scopes are part of the namespace, with the `@` percent-encoded.
            Ecosystem::Npm => match self.name.strip_prefix('@').and_then(|s| s.split_once('/')) {
                Some((scope, n)) => format!("%40{}/{}", encode(scope), encode(n)),
                None => encode(&self.name),
            },
            // PyPI names are normalised: lowercase, runs of `-_.` as one `-`.
            Ecosystem::Python => encode(&normalise_pypi(&self.name)),
            _ => encode(&self.name),
        };
        let mut p = format!("pkg:{}/", self.ecosystem.purl_type());
        if let Some(ns) = &self.namespace {
            p.push_str(&encode(ns));
            p.push('/');
        }
        p.push_str(&name);
        p.push('@');
        p.push_str(&encode(&self.version));
        let mut q = Vec::new();
        if let Some(a) = &self.arch {
            q.push(format!("arch={}", encode(a)));
        }
        if let Some(s) = self.source.as_ref().filter(|s| **s != self.name) {
            q.push(format!("upstream={}", encode(s)));
        }
        if !q.is_empty() {
            p.push('?');
            p.push_str(&q.join("&"));
        }
        p
    }
}

fn normalise_pypi(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Percent-encodes everything outside purl's unreserved set.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What an image holds, ready to render.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// How the image was named.
    pub image: String,
    /// The image's manifest digest (or config digest) when known.
    pub digest: Option<String>,
    /// The image's creation time (RFC 3339), so the document is reproducible.
    pub created: Option<String>,
    /// `PRETTY_NAME` of /etc/os-release, when present.
    pub os: Option<String>,
    pub packages: Vec<Package>,
}

/// Errors making an SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("reading layer {layer} of {image}")]
    Layer {
        image: String,
        layer: String,
        #[source]
        source: InspectError,
    },
    #[error("reading layer {layer} of {image}")]
    Tar {
        image: String,
        layer: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the image's layers once and lists its packages.
pub fn scan(view: &ImageView) -> Result<Inventory, SbomError> {
    let files = collect::collect(view)?;
    Ok(scan_collected(view, &files))
}

/// The inventory of files already collected from `view`.
pub fn scan_collected(view: &ImageView, files: &collect::Collected) -> Inventory {
    let os = files.get(collect::OS_RELEASE).map(|f| parse::os_release(&f.data));
    let namespace = os.as_ref().and_then(|o| o.id.clone());
    let mut packages = parse::packages(files, namespace.as_deref());
    packages.sort();
    packages.dedup();
    Inventory {
        image: view.name.clone(),
        digest: view
            .manifest_digest
            .as_ref()
            .or(view.config_digest.as_ref())
            .map(ToString::to_string),
        created: view
            .config
            .get("created")
            .and_then(|c| c.as_str())
            .map(str::to_owned),
        os: os.and_then(|o| o.pretty_name),
        packages,
    }
}

/// A stable identifier made from `parts`, in UUID form (v4 layout bits set), so the same image gives the
/// same document.
pub(crate) fn stable_uuid(parts: &[&str]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(e: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem: e,
            name: name.into(),
            version: version.into(),
            arch: None,
            license: None,
            homepage: None,
            supplier: None,
            source: None,
            found_in: String::new(),
            namespace: None,
        }
    }

    #[test]
    fn purls_follow_the_spec_per_type() {
        let mut d = pkg(Ecosystem::Deb, "libc6", "2.36-9+deb12u4");
        d.namespace = Some("debian".into());
        d.arch = Some("amd64".into());
        d.source = Some("glibc".into());
        assert_eq!(
            d.purl(),
            "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&upstream=glibc"
        );
        let mut e = pkg(Ecosystem::Deb, "epoch", "1:2.0");
        e.namespace = Some("debian".into());
        assert_eq!(e.purl(), "pkg:deb/debian/epoch@1%3A2.0");
        assert_eq!(
            pkg(Ecosystem::Npm, "@types/node", "20.1.0").purl(),
            "pkg:npm/%40types/node@20.1.0"
        );
        assert_eq!(
            pkg(Ecosystem::Npm, "left-pad", "1.3.0").purl(),
            "pkg:npm/left-pad@1.3.0"
        );
        assert_eq!(
            pkg(Ecosystem::Python, "Typing_Extensions", "4.9.0").purl(),
            "pkg:pypi/typing-extensions@4.9.0"
        );
        assert_eq!(
            pkg(Ecosystem::Cargo, "serde", "1.0.0").purl(),
            "pkg:cargo/serde@1.0.0"
        );
    }

    #[test]
    fn stable_uuid_is_stable_and_shaped() {
        let a = stable_uuid(&["x", "y"]);
        assert_eq!(a, stable_uuid(&["x", "y"]));
        assert_ne!(a, stable_uuid(&["xy", ""]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
