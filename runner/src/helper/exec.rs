//! `lamina __exec-helper`: run another process in a running (detached) container, confined exactly
//! like the container's own process.
//!
//! Stage 1 joins the monitor's private mount namespace (where the bundle, libcontainer's state and
//! the read-only bind of the lamina binary live) and re-execs itself from that read-only bind, so the
//! process that enters the container has a `/proc/self/exe` nobody can write through (CVE-2019-5736:
//! `lamina exec CT /evil` where `/evil` is `#!/proc/self/exe` would otherwise hand the container the
//! host binary).
//!
//! Stage 2 derives the exec'd process from the container's own `config.json` (the one
//! [`super::spec::build`] wrote for the container's init): the same capability sets, rlimits,
//! no_new_privs, user and environment, with only args/env/cwd/user overridden as asked. libcontainer's
//! tenant builder joins the container's namespaces and cgroup, but it rebuilds `linux` from
//! namespaces and the cgroup path only, silently dropping `linux.seccomp` (youki 0.7,
//! `tenant_builder.rs`, `adapt_spec_for_tenant`): a tenant would run unfiltered. The [`Confined`]
//! executor installs the container's seccomp filter itself as the last step before execve.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sched::CloneFlags;
use nix::sys::wait::WaitStatus;
use oci_spec::runtime::{LinuxSeccomp, Spec};
use serde::{Deserialize, Serialize};

/// What `lamina exec` asks for (one JSON argument).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub id: String,
    pub monitor_pid: i32,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `exec -t`: a pseudo-terminal of its own in the container's devpts, proxied to our stdio.
    #[serde(default)]
    pub tty: bool,
}

/// The hidden subcommand for [`exec_helper_main`].
pub const EXEC_SUBCOMMAND: &str = "__exec-helper";
const STAGE2: &str = "--stage2";

