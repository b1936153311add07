//! `lamina prune` while a build or a container runs (issue 11 item 6). The build is paused in a RUN step
//! that waits for a file in its cache mount, which the test controls; the container waits on a bind-mounted
//! gate dir. prune (and prune --cache, which also drops the build's cache records) must leave the build's
//! snapshots, blobs and temp dirs alone: the build then finishes with a whole image (fsck clean), and the
//! container keeps reading its image's files. Once they end, the same prune removes what they held —
//! which is what an unleased prune did to them mid-way (store/tests/leases.rs shows that on the mark phase).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{lamina_bin, ok};

fn context(dir: &Path, dockerfile: &str) -> Option<PathBuf> {
    let bb = Path::new("/usr/bin/busybox");
    if !lamina_testkit::need_path(bb, "busybox-static, the base image's shell") {
        return None;
    }
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::create_dir_all(ctx.join("rootfs/tmp")).unwrap();
    std::fs::copy(bb, ctx.join("rootfs/bin/busybox")).unwrap();
    for a in ["sh", "cat", "echo", "touch", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin").join(a)).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    Some(ctx)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first file named `name` under `dir`, at any depth.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if e.file_name() == name {
            return Some(p);
        }
        if e.file_type().is_ok_and(|t| t.is_dir())
            && let Some(f) = find(&p, name)
        {
            return Some(f);
        }
    }
    None
}

fn snapshot_dirs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir() && e.file_name().len() == 64)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn leases(root: &Path) -> usize {
    std::fs::read_dir(root.join("leases")).map_or(0, |rd| rd.count())
}

fn finish(child: Child) -> (bool, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PAUSED: &str = "FROM scratch
COPY rootfs/ /
ENV PATH=/bin
RUN echo one > /one
RUN --mount=type=cache,id=gate,target=/gate touch /gate/started && while [ ! -e /gate/go ]; do sleep 0.1; done && echo two > /two
RUN cat /one /two > /both
";

#[test]
fn prune_during_a_paused_build_leaves_it_whole() {
    if !lamina_testkit::need_root("RUN steps (namespaces, overlayfs)") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path(), PAUSED) else {
        return;
    };
    let root = t.path().join("store");
    let build = Command::new(lamina_bin())
        .arg("--root")
        .arg(&root)
        .args([
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "-t",
            "paused",
        ])
        .arg(&ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mounts = root.join("cache/mounts");
    wait_for("the RUN step to start", || find(&mounts, "started").is_some());
    let gate = find(&mounts, "started").unwrap().parent().unwrap().to_owned();
    let during = snapshot_dirs(&root);
    assert!(!during.is_empty(), "the COPY and first RUN are snapshots by now");

    let pruned = ok(&root, &["prune"]);
    let pruned_cache = ok(&root, &["prune", "--cache"]);
    assert!(
        during
            .iter()
            .all(|s| !pruned.contains(s) && !pruned_cache.contains(s)),
        "prune removed an in-progress snapshot:\n{pruned}\n{pruned_cache}"
    );
    assert_eq!(snapshot_dirs(&root), during);
    assert!(!pruned_cache.contains("Deleted blob"), "{pruned_cache}");
    assert_eq!(leases(&root), 1, "the build's lease");

    std::fs::write(gate.join("go"), b"").unwrap();
    let (success, _, stderr) = finish(build);
    assert!(success, "the build failed after prune:\n{stderr}");
    ok(&root, &["fsck"]);
    let out = ok(
        &root,
        &["run", "--rm", "--network", "none", "paused", "cat", "/both"],
    );
    assert_eq!(out, "one\ntwo\n");
    assert_eq!(leases(&root), 0, "build and run released their leases");

    // Untagged, nothing holds the build's work any more: the same prune now removes it — as it did
    // mid-build before leases.
    ok(&root, &["rmi", "paused"]);
    let after = ok(&root, &["prune", "--cache"]);
    assert!(
        during.iter().all(|s| after.contains(s)),
        "unleased, those snapshots are garbage:\n{after}"
    );
}

#[test]
fn a_container_keeps_its_image_through_rmi_and_prune() {
    if !lamina_testkit::need_root("lamina run (namespaces, overlayfs)") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nRUN echo payload > /data\n";
    let Some(ctx) = context(t.path(), df) else { return };
    let root = t.path().join("store");
    ok(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "-t",
            "img",
            ctx.to_str().unwrap(),
        ],
    );
    let gate = t.path().join("gate");
    let gate2 = t.path().join("gate2");
    std::fs::create_dir_all(&gate).unwrap();
    std::fs::create_dir_all(&gate2).unwrap();
    let script = "touch /gate/started; while [ ! -e /gate/go ]; do sleep 0.1; done; cat /data";
    let vol = format!("{}:/gate", gate.display());
    let fg = Command::new(lamina_bin())
        .arg("--root")
        .arg(&root)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &vol,
            "img",
            "sh",
            "-c",
            script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let vol2 = format!("{}:/gate", gate2.display());
    let detached_script = format!("{script} > /gate/out");
    ok(
        &root,
        &[
            "run",
            "-d",
            "--name",
            "bg",
            "--network",
            "none",
            "-v",
            &vol2,
            "img",
            "sh",
            "-c",
            &detached_script,
        ],
    );
    wait_for("both containers to start", || {
        gate.join("started").exists() && gate2.join("started").exists()
    });
    let snaps = snapshot_dirs(&root);
    ok(&root, &["rmi", "img"]);
    let pruned = ok(&root, &["prune", "--cache"]);
    assert_eq!(
        snapshot_dirs(&root),
        snaps,
        "prune removed a running container's snapshots:\n{pruned}"
    );

    std::fs::write(gate.join("go"), b"").unwrap();
    std::fs::write(gate2.join("go"), b"").unwrap();
    let (success, stdout, stderr) = finish(fg);
    assert!(success, "{stderr}");
    assert_eq!(stdout, "payload\n");
    wait_for("the detached container's output", || {
        std::fs::read_to_string(gate2.join("out")).is_ok_and(|s| s == "payload\n")
    });

    // The exited detached container still exists, so its lease (persisted, no process) still holds.
    let pruned = ok(&root, &["prune"]);
    assert_eq!(snapshot_dirs(&root), snaps, "{pruned}");
    wait_for("lamina rm bg", || {
        common::lamina(&root, &["rm", "bg"]).status.success()
    });
    let pruned = ok(&root, &["prune"]);
    assert!(
        snapshot_dirs(&root).is_empty(),
        "with the container gone they are garbage:\n{pruned}"
    );
    assert_eq!(leases(&root), 0, "{pruned}");
}
