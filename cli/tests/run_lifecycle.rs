//! Container lifecycle without a daemon: create, start [-a], wait, restart, and `--restart`
//! policies applied by the detached monitor.

mod run_common;

use std::path::Path;
use std::time::{Duration, Instant};

use run_common::{Fixture, json_lines, lamina, ok, require_root, wait_for};

fn status(store: &Path, name: &str) -> String {
    let ps: serde_json::Value = json_lines(&ok(store, &["ps", "-a", "--format", "json"]));
    ps.as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"] == name)
        .map(|c| short(c["Status"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("no container {name}: {ps}"))
}

/// ps's STATUS without its duration: `Up 2 seconds (healthy)` → `Up (healthy)`, `Exited (3) 1 second
/// ago` → `Exited (3)`.
fn short(s: &str) -> String {
    let (head, rest) = s.split_once(' ').unwrap_or((s, ""));
    let mut out = head.to_string();
    if head == "Up" {
        if let Some(i) = rest.rfind('(') {
            out.push(' ');
            out.push_str(&rest[i..]);
        }
    } else if let Some(r) = rest.strip_prefix('(') {
        out.push_str(&format!(" ({})", r.split(')').next().unwrap_or_default()));
    }
    out
}

#[test]
fn create_start_wait_and_start_attached() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    let id = ok(
        &store,
        &[
            "create",
            "--name",
            "c1",
            &lower,
            "sh",
            "-c",
            "echo hi >>/tmp/runs; cat /tmp/runs; exit 3",
        ],
    );
    assert_eq!(id.trim().len(), 64);
    assert_eq!(status(&store, "c1"), "Created");
    assert!(
        lamina(&store, &["logs", "c1"]).stdout.is_empty(),
        "created container ran"
    );

    assert_eq!(ok(&store, &["start", "c1"]).trim(), "c1");
    assert_eq!(ok(&store, &["wait", "c1"]).trim(), "3");
    assert_eq!(ok(&store, &["logs", "c1"]), "hi\n");
    assert_eq!(status(&store, "c1"), "Exited (3)");
    let ps = ok(&store, &["ps", "-a", "--filter", "name=c1"]);
    assert!(ps.contains("Exited (3) ") && ps.contains(" ago"), "{ps}");

    // Attached: our stdout, the container's status; the upper dir kept the first run's file.
    let o = lamina(&store, &["start", "-a", "c1"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\nhi\n");

    // restart: a running one is stopped first, then runs again detached.
    ok(
        &store,
        &[
            "create",
            "--name",
            "svc",
            &lower,
            "sh",
            "-c",
            "echo up; trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    ok(&store, &["start", "svc"]);
    ok(&store, &["restart", "-t", "5", "svc"]);
    assert_eq!(status(&store, "svc"), "Up");
    wait_for(
        || ok(&store, &["logs", "svc"]) == "up\nup\n",
        "two runs of svc in its log",
    );
    ok(&store, &["stop", "svc"]);
    assert_eq!(ok(&store, &["wait", "svc"]).trim(), "0");
}

#[test]
fn restart_on_failure_stops_at_its_count() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            &lower,
            "sh",
            "-c",
            "echo run; exit 4",
        ],
    );
    assert_eq!(ok(&store, &["wait", "flaky"]).trim(), "4");
    // The first run and two restarts, all in one log.
    assert_eq!(ok(&store, &["logs", "flaky"]), "run\nrun\nrun\n");
    assert_eq!(status(&store, "flaky"), "Exited (4)");

    // A zero exit is not a failure: no restart.
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "fine",
            "--restart",
            "on-failure",
            &lower,
            "sh",
            "-c",
            "echo once",
        ],
    );
    assert_eq!(ok(&store, &["wait", "fine"]).trim(), "0");
    assert_eq!(ok(&store, &["logs", "fine"]), "once\n");

    let o = lamina(&store, &["run", "--rm", "--restart", "always", &lower, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--restart and --rm"));
}

#[test]
fn restart_always_until_stopped() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "loop",
            "--restart",
            "always",
            &lower,
            "sh",
            "-c",
            "echo x; sleep 0.2; exit 1",
        ],
    );
    wait_for(
        || ok(&store, &["logs", "loop"]).lines().count() >= 3,
        "three runs of an always-restarted container",
    );
    ok(&store, &["stop", "-t", "2", "loop"]);
    assert!(
        status(&store, "loop").starts_with("Exited"),
        "{}",
        status(&store, "loop")
    );
    let runs = ok(&store, &["logs", "loop"]).lines().count();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        ok(&store, &["logs", "loop"]).lines().count(),
        runs,
        "a stopped container was restarted"
    );
    // start clears the stop: the policy holds again.
    ok(&store, &["start", "loop"]);
    wait_for(
        || ok(&store, &["logs", "loop"]).lines().count() >= runs + 2,
        "restarts after start",
    );
    ok(&store, &["rm", "-f", "loop"]);
}

