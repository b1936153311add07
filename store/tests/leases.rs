//! Leases against prune: what a live lease holds survives, the same items without a lease (the naive
//! store, where prune assumes no writer is mid-build) are removed, and the lease of a SIGKILLed process is
//! collected by the next prune.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lamina_store::prune::{PruneOptions, prune};
use lamina_store::{Digest, Store};

/// What a build has made before it tags anything: a layer blob, a committed step snapshot with its diff_id
/// alias, an overlay upper dir in staging and a temp file. Returns (blob, snapshot dir, staging dir, temp).
fn in_progress_build(
    store: &Store,
    tag: &str,
) -> (Digest, std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let snaps = store.snapshots().unwrap();
    let mut w = store.blobs().writer().unwrap();
    w.write_all(format!("layer of {tag}").as_bytes()).unwrap();
    let (blob, _) = w.commit().unwrap();
    let staged = snaps.new_staging_dir().unwrap();
    fs::write(staged.join("f"), tag).unwrap();
    let key = Digest::sha256_of(format!("step key {tag}").as_bytes());
    let snap = snaps.commit(staged, &key).unwrap();
    snaps
        .alias(&Digest::sha256_of(format!("diff {tag}").as_bytes()), &key)
        .unwrap();
    let upper = snaps.new_staging_dir().unwrap();
    let tmp = store.tmp_dir().join(format!("heredoc-{tag}"));
    fs::write(&tmp, b"x").unwrap();
    (blob, snap, upper, tmp)
}

#[test]
fn prune_keeps_what_a_live_lease_holds_and_removes_the_same_unleased() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let lease = store.lease().unwrap();
    let leased = store.leased(&lease);
    let (lb, ls, lu, lt) = in_progress_build(&leased, "leased");
    let (nb, ns, nu, nt) = in_progress_build(&store, "naive");

    let r = prune(
        &store,
        PruneOptions {
            cache: true,
            ..Default::default()
        },
    )
    .unwrap();
    // The naive build's work is gone: this is the bug a build without a lease hits.
    assert!(!store.blobs().contains(&nb), "{r:?}");
    assert!(!ns.exists() && !nu.exists() && !nt.exists(), "{r:?}");
    // The leased build's is all there.
    assert!(store.blobs().contains(&lb));
    assert!(ls.join("f").is_file() && lu.is_dir() && lt.is_file(), "{r:?}");
    let alias = store
        .snapshots_dir()
        .join(Digest::sha256_of(b"diff leased").hex());
    assert!(
        alias.is_dir(),
        "the diff_id alias (a symlink) and its target are kept"
    );
    assert!(r.leases.is_empty());

    // Once the lease ends, its items are ordinary garbage.
    drop(leased);
    drop(lease);
    assert!(!lu.exists() && !lt.exists(), "a lease's temp dirs go with it");
    prune(&store, PruneOptions::default()).unwrap();
    assert!(!store.blobs().contains(&lb) && !ls.exists());
}

/// Set in the child process of the SIGKILL test: the store root to take a lease in.
const CHILD_ENV: &str = "LAMINA_TEST_LEASE_HOLDER";

#[test]
fn lease_holder_child() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    let lease = store.lease().unwrap();
    let leased = store.leased(&lease);
    let (_, _, _, tmp) = in_progress_build(&leased, "killed");
    fs::write(Path::new(&root).join("child-ready"), tmp.to_str().unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn the_lease_of_a_killed_process_is_collected_by_the_next_prune() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lease_holder_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, t.path())
        .spawn()
        .unwrap();
    let ready = t.path().join("child-ready");
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child never took its lease"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let tmp = fs::read_to_string(&ready).unwrap();
    let leases = || fs::read_dir(t.path().join("leases")).unwrap().count();
    // Alive: prune keeps the lease and its temp file.
    let r = prune(&store, PruneOptions::default()).unwrap();
    assert!(r.leases.is_empty() && Path::new(&tmp).is_file(), "{r:?}");
    assert_eq!(leases(), 1);

    // SIGKILL: no destructor runs, the lease file stays behind, but its flock dies with the process.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(leases(), 1, "SIGKILL left the lease file");
    let r = prune(&store, PruneOptions::default()).unwrap();
    assert_eq!(r.leases.len(), 1, "{r:?}");
    assert_eq!(leases(), 0);
    assert!(
        !Path::new(&tmp).exists(),
        "the dead lease's temp dir is collected"
    );
    assert!(
        r.blobs.len() == 1 && r.snapshots.len() == 2,
        "its blob, snapshot and alias: {r:?}"
    );
}
