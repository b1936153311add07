//! `lamina save IMAGE… -o FILE [--format docker|oci]`: images → an archive `docker load`, skopeo and umoci
//! read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::archive::save::{IndexItem, SaveFormat, SaveItem, SaveOptions, save, save_index_with};
use lamina_store::image::Parsed;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Images: names, IDs or digests.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Archive format: `docker` (docker save / docker-archive) or `oci` (OCI image layout, oci-archive).
    #[arg(long, value_enum, default_value_t = Format::Docker)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let mut items = Vec::new();
    for q in &args.images {
        let found = store.resolve(q)?;
        let image = store
            .load_image(found.digest())
            .with_context(|| format!("cannot read image {q}"))?;
        items.push(SaveItem {
            image,
            reference: found.reference,
        });
    }
    let format = match args.format {
        Format::Docker => SaveFormat::Docker,
        Format::Oci => SaveFormat::Oci,
    };
    // One multi-platform image: the whole index (every platform the store has), not just the host's.
    let index = match args.images.as_slice() {
        [q] => multi_platform(&store, q)?,
        _ => None,
    };
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            // Written next to the target and renamed at the end, so a failed save leaves no partial archive.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".lamina-save-")
                .tempfile_in(dir)
                .with_context(|| format!("cannot create a file in {}", dir.display()))?;
            let out = std::io::BufWriter::with_capacity(1 << 20, tmp);
            let out = write(&store, &items, index.as_ref(), format, out)?;
            let tmp = out
                .into_inner()
                .map_err(|e| e.into_error())
                .context("cannot write archive")?;
            tmp.persist(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        _ => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!("refusing to write an archive to a terminal; use -o FILE or redirect stdout");
            }
            let mut out = write(
                &store,
                &items,
                index.as_ref(),
                format,
                std::io::BufWriter::new(stdout.lock()),
            )?;
            out.flush().context("cannot write archive to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A multi-platform image to save whole.
struct MultiPlatform {
    index: lamina_store::Descriptor,
    images: Vec<lamina_store::Image>,
    references: Vec<lamina_store::Reference>,
}

fn write<W: Write>(
    store: &lamina_store::Store,
    items: &[SaveItem],
    index: Option<&MultiPlatform>,
    format: SaveFormat,
    out: W,
) -> anyhow::Result<W> {
    Ok(match index {
        Some(m) => {
            let item = IndexItem {
                index: &m.index,
                images: &m.images,
                primary: &items[0].image,
            };
            save_index_with(store, &item, &m.references, format, out, SaveOptions::default())?
        }
        None => save(store, items, format, out)?,
    })
}

/// The index `q` names, with its images in the store and the name it was given by.
fn multi_platform(store: &lamina_store::Store, q: &str) -> anyhow::Result<Option<MultiPlatform>> {
    let found = store.resolve(q)?;
    let Parsed::Index(idx) = store.read_manifest(found.digest(), None)? else {
        return Ok(None);
    };
    let mut images = Vec::new();
    for d in idx.manifests.iter().filter(|d| store.blobs().contains(&d.digest)) {
        images.push(
            store
                .load_image(&d.digest)
                .with_context(|| format!("cannot read image {} of {q}", d.digest))?,
        );
    }
    let desc = lamina_store::Descriptor::new(
        found.descriptor.media_type.clone(),
        found.digest().clone(),
        found.descriptor.size,
    );
    Ok(Some(MultiPlatform {
        index: desc,
        images,
        references: found.reference.into_iter().collect(),
    }))
}
