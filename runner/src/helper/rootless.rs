//! What the helper changes when it runs in a user namespace (rootless, or inside a container that
//! made one): where its private tmpfs goes, whether a fresh /proc can be mounted (PID namespace),
//! and hiding cgroup hierarchies it cannot write so libcontainer does not try to.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::SetupError;

/// The helper's decisions for one run in a user namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rootless {
    /// More than one id is mapped (a subordinate range).
    pub range: bool,
    /// A fresh procfs can be mounted, so the container gets its own PID namespace.
    pub fresh_proc: bool,
    /// The cgroup hierarchy is writable (delegated): limits are enforced.
    pub cgroups: bool,
    /// sethostname is allowed (a container's seccomp profile may deny it without CAP_SYS_ADMIN,
    /// as podman's does): otherwise the container keeps the outer hostname.
    pub hostname: bool,
}

/// Root's private run dir (`/run/lamina`) when we may create it; otherwise a directory only this
/// user owns: `$XDG_RUNTIME_DIR/lamina-run`, else `$TMPDIR/lamina-run-<host uid>`.
pub(crate) fn run_dir() -> Result<PathBuf, SetupError> {
    let root = Path::new(super::RUN_DIR);
    if root.is_dir() || std::fs::create_dir_all(root).is_ok() {
        // Creatable is not enough: the mount on it must be ours to make (root in this namespace
        // owns it).
        if std::fs::metadata(root).is_ok_and(|m| m.uid() == rustix::process::geteuid().as_raw()) {
            return Ok(root.to_path_buf());
        }
    }
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(x) if x.is_absolute() && x.is_dir() => x.join("lamina-run"),
        _ => std::env::temp_dir().join(format!("lamina-run-{}", crate::userns::host_uid())),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SetupError::io("create", &dir, e)),
    }
    // In a shared /tmp another user could have planted it (or a symlink): it must be our directory.
    let md = std::fs::symlink_metadata(&dir).map_err(|e| SetupError::io("inspect", &dir, e))?;
    if !md.is_dir() || md.uid() != rustix::process::geteuid().as_raw() {
        return Err(SetupError::io(
            "use",
            &dir,
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "not a directory we own"),
        ));
    }
    Ok(dir)
}

/// Decide the rootless settings; `None` in the initial user namespace.
pub(crate) fn detect(scratch: &Path) -> Option<Rootless> {
    let iso = crate::userns::isolation();
    if !iso.in_user_namespace() {
        return None;
    }
    Some(Rootless {
        range: matches!(iso, crate::userns::Isolation::Rootless { .. }),
        fresh_proc: match std::env::var(FRESH_PROC_ENV).as_deref() {
            Ok("1") => true,
            Ok("0") => false,
            _ => fresh_proc_allowed(scratch),
        },
        cgroups: false,
        hostname: hostname_allowed(),
    })
}

/// Try sethostname in a UTS namespace of the helper's own (it has no use for the outer one, and the
/// container's is made below it either way).
fn hostname_allowed() -> bool {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).is_ok()
        && nix::unistd::sethostname("lamina").is_ok()
}

/// How the caller hands the helper its (once per process) probe result: the probe forks and execs
/// the binary twice, which cost a rootless build ~2 execs of a large binary on every RUN step. The
/// answer depends only on the procfs the namespaces see, the same for every run the caller starts.
pub(crate) const FRESH_PROC_ENV: &str = "_LAMINA_FRESH_PROC";

/// The caller's side: [`fresh_proc_allowed`] probed once per process, in a temp dir.
pub(crate) fn fresh_proc_once() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| tempfile::tempdir().is_ok_and(|d| fresh_proc_allowed(d.path())))
}

