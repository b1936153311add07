//! `lamina run` and friends end to end: -d, -p, ps, logs, stop, rm, exit codes, --rm.

mod run_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use run_common::{Fixture, require_root};

fn lamina(store: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lamina"));
    c.arg("--root").arg(store);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn publish_port_from_detached_httpd() {
    require_root!();
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.lower.join("www")).unwrap();
    std::fs::write(fx.lower.join("www/index.html"), "hello from lamina\n").unwrap();
    let store = fx.path().join("store");
    let port = free_port();
    let out = lamina(&store)
        .args(["run", "-d", "--name", "web", "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg(&fx.lower)
        .args(["sh", "-c", "echo starting; exec httpd -f -p 8080 -h /www"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id.len(), 64);

    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let attempt = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut b = String::new();
            s.read_to_string(&mut b)?;
            Ok(b)
        });
        match attempt {
            Ok(b) if b.contains("hello from lamina") => break b,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("no answer on port {port}: {other:?}"),
        }
    };
    assert!(body.starts_with("HTTP/1."), "{body}");

    let ps = lamina(&store)
        .args(["ps", "--filter", "name=web", "--format", "json"])
        .output()
        .unwrap();
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(ps["Names"], "web");
    assert_eq!(ps["State"], "running");
    assert!(ps["Status"].as_str().unwrap().starts_with("Up "), "{ps}");
    let logs = lamina(&store).args(["logs", "web"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "starting\n");

    let rm = lamina(&store).args(["rm", "-f", "web"]).output().unwrap();
    assert!(rm.status.success(), "{}", String::from_utf8_lossy(&rm.stderr));
    assert!(!store.join("containers").join(&id).exists());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still published"
    );
}

#[test]
fn foreground_exit_codes_and_rm() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let st = lamina(&store)
        .args(["run", "--rm"])
        .arg(&fx.lower)
        .args(["sh", "-c", "exit 42"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(42));
    let st = lamina(&store)
        .args(["run", "--rm"])
        .arg(&fx.lower)
        .arg("/no/such/binary")
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = lamina(&store)
        .args(["run", "--rm", "-e", "A=1", "-w", "/made/here", "-u", "bob"])
        .arg(&fx.lower)
        .args(["sh", "-c", "echo $A $(pwd) $(id -u):$(id -g) $(id -G) $HOME"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 /made/here 1000:1000 1000 10 /home/bob"
    );
    let left: Vec<_> = std::fs::read_dir(store.join("containers")).unwrap().collect();
    assert!(left.is_empty(), "--rm left {left:?}");
}

#[test]
fn memory_oom_message_and_137() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let out = lamina(&store)
        .args(["run", "--rm", "--memory", "24m"])
        .arg(&fx.lower)
        .args(["sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' x)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("out of memory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exec_into_detached_container() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let out = lamina(&store)
        .args(["run", "-d", "--name", "box"])
        .arg(&fx.lower)
        .args(["sleep", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ex = lamina(&store)
        .args([
            "exec",
            "-e",
            "X=7",
            "box",
            "sh",
            "-c",
            "echo $X $$ $(hostname | wc -c); exit 5",
        ])
        .output()
        .unwrap();
    assert_eq!(
        ex.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    // Joined the container's pid namespace (not PID 1, but a small pid) and its UTS namespace.
    let s = String::from_utf8_lossy(&ex.stdout);
    let f: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(f[0], "7");
    assert!(f[1].parse::<u32>().unwrap() < 10, "{s}");
    assert_eq!(f[2], "13", "hostname should be the 12-char id: {s}");
    let st = lamina(&store).args(["stop", "-t", "1", "box"]).status().unwrap();
    assert!(st.success());
    let ps = lamina(&store)
        .args(["ps", "-a", "--filter", "name=box", "--format", "json"])
        .output()
        .unwrap();
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert!(
        ps["Status"].as_str().unwrap().starts_with("Exited (137) "),
        "{ps}"
    );
    assert!(lamina(&store).args(["rm", "box"]).status().unwrap().success());
}

#[test]
fn logs_keep_stdout_and_stderr_apart_with_tail_since_and_timestamps() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let o = lamina(&store)
        .args(["run", "-d", "--network", "none"])
        .arg(&fx.lower)
        .args([
            "sh",
            "-c",
            "echo out1; echo err1 >&2; sleep 1.2; echo out2; echo err2 >&2; printf tail",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    // -f returns once the container has stopped, with everything it wrote.
    let logs = |args: &[&str]| {
        let o = lamina(&store).arg("logs").args(args).arg(&id).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(logs(&["-f"]), ("out1\nout2\ntail".into(), "err1\nerr2\n".into()));
    // The last three lines of both streams together, as docker counts them.
    assert_eq!(logs(&["--tail", "3"]), ("out2\ntail".into(), "err2\n".into()));
    // Written in the last second: only what came after the sleep.
    let recent = logs(&["--since", "1s"]);
    assert!(
        !recent.0.contains("out1") && recent.0.contains("out2"),
        "{recent:?}"
    );
    let (out, _) = logs(&["-t"]);
    let stamped: Vec<(&str, &str)> = out.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(
        stamped.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
        ["out1", "out2", "tail"]
    );
    let stamp = stamped[1].0;
    assert!(
        stamp.ends_with('Z') && stamp.len() == "2026-12-07T19:19:45.407816535Z".len(),
        "{stamp}"
    );
    // Strictly before out2 (written after the sleep): only out1.
    let (before, _) = logs(&["--until", stamp]);
    assert_eq!(before, "out1\n");
}
