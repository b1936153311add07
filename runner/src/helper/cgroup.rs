//! Reading what the kernel recorded in the container's cgroup before it is removed.

use std::path::PathBuf;

const ROOT: &str = "/sys/fs/cgroup";

/// Did the OOM killer fire in the cgroup at `cgroups_path` (as given in the spec)?
pub(crate) fn oom_killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    // v1 (and hybrid): memory controller hierarchy; v2: unified.
    let candidates = [
        (
            PathBuf::from(ROOT)
                .join("memory")
                .join(rel)
                .join("memory.oom_control"),
            "oom_kill",
        ),
        (PathBuf::from(ROOT).join(rel).join("memory.events"), "oom_kill"),
    ];
    for (path, key) in candidates {
        if let Ok(s) = std::fs::read_to_string(&path) {
            return s
                .lines()
                .filter_map(|l| l.split_once(' '))
                .any(|(k, v)| k == key && v.trim().parse::<u64>().is_ok_and(|n| n > 0));
        }
    }
    false
}
