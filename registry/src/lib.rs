//! lamina's registry client: pull, push, copy, tags, login — our own distribution calls over reqwest, with
//! our own auth handshake, retries, bounds, verification and streaming (see `client.rs`) — plus the TLS
//! trust shared with `ADD <url>` downloads ([`tls`], [`download`]).
//!
//! It sits above the store (`lamina_store`): pulls stream into its blob store, copies go through its
//! layout and archives. The store's modules are imported below under their old names, so the files moved
//! here from `lamina_store::registry` read as they did (`crate::blob::BlobStore`).
//!
//! Data flow of a pull: [`pull::resolve_manifest`] (size-capped GET, digest-checked, platform picked from
//! an index) → config → layers fetched in parallel by [`RegistryClient::fetch_blob`] (streamed into a
//! [`lamina_store::BlobWriter`] while hashed, resumed with `Range`, committed only when the digest matches).
//! A push walks the other way and writes manifests last ([`push::push`]). [`copy::copy`] streams
//! registry→registry, carrying the image's referrers and cosign signatures along. [`cache`] stores
//! build-cache records as an OCI artifact; [`referrers`] lists and attaches OCI 1.1 referrers.

mod auth;
mod blob_get;
pub mod bounded;
pub mod cache;
pub mod client;
pub mod copy;
pub mod credentials;
pub mod download;
mod error;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod referrers;
mod small;
mod tags;
pub mod tls;
pub mod upload;

use lamina_store::{archive, blob, digest, image, reference};

use std::path::{Path, PathBuf};

pub use client::{RegistryClient, RegistryOptions};
pub use credentials::Credential;
pub use error::RegistryError;
pub use manifest::{Descriptor, Manifest, Platform};
pub use progress::{NoProgress, Outcome, Progress};
pub use upload::{UploadMode, UploadPolicy};

use crate::digest::Digest;

/// Which repositories a blob is known to live in (`cache/blob-sources/<algo>/<hex>`, one
/// `registry/repo` per line), so a push can mount instead of upload.
#[derive(Clone, Debug)]
pub struct BlobSources {
    dir: PathBuf,
}

impl BlobSources {
    pub fn new(store_root: &Path) -> Self {
        BlobSources {
            dir: store_root.join("cache").join("blob-sources"),
        }
    }

    fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.algorithm().as_str()).join(d.hex())
    }

    pub fn list(&self, d: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.path(d))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Best effort: losing this hint only costs a mount.
    pub fn record(&self, d: &Digest, repo_name: &str) {
        let mut known = self.list(d);
        if known.iter().any(|k| k == repo_name) {
            return;
        }
        known.push(repo_name.to_owned());
        let keep = known.len().saturating_sub(16);
        let text: String = known[keep..].iter().map(|k| format!("{k}\n")).collect();
        let path = self.path(d);
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(tmp) = tempfile::NamedTempFile::new_in(dir)
            && std::fs::write(tmp.path(), text).is_ok()
        {
            let _ = tmp.persist(&path);
        }
    }

    /// A repository of `registry` other than `repo` that has the blob.
    pub fn mount_source(&self, d: &Digest, registry: &str, repo: &str) -> Option<String> {
        self.list(d).into_iter().rev().find_map(|name| {
            let (reg, r) = name.split_once('/')?;
            (reg == registry && r != repo).then(|| r.to_owned())
        })
    }
}
