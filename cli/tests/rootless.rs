//! Rootless lamina (issue 13): the same builds run as root and as unprivileged users, compared.
//!
//! The test creates two users itself (it must run as root to do so): `lamina-rl-range` with a
//! subordinate range in /etc/subuid and /etc/subgid (newuidmap/newgidmap map 0 → the user and
//! 1..=65536 → the range), and `lamina-rl-single` with none (only 0 → the user). Commands run as them
//! through `runuser`. Skips without root, runuser, newuidmap (package uidmap) or busybox.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
#[path = "conformance/dump.rs"]
#[allow(dead_code)] // the conformance suite uses the rest
mod dump;

const RANGE_USER: &str = "lamina-rl-range";
const SINGLE_USER: &str = "lamina-rl-single";
/// Away from useradd's automatic ranges (100000 + 65536·n) so ours is unmistakable in uid maps.
const RANGE_START: u32 = 3_000_000;

fn sh(cmd: &str) -> Result<(), String> {
    let o = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("`{cmd}`: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// Create the two users once per test binary; `Err` = why the tests skip.
fn users() -> &'static Result<(), String> {
    static USERS: OnceLock<Result<(), String>> = OnceLock::new();
    USERS.get_or_init(|| {
        if !common::is_root() {
            return Err("not root: cannot create the test users".into());
        }
        for tool in ["runuser", "useradd", "newuidmap", "newgidmap"] {
            if !common::have(tool) {
                return Err(format!("{tool} missing (apt-get install uidmap util-linux passwd)"));
            }
        }
        if !Path::new("/usr/bin/busybox").exists() {
            return Err("/usr/bin/busybox missing (install busybox-static)".into());
        }
        for u in [RANGE_USER, SINGLE_USER] {
            sh(&format!("id -u {u} >/dev/null 2>&1 || useradd -m -s /bin/sh {u}"))?;
        }
        // Only our lines for these users: useradd may have added automatic ranges.
        for f in ["/etc/subuid", "/etc/subgid"] {
            sh(&format!(
                "touch {f} && sed -i '/^{RANGE_USER}:/d;/^{SINGLE_USER}:/d' {f} && echo '{RANGE_USER}:{RANGE_START}:65536' >> {f}"
            ))?;
        }
        let probe = as_user(RANGE_USER, None, &["info", "--format", "json"], None);
        let info: serde_json::Value = serde_json::from_slice(&probe.stdout).map_err(|e| {
            format!("lamina info as {RANGE_USER}: {e}: {}", String::from_utf8_lossy(&probe.stderr))
        })?;
        if info["isolation"]["mode"] != "rootless" {
            return Err(format!("no user namespace with a range here: {info}"));
        }
        Ok(())
    })
}

fn ready() -> bool {
    match users() {
        Ok(()) => true,
        Err(why) => {
            lamina_testkit::skip(why);
            false
        }
    }
}

/// `lamina [--root ROOT] args…` as `user`, with a clean environment apart from PATH and HOME.
fn as_user(user: &str, root: Option<&Path>, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = Command::new("runuser");
    c.args(["-u", user, "--", "env", "-i"])
        .arg(format!("PATH={}", std::env::var("PATH").unwrap_or_default()))
        .arg(format!("HOME=/home/{user}"))
        .arg(common::lamina_bin());
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    c.args(args).current_dir(cwd.unwrap_or(Path::new("/")));
    c.output().expect("runuser")
}

fn must(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// A directory the user owns (and root can read), removed at the end.
fn user_dir(user: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    sh(&format!(
        "chmod 0755 {0} && chown {user}: {0}",
        d.path().display()
    ))
    .unwrap();
    d
}

/// Who builds: root with its own store, or a user.
#[derive(Clone, Copy)]
enum Who {
    Root,
    User(&'static str),
}

fn lamina_as(who: Who, root: &Path, args: &[&str], cwd: &Path) -> Output {
    match who {
        Who::Root => Command::new(common::lamina_bin())
            .arg("--root")
            .arg(root)
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap(),
        Who::User(u) => as_user(u, Some(root), args, Some(cwd)),
    }
}

/// The conformance base image rootfs (busybox with every applet, a few users), made once.
fn base_tar() -> &'static Path {
    static BASE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let d = tempfile::tempdir().unwrap();
            let tar = d.path().join("base.tar");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/make-base.sh");
            sh(&format!("bash {} {}", script.display(), tar.display())).unwrap();
            sh(&format!(
                "chmod 0755 {} && chmod a+r {}",
                d.path().display(),
                tar.display()
            ))
            .unwrap();
            (d, tar)
        })
        .1
}

