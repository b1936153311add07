//! lamina's inspect: seeing inside images — layer listings, flattened trees, diffs and efficiency analysis.
//!
//! It reads images from the store (`lamina_store`), OCI layouts and archives, or a registry
//! (`lamina_registry`, for remote images); nothing below it depends on it.
//!
//! Data flow: an [`source::ImageView`] (local store, OCI layout, `oci-archive`/`docker-archive` read in place, or
//! a single layer file) hands out decompressed layer streams → [`walk::walk_tar`] walks each stream entry by
//! entry, hashing file content through a fixed buffer, and yields [`walk::LayerEntry`] metadata →
//! [`tree::Tree::apply_layer`] flattens layers with OCI whiteout semantics and reports each layer's
//! [`tree::Change`]s → [`diff`] compares trees, layers and configs; [`analyze`] computes wasted bytes,
//! duplicates and the largest files per layer. Memory is proportional to the number of paths, never to file
//! or layer sizes.

pub mod analyze;
pub mod config;
pub mod diff;
pub mod entry;
pub mod remote;
pub mod source;
pub mod testutil;
pub mod tree;
pub mod walk;

#[cfg(test)]
mod tests;

use lamina_store::{digest, image, layer, reference};

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

pub use entry::{ContentHash, Field, Kind, Meta};
pub use tree::{Change, ChangeKind, Node, RemovedBy, Tree};
pub use walk::{LayerEntry, WalkStats, read_entries, walk_tar};

/// Errors of the inspect module.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading layer {layer}")]
    Tar {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid JSON in {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is not a valid {expected}")]
    Malformed { what: String, expected: &'static str },
    #[error("blob {digest} not found in {location}")]
    BlobMissing { digest: Digest, location: String },
    #[error("image {name:?} not found in {location}")]
    ImageNotFound { name: String, location: String },
    #[error("{name:?} matches several images in {location}: {candidates}")]
    Ambiguous {
        name: String,
        location: String,
        candidates: String,
    },
    #[error("{location} has no manifest for platform {platform}")]
    NoPlatform { location: String, platform: String },
    #[error("unsupported media type {media_type} for {what}")]
    MediaType { media_type: String, what: String },
    #[error("layer index {index} out of range: {image} has {count} layers")]
    LayerIndex {
        image: String,
        index: usize,
        count: usize,
    },
    #[error("reading {reference} from its registry")]
    Registry {
        reference: String,
        #[source]
        source: Box<lamina_registry::RegistryError>,
    },
    #[error("worker thread panicked while reading {what}")]
    Worker { what: String },
}
