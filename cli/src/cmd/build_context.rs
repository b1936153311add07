//! `lamina build --build-context NAME=VALUE` (buildx's named contexts): what FROM NAME, `COPY --from=NAME`
//! and `RUN --mount from=NAME` read instead of the image or stage NAME. Each value becomes an image the
//! store holds, and the front end substitutes its reference for NAME
//! ([`BuildOptions::named_contexts`](lamina_builder::dockerfile::BuildOptions)):
//!
//! - `docker-image://REF`: that image (pulled like any base);
//! - `oci-layout://PATH[@DIGEST]`: the image of an OCI layout directory (its only one, or DIGEST), loaded
//!   into the store;
//! - a directory: its files as a one-layer image (as BuildKit's local named context, a rootfs for FROM);
//! - a git URL or a tarball URL: fetched as the main context would be ([`super::build_source`]), then
//!   as a directory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use lamina_store::Store;
use lamina_store::archive::import::{ImportOptions, import};
use lamina_store::archive::load::{LoadOptions, load_from};

/// Resolves every `NAME=VALUE` to the reference standing in for NAME. Hold the store's shared lock and
/// the build's lease while the result is used: the images made here are untagged. `registry` is for
/// contexts fetched over http(s).
pub fn resolve(
    store: &Store,
    specs: &[String],
    registry: &lamina_registry::RegistryOptions,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let Some((name, value)) = spec
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            bail!("invalid --build-context {spec:?}: expected NAME=VALUE");
        };
        let reference = if let Some(r) = value.strip_prefix("docker-image://") {
            r.to_string()
        } else if let Some(rest) = value.strip_prefix("oci-layout://") {
            oci_layout(store, rest).with_context(|| format!("--build-context {name}={value}"))?
        } else if value.contains("://") || value.starts_with("git@") {
            // A git repository or a tarball, fetched as a main context would be, then made an image.
            let fetched = super::build_source::open(Path::new(value), registry)
                .with_context(|| format!("--build-context {name}={value}"))?;
            if !fetched.is_remote() {
                bail!(
                    "--build-context {name}={value}: unknown kind of context (a directory, docker-image://, oci-layout://, a git or http(s) URL)"
                );
            }
            directory(store, &fetched.dir).with_context(|| format!("--build-context {name}={value}"))?
        } else {
            directory(store, Path::new(value)).with_context(|| format!("--build-context {name}={value}"))?
        };
        out.insert(name.to_string(), reference);
    }
    Ok(out)
}

/// Writes `dir` as a tar into a temp file in the store (streamed, never in memory), links not followed.
fn tar_dir(store: &Store, dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let tmp = tempfile::NamedTempFile::new_in(store.tmp_dir()).context("temp file in the store")?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.reopen()?));
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)
        .with_context(|| format!("reading {}", dir.display()))?;
    b.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(tmp)
}

fn directory(store: &Store, dir: &Path) -> anyhow::Result<String> {
    let tar = tar_dir(store, dir)?;
    let img = import(store, tar.reopen()?, dir, &ImportOptions::default())?;
    let desc = img.descriptor();
    let digest = desc.digest.to_string();
    store.add_untagged(desc)?;
    Ok(digest)
}

fn oci_layout(store: &Store, spec: &str) -> anyhow::Result<String> {
    let (path, want) = match spec.rsplit_once('@') {
        Some((p, d)) if d.starts_with("sha256:") => (p, Some(d)),
        _ => (spec, None),
    };
    let dir = Path::new(path);
    if !dir.join("index.json").is_file() {
        bail!("{} is not an OCI layout (no index.json)", dir.display());
    }
    let tar = tar_dir(store, dir)?;
    let report = load_from(store, tar.reopen()?, dir, &LoadOptions::default())?;
    let digests: Vec<String> = report.images.iter().map(|i| i.manifest.to_string()).collect();
    match want {
        Some(d) if digests.iter().any(|m| m == d) => Ok(d.to_string()),
        Some(d) => bail!("the layout has no image {d} (it has {})", digests.join(", ")),
        None if digests.len() == 1 => Ok(digests[0].clone()),
        None => bail!(
            "the layout holds {} images; name one with @DIGEST ({})",
            digests.len(),
            digests.join(", ")
        ),
    }
}
