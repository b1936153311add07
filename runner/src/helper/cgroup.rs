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

/// Remove whatever is left of the container's cgroups in every hierarchy (v1 subsystems, v2 unified),
/// killing stragglers first. libcontainer's delete stops at the first subsystem it fails to remove
/// (e.g. EBUSY while the last task is still exiting); this retries briefly instead.
pub(crate) fn remove_leftovers(cgroups_path: &str) {
    let rel = cgroups_path.trim_start_matches('/');
    let mut dirs = vec![PathBuf::from(ROOT).join(rel)];
    if let Ok(entries) = std::fs::read_dir(ROOT) {
        for e in entries.flatten() {
            dirs.push(e.path().join(rel));
        }
    }
    for dir in dirs {
        for attempt in 0..100 {
            if !dir.exists() {
                break;
            }
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(if attempt < 10 {
                2
            } else {
                20
            }));
        }
    }
}
