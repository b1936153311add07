//! prune: unreachable blobs, unused snapshots (snapshot.rs layout), staging and tmp leftovers, build cache.

use std::fs;

use lamina_store::config::ImageConfig;
use lamina_store::image::media;
use lamina_store::prune::{PruneOptions, chain_id, prune};
use lamina_store::{Digest, LayerDesc, Reference, Store};

#[test]
fn prune_keeps_what_images_and_cache_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (layer, size) = store.blobs().put_bytes(b"pretend layer").unwrap();
    let diff_id = Digest::sha256_of(b"pretend tar");
    let img = store
        .write_image(
            &ImageConfig::scratch(),
            &[LayerDesc {
                digest: layer.clone(),
                diff_id: diff_id.clone(),
                size,
                media_type: media::OCI_LAYER_GZIP.into(),
            }],
        )
        .unwrap();
    store
        .set_tag(&Reference::parse("keep").unwrap(), img.descriptor())
        .unwrap();

    let snaps = store.snapshots_dir();
    let live = chain_id(None, &diff_id);
    let dead = Digest::sha256_of(b"dead");
    let cached = Digest::sha256_of(b"cached snapshot");
    for d in [&live, &dead, &cached] {
        fs::create_dir_all(snaps.join(d.hex()).join("etc")).unwrap();
        fs::write(snaps.join(d.hex()).join("etc/f"), b"x").unwrap();
    }
    // A dead snapshot with a read-only directory (as layers may have) must still go.
    fs::create_dir_all(snaps.join(dead.hex()).join("ro/sub")).unwrap();
    fs::set_permissions(
        snaps.join(dead.hex()).join("ro"),
        std::os::unix::fs::PermissionsExt::from_mode(0o500),
    )
    .unwrap();
    std::os::unix::fs::symlink(format!("../{}", dead.hex()), {
        fs::create_dir_all(snaps.join("l")).unwrap();
        snaps.join("l").join(&dead.hex()[..20])
    })
    .unwrap();
    fs::create_dir_all(snaps.join("staging/snap-abc")).unwrap();

    let (cache_blob, _) = store.blobs().put_bytes(b"cached layer").unwrap();
    let (garbage, _) = store.blobs().put_bytes(b"garbage").unwrap();
    fs::create_dir_all(store.cache_dir().join("build")).unwrap();
    fs::write(
        store.cache_dir().join("build").join("k1"),
        serde_json::json!({"key": Digest::sha256_of(b"k").to_string(),
            "layer": {"digest": cache_blob.to_string(), "diff_id": cache_blob.to_string(), "size": 12,
                      "media_type": media::OCI_LAYER_GZIP},
            "snapshot": cached.hex(), "created_by": "RUN x", "created": 0})
        .to_string(),
    )
    .unwrap();
    fs::write(store.tmp_dir().join("blob-partial"), b"...").unwrap();

    let r = prune(&store, PruneOptions::default()).unwrap();
    assert_eq!(r.blobs.iter().map(|b| &b.0).collect::<Vec<_>>(), [&garbage]);
    assert_eq!(r.snapshots.len(), 1, "{r:?}");
    assert!(!snaps.join(dead.hex()).exists());
    assert!(snaps.join(live.hex()).exists() && snaps.join(cached.hex()).exists());
    assert!(
        fs::symlink_metadata(snaps.join("l").join(&dead.hex()[..20])).is_err(),
        "dangling short link removed"
    );
    assert_eq!(fs::read_dir(snaps.join("staging")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    assert!(store.blobs().contains(&cache_blob));
    assert!(r.freed() > 0);

    let r = prune(
        &store,
        PruneOptions {
            cache: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.blobs.iter().map(|b| &b.0).collect::<Vec<_>>(), [&cache_blob]);
    assert!(!snaps.join(cached.hex()).exists());
    assert!(snaps.join(live.hex()).exists());
    assert!(lamina_store::validate::validate(&store, &img.manifest_digest, false).is_empty());
}
