//! Looking at containers: `inspect` (docker's shape), `top`, `stats --no-stream`, `pause`/`unpause`.

mod run_common;

use std::path::Path;
use std::time::Duration;

use run_common::{Fixture, json_lines, lamina, ok, require_root};

fn inspect(store: &Path, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(store, &["container", "inspect", name])).unwrap();
    v[0].clone()
}

#[test]
fn inspect_shows_state_config_and_host_config() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    ok(
        &store,
        &[
            "create",
            "--name",
            "ins",
            "--network",
            "none",
            "-e",
            "A=1",
            "-l",
            "k=v",
            "--memory",
            "64m",
            "--restart",
            "on-failure:5",
            "-w",
            "/tmp",
            &lower,
            "sh",
            "-c",
            "exit 7",
        ],
    );
    let c = inspect(&store, "ins");
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(c["Path"], "sh");
    assert_eq!(c["Args"], serde_json::json!(["-c", "exit 7"]));
    assert_eq!(c["Name"], "/ins");
    assert_eq!(c["Config"]["WorkingDir"], "/tmp");
    assert!(
        c["Config"]["Env"].as_array().unwrap().contains(&"A=1".into()),
        "{c}"
    );
    assert_eq!(c["Config"]["Labels"]["k"], "v");
    assert_eq!(c["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(c["HostConfig"]["NetworkMode"], "none");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 5);

    ok(&store, &["start", "ins"]);
    assert_eq!(ok(&store, &["wait", "ins"]).trim(), "7");
    let c = inspect(&store, "ins");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 7);
    assert_eq!(c["RestartCount"], 5);
    let (started, finished) = (
        c["State"]["StartedAt"].as_str().unwrap(),
        c["State"]["FinishedAt"].as_str().unwrap(),
    );
    assert!(started.ends_with('Z') && started.len() == 30, "{started}");
    assert!(finished >= started, "{started} {finished}");
    // `lamina inspect` takes containers too, and --format uses the template engine.
    assert_eq!(
        ok(
            &store,
            &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ins"]
        )
        .trim(),
        "exited 7"
    );
}

#[test]
fn top_stats_pause_unpause() {
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
            "cnt",
            "--network",
            "none",
            "--memory",
            "32m",
            &lower,
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i >/tmp/n; sleep 0.05; done",
        ],
    );
    let pid = inspect(&store, "cnt")["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);

    let top = ok(&store, &["top", "cnt"]);
    let mut rows = top.lines();
    assert!(rows.next().unwrap().contains("PID"), "{top}");
    let rows: Vec<&str> = rows.collect();
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().nth(1) == Some(&pid.to_string())),
        "init {pid} not in top:\n{top}"
    );
    assert!(
        rows.iter().all(|r| !r.contains("cargo")),
        "host processes in top:\n{top}"
    );
    let top_pid = ok(&store, &["top", "cnt", "-o", "pid,comm"]);
    assert!(
        top_pid
            .lines()
            .any(|l| l.trim_start().starts_with(&pid.to_string())),
        "{top_pid}"
    );

    let stats: serde_json::Value =
        serde_json::from_str(&ok(&store, &["stats", "--no-stream", "--format", "json", "cnt"])).unwrap();
    let s = &stats[0];
    assert_eq!(s["Name"], "cnt");
    assert_eq!(s["MemLimit"], 32 << 20);
    assert!(s["MemUsage"].as_u64().unwrap() > 0, "{s}");
    assert!(s["PIDs"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["CPUNanos"].as_u64().unwrap() > 0, "{s}");
    let table = ok(&store, &["stats", "--no-stream"]);
    assert!(
        table.starts_with("CONTAINER ID") && table.contains("cnt"),
        "{table}"
    );

    // The loop truncates the file before each write: retry a read that caught it empty.
    let counter = |store: &Path| -> u64 {
        (0..20)
            .find_map(|_| ok(store, &["exec", "cnt", "cat", "/tmp/n"]).trim().parse().ok())
            .expect("a number in /tmp/n")
    };
    ok(&store, &["pause", "cnt"]);
    let c = inspect(&store, "cnt");
    assert_eq!(
        (c["State"]["Status"].as_str(), c["State"]["Paused"].as_bool()),
        (Some("paused"), Some(true))
    );
    assert!(
        lamina(&store, &["pause", "cnt"]).status.code() != Some(0),
        "paused twice"
    );
    let o = lamina(&store, &["exec", "cnt", "true"]);
    assert!(
        o.status.code() != Some(0) && String::from_utf8_lossy(&o.stderr).contains("paused"),
        "exec into a paused container"
    );
    let ps: serde_json::Value = json_lines(&ok(&store, &["ps", "--format", "json"]));
    assert_eq!(ps[0]["State"], "paused");
    let status = ps[0]["Status"].as_str().unwrap();
    assert!(
        status.starts_with("Up ") && status.ends_with(" (Paused)"),
        "{status}"
    );
    // Frozen: the counter file doesn't move. Read from the upper dir (an exec would freeze too).
    let upper = store
        .join("containers")
        .join(c["Id"].as_str().unwrap())
        .join("upper/tmp/n");
    let frozen = std::fs::read_to_string(&upper).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        std::fs::read_to_string(&upper).unwrap(),
        frozen,
        "counter moved while paused"
    );
    ok(&store, &["unpause", "cnt"]);
    assert_eq!(inspect(&store, "cnt")["State"]["Status"], "running");
    let before = counter(&store);
    std::thread::sleep(Duration::from_millis(400));
    assert!(counter(&store) > before, "counter stuck after unpause");
    // A paused container still stops.
    ok(&store, &["pause", "cnt"]);
    ok(&store, &["rm", "-f", "cnt"]);
}