/// Can a new PID namespace get its own procfs here? The kernel refuses (EPERM) when the procfs we see
/// has paths covered by other mounts (a container's masked /proc/kcore and friends) unless the
/// container was started with them unmasked (`--security-opt unmask=ALL`, k8s `procMount: Unmasked`).
/// Probed in a child: only a process inside the new PID namespace can mount its procfs.
pub(crate) fn fresh_proc_allowed(scratch: &Path) -> bool {
    let target = scratch.join("proc-probe");
    if std::fs::create_dir_all(&target).is_err() {
        return false;
    }
    let cmd = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let status = std::process::Command::new(cmd)
        .arg(crate::spawn::HELPER_SUBCOMMAND)
        .arg(PROBE_PROC)
        .arg(&target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir(&target);
    status.is_ok_and(|s| s.success())
}

/// Hidden argument of the helper: `__run-helper --probe-proc DIR`.
pub(crate) const PROBE_PROC: &str = "--probe-proc";

/// The probe itself: new mount + PID namespace, then a child (pid 1 there) mounts proc on `dir`.
pub(crate) fn probe_proc_main(dir: &Path) -> std::process::ExitCode {
    use nix::sched::CloneFlags;
    if nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID).is_err() {
        return std::process::ExitCode::from(1);
    }
    let none: Option<&str> = None;
    let _ = nix::mount::mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none);
    // The new PID namespace only applies to children; a second exec of ourselves is its pid 1.
    let cmd = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let ok = std::process::Command::new(cmd)
        .arg(crate::spawn::HELPER_SUBCOMMAND)
        .arg(PROBE_PROC_CHILD)
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    std::process::ExitCode::from(if ok { 0 } else { 1 })
}

/// Second stage of the probe, run as pid 1 of the new PID namespace.
pub(crate) const PROBE_PROC_CHILD: &str = "--probe-proc-child";

pub(crate) fn probe_proc_child(dir: &Path) -> std::process::ExitCode {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match nix::mount::mount(Some("proc"), dir, Some("proc"), flags, None::<&str>) {
        Ok(()) => {
            let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
            std::process::ExitCode::SUCCESS
        }
        Err(_) => std::process::ExitCode::from(1),
    }
}

/// libcontainer joins every cgroup hierarchy it finds in mountinfo and fails when it may not write
/// there (always the case for cgroup v1 in a user namespace), and the hierarchies cannot be
/// unmounted (the kernel locks mounts a less privileged namespace inherited). So cover
/// /sys/fs/cgroup, in our private mount namespace only, with a tmpfs holding a stand-in of each
/// hierarchy for `cgroups_path`: the files libcontainer opens exist (cgroup.procs, cpuset's cpus and
/// mems) and take what it writes. Limits are then not enforced; the tmpfs vanishes with the helper.
pub(crate) fn fake_cgroups(cgroups_path: &str) -> Result<(), SetupError> {
    let target = Path::new("/sys/fs/cgroup");
    if !target.is_dir() {
        return Ok(());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| SetupError::io("read", Path::new("/proc/self/mountinfo"), e))?;
    let points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let point = PathBuf::from(pre.split_whitespace().nth(4)?);
            (fstype.starts_with("cgroup") && point.starts_with(target)).then_some(point)
        })
        .collect();
    let read = |f: &str| std::fs::read_to_string(target.join("cpuset").join(f)).unwrap_or_default();
    let (cpus, mems) = (read("cpuset.cpus"), read("cpuset.mems"));
    nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=1m,mode=0755"),
    )
    .map_err(|e| SetupError::Mount {
        what: "stand-in cgroup tmpfs",
        target: target.into(),
        source: e.into(),
    })?;
    let rel = Path::new(cgroups_path.trim_start_matches('/'));
    for point in points {
        let mut dir = point.clone();
        let mut levels = vec![dir.clone()];
        for c in rel.components() {
            dir.push(c);
            levels.push(dir.clone());
        }
        for dir in levels {
            std::fs::create_dir_all(&dir).map_err(|e| SetupError::io("create", &dir, e))?;
            let files = [
                ("cgroup.procs", ""),
                ("tasks", ""),
                ("cpuset.cpus", cpus.as_str()),
                ("cpuset.mems", mems.as_str()),
                ("devices.allow", ""),
                ("devices.deny", ""),
                ("freezer.state", "THAWED\n"),
            ];
            for (f, v) in files {
                let file = dir.join(f);
                std::fs::write(&file, v).map_err(|e| SetupError::io("create", &file, e))?;
            }
        }
    }
    Ok(())
}

/// An id is usable inside the namespace only if it is mapped.
pub(crate) fn check_ids(r: &Rootless, uid: u32, gid: u32) -> Result<(), SetupError> {
    let max = if r.range { crate::userns::max_id() } else { 0 };
    if uid > max || gid > max {
        return Err(SetupError::UnmappedId { uid, gid, max });
    }
    Ok(())
}
