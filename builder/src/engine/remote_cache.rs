//! `--cache-from` / `--cache-to`: build cache shared through a registry (`type=registry,ref=R`) or a
//! directory (`type=local,src=DIR|dest=DIR`), so a fresh CI runner with an empty store reuses the layers
//! another runner built.
//!
//! Import reads only the cache's record list (a small OCI artifact, see
//! [`lamina_registry::cache`]); a layer blob is fetched when a step's key hits, and only then.
//! Records that lie (a blob whose digest or diff_id doesn't match) are rejected by the blob store's
//! verification and the snapshot unpacker, and the step runs as a miss.

use std::collections::HashMap;
use std::path::PathBuf;

use lamina_registry::cache::{self as rcache, CacheEntry};
use lamina_registry::manifest::Descriptor;
use lamina_registry::{NoProgress, RegistryClient, RegistryError, RegistryOptions};
use lamina_store::{BlobStore, Digest, Reference};

use super::cache::CacheRecord;
use super::{BuildError, layers};

/// Which records `--cache-to` exports: the final image's steps (`min`, the default, as BuildKit's) or
/// every step of every stage the build ran (`max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    Min,
    Max,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheLocation {
    Registry(Reference),
    Local(PathBuf),
}

/// One `--cache-from` or `--cache-to` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSpec {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `ignore-error=true`: a failed export is a warning, not a failed build.
    pub ignore_error: bool,
}

impl std::fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Registry(r) => write!(f, "registry cache {r}"),
            CacheLocation::Local(d) => write!(f, "local cache {}", d.display()),
        }
    }
}

/// A `--cache-from`/`--cache-to` value that doesn't parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid {flag} {value:?}")]
pub struct CacheSpecError {
    pub flag: &'static str,
    pub value: String,
    #[source]
    pub problem: SpecProblem,
}

/// What is wrong with a cache spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecProblem {
    #[error("bad reference")]
    Reference(#[source] lamina_store::ReferenceError),
    #[error("{part:?} is not KEY=VALUE")]
    NotKeyValue { part: String },
    #[error("mode must be min or max")]
    Mode,
    #[error("ignore-error must be true or false")]
    IgnoreError,
    #[error("unknown option {key:?}")]
    UnknownOption { key: String },
    #[error("type=registry needs ref=REFERENCE")]
    NoRef,
    #[error("type=local needs {key}=DIR")]
    NoDir { key: &'static str },
    #[error("unsupported cache type {kind:?} (registry or local)")]
    Type { kind: String },
    #[error("missing type=registry|local")]
    NoType,
}

impl CacheSpec {
    /// Parses `type=registry,ref=R[,mode=min|max]`, `type=local,dest=DIR` (export) or `src=DIR` (import),
    /// or a bare reference (docker's `--cache-from IMAGE` shorthand for a registry cache).
    pub fn parse(s: &str, export: bool) -> Result<CacheSpec, CacheSpecError> {
        let flag = if export { "--cache-to" } else { "--cache-from" };
        let bad = |problem: SpecProblem| CacheSpecError {
            flag,
            value: s.to_string(),
            problem,
        };
        if !s.contains('=') {
            let r = Reference::parse(s).map_err(|e| bad(SpecProblem::Reference(e)))?;
            return Ok(CacheSpec {
                location: CacheLocation::Registry(r),
                mode: CacheMode::Min,
                ignore_error: false,
            });
        }
        let mut kind = None;
        let mut reference = None;
        let mut dir = None;
        let mut mode = CacheMode::Min;
        let mut ignore_error = false;
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                bad(SpecProblem::NotKeyValue {
                    part: part.to_string(),
                })
            })?;
            match k {
                "type" => kind = Some(v),
                "ref" => reference = Some(v),
                "dest" if export => dir = Some(v),
                "src" if !export => dir = Some(v),
                "mode" => {
                    mode = match v {
                        "min" => CacheMode::Min,
                        "max" => CacheMode::Max,
                        _ => return Err(bad(SpecProblem::Mode)),
                    }
                }
                "ignore-error" => {
                    ignore_error = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad(SpecProblem::IgnoreError)),
                    }
                }
                // Options BuildKit accepts that change nothing here.
                "compression" | "compression-level" | "force-compression" | "oci-mediatypes"
                | "image-manifest" | "digest" => {}
                _ => return Err(bad(SpecProblem::UnknownOption { key: k.to_string() })),
            }
        }
        let location = match kind {
            Some("registry") => {
                let r = reference.ok_or_else(|| bad(SpecProblem::NoRef))?;
                CacheLocation::Registry(Reference::parse(r).map_err(|e| bad(SpecProblem::Reference(e)))?)
            }
            Some("local") => {
                let d = dir.ok_or_else(|| {
                    bad(SpecProblem::NoDir {
                        key: if export { "dest" } else { "src" },
                    })
                })?;
                CacheLocation::Local(PathBuf::from(d))
            }
            Some(t) => return Err(bad(SpecProblem::Type { kind: t.to_string() })),
            None => return Err(bad(SpecProblem::NoType)),
        };
        Ok(CacheSpec {
            location,
            mode,
            ignore_error,
        })
    }
}

