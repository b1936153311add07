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
}

/// A path (absolute or starting with `.`) to an unpacked rootfs directory is accepted directly, which
/// is handy for tests and benchmarks; anything else is an image reference in the store.
pub fn resolve(store_root: &Path, image: &str) -> anyhow::Result<ImageSpec> {
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
    let found = store.resolve(image).with_context(|| format!("image {image}"))?;
    let img = store
        .load_image(found.digest())
        .with_context(|| format!("loading image {image}"))?;
    // Snapshots are keyed by chain id (`snapshots/<hex>`), as the layers module lays them out.
    // TODO(integration): switch to `Snapshots::ensure_chain`, which also unpacks missing layers.
    let mut lowers = Vec::new();
    let mut parent: Option<lamina_store::Digest> = None;
    for layer in &img.layers {
        let id = match &parent {
            None => layer.diff_id.clone(),
            Some(p) => lamina_store::Digest::sha256_of(format!("{p} {}", layer.diff_id).as_bytes()),
        };
        let dir = store_root.join("snapshots").join(id.hex());
        if !dir.is_dir() {
            bail!(
                "image {image}: layer {} is not unpacked in the store (snapshot {} missing)",
                layer.digest,
                dir.display()
            );
        }
        lowers.push(dir);
        parent = Some(id);
    }
    let cfg = img.config.config.clone().unwrap_or_default();
    Ok(ImageSpec {
        lowers,
        env: cfg.env,
        entrypoint: cfg.entrypoint.unwrap_or_default(),
        cmd: cfg.cmd.unwrap_or_default(),
        working_dir: cfg.working_dir.unwrap_or_default(),
        user: cfg.user.unwrap_or_default(),
    })
}
