//! The store root as an OCI layout: tags, image write/load, resolve, validate.

use std::io::Write;

use lamina_store::config::ImageConfig;
use lamina_store::image::{Parsed, media};
use lamina_store::validate::{Problem, validate};
use lamina_store::{Digest, LayerDesc, Reference, Store, StoreError};

/// A gzip "layer" holding a small tar, stored in the store.
fn put_layer(store: &Store, content: &[u8]) -> LayerDesc {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append_data(&mut h, "file", content).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let blob = gz.finish().unwrap();
    let (digest, size) = store.blobs().put_bytes(&blob).unwrap();
    LayerDesc {
        digest,
        diff_id,
        size,
        media_type: media::DOCKER_LAYER_GZIP.to_owned(),
    }
}

fn image(store: &Store, content: &[u8], cmd: &str) -> lamina_store::Image {
    let layer = put_layer(store, content);
    let mut cfg = ImageConfig::scratch();
    cfg.config_mut().cmd = Some(vec![cmd.to_owned()]);
    store.write_image(&cfg, &[layer]).unwrap()
}

#[test]
fn open_creates_layout_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for p in [
        "oci-layout",
        "index.json",
        "blobs/sha256",
        "tmp",
        "snapshots",
        "cache",
    ] {
        assert!(dir.path().join(p).exists(), "{p} missing");
    }
    for f in ["oci-layout", "index.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{f} readable by other OCI tools");
    }
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    assert!(store.tags().unwrap().is_empty());
    std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    let e = Store::open(dir.path()).unwrap_err();
    assert!(matches!(e, StoreError::LayoutVersion { .. }), "{e}");
}

#[test]
fn write_load_tag_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = image(&store, b"hello", "sh");
    // Same input, same digests.
    let again = image(&store, b"hello", "sh");
    assert_eq!(img.manifest_digest, again.manifest_digest);
    assert_eq!(
        img.layers[0].media_type,
        media::OCI_LAYER_GZIP,
        "docker layer type converted for OCI manifest"
    );
    assert!(validate(&store, &img.manifest_digest, true).is_empty());

    let loaded = store.load_image(&img.manifest_digest).unwrap();
    assert_eq!(loaded, img);

    let r = Reference::parse("busybox").unwrap();
    store.set_tag(&r, img.descriptor()).unwrap();
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "docker.io/library/busybox:latest"
    );
    let tags = store.tags().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].reference, r);

    for q in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &img.manifest_digest.to_string(),
        &img.config_digest.to_string(),
        &img.config_digest.hex()[..12],
        &img.manifest_digest.hex()[..8],
        &format!("busybox@{}", img.manifest_digest),
    ] {
        let found = store.resolve(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(found.digest(), &img.manifest_digest, "{q}");
    }
    assert!(matches!(
        store.resolve("nothere"),
        Err(StoreError::ImageNotFound(_))
    ));
    assert!(
        store.resolve(&img.layers[0].digest.to_string()).is_err(),
        "a layer is not an image"
    );

    // Retag moves the tag; untag removes it.
    let other = image(&store, b"other", "ls");
    store.set_tag(&r, other.descriptor()).unwrap();
    assert_eq!(store.tags().unwrap().len(), 1);
    assert_eq!(store.resolve("busybox").unwrap().digest(), &other.manifest_digest);
    store.untag(&r).unwrap();
    assert!(store.tags().unwrap().is_empty());
    assert!(matches!(store.untag(&r), Err(StoreError::TagNotFound(_))));
}

#[test]
fn short_names_and_ambiguity() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = image(&store, b"a", "a");
    let b = image(&store, b"b", "b");
    store
        .set_tag(&Reference::parse("localhost/app:v1").unwrap(), a.descriptor())
        .unwrap();
    assert_eq!(store.resolve("app:v1").unwrap().digest(), &a.manifest_digest);
    store
        .set_tag(&Reference::parse("quay.io/x/app:v1").unwrap(), b.descriptor())
        .unwrap();
    let e = store.resolve("app:v1").unwrap_err();
    assert!(matches!(e, StoreError::Ambiguous { .. }), "{e}");
    assert!(e.to_string().contains("localhost/app:v1"), "{e}");
}

#[test]
fn foreign_index_entries_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = image(&store, b"a", "a");
    store
        .update_index(|idx| {
            let mut d = a.descriptor();
            d.annotations
                .insert("org.opencontainers.image.ref.name".into(), "latest".into());
            idx.manifests.push(d);
            Ok(())
        })
        .unwrap();
    store
        .set_tag(&Reference::parse("x").unwrap(), a.descriptor())
        .unwrap();
    assert_eq!(store.tags().unwrap().len(), 1, "'latest' is not a lamina tag");
    assert_eq!(
        store.read_index().unwrap().manifests.len(),
        2,
        "foreign entry kept"
    );
}

#[test]
fn validate_finds_corruption_and_missing_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = image(&store, b"data", "sh");
    let layer = &img.layers[0].digest;
    std::fs::write(store.blobs().path(layer), b"garbage").unwrap();
    let p = validate(&store, &img.manifest_digest, false);
    assert!(matches!(p.as_slice(), [Problem::Corrupt { .. }]), "{p:?}");
    std::fs::remove_file(store.blobs().path(layer)).unwrap();
    let p = validate(&store, &img.manifest_digest, false);
    assert!(
        matches!(p.as_slice(), [Problem::Missing { what: "layer", .. }]),
        "{p:?}"
    );
    std::fs::remove_file(store.blobs().path(&img.config_digest)).unwrap();
    let p = validate(&store, &img.manifest_digest, false);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].to_string().contains(&img.config_digest.to_string()),
        "{}",
        p[0]
    );
}