struct Source {
    location: CacheLocation,
    client: Option<RegistryClient>,
}

/// Records imported with `--cache-from`, keyed by step key; layers fetched on demand.
pub struct RemoteCache {
    /// Set when a registry source was imported (its layers are fetched on it).
    rt: Option<tokio::runtime::Handle>,
    sources: Vec<Source>,
    records: HashMap<Digest, (CacheRecord, Descriptor, usize)>,
}

fn client_for(r: &Reference, opts: &RegistryOptions) -> Result<RegistryClient, RegistryError> {
    RegistryClient::new(r.registry(), opts)
}

impl RemoteCache {
    /// Reads the record lists of every `--cache-from`. A cache that can't be read is a warning (as with
    /// BuildKit: the build goes on without it); the first source listing a key wins.
    pub fn import(
        specs: &[CacheSpec],
        opts: &RegistryOptions,
        blobs: &BlobStore,
        warn: &dyn Fn(String),
        rt: Option<&tokio::runtime::Handle>,
    ) -> Result<RemoteCache, BuildError> {
        let registry_rt = || {
            rt.ok_or(BuildError::NoRuntime {
                what: "--cache-from type=registry",
            })
        };
        let mut sources = Vec::new();
        let mut records = HashMap::new();
        for spec in specs {
            let got = match &spec.location {
                CacheLocation::Registry(r) => registry_rt()?.block_on(async {
                    let c = client_for(r, opts)?;
                    let e = rcache::import(&c, r, blobs).await?;
                    Ok((Some(c), e))
                }),
                CacheLocation::Local(d) => rcache::import_local(d).map(|e| (None, e)),
            };
            let (client, entries) = match got {
                Ok(x) => x,
                Err(e) => {
                    warn(format!(
                        "importing {}: {}",
                        spec.location,
                        layers::error_chain(&e)
                    ));
                    continue;
                }
            };
            let Some(entries) = entries else {
                warn(format!(
                    "{} is empty (no cache exported there yet)",
                    spec.location
                ));
                continue;
            };
            let idx = sources.len();
            let mut n = 0;
            for e in entries {
                let Ok(rec) = serde_json::from_value::<CacheRecord>(e.record) else {
                    continue;
                };
                // A record must describe the blob it ships with; anything else is ignored.
                if rec.layer.digest != e.layer.digest
                    || rec.layer.size != e.layer.size
                    || rec.layer.media_type != e.layer.media_type
                {
                    continue;
                }
                n += 1;
                records.entry(rec.key.clone()).or_insert((rec, e.layer, idx));
            }
            warn(format!("imported {n} cache records from {}", spec.location));
            sources.push(Source {
                location: spec.location.clone(),
                client,
            });
        }
        Ok(RemoteCache {
            rt: rt.cloned(),
            sources,
            records,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The imported record for `key`, with its layer blob now in `blobs` (fetched if missing).
    /// `Err` carries why a listed record could not be used (the caller warns and runs the step).
    pub fn fetch(&self, key: &Digest, blobs: &BlobStore) -> Option<Result<CacheRecord, RemoteLayerError>> {
        let (rec, desc, idx) = self.records.get(key)?;
        if blobs.contains(&desc.digest) {
            return Some(Ok(rec.clone()));
        }
        let src = &self.sources[*idx];
        let r = match (&src.location, &src.client) {
            (CacheLocation::Registry(r), Some(c)) => match &self.rt {
                Some(rt) => rt
                    .block_on(rcache::fetch_layer(c, r, desc, blobs, &NoProgress))
                    .map(|_| ()),
                None => unreachable!("registry sources are imported on a runtime"),
            },
            (CacheLocation::Local(d), _) => rcache::fetch_layer_local(d, desc, blobs),
            (CacheLocation::Registry(_), None) => unreachable!("registry sources always have a client"),
        };
        Some(
            r.map_err(|source| RemoteLayerError::Fetch {
                digest: desc.digest.clone(),
                location: src.location.to_string(),
                source: Box::new(source),
            })
            .and_then(|()| check_media_type(blobs, desc))
            .map(|()| rec.clone()),
        )
    }
}

/// Why an imported record's layer can't be used (the step then runs as a miss).
#[derive(Debug, thiserror::Error)]
pub enum RemoteLayerError {
    #[error("layer {digest} from {location}")]
    Fetch {
        digest: Digest,
        location: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("layer {digest}")]
    Read {
        digest: Digest,
        #[source]
        source: lamina_store::blob::BlobError,
    },
    #[error("layer {digest}: unknown layer media type {media_type:?}")]
    UnknownMediaType { digest: Digest, media_type: String },
    #[error("layer {digest} is {actual} but its record says {media_type:?}")]
    MediaTypeMismatch {
        digest: Digest,
        actual: &'static str,
        media_type: String,
    },
}

/// The record's media type goes into the image manifest as is, so it must say what the blob is: other
/// clients decompress by media type (lamina sniffs, so a lie would go unnoticed here).
fn check_media_type(blobs: &BlobStore, desc: &Descriptor) -> Result<(), RemoteLayerError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let n = blobs
        .open_blob(&desc.digest)
        .and_then(|mut f| {
            f.read(&mut magic).map_err(|e| lamina_store::blob::BlobError::Io {
                op: "read",
                path: blobs.path(&desc.digest),
                source: e,
            })
        })
        .map_err(|source| RemoteLayerError::Read {
            digest: desc.digest.clone(),
            source,
        })?;
    let actual = match &magic[..n] {
        [0x1f, 0x8b, ..] => "gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "zstd",
        _ => "tar",
    };
    let mt = desc.media_type.as_str();
    let claimed = match mt {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => "gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd" => "zstd",
        "application/vnd.oci.image.layer.v1.tar" | "application/vnd.docker.image.rootfs.diff.tar" => "tar",
        _ => {
            return Err(RemoteLayerError::UnknownMediaType {
                digest: desc.digest.clone(),
                media_type: mt.to_string(),
            });
        }
    };
    if claimed != actual {
        return Err(RemoteLayerError::MediaTypeMismatch {
            digest: desc.digest.clone(),
            actual,
            media_type: mt.to_string(),
        });
    }
    Ok(())
}

/// `--cache-to`: writes `records` (with their layer blobs from `blobs`) to every destination; returns
/// what was written where. `max_records`/`min_records` are chosen per destination by its mode.
pub fn export(
    specs: &[CacheSpec],
    min_records: &[CacheRecord],
    max_records: &[CacheRecord],
    opts: &RegistryOptions,
    blobs: &BlobStore,
    warn: &dyn Fn(String),
    rt: Option<&tokio::runtime::Handle>,
) -> Result<Vec<(String, Digest, usize)>, BuildError> {
    let entries = |recs: &[CacheRecord]| -> Vec<CacheEntry> {
        recs.iter()
            .map(|r| CacheEntry {
                record: serde_json::to_value(r).expect("records serialize"),
                layer: Descriptor::new(&r.layer.media_type, r.layer.digest.clone(), r.layer.size),
            })
            .collect()
    };
    let mut out = Vec::new();
    for spec in specs {
        let recs = match spec.mode {
            CacheMode::Min => min_records,
            CacheMode::Max => max_records,
        };
        let list = entries(recs);
        let fail = |e: RegistryError| BuildError::CacheExport {
            target: spec.location.to_string(),
            source: Box::new(e),
        };
        let written = match &spec.location {
            CacheLocation::Registry(r) => {
                let rt = rt.ok_or(BuildError::NoRuntime {
                    what: "--cache-to type=registry",
                })?;
                rt.block_on(async {
                    let c = client_for(r, opts)?;
                    rcache::export(&c, r, blobs, &list, &NoProgress).await
                })
                .map_err(fail)
            }
            CacheLocation::Local(d) => std::fs::create_dir_all(d)
                .map_err(|source| BuildError::CacheDest {
                    path: d.clone(),
                    source,
                })
                .and_then(|()| rcache::export_local(d, blobs, &list).map_err(fail)),
        };
        match written {
            Ok(digest) => out.push((spec.location.to_string(), digest, list.len())),
            Err(e) if spec.ignore_error => warn(format!("{} (ignore-error=true)", layers::error_chain(&e))),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cache_specs() {
        let s = CacheSpec::parse("type=registry,ref=localhost:5000/app:cache,mode=max", true).unwrap();
        assert_eq!(s.mode, CacheMode::Max);
        assert!(matches!(s.location, CacheLocation::Registry(ref r) if r.repository() == "app"));
        let s = CacheSpec::parse("type=local,src=/tmp/c", false).unwrap();
        assert_eq!(s.location, CacheLocation::Local("/tmp/c".into()));
        assert_eq!(s.mode, CacheMode::Min);
        assert!(matches!(
            CacheSpec::parse("localhost:5000/app:cache", false)
                .unwrap()
                .location,
            CacheLocation::Registry(_)
        ));
        for bad in [
            "type=local,src=/x", // src is for --cache-from
            "type=registry",     // no ref
            "type=gha,ref=x",    // unsupported
            "type=registry,ref=a,mode=all",
            "type=local,dest=/x,bogus=1",
        ] {
            let e = CacheSpec::parse(bad, true).unwrap_err().to_string();
            assert!(e.contains("--cache-to") && e.contains(bad), "{e}");
        }
    }
}
