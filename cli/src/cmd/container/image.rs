//! IMAGE → the overlay lower dirs and the image config defaults (Env, Cmd, Entrypoint, WorkingDir,
//! User).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// What `lamina run` needs from an image.
#[derive(Debug, Default, Clone)]
pub struct ImageSpec {
    /// Snapshot dirs, bottom → top.
    pub lowers: Vec<PathBuf>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// EXPOSE entries (`80/tcp`), for `run -P`.
    pub exposed: Vec<String>,
    /// The image's STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// The image's HEALTHCHECK.
    pub healthcheck: Option<lamina_store::config::Healthcheck>,
    /// The image's labels: a container starts with them (as docker's do), `--label` on top.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Holds the image's snapshots (and blobs) against prune while the container exists; `None` for a
    /// rootfs directory.
    pub lease: Option<lamina_store::Lease>,
}

/// A path (absolute or starting with `.`) to an unpacked rootfs directory is accepted directly, which
/// is handy for tests and benchmarks; anything else is an image reference in the store.
#[allow(dead_code)] // the host-platform entry point other callers keep using
pub fn resolve(store_root: &Path, image: &str) -> anyhow::Result<ImageSpec> {
    resolve_for(store_root, image, None)
}

/// [`resolve`], taking `platform`'s image from an index (the host's when `None`).
pub fn resolve_for(
    store_root: &Path,
    image: &str,
    platform: Option<&lamina_store::Platform>,
) -> anyhow::Result<ImageSpec> {
    if image.starts_with('/') || image.starts_with('.') {
        let p = Path::new(image);
        if !p.is_dir() {
            bail!("rootfs directory {image} does not exist");
        }
        return Ok(ImageSpec {
            lowers: vec![std::fs::canonicalize(p)?],
            ..Default::default()
        });
    }
    let store = lamina_store::Store::open(store_root)
        .with_context(|| format!("opening store {}", store_root.display()))?;
    // Taken before resolving: the image may be untagged and pruned while its container runs.
    let lease = store.lease().context("taking a lease on the store")?;
    let store = store.leased(&lease);
    let found = store.resolve(image).with_context(|| format!("image {image}"))?;
    let host = lamina_store::Platform::host();
    let img = store
        .load_image_for(found.digest(), platform.unwrap_or(&host))
        .with_context(|| format!("loading image {image}"))?;
    if let Some(want) = platform {
        let has = img.config.platform();
        // Images whose config names no architecture (some hand-made ones) are taken as they are.
        if !has.architecture.is_empty() && !want.matches(&has) {
            bail!("image {image} is for {has}, not {want}");
        }
    }
    // Snapshots are keyed by chain id; layers not unpacked yet (a fresh build, a load) are unpacked now.
    let layers: Vec<_> = img
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.diff_id.clone()))
        .collect();
    let snapshots = store
        .snapshots()
        .with_context(|| format!("opening snapshots of {}", store_root.display()))?;
    let lowers = snapshots
        .ensure_chain(store.blobs(), &layers)
        .with_context(|| format!("image {image}: unpacking its layers"))?;
    let cfg = img.config.config.clone().unwrap_or_default();
    Ok(ImageSpec {
        lowers,
        env: cfg.env,
        entrypoint: cfg.entrypoint.unwrap_or_default(),
        cmd: cfg.cmd.unwrap_or_default(),
        working_dir: cfg.working_dir.unwrap_or_default(),
        user: cfg.user.unwrap_or_default(),
        exposed: cfg.exposed_ports.keys().cloned().collect(),
        healthcheck: cfg.healthcheck.clone(),
        stop_signal: cfg.stop_signal.clone(),
        labels: cfg.labels,
        lease: Some(lease),
    })
}
