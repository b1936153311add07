//! The parts of manifests the registry client needs: descriptors, image manifests, indexes, platforms.
//!
//! Parsing is tolerant (unknown fields ignored) because the manifest bytes are kept verbatim: we never
//! re-serialize what we pulled, so digests stay the same from registry to store to registry.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::RegistryError;
use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Every manifest type we accept, for `Accept` headers.
pub const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Layers that registries may not serve (Windows base layers); fetched from `urls` only when asked.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type.contains("foreign") || media_type.contains("nondistributable")
}

/// A content descriptor (OCI and Docker schema2 share the shape).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            platform: None,
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }
}

/// An image manifest or an index, as far as the client needs to walk it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// A parsed manifest.
#[allow(clippy::large_enum_variant)] // one per pull, never in bulk
#[derive(Clone, Debug)]
pub enum Manifest {
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
}

impl Manifest {
    /// Parses manifest bytes; `content_type` (from the registry or a descriptor) wins when the body
    /// carries no `mediaType` (OCI makes it optional).
    pub fn parse(bytes: &[u8], content_type: Option<&str>, reference: &str) -> Result<Self, RegistryError> {
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|source| RegistryError::InvalidManifest {
                reference: reference.to_owned(),
                source,
            })?;
        let media_type = raw
            .media_type
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_owned()))
            .unwrap_or_else(|| {
                if raw.manifests.is_some() {
                    OCI_INDEX.to_owned()
                } else {
                    OCI_MANIFEST.to_owned()
                }
            });
        match (media_type.as_str(), raw) {
            (
                OCI_INDEX | DOCKER_LIST,
                RawManifest {
                    manifests: Some(manifests),
                    ..
                },
            ) => Ok(Manifest::Index {
                media_type,
                manifests,
            }),
            (
                OCI_MANIFEST | DOCKER_MANIFEST,
                RawManifest {
                    config: Some(config),
                    layers,
                    ..
                },
            ) => Ok(Manifest::Image {
                media_type,
                config,
                layers: layers.unwrap_or_default(),
            }),
            (_, _) => Err(RegistryError::UnsupportedMediaType {
                reference: reference.to_owned(),
                media_type,
            }),
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image { media_type, .. } | Manifest::Index { media_type, .. } => media_type,
        }
    }

    /// Config and layers (config first) of an image manifest; nothing for an index.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image { config, layers, .. } => std::iter::once(config).chain(layers).collect(),
            Manifest::Index { .. } => Vec::new(),
        }
    }
}

/// `os/arch[/variant]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in Go's naming.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "arm" => "arm",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
            os_version: None,
        }
    }

    /// Does an index entry's platform satisfy this (requested) one? arm64's implied variant is v8.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        let norm = |v: Option<&str>| -> Option<String> {
            match (self.architecture.as_str(), v) {
                ("arm64", None) => Some("v8".into()),
                (_, v) => v.map(str::to_owned),
            }
        };
        match &self.variant {
            None => true,
            Some(v) => norm(Some(v)) == norm(candidate.variant.as_deref()),
        }
    }

    /// Picks the entry of an index for this platform; attestation manifests (`unknown/unknown`) never match.
    pub fn select<'a>(
        &self,
        manifests: &'a [Descriptor],
        reference: &str,
    ) -> Result<&'a Descriptor, RegistryError> {
        let exact = manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_some_and(|p| self.matches(p)))
            // Prefer the entry whose variant matches exactly when none was requested (amd64 vs amd64/v2 …).
            .min_by_key(|d| d.platform.as_ref().and_then(|p| p.variant.clone()).is_some());
        exact.ok_or_else(|| RegistryError::NoMatchingPlatform {
            reference: reference.to_owned(),
            platform: self.to_string(),
            available: manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
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
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || RegistryError::BadPlatform(s.to_owned());
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some((*v).to_owned())),
            _ => return Err(bad()),
        };
        if os.is_empty() || arch.is_empty() || variant.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(Platform {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant,
            os_version: None,
        })
    }
}

/// The config fields the client reads: diff ids, to hand layers to the unpacker with their identities.
#[derive(Debug, Default, Deserialize)]
pub struct ConfigRootfs {
    #[serde(default)]
    pub rootfs: Option<Rootfs>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Rootfs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(p: &str) -> Descriptor {
        let mut d = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(p.as_bytes()), 1);
        d.platform = Some(p.parse().unwrap());
        d
    }

    #[test]
    fn selects_platform() {
        let list = vec![desc("linux/amd64"), desc("linux/arm/v7"), desc("linux/arm64/v8")];
        let pick = |p: &str| {
            p.parse::<Platform>()
                .unwrap()
                .select(&list, "x")
                .map(|d| d.platform.clone().unwrap().to_string())
        };
        assert_eq!(pick("linux/arm64").unwrap(), "linux/arm64/v8");
        assert_eq!(pick("linux/arm64/v8").unwrap(), "linux/arm64/v8");
        assert_eq!(pick("linux/arm/v7").unwrap(), "linux/arm/v7");
        assert_eq!(pick("linux/amd64").unwrap(), "linux/amd64");
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert!(err.contains("linux/arm/v7"), "{err}");
        assert!("linux".parse::<Platform>().is_err());
    }

    #[test]
    fn parses_both_schemas() {
        let d = Digest::sha256_of(b"c");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{d}","size":1}},"layers":[{{"mediaType":"y","digest":"{d}","size":2}}]}}"#
        );
        let parsed = Manifest::parse(m.as_bytes(), None, "r").unwrap();
        assert_eq!(parsed.blobs().len(), 2);
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":3}}]}}"#
        );
        assert!(matches!(
            Manifest::parse(idx.as_bytes(), None, "r").unwrap(),
            Manifest::Index { .. }
        ));
        let v1 =
            br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(matches!(
            Manifest::parse(v1, None, "r"),
            Err(RegistryError::UnsupportedMediaType { .. })
        ));
    }
}
