//! Runner acceptance: cgroup limits (run as root; skipped elsewhere).

mod run_common;

use std::path::Path;
use std::time::{Duration, Instant};

use lamina_runner::{Limits, RunStdio};
use run_common::{Fixture, require_root};

fn cgroup_gone(id: &str) -> bool {
    [
        "cpu", "memory", "pids", "devices", "freezer", "blkio", "cpuset", "cpuacct", "",
    ]
    .iter()
    .all(|sub| {
        !Path::new("/sys/fs/cgroup")
            .join(sub)
            .join("lamina")
            .join(id)
            .exists()
    })
}

#[test]
fn fork_bomb_stops_at_pids_limit() {
    require_root!();
    let fx = Fixture::new();
    let id = lamina_runner::new_id();
    // Each loop iteration forks; with 16 tasks allowed most forks fail and the shell gives up.
    let mut req = fx.request(
        "bomb",
        "i=0; while [ $i -lt 200 ]; do sleep 3 & i=$((i+1)); done 2>/dev/null; echo spawned",
    );
    req.id = Some(id.clone());
    req.limits = Limits {
        pids: Some(16),
        ..Default::default()
    };
    let t = Instant::now();
    let (o, out) = fx.run(&req);
    assert!(t.elapsed() < Duration::from_secs(20), "run did not end: {out}");
    // The shell either reports the fork failure or dies of it; both are "stopped at the limit".
    assert!(o.exit_code != 0 || out.contains("spawned"), "{o:?} {out}");
    assert!(cgroup_gone(&id), "cgroup of {id} left behind");
}

#[test]
fn memory_hog_is_oom_killed() {
    require_root!();
    let fx = Fixture::new();
    let id = lamina_runner::new_id();
    let mut req = fx.request("oom", "x");
    req.process.args = vec![
        "/bin/sh".into(),
        "-c".into(),
        "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#a}".into(),
    ];
    req.id = Some(id.clone());
    req.limits = Limits {
        memory: Some(32 << 20),
        ..Default::default()
    };
    let (o, out) = fx.run(&req);
    assert!(o.oom_killed, "not reported as OOM: {o:?} {out}");
    assert_eq!(o.exit_code, 137, "{out}");
    assert!(cgroup_gone(&id));
}

#[test]
fn cpus_become_cfs_quota() {
    require_root!();
    let fx = Fixture::new();
    let id = lamina_runner::new_id();
    let mut req = fx.request("cpu", "sleep 5");
    req.id = Some(id.clone());
    req.limits = Limits {
        cpus: Some(0.5),
        ..Default::default()
    };
    let mut running = lamina_runner::spawn(&req, RunStdio::default()).unwrap();
    running.wait_started().unwrap();
    let v1 = Path::new("/sys/fs/cgroup/cpu/lamina")
        .join(&id)
        .join("cpu.cfs_quota_us");
    let v2 = Path::new("/sys/fs/cgroup/lamina").join(&id).join("cpu.max");
    let deadline = Instant::now() + Duration::from_secs(10);
    let quota = loop {
        // The cgroup exists a moment before its limits are written.
        if let Ok(s) = std::fs::read_to_string(&v1).or_else(|_| std::fs::read_to_string(&v2))
            && s.trim() != "-1"
            && !s.starts_with("max")
        {
            break s;
        }
        assert!(Instant::now() < deadline, "no cpu cgroup for {id}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        quota.trim() == "50000" || quota.trim() == "50000 100000",
        "quota {quota:?}"
    );
    // Three TERMs: sleep as PID 1 ignores them, the third escalates to SIGKILL.
    let pid = rustix::process::Pid::from_raw(running.helper_pid() as i32).unwrap();
    for _ in 0..3 {
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = running.wait().unwrap();
    assert_eq!((o.exit_code, o.signal), (137, Some(9)));
    assert!(cgroup_gone(&id));
}
