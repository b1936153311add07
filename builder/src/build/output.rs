//! `--output`: the store (default), an OCI archive, a `docker load`-able archive, a directory, a rootfs tar.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lamina_store::image::Descriptor;
use lamina_store::{Image, Reference, Store};

use super::BuildError;
use super::layers::LayerWriter;

/// Where `--output` sends the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Only the local store (tags).
    Image,
    Oci(PathBuf),
    Docker(PathBuf),
    Local(PathBuf),
    Tar(PathBuf),
}

impl Output {
    /// Parses `type=oci,dest=out.tar` (or the short `dest` alone = local dir, `-`… not supported).
    pub fn parse(s: &str) -> Result<Output, String> {
        let mut kind = None;
        let mut dest = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                Some((k, _)) if ["name", "push", "compression", "oci-mediatypes"].contains(&k) => {}
                Some((k, _)) => return Err(format!("unknown --output key {k:?}")),
                None if kind.is_none() && dest.is_none() => dest = Some(PathBuf::from(part)),
                None => return Err(format!("bad --output part {part:?}")),
            }
        }
        let need =
            |d: Option<PathBuf>, k: &str| d.ok_or_else(|| format!("--output type={k} needs dest=PATH"));
        match kind.as_deref().unwrap_or("local") {
            "image" | "registry" => Ok(Output::Image),
            "oci" => Ok(Output::Oci(need(dest, "oci")?)),
            "docker" => Ok(Output::Docker(need(dest, "docker")?)),
            "local" => Ok(Output::Local(need(dest, "local")?)),
            "tar" => Ok(Output::Tar(need(dest, "tar")?)),
            k => Err(format!(
                "unknown --output type {k:?} (image, oci, docker, local, tar)"
            )),
        }
    }
}

fn oerr(dest: &Path) -> impl Fn(io::Error) -> BuildError + '_ {
    move |e| BuildError::Output {
        dest: dest.to_path_buf(),
        message: e.to_string(),
    }
}

struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> ArchiveWriter<W> {
    fn header(&self, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut h = self.header(data.len() as u64, 0o644);
        self.tar.append_data(&mut h, path, data)
    }

    fn dir(&mut self, path: &str) -> io::Result<()> {
        let mut h = self.header(0, 0o755);
        h.set_entry_type(tar::EntryType::Directory);
        self.tar.append_data(&mut h, path, io::empty())
    }

    fn file(&mut self, path: &str, f: File) -> io::Result<()> {
        let size = f.metadata()?.len();
        let mut h = self.header(size, 0o644);
        self.tar
            .append_data(&mut h, path, io::BufReader::with_capacity(256 * 1024, f))
    }
}

fn blob_file(store: &Store, d: &lamina_store::Digest, dest: &Path) -> Result<File, BuildError> {
    store.blobs().open_blob(d).map_err(|e| BuildError::Output {
        dest: dest.to_path_buf(),
        message: super::layers::error_chain(&e),
    })
}

/// Writes an OCI image layout archive of `image`, tagged with the first of `tags`.
pub fn write_oci(
    store: &Store,
    image: &Image,
    tags: &[Reference],
    dest: &Path,
    mtime: u64,
) -> Result<(), BuildError> {
    let out = File::create(dest).map_err(oerr(dest))?;
    let mut a = ArchiveWriter {
        tar: tar::Builder::new(io::BufWriter::new(out)),
        mtime,
    };
    let mut desc: Descriptor = image.descriptor();
    if let Some(t) = tags.first() {
        desc.annotations.insert(
            "org.opencontainers.image.ref.name".into(),
            t.tag().unwrap_or("latest").to_string(),
        );
        desc.annotations
            .insert("io.containerd.image.name".into(), t.to_string());
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc],
    });
    let e = oerr(dest);
    a.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(&e)?;
    a.bytes("index.json", &lamina_store::canonical_json(&index))
        .map_err(&e)?;
    a.dir("blobs/").map_err(&e)?;
    a.dir("blobs/sha256/").map_err(&e)?;
    let mut digests = vec![image.manifest_digest.clone(), image.config_digest.clone()];
    digests.extend(image.layers.iter().map(|l| l.digest.clone()));
    digests.dedup();
    for d in digests {
        let f = blob_file(store, &d, dest)?;
        a.file(&format!("blobs/sha256/{}", d.hex()), f).map_err(&e)?;
    }
    a.tar.into_inner().and_then(|mut w| w.flush()).map_err(&e)?;
    Ok(())
}

/// Writes a `docker load` archive (manifest.json + config + layer blobs, compressed as stored).
pub fn write_docker(
    store: &Store,
    image: &Image,
    tags: &[Reference],
    dest: &Path,
    mtime: u64,
) -> Result<(), BuildError> {
    let out = File::create(dest).map_err(oerr(dest))?;
    let mut a = ArchiveWriter {
        tar: tar::Builder::new(io::BufWriter::new(out)),
        mtime,
    };
    let e = oerr(dest);
    let config_name = format!("blobs/sha256/{}", image.config_digest.hex());
    let layer_names: Vec<String> = image
        .layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
        .collect();
    let repo_tags: Vec<String> = tags.iter().map(|t| t.familiar()).collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": repo_tags,
        "Layers": layer_names,
    }]);
    a.dir("blobs/").map_err(&e)?;
    a.dir("blobs/sha256/").map_err(&e)?;
    let cf = blob_file(store, &image.config_digest, dest)?;
    a.file(&config_name, cf).map_err(&e)?;
    let mut seen = std::collections::BTreeSet::new();
    for (l, name) in image.layers.iter().zip(&layer_names) {
        if seen.insert(name.clone()) {
            let f = blob_file(store, &l.digest, dest)?;
            a.file(name, f).map_err(&e)?;
        }
    }
    a.bytes(
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap_or_default(),
    )
    .map_err(&e)?;
    a.tar.into_inner().and_then(|mut w| w.flush()).map_err(&e)?;
    Ok(())
}

/// Writes the flattened rootfs into a directory.
pub fn write_local(writer: &LayerWriter, image: &Image, dest: &Path) -> Result<(), BuildError> {
    writer.flatten(&image.layers, dest)
}

/// Writes the flattened rootfs as one tar.
pub fn write_rootfs_tar(
    store: &Store,
    writer: &LayerWriter,
    image: &Image,
    dest: &Path,
    epoch: Option<i64>,
) -> Result<(), BuildError> {
    let tmp = tempfile::tempdir_in(store.tmp_dir()).map_err(oerr(dest))?;
    writer.flatten(&image.layers, tmp.path())?;
    let out = File::create(dest).map_err(oerr(dest))?;
    let opts = lamina_store::layer::write::WriteOptions {
        compression: lamina_store::layer::Compression::None,
        source_date_epoch: epoch,
        overlay_upper: false,
        threads: 1,
    };
    lamina_store::layer::write::write_tar(tmp.path(), &opts, io::BufWriter::new(out)).map_err(|e| {
        BuildError::Output {
            dest: dest.to_path_buf(),
            message: super::layers::error_chain(&e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_outputs() {
        assert_eq!(
            Output::parse("type=oci,dest=a.tar").unwrap(),
            Output::Oci("a.tar".into())
        );
        assert_eq!(Output::parse("out").unwrap(), Output::Local("out".into()));
        assert_eq!(Output::parse("type=image").unwrap(), Output::Image);
        assert!(Output::parse("type=docker").is_err());
        assert!(Output::parse("type=weird,dest=x").is_err());
    }
}
