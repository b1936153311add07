//! `--init`: lamina's own pid 1 (`runner/init/main.rs`, built static by the build script), put in
//! the container's init layer, a tmpfs lower above the image, so it is never part of the
//! container's upper dir (its diff, what `commit` takes).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::SetupError;

static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lamina-init"));

/// Where the init is in the container.
pub(crate) const PATH_IN_CONTAINER: &str = "/.lamina-init";

pub(crate) fn install(init_layer: &Path) -> Result<(), SetupError> {
    if BINARY.is_empty() {
        return Err(SetupError::InitUnavailable);
    }
    let p = init_layer.join(PATH_IN_CONTAINER.trim_start_matches('/'));
    std::fs::write(&p, BINARY).map_err(|e| SetupError::io("write", &p, e))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| SetupError::io("chmod", &p, e))
}

/// The container's argv under the init.
pub(crate) fn wrap(args: &[String]) -> Vec<String> {
    [PATH_IN_CONTAINER.to_string(), "--".to_string()]
        .into_iter()
        .chain(args.iter().cloned())
        .collect()
}
