//! The helper: `lamina __run-helper`, re-exec'd by [`crate::spawn`] so it is single-threaded when it
//! drives libcontainer (which forks and is not safe in a multi-threaded process).
//!
//! Stage 1 gives the helper a private mount namespace (slave to the host's, so host unmounts still
//! propagate in) with a private tmpfs at `/run/lamina`: every mount the run makes — the bundle, the
//! overlay rootfs, libcontainer's state — lives only there and vanishes with the helper, whatever way
//! it exits. It then re-execs itself from a read-only bind mount of its own binary, so
//! `/proc/self/exe` of every process derived from it (the container's init before its execve) points
//! at a read-only mount and cannot be overwritten from inside the container (CVE-2019-5736).
//!
//! Stage 2 reads the request from fd 3, mounts the overlay, resolves user and workdir inside the
//! rootfs, makes the user mounts and /etc files from fds onto in-root targets ([`mounts`]), writes
//! config.json ([`spec`], the one spec every entry uses), creates and starts the container, forwards
//! signals, reaps, reads the OOM counter, deletes the container (cgroups, state) and unmounts.

mod cgroup;
mod confine;
pub(crate) mod exec;
mod fd;
mod init;
mod mounts;
mod net;
pub(crate) mod pty;
mod restart;
mod rootfs;
mod rootless;
mod slirp;
pub(crate) use rootless::{FRESH_PROC_ENV, fresh_proc_once};

pub(crate) use slirp::program as user_net_program;
mod seccomp;
mod spec;
mod user;

/// The helper's overlay mount, for [`crate::access`]'s views of a container's root from outside.
/// The mount call runs from `base` (short lower names); the caller's working dir is restored.
pub(crate) fn mount_overlay_for_access(
    base: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), crate::access::AccessError> {
    let cwd = std::env::current_dir().ok();
    let userxattr = crate::userns::isolation().in_user_namespace();
    let r = rootfs::mount_overlay(base, lowers, upper, work, target, userxattr);
    if let Some(c) = cwd {
        let _ = std::env::set_current_dir(c);
    }
    r.map_err(|e| crate::access::AccessError::Mount(Box::new(e)))
}

use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::signal as sigs;
use signal_hook::iterator::Signals;

use crate::error::FailureKind;
use crate::protocol::HelperMessage;
use crate::request::{ContainerStatus, Network, RunOutcome, RunRequest};

/// Mount point of each helper's private tmpfs (the directory itself is shared and stays empty).
const RUN_DIR: &str = "/run/lamina";
const STAGE2: &str = "--stage2";

