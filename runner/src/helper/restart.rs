//! `--restart` in the detached monitor: the same container run again on the same upper dir and log.

use std::path::Path;

use super::{Reporter, SetupError, supervise};
use crate::protocol::HelperMessage;
use crate::request::{RunOutcome, RunRequest};

/// `--restart`: a detached monitor runs the container again (same upper dir, same log) while its
/// policy says so and nobody stopped it, waiting docker's doubling delay (100 ms, at most a minute)
/// in between; a run that lasted 10 s resets the delay, as dockerd does.
pub(super) fn restart_loop(
    req: &RunRequest,
    run_dir: &Path,
    sink: &mut Reporter,
    first: Result<RunOutcome, SetupError>,
) -> Result<RunOutcome, SetupError> {
    let policy = req.supervision.restart;
    let stopped = || req.supervision.stop_file.as_deref().is_some_and(|f| f.exists());
    let mut delay = std::time::Duration::from_millis(100);
    let mut outcome = first?;
    while policy.restarts_after(outcome.exit_code, sink.restart_count) && !stopped() {
        sink.restarting = true;
        sink.report(&HelperMessage::Exited(outcome));
        let ran_for = sink.started_at.map_or(0, |t| crate::now_ns().saturating_sub(t));
        if ran_for > 10_000_000_000 {
            delay = std::time::Duration::from_millis(100);
        }
        let until = std::time::Instant::now() + delay;
        while std::time::Instant::now() < until && !stopped() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if stopped() {
            break;
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(60));
        reset_run_dir(run_dir);
        crate::clear_work_dir(&req.work_dir);
        sink.restart_count += 1;
        sink.restarting = false;
        outcome = supervise(req, run_dir, sink, None)?;
    }
    sink.restarting = false;
    Ok(outcome)
}

/// What a finished run left in the private tmpfs (everything but the read-only helper binary), so
/// the next run of the same container starts from an empty bundle and libcontainer state.
fn reset_run_dir(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name() == "exe" {
            continue;
        }
        let p = e.path();
        let _ = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}
