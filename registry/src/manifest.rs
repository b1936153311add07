//! The parts of manifests the registry client needs: descriptors, image manifests, indexes, platforms.
//!
//! Parsing is tolerant (unknown fields ignored) because the manifest bytes are kept verbatim: we never
//! re-serialize what we pulled, so digests stay the same from registry to store to registry.

use serde::Deserialize;

use super::RegistryError;
use crate::digest::Digest;
pub use crate::image::media::{ACCEPT, OCI_EMPTY, is_foreign_layer};
pub use crate::image::media::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST as DOCKER_LIST, OCI_INDEX, OCI_MANIFEST,
};
pub use crate::image::{Descriptor, Platform};

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

/// Picks the entry of an index for `want`; attestation manifests (`unknown/unknown`) never match.
pub fn select_platform<'a>(
    want: &Platform,
    manifests: &'a [Descriptor],
    reference: &str,
) -> Result<&'a Descriptor, RegistryError> {
    manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        // Prefer the entry that writes no variant when several match (riscv64 vs riscv64/rva23 …).
        .min_by_key(|d| d.platform.as_ref().and_then(|p| p.variant.clone()).is_some())
        .ok_or_else(|| RegistryError::NoMatchingPlatform {
            reference: reference.to_owned(),
            platform: want.to_string(),
            available: manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
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
        // As an index writes it: not normalised (`arm64/v8` stays).
        let parts: Vec<&str> = p.split('/').collect();
        d.platform = Some(Platform::new(
            parts[0],
            parts[1],
            parts.get(2).map(|v| v.to_string()),
        ));
        d
    }

    #[test]
    fn selects_platform() {
        let list = vec![desc("linux/amd64"), desc("linux/arm/v7"), desc("linux/arm64/v8")];
        let pick = |p: &str| {
            select_platform(&p.parse::<Platform>().unwrap(), &list, "x")
                .map(|d| d.platform.clone().unwrap().to_string())
        };
        assert_eq!(pick("linux/arm64").unwrap(), "linux/arm64/v8");
        assert_eq!(pick("linux/arm64/v8").unwrap(), "linux/arm64/v8");
        assert_eq!(pick("linux/aarch64").unwrap(), "linux/arm64/v8");
        assert_eq!(pick("linux/arm/v7").unwrap(), "linux/arm/v7");
        assert_eq!(pick("linux/arm").unwrap(), "linux/arm/v7");
        assert!(pick("linux/arm/v6").is_err());
        assert_eq!(pick("linux/amd64").unwrap(), "linux/amd64");
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert!(err.contains("linux/arm/v7"), "{err}");
        assert!("linux/".parse::<Platform>().is_err());
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
