//! ECDSA P-256 keys from PEM files.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine as _;

use super::SignError;

/// The DER of the first PEM block in `text` and its label.
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_owned());
            body.clear();
        } else if let Some(l) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if label.as_deref() == Some(l)
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes())
            {
                out.push((l.to_owned(), der));
            }
            label = None;
        } else if label.is_some() && !line.contains(':') {
            body.push_str(line);
        }
    }
    out
}

/// A private key that signs.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

impl SigningKey {
    /// Reads a PEM private key: `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(text: &str, path: &str) -> Result<SigningKey, SignError> {
        let blocks = pem_blocks(text);
        if let Some((label, _)) = blocks.iter().find(|(l, _)| l.contains("ENCRYPTED")) {
            return Err(SignError::UnsupportedKey {
                path: path.to_owned(),
                label: label.clone(),
            });
        }
        let (_, der) = blocks
            .iter()
            .find(|(l, _)| l == "PRIVATE KEY" || l == "EC PRIVATE KEY")
            .ok_or_else(|| SignError::NoPem {
                path: path.to_owned(),
                expected: "PRIVATE KEY or EC PRIVATE KEY",
            })?;
        let pair =
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|_| {
                SignError::BadKey {
                    path: path.to_owned(),
                    what: "private key",
                }
            })?;
        Ok(SigningKey { pair })
    }

    pub fn from_file(path: &std::path::Path) -> Result<SigningKey, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::ReadKey {
            path: path.to_owned(),
            source,
        })?;
        SigningKey::from_pem(&text, &path.display().to_string())
    }

    /// An ASN.1 DER signature of SHA-256(`msg`).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| SignError::Sign)?;
        Ok(sig.as_ref().to_vec())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            key: self.pair.public_key().as_ref().to_vec(),
        }
    }
}

/// A public key that verifies.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    /// An uncompressed point or SubjectPublicKeyInfo DER; the verifier takes either.
    key: Vec<u8>,
}

impl VerifyingKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(text: &str, path: &str) -> Result<VerifyingKey, SignError> {
        let (_, der) = pem_blocks(text)
            .into_iter()
            .find(|(l, _)| l == "PUBLIC KEY")
            .ok_or_else(|| SignError::NoPem {
                path: path.to_owned(),
                expected: "PUBLIC KEY",
            })?;
        let k = VerifyingKey { key: der };
        // Reject keys of another curve or algorithm now, not as a failed verification later.
        if !k.parses() {
            return Err(SignError::BadKey {
                path: path.to_owned(),
                what: "public key",
            });
        }
        Ok(k)
    }

    fn parses(&self) -> bool {
        // aws-lc-rs parses the key inside verify, where a key it can't parse and a bad signature look
        // alike; so check the structure first: SPKI DER naming the prime256v1 curve.
        const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        self.key.windows(P256_OID.len()).any(|w| w == P256_OID)
    }

    pub fn from_file(path: &std::path::Path) -> Result<VerifyingKey, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::ReadKey {
            path: path.to_owned(),
            source,
        })?;
        VerifyingKey::from_pem(&text, &path.display().to_string())
    }

    /// Whether `sig` (ASN.1 DER) is a signature of `msg` by this key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.key)
            .verify(msg, sig)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `openssl ecparam -name prime256v1 -genkey -noout` and `openssl ec -pubout`: test keys,
    // not secrets.
    const SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIDX5474E31dLOCozc4eJnr7MTA+Gr6pVd2R+EnPCCRlooAoGCCqGSM49
AwEHoUQDQgAExwxpy1uuByimd/cIL/5F+V/59YpnRdfHJSrtO2n0hge6MREsnEqM
LteeY54ZCmHPStWcx7ZwH89IpxSf9I7uUA==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let k = SigningKey::from_pem(SEC1, "k.pem").unwrap();
        let v = k.verifying_key();
        let sig = k.sign(b"payload").unwrap();
        assert!(v.verify(b"payload", &sig));
        assert!(!v.verify(b"payloaD", &sig));
        let other = SigningKey::from_pem(&pkcs8_from(&k), "k8.pem");
        assert!(other.is_ok());
    }

    fn pkcs8_from(k: &SigningKey) -> String {
        let der = k.pair.to_pkcs8v1().unwrap();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        )
    }

    #[test]
    fn encrypted_and_missing_keys_are_named() {
        let e = SigningKey::from_pem(
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "cosign.key",
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("cosign.key"), "{e}");
        assert!(e.to_string().contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{e}");
        let e = VerifyingKey::from_pem("nothing", "pub.pem").err().unwrap();
        assert!(e.to_string().contains("pub.pem: no PEM block PUBLIC KEY"), "{e}");
    }
}
