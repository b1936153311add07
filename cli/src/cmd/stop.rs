//! `lamina stop`: SIGTERM, then SIGKILL after a grace period.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait before killing.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    for c in &args.containers {
        let rec = state::find(&root, c)?;
        stop(&rec, Duration::from_secs(args.time));
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Stop a container and wait until its monitor has cleaned up.
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
    let _ = super::kill::send(pid, rustix::process::Signal::TERM);
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
