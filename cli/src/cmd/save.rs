//! `lamina save IMAGE… -o FILE [--format docker|oci]`: images → an archive `docker load`, skopeo and umoci
//! read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::archive::save::{SaveFormat, SaveItem, save};

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
            let out = save(&store, &items, format, out)?;
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
            let mut out = save(&store, &items, format, std::io::BufWriter::new(stdout.lock()))?;
            out.flush().context("cannot write archive to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