#[test]
fn deep_validate_checks_diff_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut layer = put_layer(&store, b"x");
    layer.diff_id = Digest::sha256_of(b"not the tar");
    let img = store.write_image(&ImageConfig::scratch(), &[layer]).unwrap();
    assert!(validate(&store, &img.manifest_digest, false).is_empty());
    let p = validate(&store, &img.manifest_digest, true);
    assert!(matches!(p.as_slice(), [Problem::DiffId { .. }]), "{p:?}");
}

#[test]
fn oversized_and_schema1_manifests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let big = vec![b' '; 5 << 20];
    let (d, _) = store.blobs().put_bytes(&big).unwrap();
    let e = store.load_image(&d).unwrap_err();
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains(&d.to_string()));
    let (d, _) = store
        .blobs()
        .put_bytes(br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#)
        .unwrap();
    let e = store.load_image(&d).unwrap_err();
    assert!(e.to_string().contains("schema 1"), "{e}");
}

#[test]
fn index_resolves_to_host_platform() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = image(&store, b"p", "p");
    let mut other = image(&store, b"q", "q").descriptor();
    other.platform.as_mut().unwrap().architecture = "s390x".into();
    let idx = lamina_store::image::Index {
        manifests: vec![other, img.descriptor()],
        ..Default::default()
    };
    let (d, _) = store
        .blobs()
        .put_bytes(&lamina_store::canonical_json(&idx))
        .unwrap();
    assert!(matches!(store.read_manifest(&d, None).unwrap(), Parsed::Index(_)));
    assert_eq!(store.load_image(&d).unwrap().manifest_digest, img.manifest_digest);
}

#[test]
fn written_index_is_tagged_and_resolves_per_platform() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let host = image(&store, b"h", "h");
    let arm = image(&store, b"a", "a");
    let arm64 = lamina_store::Platform::parse("linux/arm64").unwrap();
    let entries = vec![
        host.descriptor(),
        lamina_store::Descriptor {
            platform: Some(arm64.clone()),
            ..arm.descriptor()
        },
    ];
    let index = store.write_image_index(entries).unwrap();
    assert_eq!(index.media_type, media::OCI_INDEX);
    let r = Reference::parse("localhost/multi:1").unwrap();
    store.set_tag(&r, index.clone()).unwrap();
    let found = store.resolve("localhost/multi:1").unwrap();
    assert_eq!(found.digest(), &index.digest);
    assert_eq!(
        store.load_image(&index.digest).unwrap().manifest_digest,
        host.manifest_digest
    );
    assert_eq!(
        store
            .load_image_for(&index.digest, &arm64)
            .unwrap()
            .manifest_digest,
        arm.manifest_digest
    );
    // An index never names a manifest the store lacks.
    let missing = lamina_store::Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"nope"), 4);
    assert!(matches!(
        store.write_image_index(vec![missing]),
        Err(StoreError::Missing { .. })
    ));
}

#[test]
fn concurrent_tagging_in_threads_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = image(&store, b"t", "t");
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = store.clone();
            let desc = img.descriptor();
            s.spawn(move || {
                for i in 0..10 {
                    let r = Reference::parse(&format!("t{t}:{i}")).unwrap();
                    store.set_tag(&r, desc.clone()).unwrap();
                }
            });
        }
    });
    assert_eq!(store.tags().unwrap().len(), 40);
}

#[test]
fn write_manifest_and_write_image_make_the_same_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = image(&store, b"same", "sh");
    let docker_typed: Vec<LayerDesc> = img
        .layers
        .iter()
        .map(|l| LayerDesc {
            media_type: media::DOCKER_LAYER_GZIP.to_owned(),
            ..l.clone()
        })
        .collect();
    let again = store.write_manifest(&img.config_digest, &docker_typed).unwrap();
    assert_eq!(again.manifest_digest, img.manifest_digest);
    assert_eq!(again, img);
    assert_eq!(store.load_image(&again.manifest_digest).unwrap(), again);

    // A config not in canonical form is kept byte for byte (the image ID stays docker's).
    let raw = format!(
        "{{ \"architecture\": \"amd64\", \"os\": \"linux\",\n  \"rootfs\": {{\"type\": \"layers\", \"diff_ids\": [\"{}\"]}} }}",
        img.layers[0].diff_id
    );
    let (cfg, _) = store.blobs().put_bytes(raw.as_bytes()).unwrap();
    let kept = store.write_manifest(&cfg, &docker_typed).unwrap();
    assert_eq!(kept.config_digest, cfg);
    assert_eq!(kept.manifest.config.digest, cfg);
    assert_eq!(kept.manifest.config.size, raw.len() as u64);
    assert_eq!(kept.layers[0].media_type, media::OCI_LAYER_GZIP);
    assert!(kept.manifest.annotations.is_empty());

    let ann: std::collections::BTreeMap<String, String> =
        [("org.example.k".to_owned(), "v".to_owned())].into();
    let annotated = store
        .write_image_with(&img.config, &img.layers, ann.clone())
        .unwrap();
    assert_eq!(annotated.manifest.annotations, ann);
    assert_eq!(annotated.config_digest, img.config_digest);
    assert_ne!(annotated.manifest_digest, img.manifest_digest);
    assert_eq!(store.load_image(&annotated.manifest_digest).unwrap(), annotated);
}