#[test]
fn logs_stream_a_long_log_and_follow_restarts() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "chatty",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done; sleep 0.3; echo err >&2",
        ],
    );
    assert_eq!(ok(&store, &["wait", "chatty"]).trim(), "0");
    let all = ok(&store, &["logs", "chatty"]);
    assert_eq!(all.lines().count(), 20000);
    assert_eq!(all.lines().last(), Some("line19999"));
    let o = lamina(&store, &["logs", "--tail", "2", "chatty"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "line19999\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");

    // -f keeps following while the monitor restarts the container, and ends with it.
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "again",
            "--restart",
            "on-failure:2",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "echo run; sleep 0.3; exit 1",
        ],
    );
    let o = lamina(&store, &["logs", "-f", "again"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "run\nrun\nrun\n");
}

#[test]
fn rename_and_container_prune() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    ok(
        &store,
        &[
            "run",
            "--name",
            "old",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "echo x >/tmp/f",
        ],
    );
    ok(
        &store,
        &["create", "--name", "made", "--network", "none", &lower, "true"],
    );
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "up",
            "--network",
            "none",
            &lower,
            "sleep",
            "100",
        ],
    );
    ok(&store, &["rename", "old", "new"]);
    // ps filters and -n.
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "--format", "json"];
        a.extend_from_slice(args);
        let v = json_lines(&ok(&store, &a));
        // Sorted: containers created in the same second have no order between them.
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Names"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&[]), vec!["up"]);
    assert_eq!(
        ok(&store, &["container", "ls", "-a", "-q"]).lines().count(),
        3,
        "docker's spelling of ps"
    );
    assert_eq!(names(&["--filter", "status=created"]), vec!["made"]);
    assert_eq!(
        names(&["--filter", "status=exited", "--filter", "status=created"]),
        vec!["made", "new"]
    );
    assert_eq!(names(&["-a", "--filter", "name=ne"]), vec!["new"]);
    assert_eq!(names(&["--filter", "exited=0"]), vec!["new"]);
    assert_eq!(names(&["-n", "3"]), vec!["made", "new", "up"]);
    assert_eq!(names(&["-n", "1"]).len(), 1);
    assert_eq!(
        names(&["-a", "--filter", "status=running", "--filter", "name=ma"]),
        Vec::<String>::new()
    );
    assert!(lamina(&store, &["ps", "--filter", "colour=red"]).status.code() != Some(0));
    let q = ok(&store, &["ps", "-q", "--no-trunc"]);
    assert_eq!(q.trim().len(), 64, "{q}");
    assert_eq!(status(&store, "new"), "Exited (0)");
    assert!(
        lamina(&store, &["rename", "new", "up"]).status.code() != Some(0),
        "duplicate name taken"
    );
    assert!(lamina(&store, &["rename", "new", "bad/name"]).status.code() != Some(0));

    let out = ok(&store, &["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:"), "{out}");
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let ps: serde_json::Value = json_lines(&ok(&store, &["ps", "-a", "--format", "json"]));
    let names: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["up"],
        "prune removed a running container or kept a stopped one"
    );
    ok(&store, &["rm", "-f", "up"]);
}

#[test]
fn stop_signal_and_stop_timeout() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "usr",
            "--stop-signal",
            "USR1",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "trap 'echo usr1; exit 4' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    );
    wait_for(|| ok(&store, &["logs", "usr"]).contains("ready"), "ready");
    ok(&store, &["stop", "usr"]);
    assert_eq!(ok(&store, &["wait", "usr"]).trim(), "4");
    assert!(ok(&store, &["logs", "usr"]).contains("usr1"));
    assert_eq!(
        ok(&store, &["inspect", "-f", "{{.Config.StopSignal}}", "usr"]).trim(),
        "USR1"
    );
    assert!(
        lamina(&store, &["create", "--stop-signal", "NOPE", &lower, "true"])
            .status
            .code()
            != Some(0)
    );

    // pid 1 without handlers ignores TERM: the timeout ends it with SIGKILL.
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "deaf",
            "--stop-timeout",
            "1",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "while :; do sleep 0.1; done",
        ],
    );
    let t = Instant::now();
    ok(&store, &["stop", "deaf"]);
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(ok(&store, &["wait", "deaf"]).trim(), "137");
}

#[test]
fn detached_rm_is_removed_by_its_monitor() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    let id = ok(
        &store,
        &[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "sleep 0.3",
        ],
    );
    let dir = store.join("containers").join(id.trim());
    assert!(dir.exists());
    // No `ps` or other command runs meanwhile: the monitor itself removes it.
    wait_for(|| !dir.exists(), "the --rm container's record to go");
}
