//! Messages from the helper to its caller: one JSON object per line on the request socket.

use serde::{Deserialize, Serialize};

use crate::error::FailureKind;
use crate::request::RunOutcome;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum HelperMessage {
    /// The container process runs; its host pid.
    Started { pid: i32 },
    /// The container process finished.
    Exited(RunOutcome),
    /// The container could not be started; everything was cleaned up.
    Failed { kind: FailureKind, message: String },
}
