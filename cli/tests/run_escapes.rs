//! Runner acceptance: known container escapes stay closed (run as root; skipped elsewhere).

mod run_common;

use std::path::Path;

use lamina_runner::{Mount, RunStdio};
use run_common::{Fixture, require_root};

/// CVE-2019-5736: the container's init is a clone of the lamina helper until its execve, so its
/// /proc/self/exe is the lamina binary. The helper runs from a read-only bind mount of itself, so that
/// link leads to a read-only mount and the host binary cannot be rewritten through it.
#[test]
fn helper_binary_is_on_a_readonly_mount() {
    require_root!();
    let fx = Fixture::new();
    let mut running = lamina_runner::spawn(&fx.request("exe", "sleep 3"), RunStdio::default()).unwrap();
    running.wait_started().unwrap();
    let exe = format!("/proc/{}/exe", running.helper_pid());
    let st = rustix::fs::statvfs(exe.as_str()).unwrap();
    assert!(
        st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
        "helper exe is writable: {:?}",
        st.f_flag
    );
    kill_twice(running.helper_pid());
    let _ = running.wait();

    // And from inside: exec'ing /proc/self/exe as the entrypoint must not hand out a writable binary.
    let host_exe = std::fs::read(env!("CARGO_BIN_EXE_lamina")).unwrap();
    let req = fx.request("exe2", "x");
    let mut req2 = req.clone();
    req2.process.args = vec!["/proc/self/exe".into(), "--version".into()];
    let _ = lamina_runner::run_with_stdio(
        &req2,
        RunStdio {
            stdin: Some(std::process::Stdio::null()),
            stdout: Some(std::process::Stdio::null()),
            stderr: Some(std::process::Stdio::null()),
        },
    );
    assert!(
        std::fs::read(env!("CARGO_BIN_EXE_lamina")).unwrap() == host_exe,
        "host binary changed"
    );
}

fn kill_twice(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    for _ in 0..2 {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
}

/// A symlink in the image at a mount target must resolve inside the rootfs, never on the host.
#[test]
fn symlinked_mount_target_stays_inside_rootfs() {
    require_root!();
    let fx = Fixture::new();
    let host_victim = fx.path().join("victim");
    std::fs::create_dir_all(&host_victim).unwrap();
    std::fs::write(host_victim.join("keep"), "host").unwrap();
    // /data -> <absolute host path>; /etc/hosts -> ../../<host path>/hosts
    std::os::unix::fs::symlink(&host_victim, fx.lower.join("data")).unwrap();
    let src = fx.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("payload"), "x").unwrap();
    let mut req = fx.request("sym", "ls /data; echo $(cat /data/payload)");
    req.mounts = vec![Mount::Bind {
        source: src.clone(),
        destination: "/data".into(),
        readonly: true,
    }];
    let (o, out) = fx.run(&req);
    assert_eq!(o.exit_code, 0, "{out}");
    assert!(out.contains("payload"), "{out}");
    // Nothing was mounted on, or created in, the host directory.
    let entries: Vec<_> = std::fs::read_dir(&host_victim)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("keep")]);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(host_victim.to_str().unwrap()));
}

/// /etc/hosts in the image pointing outside: our bind of /etc/hosts must not follow it.
#[test]
fn symlinked_etc_hosts_is_not_followed() {
    require_root!();
    let fx = Fixture::new();
    let victim = fx.path().join("hostfile");
    std::fs::write(&victim, "original").unwrap();
    std::os::unix::fs::symlink(&victim, fx.lower.join("etc/hosts")).unwrap();
    let (o, out) = fx.run(&fx.request("hosts", "grep -c localhost /etc/hosts"));
    assert_eq!(o.exit_code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
    assert!(Path::new(&victim).exists());
}
