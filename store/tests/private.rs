//! The store is private (moby CVE-2021-41091 class): its root and subdirs are 0700 when created, a store
//! loosened by hand is tightened on the next open, and a host user other than the owner can neither stat
//! nor execute a setuid-root binary that a layer put in a snapshot. The same check is run against the
//! naive 0755 layout first, to show that the payload is reachable there.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use lamina_store::{Digest, Store};

const DIRS: [&str; 7] = ["", "blobs", "snapshots", "tmp", "cache", "containers", "leases"];

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn a_new_store_is_private_and_a_loosened_one_is_tightened_on_open() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("a/store");
    Store::open(&root).unwrap();
    for d in DIRS {
        assert_eq!(mode(&root.join(d)), 0o700, "{d:?} of a new store");
    }
    for d in DIRS {
        chmod(&root.join(d), 0o755);
    }
    Store::open(&root).unwrap();
    for d in DIRS {
        assert_eq!(mode(&root.join(d)), 0o700, "{d:?} after reopening a 0755 store");
    }
}

/// Runs `argv` as nobody:nogroup with no supplementary groups, from a shell that already is nobody:
/// setpriv's own exec of its argument still reached a file under a 0700 root dir here.
fn as_nobody(argv: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/bin/sh", "-c", "exec \"$@\"", "sh"])
        .args(argv)
        .output()
        .unwrap()
}

#[test]
fn another_user_cannot_reach_a_setuid_binary_in_a_snapshot() {
    if !lamina_testkit::need_root("a setuid-root file and a switch to nobody")
        || !lamina_testkit::need_tools(&["setpriv", "stat"])
        || !lamina_testkit::need_path("/usr/bin/busybox", "busybox-static, the setuid payload")
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // Only the store may be the barrier: the temp dir itself is made traversable.
    chmod(t.path(), 0o755);
    let root = t.path().join("store");
    Store::open(&root).unwrap();
    let snap = root.join("snapshots").join(Digest::sha256_of(b"layer").hex());
    fs::create_dir_all(snap.join("bin")).unwrap();
    // Named like an applet, so busybox runs it (it dispatches on argv[0]).
    let payload = snap.join("bin/true");
    fs::copy("/usr/bin/busybox", &payload).unwrap();
    chmod(&payload, 0o4755);
    let payload = payload.to_str().unwrap();

    // The naive layout: root and snapshots/ 0755 (what lamina made before). nobody reaches the payload.
    chmod(&root, 0o755);
    chmod(&root.join("snapshots"), 0o755);
    let st = as_nobody(&["stat", "-c", "%a %u", payload]);
    assert!(
        st.status.success() && String::from_utf8_lossy(&st.stdout).trim() == "4755 0",
        "naive layout: nobody should see the setuid-root payload: {st:?}"
    );
    assert!(
        as_nobody(&[payload]).status.success(),
        "naive layout: nobody should be able to execute the payload"
    );

    // Opening the store tightens it; now nobody gets EACCES for both.
    Store::open(&root).unwrap();
    let st = as_nobody(&["stat", payload]);
    assert!(!st.status.success(), "nobody could stat {payload}: {st:?}");
    assert!(
        String::from_utf8_lossy(&st.stderr).contains("Permission denied"),
        "{st:?}"
    );
    let ex = as_nobody(&[payload]);
    assert!(!ex.status.success(), "nobody could execute {payload}: {ex:?}");
}
