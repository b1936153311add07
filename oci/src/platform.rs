//! [`Platform`]: the one os/architecture/variant type, used by index entries, pulls and builds.
//!
//! Fields and JSON are the OCI image spec's. Strings people type (`--platform`, `FROM --platform`) go through
//! [`Platform::parse`], which normalises the way containerd's `platforms.Normalize` does (`aarch64` → `arm64`,
//! `armhf` → `arm/v7`, a default variant dropped), so `linux/arm64/v8` and `linux/aarch64` are the same
//! platform everywhere. What an index or config says is kept as written; [`Platform::matches`] normalises both
//! sides before comparing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::Extra;

/// The platform an image, an index entry or a build is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields the spec doesn't name, kept for round trips.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a string is not a platform.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {input:?}: expected os/arch[/variant] or arch, each part of [A-Za-z0-9_.-]")]
pub struct ParsePlatformError {
    pub input: String,
}

/// The OCI name (and implied-by-nothing variant) of a Rust target architecture. The one host mapping.
fn oci_arch(rust_arch: &str, little_endian: bool) -> (&str, Option<&'static str>) {
    match rust_arch {
        "x86_64" => ("amd64", None),
        // arm64's default variant v8 is implied, not written (as containerd normalises).
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" if little_endian => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "loongarch64" => ("loong64", None),
        "mips64" if little_endian => ("mips64le", None),
        "mips64" => ("mips64", None),
        // s390x, riscv64 and others are spelled the same in Rust and OCI.
        other => (other, None),
    }
}

/// containerd's normalisation of an architecture and variant (both lowercased; `None` for no variant).
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase).filter(|v| !v.is_empty());
    let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
        ("i386" | "i686", _) => ("386", None),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v.filter(|v| *v != "v1")),
        ("aarch64" | "arm64", Some("8" | "v8")) | ("aarch64" | "arm64", None) => ("arm64", None),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", Some("v7")),
        ("armel", _) => ("arm", Some("v6")),
        ("arm", None | Some("7")) => ("arm", Some("v7")),
        ("arm", Some("5")) => ("arm", Some("v5")),
        ("arm", Some("6")) => ("arm", Some("v6")),
        ("arm", Some("8")) => ("arm", Some("v8")),
        (a, v) => (a, v),
    };
    (arch.to_owned(), variant.map(str::to_owned))
}

/// The variant an architecture has when none is written, for comparing (never written out).
fn implied_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        "amd64" => Some("v1"),
        _ => None,
    }
}

