//! `--init` (lamina's own pid 1: zombies reaped, signals passed on, the command's status) and
//! health checks run by the detached monitor (flags, the image's HEALTHCHECK, `--no-healthcheck`).

mod run_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use run_common::{Fixture, json_lines, lamina, ok, require_root, wait_for};

/// States of every process in the container, from inside it.
fn states(store: &Path, name: &str) -> String {
    ok(
        store,
        &["exec", name, "sh", "-c", "grep -h '^State' /proc/[0-9]*/status"],
    )
}

#[test]
fn init_reaps_zombies_and_passes_signals() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    // A grandchild orphaned to pid 1, which then exits: `sleep` as pid 1 never reaps it.
    let orphan = "(sleep 0.2 &); exec sleep 30";
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "plain",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            orphan,
        ],
    );
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "inited",
            "--init",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            orphan,
        ],
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        states(&store, "plain").contains("zombie"),
        "the control has no zombie: {}",
        states(&store, "plain")
    );
    let s = states(&store, "inited");
    assert!(!s.contains("zombie"), "--init left a zombie: {s}");
    assert_eq!(
        ok(&store, &["exec", "inited", "cat", "/proc/1/comm"]).trim(),
        ".lamina-init"
    );
    ok(&store, &["rm", "-f", "plain", "inited"]);

    // Signals sent to the container reach the command under init; its status is init's.
    let script =
        "trap 'echo usr1' USR1; trap 'echo term; exit 3' TERM; echo ready; while :; do sleep 0.1; done";
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "sig",
            "--init",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            script,
        ],
    );
    wait_for(|| ok(&store, &["logs", "sig"]).contains("ready"), "ready");
    ok(&store, &["kill", "-s", "USR1", "sig"]);
    wait_for(
        || ok(&store, &["logs", "sig"]).contains("usr1"),
        "USR1 through init",
    );
    ok(&store, &["stop", "sig"]);
    assert_eq!(ok(&store, &["wait", "sig"]).trim(), "3");
    assert!(ok(&store, &["logs", "sig"]).contains("term"));
    assert_eq!(
        ok(&store, &["inspect", "-f", "{{.HostConfig.Init}}", "sig"]).trim(),
        "true"
    );

    // Foreground: exit codes pass through, a missing command is 127.
    let o = lamina(
        &store,
        &[
            "run",
            "--rm",
            "--init",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "exit 5",
        ],
    );
    assert_eq!(o.status.code(), Some(5));
    let o = lamina(
        &store,
        &["run", "--rm", "--init", "--network", "none", &lower, "nosuchcmd"],
    );
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The init is not part of the container's changes.
    ok(
        &store,
        &[
            "run",
            "--name",
            "diff",
            "--init",
            "--network",
            "none",
            &lower,
            "true",
        ],
    );
    let id = ok(&store, &["inspect", "-f", "{{.Id}}", "diff"]);
    assert!(
        !store
            .join("containers")
            .join(id.trim())
            .join("upper/.lamina-init")
            .exists()
    );
}

fn health(store: &Path, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(store, &["container", "inspect", name])).unwrap();
    v[0]["State"]["Health"].clone()
}

fn ps_status(store: &Path, name: &str) -> String {
    let ps: serde_json::Value = json_lines(&ok(store, &["ps", "--format", "json"]));
    ps.as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"] == name)
        .map(|c| short(c["Status"].as_str().unwrap()))
        .unwrap_or_default()
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
fn health_checks_from_flags_and_image() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    // Healthy once /tmp/ok exists, unhealthy after it goes.
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "hc",
            "--network",
            "none",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            &lower,
            "sh",
            "-c",
            "while [ ! -f /tmp/go ]; do sleep 0.05; done; touch /tmp/ok; while [ -f /tmp/ok ]; do sleep 0.05; done; sleep 100",
        ],
    );
    assert_eq!(ps_status(&store, "hc"), "Up (health: starting)");
    wait_for(
        || health(&store, "hc")["Status"] == "unhealthy",
        "unhealthy before /tmp/ok",
    );
    assert!(health(&store, "hc")["FailingStreak"].as_u64().unwrap() >= 2);
    ok(&store, &["exec", "hc", "touch", "/tmp/go"]);
    wait_for(|| health(&store, "hc")["Status"] == "healthy", "healthy");
    assert_eq!(ps_status(&store, "hc"), "Up (healthy)");
    let h = health(&store, "hc");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 0, "{h}");
    ok(&store, &["exec", "hc", "rm", "/tmp/ok"]);
    wait_for(
        || health(&store, "hc")["Status"] == "unhealthy",
        "unhealthy again",
    );
    assert_eq!(ps_status(&store, "hc"), "Up (unhealthy)");
    ok(&store, &["rm", "-f", "hc"]);

    // The image's HEALTHCHECK, and --no-healthcheck turning it off.
    let tarball = fx.path().join("bb.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&fx.lower)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    ok(&store, &["import", &tarball.display().to_string(), "bb:1"]);
    let ctx = fx.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"sh\", \"-c\", \"exit 1\"]\n",
    )
    .unwrap();
    ok(
        &store,
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "-t",
            "bb:hc",
            &ctx.display().to_string(),
        ],
    );
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "img",
            "--network",
            "none",
            "bb:hc",
            "sleep",
            "100",
        ],
    );
    wait_for(
        || health(&store, "img")["Status"] == "unhealthy",
        "the image's check failing",
    );
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "off",
            "--no-healthcheck",
            "--network",
            "none",
            "bb:hc",
            "sleep",
            "100",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(health(&store, "off").is_null(), "{}", health(&store, "off"));
    assert_eq!(ps_status(&store, "off"), "Up");
    ok(&store, &["rm", "-f", "img", "off"]);
}
