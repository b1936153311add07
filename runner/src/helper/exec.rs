//! `lamina __exec-helper`: run another process in a running (detached) container. It joins the
//! monitor's private mount namespace, where libcontainer's state and the bundle live, then lets
//! libcontainer's tenant builder enter the container's namespaces and cgroup with the container's
//! own capabilities, seccomp profile and no_new_privs.

use std::collections::HashMap;
use std::process::ExitCode;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sched::CloneFlags;
use nix::sys::wait::WaitStatus;
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
}

/// The hidden subcommand for [`exec_helper_main`].
pub const EXEC_SUBCOMMAND: &str = "__exec-helper";

/// Entry point; `args[0]` is the JSON [`ExecRequest`]. Exits with the process's status.
pub fn exec_helper_main(args: &[String]) -> ExitCode {
    match exec(args) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(msg) => {
            eprintln!("lamina exec: {msg}");
            ExitCode::from(126)
        }
    }
}

fn exec(args: &[String]) -> Result<i32, String> {
    let req: ExecRequest = serde_json::from_str(args.first().ok_or("missing request")?)
        .map_err(|e| format!("bad request: {e}"))?;
    let ns = std::fs::File::open(format!("/proc/{}/ns/mnt", req.monitor_pid))
        .map_err(|e| format!("container {} is not running: {e}", req.id))?;
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS).map_err(|e| format!("joining the monitor: {e}"))?;
    let env: HashMap<String, String> = req
        .env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let pid = ContainerBuilder::new(req.id.clone(), SyscallType::default())
        .with_root_path(super::RUN_DIR.to_string() + "/state")
        .map_err(|e| e.to_string())?
        .as_tenant()
        .with_container_args(req.args.clone())
        .with_env(env)
        .with_cwd(req.cwd.clone())
        .with_user(req.uid)
        .with_group(req.gid)
        .with_detach(false)
        .build()
        .map_err(|e| e.to_string())?;
    let pid = nix::unistd::Pid::from_raw(pid.as_raw());
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for the process: {e}")),
        }
    }
}
