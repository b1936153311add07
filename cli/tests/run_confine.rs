//! One confinement for every way into a container (issue 11 item 3): `lamina run`, a RUN step of a
//! build and `lamina exec` each run the probe (run_common/probe.c), which must report seccomp mode 2,
//! no_new_privs, docker's capability set and refused keyctl/add_key, unshare(CLONE_NEWUSER) and a
//! cgroup v1 mount in a new user namespace. The control for each: the same probe entered into the
//! same container's namespaces with plain `nsenter` succeeds at all of it, so the payload is real.

mod run_common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use run_common::{Fixture, assert_confined, assert_unconfined, install_probe, require_root};

fn lamina(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lamina"));
    c.arg("--root").arg(store);
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The host pid of a detached container's init, from its status record.
fn container_pid(store: &Path, name: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ps = lamina(store)
            .args(["ps", "--format", "json", "--no-trunc"])
            .output()
            .unwrap();
        // One JSON object per line, docker's keys.
        let id = String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|c| c["Names"] == name)
            .and_then(|c| c["ID"].as_str().map(str::to_string));
        if let Some(id) = id {
            let status = store.join("containers").join(&id).join("status.json");
            if let Ok(s) = std::fs::read(&status) {
                let s: lamina_runner::ContainerStatus = serde_json::from_slice(&s).unwrap();
                if let Some(pid) = s.pid {
                    return pid;
                }
            }
        }
        assert!(Instant::now() < deadline, "container {name} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The naive entry: `nsenter` into every namespace of the container's init, no seccomp, no cap drop.
fn nsenter_probe(pid: i32) -> String {
    let out = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .args(["-m", "-u", "-i", "-n", "-p", "--", "/bin/probe"])
        .output()
        .unwrap();
    text(&out)
}

#[test]
fn lamina_run_is_confined() {
    require_root!();
    if !lamina_testkit::need_tools(&["nsenter"]) {
        return;
    }
    let fx = Fixture::new();
    if install_probe(&fx).is_none() {
        return;
    }
    let store = fx.path().join("store");
    let out = lamina(&store)
        .arg("run")
        .arg("--rm")
        .arg(&fx.lower)
        .arg("/bin/probe")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_confined("lamina run", &text(&out));

    // Control: the same container, entered naively.
    let out = lamina(&store)
        .args(["run", "-d", "--name", "ctl"])
        .arg(&fx.lower)
        .args(["sleep", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_unconfined(
        "nsenter into a run container",
        &nsenter_probe(container_pid(&store, "ctl")),
    );
    let _ = lamina(&store).args(["rm", "-f", "ctl"]).output();
}

#[test]
fn lamina_exec_is_confined() {
    require_root!();
    if !lamina_testkit::need_tools(&["nsenter"]) {
        return;
    }
    let fx = Fixture::new();
    if install_probe(&fx).is_none() {
        return;
    }
    let store = fx.path().join("store");
    let out = lamina(&store)
        .args(["run", "-d", "--name", "target"])
        .arg(&fx.lower)
        .args(["sleep", "60"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pid = container_pid(&store, "target");

    let exec = lamina(&store)
        .args(["exec", "target", "/bin/probe"])
        .output()
        .unwrap();
    assert!(exec.status.success(), "{}", text(&exec));
    assert_confined("lamina exec", &text(&exec));
    // As a non-root user too: the same sets (docker gives a non-root exec the same bounding set).
    let exec = lamina(&store)
        .args(["exec", "-u", "1000", "target", "/bin/probe"])
        .output()
        .unwrap();
    assert!(exec.status.success(), "{}", text(&exec));
    let report = text(&exec);
    assert!(
        report.contains("Seccomp:\t2") && report.contains("NoNewPrivs:\t1"),
        "{report}"
    );
    assert!(!report.contains("=ok"), "exec -u 1000: {report}");

    // The exec'd process is in the container's cgroup and pid namespace, like init.
    let exec = lamina(&store)
        .args([
            "exec",
            "target",
            "sh",
            "-c",
            "cat /proc/self/cgroup; for n in pid mnt net uts ipc; do readlink /proc/self/ns/$n; done",
        ])
        .output()
        .unwrap();
    let inside = text(&exec);
    let init_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let memory = |s: &str| s.lines().find(|l| l.contains(":memory:")).map(str::to_string);
    assert!(
        memory(&init_cgroup).is_some_and(|l| l.contains("/lamina/")),
        "{init_cgroup}"
    );
    assert_eq!(
        memory(&inside),
        memory(&init_cgroup),
        "exec left the container's cgroup"
    );
    for ns in ["pid", "mnt", "net", "uts", "ipc"] {
        let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert!(
            inside.contains(init_ns.to_str().unwrap()),
            "exec is not in init's {ns} ns: {inside}"
        );
    }

    // And has the container's rlimits, not the caller's (lowered here so they differ).
    let script = format!(
        "ulimit -Sn 512 && exec {} --root {} exec target cat /proc/self/limits",
        env!("CARGO_BIN_EXE_lamina"),
        store.display()
    );
    let limits = Command::new("sh").args(["-c", &script]).output().unwrap();
    let nofile = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .map(str::to_string)
    };
    let init_limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert_eq!(
        nofile(&text(&limits)),
        nofile(&init_limits),
        "exec's RLIMIT_NOFILE differs from init's"
    );

    assert_unconfined("nsenter into the exec target", &nsenter_probe(pid));
    let _ = lamina(&store).args(["rm", "-f", "target"]).output();
}

#[test]
fn build_run_step_is_confined() {
    require_root!();
    let fx = Fixture::new();
    if install_probe(&fx).is_none() {
        return;
    }
    std::fs::write(
        fx.path().join("Dockerfile"),
        "FROM scratch\nCOPY lower/ /\nRUN /bin/probe > /probe.txt\nRUN cat /probe.txt\n",
    )
    .unwrap();
    std::fs::write(fx.path().join(".dockerignore"), "store\n").unwrap();
    let store = fx.path().join("store");
    let out = lamina(&store)
        .args(["build", "--progress", "plain", "--no-cache", "-t", "probe:1"])
        .arg(fx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_confined("RUN step", &text(&out));
}

/// The port proxy lives in the monitor (a host process) but its threads sit in the container's
/// network namespace and parse nothing but bytes the container sends: each such thread must carry the
/// container's seccomp filter, no_new_privs and no capabilities. The control is the monitor's main
/// thread in the host namespace: unfiltered, all capabilities, so the check tells the two apart.
#[test]
fn port_proxy_threads_are_confined() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = lamina(&store)
        .args(["run", "-d", "--name", "web", "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg(&fx.lower)
        .args(["httpd", "-f", "-p", "8080", "-h", "/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let init = container_pid(&store, "web");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status: lamina_runner::ContainerStatus = serde_json::from_slice(
        &std::fs::read(store.join("containers").join(&id).join("status.json")).unwrap(),
    )
    .unwrap();
    let monitor = status.monitor_pid;
    // An open connection, so its per-connection threads exist while we look.
    let _conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let container_net = std::fs::read_link(format!("/proc/{init}/ns/net")).unwrap();
    let mut proxy_threads = 0;
    for task in std::fs::read_dir(format!("/proc/{monitor}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(net) = std::fs::read_link(task.join("ns/net")) else {
            continue;
        };
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        if net == container_net {
            proxy_threads += 1;
            assert_eq!(field("Seccomp:"), "2", "{}: {status}", task.display());
            assert_eq!(field("NoNewPrivs:"), "1", "{}: {status}", task.display());
            assert_eq!(
                field("CapEff:"),
                "0000000000000000",
                "{}: {status}",
                task.display()
            );
            assert_eq!(
                field("CapBnd:"),
                "0000000000000000",
                "{}: {status}",
                task.display()
            );
        } else if task.ends_with(monitor.to_string()) {
            assert_eq!(
                field("Seccomp:"),
                "0",
                "control: the monitor's main thread is unfiltered"
            );
        }
    }
    assert!(proxy_threads >= 2, "no proxy threads in the container's netns");
    let _ = lamina(&store).args(["rm", "-f", "web"]).output();
}
