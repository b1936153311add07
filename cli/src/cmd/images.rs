//! `lamina images` (alias `ls`): the tagged images, like `docker images`.

use std::process::ExitCode;

use anyhow::Context as _;
use lamina_store::Reference;

use crate::output::{human_ago, human_size, parse_rfc3339};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only images of this repository (and tag, if given): `busybox`, `localhost/app:v1`.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    filter: Option<String>,
    /// Only print image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Show the manifest digests.
    #[arg(long)]
    digests: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(serde::Serialize)]
struct Row {
    repository: String,
    tag: String,
    reference: Option<String>,
    id: String,
    digest: String,
    created: Option<String>,
    size: u64,
    /// For a multi-platform index: the platforms of its images in the store.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platforms: Vec<String>,
}

/// An index's images present in the store: their platforms and total size (shared blobs counted once).
/// `None` for a single image.
fn index_platforms(store: &lamina_store::Store, digest: &lamina_store::Digest) -> Option<(Vec<String>, u64)> {
    let lamina_store::image::Parsed::Index(idx) = store.read_manifest(digest, None).ok()? else {
        return None;
    };
    let mut platforms = Vec::new();
    let mut blobs = std::collections::BTreeMap::new();
    for d in &idx.manifests {
        let (Some(p), Ok(img)) = (&d.platform, store.load_image(&d.digest)) else {
            continue;
        };
        platforms.push(p.to_string());
        blobs.insert(img.config_digest.clone(), img.manifest.config.size);
        for l in &img.layers {
            blobs.insert(l.digest.clone(), l.size);
        }
    }
    Some((platforms, blobs.values().sum()))
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let filter = args
        .filter
        .as_deref()
        .map(|f| {
            let r = Reference::parse(f).with_context(|| format!("invalid filter {f:?}"))?;
            // A filter without a tag matches every tag of the repository.
            let has_tag = f.rsplit('/').next().is_some_and(|last| last.contains(':'));
            anyhow::Ok((r, has_tag))
        })
        .transpose()?;
    let index = store.read_index()?;
    let mut rows = Vec::new();
    for entry in &index.manifests {
        let reference = entry
            .ref_name()
            .and_then(|n| Reference::parse(n).ok().filter(|r| r.to_string() == n));
        if let Some((f, has_tag)) = &filter {
            let Some(r) = &reference else { continue };
            if r.name() != f.name() || (*has_tag && r.tag() != f.tag()) {
                continue;
            }
        }
        let img = match store.load_image(&entry.digest) {
            Ok(img) => img,
            Err(e) => {
                eprintln!(
                    "warning: skipping {}: {e}",
                    entry.ref_name().map_or(entry.digest.to_string(), str::to_owned)
                );
                continue;
            }
        };
        let (repository, tag) = match &reference {
            Some(r) => {
                let familiar = r.familiar();
                let repo = match r.tag() {
                    Some(t) => familiar
                        .strip_suffix(&format!(":{t}"))
                        .unwrap_or(&familiar)
                        .to_owned(),
                    None => familiar.clone(),
                };
                (repo, r.tag().unwrap_or("<none>").to_owned())
            }
            None => ("<none>".to_owned(), "<none>".to_owned()),
        };
        // An index shows as one image: its digest is its ID, its size that of all its platforms.
        let (id, digest, size, platforms) = match index_platforms(&store, &entry.digest) {
            Some((platforms, size)) => (
                entry.digest.to_string(),
                entry.digest.to_string(),
                size,
                platforms,
            ),
            None => (
                img.config_digest.to_string(),
                img.manifest_digest.to_string(),
                img.size(),
                Vec::new(),
            ),
        };
        rows.push(Row {
            repository,
            tag,
            reference: reference.map(|r| r.to_string()),
            id,
            digest,
            created: img.config.created.clone(),
            size,
            platforms,
        });
    }
    // Newest first, like docker.
    rows.sort_by(|a, b| {
        let t = |r: &Row| r.created.as_deref().and_then(parse_rfc3339).unwrap_or(i64::MIN);
        t(b).cmp(&t(a))
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });

    if args.format == Format::Json {
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let short = |id: &str| -> String {
        if args.no_trunc {
            id.to_owned()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(&r.id) {
                crate::outln!("{}", short(&r.id));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    // Only when an index is listed, so single-platform stores print as before.
    let any_index = rows.iter().any(|r| !r.platforms.is_empty());
    if any_index {
        header.push("PLATFORMS");
    }
    table.push(header.into_iter().map(str::to_owned).collect());
    for r in &rows {
        let mut line = vec![r.repository.clone(), r.tag.clone()];
        if args.digests {
            line.push(r.digest.clone());
        }
        line.extend([short(&r.id), human_ago(r.created.as_deref()), human_size(r.size)]);
        if any_index {
            line.push(r.platforms.join(","));
        }
        table.push(line);
    }
    print_table(&table);
    Ok(ExitCode::SUCCESS)
}

/// Left-aligned columns separated by three spaces, like docker's tabwriter output.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        crate::outln!("{line}");
    }
}
