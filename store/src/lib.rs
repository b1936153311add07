//! lamina's store: everything that lives on disk under the store root, and the registry client.
//!
//! The OCI model (digests, descriptors, platforms, manifests, indexes, configs) is `lamina_oci`; [`digest`],
//! [`image`] and [`config`] re-export it so `lamina_store::Digest` and friends keep working.
//!
//! - [`reference`]: docker-style image references ([`Reference`]).
//! - [`blob`]: the verify-then-rename blob store ([`BlobStore`], [`BlobWriter`]).
//! - [`layout`]: the store root as an OCI image layout ([`Store`]): tags, image read/write, resolve.
//! - [`lock`]: flock-based store locks shared between lamina processes.
//! - [`lease`]: what live builds and containers use, which prune must keep ([`lease::Lease`]).
//! - [`archive`]: import, save, load.
//! - [`fsck`], [`prune`]: store checking and garbage collection; [`gc`]: GC of the build cache with a
//!   budget (least recently used first); [`df`]: space by kind (`lamina system df`).
//! - [`buildcache`]: the build cache the store owns: step records, cache mounts, context memos.
//! - [`validate`]: checks an image is whole (every producer's tests use it).
//! - [`inspect`]: layer walking, flattened trees, image diff and efficiency analysis.
//! - [`layer`]: directory ⇄ layer tar (deterministic writer, parallel gzip/zstd, in-root applier).
//! - [`image_size`]: image sizes as docker shows them (unpacked layer bytes), memoized per diff_id.
//! - [`snapshot`]: unpacked layers keyed by chain id, shared between images.
//! - [`tls`]: extra CA certificates (config `ca-certs`, `certs.d`), shared by registries and URL downloads.
//! - [`download`]: `ADD <url>` downloads (http/https, proxies, redirects, checksum), streamed to a file.

pub mod archive;
pub mod blob;
pub mod buildcache;
pub mod config;
pub mod df;
pub mod digest;
pub mod download;
pub mod fsck;
pub mod gc;
pub mod image;
pub mod image_size;
pub mod inspect;
pub mod layer;
pub mod layout;
pub mod lease;
pub mod lock;
pub mod prune;
pub mod reference;
pub mod snapshot;
pub mod tls;
pub mod validate;

pub use blob::{BlobError, BlobStore, BlobWriter};
pub use config::ImageConfig;
pub use digest::{Algorithm, Digest, HashingReader, HashingWriter};
pub use image::{Descriptor, Image, LayerDesc, Manifest, Platform, canonical_json};
pub use layout::{ImageRef, Store, StoreError, Tag};
pub use lease::{Lease, LeaseError};
pub use reference::{Reference, ReferenceError};
pub mod registry;
