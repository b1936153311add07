//! lamina's OCI model: the one definition of each thing the image spec names, shared by the store, the
//! registry client, the builder and the CLI. Pure data and pure functions: no file or network I/O.
//!
//! - [`digest`]: the strict [`Digest`] type, [`Algorithm`], hashing readers/writers (verify while streaming).
//! - [`platform`]: [`Platform`] — host mapping, `os/arch[/variant]` parsing with containerd's normalisation,
//!   matching an index entry against a request.
//! - [`descriptor`]: [`Descriptor`], used by manifests, indexes, index.json tags and the registry alike.
//! - [`image`]: [`Manifest`], [`Index`], media types ([`media`]), [`parse_manifest`], [`canonical_json`],
//!   and [`Image`] (a manifest resolved with its config).
//! - [`config`]: [`ImageConfig`], the config blob as Docker and OCI tools write it.
//!
//! Data flow: bytes from a blob or a registry → [`parse_manifest`] / serde → these types → the caller;
//! bytes lamina writes always come from [`canonical_json`], so equal values get equal digests.

pub mod config;
pub mod descriptor;
pub mod digest;
pub mod image;
pub mod platform;

pub use config::ImageConfig;
pub use descriptor::Descriptor;
pub use digest::{Algorithm, Digest, DigestParseError, HashingReader, HashingWriter};
pub use image::{Image, Index, LayerDesc, Manifest, canonical_json, media, parse_manifest};
pub use platform::{ParsePlatformError, Platform};
