//! docker's confinement and resource flags on `lamina run`, checked from inside the container (the
//! kernel's view: /proc/self/status, ulimit, df, the device node) and from the host's cgroup files.

mod run_common;

use std::path::Path;
use std::process::Command;

use run_common::{Fixture, require_root};

fn lamina(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lamina"));
    c.arg("--root").arg(store);
    c
}

/// Runs `sh -c script` with `flags`; returns (exit code, stdout, stderr).
fn run(fx: &Fixture, flags: &[&str], script: &str) -> (i32, String, String) {
    let o = lamina(&fx.path().join("store"))
        .args(["run", "--rm", "--network", "none"])
        .args(flags)
        .arg(&fx.lower)
        .args(["sh", "-c", script])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(fx: &Fixture, flags: &[&str], script: &str) -> String {
    let (code, out, err) = run(fx, flags, script);
    assert_eq!(code, 0, "{flags:?} {script}: {err}");
    out
}

fn cap_eff(status: &str) -> u64 {
    let hex = status.trim().strip_prefix("CapEff:").unwrap().trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn capabilities_follow_dockers_drop_and_add_rules() {
    require_root!();
    let fx = Fixture::new();
    let get = "grep CapEff /proc/self/status";
    let default = cap_eff(&ok(&fx, &[], get));
    assert_eq!(default, 0xa80425fb, "docker's default set");
    assert_eq!(cap_eff(&ok(&fx, &["--cap-drop", "ALL"], get)), 0);
    // CAP_NET_BIND_SERVICE is bit 10.
    assert_eq!(
        cap_eff(&ok(
            &fx,
            &["--cap-drop", "ALL", "--cap-add", "net_bind_service"],
            get
        )),
        1 << 10
    );
    assert_eq!(cap_eff(&ok(&fx, &["--cap-drop", "chown"], get)), default & !1);
    // CAP_SYS_ADMIN is bit 21; with it, mount works (the seccomp profile still forbids it, so
    // only the capability set is compared).
    assert_eq!(
        cap_eff(&ok(&fx, &["--cap-add", "SYS_ADMIN"], get)),
        default | 1 << 21
    );
    let (code, _, err) = run(&fx, &["--cap-add", "FLY"], "true");
    assert_eq!(code, 125);
    assert!(err.contains("unknown capability"), "{err}");
}

#[test]
fn privileged_means_every_capability_lamina_holds_and_no_seccomp() {
    require_root!();
    let fx = Fixture::new();
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = ours
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let (code, out, err) = run(
        &fx,
        &["--privileged"],
        "grep CapEff /proc/self/status; grep Seccomp: /proc/self/status; grep -c ' /proc/sys ' /proc/self/mountinfo; true",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--privileged"), "a warning is printed: {err}");
    let mut lines = out.lines();
    assert_eq!(cap_eff(lines.next().unwrap()), bounding);
    assert_eq!(lines.next().unwrap().split_whitespace().nth(1), Some("0"));
    assert_eq!(
        lines.next(),
        Some("0"),
        "privileged: /proc/sys is not made read-only"
    );
    // Not privileged: the seccomp filter is on (mode 2) and /proc/sys is a read-only mount.
    let out = ok(
        &fx,
        &[],
        "grep Seccomp: /proc/self/status; grep -c ' /proc/sys ' /proc/self/mountinfo; true",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap().split_whitespace().nth(1), Some("2"));
    assert_eq!(lines.next(), Some("1"));
    let out = ok(
        &fx,
        &["--security-opt", "seccomp=unconfined"],
        "grep Seccomp: /proc/self/status",
    );
    assert_eq!(out.split_whitespace().nth(1), Some("0"));
}

#[test]
fn ulimits_shm_and_devices() {
    require_root!();
    let fx = Fixture::new();
    assert_eq!(
        ok(&fx, &["--ulimit", "nofile=100:100"], "ulimit -n; ulimit -Hn"),
        "100\n100"
    );
    assert_eq!(
        ok(&fx, &["--ulimit", "nofile=50:200"], "ulimit -n; ulimit -Hn"),
        "50\n200"
    );
    let df = ok(&fx, &["--shm-size", "16m"], "df -k /dev/shm | tail -1");
    assert_eq!(df.split_whitespace().nth(1), Some("16384"), "{df}");
    let out = ok(
        &fx,
        &["--device", "/dev/null:/dev/hostnull:rw"],
        "stat -c '%t:%T %F' /dev/hostnull; echo x > /dev/hostnull && echo wrote",
    );
    assert_eq!(out, "1:3 character special file\nwrote");
    // /dev/fuse (10:229) is not among the devices every container gets: its node made by hand is
    // refused by the device cgroup, and given with --device it opens.
    if lamina_testkit::need_path("/dev/fuse", "/dev/fuse, a device outside the default allow list") {
        let (code, _, err) = run(&fx, &[], "mknod /tmp/f c 10 229 && exec 3</tmp/f");
        assert_ne!(code, 0);
        assert!(err.contains("Operation not permitted"), "{err}");
        assert_eq!(
            ok(&fx, &["--device", "/dev/fuse"], "exec 3</dev/fuse && echo opened"),
            "opened"
        );
    }
    let (code, _, err) = run(&fx, &["--device", "/etc/passwd:/dev/passwd"], "true");
    assert_eq!(code, 125);
    assert!(err.contains("not a device"), "{err}");
}

/// A block device of this machine, for the throttle flags.
fn block_device() -> Option<(String, String)> {
    for e in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
        let path = format!("/dev/{name}");
        if Path::new(&path).exists() && !name.starts_with("loop") && !name.starts_with("zram") {
            return Some((path, dev.trim().to_owned()));
        }
    }
    None
}

#[test]
fn cpuset_swap_and_block_io_limits_land_in_the_cgroup() {
    require_root!();
    let Some((dev, majmin)) = block_device() else {
        lamina_testkit::skip("no block device for --device-read-bps");
        return;
    };
    if !Path::new("/sys/fs/cgroup/blkio").is_dir() {
        lamina_testkit::skip("cgroup v1 blkio is not mounted (the v2 io files are checked elsewhere)");
        return;
    }
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let o = lamina(&store)
        .args([
            "run",
            "-d",
            "--network",
            "none",
            "--cpuset-cpus",
            "0",
            "--memory",
            "64m",
        ])
        .args(["--memory-swap", "128m"])
        .args(["--device-read-bps", &format!("{dev}:1mb")])
        .args(["--device-write-bps", &format!("{dev}:2mb")])
        .arg(&fx.lower)
        .args(["sleep", "30"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/lamina/{id}/{file}"))
            .unwrap_or_else(|e| panic!("{ctl}/{file}: {e}"))
    };
    assert_eq!(
        read("blkio", "blkio.throttle.read_bps_device").trim(),
        format!("{majmin} 1048576")
    );
    assert_eq!(
        read("blkio", "blkio.throttle.write_bps_device").trim(),
        format!("{majmin} 2097152")
    );
    assert_eq!(read("cpuset", "cpuset.cpus").trim(), "0");
    assert_eq!(read("memory", "memory.limit_in_bytes").trim(), "67108864");
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read("memory", "memory.memsw.limit_in_bytes").trim(), "134217728");
    }
    let _ = lamina(&store).args(["rm", "-f", &id]).output();
}
