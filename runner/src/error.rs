//! Errors of the runner.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Whether a failed start is the request's fault (bad image, bad user, missing executable) or ours.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum FailureKind {
    /// The request or image is at fault (exit 1 / 125-style).
    User,
    /// The executable could not be found or run (docker exits 127 / 126).
    Exec,
    /// Anything else: kernel, cgroups, the runtime.
    Internal,
}

/// Errors returned by [`crate::run`] and friends.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid working directory {cwd:?}: {reason}")]
    InvalidCwd { cwd: String, reason: &'static str },
    #[error("invalid mount destination {destination:?}: must be an absolute path")]
    InvalidMountDestination { destination: String },
    #[error("invalid mount destination {destination:?}: /proc, /sys and /dev are the runtime's")]
    MountOnKernelFs { destination: String },
    #[error("lower dir {path} is not a directory")]
    MissingLowerDir { path: PathBuf },
    #[error("no command given")]
    NoCommand,
    #[error("invalid container id {id:?}: use 1-64 characters [A-Za-z0-9_.-]")]
    InvalidId { id: String },
    #[error("cannot start the runner helper {exe}")]
    SpawnHelper {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lost contact with the runner helper of container {id}")]
    HelperIo {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the runner helper of container {id} died without reporting (status {status})")]
    HelperDied {
        id: String,
        status: std::process::ExitStatus,
    },
    #[error("invalid --cgroup-parent {parent:?}: cgroup names separated by /, no . or ..")]
    InvalidCgroupParent { parent: String },
    #[error("container {id} failed to start: {message}")]
    Start {
        id: String,
        kind: FailureKind,
        message: String,
    },
}

/// Why the container's command could not be executed, with docker's exit status for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecFailure {
    /// 127: not found; 126: found but not executable (permissions, a directory, a bad format).
    pub code: u8,
    /// Docker's wording: `exec: "cmd": executable file not found in $PATH`.
    pub message: String,
}

impl ExecFailure {
    /// Classifies libcontainer's message for a failed execve (`executable 'x' not found in $PATH`,
    /// `executable 'x' at path … does not have correct permissions`).
    pub fn from_message(message: &str) -> ExecFailure {
        let name = message
            .split_once("executable '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(n, _)| n.to_owned())
            .unwrap_or_default();
        let (code, why) = if message.contains("not found in $PATH") {
            (127, "executable file not found in $PATH")
        } else if message.contains("not found") || message.contains("No such file") {
            (127, "no such file or directory")
        } else if message.contains("is a directory") {
            (126, "is a directory")
        } else {
            (126, "permission denied")
        };
        ExecFailure {
            code,
            // A message that names no executable is not one we know: pass it on as it is.
            message: if name.is_empty() {
                message.to_owned()
            } else {
                format!("exec: {name:?}: {why}")
            },
        }
    }

    /// Whether a runtime error message is about the execve of the command.
    pub fn is_exec_message(message: &str) -> bool {
        message.contains("executable '") || message.contains("not found in $PATH")
    }
}

impl RunError {
    /// For a start that failed at execve: the status and message docker gives for it.
    pub fn exec_failure(&self) -> Option<ExecFailure> {
        let RunError::Start {
            kind: FailureKind::Exec,
            message,
            ..
        } = self
        else {
            return None;
        };
        Some(ExecFailure::from_message(message))
    }

    /// True when the request or image is at fault rather than the machine or lamina.
    pub fn is_user_error(&self) -> bool {
        match self {
            RunError::Start { kind, .. } => *kind != FailureKind::Internal,
            RunError::SpawnHelper { .. } | RunError::HelperIo { .. } | RunError::HelperDied { .. } => false,
            _ => true,
        }
    }
}

/// An error and its causes on one line (errors cross the helper's process boundary as text; the
/// builder and CLI print them the same way).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        // libcontainer's errors often repeat their source in their own message: say it once.
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
