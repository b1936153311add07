//! Files in and out of containers: `cp` both ways (tar streams with `-`, docker's naming rules,
//! hostile symlinks in the image), `commit` of the changes as a layer, `export` of the flattened tree.

mod run_common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use run_common::{Fixture, lamina, ok, require_root};

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn cp_both_ways_and_through_hostile_links() {
    require_root!();
    let fx = Fixture::new();
    // The image's own links out: absolute to /, relative up past the root, and into /etc.
    std::os::unix::fs::symlink("/", fx.lower.join("hostile")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc", fx.lower.join("rel")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", fx.lower.join("pw")).unwrap();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let lower = fx.lower.display().to_string();
    let host = fx.path().join("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("dir/sub/f.txt"), "in a dir\n").unwrap();
    std::fs::write(host.join("a.txt"), "from the host\n").unwrap();
    ok(
        &store,
        &[
            "create",
            "--name",
            "c",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "cat /tmp/a.txt /tmp/dir/sub/f.txt",
        ],
    );

    // Into a stopped container: a file into a dir, a dir under its own name.
    ok(
        &store,
        &["cp", &host.join("a.txt").display().to_string(), "c:/tmp/"],
    );
    ok(&store, &["cp", &host.join("dir").display().to_string(), "c:/tmp"]);
    let o = lamina(&store, &["start", "-a", "c"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from the host\nin a dir\n");

    // Out: a file to a new name, a dir's contents with `/.`, a tar on stdout.
    let out = fx.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    ok(
        &store,
        &["cp", "c:/tmp/a.txt", &out.join("copy.txt").display().to_string()],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("copy.txt")).unwrap(),
        "from the host\n"
    );
    ok(
        &store,
        &["cp", "c:/tmp/dir/.", &out.join("contents").display().to_string()],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("contents/sub/f.txt")).unwrap(),
        "in a dir\n"
    );
    let o = lamina(&store, &["cp", "c:/tmp/dir", "-"]);
    assert!(o.status.success());
    let names = tar_names(&o.stdout);
    assert!(names.contains(&"dir/sub/f.txt".to_string()), "{names:?}");

    // A tar on stdin, into a directory.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    t.append_data(&mut h, "piped.txt", &b"piped\n"[..]).unwrap();
    let bytes = t.into_inner().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .arg("--root")
        .arg(&store)
        .args(["cp", "-", "c:/tmp"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(child.wait().unwrap().success());

    // Hostile links resolve inside the container, both ways.
    let upper = store
        .join("containers")
        .join(ok(&store, &["inspect", "-f", "{{.Id}}", "c"]).trim())
        .join("upper");
    ok(
        &store,
        &[
            "cp",
            &host.join("a.txt").display().to_string(),
            "c:/hostile/tmp/evil1.txt",
        ],
    );
    ok(
        &store,
        &[
            "cp",
            &host.join("a.txt").display().to_string(),
            "c:/rel/evil2.txt",
        ],
    );
    assert!(upper.join("tmp/evil1.txt").exists() && upper.join("etc/evil2.txt").exists());
    assert!(
        !Path::new("/tmp/evil1.txt").exists() && !Path::new("/etc/evil2.txt").exists(),
        "cp wrote to the host"
    );
    ok(
        &store,
        &[
            "cp",
            "c:/hostile/etc/passwd",
            &out.join("pw1").display().to_string(),
        ],
    );
    ok(
        &store,
        &["cp", "-L", "c:/pw", &out.join("pw2").display().to_string()],
    );
    let image_pw = std::fs::read_to_string(fx.lower.join("etc/passwd")).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("pw1")).unwrap(),
        image_pw,
        "read the host's passwd"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("pw2")).unwrap(),
        image_pw,
        "read the host's passwd"
    );
    // Without -L a link is copied as a link.
    ok(&store, &["cp", "c:/pw", &out.join("pw3").display().to_string()]);
    assert_eq!(
        std::fs::read_link(out.join("pw3")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(
        lamina(&store, &["cp", "c:/hostile/nonexistent", "-"])
            .status
            .code()
            != Some(0)
    );

    // A running container: written live, visible to its processes at once.
    ok(
        &store,
        &[
            "run",
            "-d",
            "--name",
            "live",
            "--network",
            "none",
            &lower,
            "sh",
            "-c",
            "while :; do sleep 0.1; done",
        ],
    );
    ok(
        &store,
        &[
            "cp",
            &host.join("a.txt").display().to_string(),
            "live:/hostile/tmp/live.txt",
        ],
    );
    assert_eq!(
        ok(&store, &["exec", "live", "cat", "/tmp/live.txt"]),
        "from the host\n"
    );
    let o = lamina(&store, &["cp", "live:/tmp/live.txt", "-"]);
    assert_eq!(tar_names(&o.stdout), vec!["live.txt"]);
    assert_eq!(
        ok(&store, &["inspect", "-f", "{{.State.Status}}", "live"]).trim(),
        "running",
        "left frozen"
    );
    ok(&store, &["rm", "-f", "live"]);
}

#[test]
fn commit_and_export() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let _cleanup = run_common::StoreGuard(store.clone());
    let tarball = fx.path().join("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&fx.lower)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    ok(&store, &["import", &tarball.display().to_string(), "bb:1"]);
    ok(
        &store,
        &[
            "run",
            "--name",
            "w",
            "--network",
            "none",
            "bb:1",
            "sh",
            "-c",
            "echo changed >/etc/motd; rm /bin/ls",
        ],
    );
    let id = ok(
        &store,
        &[
            "commit",
            "-c",
            "CMD [\"cat\", \"/etc/motd\"]",
            "-c",
            "ENV COMMITTED=yes",
            "-m",
            "my change",
            "w",
            "bb:2",
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(&store, &["run", "--rm", "--network", "none", "bb:2"]),
        "changed\n"
    );
    assert_eq!(
        ok(
            &store,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "bb:2",
                "sh",
                "-c",
                "echo $COMMITTED"
            ]
        ),
        "yes\n"
    );
    let o = lamina(&store, &["run", "--rm", "--network", "none", "bb:2", "ls"]);
    assert_eq!(o.status.code(), Some(127), "the deletion was not committed");
    let img: serde_json::Value = serde_json::from_str(&ok(&store, &["inspect", "bb:2"])).unwrap();
    let hist = img["History"].as_array().unwrap();
    assert_eq!(hist.last().unwrap()["comment"], "my change");
    assert_eq!(img["Layers"].as_array().unwrap().len(), 2);

    // Without -c the image gets the container's config: its command, env and working dir.
    ok(
        &store,
        &[
            "run",
            "--name",
            "w2",
            "--network",
            "none",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "bb:1",
            "sh",
            "-c",
            "echo $FOO; pwd",
        ],
    );
    let cfg: serde_json::Value = serde_json::from_str(&ok(&store, &["container", "inspect", "w2"])).unwrap();
    assert_eq!(
        cfg[0]["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo $FOO; pwd"])
    );
    ok(&store, &["commit", "w2", "bb:3"]);
    assert_eq!(
        ok(&store, &["run", "--rm", "--network", "none", "bb:3"]),
        "bar\n/tmp\n"
    );

    let exported = fx.path().join("w.tar");
    ok(&store, &["export", "-o", &exported.display().to_string(), "w"]);
    let names = tar_names(&std::fs::read(&exported).unwrap());
    assert!(
        names.iter().any(|n| n.trim_start_matches("./") == "etc/motd"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.trim_start_matches("./") == "bin/busybox"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.trim_start_matches("./") == "bin/ls"),
        "deleted file exported"
    );
    assert!(
        !names.iter().any(|n| n.contains(".wh.")),
        "whiteouts exported: {names:?}"
    );
}