/// Errors while preparing or starting a container, inside the helper.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount {what} at {target}")]
    Mount {
        what: &'static str,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create a private mount namespace")]
    Unshare(#[source] std::io::Error),
    #[error("{layers} layers: overlay mount options exceed a page")]
    OverlayOptionsTooLong { layers: usize },
    #[error("path {path} resolves outside the container rootfs")]
    Escape { path: PathBuf },
    #[error("path {path} resolves to {resolved}, inside a filesystem the runtime owns")]
    IntoKernelFs { path: PathBuf, resolved: PathBuf },
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoSuchUser { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    NoSuchGroup { group: String },
    #[error("bad request from caller")]
    Request(#[source] serde_json::Error),
    #[error("cannot enter the container network namespace")]
    Netns {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot confine the port proxy")]
    Confine(#[source] confine::ConfineError),
    #[error("cannot attach the container to its networks")]
    Network(#[source] crate::network::NetError),
    #[error("rootless networking: {why}")]
    UserNet { why: String },
    #[error("cannot bring up loopback: {message}")]
    Loopback { message: String },
    #[error("cannot publish port on {addr}")]
    Publish {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(#[from] libcontainer::error::LibcontainerError),
    #[error(
        "user {uid}:{gid} is not mapped in this user namespace (ids 0..={max}): give the user a \
         subordinate range in /etc/subuid and /etc/subgid (and install newuidmap/newgidmap, package uidmap)"
    )]
    UnmappedId { uid: u32, gid: u32, max: u32 },
    #[error("interrupted before the container started")]
    Interrupted,
    #[error("--init is unavailable: this lamina was built without a static lamina-init (no libc.a)")]
    InitUnavailable,
    #[error(transparent)]
    InvalidRequest(#[from] crate::error::RunError),
}

impl SetupError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> SetupError {
        SetupError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn kind(&self) -> FailureKind {
        match self {
            SetupError::NoSuchUser { .. }
            | SetupError::NoSuchGroup { .. }
            | SetupError::Escape { .. }
            | SetupError::IntoKernelFs { .. }
            | SetupError::InvalidRequest(_)
            | SetupError::Publish { .. }
            | SetupError::UnmappedId { .. }
            | SetupError::InitUnavailable
            | SetupError::OverlayOptionsTooLong { .. } => FailureKind::User,
            SetupError::Network(e) if e.is_user_error() => FailureKind::User,
            SetupError::Runtime(e) => {
                let msg = e.to_string();
                if msg.contains("not found in $PATH") || msg.contains("executing") {
                    FailureKind::Exec
                } else {
                    FailureKind::Internal
                }
            }
            _ => FailureKind::Internal,
        }
    }
}

/// Entry point of the hidden subcommand; `args` are the arguments after `__run-helper`.
pub fn helper_main(args: &[String]) -> ExitCode {
    match (args.first().map(String::as_str), args.get(1)) {
        (Some(STAGE2), dir) => return stage2(dir.map(PathBuf::from)),
        (Some(crate::health::PROBER_ARG), Some(json)) => return crate::health::prober_main(json),
        (Some(rootless::PROBE_PROC), Some(dir)) => return rootless::probe_proc_main(Path::new(dir)),
        (Some(rootless::PROBE_PROC_CHILD), Some(dir)) => return rootless::probe_proc_child(Path::new(dir)),
        _ => {}
    }
    let err = stage1();
    // Only reached on failure: report it on the request socket if we can.
    if let Ok(mut sock) = fd::take_request_socket() {
        let msg = HelperMessage::Failed {
            kind: FailureKind::Internal,
            message: crate::error_chain(&err),
        };
        let _ = send(&mut sock, &msg);
    } else {
        eprintln!("lamina run helper: {}", crate::error_chain(&err));
    }
    ExitCode::from(2)
}

fn stage1() -> SetupError {
    // fd 3 is the request socket; anything above is a leak from our caller.
    if let Err(e) = fd::cloexec_from(4) {
        return SetupError::io("mark close-on-exec", Path::new("inherited fds"), e);
    }
    let run_dir = match rootless::run_dir() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let run_dir = run_dir.as_path();
    // By path: after unshare, /proc/self/exe names a mount of the old namespace, which bind refuses.
    let self_exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => p,
        Err(e) => return SetupError::io("resolve", Path::new("/proc/self/exe"), e),
    };
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
        return SetupError::Unshare(e.into());
    }
    let none: Option<&str> = None;
    if let Err(e) = nix::mount::mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none) {
        return SetupError::Mount {
            what: "/ as slave",
            target: "/".into(),
            source: e.into(),
        };
    }
    if let Err(e) = nix::mount::mount(
        Some("tmpfs"),
        run_dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0700"),
    ) {
        return SetupError::Mount {
            what: "private tmpfs",
            target: run_dir.into(),
            source: e.into(),
        };
    }
    let exe = run_dir.join("exe");
    if let Err(e) = std::fs::File::create(&exe) {
        return SetupError::io("create", &exe, e);
    }
    if let Err(e) = nix::mount::mount(Some(&self_exe), &exe, none, MsFlags::MS_BIND, none) {
        return SetupError::Mount {
            what: "helper binary",
            target: exe,
            source: e.into(),
        };
    }
    let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Err(e) = nix::mount::mount(none, &exe, none, ro, none) {
        return SetupError::Mount {
            what: "helper binary read-only",
            target: exe,
            source: e.into(),
        };
    }
    let err = std::process::Command::new(&exe)
        .arg0("lamina")
        .arg(crate::spawn::HELPER_SUBCOMMAND)
        .arg(STAGE2)
        .arg(run_dir)
        .exec();
    SetupError::io("exec", &exe, err)
}

fn send(sock: &mut std::os::unix::net::UnixStream, msg: &HelperMessage) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    // MSG_NOSIGNAL: a caller that went away must not kill us with SIGPIPE before cleanup.
    let mut buf = &line[..];
    while !buf.is_empty() {
        let n = rustix::net::send(&*sock, buf, rustix::net::SendFlags::NOSIGNAL)?;
        buf = &buf[n..];
    }
    sock.flush()
}

fn stage2(run_dir: Option<PathBuf>) -> ExitCode {
    let run_dir = run_dir.unwrap_or_else(|| PathBuf::from(RUN_DIR));
    let _ = std::env::set_current_dir("/");
    let sock = match fd::take_request_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lamina run helper: no request socket: {e}");
            return ExitCode::from(2);
        }
    };
    fd::default_sigpipe();
    let mut reader = match sock.try_clone() {
        Ok(s) => std::io::BufReader::new(s),
        Err(e) => {
            eprintln!("lamina run helper: {e}");
            return ExitCode::from(2);
        }
    };
    let mut line = String::new();
    let req: Result<RunRequest, SetupError> = reader
        .read_line(&mut line)
        .map_err(|e| SetupError::io("read", Path::new("request socket"), e))
        .and_then(|_| serde_json::from_str(&line).map_err(SetupError::Request));
    let mut sink = Reporter {
        sock: Some(sock),
        status_file: None,
        restart_count: 0,
        restarting: false,
        started_at: None,
    };
    let mut remove_dir = None;
    let result = req.and_then(|req| {
        sink.status_file = req.status_file.clone();
        remove_dir = req.supervision.remove_dir.clone().filter(|_| req.detach);
        let first = supervise(&req, &run_dir, &mut sink, Some(reader));
        if req.detach {
            restart::restart_loop(&req, &run_dir, &mut sink, first)
        } else {
            first
        }
    });
    let msg = match result {
        Ok(outcome) => HelperMessage::Exited(outcome),
        Err(e) => HelperMessage::Failed {
            kind: e.kind(),
            message: crate::error_chain(&e),
        },
    };
    sink.report(&msg);
    // `run -d --rm`: nobody waits for a detached container, so its monitor removes it.
    if let Some(d) = remove_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    ExitCode::SUCCESS
}

/// Where the helper says what happened: the caller's socket, and for detached containers the status
/// file.
struct Reporter {
    sock: Option<std::os::unix::net::UnixStream>,
    status_file: Option<PathBuf>,
    restart_count: u32,
    /// The next `Exited` is followed by a restart.
    restarting: bool,
    started_at: Option<u64>,
}

impl Reporter {
    /// The status file first: a caller that heard `Started` on the socket may read it at once.
    fn report(&mut self, msg: &HelperMessage) {
        self.write_status(msg);
        if let Some(sock) = &mut self.sock {
            let _ = send(sock, msg);
        }
    }

    fn write_status(&mut self, msg: &HelperMessage) {
        if let HelperMessage::Started { .. } = msg {
            self.started_at = Some(crate::now_ns());
        }
        if let Some(path) = &self.status_file {
            let monitor_pid = std::process::id() as i32;
            let blank = ContainerStatus {
                monitor_pid,
                pid: None,
                running: false,
                outcome: None,
                error: None,
                restart_count: self.restart_count,
                restarting: false,
                started_at: self.started_at,
                finished_at: None,
            };
            let status = match msg {
                HelperMessage::Started { pid } => ContainerStatus {
                    pid: Some(*pid),
                    running: true,
                    ..blank
                },
                HelperMessage::Exited(o) => ContainerStatus {
                    outcome: Some(*o),
                    restarting: self.restarting,
                    finished_at: Some(crate::now_ns()),
                    ..blank
                },
                HelperMessage::Failed { message, .. } => ContainerStatus {
                    error: Some(message.clone()),
                    finished_at: Some(crate::now_ns()),
                    ..blank
                },
            };
            let tmp = path.with_extension("tmp");
            if let Ok(json) = serde_json::to_vec(&status)
                && std::fs::write(&tmp, json).is_ok()
            {
                let _ = std::fs::rename(&tmp, path);
            }
        }
    }

    /// Detached: the caller only waits for `Started`; close the socket so it sees EOF after that.
    fn detach(&mut self) {
        self.sock = None;
    }
}

/// Everything that must be undone, in reverse order of setup; runs on every path out of `supervise`.
struct Cleanup {
    cgroups_path: String,
    real_cgroups: bool,
    /// The container's init, until it has been reaped.
    init: Option<Pid>,
    rootfs: Option<PathBuf>,
    root: Option<rootfs::Root>,
    /// Mounts made on the rootfs; unmounted before the stubs they sit on are removed.
    mounted: mounts::Mounted,
    container: Option<Container>,
    /// Networks the container joined (or may have half-joined): left once init is gone.
    network: Option<(crate::network::Networks, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(init) = self.init.take() {
            // Failed between create and exit: init (and with it the pid namespace) must be gone
            // before the cgroup can be removed.
            let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(init, None);
        }
        if let Some((nets, id)) = self.network.take()
            && let Err(e) = crate::network::leave(&nets, &id)
        {
            // Nothing to report to any more; the next network command reclaims what is left.
            eprintln!("lamina run helper: leaving networks: {}", crate::error_chain(&e));
        }
        // libcontainer's own delete() re-reads state and scans /proc per subsystem, and gives up at
        // the first busy cgroup; the state lives in our private tmpfs anyway, so only the cgroups
        // need removing, which remove_leftovers does (killing stragglers, retrying).
        self.container.take();
        // Stand-in cgroups (rootless) hold stale pids and vanish with our mount namespace.
        if self.real_cgroups {
            cgroup::remove_leftovers(&self.cgroups_path);
        }
        self.mounted.unmount_all(self.root.as_mut());
        if let Some(mut root) = self.root.take() {
            root.remove_created();
        }
        if let Some(rootfs) = self.rootfs.take() {
            let _ = nix::mount::umount2(&rootfs, MntFlags::MNT_DETACH);
        }
    }
}

pub const TERMINATING: [i32; 4] = [sigs::SIGINT, sigs::SIGTERM, sigs::SIGHUP, sigs::SIGQUIT];
/// Every other signal a process may catch, forwarded to the container's init as docker's sig-proxy
/// does (SIGCHLD is ours, SIGPIPE and SIGURG are not meant for it, SIGWINCH resizes a terminal).
pub const FORWARDED: [i32; 13] = [
    sigs::SIGUSR1,
    sigs::SIGUSR2,
    sigs::SIGALRM,
    sigs::SIGTSTP,
    sigs::SIGCONT,
    sigs::SIGTTIN,
    sigs::SIGTTOU,
    sigs::SIGVTALRM,
    sigs::SIGPROF,
    sigs::SIGXCPU,
    sigs::SIGXFSZ,
    sigs::SIGIO,
    sigs::SIGWINCH,
];
/// Interrupts (INT, TERM, QUIT) after which a foreground container is killed outright, for an init
/// that ignores them (a pid 1 without handlers does); docker's daemon has the same escape hatch.
const KILL_AFTER: u32 = 3;

fn supervise(
    req: &RunRequest,
    run_dir: &Path,
    sink: &mut Reporter,
    control: Option<std::io::BufReader<std::os::unix::net::UnixStream>>,
) -> Result<RunOutcome, SetupError> {
    crate::validate::request(req)?;
    let id = req.id.clone().unwrap_or_else(crate::new_id);
    let rootless = rootless::detect(run_dir);
    let mut adjusted;
    // Rootless on the default network: slirp4netns's user-mode network in place of the bridge.
    let mut user_net: Option<PathBuf> = None;
    let req = match rootless {
        Some(r) => {
            adjusted = req.clone();
            if !r.cgroups {
                rootless::fake_cgroups(&format!("/lamina/{id}"))?;
                if req.limits != crate::request::Limits::default() {
                    eprintln!(
                        "lamina: warning: rootless without a delegated cgroup: --memory, --cpus and \
                         --pids-limit are not enforced"
                    );
                }
            }
            if req.network == Network::Bridge {
                // A bridge needs root on the host (veth, nftables); slirp4netns gives the container's
                // own namespace outbound access with the user's rights instead. Without it, sharing the
                // user's network gives the step nothing the user lacks, where a private namespace with
                // no route would break every step that downloads.
                match slirp::program() {
                    Ok(p) => {
                        user_net = Some(p);
                        if adjusted.net.dns.is_empty() {
                            adjusted.net.dns = vec![std::net::IpAddr::V4(slirp::DNS)];
                        }
                    }
                    Err(why) => {
                        eprintln!(
                            "lamina: note: rootless without user-mode networking ({why}): using the \
                             host network (use --network none to isolate)"
                        );
                        adjusted.network = Network::Host;
                        adjusted.ports.clear();
                    }
                }
            }
            &adjusted
        }
        None => req,
    };
    let with_init;
    let req = if req.supervision.init {
        let mut r = req.clone();
        r.process.args = init::wrap(&req.process.args);
        with_init = r;
        &with_init
    } else {
        req
    };
    // Registered before any child exists, so no SIGCHLD and no early ^C is lost. Handlers (unlike an
    // ignored or blocked disposition) are reset by execve, so the container starts with defaults.
    let mut signals = Signals::new(TERMINATING.iter().chain(&FORWARDED).chain(&[sigs::SIGCHLD]))
        .map_err(|e| SetupError::io("install signal handlers for", Path::new("helper"), e))?;
    let parent = nix::unistd::getppid();
    if req.detach {
        let _ = nix::unistd::setsid();
    }

    let bundle = run_dir.join("bundle");
    let rootfs_dir = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs_dir).map_err(|e| SetupError::io("create", &rootfs_dir, e))?;
    // Like docker's init layer: the mount points every container needs, in a tmpfs layer above the
    // image, so creating them never writes into the upper dir (a build step's diff).
    let init_layer = run_dir.join("init");
    for d in ["proc", "sys", "dev", "etc"] {
        let p = init_layer.join(d);
        std::fs::create_dir_all(&p).map_err(|e| SetupError::io("create", &p, e))?;
    }
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        if f == "etc/hostname" && !req.etc_hostname {
            continue;
        }
        let p = init_layer.join(f);
        std::fs::write(&p, b"").map_err(|e| SetupError::io("create", &p, e))?;
    }
    if req.supervision.init {
        init::install(&init_layer)?;
    }
    let mut lowers = req.lower_dirs.clone();
    lowers.push(init_layer);
    rootfs::mount_overlay(
        run_dir,
        &lowers,
        &req.upper_dir,
        &req.work_dir,
        &rootfs_dir,
        rootless.is_some(),
    )?;
    let cgroups_path = match &req.confinement.cgroup_parent {
        Some(parent) => format!("/{}/{id}", parent.trim_matches('/')),
        None => format!("/lamina/{id}"),
    };
    let mut cleanup = Cleanup {
        cgroups_path: cgroups_path.clone(),
        real_cgroups: rootless.is_none_or(|r| r.cgroups),
        init: None,
        rootfs: Some(rootfs_dir.clone()),
        root: None,
        mounted: mounts::Mounted::default(),
        container: None,
        network: None,
    };
    let root = cleanup.root.insert(rootfs::Root::open(&rootfs_dir)?);

    let passwd = root.read("/etc/passwd")?;
    let group = root.read("/etc/group")?;
    let user = user::resolve(
        req.process.user.as_deref(),
        &req.process.additional_groups,
        passwd.as_deref(),
        group.as_deref(),
    )?;
    if let Some(r) = &rootless {
        rootless::check_ids(r, user.uid, user.gid)?;
    }
    let cwd = crate::validate::cwd(&req.process.cwd)?;
    let cwd = root.mkdir_all(&cwd, rootfs::CWD_FORBIDDEN)?;
    // The working dir stays (docker keeps it too); only mount stubs are removed after the run.
    root.created.clear();

    let hostname = req
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let mut etc = spec::write_etc_files(&bundle, req.network, &hostname, req.etc_hostname, &req.net)
        .map_err(|e| SetupError::io("write", &bundle, e))?;
    let networks = match req.network {
        Network::Bridge if user_net.is_none() => {
            let dir = req
                .net
                .networks_dir
                .clone()
                .or_else(|| crate::network::default_dir().cloned())
                .ok_or(SetupError::Network(crate::network::NetError::NoNetworksDir))?;
            let nets = crate::network::Networks::at(&dir);
            // The file exists before the container does so it can be bound now; join fills it.
            let hosts = nets.lock().map_err(SetupError::Network)?.hosts_file(&id);
            std::fs::write(&hosts, b"").map_err(|e| SetupError::io("create", &hosts, e))?;
            cleanup.network = Some((nets.clone(), id.clone()));
            for (dest, src) in etc.iter_mut() {
                if dest.as_os_str() == "/etc/hosts" {
                    *src = hosts.clone();
                }
            }
            Some(nets)
        }
        _ => None,
    };
    mounts::apply(root, &etc, &req.mounts, &mut cleanup.mounted)?;
    let input = spec::SpecInput {
        req,
        user: &user,
        env: spec::env(&req.process.env, &hostname, &user.home),
        cwd,
        hostname: &hostname,
        cgroups_path: &cgroups_path,
        rootless: rootless.as_ref(),
    };
    let config = bundle.join("config.json");
    let json = serde_json::to_vec(&spec::build(&input)).map_err(SetupError::Request)?;
    std::fs::write(&config, json).map_err(|e| SetupError::io("write", &config, e))?;

    let state = run_dir.join("state");
    std::fs::create_dir_all(&state).map_err(|e| SetupError::io("create", &state, e))?;
    let console = if req.process.tty {
        let path = run_dir.join("console.sock");
        Some(pty::ConsoleSocket::bind(path.clone()).map_err(|e| SetupError::io("listen on", &path, e))?)
    } else {
        None
    };
    let log = match &req.log_file {
        Some(p) if req.detach => {
            Some(crate::logs::LogWriter::open(p).map_err(|e| SetupError::io("open the log", p, e))?)
        }
        _ => None,
    };
    let mut builder = ContainerBuilder::new(id.clone(), SyscallType::default())
        .with_root_path(&state)?
        .with_console_socket(console.as_ref().map(|c| c.path.clone()));
    // Without a terminal, stdout and stderr go through pipes the monitor reads into the log.
    let mut pipes = None;
    if log.is_some() && !req.process.tty {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
                SetupError::io("create a pipe for", Path::new("the container's output"), e.into())
            })
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        builder = builder.with_stdout(out_w).with_stderr(err_w);
        pipes = Some((out_r, err_r));
    }
    let container = builder.as_init(&bundle).with_systemd(false).build()?;
    let container = cleanup.container.insert(container);
    let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
    cleanup.init = Some(Pid::from_raw(pid));
    let master = match &console {
        Some(c) => Some(
            c.receive_master()
                .map_err(|e| SetupError::io("receive the terminal on", &c.path, e))?,
        ),
        None => None,
    };

    // Declared before the container is started: dropped (slirp4netns stopped) after it is reaped.
    let mut _slirp = None;
    if req.network != Network::Host {
        let netns = net::open_netns(pid)?;
        match &networks {
            Some(nets) => {
                let joining: Vec<String> = if req.net.networks.is_empty() {
                    vec![crate::network::DEFAULT_NETWORK.to_string()]
                } else {
                    req.net.networks.clone()
                };
                let member = crate::network::Member {
                    container_id: &id,
                    pid,
                    netns: netns.as_fd(),
                    hostname: &hostname,
                    names: req.net.aliases.clone(),
                    extra_hosts: req.net.extra_hosts.clone(),
                    ports: req.ports.clone(),
                };
                crate::network::join(nets, &joining, &member).map_err(SetupError::Network)?;
            }
            None => net::loopback_up(&netns)?,
        }
        if let Some(prog) = &user_net {
            _slirp = Some(slirp::start(prog, pid, &run_dir.join("slirp4netns.log"))?);
        }
        if !req.ports.is_empty() {
            net::publish(&req.ports, Arc::new(netns))?;
        }
    }
    if signals.pending().any(|s| TERMINATING.contains(&s)) {
        return Err(SetupError::Interrupted);
    }
    container.start()?;
    let terminal = match master {
        Some(m) => {
            let io = pty::TerminalIo {
                stdin: !req.detach,
                attach_socket: req.attach_socket.clone().filter(|_| req.detach),
                log: log.clone(),
            };
            let path = io.attach_socket.clone().unwrap_or_default();
            Some(pty::Terminal::start(m, io).map_err(|e| SetupError::io("serve the terminal on", &path, e))?)
        }
        None => None,
    };
    let pumps = match (pipes, &log) {
        (Some((out, err)), Some(l)) => vec![
            l.pump(std::fs::File::from(out), crate::logs::Stream::Stdout),
            l.pump(std::fs::File::from(err), crate::logs::Stream::Stderr),
        ],
        _ => Vec::new(),
    };
    // Before `Started`, so whoever hears that sees the health as `starting` already; stopped when
    // this run ends, before the cleanup.
    let health = req
        .supervision
        .health
        .as_ref()
        .filter(|_| req.detach)
        .map(|h| crate::health::start(h, &req.helper_exe, &id));
    sink.report(&HelperMessage::Started { pid });
    if req.detach {
        sink.detach();
    } else if let Some(control) = control {
        watch_caller(control, pid);
    }

    let status = wait_for(
        Pid::from_raw(pid),
        &mut signals,
        parent,
        req.detach,
        terminal.as_ref(),
    );
    drop(health);
    if let Some(t) = terminal {
        t.finish();
    }
    // Output still in the pipes is the container's last words; a background process that keeps
    // them open must not keep the monitor alive, though.
    let start = std::time::Instant::now();
    while pumps.iter().any(|p| !p.is_finished()) && start.elapsed() < pty::DRAIN {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cleanup.init = None;
    let oom_killed = cgroup::oom_killed(&cgroups_path);
    drop(cleanup);
    Ok(RunOutcome {
        exit_code: status.0,
        signal: status.1,
        oom_killed,
    })
}

