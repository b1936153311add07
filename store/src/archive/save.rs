//! `save`: images → one tar, as an OCI image layout (`oci-archive:`, umoci, `docker load` ≥ 25) or a
//! docker-archive (`docker load`, `skopeo copy docker-archive:`).
//!
//! Blobs are streamed from the store into the tar. docker-archive layers must be uncompressed tars whose
//! sha256 is the diff_id; a tar header needs the size first, so a compressed layer is decompressed twice:
//! once to count, once to write (and checked against its diff_id on the way).

use std::collections::BTreeSet;
use std::io::{self, Read, Write};

use super::ArchiveError;
use crate::digest::{Digest, HashingReader};
use crate::image::{Descriptor, Image, Index, Manifest, REF_NAME_ANNOTATION, canonical_json, media};
use crate::layout::Store;
use crate::reference::Reference;
use crate::validate::decompress;

/// Annotation docker and containerd put on index entries with the full image name.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveFormat {
    Oci,
    Docker,
}

/// One image to save, and the name it is saved under (none when given by ID).
#[derive(Clone, Debug)]
pub struct SaveItem {
    pub image: Image,
    pub reference: Option<Reference>,
}

/// How entries are stamped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Modification time of every archive entry (a build's `SOURCE_DATE_EPOCH`; 0 by default, so the
    /// same images always give the same archive bytes).
    pub mtime: u64,
}

fn header(size: u64, dir: bool, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(if dir { 0 } else { size });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

struct Writer<'a, W: Write> {
    tar: tar::Builder<W>,
    store: &'a Store,
    dirs: BTreeSet<String>,
    written: BTreeSet<String>,
    mtime: u64,
}

impl<W: Write> Writer<'_, W> {
    fn io(&self, op: &'static str) -> impl FnOnce(io::Error) -> ArchiveError {
        let path = self.store.root().to_owned();
        move |source| ArchiveError::Io { op, path, source }
    }

    fn header(&self, size: u64, dir: bool) -> tar::Header {
        header(size, dir, self.mtime)
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        if self.dirs.insert(path.to_owned()) {
            let mut h = self.header(0, true);
            self.tar
                .append_data(&mut h, path, io::empty())
                .map_err(self.io("write archive entry"))?;
        }
        Ok(())
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
        let mut h = self.header(data.len() as u64, false);
        self.tar
            .append_data(&mut h, path, data)
            .map_err(self.io("write archive entry"))
    }

    /// Streams a stored blob into `blobs/<alg>/<hex>` (once per archive).
    fn blob(&mut self, d: &Digest) -> Result<(), ArchiveError> {
        let path = format!("blobs/{}/{}", d.algorithm().as_str(), d.hex());
        if !self.written.insert(path.clone()) {
            return Ok(());
        }
        self.dir("blobs/")?;
        self.dir(&format!("blobs/{}/", d.algorithm().as_str()))?;
        let size = self.store.blobs().size(d)?;
        let f = self.store.blobs().open_blob(d)?;
        let mut h = self.header(size, false);
        self.tar
            .append_data(&mut h, &path, f)
            .map_err(self.io("write blob to archive"))
    }
}

/// Writes the images as an archive to `out`, entries stamped with mtime 0.
pub fn save<W: Write>(
    store: &Store,
    items: &[SaveItem],
    format: SaveFormat,
    out: W,
) -> Result<W, ArchiveError> {
    save_with(store, items, format, out, SaveOptions::default())
}

/// [`save`] with explicit options.
pub fn save_with<W: Write>(
    store: &Store,
    items: &[SaveItem],
    format: SaveFormat,
    out: W,
    opts: SaveOptions,
) -> Result<W, ArchiveError> {
    let mut w = Writer {
        tar: tar::Builder::new(out),
        store,
        dirs: BTreeSet::new(),
        written: BTreeSet::new(),
        mtime: opts.mtime,
    };
    match format {
        SaveFormat::Oci => save_oci(&mut w, items)?,
        SaveFormat::Docker => save_docker(&mut w, items)?,
    }
    let root = store.root().to_owned();
    w.tar.into_inner().map_err(|source| ArchiveError::Io {
        op: "finish archive",
        path: root,
        source,
    })
}

