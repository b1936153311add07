//! [`validate`]: is this image whole and self-consistent? Every producer's tests (build, pull, load, import)
//! run it on what they produce.
//!
//! Checks: manifest, config and every layer blob present; each blob's size equals its descriptor's and its
//! content hashes to its digest; `rootfs.diff_ids` has one entry per layer; media types are ones lamina knows.
//! With `deep`, every layer is also decompressed and its tar hashed against its diff_id.

use std::io::{self, BufRead, BufReader, Read};

use crate::digest::{Digest, HashingReader};
use crate::image::{Descriptor, Image, Parsed, media};
use crate::layout::{Store, StoreError};

/// One thing wrong with an image.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{what} {digest} is missing")]
    Missing { what: &'static str, digest: Digest },
    #[error("{what} {digest} is {actual} bytes, its descriptor says {expected}")]
    Size {
        what: &'static str,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{what} {digest} is corrupt: its content hashes to {actual}")]
    Corrupt {
        what: &'static str,
        digest: Digest,
        actual: Digest,
    },
    #[error("layer {digest} decompresses to a tar with diff_id {actual}, the config says {expected}")]
    DiffId {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} {digest} has unexpected media type {media_type:?}")]
    MediaType {
        what: &'static str,
        digest: Digest,
        media_type: String,
    },
    #[error("cannot read {digest}")]
    Unreadable {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes a stored blob; `Ok(None)` if it is missing.
pub fn hash_blob(store: &Store, digest: &Digest) -> Result<Option<(Digest, u64)>, Problem> {
    let f = match store.blobs().open_blob(digest) {
        Ok(f) => f,
        Err(crate::BlobError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(Problem::Store(e.into())),
    };
    let mut r = HashingReader::with_algorithm(f, digest.algorithm());
    io::copy(&mut r, &mut io::sink()).map_err(|source| Problem::Unreadable {
        digest: digest.clone(),
        source,
    })?;
    let (_, actual, n) = r.finish();
    Ok(Some((actual, n)))
}

fn check_blob(store: &Store, what: &'static str, desc: &Descriptor, problems: &mut Vec<Problem>) -> bool {
    match hash_blob(store, &desc.digest) {
        Ok(None) => problems.push(Problem::Missing {
            what,
            digest: desc.digest.clone(),
        }),
        Ok(Some((actual, n))) => {
            if actual != desc.digest {
                problems.push(Problem::Corrupt {
                    what,
                    digest: desc.digest.clone(),
                    actual,
                });
            } else if n != desc.size {
                problems.push(Problem::Size {
                    what,
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: n,
                });
            } else {
                return true;
            }
        }
        Err(p) => problems.push(p),
    }
    false
}

/// Wraps a layer blob in the decompressor its magic bytes announce (gzip, zstd, or none).
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, reader);
    let head = br.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(br))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(br)?)
    } else {
        Box::new(br)
    })
}

/// The diff_id of a stored layer blob (sha256 of its decompressed tar), streamed.
pub fn layer_diff_id(store: &Store, digest: &Digest) -> Result<Digest, Problem> {
    let unreadable = |source| Problem::Unreadable {
        digest: digest.clone(),
        source,
    };
    let f = store
        .blobs()
        .open_blob(digest)
        .map_err(|e| Problem::Store(e.into()))?;
    let mut r = HashingReader::new(decompress(f).map_err(unreadable)?);
    io::copy(&mut r, &mut io::sink()).map_err(unreadable)?;
    Ok(r.finish().1)
}

/// Checks the image a manifest (or index) digest names; returns every problem found (empty: the image is
/// whole). For an index, every child manifest present in the store is checked.
pub fn validate(store: &Store, manifest: &Digest, deep: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    let size = match store.blobs().size(manifest) {
        Ok(s) => s,
        Err(_) => {
            problems.push(Problem::Missing {
                what: "manifest",
                digest: manifest.clone(),
            });
            return problems;
        }
    };
    let desc = Descriptor::new(media::OCI_MANIFEST, manifest.clone(), size);
    if !check_blob(store, "manifest", &desc, &mut problems) {
        return problems;
    }
    match store.read_manifest(manifest, None) {
        Err(e) => problems.push(e.into()),
        Ok(Parsed::Index(idx)) => {
            for child in idx.manifests {
                if store.blobs().contains(&child.digest) {
                    problems.extend(validate(store, &child.digest, deep));
                }
            }
        }
        Ok(Parsed::Manifest(_)) => match store.load_image(manifest) {
            Err(e) => {
                // Name the config if that is what's missing or broken, then stop: nothing else is readable.
                problems.push(e.into());
            }
            Ok(img) => validate_image(store, &img, deep, &mut problems),
        },
    }
    problems
}

fn validate_image(store: &Store, img: &Image, deep: bool, problems: &mut Vec<Problem>) {
    let cfg = &img.manifest.config;
    if cfg.media_type != media::OCI_CONFIG && cfg.media_type != media::DOCKER_CONFIG {
        problems.push(Problem::MediaType {
            what: "config",
            digest: cfg.digest.clone(),
            media_type: cfg.media_type.clone(),
        });
    }
    check_blob(store, "config", cfg, problems);
    for (desc, layer) in img.manifest.layers.iter().zip(&img.layers) {
        if !media::is_layer(&desc.media_type) {
            problems.push(Problem::MediaType {
                what: "layer",
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
            });
            continue;
        }
        if check_blob(store, "layer", desc, problems) && deep {
            match layer_diff_id(store, &desc.digest) {
                Ok(actual) if actual != layer.diff_id => problems.push(Problem::DiffId {
                    digest: desc.digest.clone(),
                    expected: layer.diff_id.clone(),
                    actual,
                }),
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
    }
}