/// Why an exec could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecError {
    #[error("missing exec request argument")]
    MissingRequest,
    #[error("bad exec request")]
    Request(#[source] serde_json::Error),
    #[error(transparent)]
    InvalidCwd(#[from] crate::error::RunError),
    #[error("container {id} is not running (no monitor {pid})")]
    NotRunning {
        id: String,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot join the mount namespace of monitor {pid}")]
    JoinMonitor {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("cannot exec the read-only helper binary {exe}")]
    Reexec {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container spec {path} has no {what}")]
    Spec { path: PathBuf, what: &'static str },
    #[error("cannot read container spec {path}")]
    LoadSpec {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("{0}")]
    Runtime(#[from] libcontainer::error::LibcontainerError),
    #[error("waiting for the exec'd process")]
    Wait(#[source] nix::Error),
}

/// Entry point; `args` are the arguments after the subcommand: the JSON [`ExecRequest`], preceded
/// by `--stage2` once re-exec'd. Exits with the process's status.
pub fn exec_helper_main(args: &[String]) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some(STAGE2) => stage2(&args[1..]),
        _ => stage1(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let msg = crate::error_chain(&e);
            if crate::ExecFailure::is_exec_message(&msg) {
                let f = crate::ExecFailure::from_message(&msg);
                eprintln!("lamina exec: {}", f.message);
                return ExitCode::from(f.code);
            }
            eprintln!("lamina exec: {msg}");
            ExitCode::from(126)
        }
    }
}

fn parse(args: &[String]) -> Result<ExecRequest, ExecError> {
    let req: ExecRequest =
        serde_json::from_str(args.first().ok_or(ExecError::MissingRequest)?).map_err(ExecError::Request)?;
    // Same rule as `run -w`: a cwd under /proc (`/proc/self/fd/N`) is how CVE-2024-21626 turned a
    // leaked host fd into a host-filesystem cwd.
    if let Some(cwd) = &req.cwd {
        crate::validate::cwd(cwd)?;
    }
    Ok(req)
}

/// Join the monitor's mount namespace, then replace ourselves with the read-only helper binary there.
fn stage1(args: &[String]) -> Result<(), ExecError> {
    // Nothing but stdio crosses into the container: fds the caller leaked go at the re-exec below.
    super::fd::cloexec_from(3).map_err(|source| ExecError::Io {
        op: "mark close-on-exec",
        path: PathBuf::from("inherited fds"),
        source,
    })?;
    let req = parse(args)?;
    join_user_namespace(&req)?;
    let ns_path = format!("/proc/{}/ns/mnt", req.monitor_pid);
    let ns = std::fs::File::open(&ns_path).map_err(|source| ExecError::NotRunning {
        id: req.id.clone(),
        pid: req.monitor_pid,
        source,
    })?;
    // setns(CLONE_NEWNS) also moves our root and cwd to the namespace's root, so the caller's host
    // cwd is not carried towards the container.
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS).map_err(|source| ExecError::JoinMonitor {
        pid: req.monitor_pid,
        source,
    })?;
    drop(ns);
    let exe = run_dir().join("exe");
    let err = std::process::Command::new(&exe)
        .arg0("lamina")
        .arg(EXEC_SUBCOMMAND)
        .arg(STAGE2)
        .args(args)
        .current_dir("/")
        .exec();
    Err(ExecError::Reexec { exe, source: err })
}

/// A rootless container's monitor lives in the user namespace its `lamina run` made: join it first
/// (its owner, the user, has every capability there), so its mount namespace can be joined. Root's
/// containers share our user namespace: nothing to do.
fn join_user_namespace(req: &ExecRequest) -> Result<(), ExecError> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self/ns/user").map(|m| (m.dev(), m.ino()));
    let path = format!("/proc/{}/ns/user", req.monitor_pid);
    let not_running = |source| ExecError::NotRunning {
        id: req.id.clone(),
        pid: req.monitor_pid,
        source,
    };
    let theirs = std::fs::metadata(&path).map_err(not_running)?;
    if ours.is_ok_and(|o| o == (theirs.dev(), theirs.ino())) {
        return Ok(());
    }
    let ns = std::fs::File::open(&path).map_err(not_running)?;
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWUSER).map_err(|source| ExecError::JoinMonitor {
        pid: req.monitor_pid,
        source,
    })
}

fn stage2(args: &[String]) -> Result<i32, ExecError> {
    let req = parse(args)?;
    let run_dir = run_dir();
    let spec_path = run_dir.join("bundle/config.json");
    let spec = Spec::load(&spec_path).map_err(|source| ExecError::LoadSpec {
        path: spec_path.clone(),
        source,
    })?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .ok_or_else(|| ExecError::Spec {
            path: spec_path.clone(),
            what: "linux.seccomp",
        })?;
    let process = tenant_process(&spec, &req).ok_or_else(|| ExecError::Spec {
        path: spec_path.clone(),
        what: "process",
    })?;
    let process_path = run_dir.join(format!("exec-{}.json", crate::new_id()));
    let json = serde_json::to_vec(&process).map_err(ExecError::Request)?;
    std::fs::write(&process_path, json).map_err(|source| ExecError::Io {
        op: "write",
        path: process_path.clone(),
        source,
    })?;
    // libcontainer hands a terminal over only to a detached tenant (it owns none itself).
    let console = if req.tty {
        let path = run_dir.join(format!("exec-{}.sock", crate::new_id()));
        Some(
            super::pty::ConsoleSocket::bind(path.clone()).map_err(|source| ExecError::Io {
                op: "listen on",
                path,
                source,
            })?,
        )
    } else {
        None
    };
    let built = ContainerBuilder::new(req.id.clone(), SyscallType::default())
        .with_root_path(run_dir.join("state"))?
        .with_executor(Confined { seccomp })
        .with_console_socket(console.as_ref().map(|c| c.path.clone()))
        .as_tenant()
        .with_process(Some(&process_path))
        .with_detach(req.tty)
        .build();
    let _ = std::fs::remove_file(&process_path);
    let pid = nix::unistd::Pid::from_raw(built?.as_raw());
    let terminal = match &console {
        Some(c) => {
            let master = c.receive_master().map_err(|source| ExecError::Io {
                op: "receive the terminal on",
                path: c.path.clone(),
                source,
            })?;
            let io = super::pty::TerminalIo {
                stdin: true,
                attach_socket: None,
                log: None,
            };
            let t = std::sync::Arc::new(super::pty::Terminal::start(master, io).map_err(|source| {
                ExecError::Io {
                    op: "proxy the terminal of",
                    path: c.path.clone(),
                    source,
                }
            })?);
            if let Ok(mut winch) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]) {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in winch.forever() {
                        t.resize_from_stdin();
                    }
                });
            }
            Some(t)
        }
        None => None,
    };
    let code = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ExecError::Wait(e)),
        }
    };
    if let Some(t) = terminal {
        t.finish();
    }
    Ok(code)
}

