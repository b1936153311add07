//! Snapshots keyed by chain id: shared bases, diff_id verification, staging, and stacking as overlay lowers.

mod common;

use std::fs;

use common::RawTar;
use lamina_store::snapshot::{Snapshots, chain_id, chain_ids};
use lamina_store::{BlobStore, Digest};

fn put(store: &BlobStore, tar: &[u8]) -> (Digest, Digest) {
    let (d, _) = store.put_bytes(tar).unwrap();
    (d, Digest::sha256_of(tar))
}

#[test]
fn images_on_one_base_share_its_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(tmp.path()).unwrap();
    let snaps = Snapshots::open(tmp.path()).unwrap();
    let base = put(
        &blobs,
        &RawTar::default()
            .dir("etc/")
            .file("etc/os", b"base")
            .file("gone", b"g")
            .end(),
    );
    let mut t = RawTar::default();
    t.file("a", b"a");
    if common::is_root() {
        t.file(".wh.gone", b"");
    }
    let top_a = put(&blobs, &t.end());
    let top_b = put(&blobs, &RawTar::default().file("b", b"b").end());

    let a = snaps
        .ensure_chain(&blobs, &[base.clone(), top_a.clone()])
        .unwrap();
    let b = snaps
        .ensure_chain(&blobs, &[base.clone(), top_b.clone()])
        .unwrap();
    assert_eq!(a[0], b[0], "base snapshot is shared");
    assert_ne!(a[1], b[1]);
    assert_eq!(snaps.list().unwrap().len(), 3);
    let ids = chain_ids([&base.1, &top_a.1]);
    assert_eq!(a[1], snaps.path(&ids[1]));
    assert_eq!(ids[1], chain_id(Some(&base.1), &top_a.1));
    assert_eq!(fs::read(a[0].join("etc/os")).unwrap(), b"base");
    assert_eq!(fs::read(a[1].join("a")).unwrap(), b"a");
    assert!(
        !a[1].join("etc").exists(),
        "snapshots hold one layer each, not a flattened tree"
    );
    // Short links point at the snapshot, and are short.
    let link = snaps.short_link(&ids[1]);
    assert_eq!(fs::canonicalize(&link).unwrap(), fs::canonicalize(&a[1]).unwrap());
    assert!(Snapshots::short_name(&ids[1]).len() <= 22);
    // A second ensure is a no-op that returns the same paths.
    assert_eq!(
        snaps
            .ensure_chain(&blobs, &[base.clone(), top_a.clone()])
            .unwrap(),
        a
    );
    assert_eq!(fs::read_dir(snaps.dir().join("staging")).unwrap().count(), 0);

    if common::is_root() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let wh = fs::symlink_metadata(a[1].join("gone")).unwrap();
        assert!(
            wh.file_type().is_char_device() && wh.rdev() == 0,
            "whiteout kept for overlay"
        );
        // Stack the snapshots as overlay lowers through their short names, mounting from snapshots/.
        let merged = tmp.path().join("merged");
        fs::create_dir(&merged).unwrap();
        let lower = format!(
            "lowerdir={}:{}",
            snaps.dir().join(Snapshots::short_name(&ids[1])).display(),
            snaps.dir().join(Snapshots::short_name(&ids[0])).display()
        );
        let opts = std::ffi::CString::new(lower).unwrap();
        match rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            opts.as_c_str(),
        ) {
            Ok(()) => {
                let seen = (
                    merged.join("gone").exists(),
                    fs::read(merged.join("etc/os")).ok(),
                    merged.join("a").exists(),
                );
                rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).unwrap();
                assert_eq!(seen, (false, Some(b"base".to_vec()), true));
            }
            Err(e) => lamina_testkit::skip(&format!("mount failed: {e}")),
        }
    }
}

#[test]
fn diff_id_mismatch_leaves_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(tmp.path()).unwrap();
    let snaps = Snapshots::open(tmp.path()).unwrap();
    let (digest, _) = put(&blobs, &RawTar::default().file("x", b"x").end());
    let wrong = Digest::sha256_of(b"not the tar");
    let err = snaps
        .ensure_chain(&blobs, &[(digest, wrong.clone())])
        .unwrap_err();
    assert!(err.to_string().contains("diff_id mismatch"), "{err}");
    assert!(!snaps.exists(&wrong));
    assert!(snaps.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(snaps.dir().join("staging")).unwrap().count(), 0);
}

#[test]
fn commit_and_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(tmp.path()).unwrap();
    let id = Digest::sha256_of(b"upper");
    let staged = snaps.new_staging_dir().unwrap();
    fs::write(staged.join("f"), b"1").unwrap();
    let p = snaps.commit(staged, &id).unwrap();
    assert_eq!(fs::read(p.join("f")).unwrap(), b"1");
    // Losing a race to an identical snapshot keeps the existing one and drops ours.
    let again = snaps.new_staging_dir().unwrap();
    fs::write(again.join("f"), b"2").unwrap();
    assert_eq!(snaps.commit(again.clone(), &id).unwrap(), p);
    assert!(!again.exists());
    assert_eq!(fs::read(p.join("f")).unwrap(), b"1");
    snaps.remove(&id).unwrap();
    assert!(!p.exists() && fs::symlink_metadata(snaps.short_link(&id)).is_err());
    assert_eq!(fs::read_dir(snaps.dir().join("staging")).unwrap().count(), 0);
}

/// An alias names another snapshot (a build step's dir under its layer's diff_id); ensure_chain reuses
/// it for any chain with that layer, and an alias whose target is gone yields to a real unpack.
#[test]
fn aliases_are_reused_and_dangling_ones_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(tmp.path()).unwrap();
    let key = Digest::sha256_of(b"step key");
    let staged = snaps.new_staging_dir().unwrap();
    fs::write(staged.join("f"), b"built").unwrap();
    snaps.commit(staged, &key).unwrap();
    let diff = Digest::sha256_of(b"layer tar");
    snaps.alias(&diff, &key).unwrap();
    assert!(snaps.exists(&diff));
    assert_eq!(fs::read(snaps.path(&diff).join("f")).unwrap(), b"built");
    // A second alias call is a no-op, and so is aliasing over a real snapshot.
    snaps.alias(&diff, &key).unwrap();
    snaps.alias(&key, &diff).unwrap();
    assert!(fs::symlink_metadata(snaps.path(&key)).unwrap().is_dir());

    // Target pruned: the alias dangles, exists() says no, and a commit under that name replaces it.
    snaps.remove(&key).unwrap();
    assert!(!snaps.exists(&diff));
    let staged = snaps.new_staging_dir().unwrap();
    fs::write(staged.join("f"), b"unpacked").unwrap();
    let p = snaps.commit(staged, &diff).unwrap();
    assert!(fs::symlink_metadata(&p).unwrap().is_dir());
    assert_eq!(fs::read(p.join("f")).unwrap(), b"unpacked");
}
