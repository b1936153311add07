//! Hostile archives for `import` and `load` (issue 11, item 7): layers that can never be extracted (a
//! 2 TiB size field in a small blob, a truncated tar, an oversize PAX header). Each payload is first shown
//! to pass the naive gate (Python's `tarfile` opens it as a tar stream and reads its first member, which
//! is all the hash-and-store import and load checked before: a tar header up front and a matching
//! diff_id) and to be unextractable (the same `tarfile` fails to extract it without filters); then
//! lamina must refuse it, naming the archive entry, and tag nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{lamina, ok};
use sha2::{Digest as _, Sha256};

/// One ustar header block; `size` is the raw 12-byte size field.
fn header(name: &str, size: [u8; 12], kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(&size);
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn octal_size(n: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[..11].copy_from_slice(format!("{n:011o}").as_bytes());
    f
}

/// GNU base-256: the only way to write sizes of 8 GiB and more in the 12-byte field.
fn binary_size(n: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[4..].copy_from_slice(&n.to_be_bytes());
    f[0] = 0x80;
    f
}

/// A member: header, body, padding to the block.
fn member(out: &mut Vec<u8>, name: &str, kind: u8, body: &[u8]) {
    out.extend_from_slice(&header(name, octal_size(body.len() as u64), kind));
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0u8; 1024]);
}

/// A tar whose member claims 2 TiB but carries 1 KiB.
fn huge_size_tar() -> Vec<u8> {
    let mut t = Vec::new();
    member(&mut t, "etc/ok", b'0', b"fine\n");
    t.extend_from_slice(&header("big", binary_size(2 << 40), b'0'));
    t.extend_from_slice(&[b'x'; 1024]);
    end(&mut t);
    t
}

/// A sound tar of a 100 KiB file, cut in the middle of its body.
fn truncated_tar() -> Vec<u8> {
    let mut t = Vec::new();
    member(&mut t, "etc/ok", b'0', b"fine\n");
    member(&mut t, "data", b'0', &vec![7u8; 100 << 10]);
    end(&mut t);
    t.truncate(1024 + (50 << 10));
    t
}

/// A PAX header of 2 MiB (one well-formed `comment` record) before a small file.
fn oversize_pax_tar() -> Vec<u8> {
    let value = "a".repeat(2 << 20);
    let mut rec_len = value.len() + " comment=\n".len();
    rec_len += rec_len.to_string().len();
    let record = format!("{rec_len} comment={value}\n");
    assert_eq!(record.len(), rec_len);
    let mut t = Vec::new();
    member(&mut t, "PaxHeaders/f", b'x', record.as_bytes());
    member(&mut t, "f", b'0', b"payload\n");
    end(&mut t);
    t
}

/// (Python's tarfile opens the stream and reads its first member, Python's tarfile extracts it all).
fn naive(tar: &Path, scratch: &Path) -> (bool, bool) {
    let list = Command::new("python3")
        .args([
            "-c",
            "import tarfile,sys; assert tarfile.open(sys.argv[1], 'r|').next() is not None",
        ])
        .arg(tar)
        .output()
        .unwrap();
    let dest = scratch.join("naive-extract");
    std::fs::create_dir_all(&dest).unwrap();
    let extract = Command::new("python3")
        .args([
            "-c",
            "import tarfile,sys\nt=tarfile.open(sys.argv[1])\ntry:\n t.extractall(sys.argv[2], filter='fully_trusted')\nexcept TypeError:\n t.extractall(sys.argv[2])",
        ])
        .arg(tar)
        .arg(&dest)
        .output()
        .unwrap();
    (list.status.success(), extract.status.success())
}

fn python() -> bool {
    lamina_testkit::need_tools(&["python3"])
}

fn index_names(root: &Path) -> String {
    std::fs::read_to_string(root.join("index.json")).unwrap_or_default()
}