/// A multi-platform image to save: its index, every platform's image, and the one a docker-archive's
/// manifest.json names (the host's).
pub struct IndexItem<'a> {
    pub index: &'a Descriptor,
    pub images: &'a [Image],
    pub primary: &'a Image,
}

/// Writes an archive of a multi-platform image: an OCI layout with the blobs of every image, the index
/// blob that lists them, and one index.json entry for the index under each of `references` (one without
/// a name when there are none). [`SaveFormat::Docker`] adds docker's manifest.json naming the primary
/// image, as `docker save` ≥ 25 writes both: a classic `docker load` takes that image, the containerd
/// image store and OCI tools the whole index.
pub fn save_index_with<W: Write>(
    store: &Store,
    item: &IndexItem<'_>,
    references: &[Reference],
    format: SaveFormat,
    out: W,
    opts: SaveOptions,
) -> Result<W, ArchiveError> {
    let (index, images) = (item.index, item.images);
    let mut w = Writer {
        tar: tar::Builder::new(out),
        store,
        dirs: BTreeSet::new(),
        written: BTreeSet::new(),
        mtime: opts.mtime,
    };
    if format == SaveFormat::Docker {
        let named: Vec<SaveItem> = if references.is_empty() {
            vec![SaveItem {
                image: item.primary.clone(),
                reference: None,
            }]
        } else {
            references
                .iter()
                .map(|r| SaveItem {
                    image: item.primary.clone(),
                    reference: Some(r.clone()),
                })
                .collect()
        };
        save_docker(&mut w, &named)?;
    }
    w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for img in images {
        for l in &img.layers {
            w.blob(&l.digest)?;
        }
        w.blob(&img.config_digest)?;
        w.blob(&img.manifest_digest)?;
    }
    w.blob(&index.digest)?;
    let top = Descriptor::new(media::OCI_INDEX, index.digest.clone(), index.size);
    let mut layout = Index::default();
    if references.is_empty() {
        layout.manifests.push(top.clone());
    }
    for r in references {
        let mut desc = top.clone();
        desc.annotations
            .insert(CONTAINERD_NAME_ANNOTATION.to_owned(), r.to_string());
        if let Some(tag) = r.tag() {
            desc.annotations
                .insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
        }
        layout.manifests.push(desc);
    }
    w.bytes("index.json", &canonical_json(&layout))?;
    let root = store.root().to_owned();
    w.tar.into_inner().map_err(|source| ArchiveError::Io {
        op: "finish archive",
        path: root,
        source,
    })
}

/// The manifest as OCI tools want it: a Docker schema2 manifest is rewritten with OCI media types (the
/// config bytes, hence the image ID, stay the same).
fn oci_manifest(store: &Store, img: &Image) -> Result<Descriptor, ArchiveError> {
    if img.manifest_media_type == media::OCI_MANIFEST {
        return Ok(Descriptor::new(
            media::OCI_MANIFEST,
            img.manifest_digest.clone(),
            img.manifest_size,
        ));
    }
    let mut m: Manifest = img.manifest.clone();
    m.media_type = Some(media::OCI_MANIFEST.to_owned());
    m.config.media_type = media::OCI_CONFIG.to_owned();
    for l in &mut m.layers {
        l.media_type = media::to_oci_layer(&l.media_type).to_owned();
    }
    let (d, n) = store.blobs().put_bytes(&canonical_json(&m))?;
    Ok(Descriptor::new(media::OCI_MANIFEST, d, n))
}