/// A build context readable by everyone, and the base tar.
fn context(dockerfile: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    sh(&format!("chmod -R a+rX {}", d.path().display())).unwrap();
    (d, base_tar().to_path_buf())
}

/// Import the base and build `tag` from `ctx`; returns the diff_ids.
fn build(who: Who, store: &Path, ctx: &Path, base: &Path, extra: &[&str]) -> Output {
    let b = base.to_str().unwrap();
    for name in ["base", "lamina-test-base"] {
        must(lamina_as(who, store, &["import", b, name], ctx), "import");
    }
    let mut args = vec!["build", "--progress", "plain", "--network", "none"];
    args.extend_from_slice(extra);
    args.extend(["-t", "out", "."]);
    lamina_as(who, store, &args, ctx)
}

fn field(who: Who, store: &Path, image: &str, path: &str) -> String {
    must(
        lamina_as(who, store, &["inspect", "-f", path, image], Path::new("/")),
        "inspect",
    )
}

const OWNERSHIP: &str = "FROM base
RUN mkdir -p /data/sub && echo a > /data/sub/a && echo keep > /data/keep && touch /usr/doomed
RUN chown -R 1000:1000 /data && chown 65534:65534 /data/keep && chmod 4755 /data/sub/a \\
 && chmod 2775 /data/sub && ln /data/sub/a /data/hard && ln -s sub/a /data/soft
RUN rm /usr/doomed && rm -rf /data/sub && mkdir /data/sub && echo b > /data/sub/b && mkfifo /data/fifo
";

#[test]
fn rootless_build_equals_root_build() {
    if !ready() {
        return;
    }
    let (ctx, base) = context(OWNERSHIP);
    let root_store = tempfile::tempdir().unwrap();
    let user_store = user_dir(RANGE_USER);
    let sde = ["--source-date-epoch", "1700000000"];
    let r = build(Who::Root, root_store.path(), ctx.path(), &base, &sde);
    must(r, "root build");
    let u = build(Who::User(RANGE_USER), user_store.path(), ctx.path(), &base, &sde);
    must(u, "rootless build");
    let listing = |who, store: &Path| {
        let layers: Vec<String> = (1..=3)
            .map(|n| {
                let out = must(
                    lamina_as(
                        who,
                        store,
                        &["ls-layer", "--entries", &format!("out@{n}")],
                        Path::new("/"),
                    ),
                    "ls-layer",
                );
                // The header line names the layer digest, compared separately below.
                out.lines().skip(1).collect::<Vec<_>>().join("\n")
            })
            .collect();
        layers.join("\n---\n")
    };
    let (lr, lu) = (
        listing(Who::Root, root_store.path()),
        listing(Who::User(RANGE_USER), user_store.path()),
    );
    assert_eq!(lr, lu, "layer tar listings differ (root left, rootless right)");
    for want in [
        "1000:1000",
        "65534:65534",
        "-rwsr-xr-x",
        ".wh.doomed",
        ".wh..wh..opq",
        "data/hard",
    ] {
        assert!(lu.contains(want), "rootless layers lack {want}:\n{lu}");
    }
    let (dr, du) = (
        field(Who::Root, root_store.path(), "out", ".RootFS.diff_ids"),
        field(
            Who::User(RANGE_USER),
            user_store.path(),
            "out",
            ".RootFS.diff_ids",
        ),
    );
    assert_eq!(dr, du, "diff_ids differ with SOURCE_DATE_EPOCH set");
}

