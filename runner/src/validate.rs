//! Checks on a request before anything is spawned.

use std::path::{Component, Path, PathBuf};

use crate::error::RunError;
use crate::request::{Mount, RunRequest};

pub(crate) fn request(req: &RunRequest) -> Result<(), RunError> {
    if let Some(id) = &req.id {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !id.starts_with('.');
        if !ok {
            return Err(RunError::InvalidId { id: id.clone() });
        }
    }
    if req.process.args.is_empty() {
        return Err(RunError::NoCommand);
    }
    if let Some(parent) = &req.confinement.cgroup_parent {
        let ok = parent.split('/').filter(|c| !c.is_empty()).all(|c| {
            c != ".."
                && c != "."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-@:".contains(&b))
        });
        if !ok || parent.trim_matches('/').is_empty() {
            return Err(RunError::InvalidCgroupParent {
                parent: parent.clone(),
            });
        }
    }
    cwd(&req.process.cwd)?;
    for dir in &req.lower_dirs {
        if !dir.is_dir() {
            return Err(RunError::MissingLowerDir { path: dir.clone() });
        }
    }
    for m in &req.mounts {
        let dest = match m {
            Mount::Bind { destination, .. } | Mount::Tmpfs { destination, .. } => destination,
        };
        if !dest.starts_with('/') {
            return Err(RunError::InvalidMountDestination {
                destination: dest.clone(),
            });
        }
        // User mounts are made before the runtime mounts proc, sysfs and the /dev tmpfs, which would
        // hide them (and a bind into /proc is how CVE-2019-16884-style attacks start).
        let clean = normalize(Path::new(dest));
        if ["/proc", "/sys", "/dev"].iter().any(|k| clean.starts_with(k)) {
            return Err(RunError::MountOnKernelFs {
                destination: dest.clone(),
            });
        }
    }
    Ok(())
}

/// A working directory must be absolute and must not point into /proc: `/proc/self/fd/N` was how
/// CVE-2024-21626 turned a leaked host fd into a host-filesystem cwd.
pub(crate) fn cwd(cwd: &str) -> Result<PathBuf, RunError> {
    let bad = |reason| RunError::InvalidCwd {
        cwd: cwd.to_string(),
        reason,
    };
    if !cwd.starts_with('/') {
        return Err(bad("must be an absolute path"));
    }
    let clean = normalize(Path::new(cwd));
    if clean.starts_with("/proc") {
        return Err(bad("must not be inside /proc"));
    }
    Ok(clean)
}

/// Lexical clean-up of an absolute in-container path: `.` dropped, `..` clamped at `/`.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwd_rules() {
        assert_eq!(cwd("/a/./b/../c").unwrap(), PathBuf::from("/a/c"));
        assert!(cwd("relative").is_err());
        assert!(cwd("/proc/self/fd/7").is_err());
        assert!(cwd("/x/../proc/self/cwd").is_err());
        assert!(cwd("/../../proc").is_err());
        assert!(cwd("/procfs").is_ok());
    }
}
