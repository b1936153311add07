//! The image model: descriptors, manifests, indexes (OCI and Docker schema2 media types), and [`Image`], a
//! manifest resolved together with its config.
//!
//! These are lamina's own serde types rather than oci-spec's: oci-spec rejects or rewrites some fields other
//! tools write and its maps serialize in random order. Every type keeps unknown fields (`extra`), and bytes
//! lamina writes always come from [`canonical_json`] so the same image always gets the same digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Extra, ImageConfig};
pub use crate::descriptor::{Descriptor, REF_NAME_ANNOTATION};
use crate::digest::Digest;
pub use crate::platform::Platform;

/// Media types lamina reads and writes.
pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// The empty descriptor's media type (artifact configs, `{}`).
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// Every manifest type lamina accepts, for `Accept` headers.
    pub const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

    /// Layers that registries may not serve (Windows base layers); fetched from `urls` only when asked.
    pub fn is_foreign_layer(mt: &str) -> bool {
        mt.contains("foreign") || mt.contains("nondistributable")
    }

    /// Is this a layer media type lamina can unpack?
    pub fn is_layer(mt: &str) -> bool {
        mt.starts_with("application/vnd.oci.image.layer.")
            || mt.starts_with("application/vnd.docker.image.rootfs.")
    }

    /// The OCI equivalent of a Docker layer media type (OCI types are returned unchanged).
    pub fn to_oci_layer(mt: &str) -> &str {
        match mt {
            DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
            DOCKER_LAYER_TAR => OCI_LAYER_TAR,
            DOCKER_FOREIGN_LAYER => OCI_LAYER_NONDIST_GZIP,
            other => other,
        }
    }

    /// The Docker equivalent of an OCI layer media type, for docker-format archives and manifests.
    pub fn to_docker_layer(mt: &str) -> &str {
        match mt {
            OCI_LAYER_GZIP => DOCKER_LAYER_GZIP,
            OCI_LAYER_TAR => DOCKER_LAYER_TAR,
            OCI_LAYER_NONDIST_GZIP => DOCKER_FOREIGN_LAYER,
            other => other,
        }
    }
}

/// Largest manifest or index lamina reads (registries use the same bound).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest config blob lamina reads.
pub const MAX_CONFIG_SIZE: u64 = 4 << 20;

/// An image manifest (OCI or Docker schema2: the JSON shape is the same).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image index / Docker manifest list, and also the layout's index.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
            extra: Extra::new(),
        }
    }
}

/// What a manifest-ish blob turned out to be.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // parsed once per read, never stored in bulk
pub enum Parsed {
    Manifest(Manifest),
    Index(Index),
}

/// Why a manifest or index could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{digest} is not valid JSON for a manifest or index")]
    Json {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{digest} is a Docker schema 1 manifest ({media_type}); schema 1 is deprecated and not supported, re-push the image with a current tool"
    )]
    Schema1 { digest: Digest, media_type: String },
    #[error("{digest} has unsupported media type {media_type:?}")]
    UnsupportedMediaType { digest: Digest, media_type: String },
    #[error("{digest} has unsupported schemaVersion {version}")]
    SchemaVersion { digest: Digest, version: u64 },
}

