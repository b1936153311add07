//! GC with a budget (gc.rs through `prune` with `gc`): least recently used build cache goes first, with
//! the blobs and snapshots only it kept; leases, tagged images and recent use (`until`) are respected;
//! cache mounts in use and fresh context memos stay.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};

use lamina_store::buildcache::{CacheMountSpec, CacheRecord, CachedLayer};
use lamina_store::config::ImageConfig;
use lamina_store::gc::{GcOptions, disk_usage};
use lamina_store::image::media;
use lamina_store::prune::{PruneOptions, prune};
use lamina_store::{Digest, LayerDesc, Reference, Store};

const ITEM: usize = 200_000;

fn set_mtime(path: &Path, ago: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

/// A step record with its own layer blob and snapshot (each ~ITEM bytes), last used `ago`.
fn step(store: &Store, name: &str, ago: Duration) -> (Digest, Digest, String) {
    let key = Digest::sha256_of(name.as_bytes());
    let mut content = name.as_bytes().to_vec();
    content.resize(ITEM, b'x');
    let (blob, size) = store.blobs().put_bytes(&content).unwrap();
    let snap = key.hex().to_owned();
    let dir = store.snapshots_dir().join(&snap);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f"), &content).unwrap();
    let cache = store.build_cache().unwrap();
    cache
        .put(&CacheRecord {
            key: key.clone(),
            layer: CachedLayer {
                digest: blob.clone(),
                diff_id: Digest::sha256_of(name.as_bytes()),
                size,
                media_type: media::OCI_LAYER_GZIP.into(),
            },
            snapshot: Some(snap.clone()),
            created_by: format!("RUN {name}"),
            created: 0,
        })
        .unwrap();
    set_mtime(&cache.dir().join(key.hex()), ago);
    (key, blob, snap)
}

fn gc(store: &Store, keep_storage: Option<u64>, until: Option<Duration>) -> lamina_store::prune::PruneReport {
    prune(
        store,
        PruneOptions {
            gc: Some(GcOptions { keep_storage, until }),
            ..Default::default()
        },
    )
    .unwrap()
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

#[test]
fn budget_removes_least_recently_used_first() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let old = step(&store, "old", hours(30));
    let mid = step(&store, "mid", hours(20));
    let new = step(&store, "new", hours(10));
    // Room for about two of the three: only the oldest must go.
    let budget = disk_usage(t.path()) - ITEM as u64;
    let r = gc(&store, Some(budget), None);
    assert!(disk_usage(t.path()) <= budget, "under budget");
    let cache = store.build_cache().unwrap();
    assert!(cache.get(&old.0).is_none() && !store.blobs().contains(&old.1));
    assert!(!store.snapshots_dir().join(&old.2).exists());
    for (key, blob, snap) in [&mid, &new] {
        assert!(cache.get(key).is_some() && store.blobs().contains(blob));
        assert!(store.snapshots_dir().join(snap).exists());
    }
    assert_eq!(r.cache.len(), 1, "{r:?}");
    assert!(r.freed() >= 2 * ITEM as u64);

    // `mid` used a minute ago, `new` two hours ago: now `new` is the least recently used.
    set_mtime(&cache.dir().join(mid.0.hex()), Duration::from_secs(60));
    set_mtime(&cache.dir().join(new.0.hex()), hours(2));
    let budget = disk_usage(t.path()) - ITEM as u64;
    gc(&store, Some(budget), None);
    assert!(cache.get(&new.0).is_none());
    assert!(cache.get(&mid.0).is_some());
}

#[test]
fn until_keeps_recent_use_and_no_budget_means_all_older() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let a = step(&store, "a", hours(48));
    let b = step(&store, "b", hours(30));
    let c = step(&store, "c", Duration::from_secs(60));
    gc(&store, None, Some(hours(24)));
    let cache = store.build_cache().unwrap();
    assert!(cache.get(&a.0).is_none() && cache.get(&b.0).is_none());
    assert!(cache.get(&c.0).is_some(), "used a minute ago, within until=24h");
    assert!(store.blobs().contains(&c.1));
    // Even a budget of 0 doesn't reach past `until`.
    gc(&store, Some(0), Some(hours(1)));
    assert!(cache.get(&c.0).is_some());
    gc(&store, Some(0), None);
    assert!(cache.get(&c.0).is_none() && !store.blobs().contains(&c.1));
}

#[test]
fn leases_and_tagged_images_keep_their_content() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let leased = step(&store, "leased", hours(5));
    let tagged = step(&store, "tagged", hours(5));
    let lease = store.lease().unwrap();
    lease.protect_blob(&leased.1).unwrap();
    lease.protect_snapshot(&leased.2).unwrap();
    let img = store
        .write_image(
            &ImageConfig::scratch(),
            &[LayerDesc {
                digest: tagged.1.clone(),
                diff_id: Digest::sha256_of(b"tagged"),
                size: store.blobs().size(&tagged.1).unwrap(),
                media_type: media::OCI_LAYER_GZIP.into(),
            }],
        )
        .unwrap();
    store
        .set_tag(&Reference::parse("keep").unwrap(), img.descriptor())
        .unwrap();

    gc(&store, Some(0), None);
    let cache = store.build_cache().unwrap();
    assert!(cache.list().is_empty(), "every record goes");
    assert!(store.blobs().contains(&leased.1), "a live lease holds it");
    assert!(store.snapshots_dir().join(&leased.2).exists());
    assert!(store.blobs().contains(&tagged.1), "a tagged image needs it");
    assert!(lamina_store::validate::validate(&store, &img.manifest_digest, false).is_empty());

    drop(lease);
    gc(&store, Some(0), None);
    assert!(
        !store.blobs().contains(&leased.1),
        "collected once the lease ended"
    );
    assert!(!store.snapshots_dir().join(&leased.2).exists());
}

#[test]
fn mounts_in_use_stay_and_memos_go() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let spec = |id: &str| CacheMountSpec {
        id: id.into(),
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
        mode: 0o755,
        locked: false,
        unprivileged: false,
    };
    let busy = store.cache_mount(&spec("/busy")).unwrap();
    fs::write(busy.path.join("data"), vec![1u8; ITEM]).unwrap();
    let free = store.cache_mount(&spec("/free")).unwrap();
    fs::write(free.path.join("data"), vec![2u8; ITEM]).unwrap();
    let free_path = free.path.clone();
    drop(free);
    let memo = store.context_memo(Path::new("/some/context"));
    fs::create_dir_all(memo.parent().unwrap()).unwrap();
    fs::write(&memo, b"1 2 3 4 sha256:x f\n").unwrap();

    let dry = prune(
        &store,
        PruneOptions {
            dry_run: true,
            gc: Some(GcOptions::default()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(dry.mounts.len(), 1);
    assert!(free_path.exists() && memo.exists(), "a dry run removes nothing");

    let r = gc(&store, None, None);
    assert_eq!(r.mounts.iter().map(|m| &m.0).collect::<Vec<_>>(), [&free_path]);
    assert_eq!(r.memos.len(), 1);
    assert!(!free_path.exists() && !memo.exists());
    assert!(busy.path.join("data").exists(), "a build holds it");
    // The freed mount comes back empty when asked for again.
    let again = store.cache_mount(&spec("/free")).unwrap();
    assert_eq!(again.path, free_path);
    assert!(fs::read_dir(&again.path).unwrap().next().is_none());
}
