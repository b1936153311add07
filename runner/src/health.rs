//! Health checks (`--health-cmd` and friends, or the image's HEALTHCHECK), run by a detached
//! container's monitor: every interval it runs the command in the container the way `lamina exec`
//! does (the exec helper, same confinement; from a prober process of its own), with a timeout, and records docker's health state
//! (`starting` → `healthy`/`unhealthy`, the failing streak, the last five results) in a file the
//! CLI reads for `ps` and `inspect`.
#![allow(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What to run and how often. Durations in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthCheck {
    /// argv in the container (docker's `CMD-SHELL x` is `/bin/sh -c x`).
    pub command: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Failures in this first stretch don't count towards `retries`.
    pub start_period_ms: u64,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// Where the monitor writes [`HealthState`] JSON.
    pub state_file: PathBuf,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

/// One probe: Unix nanoseconds, its exit code (-1: it couldn't run or timed out), its output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: u64,
    pub end: u64,
    pub exit_code: i32,
    pub output: String,
}

/// Results kept, as docker keeps them.
const KEEP: usize = 5;
/// Output kept per probe.
const OUTPUT_MAX: usize = 4096;

impl HealthState {
    /// The state after a probe that exited with `code`, `in_start_period` telling whether a
    /// failure counts yet.
    pub fn record(&mut self, entry: HealthLog, retries: u32, in_start_period: bool) {
        if entry.exit_code == 0 {
            self.status = "healthy".into();
            self.failing_streak = 0;
        } else if !in_start_period {
            self.failing_streak += 1;
            if self.failing_streak >= retries.max(1) {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(entry);
        if self.log.len() > KEEP {
            self.log.remove(0);
        }
    }
}

/// The prober: a process of its own, child of the monitor, whose probes are its children. (Not a
/// thread of the monitor: the monitor reaps every child of its own, which would take the probes'
/// exit statuses from under a thread.) Killed when dropped, and by the kernel if the monitor dies.
pub(crate) struct Prober {
    child: Option<std::process::Child>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the prober process is told (one JSON argument).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProberArgs {
    check: HealthCheck,
    id: String,
    monitor_pid: i32,
}

/// The hidden argument of `lamina __run-helper` that runs [`prober_main`].
pub(crate) const PROBER_ARG: &str = "--health-prober";

/// Starts probing container `id`, whose monitor is this process.
pub(crate) fn start(check: &HealthCheck, helper_exe: &Path, id: &str) -> Prober {
    write_state(&check.state_file, &starting());
    let args = ProberArgs {
        check: check.clone(),
        id: id.to_string(),
        monitor_pid: std::process::id() as i32,
    };
    let child = serde_json::to_string(&args).ok().and_then(|json| {
        let mut cmd = std::process::Command::new(helper_exe);
        cmd.arg(crate::HELPER_SUBCOMMAND)
            .arg(PROBER_ARG)
            .arg(json)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().ok()
    });
    Prober { child }
}

fn starting() -> HealthState {
    HealthState {
        status: "starting".into(),
        ..Default::default()
    }
}

/// The prober process: probe every interval until killed.
pub(crate) fn prober_main(json: &str) -> std::process::ExitCode {
    let Ok(args) = serde_json::from_str::<ProberArgs>(json) else {
        eprintln!("lamina health prober: bad arguments");
        return std::process::ExitCode::from(2);
    };
    let check = &args.check;
    let began = Instant::now();
    let mut state = starting();
    loop {
        std::thread::sleep(Duration::from_millis(check.interval_ms.max(1)));
        let entry = probe(check, &args.id, args.monitor_pid);
        let in_start = began.elapsed() < Duration::from_millis(check.start_period_ms);
        state.record(entry, check.retries, in_start);
        write_state(&check.state_file, &state);
    }
}

fn probe(check: &HealthCheck, id: &str, monitor_pid: i32) -> HealthLog {
    let start = crate::now_ns();
    let req = crate::ExecRequest {
        id: id.to_string(),
        monitor_pid,
        args: check.command.clone(),
        env: Vec::new(),
        cwd: None,
        uid: None,
        gid: None,
        tty: false,
    };
    let fail = |output: String| HealthLog {
        start,
        end: crate::now_ns(),
        exit_code: -1,
        output,
    };
    let json = match serde_json::to_string(&req) {
        Ok(j) => j,
        Err(e) => return fail(e.to_string()),
    };
    let out = tempfile::tempfile();
    let Ok(out) = out else {
        return fail("cannot create the output file".into());
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find the lamina binary: {e}")),
    };
    let child = std::process::Command::new(exe)
        .arg(crate::EXEC_SUBCOMMAND)
        .arg(json)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().map_or(std::process::Stdio::null(), Into::into))
        .stderr(out.try_clone().map_or(std::process::Stdio::null(), Into::into))
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start the health check: {e}")),
    };
    let deadline = Instant::now() + Duration::from_millis(check.timeout_ms.max(1));
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return fail(format!("Health check exceeded timeout ({}ms)", check.timeout_ms));
            }
        }
    };
    let mut output = String::new();
    let mut f = out;
    let _ = std::io::Seek::rewind(&mut f);
    let _ = f.take(OUTPUT_MAX as u64).read_to_string(&mut output);
    HealthLog {
        start,
        end: crate::now_ns(),
        exit_code: code,
        output,
    }
}

fn write_state(path: &Path, state: &HealthState) {
    let tmp = path.with_extension("tmp");
    if let Ok(json) = serde_json::to_vec(state)
        && std::fs::write(&tmp, json).is_ok()
    {
        let _ = std::fs::rename(&tmp, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(code: i32) -> HealthLog {
        HealthLog {
            start: 1,
            end: 2,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn streaks_and_start_period() {
        let mut s = HealthState {
            status: "starting".into(),
            ..Default::default()
        };
        s.record(log(1), 2, true);
        assert_eq!((s.status.as_str(), s.failing_streak), ("starting", 0));
        s.record(log(1), 2, false);
        assert_eq!((s.status.as_str(), s.failing_streak), ("starting", 1));
        s.record(log(1), 2, false);
        assert_eq!((s.status.as_str(), s.failing_streak), ("unhealthy", 2));
        s.record(log(0), 2, false);
        assert_eq!((s.status.as_str(), s.failing_streak), ("healthy", 0));
        for _ in 0..10 {
            s.record(log(0), 2, false);
        }
        assert_eq!(s.log.len(), KEEP);
    }
}
