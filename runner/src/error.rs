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
    #[error("container {id} failed to start: {message}")]
    Start {
        id: String,
        kind: FailureKind,
        message: String,
    },
}

impl RunError {
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
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
