//! Runner acceptance: nothing is left behind after many runs, including failed, killed and
//! interrupted ones.

mod run_common;

use std::path::Path;
use std::time::Duration;

use lamina_runner::{Limits, RunStdio};
use run_common::{Fixture, require_root};

const RUNS: usize = 200;
const THREADS: usize = 4;

fn signal(pid: u32, sig: rustix::process::Signal) {
    let _ = rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), sig);
}

fn quiet() -> RunStdio {
    RunStdio {
        stdin: Some(std::process::Stdio::null()),
        stdout: Some(std::process::Stdio::null()),
        stderr: Some(std::process::Stdio::null()),
    }
}

#[test]
fn two_hundred_runs_leave_nothing_behind() {
    require_root!();
    let fx = Fixture::new();
    let ids: Vec<String> = (0..RUNS).map(|_| lamina_runner::new_id()).collect();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (fx, ids) = (&fx, &ids);
            s.spawn(move || {
                for i in (t..RUNS).step_by(THREADS) {
                    let mut req = fx.request(&format!("r{i}"), "true");
                    req.id = Some(ids[i].clone());
                    req.limits = Limits {
                        pids: Some(64),
                        memory: Some(64 << 20),
                        cpus: Some(1.0),
                    };
                    match i % 5 {
                        0 => {}
                        1 => req.process.args = vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
                        2 => req.process.args = vec!["/nonexistent".into()],
                        3 => {
                            // killed while running
                            req.process.args = vec!["sleep".into(), "30".into()];
                            let mut r = lamina_runner::spawn(&req, quiet()).unwrap();
                            r.wait_started().unwrap();
                            r.kill().unwrap();
                            let o = r.wait().unwrap();
                            assert_eq!(o.exit_code, 137);
                            continue;
                        }
                        _ => {
                            // interrupted at some point during setup or early run
                            req.process.args = vec!["sleep".into(), "30".into()];
                            let mut r = lamina_runner::spawn(&req, quiet()).unwrap();
                            std::thread::sleep(Duration::from_millis((i % 7) as u64 * 3));
                            signal(r.helper_pid(), rustix::process::Signal::INT);
                            // sleep as PID 1 ignores the forwarded SIGINT; a caller gives up like this:
                            std::thread::sleep(Duration::from_millis((i % 3) as u64 * 10));
                            drop(r.kill());
                            let _ = r.wait();
                            continue;
                        }
                    }
                    let _ = lamina_runner::run_with_stdio(&req, quiet());
                }
            });
        }
    });

    // Mounts live in each helper's private namespace; the shared mount point stays empty here.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(fx.path().to_str().unwrap()),
        "overlay mounts leaked"
    );
    for id in &ids {
        for sub in [
            "cpu", "memory", "pids", "devices", "freezer", "blkio", "cpuset", "cpuacct", "",
        ] {
            let p = Path::new("/sys/fs/cgroup").join(sub).join("lamina").join(id);
            let i = ids.iter().position(|x| x == id).unwrap();
            assert!(
                !p.exists(),
                "cgroup left by run {i} (case {}): {}",
                i % 5,
                p.display()
            );
        }
    }
    // No helper or container process survived.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        for id in &ids {
            assert!(!cmdline.contains(id.as_str()), "process left: {cmdline}");
        }
        let Ok(environ) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        for id in &ids {
            assert!(!environ.contains(id.as_str()), "process left in cgroup of {id}");
        }
    }
    // Mount stubs (/etc/hosts etc.) were removed from every upper dir.
    for i in 0..RUNS {
        let etc = fx.path().join(format!("r{i}-upper/etc"));
        assert!(!etc.exists(), "stub left in {}", etc.display());
    }
}

#[test]
fn kill_running_container() {
    require_root!();
    let fx = Fixture::new();
    let mut req = fx.request("k", "sleep 30");
    req.process.args = vec!["sleep".into(), "30".into()];
    let mut r = lamina_runner::spawn(&req, RunStdio::default()).unwrap();
    r.wait_started().unwrap();
    r.kill().unwrap();
    let o = r.wait().unwrap();
    assert_eq!((o.exit_code, o.signal), (137, Some(9)));
}
