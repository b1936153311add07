//! IMAGE → the overlay lower dirs and the image config defaults (Env, Cmd, Entrypoint, WorkingDir,
//! User).

use std::path::{Path, PathBuf};

use anyhow::bail;

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
    let _ = store_root;
    bail!("image {image}: resolving store images is not wired yet (pass a rootfs directory)")
}