/// Conformance cases with RUN steps, ownership, whiteouts and hardlinks: the flattened rootfs of each
/// built rootless equals the one built as root (owners and modes included).
#[test]
fn rootless_conformance_subset_matches_root() {
    if !ready() {
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance");
    let tmp = tempfile::tempdir().unwrap();
    sh(&format!("chmod 0755 {}", tmp.path().display())).unwrap();
    let base = base_tar();
    let mut failures = Vec::new();
    let cases = [
        "run-ownership",
        "setuid-bits",
        "hardlinks-run",
        "whiteout-dir",
        "whiteout-file",
        "whiteout-links",
        "whiteout-recreate",
        "run-modify-base",
        "user-from-passwd-run",
        "copy-chown-existing",
    ];
    for case in cases {
        let dir = corpus.join(case);
        if !dir.join("Dockerfile").is_file() || dir.join("args").is_file() || dir.join("setup.sh").is_file() {
            continue;
        }
        let ctx = tmp.path().join(format!("{case}-ctx"));
        std::fs::create_dir(&ctx).unwrap();
        if dir.join("context").is_dir() {
            sh(&format!(
                "cp -a {}/. {}",
                dir.join("context").display(),
                ctx.display()
            ))
            .unwrap();
        }
        std::fs::copy(dir.join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
        sh(&format!("chmod -R a+rX {}", ctx.display())).unwrap();
        let mut trees = Vec::new();
        for who in [Who::Root, Who::User(RANGE_USER)] {
            let store = user_dir(RANGE_USER);
            let store_path = store.path().join("s");
            let o = build(who, &store_path, &ctx, base, &[]);
            if !o.status.success() {
                failures.push(format!(
                    "{case}: build failed:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                ));
                break;
            }
            let out = store.path().join("rootfs.tar");
            let o = lamina_as(
                who,
                &store_path,
                &["unpack", "out", "-o", out.to_str().unwrap()],
                &ctx,
            );
            must(o, "unpack");
            let (tree, _) = dump::dump_tar_with_texts(std::fs::File::open(&out).unwrap()).unwrap();
            trees.push(tree);
        }
        if trees.len() == 2 && trees[0] != trees[1] {
            failures.push(format!("{case}: {:?}", dump::diff_trees(&trees[0], &trees[1])));
        }
    }
    assert!(
        failures.is_empty(),
        "rootless differs from root:\n{}",
        failures.join("\n")
    );
}

#[test]
fn single_id_runs_root_steps_and_names_subuid_for_others() {
    if !ready() {
        return;
    }
    let user = Who::User(SINGLE_USER);
    // A base owned entirely by root works with one id.
    let ctx = tempfile::tempdir().unwrap();
    let base = common::busybox_rootfs_tar(ctx.path()).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM base\nRUN echo hi > /hello && cat /hello\n",
    )
    .unwrap();
    sh(&format!("chmod -R a+rX {}", ctx.path().display())).unwrap();
    let store = user_dir(SINGLE_USER);
    let b = base.to_str().unwrap();
    must(
        lamina_as(user, store.path(), &["import", b, "base"], ctx.path()),
        "import",
    );
    let args = [
        "build",
        "--progress",
        "plain",
        "--network",
        "none",
        "-t",
        "good",
        ".",
    ];
    let o = lamina_as(user, store.path(), &args, ctx.path());
    let out = String::from_utf8_lossy(&o.stderr).into_owned();
    must(o, "single-id build of a root-only step");
    assert!(out.contains("hi"), "{out}");
    // A step that chowns to another id fails, and says where ids come from.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM base\nRUN echo > /x && busybox chown 1000:1000 /x\n",
    )
    .unwrap();
    let args = [
        "build",
        "--progress",
        "plain",
        "--network",
        "none",
        "-t",
        "bad",
        ".",
    ];
    let o = lamina_as(user, store.path(), &args, ctx.path());
    assert!(!o.status.success(), "chown to 1000 with one id mapped must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/etc/subuid"),
        "error does not name /etc/subuid:\n{err}"
    );
    // So does a base image with files of other owners (the corpus base has uid 1000's home).
    let o = build(user, &store.path().join("other"), ctx.path(), base_tar(), &[]);
    assert!(
        !o.status.success(),
        "a base owned by 1000 cannot be unpacked with one id"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not map") && err.contains("/etc/subuid"),
        "{err}"
    );
    let info = must(
        as_user(SINGLE_USER, None, &["info", "--format", "json"], None),
        "info",
    );
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["isolation"]["mode"], "single-id", "{v}");
    assert_eq!(v["limits_enforced"], false);
}

