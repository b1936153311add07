//! Interop: what `lamina push` writes to a real `docker-registry`, `podman pull` reads back to the same
//! file tree that `lamina unpack` produces — directories, modes, symlinks, hard links, whiteouts and
//! opaque directories included.

mod registry_support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use registry_support::*;

enum Entry<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, Vec<u8>),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn layer_of(entries: &[Entry<'_>]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Entry::Symlink(p, target) | Entry::Hardlink(p, target) => {
                h.set_entry_type(if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                // Tar writers record a hard link with its target's mode (docker and podman chmod the
                // shared inode to the link entry's mode, lamina keeps the target's; real tars agree).
                h.set_mode(if matches!(e, Entry::Symlink(..)) {
                    0o777
                } else {
                    0o755
                });
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    Layer {
        diff_id: format!("sha256:{}", sha256_hex(&tar)),
        gz: gz.finish().unwrap(),
    }
}

/// path → "type mode size sha256" (files), "d mode" (dirs), "l target" (symlinks), root excluded.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&path).unwrap();
            let mode = md.permissions().mode() & 0o7777;
            let ft = md.file_type();
            let desc = if ft.is_symlink() {
                format!("l {}", std::fs::read_link(&path).unwrap().display())
            } else if ft.is_dir() {
                walk(root, &path, out);
                format!("d {mode:o}")
            } else if ft.is_file() {
                let data = std::fs::read(&path).unwrap();
                format!("f {mode:o} {} {}", md.size(), sha256_hex(&data))
            } else {
                format!("other {mode:o} {:o}", md.mode())
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"));
        c
    }
}

#[test]
fn podman_pulls_the_same_tree_lamina_pushed() {
    if !have("podman") {
        lamina_testkit::skip("podman is not installed (apt-get install podman)");
        return;
    }
    let Some(reg) = Registry::start("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let busybox = std::fs::read("/usr/bin/busybox").unwrap_or_else(|_| noise(3, 1 << 20));
    let l1 = layer_of(&[
        Entry::Dir("bin", 0o755),
        Entry::File("bin/busybox", 0o755, busybox),
        Entry::Symlink("bin/sh", "busybox"),
        Entry::Hardlink("bin/ls", "bin/busybox"),
        Entry::Dir("etc", 0o755),
        Entry::File("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n".to_vec()),
        Entry::File("etc/shadow", 0o600, b"root:*:19000::::::\n".to_vec()),
        Entry::File("etc/gone", 0o644, b"deleted in layer 2\n".to_vec()),
        Entry::Dir("data", 0o700),
        Entry::File("data/big.bin", 0o644, noise(9, 3 << 20)),
        Entry::Dir("opaque", 0o755),
        Entry::File("opaque/old", 0o644, b"hidden by the opaque marker\n".to_vec()),
        Entry::Dir("tmp", 0o1777),
        Entry::File("usr-setuid", 0o4755, b"#!/bin/sh\n".to_vec()),
    ]);
    let l2 = layer_of(&[
        Entry::Dir("etc", 0o755),
        Entry::File("etc/.wh.gone", 0o644, Vec::new()),
        Entry::File(
            "etc/passwd",
            0o640,
            b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n".to_vec(),
        ),
        Entry::Dir("opaque", 0o750),
        Entry::File("opaque/.wh..wh..opq", 0o644, Vec::new()),
        Entry::File("opaque/new", 0o644, b"new\n".to_vec()),
        Entry::Dir("usr", 0o755),
        Entry::Dir("usr/local", 0o755),
        Entry::Dir("usr/local/bin", 0o755),
        Entry::Symlink("usr/local/bin/abs", "/bin/busybox"),
        Entry::File("usr/local/bin/tool", 0o750, noise(4, 70_000)),
    ]);
    let layout = tmp.path().join("layout");
    let (md, size) = image_blobs(&layout, "amd64", &[l1, l2]);
    write_index(
        &layout,
        &[
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": size, "annotations": {"org.opencontainers.image.ref.name": "v1"}}),
        ],
    );
    let archive = tmp.path().join("img.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    b.append_dir_all(".", &layout).unwrap();
    b.finish().unwrap();
    let store = tmp.path().join("store");
    let lam = || {
        let mut c = lamina();
        c.arg("--root").arg(&store);
        c
    };
    ok(
        &lam()
            .args(["load", "--name", "localhost/interop", "-i"])
            .arg(&archive)
            .output()
            .unwrap(),
        "lamina load",
    );
    let dest = format!("{}/interop/img:v1", reg.host());
    // Chunked, so podman also reads what the chunked flow assembled.
    ok(
        &lam()
            .args(["push", "--progress", "plain", "localhost/interop:v1", &dest])
            .env("LAMINA_PUSH_MODE", "chunked")
            .env("LAMINA_PUSH_CHUNK_SIZE", "1M")
            .output()
            .unwrap(),
        "lamina push",
    );
    let ours = tmp.path().join("ours");
    ok(
        &lam()
            .args(["unpack", "localhost/interop:v1"])
            .arg(&ours)
            .output()
            .unwrap(),
        "lamina unpack",
    );

    let podman = Podman {
        dir: tmp.path().join("podman"),
    };
    // No credentials of the machine's user leak into the test.
    std::fs::create_dir_all(&podman.dir).unwrap();
    std::fs::write(podman.dir.join("auth.json"), "{}").unwrap();
    ok(
        &podman
            .cmd()
            .args(["pull", "--quiet", "--tls-verify=false", &dest])
            .output()
            .unwrap(),
        "podman pull",
    );
    let mnt = ok(
        &podman.cmd().args(["image", "mount", &dest]).output().unwrap(),
        "podman image mount",
    );
    let theirs = tree(Path::new(mnt.trim()));
    let mine = tree(&ours);
    let _ = podman.cmd().args(["image", "unmount", &dest]).output();

    assert_eq!(
        theirs.get("etc/passwd").map(String::as_str),
        mine.get("etc/passwd").map(String::as_str)
    );
    assert!(
        !mine.contains_key("etc/gone") && !mine.contains_key("opaque/old"),
        "{mine:#?}"
    );
    assert!(mine.contains_key("data/big.bin"), "{mine:#?}");
    let diff: Vec<_> = theirs
        .keys()
        .chain(mine.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| theirs.get(*k) != mine.get(*k))
        .map(|k| format!("{k}: podman {:?} lamina {:?}", theirs.get(k), mine.get(k)))
        .collect();
    assert!(
        diff.is_empty(),
        "podman and lamina disagree:\n{}",
        diff.join("\n")
    );
}