/// A foreground caller that writes `kill` or goes away (closing its socket) wants the container
/// dead. Threads are fine from here on: libcontainer has done all its forking.
fn watch_caller(mut control: std::io::BufReader<std::os::unix::net::UnixStream>, init: i32) {
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match control.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.trim() == "kill" => break,
                Ok(_) => {}
            }
        }
        // init is our unreaped child until the main thread waits for it, so the pid is still its.
        let _ = nix::sys::signal::kill(Pid::from_raw(init), Signal::SIGKILL);
    });
}

/// Forward signals to the container's init and reap children until init exits. A window change
/// resizes the container's terminal; the third interrupt of a foreground run, or the caller dying,
/// escalates to SIGKILL.
fn wait_for(
    init: Pid,
    signals: &mut Signals,
    parent: Pid,
    detached: bool,
    terminal: Option<&pty::Terminal>,
) -> (i32, Option<i32>) {
    let mut interrupts = 0;
    loop {
        if let Some(status) = reap(init) {
            return status;
        }
        for sig in signals.wait() {
            if sig == sigs::SIGCHLD {
                continue;
            }
            if sig == sigs::SIGWINCH
                && let Some(t) = terminal
            {
                t.resize_from_stdin();
                continue;
            }
            if matches!(sig, sigs::SIGINT | sigs::SIGTERM | sigs::SIGQUIT) {
                interrupts += 1;
            }
            let orphaned = !detached && nix::unistd::getppid() != parent;
            let signal = if orphaned || (!detached && interrupts >= KILL_AFTER) {
                if !orphaned {
                    eprintln!("lamina: {interrupts} interrupts: killing the container");
                }
                Signal::SIGKILL
            } else {
                Signal::try_from(sig).unwrap_or(Signal::SIGTERM)
            };
            let _ = nix::sys::signal::kill(init, signal);
        }
    }
}

/// Reap every exited child; `Some` once `init` is among them.
fn reap(init: Pid) -> Option<(i32, Option<i32>)> {
    let mut result = None;
    loop {
        match nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => result = Some((code, None)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                result = Some((128 + sig as i32, Some(sig as i32)))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
