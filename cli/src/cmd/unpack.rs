//! `lamina unpack IMAGE DIR` / `lamina unpack IMAGE -o FILE.tar`: the flattened root filesystem of an image.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::archive::unpack::{unpack_to_dir, unpack_to_tar};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: name, ID or digest.
    image: String,
    /// Directory to unpack into (must be missing or empty).
    #[arg(required_unless_present = "output", conflicts_with = "output")]
    dir: Option<PathBuf>,
    /// Write one flattened tar instead (`-` for stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let found = store.resolve(&args.image)?;
    let image = store
        .load_image(found.digest())
        .with_context(|| format!("cannot read image {}", args.image))?;
    if let Some(dir) = &args.dir {
        let stats = unpack_to_dir(&store, &image, dir)
            .with_context(|| format!("cannot unpack {} into {}", args.image, dir.display()))?;
        eprintln!(
            "unpacked {} layers: {} files, {} directories, {} symlinks ({} bytes)",
            image.layers.len(),
            stats.files,
            stats.dirs,
            stats.symlinks,
            stats.bytes
        );
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.output.as_ref().expect("clap requires DIR or -o");
    if out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            anyhow::bail!("refusing to write a tar to a terminal; use -o FILE or redirect stdout");
        }
        let mut w = std::io::BufWriter::new(stdout.lock());
        unpack_to_tar(&store, &image, &mut w).with_context(|| format!("cannot export {}", args.image))?;
        w.flush().context("cannot write to stdout")?;
    } else {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".lamina-unpack-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
        unpack_to_tar(&store, &image, &mut w).with_context(|| format!("cannot export {}", args.image))?;
        let tmp = w
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write tar")?;
        tmp.persist(out)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
