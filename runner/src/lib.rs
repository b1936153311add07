//! lamina-runner: the sandbox for RUN steps and `lamina run`.
//!
//! A caller builds a [`RunRequest`] (rootfs layers, upper dir, mounts, process, limits, network) and
//! calls [`run`] (or [`spawn`] for detached/streaming use). The runner re-execs the `lamina` binary as
//! a single-threaded helper ([`helper_main`], hidden subcommand [`HELPER_SUBCOMMAND`]), sends it the
//! request over a socketpair on fd 3 and reads back [`RunOutcome`]. The helper mounts an overlay
//! rootfs, writes an OCI runtime spec and runs it with youki's libcontainer (namespaces, cgroups v1/v2,
//! capabilities, seccomp, masked paths), then tears everything down.
//!
//! One confinement for every way into a container: `helper::spec` builds the container's config.json
//! (seccomp profile from `helper::seccomp`, docker's capability set in bounding/effective/permitted
//! with inheritable and ambient empty, no_new_privs, namespaces, cgroup, masked and read-only paths,
//! rlimits). `lamina run` and RUN steps run it as the container's init; `lamina exec`
//! ([`exec_helper_main`]) derives its process from that same config.json and installs the same
//! seccomp filter (libcontainer's tenant path drops it); the port proxy's threads in the container's
//! network namespace load the same filter with no_new_privs and no capabilities. User mounts are
//! made from fds (`helper::mounts`), never from path strings the kernel resolves again.
//!
//! Networks ([`network`]): `Network::Bridge` containers get a veth on a lamina bridge, an address
//! leased under `<store>/networks/`, NAT through lamina's nftables table and a hosts file that names
//! their peers; the helper joins after creating the container and leaves after reaping it.
//!
//! Terminals ([`tty`]): `-t` gives the process a pty from the container's own devpts; the helper
//! proxies it to the caller (raw mode is the caller's), and a detached one serves it to `lamina
//! attach` clients on the container's attach socket.
//!
//! Rootless ([`userns`]): a non-root `lamina` enters a user namespace at startup (subordinate range
//! via newuidmap, else a single id); the helper then mounts overlay with `userxattr`, hides the cgroup
//! hierarchies it may not write (limits are not enforced, as podman warns), and runs without a PID
//! namespace when the kernel refuses a fresh /proc (a container with masked /proc paths).
//!
//! Supervision ([`Supervision`], in the detached monitor): `--restart` policies re-run the container
//! on the same upper dir until the policy or a `stop` file says no more; `--init` puts lamina's own
//! static pid 1 (`init/main.rs`) in the init layer; [`health`] checks run from a prober process.
//!
//! From outside a running container: [`access::RootView`] (its tree for `cp`/`export`, every path
//! resolved in-root), [`cgroupfs::Cgroup`] (counters for `stats`, processes for `top`, the freezer
//! for `pause`), [`logs::frames_from`] (its log, streamed).
//!
//! Synchronous by design: no tokio in here; async callers use `spawn_blocking`.

pub mod access;
pub mod cgroupfs;
pub mod confinement;
mod error;
pub mod health;
mod helper;
pub mod logs;
pub mod network;
mod protocol;
mod report;
mod request;
mod spawn;
pub mod tty;
pub mod userns;
mod validate;

pub use confinement::Confinement;
pub use error::{ExecFailure, FailureKind, RunError, error_chain};
pub use helper::exec::{EXEC_SUBCOMMAND, ExecRequest, exec_helper_main};
pub use helper::helper_main;
pub use helper::pty::connect_long as connect_attach;
/// Signals the helper passes on to the container's init (besides SIGWINCH, these are what a caller
/// should forward to the helper, as docker's sig-proxy does).
pub use helper::{FORWARDED as FORWARDED_SIGNALS, TERMINATING as TERMINATING_SIGNALS};
pub use report::{IsolationReport, isolation_report};
pub use request::{
    ContainerStatus, DEFAULT_PATH, Limits, Mount, NetOptions, Network, PortMapping, Process, Protocol,
    RestartPolicy, RunOutcome, RunRequest, Supervision,
};
pub use spawn::{HELPER_SUBCOMMAND, RunStdio, Running, run, run_with_stdio, spawn};

/// A new random container id: 64 hex digits, like docker's.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).is_err() {
        // getrandom cannot fail for 32 bytes on Linux ≥ 3.17; fall back to time + pid entropy.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
        bytes[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Empties an overlay work dir a previous run of the same container used: the rootfs is mounted
/// `volatile`, and overlayfs refuses a work dir holding that run's `work/incompat/volatile` marker.
pub fn clear_work_dir(work: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(work) {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Now, Unix nanoseconds (the status file's and the health log's times).
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
