//! Archives against real peers: what lamina saves, skopeo and umoci read; what skopeo writes, lamina loads,
//! and `lamina unpack` gives the same file tree as `umoci unpack`. Skips (with a reason) without skopeo/umoci.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{busybox_rootfs_tar, is_root, ok};
use sha2::Digest as _;

fn tools() -> bool {
    for t in ["skopeo", "umoci"] {
        if !common::have(t) {
            lamina_testkit::skip(&format!("{t} not installed"));
            return false;
        }
    }
    true
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// path → (type, mode, uid, gid, size, content sha256, link target): what must agree between unpackers.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = m.file_type();
            let (kind, extra) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", String::new())
            } else if ft.is_symlink() {
                ("symlink", std::fs::read_link(&p).unwrap().display().to_string())
            } else if ft.is_file() {
                (
                    "file",
                    hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())),
                )
            } else {
                ("other", String::new())
            };
            let size = if ft.is_file() { m.len() } else { 0 };
            out.insert(
                rel,
                format!(
                    "{kind} {:o} {}:{} {size} {extra}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    out
}

fn assert_same_tree(lamina: &Path, umoci: &Path) {
    let a = tree(lamina);
    let b = tree(umoci);
    assert!(a.len() > 5, "suspiciously small tree: {a:?}");
    for (k, v) in &b {
        assert_eq!(a.get(k), Some(v), "{k} differs (lamina vs umoci)");
    }
    let extra: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    assert!(extra.is_empty(), "only in lamina's unpack: {extra:?}");
}

fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> std::path::PathBuf {
    let image = format!("{}:{tag}", layout.display());
    let mut args = vec!["unpack", "--image", &image];
    let rootless = !is_root();
    if rootless {
        args.push("--rootless");
    }
    let b = bundle.to_str().unwrap();
    args.push(b);
    run("umoci", &args);
    bundle.join("rootfs")
}

fn extract(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    run(
        "tar",
        &["-xf", archive.to_str().unwrap(), "-C", dest.to_str().unwrap()],
    );
}

#[test]
fn lamina_archives_are_read_by_skopeo_and_umoci() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(rootfs) = busybox_rootfs_tar(d) else {
        return;
    };
    let root = d.join("store");
    ok(
        &root,
        &[
            "import",
            rootfs.to_str().unwrap(),
            "localhost/bb:1",
            "-c",
            "CMD [\"sh\"]",
        ],
    );
    ok(
        &root,
        &[
            "unpack",
            "localhost/bb:1",
            d.join("lamina-rootfs").to_str().unwrap(),
        ],
    );

    // docker-archive → skopeo copy (selecting the image by its RepoTag) → OCI layout → umoci unpack.
    let docker = d.join("docker.tar");
    ok(&root, &["save", "localhost/bb:1", "-o", docker.to_str().unwrap()]);
    run(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", docker.display())],
    );
    let layout = d.join("from-docker");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("docker-archive:{}:localhost/bb:1", docker.display()),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let r = umoci_unpack(&layout, "x", &d.join("bundle-docker"));
    assert_same_tree(&d.join("lamina-rootfs"), &r);

    // OCI archive → skopeo inspect oci-archive: and umoci unpack of the extracted layout.
    let oci = d.join("oci.tar");
    ok(
        &root,
        &[
            "save",
            "localhost/bb:1",
            "-o",
            oci.to_str().unwrap(),
            "--format",
            "oci",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", oci.display())],
    ))
    .unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    let extracted = d.join("oci-extracted");
    extract(&oci, &extracted);
    let r = umoci_unpack(&extracted, "1", &d.join("bundle-oci"));
    assert_same_tree(&d.join("lamina-rootfs"), &r);

    // `unpack -o` gives the same tree as a tar stream.
    let flat = d.join("flat.tar");
    ok(&root, &["unpack", "localhost/bb:1", "-o", flat.to_str().unwrap()]);
    extract(&flat, &d.join("flat"));
    assert_same_tree(&d.join("flat"), &d.join("lamina-rootfs"));
}

#[test]
fn skopeo_archives_load_and_unpack_like_umoci() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(rootfs) = busybox_rootfs_tar(d) else {
        return;
    };
    let root = d.join("store");
    ok(
        &root,
        &[
            "import",
            rootfs.to_str().unwrap(),
            "localhost/src:1",
            "-c",
            "ENV A=1",
        ],
    );
    // skopeo reads lamina's store directly and writes both archive formats.
    let src = format!("oci:{}:localhost/src:1", root.display());
    let oci = d.join("skopeo-oci.tar");
    let docker = d.join("skopeo-docker.tar");
    run(
        "skopeo",
        &["copy", "-q", &src, &format!("oci-archive:{}:v2", oci.display())],
    );
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &src,
            &format!("docker-archive:{}:example.com/app:v2", docker.display()),
        ],
    );
    let extracted = d.join("skopeo-oci");
    extract(&oci, &extracted);
    let reference = umoci_unpack(&extracted, "v2", &d.join("bundle"));

    let s1 = d.join("s1");
    let out = ok(&s1, &["load", "-i", docker.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: example.com/app:v2");
    ok(
        &s1,
        &["unpack", "example.com/app:v2", d.join("u1").to_str().unwrap()],
    );
    assert_same_tree(&d.join("u1"), &reference);

    let s2 = d.join("s2");
    let out = ok(
        &s2,
        &["load", "-i", oci.to_str().unwrap(), "--name", "localhost/app"],
    );
    assert_eq!(out.trim(), "Loaded image: localhost/app:v2");
    ok(
        &s2,
        &["unpack", "localhost/app:v2", d.join("u2").to_str().unwrap()],
    );
    assert_same_tree(&d.join("u2"), &reference);
    for s in [&s1, &s2] {
        ok(s, &["fsck", "--deep"]);
    }
    // The config (ENV) survived both round trips.
    let store = lamina_store::Store::open(&s1).unwrap();
    let img = store
        .load_image(store.resolve("example.com/app:v2").unwrap().digest())
        .unwrap();
    assert_eq!(img.config.config.unwrap().env, ["A=1"]);
}
