//! Snapshots: unpacked layers keyed by chain id, shared by every image with the same layer stack.
//!
//! Layout under the store root:
//!
//! ```text
//! snapshots/<chainid-hex>/   one layer's files (not flattened), with overlayfs whiteouts (char 0:0,
//!                            trusted.overlay.opaque=y): usable directly as an overlay lower dir
//! snapshots/l/<short>        symlink → ../<chainid-hex>; `short` is the first 20 hex digits, so a mount
//!                            made from inside snapshots/ can say lowerdir=l/a:l/b:… and stay under a page
//! snapshots/staging/<tmp>/   unpacks in progress; renamed to their final path only when complete
//! snapshots/<key-hex>/       a build step's output (named by its cache key, or a fresh id when the
//!                            step ran again), recorded in the step's cache record
//! snapshots/<diff_id-hex>    a symlink to the snapshot holding that layer's files (see `alias`), or
//!                            a layer unpacked from an imported build cache
//! ```
//!
//! Every snapshot holds exactly one layer's files, so any snapshot of a layer (whatever its name) can
//! serve any chain that contains that layer.
//!
//! The chain id of the bottom layer is its diff_id; above it, `sha256(parent_chain_id + " " + diff_id)`
//! (OCI image spec), so two images on one base share the base's snapshot dirs.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::blob::BlobStore;
use crate::digest::{Digest, HashingReader};
use crate::layer::LayerError;
use crate::layer::apply::{ApplyOptions, WhiteoutMode, apply_tar};
use crate::layer::read::{TarReader, decompress};
use crate::lease::Lease;

/// Length of the short link names under `snapshots/l/`.
pub const SHORT_LEN: usize = 20;

/// The chain id of a layer on top of `parent` (the chain id of the layers below it).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Chain ids of a whole stack of diff_ids, bottom → top.
pub fn chain_ids<'a>(diff_ids: impl IntoIterator<Item = &'a Digest>) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for d in diff_ids {
        let id = chain_id(out.last(), d);
        out.push(id);
    }
    out
}