/// The container's process spec with this exec's args, env, cwd and user: capabilities (all five
/// sets), rlimits, no_new_privs and everything else stay the container's.
fn tenant_process(spec: &Spec, req: &ExecRequest) -> Option<oci_spec::runtime::Process> {
    let mut process = spec.process().clone()?;
    process.set_args(Some(req.args.clone()));
    let overrides: HashMap<&str, &str> = req.env.iter().filter_map(|e| e.split_once('=')).collect();
    let mut env: Vec<String> = process
        .env()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !overrides.contains_key(e.split_once('=').map_or(e.as_str(), |(k, _)| k)))
        .collect();
    env.extend(req.env.iter().filter(|e| e.contains('=')).cloned());
    process.set_env(Some(env));
    if let Some(cwd) = &req.cwd {
        process.set_cwd(PathBuf::from(cwd));
    }
    if let Some(uid) = req.uid {
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(req.gid.unwrap_or(0));
        user.set_additional_gids(None);
        process.set_user(user);
    }
    process.set_terminal(Some(req.tty));
    // The container's limits, clamped to what this caller may set: without CAP_SYS_RESOURCE a hard
    // limit cannot be raised, and the runtime would fail the exec with EPERM.
    let (_, nofile_hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((u64::MAX, u64::MAX));
    if let Some(rlimits) = process.rlimits().clone() {
        let clamped = rlimits
            .into_iter()
            .map(|r| {
                if r.typ() != oci_spec::runtime::PosixRlimitType::RlimitNofile {
                    return r;
                }
                let hard = r.hard().min(nofile_hard);
                oci_spec::runtime::PosixRlimitBuilder::default()
                    .typ(r.typ())
                    .hard(hard)
                    .soft(r.soft().min(hard))
                    .build()
                    .unwrap_or(r)
            })
            .collect();
        process.set_rlimits(Some(clamped));
    }
    Some(process)
}

/// libcontainer's default executor, preceded by the container's seccomp filter (which the tenant
/// builder drops). Runs in the exec'd process after namespaces, cgroup, no_new_privs, capabilities
/// and cwd are set, immediately before execve, like the init path installs it.
#[derive(Clone)]
struct Confined {
    seccomp: LinuxSeccomp,
}

impl Executor for Confined {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // A cwd that is not under the container's root shows up as "(unreachable)/..." or fails:
        // refuse rather than hand a host directory to the process (CVE-2024-21626).
        match std::env::current_dir() {
            Ok(cwd) if cwd.is_absolute() => {}
            _ => return Err(ExecutorError::CantHandle("a cwd outside the container")),
        }
        libcontainer::seccomp::initialize_seccomp(&self.seccomp)
            .map_err(|e| ExecutorError::Execution(Box::new(e)))?;
        libcontainer::workload::default::get_executor().exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }
}

/// The monitor's private run dir (rootless helpers use one the user owns).
fn run_dir() -> std::path::PathBuf {
    super::rootless::run_dir().unwrap_or_else(|_| super::RUN_DIR.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let json = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
                "args": ["sh"], "env": ["PATH=/bin", "A=1"], "cwd": "/work",
                "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"],
                                 "permitted": ["CAP_CHOWN"], "inheritable": [], "ambient": []},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true,
            },
            "root": {"path": "rootfs"},
        });
        serde_json::from_value(json).unwrap()
    }

    fn req() -> ExecRequest {
        ExecRequest {
            id: "c".into(),
            monitor_pid: 1,
            args: vec!["id".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: None,
            uid: None,
            gid: None,
            tty: false,
        }
    }

    #[test]
    fn tenant_keeps_the_containers_confinement() {
        let p = tenant_process(&spec(), &req()).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(
            p.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".into(), "B=3".into()][..])
        );
        assert_eq!(p.cwd(), std::path::Path::new("/work"));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(
            p.capabilities(),
            spec().process().as_ref().unwrap().capabilities()
        );
        assert_eq!(p.rlimits().as_ref().map(Vec::len), Some(1));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    }

    #[test]
    fn user_override_drops_supplementary_groups() {
        let mut r = req();
        r.uid = Some(5);
        let p = tenant_process(&spec(), &r).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (5, 0));
        assert_eq!(p.user().additional_gids(), &None);
    }

    #[test]
    fn proc_cwd_is_refused() {
        let mut r = req();
        r.cwd = Some("/proc/self/fd/7".into());
        let arg = serde_json::to_string(&r).unwrap();
        assert!(matches!(parse(&[arg]), Err(ExecError::InvalidCwd(_))));
    }
}
