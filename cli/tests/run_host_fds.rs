//! No host fd and no writable host binary reaches a container, whichever way it is entered:
//! runc CVE-2024-21626 (a leaked host dir fd used as `-w /proc/self/fd/N` / `WORKDIR /proc/self/fd/N`
//! gives the process a host-filesystem cwd) and CVE-2019-5736 (the runtime's own binary, reachable as
//! /proc/PID/exe of a runtime process, rewritten from inside) for `lamina run`, RUN and `lamina exec`.

mod run_common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use run_common::{Fixture, require_root};

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

/// Which of the fds a leak would use are open in the shell, besides stdio.
const FD_SCAN: &str = "for f in 3 4 5 6 7 8 9 10 11 12 13 14 15 16 19 20 63 255; do \
                       [ -e /proc/$$/fd/$f ] && echo -n \"$f \"; done; echo end";

fn detached(store: &Path, fx: &Fixture, name: &str) -> i32 {
    let out = lamina(store)
        .args(["run", "-d", "--name", name])
        .arg(&fx.lower)
        .args(["sleep", "60"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status = store.join("containers").join(&id).join("status.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read(&status) {
            let s: lamina_runner::ContainerStatus = serde_json::from_slice(&s).unwrap();
            if let Some(pid) = s.pid {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "container {name} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The payload is real: a process that enters the container's namespaces holding a host dir fd
/// (plain nsenter) gets a host cwd through /proc/self/fd/7 and reads the canary.
fn assert_leaked_fd_reaches_host(pid: i32, host_dir: &Path) {
    let script = format!(
        "exec 7<{dir}; exec nsenter -t {pid} -m -p -- /bin/sh -c 'cd /proc/self/fd/7 && cat canary'",
        dir = host_dir.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("host-secret"),
        "control did not reach the host dir: {}",
        text(&out)
    );
}

#[test]
fn run_and_exec_refuse_proc_fd_workdirs_and_leak_no_fds() {
    require_root!();
    if !lamina_testkit::need_tools(&["nsenter"]) {
        return;
    }
    let fx = Fixture::new();
    let host_dir = fx.path().join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("canary"), "host-secret\n").unwrap();
    let store = fx.path().join("store");

    // `lamina run` started from a host dir with host fds open: none reach the container.
    let script = format!(
        "cd {dir} && exec 7<{dir} 8<{dir} 9<canary; exec {lamina} --root {store} run --rm {rootfs} sh -c '{FD_SCAN}'",
        dir = host_dir.display(),
        lamina = env!("CARGO_BIN_EXE_lamina"),
        store = store.display(),
        rootfs = fx.lower.display(),
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "end",
        "run leaked fds: {}",
        text(&out)
    );
    for n in 3..12 {
        let out = lamina(&store)
            .args(["run", "--rm", "-w", &format!("/proc/self/fd/{n}")])
            .arg(&fx.lower)
            .args(["cat", "canary"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "run -w /proc/self/fd/{n}: {}", text(&out));
        assert!(!text(&out).contains("host-secret"), "{}", text(&out));
    }

    let pid = detached(&store, &fx, "fds");
    assert_leaked_fd_reaches_host(pid, &host_dir);
    let script = format!(
        "cd {dir} && exec 7<{dir} 8<{dir} 9<canary; exec {lamina} --root {store} exec fds sh -c '{FD_SCAN}; pwd'",
        dir = host_dir.display(),
        lamina = env!("CARGO_BIN_EXE_lamina"),
        store = store.display(),
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "end\n/",
        "exec leaked fds or the host cwd: {}",
        text(&out)
    );
    for n in 3..12 {
        let script = format!(
            "exec 7<{dir}; exec {lamina} --root {store} exec -w /proc/self/fd/{n} fds cat canary",
            dir = host_dir.display(),
            lamina = env!("CARGO_BIN_EXE_lamina"),
            store = store.display(),
        );
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert!(!out.status.success(), "exec -w /proc/self/fd/{n}: {}", text(&out));
        assert!(!text(&out).contains("host-secret"), "{}", text(&out));
    }
    let _ = lamina(&store).args(["rm", "-f", "fds"]).output();
}

#[test]
fn build_refuses_proc_fd_workdir_and_run_steps_leak_no_fds() {
    require_root!();
    let fx = Fixture::new();
    std::fs::write(fx.path().join(".dockerignore"), "store\n").unwrap();
    let store = fx.path().join("store");
    let build = |dockerfile: &str| {
        std::fs::write(fx.path().join("Dockerfile"), dockerfile).unwrap();
        lamina(&store)
            .args(["build", "--progress", "plain", "--no-cache"])
            .arg(fx.path())
            .output()
            .unwrap()
    };
    let out = build(&format!("FROM scratch\nCOPY lower/ /\nRUN {FD_SCAN}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    // "#N <elapsed> end" when the step saw only stdio; fd numbers come between otherwise.
    let scan = log.lines().find(|l| l.ends_with("end")).unwrap_or_default();
    let words: Vec<&str> = scan.split_whitespace().collect();
    assert!(
        words.len() >= 2 && words[words.len() - 2].parse::<f64>().is_ok(),
        "a RUN step sees non-stdio fds: {scan:?}\n{log}"
    );
    for n in [3, 5, 7, 9] {
        let out = build(&format!(
            "FROM scratch\nCOPY lower/ /\nWORKDIR /proc/self/fd/{n}\nRUN cat canary; ls ..\n"
        ));
        assert!(!out.status.success(), "WORKDIR /proc/self/fd/{n}: {}", text(&out));
        assert!(!text(&out).contains("hostdir"), "{}", text(&out));
    }
}

/// The processes that turn into the exec'd process (the exec helper and, until its execve, the
/// tenant it forks) run from the read-only bind of the lamina binary in the monitor's namespace, so
/// /proc/PID/exe from inside leads to a read-only mount. The control: the `lamina exec` client, run
/// from the host path, is on a writable mount, so the check tells the two apart.
#[test]
fn exec_runs_from_a_readonly_helper_binary() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    detached(&store, &fx, "exe");
    let mut client = lamina(&store)
        .args(["exec", "exe", "sleep", "3"])
        .spawn()
        .unwrap();
    let client_pid = client.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let helper = loop {
        let children = std::fs::read_to_string(format!("/proc/{client_pid}/task/{client_pid}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            let exe = format!("/proc/{pid}/exe");
            if std::fs::read_link(&exe).is_ok_and(|p| p.ends_with("run/lamina/exe")) {
                break exe;
            }
        }
        assert!(
            Instant::now() < deadline,
            "exec helper never re-exec'd from /run/lamina/exe"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let ro = |exe: &str| {
        rustix::fs::statvfs(exe)
            .unwrap()
            .f_flag
            .contains(rustix::fs::StatVfsMountFlags::RDONLY)
    };
    assert!(ro(&helper), "exec helper's binary is writable");
    assert!(
        !ro(&format!("/proc/{client_pid}/exe")),
        "control: client binary should be writable"
    );
    let _ = client.wait();
    let _ = lamina(&store).args(["rm", "-f", "exe"]).output();
}

/// Pids of `root` and all its descendants.
fn descendants(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let pid = all[i];
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
        i += 1;
    }
    all
}

/// Wait until some descendant of `client` runs from the helper's read-only bind, and assert that
/// bind is a read-only mount while the client's own binary is not.
fn assert_helpers_readonly(entry: &str, client: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let ro = |exe: &str| {
        rustix::fs::statvfs(exe).is_ok_and(|st| st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
    };
    loop {
        let mut helpers = 0;
        for pid in descendants(client.id()).into_iter().skip(1) {
            let exe = format!("/proc/{pid}/exe");
            match std::fs::read_link(&exe) {
                Ok(p) if p.ends_with("run/lamina/exe") => {
                    assert!(ro(&exe), "{entry}: helper {pid} runs from a writable binary");
                    helpers += 1;
                }
                _ => {}
            }
        }
        if helpers > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{entry}: no helper seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !ro(&format!("/proc/{}/exe", client.id())),
        "control: the client binary is writable"
    );
    let _ = client.wait();
}

/// CVE-2019-5736 for `lamina run` and a RUN step: the helper driving the container (whose clones
/// become the container's init) runs from the read-only bind, never from the writable host binary.
#[test]
fn run_and_build_helpers_run_from_a_readonly_binary() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let mut run = lamina(&store)
        .args(["run", "--rm"])
        .arg(&fx.lower)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    assert_helpers_readonly("lamina run", &mut run);

    std::fs::write(fx.path().join(".dockerignore"), "store\n").unwrap();
    std::fs::write(
        fx.path().join("Dockerfile"),
        "FROM scratch\nCOPY lower/ /\nRUN sleep 2\n",
    )
    .unwrap();
    let mut build = lamina(&store)
        .args(["build", "--progress", "plain", "--no-cache"])
        .arg(fx.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_helpers_readonly("RUN step", &mut build);
}

/// The lexical /proc check is not enough: the image's `/w -> /proc/self/fd/7` turns an innocent
/// `-w /w` / `WORKDIR /w` into a /proc/self/fd cwd once resolved. Control: a process entering the
/// container's mount namespace holding a host dir fd 7 (plain nsenter) and changing into /w reads the
/// host canary. lamina refuses the resolved path for run, RUN and exec.
#[test]
fn symlinked_workdir_into_proc_is_refused() {
    require_root!();
    if !lamina_testkit::need_tools(&["nsenter"]) {
        return;
    }
    let fx = Fixture::new();
    std::os::unix::fs::symlink("/proc/self/fd/7", fx.lower.join("w")).unwrap();
    let host_dir = fx.path().join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("canary"), "host-secret\n").unwrap();
    let store = fx.path().join("store");

    let pid = detached(&store, &fx, "w");
    let control = format!(
        "exec 7<{dir}; exec nsenter -t {pid} -m -p -- /bin/sh -c 'cd /w && cat canary'",
        dir = host_dir.display()
    );
    let out = Command::new("sh").args(["-c", &control]).output().unwrap();
    assert!(text(&out).contains("host-secret"), "control: {}", text(&out));

    let out = lamina(&store)
        .args(["run", "--rm", "-w", "/w"])
        .arg(&fx.lower)
        .args(["cat", "canary"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "run -w /w: {}", text(&out));
    assert!(text(&out).contains("/proc/self/fd/7"), "{}", text(&out));

    let exec = format!(
        "exec 7<{dir}; exec {lamina} --root {store} exec -w /w w cat canary",
        dir = host_dir.display(),
        lamina = env!("CARGO_BIN_EXE_lamina"),
        store = store.display(),
    );
    let out = Command::new("sh").args(["-c", &exec]).output().unwrap();
    assert!(!out.status.success(), "exec -w /w: {}", text(&out));
    assert!(!text(&out).contains("host-secret"), "{}", text(&out));
    let _ = lamina(&store).args(["rm", "-f", "w"]).output();

    std::fs::write(fx.path().join(".dockerignore"), "store\nhostdir\n").unwrap();
    std::fs::write(
        fx.path().join("Dockerfile"),
        "FROM scratch\nCOPY lower/ /\nWORKDIR /w\nRUN cat canary; ls\n",
    )
    .unwrap();
    let out = lamina(&store)
        .args(["build", "--progress", "plain", "--no-cache"])
        .arg(fx.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "WORKDIR /w: {}", text(&out));
    assert!(!text(&out).contains("host-secret"), "{}", text(&out));
}
