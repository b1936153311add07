//! The inspect family end to end: images with known content written by the test (OCI layouts, archives, and a
//! store root), read through the `lamina` binary.

mod common;

use common::lamina;

use lamina_inspect::testutil::{TarBuilder, TestImage};
use serde_json::{Value, json};

fn base() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("etc", 0o755)
        .file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)
        .dir("var", 0o755)
        .file("var/big", &[7u8; 50_000], 0o644)
        .dir("data", 0o755)
        .file("data/x", b"x", 0o644);
    t.finish()
}

fn top() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.mtime += 1;
    t.file("etc/hosts", b"127.0.0.1 localhost lamina\n", 0o644)
        .whiteout("var/big")
        .opaque("data")
        .file("data/y", b"y", 0o600);
    t.finish()
}

fn image(layers: Vec<Vec<u8>>, env: &str) -> TestImage {
    TestImage {
        runtime: json!({"Env": [env], "Cmd": ["/bin/sh"]}),
        created_by: (0..layers.len()).map(|i| format!("RUN step {i}")).collect(),
        layers,
        created: "2024-01-01T00:00:00Z".into(),
        gzip: true,
    }
}

#[test]
fn diff_inspect_history_ls_layer_tree_analyze() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let layout = tmp.path().join("layout");
    image(vec![base()], "A=1").write_oci_layout(&layout, "a").unwrap();
    image(vec![base(), top()], "A=2")
        .write_oci_layout(&layout, "b")
        .unwrap();
    // The store root is an OCI layout; tags are normalized references.
    image(vec![base(), top()], "A=2")
        .write_oci_layout(&root, "docker.io/library/b:latest")
        .unwrap();
    let archive = tmp.path().join("b.tar");
    image(vec![base(), top()], "A=2")
        .write_docker_archive(&archive, "b:latest")
        .unwrap();
    let a = format!("oci:{}:a", layout.display());
    let b = format!("oci:{}:b", layout.display());

    // Same image: exit 0, both modes; the store copy equals the docker-archive copy.
    for extra in [&[][..], &["--semantic"][..]] {
        let mut args = vec!["diff", &b, &b];
        args.extend_from_slice(extra);
        assert_eq!(lamina(&root, &args).status.code(), Some(0));
    }
    let arch = format!("docker-archive:{}", archive.display());
    let out = lamina(&root, &["diff", "b", &arch]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Different: exit 1, JSON lists each change once.
    let out = lamina(&root, &["diff", "--semantic", "--format", "json", &a, &b]);
    assert_eq!(out.status.code(), Some(1));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<(String, String)> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("data/x", "removed"),
        ("data/y", "added"),
        ("etc/hosts", "changed"),
        ("var/big", "removed"),
    ];
    assert_eq!(files, want.map(|(p, k)| (p.to_string(), k.to_string())));
    assert_eq!(d["config"][0]["field"], "Env.A");

    // Layer vs layer; error → exit 2.
    assert_eq!(
        lamina(&root, &["diff", &format!("{b}@0"), &format!("{a}@0")])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        lamina(&root, &["diff", &format!("{b}@1"), &format!("{a}@0")])
            .status
            .code(),
        Some(1)
    );
    let out = lamina(&root, &["diff", "no-such-image", &a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-image"));

    // inspect from the store, with field formats.
    let out = lamina(
        &root,
        &["inspect", "b", "--format", "{{.Config.Cmd}} {{json .Config.Env}}"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[/bin/sh] ["A=2"]"#,
        "{out:?}"
    );
    let out = lamina(&root, &["inspect", "b"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["Layers"].as_array().unwrap().len(), 2);
    assert!(doc["Layers"][0]["Size"].as_u64().unwrap() > 0);
    assert_eq!(doc["Manifest"]["schemaVersion"], 2);
    assert_eq!(doc["RepoTags"][0], "b:latest");

    // history: newest first.
    let out = String::from_utf8(lamina(&root, &["history", "b"]).stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[1].contains("RUN step 1") && lines[2].contains("RUN step 0"),
        "{out}"
    );

    // ls-layer: whiteout and opaque deletions resolved to paths.
    let out = String::from_utf8(lamina(&root, &["ls-layer", "b@1"]).stdout).unwrap();
    assert!(
        out.lines()
            .any(|l| l.starts_with("D ") && l.contains("/var/big") && l.contains("(whiteout)")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("D ") && l.contains("/data/x") && l.contains("(opaque dir)")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("C ") && l.contains("/etc/hosts")),
        "{out}"
    );

    // tree with sizes.
    let out = String::from_utf8(lamina(&root, &["tree", &a]).stdout).unwrap();
    assert!(
        out.contains("[ 50.0 kB]  var") && out.contains("3 directories, 3 files"),
        "{out}"
    );

    // analyze: 50 kB deleted by a whiteout → wasted; thresholds set the exit status.
    let out = lamina(&root, &["analyze", "--format", "json", "b"]);
    let an: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(an["wasted_bytes"], 50_001 + 20);
    assert_eq!(
        lamina(&root, &["analyze", "b", "--highest-wasted-bytes", "1MB"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        lamina(&root, &["analyze", "b", "--highest-wasted-bytes", "10kB"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        lamina(&root, &["analyze", "b", "--lowest-efficiency", "0.95"])
            .status
            .code(),
        Some(1)
    );
}