impl Platform {
    /// A platform with no os.version, os.features or extra fields.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>, variant: Option<String>) -> Self {
        Platform {
            architecture: architecture.into(),
            os: os.into(),
            os_version: None,
            os_features: None,
            variant,
            extra: Extra::new(),
        }
    }

    /// The machine lamina was built for, in OCI terms (linux, as lamina runs only there).
    pub fn host() -> Self {
        let (arch, variant) = oci_arch(std::env::consts::ARCH, cfg!(target_endian = "little"));
        Platform::new("linux", arch, variant.map(str::to_owned))
    }

    /// Parses `os/arch[/variant]`, or a bare `arch` (linux assumed), normalised as containerd does.
    pub fn parse(s: &str) -> Result<Self, ParsePlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        if parts.len() > 3 || !parts.iter().all(valid) {
            return Err(ParsePlatformError {
                input: s.chars().take(200).collect(),
            });
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some(*v)),
            _ => unreachable!("checked: one to three parts"),
        };
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_owned(),
            o => o.to_owned(),
        };
        let (arch, variant) = normalize_arch(arch, variant);
        Ok(Platform::new(os, arch, variant))
    }

    /// This platform normalised (os lowercased, arch and variant as [`Platform::parse`] makes them).
    pub fn normalized(&self) -> Self {
        let (architecture, variant) = normalize_arch(&self.architecture, self.variant.as_deref());
        Platform {
            architecture,
            os: self.os.to_ascii_lowercase(),
            variant,
            ..self.clone()
        }
    }

    /// Does `candidate` (an index entry, an image's config) satisfy this requested platform? Both are
    /// normalised and a missing variant stands for the architecture's default (arm64 v8, arm v7, amd64 v1);
    /// for architectures without a default, a request without a variant takes any.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let (want, have) = (self.normalized(), candidate.normalized());
        if want.os != have.os || want.architecture != have.architecture {
            return false;
        }
        let implied = implied_variant(&want.architecture);
        if want.variant.is_none() && implied.is_none() {
            return true;
        }
        want.variant.as_deref().or(implied) == have.variant.as_deref().or(implied)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ParsePlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Platform::parse(s).unwrap().to_string()
    }

    #[test]
    fn host_mapping_covers_every_target() {
        let cases = [
            ("x86_64", true, "amd64", None),
            ("aarch64", true, "arm64", None),
            ("arm", true, "arm", Some("v7")),
            ("x86", true, "386", None),
            ("powerpc64", true, "ppc64le", None),
            ("powerpc64", false, "ppc64", None),
            ("s390x", false, "s390x", None),
            ("riscv64", true, "riscv64", None),
            ("loongarch64", true, "loong64", None),
            ("mips64", true, "mips64le", None),
            ("mips64", false, "mips64", None),
        ];
        for (rust, le, arch, variant) in cases {
            assert_eq!(
                oci_arch(rust, le),
                (arch, variant),
                "{rust} (little endian: {le})"
            );
        }
    }

    #[test]
    fn host_is_linux_and_already_normal() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert_eq!(h.normalized(), h, "host() must need no normalisation");
        assert_eq!(Platform::parse(&h.to_string()).unwrap(), h);
    }

    #[test]
    fn parse_normalises_like_containerd() {
        for (input, want) in [
            ("linux/amd64", "linux/amd64"),
            ("amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/i386", "linux/386"),
            ("linux/i686", "linux/386"),
            ("i386", "linux/386"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/aarch64/v8", "linux/arm64"),
            ("linux/arm64/v9", "linux/arm64/v9"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/arm/5", "linux/arm/v5"),
            ("linux/arm/8", "linux/arm/v8"),
            ("LINUX/AMD64", "linux/amd64"),
            ("macos/arm64", "darwin/arm64"),
            ("linux/riscv64", "linux/riscv64"),
            ("linux/loong64", "linux/loong64"),
            ("windows/amd64", "windows/amd64"),
        ] {
            assert_eq!(p(input), want, "{input}");
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "/",
            "linux/",
            "/amd64",
            "linux//v7",
            "a/b/c/d",
            "linux/am d64",
            "linux/$ARCH",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn matches_with_implied_variants() {
        let m = |want: &str, os: &str, arch: &str, variant: Option<&str>| {
            Platform::parse(want)
                .unwrap()
                .matches(&Platform::new(os, arch, variant.map(str::to_owned)))
        };
        assert!(m("linux/arm64", "linux", "arm64", Some("v8")));
        assert!(m("linux/arm64/v8", "linux", "arm64", None));
        assert!(m("linux/aarch64", "linux", "arm64", None));
        assert!(!m("linux/arm64", "linux", "arm64", Some("v9")));
        assert!(m("linux/arm", "linux", "arm", None));
        assert!(m("linux/arm/v7", "linux", "arm", Some("7")));
        assert!(!m("linux/arm/v7", "linux", "arm", Some("v6")));
        assert!(m("linux/arm/v6", "linux", "armel", None));
        assert!(m("linux/amd64", "linux", "amd64", Some("v1")));
        assert!(!m("linux/amd64", "linux", "amd64", Some("v2")));
        assert!(m("linux/amd64/v2", "linux", "amd64", Some("v2")));
        assert!(m("linux/amd64", "linux", "x86_64", None));
        assert!(!m("linux/amd64", "linux", "arm64", None));
        assert!(!m("linux/amd64", "windows", "amd64", None));
        assert!(!m("linux/amd64", "unknown", "unknown", None));
        // No default variant: a request without one takes any; with one, it must be equal.
        assert!(m("linux/ppc64le", "linux", "ppc64le", Some("power9")));
        assert!(!m("linux/riscv64/rva23", "linux", "riscv64", None));
    }

    #[test]
    fn serde_is_oci() {
        let json = r#"{"architecture":"arm64","os":"linux","os.version":"1","os.features":["x"],"variant":"v8","y":1}"#;
        let p: Platform = serde_json::from_str(json).unwrap();
        assert_eq!(p.os_version.as_deref(), Some("1"));
        assert_eq!(p.os_features.as_deref(), Some(&["x".to_owned()][..]));
        assert_eq!(p.extra["y"], 1);
        // Kept as written: normalising is for comparing, not for rewriting what others wrote.
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(serde_json::to_string(&p).unwrap(), json);
        assert_eq!(p.to_string(), "linux/arm64/v8");
    }
}
