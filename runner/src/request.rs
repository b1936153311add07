//! The request a caller hands to [`crate::run`]: plain data, serialised as JSON to the helper process.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Docker's default `PATH`, used when neither the image nor the caller sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One container run: rootfs layers, process, mounts, limits, network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// Container id: used for the cgroup path and state. Generated when `None`.
    pub id: Option<String>,
    /// Read-only layers of the rootfs, **bottom → top** (the order `Snapshots::ensure_chain` returns).
    /// May be empty (FROM scratch).
    pub lower_dirs: Vec<PathBuf>,
    /// Writable layer; after the run it holds the step's diff in overlayfs form (whiteouts, opaque dirs).
    pub upper_dir: PathBuf,
    /// overlayfs work dir: empty, on the same filesystem as `upper_dir`.
    pub work_dir: PathBuf,
    /// Extra mounts, applied in order after the standard ones.
    pub mounts: Vec<Mount>,
    pub process: Process,
    pub limits: Limits,
    pub network: Network,
    /// Container hostname; defaults to the first 12 characters of the id.
    pub hostname: Option<String>,
    /// Bind-mount a generated /etc/hostname. `docker run` does; BuildKit's RUN steps only get /etc/hosts
    /// and /etc/resolv.conf, so a step may delete or replace the image's /etc/hostname.
    pub etc_hostname: bool,
    /// Mount the rootfs read-only (`--read-only`).
    pub readonly_rootfs: bool,
    /// The `lamina` binary to re-exec as the single-threaded helper (`lamina __run-helper`).
    pub helper_exe: PathBuf,
    /// Published ports (`-p`); only meaningful with a private network namespace ([`Network::None`],
    /// [`Network::Bridge`]).
    pub ports: Vec<PortMapping>,
    /// Detached (`run -d`): the helper becomes a monitor in its own session, reports `Started` as soon
    /// as the process runs, and records the final status in `status_file`.
    pub detach: bool,
    /// Where the helper writes [`ContainerStatus`] JSON (running, then exited). Optional.
    pub status_file: Option<PathBuf>,
    /// Networks to join ([`Network::Bridge`]) and name resolution (every mode).
    #[serde(default)]
    pub net: NetOptions,
    /// A detached `-t` container's terminal is served here for `lamina attach` (see [`crate::tty`]).
    #[serde(default)]
    pub attach_socket: Option<PathBuf>,
    /// Detached: the monitor writes the container's stdout and stderr here as frames
    /// ([`crate::logs`]), the streams apart and time-stamped.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Capabilities, seccomp, rlimits, devices, cpusets, swap, block I/O (docker's `run` flags).
    #[serde(default)]
    pub confinement: crate::confinement::Confinement,
    /// Restart policy, health check, init: what `lamina run`'s containers get beyond one plain run.
    #[serde(default)]
    pub supervision: Supervision,
}

/// What the helper does beyond running the process once. The restart policy and health checks
/// are the detached monitor's (there is no daemon: they hold for as long as the monitor lives).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Supervision {
    /// `--restart`: whether a detached container's monitor runs the process again when it exits.
    pub restart: RestartPolicy,
    /// A file whose existence means the user stopped the container (`lamina stop`): the monitor
    /// restarts it no more, whatever the policy.
    pub stop_file: Option<PathBuf>,
    /// `--init`: lamina's own init runs as pid 1 and starts the process, reaping zombies and
    /// passing signals on.
    pub init: bool,
    /// `run -d --rm`: the container's record, which the monitor removes once the container is done.
    pub remove_dir: Option<PathBuf>,
    /// A detached container's health check, run by its monitor.
    pub health: Option<crate::health::HealthCheck>,
}

