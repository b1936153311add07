//! The build engine: executes a Dockerfile's stage graph into images in the store.
//!
//! - [`cache`]: step cache keys and the local cache index.
//! - [`context`]: the build context, source selection, content digests with a persistent stat memo.
//! - [`view`]: read-only merged view over snapshot dirs (whiteouts honoured).
//! - [`copy`]: the COPY/ADD executor writing into a new snapshot dir.
//! - [`perms`]: `--chown`/`USER` resolution from the target's passwd/group, `--chmod`.

pub mod cache;
pub mod context;
pub mod copy;
pub mod perms;
pub mod view;

use std::path::PathBuf;

/// Everything a build can fail on; variants name the Dockerfile line or the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("reading build context {path}")]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("build cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("COPY/ADD source {pattern:?} not found in the build context (or excluded by .dockerignore)")]
    SourceNotFound { pattern: String },
    #[error("Dockerfile:{line}: {source}")]
    AtLine {
        line: usize,
        #[source]
        source: Box<BuildError>,
    },
    #[error(
        "Dockerfile:{line}: when using COPY/ADD with more than one source file, the destination {dest:?} must be a directory and end with a /"
    )]
    CopyDestNotDir { line: usize, dest: String },
    #[error("Dockerfile:{line}: unknown user {name:?} (not in the image's /etc/passwd)")]
    UnknownUser { line: usize, name: String },
    #[error("Dockerfile:{line}: unknown group {name:?} (not in the image's /etc/group)")]
    UnknownGroup { line: usize, name: String },
    #[error("Dockerfile:{line}: invalid --chmod {value:?} (octal like 755 or symbolic like u+x,go-w)")]
    BadChmod { line: usize, value: String },
}

impl BuildError {
    /// Attaches a Dockerfile line to an error that has none.
    pub fn at_line(self, line: usize) -> BuildError {
        match self {
            e @ (BuildError::AtLine { .. }
            | BuildError::CopyDestNotDir { .. }
            | BuildError::UnknownUser { .. }
            | BuildError::UnknownGroup { .. }
            | BuildError::BadChmod { .. }) => e,
            e => BuildError::AtLine {
                line,
                source: Box::new(e),
            },
        }
    }
}
