//! The simple-signing payload cosign signs.

use serde::{Deserialize, Serialize};

use super::SignError;

const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What a signature says: this manifest digest, in this repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    /// Extra claims (annotations); cosign writes `null` when there are none.
    pub optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageClaim,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// The payload for `digest` in `repository` (`registry/path`, no tag).
    pub fn new(repository: &str, digest: &str) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_owned(),
                },
                image: ImageClaim {
                    docker_manifest_digest: digest.to_owned(),
                },
                kind: SIGNATURE_TYPE.to_owned(),
            },
            optional: None,
        }
    }

    /// The bytes to sign and store (compact JSON, fields in cosign's order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Payload, SignError> {
        let p: Payload = serde_json::from_slice(bytes).map_err(SignError::Payload)?;
        Ok(p)
    }

    /// Whether this is a cosign image signature claim for `digest`.
    pub fn claims(&self, digest: &str) -> bool {
        self.critical.kind == SIGNATURE_TYPE && self.critical.image.docker_manifest_digest == digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_cosigns_shape() {
        let p = Payload::new("127.0.0.1:5000/app", "sha256:abc");
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":null}"#
        );
        let back = Payload::parse(&p.to_bytes()).unwrap();
        assert!(back.claims("sha256:abc"));
        assert!(!back.claims("sha256:abd"));
    }
}
