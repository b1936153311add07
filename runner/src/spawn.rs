//! Caller side: start the helper (`lamina __run-helper`), send it the request over a socketpair on
//! fd 3, read back what happened. The helper is a fresh exec, so the caller may be multi-threaded
//! (tokio, the build scheduler); only async-signal-safe calls run between fork and exec.
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use crate::error::RunError;
use crate::protocol::HelperMessage;
use crate::request::{RunOutcome, RunRequest};
use crate::validate;

/// The hidden subcommand the `lamina` binary must dispatch to [`crate::helper_main`].
pub const HELPER_SUBCOMMAND: &str = "__run-helper";
/// The fd on which the helper finds its end of the request socket.
pub(crate) const REQUEST_FD: i32 = 3;

/// stdio for the container process (default: inherit the caller's).
#[derive(Debug, Default)]
pub struct RunStdio {
    pub stdin: Option<std::process::Stdio>,
    pub stdout: Option<std::process::Stdio>,
    pub stderr: Option<std::process::Stdio>,
}

/// A started helper; the container may or may not be running yet.
#[derive(Debug)]
pub struct Running {
    id: String,
    child: Child,
    reader: BufReader<UnixStream>,
}

/// Run a container to completion with inherited stdio.
pub fn run(req: &RunRequest) -> Result<RunOutcome, RunError> {
    spawn(req, RunStdio::default())?.wait()
}

/// Run a container to completion with the given stdio.
pub fn run_with_stdio(req: &RunRequest, stdio: RunStdio) -> Result<RunOutcome, RunError> {
    spawn(req, stdio)?.wait()
}

/// Start the helper and hand it the request. Returns once the request is sent.
pub fn spawn(req: &RunRequest, stdio: RunStdio) -> Result<Running, RunError> {
    let mut req = req.clone();
    let id = match &req.id {
        Some(id) => id.clone(),
        None => {
            let id = crate::new_id();
            req.id = Some(id.clone());
            id
        }
    };
    if req.net.networks_dir.is_none() {
        // The process default is ours, not the helper's: it travels in the request.
        req.net.networks_dir = crate::network::default_dir().cloned();
    }
    validate::request(&req)?;
    let spawn_err = |source| RunError::SpawnHelper {
        exe: req.helper_exe.clone(),
        source,
    };
    let (ours, theirs) = UnixStream::pair().map_err(spawn_err)?;
    let theirs = OwnedFd::from(theirs);
    let raw = theirs.as_raw_fd();
    let detach = req.detach;
    let mut cmd = Command::new(&req.helper_exe);
    cmd.arg(HELPER_SUBCOMMAND);
    if crate::userns::isolation().in_user_namespace() {
        let ok = crate::helper::fresh_proc_once();
        cmd.env(crate::helper::FRESH_PROC_ENV, if ok { "1" } else { "0" });
    }
    if let Some(s) = stdio.stdin {
        cmd.stdin(s);
    }
    if let Some(s) = stdio.stdout {
        cmd.stdout(s);
    }
    if let Some(s) = stdio.stderr {
        cmd.stderr(s);
    }
    // SAFETY: the closure only calls async-signal-safe functions (dup2, fcntl, prctl) on fds and
    // values captured by copy; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if raw == REQUEST_FD {
                let flags = libc::fcntl(raw, libc::F_GETFD);
                if flags < 0 || libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, REQUEST_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A foreground helper must not outlive its caller: SIGTERM makes it kill the container
            // and clean up. A detached one is a monitor and lives on.
            if !detach && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(spawn_err)?;
    drop(theirs);
    let mut ours_w = &ours;
    // One JSON line; the socket stays open both ways: closing it (or writing `kill`) tells a
    // foreground helper to kill the container.
    let mut json = serde_json::to_vec(&req).expect("RunRequest serialises");
    json.push(b'\n');
    let io_err = |source| RunError::HelperIo {
        id: id.clone(),
        source,
    };
    let sent = ours_w.write_all(&json);
    let mut running = Running {
        id: id.clone(),
        child,
        reader: BufReader::new(ours),
    };
    if let Err(e) = sent {
        // The helper died before reading: its exit status says more than EPIPE.
        let status = running.child.wait().map_err(io_err)?;
        if !status.success() {
            return Err(RunError::HelperDied { id, status });
        }
        return Err(io_err(e));
    }
    Ok(running)
}

impl Running {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Pid of the helper process; signals sent to it (INT, TERM, HUP, QUIT, USR1, USR2) are forwarded
    /// to the container's process.
    pub fn helper_pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until the container process runs; returns its host pid. For a detached run the helper
    /// keeps running as the container's monitor; otherwise call [`Running::wait`] afterwards.
    pub fn wait_started(&mut self) -> Result<i32, RunError> {
        match self.next_message()? {
            HelperMessage::Started { pid } => Ok(pid),
            HelperMessage::Failed { kind, message } => {
                let _ = self.child.wait();
                Err(RunError::Start {
                    id: self.id.clone(),
                    kind,
                    message,
                })
            }
            HelperMessage::Exited(_) => Err(RunError::HelperIo {
                id: self.id.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "exit before start"),
            }),
        }
    }

    /// Kill the container (SIGKILL to everything in it); [`Running::wait`] then reports the outcome.
    /// Dropping a `Running` without waiting has the same effect for a foreground run.
    pub fn kill(&mut self) -> Result<(), RunError> {
        let mut sock = self.reader.get_ref();
        sock.write_all(b"kill\n").map_err(|source| RunError::HelperIo {
            id: self.id.clone(),
            source,
        })
    }

    /// Wait for the container to finish.
    pub fn wait(mut self) -> Result<RunOutcome, RunError> {
        loop {
            match self.next_message() {
                Ok(HelperMessage::Started { .. }) => continue,
                Ok(HelperMessage::Exited(outcome)) => {
                    let _ = self.child.wait();
                    return Ok(outcome);
                }
                Ok(HelperMessage::Failed { kind, message }) => {
                    let _ = self.child.wait();
                    return Err(RunError::Start {
                        id: self.id,
                        kind,
                        message,
                    });
                }
                Err(e) => {
                    let status = self.child.wait().map_err(|source| RunError::HelperIo {
                        id: self.id.clone(),
                        source,
                    })?;
                    if status.success() {
                        return Err(e);
                    }
                    return Err(RunError::HelperDied { id: self.id, status });
                }
            }
        }
    }

    fn next_message(&mut self) -> Result<HelperMessage, RunError> {
        let mut line = String::new();
        let io_err = |source| RunError::HelperIo {
            id: self.id.clone(),
            source,
        };
        let n = self.reader.read_line(&mut line).map_err(io_err)?;
        if n == 0 {
            return Err(io_err(std::io::ErrorKind::UnexpectedEof.into()));
        }
        serde_json::from_str(&line)
            .map_err(|e| io_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    }
}
