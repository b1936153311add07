//! Rootless entry: a non-root `lamina` moves itself into a new user namespace once, at the top of
//! `main` (while single-threaded), so the store, unpacking, the layer writer and the runner all work
//! as "root in the user namespace" — stat() gives in-container ids, so layer tars carry them and a
//! rootless image equals a root one. This is podman's design.
//!
//! The map comes from /etc/subuid and /etc/subgid through the setuid `newuidmap`/`newgidmap`
//! (Debian `uidmap`): 0 → the user, 1..=65536 → the start of the user's range. Without a range or the
//! tools, only 0 → the user is mapped (the kernel lets a process write that one line itself), and any
//! other id fails with EINVAL: callers turn that into an error naming /etc/subuid.
//!
//! The mapping is written by a child forked *before* `unshare(CLONE_NEWUSER)`: a setuid binary
//! exec'd from inside the new namespace would not get host root (its owner is unmapped there), and
//! the writer of `/proc/PID/uid_map` must be in the parent namespace.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

/// How many ids above 0 a range maps (podman's default size).
pub const RANGE_SIZE: u32 = 65536;

/// The isolation in effect for this process.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Isolation {
    /// Real root in the initial user namespace.
    Root,
    /// A user namespace with a subordinate range: ids 0..=65536 usable.
    Rootless { uid_map: String, gid_map: String },
    /// A user namespace with only 0 mapped (to the user).
    SingleId { uid_map: String, reason: String },
    /// Not root and no user namespace could be made: commands that unpack or run fail.
    Unprivileged { reason: String },
}

impl Isolation {
    /// In a user namespace (ours or one a container runtime made).
    pub fn in_user_namespace(&self) -> bool {
        matches!(self, Isolation::Rootless { .. } | Isolation::SingleId { .. })
    }
}

static STATE: OnceLock<Entered> = OnceLock::new();

#[derive(Debug, Clone)]
struct Entered {
    isolation: Isolation,
    /// This process made the namespace (it was started by a non-root user).
    entered: bool,
    host_uid: u32,
}

/// Enter a user namespace if we are not root. Call first thing in `main`, before any thread exists.
/// Idempotent; never fails: what happened is in [`isolation`].
pub fn enter() -> &'static Isolation {
    &STATE.get_or_init(enter_once).isolation
}

/// The isolation in effect (detected from `/proc/self/uid_map` if [`enter`] was not called).
pub fn isolation() -> &'static Isolation {
    &STATE.get_or_init(|| detect_current(false)).isolation
}

/// Did this process create its user namespace (so it was started by a non-root user)?
pub fn entered() -> bool {
    STATE.get().is_some_and(|s| s.entered)
}

/// The host uid the process was started as (equal to 0 only for real root).
pub fn host_uid() -> u32 {
    STATE.get_or_init(|| detect_current(false)).host_uid
}

fn detect_current(entered: bool) -> Entered {
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    let host_uid = outer_id_of_root(&uid_map).unwrap_or_else(|| rustix::process::getuid().as_raw());
    let isolation = if is_initial_map(&uid_map) {
        if rustix::process::geteuid().is_root() {
            Isolation::Root
        } else {
            Isolation::Unprivileged {
                reason: "not root and not in a user namespace".into(),
            }
        }
    } else if mapped_count(&uid_map) > 1 {
        Isolation::Rootless {
            uid_map: one_line(&uid_map),
            gid_map: one_line(&gid_map),
        }
    } else {
        Isolation::SingleId {
            uid_map: one_line(&uid_map),
            reason: "the user namespace maps only one id".into(),
        }
    };
    Entered {
        isolation,
        entered,
        host_uid,
    }
}

fn enter_once() -> Entered {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    if rustix::process::geteuid().is_root() {
        return detect_current(false);
    }
    let name = user_name(uid);
    let uid_range = name.as_deref().and_then(|n| subordinate("/etc/subuid", n, uid));
    let gid_range = name.as_deref().and_then(|n| subordinate("/etc/subgid", n, uid));
    let tools = (which("newuidmap"), which("newgidmap"));
    let why_single = match (&uid_range, &gid_range, &tools) {
        (Some(_), Some(_), (Some(_), Some(_))) => None,
        (None, _, _) | (_, None, _) => Some(format!(
            "no range for {} in /etc/subuid and /etc/subgid",
            name.clone().unwrap_or_else(|| format!("uid {uid}"))
        )),
        _ => Some("newuidmap/newgidmap (package uidmap) not found".to_string()),
    };
    let result = match (&why_single, uid_range, gid_range, tools) {
        (None, Some(ur), Some(gr), (Some(nu), Some(ng))) => {
            match enter_with_range(uid, gid, ur, gr, &nu, &ng) {
                Ok(()) => Ok(None),
                Err(e) => {
                    // The namespace may exist already with no map: a fresh process is the only way
                    // back, so only fall back if unshare itself failed.
                    if e.unshared {
                        return Entered {
                            isolation: Isolation::Unprivileged {
                                reason: format!("mapping the subordinate range failed: {}", e.msg),
                            },
                            entered: true,
                            host_uid: uid,
                        };
                    }
                    enter_single(uid, gid).map(|()| Some(format!("{}; newuidmap failed", e.msg)))
                }
            }
        }
        _ => enter_single(uid, gid).map(|()| why_single.clone()),
    };
    match result {
        Ok(reason) => {
            let _ = become_root();
            let mut st = detect_current(true);
            st.host_uid = uid;
            if let (Some(reason), Isolation::SingleId { reason: r, .. }) = (reason, &mut st.isolation) {
                *r = reason;
            }
            st
        }
        Err(e) => Entered {
            isolation: Isolation::Unprivileged {
                reason: format!("cannot create a user namespace: {e}"),
            },
            entered: false,
            host_uid: uid,
        },
    }
}

