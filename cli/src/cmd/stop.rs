//! `lamina stop`: SIGTERM, then SIGKILL after a grace period.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait before killing (default: the container's --stop-timeout, else 10).
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    for c in &args.containers {
        let rec = state::find(&root, c)?;
        stop(&rec, grace(&rec, args.time));
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `-t`, else the container's `--stop-timeout`, else docker's 10 s.
pub fn grace(rec: &state::Record, time: Option<u64>) -> Duration {
    Duration::from_secs(time.or(rec.meta.stop_timeout).unwrap_or(10))
}

/// Stop a container (its stop signal, then SIGKILL after `grace`) and wait until its monitor has
/// cleaned up.
pub fn stop(rec: &state::Record, grace: Duration) {
    // First, so a monitor between two runs of its restart policy starts no more.
    let _ = std::fs::write(rec.dir.join(state::STOP_FILE), b"");
    if !rec.active() {
        return;
    }
    let monitor = rec.status.as_ref().map(|s| s.monitor_pid).unwrap_or(0);
    let Some(pid) = rec.pid() else {
        // Restarting: the monitor sees the stop file within its poll interval and exits.
        let deadline = Instant::now() + Duration::from_secs(5);
        while state::pid_alive(monitor) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    };
    let signal = rec
        .meta
        .stop_signal
        .as_deref()
        .and_then(|s| super::kill::parse_signal(s).ok())
        .unwrap_or(rustix::process::Signal::TERM);
    let _ = super::kill::send(pid, signal);
    // A paused container gets the signal once thawed, as docker stops one.
    if let Some(cg) = rec.cgroup().filter(|c| c.frozen()) {
        let _ = cg.set_frozen(false);
    }
    let deadline = Instant::now() + grace;
    while state::pid_alive(monitor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if state::pid_alive(monitor) {
        let _ = super::kill::send(pid, rustix::process::Signal::KILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while state::pid_alive(monitor) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
