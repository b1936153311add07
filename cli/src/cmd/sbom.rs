//! `lamina sbom IMAGE`: the image's packages as an SPDX 2.3 or CycloneDX 1.5 JSON document, made from its
//! package databases without running anything from it (see the `lamina-sbom` crate).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::subject;
use super::transfer::RegistryFlags;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// Document format.
    #[arg(long, default_value = "spdx-json", value_parser = ["spdx-json", "cyclonedx-json", "table"])]
    pub format: String,
    /// Write the document to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let view = subject::open_image(cli, &args.image, &args.registry)?;
    // A store image's layers are verified blobs: their scans can be remembered (and replayed) by digest.
    let in_store = !["oci:", "oci-archive:", "docker-archive:", "layer:", "docker://"]
        .iter()
        .any(|t| args.image.starts_with(t));
    let files = if in_store {
        let store = super::open_store(cli)?;
        lamina_sbom::collect::collect_with(&view, &lamina_sbom::collect::StoreMemo(&store))?
    } else {
        lamina_sbom::collect::collect(&view)?
    };
    for path in &files.skipped {
        eprintln!(
            "warning: /{path} in {} is over the SBOM size cap and was not read",
            view.name
        );
    }
    let inv = lamina_sbom::scan_collected(&view, &files);
    let tool = format!("lamina-{}", env!("CARGO_PKG_VERSION"));
    let text = match args.format.as_str() {
        "cyclonedx-json" => {
            serde_json::to_string_pretty(&lamina_sbom::cyclonedx::bom(&inv, env!("CARGO_PKG_VERSION")))?
        }
        "table" => {
            let mut t = crate::output::Table::new(&["NAME", "VERSION", "TYPE", "FOUND IN"], &[]);
            for p in &inv.packages {
                t.row(vec![
                    p.name.clone(),
                    p.version.clone(),
                    p.ecosystem.purl_type().to_owned(),
                    p.found_in.clone(),
                ]);
            }
            t.render()
        }
        _ => serde_json::to_string_pretty(&lamina_sbom::spdx::document(&inv, &tool))?,
    };
    match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(tmp, "{text}").with_context(|| format!("writing {}", path.display()))?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => crate::outln!("{}", text.trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}