fn save_oci<W: Write>(w: &mut Writer<'_, W>, items: &[SaveItem]) -> Result<(), ArchiveError> {
    w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut index = Index::default();
    for item in items {
        let img = &item.image;
        for l in &img.layers {
            w.blob(&l.digest)?;
        }
        w.blob(&img.config_digest)?;
        let mut desc = oci_manifest(w.store, img)?;
        w.blob(&desc.digest)?;
        if let Some(r) = &item.reference {
            // Like `docker save`: the full name for docker/containerd, the tag as ref.name for umoci/skopeo.
            desc.annotations
                .insert(CONTAINERD_NAME_ANNOTATION.to_owned(), r.to_string());
            if let Some(tag) = r.tag() {
                desc.annotations
                    .insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
            }
        }
        if !index.manifests.contains(&desc) {
            index.manifests.push(desc);
        }
    }
    w.bytes("index.json", &canonical_json(&index))
}

/// The uncompressed size of a stored layer.
fn tar_size(store: &Store, d: &Digest) -> Result<u64, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        op: "decompress layer",
        path: store.blobs().path(d),
        source,
    };
    let f = store.blobs().open_blob(d)?;
    io::copy(&mut decompress(f).map_err(io_err)?, &mut io::sink()).map_err(io_err)
}

/// Passes a decompressed layer through, failing at EOF if it does not hash to the diff_id.
struct VerifyDiffId<R: Read> {
    inner: Option<HashingReader<R>>,
    expected: Digest,
}

impl<R: Read> Read for VerifyDiffId<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let (_, actual, _) = self.inner.take().expect("reader present").finish();
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("layer content hashes to {actual}, not diff_id {}", self.expected),
                ));
            }
        }
        Ok(n)
    }
}

fn save_docker<W: Write>(w: &mut Writer<'_, W>, items: &[SaveItem]) -> Result<(), ArchiveError> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        repo_tags: Vec<String>,
        layers: Vec<String>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    for item in items {
        let img = &item.image;
        let mut layers = Vec::new();
        for l in &img.layers {
            let dir = format!("{}/", l.diff_id.hex());
            let path = format!("{dir}layer.tar");
            layers.push(path.clone());
            if !w.written.insert(path.clone()) {
                continue;
            }
            w.dir(&dir)?;
            let size = if l.digest == l.diff_id {
                w.store.blobs().size(&l.digest)?
            } else {
                tar_size(w.store, &l.digest)?
            };
            let f = w.store.blobs().open_blob(&l.digest)?;
            let plain = decompress(f).map_err(w.io("decompress layer"))?;
            let reader = VerifyDiffId {
                inner: Some(HashingReader::new(plain)),
                expected: l.diff_id.clone(),
            };
            let mut h = w.header(size, false);
            w.tar
                .append_data(&mut h, &path, reader)
                .map_err(w.io("write layer to archive"))?;
        }
        let config = format!("{}.json", img.config_digest.hex());
        if w.written.insert(config.clone()) {
            let size = w.store.blobs().size(&img.config_digest)?;
            let f = w.store.blobs().open_blob(&img.config_digest)?;
            let mut h = w.header(size, false);
            w.tar
                .append_data(&mut h, &config, f)
                .map_err(w.io("write config to archive"))?;
        }
        let tag = item.reference.as_ref().filter(|r| r.tag().is_some()).map(|r| {
            let mut plain = r.clone();
            if r.digest().is_some() {
                plain = r
                    .with_tag(r.tag().unwrap_or("latest"))
                    .unwrap_or_else(|_| r.clone());
            }
            plain.familiar()
        });
        // docker load wants one manifest.json entry per image, with all its names.
        match entries
            .iter_mut()
            .find(|e| e.config == config && e.layers == layers)
        {
            Some(e) => e.repo_tags.extend(tag),
            None => entries.push(Entry {
                config,
                repo_tags: tag.into_iter().collect(),
                layers,
            }),
        }
    }
    let manifest = serde_json::to_vec(&entries).expect("manifest.json serializes");
    w.bytes("manifest.json", &manifest)
}
