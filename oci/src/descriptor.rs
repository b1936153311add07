//! [`Descriptor`]: the one content descriptor, for manifests' config and layers, index entries, tags in
//! index.json and registry walks alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Extra;
use crate::digest::Digest;
use crate::platform::Platform;

/// The OCI annotation that names a tag in an image layout's index.json.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A content descriptor (OCI and Docker schema2 share the shape). Unknown fields are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Where a foreign (non-distributable) layer may be fetched from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
            extra: Extra::new(),
        }
    }

    /// The tag name this index entry carries, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME_ANNOTATION).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let d = Digest::sha256_of(b"x");
        let json = format!(
            r#"{{"mediaType":"m","digest":"{d}","size":3,"urls":["https://u"],"annotations":{{"a":"b"}},"platform":{{"architecture":"arm","os":"linux","variant":"v7"}},"artifactType":"t","x-other":true}}"#
        );
        let desc: Descriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(desc.urls, ["https://u"]);
        assert_eq!(desc.platform.as_ref().unwrap().to_string(), "linux/arm/v7");
        assert_eq!(desc.artifact_type.as_deref(), Some("t"));
        assert_eq!(desc.extra["x-other"], true);
        assert_eq!(serde_json::to_string(&desc).unwrap(), json);
        let bare = serde_json::to_string(&Descriptor::new("m", d.clone(), 1)).unwrap();
        assert_eq!(bare, format!(r#"{{"mediaType":"m","digest":"{d}","size":1}}"#));
    }
}
