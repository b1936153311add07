//! The store commands end to end: import, images, tag, rmi, fsck, prune, save/load round trips.

mod common;

use std::path::Path;

use common::{busybox_rootfs_tar, images, lamina, ok};

fn imported(dir: &Path, name: &str) -> Option<(std::path::PathBuf, String)> {
    let tar = busybox_rootfs_tar(dir)?;
    let root = dir.join("store");
    let id = ok(
        &root,
        &["import", tar.to_str().unwrap(), name, "--change", r#"CMD ["sh"]"#],
    );
    Some((root, id.trim().to_owned()))
}

#[test]
fn import_images_tag_rmi() {
    let dir = tempfile::tempdir().unwrap();
    let Some((root, id)) = imported(dir.path(), "bb") else {
        return;
    };
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let list = images(&root);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["Repository"], "bb");
    assert_eq!(list[0]["Tag"], "latest");
    assert_eq!(list[0]["ID"], id.as_str());

    // The table has docker's columns and the short ID.
    let table = ok(&root, &["ls"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    assert!(table.contains(&id[7..19]), "{table}");

    ok(&root, &["tag", &id[7..19], "localhost:5000/app:v1"]);
    ok(&root, &["tag", "bb", "other"]);
    assert_eq!(images(&root).len(), 3);
    assert_eq!(
        ok(&root, &["images", "-q"]).lines().count(),
        1,
        "one image, three names"
    );
    assert_eq!(
        ok(&root, &["images", "localhost:5000/app", "--format", "json"])
            .matches("\"Tag\"")
            .count(),
        1
    );

    let out = lamina(&root, &["rmi", &id]);
    assert_eq!(out.status.code(), Some(1), "an ID with several tags needs -f");
    assert_eq!(ok(&root, &["rmi", "other"]).trim(), "Untagged: other:latest");
    let out = lamina(&root, &["rmi", "nonexistent", "bb"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent"));
    assert_eq!(
        images(&root).len(),
        1,
        "bb untagged despite the failing first argument"
    );
    ok(&root, &["rmi", "-f", &id]);
    assert!(images(&root).is_empty());

    let out = lamina(&root, &["tag", "nothere", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothere"));
}

#[test]
fn import_applies_changes_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tar) = busybox_rootfs_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("store");
    ok(
        &root,
        &[
            "import",
            tar.to_str().unwrap(),
            "app:1",
            "-c",
            "ENV A=1",
            "-c",
            "WORKDIR /srv",
            "-c",
            "ENTRYPOINT [\"/bin/sh\"]",
        ],
    );
    let store = lamina_store::Store::open(&root).unwrap();
    let img = store
        .load_image(store.resolve("app:1").unwrap().digest())
        .unwrap();
    let cc = img.config.config.as_ref().unwrap();
    assert_eq!(cc.env, ["A=1"]);
    assert_eq!(cc.working_dir.as_deref(), Some("/srv"));
    assert_eq!(cc.entrypoint.as_deref(), Some(&["/bin/sh".to_owned()][..]));
    assert_eq!(img.layers.len(), 1);
    assert!(lamina_store::validate::validate(&store, &img.manifest_digest, true).is_empty());

    let out = lamina(
        &root,
        &["import", tar.to_str().unwrap(), "x", "--change", "RUN rm -rf /"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUN"));
    let notar = dir.path().join("notar");
    std::fs::write(&notar, vec![b'x'; 4096]).unwrap();
    let out = lamina(&root, &["import", notar.to_str().unwrap(), "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tar"));
}

#[test]
fn fsck_finds_corruption_and_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let Some((root, _)) = imported(dir.path(), "bb") else {
        return;
    };
    ok(&root, &["fsck"]);
    let store = lamina_store::Store::open(&root).unwrap();
    let img = store.load_image(store.resolve("bb").unwrap().digest()).unwrap();
    let layer = img.layers[0].digest.clone();
    let path = store.blobs().path(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let out = lamina(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("corrupt blob {layer}")), "{stdout}");
    assert!(
        stdout.contains("docker.io/library/bb:latest"),
        "names the image: {stdout}"
    );
    assert!(path.exists(), "fsck without --repair changes nothing");

    let out = lamina(&root, &["fsck", "--repair", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["removed"][0], layer.to_string());
    assert!(!path.exists());

    let out = lamina(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1), "the image now misses its layer");
    assert!(String::from_utf8_lossy(&out.stdout).contains("is missing"));
    ok(&root, &["rmi", "bb"]);
    ok(&root, &["prune"]);
    ok(&root, &["fsck"]);
}

/// `fsck --repair` drops the index entries whose manifest is gone or corrupt (every tag of it, and says
/// which), keeps the intact images, and leaves a store that checks clean.
#[test]
fn fsck_repair_untags_images_whose_manifest_is_missing_or_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let Some((root, _)) = imported(dir.path(), "gone") else {
        return;
    };
    let tar = dir.path().join("rootfs.tar");
    let t = tar.to_str().unwrap();
    ok(&root, &["tag", "gone", "gone2"]);
    ok(&root, &["import", t, "bad", "--change", "CMD [\"ls\"]"]);
    ok(&root, &["import", t, "fine", "--change", "CMD [\"true\"]"]);
    let store = lamina_store::Store::open(&root).unwrap();
    let manifest = |name: &str| store.resolve(name).unwrap().digest().clone();
    let (gone, bad) = (manifest("gone"), manifest("bad"));
    std::fs::remove_file(store.blobs().path(&gone)).unwrap();
    std::fs::write(store.blobs().path(&bad), b"{\"not\": \"the manifest\"}").unwrap();

    let out = lamina(&root, &["fsck", "--repair"]);
    assert_eq!(out.status.code(), Some(1), "problems were found");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, digest, reason) in [
        ("gone", &gone, "missing"),
        ("gone2", &gone, "missing"),
        ("bad", &bad, "corrupt"),
    ] {
        let line = format!("untagged docker.io/library/{name}:latest (manifest {digest} {reason})");
        assert!(stdout.contains(&line), "{line:?} not in:\n{stdout}");
    }
    let left: Vec<String> = images(&root)
        .iter()
        .map(|i| i["Repository"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["fine"]);
    ok(&root, &["fsck"]);
    let out = lamina(&root, &["fsck", "--repair", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["untagged"],
        serde_json::json!([]),
        "nothing more to repair"
    );
}

#[test]
fn prune_removes_only_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let Some((root, _)) = imported(dir.path(), "keep") else {
        return;
    };
    let tar = dir.path().join("rootfs.tar");
    ok(
        &root,
        &["import", tar.to_str().unwrap(), "drop", "-c", "CMD [\"ls\"]"],
    );
    ok(&root, &["rmi", "drop"]);
    std::fs::write(root.join("tmp/blob-leftover"), b"partial").unwrap();
    std::fs::create_dir_all(root.join("tmp/staging-x/sub")).unwrap();
    let store = lamina_store::Store::open(&root).unwrap();
    let before = store.blobs().list().unwrap().len();

    let dry = ok(&root, &["prune", "--dry-run", "--format", "json"]);
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(
        store.blobs().list().unwrap().len(),
        before,
        "dry run deletes nothing"
    );
    // The dropped image shares its layer with `keep`: only its config and manifest go.
    assert_eq!(dry["blobs"].as_array().unwrap().len(), 2, "{dry}");
    assert_eq!(dry["tmp"].as_array().unwrap().len(), 2);

    let out = ok(&root, &["prune"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(store.blobs().list().unwrap().len(), before - 2);
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    ok(&root, &["fsck"]);
    let img = store.resolve("keep").unwrap();
    assert!(lamina_store::validate::validate(&store, img.digest(), true).is_empty());
}

#[test]
fn save_load_round_trips_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let Some((root, id)) = imported(dir.path(), "localhost/bb:1") else {
        return;
    };
    let store = lamina_store::Store::open(&root).unwrap();
    let manifest = store.resolve("localhost/bb:1").unwrap().digest().clone();
    for format in ["docker", "oci"] {
        let archive = dir.path().join(format!("{format}.tar"));
        ok(
            &root,
            &[
                "save",
                "localhost/bb:1",
                "-o",
                archive.to_str().unwrap(),
                "--format",
                format,
            ],
        );
        let other = dir.path().join(format!("other-{format}"));
        let out = ok(&other, &["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out.trim(), "Loaded image: localhost/bb:1", "{format}");
        let list = images(&other);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["ID"], id.as_str(), "{format}: image ID survives");
        if format == "oci" {
            assert_eq!(list[0]["Digest"], manifest.to_string(), "OCI keeps the manifest");
        }
        let s = lamina_store::Store::open(&other).unwrap();
        let d = s.resolve("localhost/bb:1").unwrap();
        assert!(lamina_store::validate::validate(&s, d.digest(), true).is_empty());
        ok(&other, &["fsck"]);
    }
}

#[test]
fn load_refuses_layers_that_do_not_match_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let Some((root, _)) = imported(dir.path(), "bb") else {
        return;
    };
    let good = dir.path().join("good.tar");
    ok(&root, &["save", "bb", "-o", good.to_str().unwrap()]);
    // Rewrite the archive with one byte of the layer changed: the diff_id no longer matches. The byte is
    // in the middle, inside busybox's body: a changed tar header is refused earlier, by the tar check.
    let bad = dir.path().join("bad.tar");
    let mut ar = tar::Archive::new(std::fs::File::open(&good).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(&bad).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if path.to_string_lossy().ends_with("layer.tar") {
            let n = data.len() / 2;
            data[n] ^= 1;
        }
        out.append_data(&mut h, &path, &data[..]).unwrap();
    }
    out.into_inner().unwrap();
    let other = dir.path().join("other");
    let res = lamina(&other, &["load", "-i", bad.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("diff_id") && err.contains("layer.tar"), "{err}");
    assert!(images(&other).is_empty(), "nothing tagged");

    let junk = dir.path().join("junk.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&junk).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    b.append_data(&mut h, "hello.txt", &b"hi\n"[..]).unwrap();
    b.into_inner().unwrap();
    let res = lamina(&other, &["load", "-i", junk.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("neither an OCI archive"));
}

#[test]
fn skopeo_reads_the_store() {
    if !common::have("skopeo") {
        lamina_testkit::skip("skopeo not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((root, _)) = imported(dir.path(), "localhost:5000/bb:v1") else {
        return;
    };
    let out = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:localhost:5000/bb:v1", root.display())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let store = lamina_store::Store::open(&root).unwrap();
    assert_eq!(
        v["Digest"],
        store
            .resolve("localhost:5000/bb:v1")
            .unwrap()
            .digest()
            .to_string()
    );
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
}