/// docker's `--restart` policies. There is no daemon: the detached container's monitor applies
/// the policy for as long as it lives, and `unless-stopped` behaves as `always` (a daemon restart,
/// where the two differ, doesn't exist here).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart on a non-zero exit, at most `max_retries` times (`None`: without limit).
    OnFailure {
        max_retries: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether a process that exited with `exit_code` after `restarts` restarts runs again.
    pub fn restarts_after(&self, exit_code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max_retries } => {
                exit_code != 0 && max_retries.is_none_or(|m| restarts < m)
            }
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }

    /// docker's name for the policy (`HostConfig.RestartPolicy.Name`).
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// Which networks a [`Network::Bridge`] container joins, and what goes into its /etc/hosts and
/// /etc/resolv.conf.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetOptions {
    /// `<store>/networks` (see [`crate::network::Networks`]); `None` = the process default
    /// ([`crate::network::set_default_dir`]).
    pub networks_dir: Option<PathBuf>,
    /// Network names; empty = the default network ([`crate::network::DEFAULT_NETWORK`]). The first
    /// one carries the default route.
    pub networks: Vec<String>,
    /// Container name and `--network-alias`es: what peers on user networks resolve to this container.
    pub aliases: Vec<String>,
    /// `--add-host NAME:IP`.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// `--dns`, `--dns-search`, `--dns-option`: replace the host's values of that kind.
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
}

/// The process to run inside the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Process {
    /// argv; `args[0]` is looked up in the container's `PATH`.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries. `PATH`, `HOME` and `HOSTNAME` are added like docker when missing.
    pub env: Vec<String>,
    /// Absolute working directory inside the container; created (root-owned, 0755) if missing.
    pub cwd: String,
    /// Docker `USER` syntax: `name`, `uid`, `name:group`, `uid:gid`. Names are resolved from the
    /// image's own /etc/passwd and /etc/group. `None` = root.
    pub user: Option<String>,
    /// Extra supplementary groups (names or numbers), like `--group-add`.
    pub additional_groups: Vec<String>,
    /// Give the process a pseudo-terminal of its own, inside the container's devpts (`-t`): the helper
    /// proxies it to its stdio, and serves it on [`RunRequest::attach_socket`] when detached.
    pub tty: bool,
}

/// A mount inside the container. Destinations are resolved inside the rootfs (symlinks in the image
/// cannot point them outside it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Mount {
    /// Bind a host path (file or directory).
    Bind {
        source: PathBuf,
        destination: String,
        readonly: bool,
    },
    /// A fresh tmpfs. `size` in bytes (0 = kernel default), `mode` e.g. 0o1777.
    Tmpfs {
        destination: String,
        size: u64,
        mode: u32,
    },
}

/// cgroup limits; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    /// Memory limit in bytes (swap is capped at the same value: no swap use).
    pub memory: Option<u64>,
    /// CPU count, e.g. 0.5 → CFS quota 50000 / period 100000.
    pub cpus: Option<f64>,
    /// Max number of tasks (`--pids-limit`).
    pub pids: Option<i64>,
}

/// Network mode.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Network {
    /// Private network namespace with only loopback, up (`--network none`; also the default).
    #[default]
    None,
    /// The host's network namespace (`--network host`).
    Host,
    /// Private network namespace on lamina bridges (`--network bridge` or a user network): a veth
    /// per network in [`RunRequest::net`], an address from its lease, NAT outbound.
    Bridge,
}

/// Transport of a published port.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/proto]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: std::net::IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// What happened to the process.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunOutcome {
    /// Shell-style exit code: the process's status, or 128 + signal number.
    pub exit_code: i32,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
    /// The kernel OOM killer fired in the container's cgroup.
    pub oom_killed: bool,
}

/// State written by the helper to `status_file` for detached containers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Pid of the helper (monitor) process.
    pub monitor_pid: i32,
    /// Host pid of the container's init process, while running.
    pub pid: Option<i32>,
    pub running: bool,
    pub outcome: Option<RunOutcome>,
    /// Why the start failed, if it did.
    pub error: Option<String>,
    /// Times the monitor ran the process again under its restart policy.
    #[serde(default)]
    pub restart_count: u32,
    /// Exited, and the monitor is waiting to run it again.
    #[serde(default)]
    pub restarting: bool,
    /// When the process last started and last exited, Unix nanoseconds.
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub finished_at: Option<u64>,
}