fn check_import_refused(tar: Vec<u8>, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.tar");
    std::fs::write(&path, &tar).unwrap();
    let (listed, extracted) = naive(&path, dir.path());
    assert!(listed, "the naive gate accepts the archive");
    assert!(!extracted, "and yet it can never be extracted");
    let root = dir.path().join("store");
    // A sound import into the same store, so "nothing tagged" is measured against a working store.
    let good = dir.path().join("good.tar");
    let mut g = Vec::new();
    member(&mut g, "etc/ok", b'0', b"fine\n");
    end(&mut g);
    std::fs::write(&good, g).unwrap();
    ok(&root, &["import", good.to_str().unwrap(), "localhost/good:1"]);
    let o = lamina(&root, &["import", path.to_str().unwrap(), "localhost/hostile:1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "import of a hostile tar succeeded");
    assert!(
        err.contains("cannot be extracted") && err.contains(expect),
        "{err}"
    );
    let names = index_names(&root);
    assert!(
        names.contains("localhost/good:1") && !names.contains("hostile"),
        "{names}"
    );
}

#[test]
fn import_refuses_a_2_tib_size_field_in_a_small_blob() {
    if python() {
        check_import_refused(
            huge_size_tar(),
            "\"big\": declares 2199023255552 bytes, but the stream ends",
        );
    }
}

#[test]
fn import_refuses_a_truncated_tar() {
    if python() {
        check_import_refused(
            truncated_tar(),
            "\"data\": declares 102400 bytes, but the stream ends after",
        );
    }
}

#[test]
fn import_refuses_an_oversize_pax_header() {
    if !python() {
        return;
    }
    // Python takes a 2 MiB PAX header in its stride and extracts the file: it has no bound. The bound
    // (1 MiB, as Go's archive/tar) is what refuses it, so only the listing half of `naive` applies.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pax.tar");
    std::fs::write(&path, oversize_pax_tar()).unwrap();
    let (listed, extracted) = naive(&path, dir.path());
    assert!(listed && extracted, "the naive reader accepts a 2 MiB PAX header");
    let root = dir.path().join("store");
    let o = lamina(&root, &["import", path.to_str().unwrap(), "localhost/hostile:1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("PAX header of 2097169 bytes is larger than the 1048576-byte limit"),
        "{err}"
    );
    assert!(!index_names(&root).contains("hostile"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    out.stdout
}

/// A docker-archive of two images: `localhost/good:1` with a sound layer and `localhost/bad:1` with
/// `bad_layer` (stored under `bad/layer.tar`), each config's diff_id honest about its layer's bytes, so
/// only a structural check of the layer can tell.
fn docker_archive(bad_layer: &[u8], bad_diff_id: &[u8]) -> Vec<u8> {
    let mut good_layer = Vec::new();
    member(&mut good_layer, "etc/ok", b'0', b"fine\n");
    end(&mut good_layer);
    let config = |diff: &[u8]| {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex::encode(Sha256::digest(diff)))]},
        }))
        .unwrap()
    };
    let (gc, bc) = (config(&good_layer), config(bad_diff_id));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "good.json", "RepoTags": ["localhost/good:1"], "Layers": ["good/layer.tar"]},
        {"Config": "bad.json", "RepoTags": ["localhost/bad:1"], "Layers": ["bad/layer.tar"]},
    ]))
    .unwrap();
    let mut t = Vec::new();
    member(&mut t, "good.json", b'0', &gc);
    member(&mut t, "good/layer.tar", b'0', &good_layer);
    member(&mut t, "bad.json", b'0', &bc);
    member(&mut t, "bad/layer.tar", b'0', bad_layer);
    member(&mut t, "manifest.json", b'0', &manifest);
    end(&mut t);
    t
}

fn check_load_refused(archive: Vec<u8>, layer_tar: &[u8], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer.tar");
    std::fs::write(&layer, layer_tar).unwrap();
    let (listed, extracted) = naive(&layer, dir.path());
    assert!(
        listed && !extracted,
        "the naive reader lists the layer it cannot extract"
    );
    let path = dir.path().join("archive.tar");
    std::fs::write(&path, archive).unwrap();
    let root = dir.path().join("store");
    let o = lamina(&root, &["load", "-i", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "load of a hostile archive succeeded");
    assert!(
        err.contains("layer bad/layer.tar cannot be extracted") && err.contains(expect),
        "{err}"
    );
    // Not even the sound image before it: nothing is tagged until every image verified.
    let names = index_names(&root);
    assert!(
        !names.contains("localhost/good") && !names.contains("localhost/bad"),
        "{names}"
    );
}

#[test]
fn load_tags_nothing_when_an_uncompressed_layer_is_truncated() {
    if python() {
        let bad = truncated_tar();
        check_load_refused(
            docker_archive(&bad, &bad),
            &bad,
            "\"data\": declares 102400 bytes",
        );
    }
}

#[test]
fn load_tags_nothing_when_a_compressed_layer_has_a_2_tib_size_field() {
    if !python() || !lamina_testkit::need_tools(&["gzip"]) {
        return;
    }
    let bad = huge_size_tar();
    check_load_refused(
        docker_archive(&gzip(&bad), &bad),
        &bad,
        "\"big\": declares 2199023255552 bytes",
    );
}