#[test]
fn rootless_default_store_run_images_and_limits_warning() {
    if !ready() {
        return;
    }
    let home_store = format!("/home/{RANGE_USER}/.local/share/lamina");
    let info = must(
        as_user(RANGE_USER, None, &["info", "--format", "json"], None),
        "info",
    );
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["store_root"], home_store.as_str(), "{v}");
    assert!(
        v["isolation"]["uid_map"]
            .as_str()
            .unwrap_or("")
            .contains(&RANGE_START.to_string()),
        "{v}"
    );
    let (ctx, base) = context("FROM base\n");
    let b = base.to_str().unwrap();
    must(
        as_user(RANGE_USER, None, &["import", b, "rl-default"], Some(ctx.path())),
        "import",
    );
    assert!(
        Path::new(&home_store).join("index.json").exists(),
        "store not at {home_store}"
    );
    let images = must(as_user(RANGE_USER, None, &["images"], None), "images");
    assert!(images.contains("rl-default"), "{images}");
    let o = as_user(
        RANGE_USER,
        None,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--memory",
            "64m",
            "rl-default",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let out = must(o, "run");
    assert!(out.starts_with("0\n"), "{out}");
    // The container's map is the user namespace lamina made: 0 → the user, 1.. → the range.
    assert!(out.contains(&RANGE_START.to_string()), "{out}");
    assert!(err.contains("not enforced"), "no limits warning: {err}");
    let _ = as_user(RANGE_USER, None, &["rmi", "rl-default"], None);
    sh(&format!("rm -rf {home_store}")).unwrap();
}

#[path = "registry_support/mod.rs"]
mod registry_support;

#[test]
fn rootless_pull_and_push() {
    if !ready() {
        return;
    }
    let Some(reg) = registry_support::Registry::start("") else {
        return;
    };
    let h = reg.host();
    let (ctx, base) = context("FROM base\nRUN echo built > /built\n");
    let store = user_dir(RANGE_USER);
    let o = build(Who::User(RANGE_USER), store.path(), ctx.path(), &base, &[]);
    must(o, "build");
    let user = Who::User(RANGE_USER);
    must(
        lamina_as(
            user,
            store.path(),
            &["push", "out", &format!("{h}/rl/out:1")],
            ctx.path(),
        ),
        "push",
    );
    let other = user_dir(RANGE_USER);
    must(
        lamina_as(
            user,
            other.path(),
            &["pull", &format!("{h}/rl/out:1")],
            ctx.path(),
        ),
        "pull",
    );
    let o = lamina_as(
        user,
        other.path(),
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &format!("{h}/rl/out:1"),
            "cat",
            "/built",
        ],
        ctx.path(),
    );
    assert_eq!(must(o, "run pulled"), "built\n");
}

#[allow(dead_code)] // run_network.rs uses the rest
mod remote;