struct EnterError {
    msg: String,
    unshared: bool,
}

fn enter_with_range(
    uid: u32,
    gid: u32,
    (ustart, ucount): (u32, u32),
    (gstart, gcount): (u32, u32),
    newuidmap: &Path,
    newgidmap: &Path,
) -> Result<(), EnterError> {
    let pid = std::process::id().to_string();
    let cstr = |s: &str| CString::new(s).expect("no NUL");
    let map_args = |tool: &Path, id: u32, start: u32, count: u32| -> Vec<CString> {
        let count = count.min(RANGE_SIZE);
        vec![
            cstr(&tool.to_string_lossy()),
            cstr(&pid),
            cstr("0"),
            cstr(&id.to_string()),
            cstr("1"),
            cstr("1"),
            cstr(&start.to_string()),
            cstr(&count.to_string()),
        ]
    };
    let uargs = map_args(newuidmap, uid, ustart, ucount);
    let gargs = map_args(newgidmap, gid, gstart, gcount);
    let uptrs: Vec<*const libc::c_char> = uargs
        .iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let gptrs: Vec<*const libc::c_char> = gargs
        .iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let err = |msg: String, unshared| EnterError { msg, unshared };
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| err(format!("pipe: {e}"), false))?;
    // SAFETY: we are single-threaded (called before any thread exists), so fork is safe; the child
    // only calls async-signal-safe functions (read, fork, execv, waitpid, _exit) on values prepared
    // before the fork.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(err(format!("fork: {}", std::io::Error::last_os_error()), false));
    }
    if child == 0 {
        drop(w);
        let mut b = [0u8; 1];
        // SAFETY: see above; plain syscalls on owned fds and prepared argv arrays.
        unsafe {
            use std::os::fd::AsRawFd;
            if libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(3);
            }
            for argv in [&uptrs, &gptrs] {
                let p = libc::fork();
                if p == 0 {
                    libc::execv(argv[0], argv.as_ptr());
                    libc::_exit(127);
                }
                let mut status = 0;
                if p < 0 || libc::waitpid(p, &mut status, 0) != p || status != 0 {
                    libc::_exit(4);
                }
            }
            libc::_exit(0);
        }
    }
    drop(r);
    let unshared = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER);
    let mut w = std::fs::File::from(w);
    let _ = w.write_all(if unshared.is_ok() { b"g" } else { b"" });
    drop(w);
    let mut status = 0;
    // SAFETY: waiting for the child we forked above.
    unsafe { libc::waitpid(child, &mut status, 0) };
    if let Err(e) = unshared {
        return Err(err(format!("unshare(CLONE_NEWUSER): {e}"), false));
    }
    if status != 0 {
        return Err(err(
            format!(
                "{} {} exited with status {status}",
                newuidmap.display(),
                newgidmap.display()
            ),
            true,
        ));
    }
    Ok(())
}

fn enter_single(uid: u32, gid: u32) -> std::io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// After the map is written our ids read as 0; set them for real (and drop host supplementary
/// groups, which show as the overflow gid) so files we create belong to the namespace's root.
fn become_root() -> std::io::Result<()> {
    // SAFETY: plain credential syscalls, single-threaded.
    unsafe {
        let _ = libc::setgroups(0, std::ptr::null());
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The highest id this process's user namespace maps (0 in single-id mode).
pub fn max_id() -> u32 {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    u32::try_from(mapped_count(&map).saturating_sub(1)).unwrap_or(u32::MAX)
}

fn is_initial_map(map: &str) -> bool {
    map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

fn outer_id_of_root(map: &str) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == "0").then(|| f[1].parse().ok()).flatten()
    })
}

fn mapped_count(map: &str) -> u64 {
    map.lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum()
}

fn one_line(map: &str) -> String {
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// The user's first range in `file` (`name:start:count` or `uid:start:count`).
fn subordinate(file: &str, name: &str, uid: u32) -> Option<(u32, u32)> {
    parse_subordinate(&std::fs::read_to_string(file).ok()?, name, uid)
}

pub(crate) fn parse_subordinate(text: &str, name: &str, uid: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() != 3 || (f[0] != name && f[0] != uid.to_string()) {
            return None;
        }
        let (start, count) = (f[1].parse().ok()?, f[2].parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_by_name_or_uid() {
        let t = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(parse_subordinate(t, "alice", 1000), Some((100000, 65536)));
        assert_eq!(parse_subordinate(t, "carol", 1001), Some((200000, 1000)));
        assert_eq!(parse_subordinate(t, "bob", 1002), None, "empty range");
        assert_eq!(parse_subordinate(t, "dave", 1003), None);
    }

    #[test]
    fn maps() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        let m = "0 1000 1\n1 100000 65536\n";
        assert!(!is_initial_map(m));
        assert_eq!(outer_id_of_root(m), Some(1000));
        assert_eq!(mapped_count(m), 65537);
        assert_eq!(one_line(m), "0 1000 1, 1 100000 65536");
    }
}
