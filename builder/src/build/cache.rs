//! Build cache: step keys and the local cache index under `<store>/cache/build/`.
//!
//! A step's key = sha256 over (parent key, canonical instruction, the ARG/ENV values the step sees, and for
//! COPY/ADD the content digest of exactly the selected files). Keys chain, so a change reruns exactly the
//! steps after it. Records map a key to the layer it produced; the registry engineer exports/imports the
//! same [`CacheRecord`] JSON for `--cache-to/--cache-from`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lamina_store::digest::Hasher;
use lamina_store::{Algorithm, Digest};
use serde::{Deserialize, Serialize};

use super::BuildError;

/// Incrementally builds a cache key; fields are length-prefixed so no two inputs collide.
pub struct KeyBuilder {
    h: Hasher,
}

impl KeyBuilder {
    /// Starts a key under `parent` (the previous step's key, or the base image's identity).
    pub fn new(parent: &Digest) -> KeyBuilder {
        let mut k = KeyBuilder {
            h: Hasher::new(Algorithm::Sha256),
        };
        k.field("v1");
        k.field(&parent.to_string());
        k
    }

    pub fn field(&mut self, s: &str) -> &mut Self {
        self.h.update(format!("{}:", s.len()).as_bytes());
        self.h.update(s.as_bytes());
        self
    }

    /// Name/value pairs (ARGs and ENV seen by the step); sorted by the caller's BTreeMap order.
    pub fn vars<'a>(&mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> &mut Self {
        for (k, v) in vars {
            self.field(k);
            self.field(v);
        }
        self.field("end-vars")
    }

    pub fn finish(self) -> Digest {
        self.h.finish()
    }
}

/// The key of a base: the image's config digest, `scratch`, or a stage's final key.
pub fn base_key(what: &str) -> Digest {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(b"lamina-base-v1\0");
    h.update(what.as_bytes());
    h.finish()
}

/// A layer as the image manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

/// One cached step: key → the layer it produced (None for steps that add no layer content, e.g. a RUN
/// that changed nothing still produces an empty layer, as docker does, so this is rare), and the local
/// snapshot dir id holding its unpacked files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: Digest,
    pub layer: CachedLayer,
    /// Snapshot id (dir name under `snapshots/`) with the layer's files as an overlay lower dir; may be
    /// gone (pruned / imported cache), then the layer blob is unpacked again.
    pub snapshot: Option<String>,
    /// The history `created_by` of the step, for display and export.
    pub created_by: String,
    /// Unix seconds when the record was made.
    pub created: i64,
}

/// The local cache index: one small JSON file per key under `<store>/cache/build/<hex>`.
pub struct CacheIndex {
    dir: PathBuf,
}

impl CacheIndex {
    pub fn open(cache_dir: &Path) -> Result<CacheIndex, BuildError> {
        let dir = cache_dir.join("build");
        fs::create_dir_all(&dir).map_err(|source| BuildError::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(CacheIndex { dir })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(key.hex())
    }

    pub fn get(&self, key: &Digest) -> Option<CacheRecord> {
        let data = fs::read(self.path(key)).ok()?;
        let rec: CacheRecord = serde_json::from_slice(&data).ok()?;
        (rec.key == *key).then_some(rec)
    }

    pub fn put(&self, rec: &CacheRecord) -> Result<(), BuildError> {
        let path = self.path(&rec.key);
        let err = |source| BuildError::Cache {
            path: path.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(err)?;
        let data = serde_json::to_vec(rec).map_err(|e| err(std::io::Error::other(e)))?;
        tmp.write_all(&data).map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(())
    }

    /// Every record (for export and prune).
    pub fn list(&self) -> Vec<CacheRecord> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<CacheRecord> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|d| serde_json::from_slice(&d).ok())
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    pub fn remove(&self, key: &Digest) {
        let _ = fs::remove_file(self.path(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_separate_fields() {
        let base = base_key("scratch");
        let mut a = KeyBuilder::new(&base);
        a.field("RUN echo a").vars([("X", "1")]);
        let a = a.finish();
        let mut b = KeyBuilder::new(&base);
        b.field("RUN echo a").vars([("X", "2")]);
        assert_ne!(a, b.finish());
        let mut c = KeyBuilder::new(&base);
        c.field("RUN echo ").field("a").vars([("X", "1")]);
        assert_ne!(a, c.finish(), "field boundaries matter");
        let mut d = KeyBuilder::new(&a);
        d.field("RUN echo a").vars([("X", "1")]);
        assert_ne!(a, d.finish(), "parent matters");
    }

    #[test]
    fn index_roundtrip() {
        let t = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(t.path()).unwrap();
        let key = base_key("k");
        assert!(idx.get(&key).is_none());
        let rec = CacheRecord {
            key: key.clone(),
            layer: CachedLayer {
                digest: Digest::sha256_of(b"blob"),
                diff_id: Digest::sha256_of(b"tar"),
                size: 4,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            },
            snapshot: Some("abc".into()),
            created_by: "RUN x".into(),
            created: 0,
        };
        idx.put(&rec).unwrap();
        assert_eq!(idx.get(&key).unwrap(), rec);
        assert_eq!(idx.list().len(), 1);
    }
}
