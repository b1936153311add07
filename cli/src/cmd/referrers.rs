//! `lamina referrers IMAGE` lists the OCI 1.1 referrers of an image in a registry (SBOMs, provenance,
//! signatures: manifests whose `subject` is the image); `lamina artifact attach IMAGE --artifact-type T
//! FILE…` attaches one, as `oras attach` does. Registries without the referrers API get the referrers tag
//! schema (`lamina_registry::referrers`), so both commands work against any registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use lamina_registry::referrers::Attachment;
use lamina_registry::{Descriptor, NoProgress, RegistryClient};
use lamina_store::digest::HashingReader;
use lamina_store::image::{Index, canonical_json, media};

use super::remote_image::{image_ref, resolve_descriptor};
use super::transfer::RegistryFlags;

/// The media type of an attached file when none is given (what `oras attach` uses).
const DEFAULT_FILE_MEDIA_TYPE: &str = media::OCI_LAYER_TAR;
/// Annotation naming a file inside an artifact, and the artifact's creation time.
const TITLE: &str = "org.opencontainers.image.title";
const CREATED: &str = "org.opencontainers.image.created";

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Image in a registry, by tag or digest (e.g. localhost:5000/app:1.0).
    pub image: String,
    /// Only referrers of this artifact type (e.g. application/spdx+json).
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: Option<String>,
    /// Output: a table, or the referrers as an OCI index (the referrers API's own shape).
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `lamina artifact …`.
#[derive(clap::Args, Debug)]
pub struct ArtifactArgs {
    #[command(subcommand)]
    pub command: ArtifactCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ArtifactCommand {
    /// Push files as an OCI artifact whose subject is IMAGE (listed by `lamina referrers IMAGE`).
    Attach(AttachArgs),
}

pub fn run_artifact(cli: &crate::Cli, args: &ArtifactArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ArtifactCommand::Attach(a) => run_attach(cli, a),
    }
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Image in a registry the artifact refers to, by tag or digest.
    pub image: String,
    /// The artifact's type (e.g. application/spdx+json, application/vnd.in-toto+json).
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: String,
    /// Annotation of the artifact manifest (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Files to attach, each `PATH` or `PATH:MEDIA_TYPE`.
    #[arg(required = true, value_name = "FILE[:MEDIA_TYPE]")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run_list(_cli: &crate::Cli, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let r = image_ref(&args.image)?;
    let opts = args.registry.options()?;
    let rt = super::transfer::runtime()?;
    let (subject, listed) = rt
        .block_on(async {
            let client = RegistryClient::new(r.registry(), &opts)?;
            let subject = resolve_descriptor(&client, &r).await?;
            let listed = client
                .referrers(r.repository(), &subject.digest, args.artifact_type.as_deref())
                .await?;
            anyhow::Ok((subject, listed))
        })
        .with_context(|| format!("listing referrers of {}", args.image))?;
    if args.format == "json" {
        let index = Index {
            manifests: listed.manifests,
            ..Index::default()
        };
        crate::outln!("{}", String::from_utf8_lossy(&canonical_json(&index)));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = crate::output::Table::new(
        &["DIGEST", "ARTIFACT TYPE", "SIZE", "CREATED"],
        &[false, false, true, false],
    );
    for m in &listed.manifests {
        t.row(vec![
            m.digest.to_string(),
            m.artifact_type.clone().unwrap_or_else(|| "-".into()),
            crate::output::human_size(m.size),
            m.annotations.get(CREATED).cloned().unwrap_or_else(|| "-".into()),
        ]);
    }
    crate::output::emit(&t.render());
    eprintln!(
        "{} referrer(s) of {}@{}, from {}",
        listed.manifests.len(),
        r.name(),
        subject.digest,
        listed.source.describe()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_attach(_cli: &crate::Cli, args: &AttachArgs) -> anyhow::Result<ExitCode> {
    let r = image_ref(&args.image)?;
    let mut annotations = BTreeMap::new();
    for a in &args.annotations {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--annotation {a:?}: expected KEY=VALUE");
        };
        annotations.insert(k.to_owned(), v.to_owned());
    }
    annotations.entry(CREATED.to_owned()).or_insert_with(created_now);
    let files = args
        .files
        .iter()
        .map(|f| file_layer(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = args.registry.options()?;
    let rt = super::transfer::runtime()?;
    let (desc, source, subject) = rt
        .block_on(async {
            let client = RegistryClient::new(r.registry(), &opts)?;
            let repo = r.repository();
            let subject = resolve_descriptor(&client, &r).await?;
            for (path, d) in &files {
                client
                    .push_blob(repo, d, path, None, &NoProgress)
                    .await
                    .with_context(|| format!("uploading {}", path.display()))?;
            }
            let a = Attachment {
                subject: subject.clone(),
                artifact_type: args.artifact_type.clone(),
                layers: files.iter().map(|(_, d)| d.clone()).collect(),
                annotations,
            };
            let (desc, source) = client.attach(repo, &a).await?;
            anyhow::Ok((desc, source, subject))
        })
        .with_context(|| format!("attaching to {}", args.image))?;
    eprintln!(
        "Attached {} to {}@{} (listed through {})",
        args.artifact_type,
        r.name(),
        subject.digest,
        source.describe()
    );
    crate::outln!("{}", desc.digest);
    Ok(ExitCode::SUCCESS)
}

/// `PATH[:MEDIA_TYPE]` → the file and its layer descriptor, hashed by streaming it once.
fn file_layer(spec: &str) -> anyhow::Result<(PathBuf, Descriptor)> {
    // A media type always has a '/', so `a:b/c` splits and a path with a colon but no type does not.
    let (path, media_type) = match spec.rsplit_once(':') {
        Some((p, t)) if t.contains('/') && !p.is_empty() => (p, t),
        _ => (spec, DEFAULT_FILE_MEDIA_TYPE),
    };
    let path = Path::new(path);
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if !f.metadata()?.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    let mut reader = HashingReader::new(f);
    std::io::copy(&mut reader, &mut std::io::sink())
        .with_context(|| format!("reading {}", path.display()))?;
    let (_, digest, size) = reader.finish();
    let mut d = Descriptor::new(media_type, digest, size);
    if let Some(name) = path.file_name() {
        d.annotations
            .insert(TITLE.to_owned(), name.to_string_lossy().into_owned());
    }
    Ok((path.to_owned(), d))
}

/// Now, or `SOURCE_DATE_EPOCH` when set, so attaching the same files twice can give the same artifact.
fn created_now() -> String {
    match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(secs) => lamina_store::archive::rfc3339(secs),
        None => lamina_store::archive::now_rfc3339(),
    }
}
