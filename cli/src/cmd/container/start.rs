//! Running a created container: detached under its monitor (which logs, serves the terminal and
//! applies the restart policy), or attached to this process's stdio until it exits.

use std::path::Path;

use anyhow::Context;
use lamina_runner::{RunError, RunOutcome, RunRequest, RunStdio};

use super::state;

/// The runner request `create` wrote, in the container's dir; `start` runs it as it is.
pub const REQUEST_FILE: &str = "request.json";

pub fn save_request(dir: &Path, req: &RunRequest) -> anyhow::Result<()> {
    let p = dir.join(REQUEST_FILE);
    std::fs::write(&p, serde_json::to_vec_pretty(req)?).with_context(|| format!("writing {}", p.display()))
}

pub fn load_request(dir: &Path) -> anyhow::Result<RunRequest> {
    let p = dir.join(REQUEST_FILE);
    let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))
}

/// The request for one start: a detached container logs, serves its terminal and may restart; an
/// attached one uses our stdio and never restarts (its caller is the supervisor).
fn for_start(req: &RunRequest, dir: &Path, detach: bool, auto_remove: bool) -> RunRequest {
    let mut req = req.clone();
    req.supervision.remove_dir = (detach && auto_remove).then(|| dir.to_path_buf());
    req.detach = detach;
    req.log_file = detach.then(|| dir.join(state::LOG_FILE));
    req.attach_socket = (detach && req.process.tty).then(|| dir.join(state::ATTACH_SOCKET));
    req
}

/// A fresh start: whatever `stop` said about the previous run no longer holds.
fn prepare(dir: &Path, meta: &mut state::Meta, detach: bool) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(dir.join(state::STOP_FILE));
    let _ = std::fs::remove_file(dir.join(state::HEALTH_FILE));
    lamina_runner::clear_work_dir(&dir.join("work"));
    if meta.detached != detach {
        meta.detached = detach;
        state::write_meta(dir, meta)?;
    }
    Ok(())
}

/// Starts the container under a detached monitor; returns once its process runs.
pub fn start_detached(
    dir: &Path,
    meta: &mut state::Meta,
    req: &RunRequest,
) -> anyhow::Result<Result<(), RunError>> {
    prepare(dir, meta, true)?;
    // The monitor writes the output to the log itself (lamina_runner::logs), streams apart.
    let stdio = RunStdio {
        stdin: Some(std::process::Stdio::null()),
        stdout: Some(std::process::Stdio::null()),
        stderr: Some(std::process::Stdio::null()),
    };
    Ok(
        lamina_runner::spawn(&for_start(req, dir, true, meta.auto_remove), stdio)
            .and_then(|mut r| r.wait_started())
            .map(|_| ()),
    )
}

/// How an attached start uses this process.
pub struct Attach {
    /// Pass our stdin (`-i`); with a terminal, our terminal goes raw.
    pub interactive: bool,
    /// Forward the signals we get to the container (`--sig-proxy`).
    pub sig_proxy: bool,
}

/// Runs the container with our stdout and stderr (and stdin with `-i`) until it exits.
pub fn run_attached(
    dir: &Path,
    meta: &mut state::Meta,
    req: &RunRequest,
    how: &Attach,
) -> anyhow::Result<Result<RunOutcome, RunError>> {
    prepare(dir, meta, false)?;
    let stdio = RunStdio {
        stdin: if how.interactive {
            None
        } else {
            Some(std::process::Stdio::null())
        },
        ..Default::default()
    };
    // With -it the container's terminal line discipline sees our keys as typed (^C included).
    let raw = (req.process.tty && how.interactive)
        .then(lamina_runner::tty::RawMode::stdin)
        .flatten();
    let result = lamina_runner::spawn(&for_start(req, dir, false, meta.auto_remove), stdio).and_then(|r| {
        let _fwd = how
            .sig_proxy
            .then(|| crate::cmd::signals::forward_to(r.helper_pid() as i32));
        r.wait()
    });
    drop(raw);
    Ok(result)
}