/// Parses a manifest or index. `media_type` is what the referrer (descriptor, registry header) said, if
/// anything; the blob's own `mediaType` field wins when present, else the shape decides (`manifests` vs
/// `config`).
pub fn parse_manifest(
    digest: &Digest,
    bytes: &[u8],
    media_type: Option<&str>,
) -> Result<Parsed, ManifestError> {
    let json_err = |source| ManifestError::Json {
        digest: digest.clone(),
        source,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(json_err)?;
    let own = v.get("mediaType").and_then(Value::as_str);
    let mt = own.or(media_type).map(str::to_owned);
    let version = v.get("schemaVersion").and_then(Value::as_u64).unwrap_or(0);
    if version == 1
        || matches!(
            mt.as_deref(),
            Some(media::DOCKER_SCHEMA1) | Some(media::DOCKER_SCHEMA1_SIGNED)
        )
    {
        return Err(ManifestError::Schema1 {
            digest: digest.clone(),
            media_type: mt.unwrap_or_else(|| media::DOCKER_SCHEMA1.to_owned()),
        });
    }
    if version != 2 {
        return Err(ManifestError::SchemaVersion {
            digest: digest.clone(),
            version,
        });
    }
    let is_index = match mt.as_deref() {
        Some(media::OCI_INDEX) | Some(media::DOCKER_MANIFEST_LIST) => true,
        Some(media::OCI_MANIFEST) | Some(media::DOCKER_MANIFEST) => false,
        Some(other) if !other.is_empty() && (own.is_some() || media_type != Some(other)) => {
            return Err(ManifestError::UnsupportedMediaType {
                digest: digest.clone(),
                media_type: other.to_owned(),
            });
        }
        _ => v.get("manifests").is_some() && v.get("config").is_none(),
    };
    if is_index {
        serde_json::from_value(v).map(Parsed::Index).map_err(json_err)
    } else {
        serde_json::from_value(v).map(Parsed::Manifest).map_err(json_err)
    }
}

/// Serializes with every object's keys sorted and no whitespace, so equal values give equal bytes.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    fn sort(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    // Our types serialize infallibly (string keys, no non-finite floats).
    let v = serde_json::to_value(value).expect("serializing an image type to JSON cannot fail");
    serde_json::to_vec(&sort(v)).expect("serializing a JSON value cannot fail")
}

/// One layer of an image: the blob and the uncompressed tar it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDesc {
    /// Digest of the (usually compressed) blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    pub media_type: String,
}

/// A single-platform image: its manifest and config, read from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    /// The manifest's media type (OCI or Docker schema2).
    pub manifest_media_type: String,
    pub manifest: Manifest,
    /// The image ID, as docker shows it.
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Bottom layer first.
    pub layers: Vec<LayerDesc>,
}

impl Image {
    /// The descriptor that points at this image's manifest (what a tag records).
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(
            self.manifest_media_type.clone(),
            self.manifest_digest.clone(),
            self.manifest_size,
        );
        if !self.config.os.is_empty() {
            d.platform = Some(self.config.platform());
        }
        d
    }

    /// Sum of the layer blob sizes (the compressed size `images` shows).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum::<u64>() + self.manifest.config.size
    }

    /// The diff_ids, bottom first (the config's `rootfs.diff_ids`).
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &[u8]) -> Digest {
        Digest::sha256_of(s)
    }

    #[test]
    fn parses_docker_and_oci_manifests() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":7,"digest":"{}"}},
               "layers":[{{"mediaType":"{}","size":9,"digest":"{}"}}]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            d(b"c"),
            media::DOCKER_LAYER_GZIP,
            d(b"l")
        );
        let Parsed::Manifest(m) = parse_manifest(&d(b"x"), docker.as_bytes(), None).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers[0].size, 9);
        assert_eq!(m.config.digest, d(b"c"));

        // An OCI manifest without mediaType is recognised by shape.
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":7,"digest":"{}"}},"layers":[],"x-extra":1}}"#,
            media::OCI_CONFIG,
            d(b"c")
        );
        let Parsed::Manifest(m) = parse_manifest(&d(b"y"), oci.as_bytes(), None).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.extra["x-extra"], 1);
        assert!(canonical_json(&m).windows(7).any(|w| w == b"x-extra"));
    }

    #[test]
    fn parses_index_and_rejects_schema1() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":1,"digest":"{}",
               "platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
            media::DOCKER_MANIFEST_LIST,
            media::DOCKER_MANIFEST,
            d(b"m")
        );
        let Parsed::Index(i) = parse_manifest(&d(b"i"), idx.as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().variant.as_deref(),
            Some("v8")
        );

        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let e = parse_manifest(&d(s1), s1, None).unwrap_err();
        assert!(matches!(e, ManifestError::Schema1 { .. }), "{e}");
        let e = parse_manifest(&d(b"z"), b"{not json", None).unwrap_err();
        assert!(matches!(e, ManifestError::Json { .. }), "{e}");
        let weird = br#"{"schemaVersion":2,"mediaType":"text/plain","config":{}}"#;
        let e = parse_manifest(&d(weird), weird, None).unwrap_err();
        assert!(e.to_string().contains("text/plain"), "{e}");
    }

    #[test]
    fn canonical_sorts_nested_keys() {
        let v = serde_json::json!({"b": {"z": 1, "a": [{"y": 1, "x": 2}]}, "a": "s"});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":"s","b":{"a":[{"x":2,"y":1}],"z":1}}"#
        );
    }
}
