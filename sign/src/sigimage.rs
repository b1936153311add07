//! The signature image cosign keeps next to a signed image, at tag `sha256-<hex>.sig`.

use serde_json::{Value, json};

use lamina_store::Digest;
use lamina_store::image::media;

use super::SignError;

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// `sha256:abc…` → `sha256-abc….sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.to_string().replacen(':', "-", 1))
}

/// One signature: the payload blob and the base64 ASN.1 signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLayer {
    pub digest: Digest,
    pub size: u64,
    pub signature: String,
}

/// The signatures stored for one image.
#[derive(Clone, Debug, Default)]
pub struct SignatureImage {
    pub layers: Vec<SignatureLayer>,
}

impl SignatureImage {
    /// Reads the simple-signing layers of an existing signature manifest; other layers are ignored.
    pub fn parse(manifest: &[u8]) -> Result<SignatureImage, SignError> {
        let v: Value = serde_json::from_slice(manifest).map_err(SignError::Manifest)?;
        let layers = v["layers"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .filter(|l| l["mediaType"] == SIMPLE_SIGNING_MEDIA_TYPE)
                    .filter_map(|l| {
                        Some(SignatureLayer {
                            digest: l["digest"].as_str()?.parse().ok()?,
                            size: l["size"].as_u64()?,
                            signature: l["annotations"][SIGNATURE_ANNOTATION].as_str()?.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(SignatureImage { layers })
    }

    /// Adds a signature unless the same payload is already signed with the same signature.
    pub fn add(&mut self, layer: SignatureLayer) {
        if !self.layers.contains(&layer) {
            self.layers.push(layer);
        }
    }

    /// The config blob: cosign's shape, with the payload digests as diff_ids and a zero time, so the same
    /// signatures give the same image.
    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| l.digest.to_string()).collect();
        serde_json::to_vec(&json!({
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        }))
        .unwrap_or_default()
    }

    /// The manifest, given the config blob [`Self::config`] made.
    pub fn manifest(&self, config: &[u8]) -> Vec<u8> {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                json!({
                    "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                    "size": l.size,
                    "digest": l.digest.to_string(),
                    "annotations": {SIGNATURE_ANNOTATION: l.signature},
                })
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {
                "mediaType": media::OCI_CONFIG,
                "size": config.len(),
                "digest": Digest::sha256_of(config).to_string(),
            },
            "layers": layers,
        }))
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_dedups() {
        let d = Digest::sha256_of(b"payload");
        let mut s = SignatureImage::default();
        let l = SignatureLayer {
            digest: d.clone(),
            size: 7,
            signature: "MEUC".into(),
        };
        s.add(l.clone());
        s.add(l.clone());
        assert_eq!(s.layers.len(), 1);
        let config = s.config();
        let back = SignatureImage::parse(&s.manifest(&config)).unwrap();
        assert_eq!(back.layers, [l]);
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }
}
