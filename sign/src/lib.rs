//! Image signatures in cosign's format, so `cosign verify --key` accepts what `lamina sign` makes and
//! `lamina verify` accepts what cosign makes with a key pair.
//!
//! - [`Payload`]: the "simple signing" JSON (`critical.image.docker-manifest-digest`, the repository as
//!   `critical.identity.docker-reference`, type `cosign container image signature`).
//! - [`SigningKey`] / [`VerifyingKey`]: ECDSA P-256 with SHA-256, signatures ASN.1 DER, keys as PEM
//!   (PKCS#8 or SEC1 private keys, SubjectPublicKeyInfo public keys — what `openssl` writes).
//! - [`SignatureImage`]: the image stored at tag `sha256-<hex>.sig` next to the signed image: one layer per
//!   signature, the payload as the blob and the base64 signature in the
//!   `dev.cosignproject.cosign/signature` annotation.
//!
//! The signature covers the payload bytes exactly as stored, so a verifier hashes the blob it fetched (its
//! digest checked first), never a re-serialisation.

mod key;
mod payload;
mod sigimage;

pub use key::{SigningKey, VerifyingKey};
pub use payload::Payload;
pub use sigimage::{
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, SignatureImage, SignatureLayer, signature_tag,
};

/// The signature layer for a pushed payload blob.
pub fn sigimage_layer(digest: lamina_store::Digest, size: u64, signature: String) -> SignatureLayer {
    SignatureLayer {
        digest,
        size,
        signature,
    }
}

/// Errors of signing and verification.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("reading key {path}")]
    ReadKey {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM block {expected} found")]
    NoPem { path: String, expected: &'static str },
    #[error(
        "{path}: {label} keys are not supported; give an unencrypted ECDSA P-256 key in PEM (e.g. `openssl ecparam -name prime256v1 -genkey -noout`)"
    )]
    UnsupportedKey { path: String, label: String },
    #[error("{path}: not an ECDSA P-256 {what}")]
    BadKey { path: String, what: &'static str },
    #[error("signing failed")]
    Sign,
    #[error("signature payload is not valid simple-signing JSON")]
    Payload(#[source] serde_json::Error),
    #[error("signature manifest is not valid JSON")]
    Manifest(#[source] serde_json::Error),
}