/// The snapshot directory of a store.
#[derive(Clone, Debug)]
pub struct Snapshots {
    dir: PathBuf,
    /// Set on a leased handle: every snapshot it creates or hands out is recorded in the lease first, and
    /// its staging dirs live in the lease's own staging dir (see [`crate::lease`]).
    lease: Option<Lease>,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Snapshots {
    /// Opens (creating if needed) `store_root/snapshots` with its `l/` and `staging/` subdirectories.
    pub fn open(store_root: &Path) -> Result<Self, LayerError> {
        let dir = store_root.join("snapshots");
        for d in [dir.join("l"), dir.join("staging")] {
            fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
        }
        Ok(Snapshots { dir, lease: None })
    }

    /// This handle, with everything it creates or uses held by `lease`.
    pub fn leased(mut self, lease: &Lease) -> Self {
        self.lease = Some(lease.clone());
        self
    }

    /// Records `names` in the lease (if any) before they are created or used.
    fn protect(&self, names: &[&Digest]) -> Result<(), LayerError> {
        if let Some(l) = &self.lease {
            for n in names {
                l.protect_snapshot(n.hex())?;
            }
        }
        Ok(())
    }

    /// Holds snapshot `id` (and, for an alias, the snapshot it names) in the lease, if any: for a build
    /// step that reuses a cached snapshot as its lower dir. No-op on an unleased handle.
    pub fn hold(&self, id: &Digest) -> Result<(), LayerError> {
        self.protect(&[id])?;
        if self.lease.is_some()
            && let Ok(target) = fs::read_link(self.path(id))
            && let Some(t) = target
                .to_str()
                .and_then(|t| Digest::new(crate::digest::Algorithm::Sha256, t).ok())
        {
            self.protect(&[&t])?;
        }
        Ok(())
    }

    /// `root/snapshots`: the directory to mount from when using short lower names.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the snapshot for `chain_id` lives (whether or not it exists).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// The short name relative to [`Snapshots::dir`], e.g. `l/0123456789abcdef0123`.
    pub fn short_name(chain_id: &Digest) -> String {
        format!("l/{}", &chain_id.hex()[..SHORT_LEN])
    }

    /// The short link's full path.
    pub fn short_link(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(Self::short_name(chain_id))
    }

    /// A fresh, empty staging directory (0755) on the store's filesystem.
    pub fn new_staging_dir(&self) -> Result<PathBuf, LayerError> {
        let staging = match &self.lease {
            Some(l) => l.staging_dir().to_owned(),
            None => self.dir.join("staging"),
        };
        let dir = tempfile::Builder::new()
            .prefix("snap-")
            .tempdir_in(&staging)
            .map_err(io_err("create staging directory in", &staging))?
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &dir))?;
        Ok(dir)
    }

    /// Moves a complete directory (a staging dir or a finished overlay upper dir on the same filesystem)
    /// to the snapshot path of `chain_id`. If that snapshot already exists (another process won the race),
    /// `dir` is removed and the existing snapshot returned.
    pub fn commit(&self, dir: PathBuf, chain_id: &Digest) -> Result<PathBuf, LayerError> {
        let dest = self.path(chain_id);
        self.protect(&[chain_id])?;
        // An alias (see `alias`) whose target was pruned is in the way of the real thing.
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.file_type().is_symlink()) && !dest.is_dir() {
            fs::remove_file(&dest).map_err(io_err("remove dangling snapshot alias", &dest))?;
        }
        self.ensure_link(chain_id)?;
        match fs::rename(&dir, &dest) {
            Ok(()) => Ok(dest),
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST))
                    && dest.is_dir() =>
            {
                fs::remove_dir_all(&dir).map_err(io_err("remove duplicate snapshot", &dir))?;
                Ok(dest)
            }
            Err(e) => Err(io_err("rename snapshot into place at", &dest)(e)),
        }
    }

    fn ensure_link(&self, chain_id: &Digest) -> Result<(), LayerError> {
        let link = self.short_link(chain_id);
        let target = Path::new("..").join(chain_id.hex());
        match fs::read_link(&link) {
            Ok(t) if t == target => return Ok(()),
            Ok(_) => fs::remove_file(&link).map_err(io_err("replace short link", &link))?,
            Err(_) => {}
        }
        match std::os::unix::fs::symlink(&target, &link) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_err("create short link", &link)(e)),
            _ => Ok(()),
        }
    }

    /// Names snapshot `target` also as `name` (a symlink), unless `name` exists. A build step's snapshot
    /// is named by its cache key (the layer's diff_id is known only after its blob is written); once it
    /// is, the build aliases the diff_id to it. A snapshot holds one layer's files, so whatever the chain,
    /// a layer with that diff_id can use it: `ensure_chain` does, and `lamina run` of a fresh build
    /// unpacks nothing.
    pub fn alias(&self, name: &Digest, target: &Digest) -> Result<(), LayerError> {
        let path = self.path(name);
        self.protect(&[name, target])?;
        if name == target || fs::symlink_metadata(&path).is_ok() {
            return Ok(());
        }
        match std::os::unix::fs::symlink(target.hex(), &path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_err("alias snapshot", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Makes sure every layer of a stack is unpacked; returns the snapshot dirs bottom → top.
    ///
    /// `layers` are (blob digest, diff_id) pairs, bottom first. Missing snapshots are unpacked from the blob
    /// store into staging dirs (whiteouts kept as overlayfs whiteouts), checked against their diff_id and
    /// renamed into place.
    pub fn ensure_chain(
        &self,
        blobs: &BlobStore,
        layers: &[(Digest, Digest)],
    ) -> Result<Vec<PathBuf>, LayerError> {
        let mut parent: Option<Digest> = None;
        let mut out = Vec::with_capacity(layers.len());
        for (digest, diff_id) in layers {
            let id = chain_id(parent.as_ref(), diff_id);
            // Leased before the existence checks, so what they find stays (see lease.rs).
            self.hold(&id)?;
            self.hold(diff_id)?;
            let path = if self.exists(&id) {
                self.ensure_link(&id)?;
                self.path(&id)
            } else if self.exists(diff_id) {
                // The same layer's files, unpacked (or built) for another chain: reuse them.
                self.path(diff_id)
            } else {
                self.unpack(blobs, digest, diff_id, &id)?
            };
            out.push(path);
            parent = Some(id);
        }
        Ok(out)
    }

    /// Makes sure one layer's snapshot exists, given its chain id (computed by the caller from the diff ids
    /// below it). Unlike [`Snapshots::ensure_chain`] it needs no lower layer, so a pull can unpack layers in
    /// parallel, in whatever order their blobs arrive.
    pub fn ensure_layer(
        &self,
        blobs: &BlobStore,
        digest: &Digest,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<PathBuf, LayerError> {
        self.hold(chain_id)?;
        if self.exists(chain_id) {
            self.ensure_link(chain_id)?;
            return Ok(self.path(chain_id));
        }
        self.unpack(blobs, digest, diff_id, chain_id)
    }

    fn unpack(
        &self,
        blobs: &BlobStore,
        digest: &Digest,
        diff_id: &Digest,
        id: &Digest,
    ) -> Result<PathBuf, LayerError> {
        let staging = self.new_staging_dir()?;
        let result = (|| {
            let blob = blobs.open_blob(digest)?;
            let stream = decompress(io::BufReader::with_capacity(256 * 1024, blob))
                .map_err(io_err("read layer blob", &blobs.path(digest)))?;
            let mut tar = TarReader::new(HashingReader::new(stream), ApplyOptions::default().max_file_size);
            let opts = ApplyOptions {
                whiteouts: WhiteoutMode::Overlay,
                ..ApplyOptions::default()
            };
            apply_tar(&mut tar, &staging, &opts)?;
            // The diff_id covers the whole tar, including what follows the end-of-archive marker.
            let mut rest = tar.into_inner();
            io::copy(&mut rest, &mut io::sink()).map_err(io_err("read layer blob", &blobs.path(digest)))?;
            let (_, actual, _) = rest.finish();
            if &actual != diff_id {
                return Err(LayerError::DiffIdMismatch {
                    layer: digest.clone(),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.commit(staging, id),
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                Err(e)
            }
        }
    }

    /// Chain ids of all complete snapshots (for prune).
    pub fn list(&self) -> Result<Vec<Digest>, LayerError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let e = e.map_err(io_err("list", &self.dir))?;
            if let Some(name) = e.file_name().to_str()
                && let Ok(d) = Digest::new(crate::digest::Algorithm::Sha256, name)
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a snapshot and its short link. It is first renamed into staging, so it vanishes atomically.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), LayerError> {
        let path = self.path(chain_id);
        let link = self.short_link(chain_id);
        let _ = fs::remove_file(&link);
        if !path.exists() {
            return Ok(());
        }
        let grave = self.dir.join("staging").join(format!("rm-{}", chain_id.hex()));
        fs::rename(&path, &grave).map_err(io_err("move snapshot out of place", &path))?;
        fs::remove_dir_all(&grave).map_err(io_err("remove snapshot", &grave))
    }

    /// Removes leftovers of interrupted unpacks. Call only while holding the store's exclusive lock.
    pub fn clean_staging(&self) -> Result<u64, LayerError> {
        let staging = self.dir.join("staging");
        let mut n = 0;
        for e in fs::read_dir(&staging).map_err(io_err("list", &staging))? {
            let p = e.map_err(io_err("list", &staging))?.path();
            fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        assert_eq!(chain_id(None, &a), a);
        let ab = chain_id(Some(&a), &b);
        assert_eq!(ab, Digest::sha256_of(format!("{a} {b}").as_bytes()));
        assert_eq!(chain_ids([&a, &b]), vec![a.clone(), ab]);
    }
}
