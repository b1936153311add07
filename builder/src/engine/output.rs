//! `--output`: the store (default), an OCI archive, a `docker load`-able archive, a directory, a rootfs tar.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use lamina_store::archive::save::IndexItem;
use lamina_store::archive::save::{SaveFormat, SaveItem, SaveOptions, save_with};
use lamina_store::{Image, Reference, Store};

use super::BuildError;
use super::layers::LayerWriter;

/// Why an `--output` could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing the file")]
    Io(#[source] io::Error),
    #[error("writing the archive")]
    Archive(#[source] lamina_store::archive::ArchiveError),
    #[error("writing the tar")]
    Tar(#[source] lamina_store::layer::LayerError),
}

/// A bad `--output` value.
#[derive(Debug, thiserror::Error)]
pub enum OutputSpecError {
    #[error("unknown --output key {key:?}")]
    UnknownKey { key: String },
    #[error("bad --output part {part:?}")]
    BadPart { part: String },
    #[error("--output type={kind} needs dest=PATH")]
    NoDest { kind: String },
    #[error("unknown --output type {kind:?} (image, oci, docker, local, tar)")]
    UnknownType { kind: String },
}

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
    pub fn parse(s: &str) -> Result<Output, OutputSpecError> {
        let mut kind = None;
        let mut dest = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                Some((k, _)) if ["name", "push", "compression", "oci-mediatypes"].contains(&k) => {}
                Some((k, _)) => return Err(OutputSpecError::UnknownKey { key: k.to_string() }),
                None if kind.is_none() && dest.is_none() => dest = Some(PathBuf::from(part)),
                None => {
                    return Err(OutputSpecError::BadPart {
                        part: part.to_string(),
                    });
                }
            }
        }
        let need =
            |d: Option<PathBuf>, k: &str| d.ok_or_else(|| OutputSpecError::NoDest { kind: k.to_string() });
        match kind.as_deref().unwrap_or("local") {
            "image" | "registry" => Ok(Output::Image),
            "oci" => Ok(Output::Oci(need(dest, "oci")?)),
            "docker" => Ok(Output::Docker(need(dest, "docker")?)),
            "local" => Ok(Output::Local(need(dest, "local")?)),
            "tar" => Ok(Output::Tar(need(dest, "tar")?)),
            k => Err(OutputSpecError::UnknownType { kind: k.to_string() }),
        }
    }
}

fn oerr(dest: &Path) -> impl Fn(io::Error) -> BuildError + '_ {
    move |e| BuildError::Output {
        dest: dest.to_path_buf(),
        source: Box::new(OutputError::Io(e)),
    }
}

/// `--output type=oci|docker`: the same archive `lamina save` writes, under every `-t` name (none when
/// untagged), entries stamped with `mtime`.
pub fn write_archive(
    store: &Store,
    image: &Image,
    tags: &[Reference],
    dest: &Path,
    mtime: u64,
    format: SaveFormat,
) -> Result<(), BuildError> {
    let items: Vec<SaveItem> = if tags.is_empty() {
        vec![SaveItem {
            image: image.clone(),
            reference: None,
        }]
    } else {
        tags.iter()
            .map(|t| SaveItem {
                image: image.clone(),
                reference: Some(t.clone()),
            })
            .collect()
    };
    let out = File::create(dest).map_err(oerr(dest))?;
    let archive_err = |e: lamina_store::archive::ArchiveError| BuildError::Output {
        dest: dest.to_path_buf(),
        source: Box::new(OutputError::Archive(e)),
    };
    let w = save_with(
        store,
        &items,
        format,
        io::BufWriter::with_capacity(256 * 1024, out),
        SaveOptions { mtime },
    )
    .map_err(archive_err)?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(oerr(dest))
}

/// `--output type=oci|docker` of a multi-platform build: an OCI layout archive holding the index and
/// every platform's image, under every `-t` name; `docker` adds a manifest.json naming `primary`.
pub fn write_index_archive(
    store: &Store,
    item: &IndexItem<'_>,
    tags: &[Reference],
    dest: &Path,
    mtime: u64,
    format: SaveFormat,
) -> Result<(), BuildError> {
    let out = File::create(dest).map_err(oerr(dest))?;
    let w = lamina_store::archive::save::save_index_with(
        store,
        item,
        tags,
        format,
        io::BufWriter::with_capacity(256 * 1024, out),
        SaveOptions { mtime },
    )
    .map_err(|e| BuildError::Output {
        dest: dest.to_path_buf(),
        source: Box::new(OutputError::Archive(e)),
    })?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(oerr(dest))
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
            source: Box::new(OutputError::Tar(e)),
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
