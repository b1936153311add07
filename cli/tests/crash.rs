//! Crash safety and concurrency of the store: SIGKILL writers at random points (mid-blob during a large
//! import, mid-index-update during a loop of tags), then the store must fsck clean, every tag must resolve,
//! and prune must leave tmp/ empty. Several processes tagging at once lose no tag.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{big_tar, busybox_rootfs_tar, lamina, lamina_bin, ok};

/// A small deterministic PRNG so failures reproduce from the printed seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

/// SIGKILL to a whole process group (the shell loop and the lamina it is running).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
}

fn assert_store_sound(root: &Path) {
    let out = lamina(root, &["fsck"]);
    assert!(
        out.status.success(),
        "fsck after crash:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let store = lamina_store::Store::open(root).unwrap();
    for t in store.tags().unwrap() {
        let img = store
            .resolve(&t.reference.to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", t.reference));
        assert!(
            lamina_store::validate::validate(&store, img.digest(), false).is_empty(),
            "{}",
            t.reference
        );
    }
}

fn prune_leaves_tmp_empty(root: &Path) {
    ok(root, &["prune"]);
    assert_eq!(
        std::fs::read_dir(root.join("tmp")).unwrap().count(),
        0,
        "prune must remove temp leftovers"
    );
    assert_store_sound(root);
}

#[test]
fn sigkill_during_import_leaves_a_sound_store() {
    let dir = tempfile::tempdir().unwrap();
    let Some(small) = busybox_rootfs_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("store");
    ok(&root, &["import", small.to_str().unwrap(), "base"]);
    let big = dir.path().join("big.tar");
    big_tar(&big, 32 << 20);

    // How long a full import takes here, to spread the kills over it.
    let t = Instant::now();
    ok(&root, &["import", big.to_str().unwrap(), "big:done"]);
    let full = t.elapsed().as_millis() as u64;

    let s = seed();
    eprintln!("seed {s}, full import {full} ms");
    let mut rng = Rng(s);
    let mut killed_mid_write = 0;
    for i in 0..6 {
        let mut child = Command::new(lamina_bin())
            .arg("--root")
            .arg(&root)
            .args(["import", big.to_str().unwrap(), &format!("big:{i}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(full.max(10) * 11 / 10)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed_mid_write += 1;
        }
        assert_store_sound(&root);
    }
    eprintln!("{killed_mid_write} of 6 imports were killed before finishing");
    assert!(
        killed_mid_write > 0,
        "no import was interrupted; the test proves nothing"
    );
    prune_leaves_tmp_empty(&root);
    let store = lamina_store::Store::open(&root).unwrap();
    assert!(store.resolve("base").is_ok() && store.resolve("big:done").is_ok());
}

#[test]
fn sigkill_during_tagging_keeps_index_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(small) = busybox_rootfs_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("store");
    ok(&root, &["import", small.to_str().unwrap(), "base"]);
    let s = seed();
    eprintln!("seed {s}");
    let mut rng = Rng(s);
    for round in 0..8 {
        let script = format!(
            "i=0; while :; do {bin} --root {root} tag base r{round}:t$i || exit 3; \
             {bin} --root {root} rmi r{round}:t$((i-1)) >/dev/null 2>&1; i=$((i+1)); done",
            bin = lamina_bin().display(),
            root = root.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        kill_group(child.id());
        let status = child.wait().unwrap();
        assert_ne!(status.code(), Some(3), "a tag failed while the loop ran");
        // index.json must always parse and every tag in it must be whole.
        assert_store_sound(&root);
    }
    prune_leaves_tmp_empty(&root);
}

#[test]
fn concurrent_taggers_lose_no_tag() {
    let dir = tempfile::tempdir().unwrap();
    let Some(small) = busybox_rootfs_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("store");
    ok(&root, &["import", small.to_str().unwrap(), "base"]);
    let procs = 4;
    let per = 12;
    let children: Vec<_> = (0..procs)
        .map(|p| {
            let script = format!(
                "for i in $(seq 1 {per}); do {bin} --root {root} tag base p{p}:t$i || exit 1; done",
                bin = lamina_bin().display(),
                root = root.display()
            );
            Command::new("sh").args(["-c", &script]).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store = lamina_store::Store::open(&root).unwrap();
    let tags = store.tags().unwrap();
    assert_eq!(tags.len(), 1 + procs * per, "lost tags under concurrency");
    for p in 0..procs {
        for i in 1..=per {
            assert!(store.resolve(&format!("p{p}:t{i}")).is_ok(), "p{p}:t{i} missing");
        }
    }
}

#[test]
fn prune_waits_for_writers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = lamina_store::Store::open(&root).unwrap();
    // A writer mid-build: holds the shared lock and has an untagged blob.
    let guard = store.lock_shared().unwrap();
    let (d, _) = store.blobs().put_bytes(b"in-flight layer").unwrap();
    let mut prune = Command::new(lamina_bin())
        .arg("--root")
        .arg(&root)
        .arg("prune")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        prune.try_wait().unwrap().is_none(),
        "prune must wait for the writer"
    );
    assert!(store.blobs().contains(&d));
    drop(guard);
    assert!(prune.wait().unwrap().success());
    assert!(
        !store.blobs().contains(&d),
        "unreferenced once the writer is gone"
    );
}
