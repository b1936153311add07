//! Images by ID and stable IDs: an untagged build is addressable by the ID `build -q` prints (or a prefix of
//! it), cached rebuilds print the same ID, and SOURCE_DATE_EPOCH builds give one digest cached or not.
//! The base is the host's busybox imported as an image, so nothing needs a registry; RUN steps need root.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{busybox_rootfs_tar, is_root, lamina, lamina_bin, ok};

/// A store with the busybox base imported as `base`, and a context dir holding `dockerfile`.
fn setup(dir: &Path, dockerfile: &str) -> Option<(PathBuf, PathBuf)> {
    let tar = busybox_rootfs_tar(dir)?;
    let root = dir.join("store");
    ok(&root, &["import", tar.to_str().unwrap(), "base"]);
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    Some((root, ctx))
}

/// `lamina build -q` → the printed image ID.
fn build_id(root: &Path, ctx: &Path, extra: &[&str]) -> String {
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(["build", "-q", "--network", "none"])
        .args(extra)
        .arg(ctx)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "not an image ID: {id:?}"
    );
    id
}

fn dockerfile() -> &'static str {
    if is_root() {
        "FROM base\nENV A=1\nCOPY a.txt /a.txt\nLABEL l=v\nRUN echo ran > /ran\nCMD [\"cat\", \"/ran\"]\n"
    } else {
        "FROM base\nENV A=1\nCOPY a.txt /a.txt\nLABEL l=v\nCMD [\"cat\", \"/a.txt\"]\n"
    }
}

#[test]
fn untagged_build_is_addressable_by_id_and_prefix() {
    let t = tempfile::tempdir().unwrap();
    let Some((root, ctx)) = setup(t.path(), dockerfile()) else {
        return;
    };
    let id = build_id(&root, &ctx, &[]);
    let hex = &id["sha256:".len()..];

    let dangling = ok(
        &root,
        &["images", "--filter", "dangling=true", "-q", "--no-trunc"],
    );
    assert_eq!(
        dangling.trim(),
        id,
        "the untagged build is the one dangling image"
    );
    let listed = ok(&root, &["images", "-a"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("<none>") && l.contains(&hex[..12])),
        "{listed}"
    );
    // Full ID with and without `sha256:`, and a unique prefix, in inspect and history.
    for q in [id.as_str(), hex, &hex[..10]] {
        let got = ok(&root, &["inspect", "--format", "{{.Id}}", q]);
        assert_eq!(got.trim(), id, "inspect {q}");
        assert!(ok(&root, &["history", q]).contains("COPY a.txt"), "history {q}");
    }
    if is_root() {
        let out = lamina(&root, &["run", "--rm", "--network", "none", &hex[..12]]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ran");
    } else {
        lamina_testkit::skip("run needs root");
    }
    ok(&root, &["tag", &hex[..8], "app:v1"]);
    assert_eq!(ok(&root, &["images", "-q", "app:v1"]).trim(), &hex[..12]);
    assert!(
        ok(&root, &["images", "--filter", "dangling=true", "-q"])
            .trim()
            .is_empty(),
        "tagged now, no longer dangling"
    );
    // rmi by ID: every tag goes, then the image itself.
    let rmi = ok(&root, &["rmi", &hex[..12]]);
    assert_eq!(
        rmi.lines().collect::<Vec<_>>(),
        ["Untagged: app:v1", &format!("Deleted: {id}")]
    );
    let out = lamina(&root, &["inspect", &id]);
    assert!(!out.status.success(), "removed image still found");

    // A dangling image removed by ID.
    let again = build_id(&root, &ctx, &["--label", "other=1"]);
    assert_eq!(ok(&root, &["rmi", &again]).trim(), format!("Deleted: {again}"));
}

#[test]
fn cached_rebuild_gives_the_same_id() {
    let t = tempfile::tempdir().unwrap();
    let Some((root, ctx)) = setup(t.path(), dockerfile()) else {
        return;
    };
    let first = build_id(&root, &ctx, &[]);
    // Past the second boundary: any time taken from the clock would differ.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let meta = t.path().join("metadata.json");
    let second = build_id(
        &root,
        &ctx,
        &["-t", "app:meta", "--metadata-file", meta.to_str().unwrap()],
    );
    assert_eq!(
        first, second,
        "a fully cached rebuild must reproduce the image ID"
    );
    // buildx's metadata file.
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.config.digest"], second.as_str());
    assert_eq!(m["image.name"], "docker.io/library/app:meta");
    let digest = m["containerimage.digest"].as_str().unwrap();
    assert_eq!(m["containerimage.descriptor"]["digest"], digest);
    let inspected = ok(&root, &["inspect", "--format", "{{.Digest}}", "app:meta"]);
    assert_eq!(inspected.trim(), digest);
    let created = |id: &str| ok(&root, &["inspect", "--format", "{{.Created}}", id]);
    assert_eq!(created(&first), created(&second));
    // A real change still gives a new ID.
    std::fs::write(ctx.join("a.txt"), "b\n").unwrap();
    assert_ne!(build_id(&root, &ctx, &[]), first);
}

#[test]
fn source_date_epoch_is_part_of_the_cache_key() {
    let t = tempfile::tempdir().unwrap();
    let Some((root, ctx)) = setup(t.path(), dockerfile()) else {
        return;
    };
    // Cache records made without an epoch must not be reused under one.
    build_id(&root, &ctx, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let epoch = ["--source-date-epoch", "1700000000"];
    let cached_or_not = build_id(&root, &ctx, &epoch);
    let cached = build_id(&root, &ctx, &epoch);
    let mut uncached_args = epoch.to_vec();
    uncached_args.push("--no-cache");
    let uncached = build_id(&root, &ctx, &uncached_args);
    assert_eq!(cached_or_not, cached);
    assert_eq!(
        cached, uncached,
        "cached and uncached builds under one epoch differ"
    );
    let created = ok(&root, &["inspect", "--format", "{{.Created}}", &cached]);
    assert_eq!(created.trim(), "2023-11-14T22:13:20Z");
}
