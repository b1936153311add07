//! Build cache: step keys, and the local cache index (kept by the store, `lamina_store::buildcache`).
//!
//! A step's key = sha256 over (parent key, canonical instruction, the ARG/ENV values the step sees, and for
//! COPY/ADD the content digest of exactly the selected files). Keys chain, so a change reruns exactly the
//! steps after it. Records map a key to the layer it produced; the registry engineer exports/imports the
//! same [`CacheRecord`] JSON for `--cache-to/--cache-from`.

use std::path::Path;

use lamina_store::buildcache::BuildCache;
pub use lamina_store::buildcache::{CacheRecord, CachedLayer};
use lamina_store::digest::Hasher;
use lamina_store::{Algorithm, Digest};

use super::BuildError;

/// Incrementally builds a cache key; fields are length-prefixed so no two inputs collide.
pub struct KeyBuilder {
    h: Hasher,
    /// The same fields without the parent: equal for a step whose instruction and inputs are unchanged
    /// while an earlier step changed, which often makes the same layer (a COPY of unchanged files).
    hint: Hasher,
}

impl KeyBuilder {
    /// Starts a key under `parent` (the previous step's key, or the base image's identity).
    pub fn new(parent: &Digest) -> KeyBuilder {
        let mut k = KeyBuilder {
            h: Hasher::new(Algorithm::Sha256),
            hint: Hasher::new(Algorithm::Sha256),
        };
        k.h.update(b"2:v1");
        k.hint.update(b"7:hint-v1");
        let p = parent.to_string();
        k.h.update(format!("{}:", p.len()).as_bytes());
        k.h.update(p.as_bytes());
        k
    }

    pub fn field(&mut self, s: &str) -> &mut Self {
        for h in [&mut self.h, &mut self.hint] {
            h.update(format!("{}:", s.len()).as_bytes());
            h.update(s.as_bytes());
        }
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

    /// The key and the parent-independent hint ([`LayerWriter::spawn`](super::layers::LayerWriter::spawn)).
    pub fn finish_with_hint(self) -> (Digest, Digest) {
        (self.h.finish(), self.hint.finish())
    }
}

/// The key of a base: the image's config digest, `scratch`, or a stage's final key.
pub fn base_key(what: &str) -> Digest {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(b"lamina-base-v1\0");
    h.update(what.as_bytes());
    h.finish()
}

/// The local cache index: the store's build cache records (`lamina_store::buildcache`), which own the
/// on-disk format and the last-use times GC orders by.
pub struct CacheIndex {
    inner: BuildCache,
}

fn store_err(e: lamina_store::StoreError) -> BuildError {
    BuildError::Store { source: Box::new(e) }
}

impl CacheIndex {
    pub fn open(cache_dir: &Path) -> Result<CacheIndex, BuildError> {
        Ok(CacheIndex {
            inner: BuildCache::open(cache_dir).map_err(store_err)?,
        })
    }

    /// The record of `key` (a hit marks it used, for GC).
    pub fn get(&self, key: &Digest) -> Option<CacheRecord> {
        self.inner.get(key)
    }

    pub fn put(&self, rec: &CacheRecord) -> Result<(), BuildError> {
        self.inner.put(rec).map_err(store_err)
    }

    /// Every record (for export).
    pub fn list(&self) -> Vec<CacheRecord> {
        self.inner.list()
    }

    pub fn remove(&self, key: &Digest) {
        self.inner.remove(key)
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
    fn hint_ignores_the_parent_only() {
        let step = |parent: &Digest, cmd: &str| {
            let mut k = KeyBuilder::new(parent);
            k.field(cmd);
            k.finish_with_hint()
        };
        let (p1, p2) = (base_key("a"), base_key("b"));
        let (k1, h1) = step(&p1, "COPY x /");
        let (k2, h2) = step(&p2, "COPY x /");
        assert_ne!(k1, k2);
        assert_eq!(h1, h2, "same step under another parent");
        assert_ne!(h1, step(&p1, "COPY y /").1);
        assert_ne!(h1, k1);
        let mut plain = KeyBuilder::new(&p1);
        plain.field("COPY x /");
        assert_eq!(plain.finish(), k1, "the key is the same with or without the hint");
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