/// Rootless on the default network (issue 15): slirp4netns gives the container its own namespace
/// with outbound access through the user's own sockets. The remote host (a namespace on 198.18.x.x)
/// answers `run` and a RUN step; a service on the host's loopback is out of reach by 10.0.2.2 and by
/// 127.0.0.1 (with the host network, the fallback, 127.0.0.1 would answer); `-p` publishes through
/// the userspace proxy.
#[test]
fn rootless_user_mode_network_reaches_out_not_in() {
    if !ready() || !lamina_testkit::need_tools(&["slirp4netns", "ip"]) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tun = std::fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o777);
    if tun.as_ref().map_or(true, |m| m & 0o006 != 0o006) {
        return lamina_testkit::skip(&format!(
            "/dev/net/tun is not usable by users ({tun:?}; scripts/test.sh makes it 0666, as udev does)"
        ));
    }
    let remote = remote::Remote::new();
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = local.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut c in local.incoming().flatten() {
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello-from-host-loopback");
        }
    });
    let fetch = |host: &str, port: u16| {
        format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} 2>&1 | tail -n 1")
    };
    let (ctx, base) = context(&format!(
        "FROM base\nRUN {} > /fetched && grep -q {} /fetched\n",
        fetch(&remote.addr.to_string(), 8000),
        remote::BODY
    ));
    let store = user_dir(RANGE_USER);
    let b = base.to_str().unwrap();
    must(
        lamina_as(
            Who::User(RANGE_USER),
            store.path(),
            &["import", b, "base"],
            ctx.path(),
        ),
        "import",
    );
    let script = format!(
        "ip -4 addr show tap0 | grep -o 'inet [0-9.]*'; {}; echo; {}; echo; {}; echo",
        fetch(&remote.addr.to_string(), 8000),
        fetch("10.0.2.2", local_port),
        fetch("127.0.0.1", local_port)
    );
    let out = must(
        lamina_as(
            Who::User(RANGE_USER),
            store.path(),
            &["run", "--rm", "base", "sh", "-c", &script],
            ctx.path(),
        ),
        "run on the default network",
    );
    assert!(out.contains("inet 10.0.2.100"), "no user-mode tap device: {out}");
    assert!(out.contains(remote::BODY), "remote host not reached: {out}");
    assert!(
        !out.contains("hello-from-host-loopback"),
        "the host's loopback was reached: {out}"
    );
    // A RUN step on the default network fetches from the remote too (the step fails otherwise).
    must(
        lamina_as(
            Who::User(RANGE_USER),
            store.path(),
            &["build", "--progress", "plain", "-t", "fetched", "."],
            ctx.path(),
        ),
        "build with a fetching RUN step",
    );
    // -p: the host's port reaches the container's server through the proxy.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let serve = "printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello-from-container' | nc -l -p 80 >/dev/null";
    let child = Command::new("runuser")
        .args(["-u", RANGE_USER, "--", "env", "-i"])
        .arg(format!("PATH={}", std::env::var("PATH").unwrap_or_default()))
        .arg(format!("HOME=/home/{RANGE_USER}"))
        .arg(common::lamina_bin())
        .arg("--root")
        .arg(store.path())
        .args([
            "run",
            "--rm",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "base",
            "sh",
            "-c",
            serve,
        ])
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = String::new();
    for _ in 0..100 {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let _ = c.read_to_string(&mut got);
            if got.contains("hello-from-container") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "published run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        got.contains("hello-from-container"),
        "-p did not reach the container: {got:?}"
    );
    let info = must(
        lamina_as(
            Who::User(RANGE_USER),
            store.path(),
            &["info", "--format", "json"],
            ctx.path(),
        ),
        "info",
    );
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["default_network"], "slirp4netns", "{v}");
}

/// `exec` into a rootless container: it lives in the user namespace its `run` made, which a later
/// lamina process must join rather than make its own (a fresh namespace can't reach the monitor).
#[test]
fn rootless_exec_joins_the_containers_user_namespace() {
    if !ready() {
        return;
    }
    let (ctx, base) = context("FROM base\n");
    let store = user_dir(RANGE_USER);
    let who = Who::User(RANGE_USER);
    let b = base.to_str().unwrap();
    must(
        lamina_as(who, store.path(), &["import", b, "base"], ctx.path()),
        "import",
    );
    must(
        lamina_as(
            who,
            store.path(),
            &[
                "run",
                "-d",
                "--name",
                "rl-exec",
                "--network",
                "none",
                "base",
                "sh",
                "-c",
                "echo up > /tmp/up; sleep 60",
            ],
            ctx.path(),
        ),
        "run -d",
    );
    let exec = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        lamina_as(who, store.path(), &a, ctx.path())
    };
    let mut out = String::new();
    for _ in 0..50 {
        out = must(
            exec(&[
                "rl-exec",
                "sh",
                "-c",
                "cat /tmp/up; id -u; cat /proc/self/uid_map",
            ]),
            "exec",
        );
        if out.starts_with("up") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        out.starts_with("up\n0\n"),
        "exec did not see the container as its root: {out}"
    );
    assert!(
        out.contains(&RANGE_START.to_string()),
        "not the container's uid map: {out}"
    );
    // Another user of the range, and the exit status carried back.
    let o = exec(&["--user", "1000", "rl-exec", "sh", "-c", "id -u; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1000\n");
    must(
        lamina_as(who, store.path(), &["rm", "-f", "rl-exec"], ctx.path()),
        "rm -f",
    );
}
