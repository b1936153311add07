//! Progress events from transfers; the CLI renders them (bars on a TTY, plain lines elsewhere).

use crate::digest::Digest;

use super::RegistryError;

/// How a blob transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Downloaded,
    Pushed,
    /// Already present (in the store, or at the registry).
    Exists,
    /// Cross-repository mount at the destination registry.
    Mounted,
    /// Not transferred on purpose (a foreign layer).
    Skipped,
}

/// Receives transfer events. All methods have no-op defaults; implementations must be cheap.
pub trait Progress: Send + Sync {
    /// A blob transfer starts; `kind` is "layer", "config" or "manifest".
    fn start(&self, _digest: &Digest, _size: u64, _kind: &str) {}
    /// `done` bytes of the blob are through (absolute, may go backwards after a restart).
    fn advance(&self, _digest: &Digest, _done: u64) {}
    fn retrying(&self, _digest: &Digest, _error: &RegistryError) {}
    fn finish(&self, _digest: &Digest, _outcome: Outcome) {}
    /// A line of status for the operation as a whole ("Writing manifest", "Unpacking").
    fn message(&self, _text: &str) {}
}

/// Ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}
