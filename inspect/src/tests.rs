//! Image-level tests: images with known content written by the tests as OCI layouts and archives, compared,
//! analyzed, checked against goldens in testdata/inspect/ and against umoci's unpacked trees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::analyze::{AnalyzeOptions, analyze};
use super::diff::{DiffKind, DiffOptions, diff_images, flatten_image};
use super::entry::{Field, Kind};
use super::source::ImageView;
use super::testutil::{TarBuilder, TestImage};

pub(crate) fn base_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("bin", 0o755)
        .file("bin/busybox", &[0xbb; 3000], 0o755)
        .hardlink("bin/sh", "bin/busybox")
        .symlink("bin/ls", "busybox")
        .dir("dev", 0o755)
        .char_dev("dev/null", 1, 3)
        .fifo("dev/fifo")
        .dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        .file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)
        .file_owned("etc/owned", b"mine\n", 0o640, 1000, 1000)
        .dir("opt", 0o755)
        .file("opt/thing", b"a file that becomes a dir", 0o644)
        .dir("srv", 0o755)
        .file("srv/index.html", &[b'h'; 2000], 0o644)
        .dir("usr", 0o755)
        .dir("usr/share", 0o755)
        .dir("usr/share/doc", 0o755)
        .file("usr/share/doc/old", &[b'd'; 500], 0o644)
        .dir("var", 0o755)
        .dir("var/lib", 0o755)
        .dir("var/lib/data", 0o755)
        .file("var/lib/data/a", &[b'a'; 700], 0o644)
        .file("var/lib/data/b", b"keep", 0o644);
    t.finish()
}

/// One of every kind of change over [`base_layer`].
pub(crate) fn change_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.mtime += 100;
    t.symlink("bin/ls", "/bin/busybox")
        .file("etc/hosts", b"127.0.0.1 localhost lamina\n", 0o644)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o600)
        .file_owned("etc/owned", b"mine\n", 0o640, 1001, 1000)
        .file("etc/new", b"new file\n", 0o644)
        .dir("opt/thing", 0o755)
        .file("opt/thing/inside", b"inside", 0o644)
        .file("srv", &[b's'; 10], 0o644)
        .opaque("usr/share/doc")
        .file("usr/share/doc/new", b"fresh", 0o644)
        .whiteout("var/lib/data/a")
        .file("new/deep/file", &[b'n'; 300], 0o644);
    t.finish()
}

pub(crate) fn image(layers: Vec<Vec<u8>>) -> TestImage {
    let n = layers.len();
    TestImage {
        layers,
        runtime: json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]}),
        created_by: (0..n).map(|i| format!("step {i}")).collect(),
        created: "2024-01-01T00:00:00Z".into(),
        gzip: true,
    }
}

fn layout_with(images: &[(&str, TestImage)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, img) in images {
        img.write_oci_layout(dir.path(), name).unwrap();
    }
    dir
}

fn open(dir: &Path, name: &str) -> ImageView {
    ImageView::open_oci_layout(dir, Some(name)).unwrap()
}

fn semantic() -> DiffOptions {
    DiffOptions {
        semantic: true,
        threads: 2,
    }
}

#[test]
fn diff_with_itself_is_empty() {
    let dir = layout_with(&[("a", image(vec![base_layer(), change_layer()]))]);
    let a = open(dir.path(), "a");
    for opts in [DiffOptions::default(), semantic()] {
        let d = diff_images(&a, &a, opts).unwrap();
        assert!(d.is_empty(), "{d:#?}");
    }
}

#[test]
fn semantic_diff_reports_each_change_once() {
    let dir = layout_with(&[
        ("a", image(vec![base_layer()])),
        ("b", image(vec![base_layer(), change_layer()])),
    ]);
    let d = diff_images(&open(dir.path(), "a"), &open(dir.path(), "b"), semantic()).unwrap();
    let got: Vec<(&str, DiffKind, Vec<Field>)> = d
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.kind, f.fields.clone()))
        .collect();
    use DiffKind::*;
    use Field::*;
    assert_eq!(
        got,
        vec![
            ("bin/ls", Changed, vec![Link]),
            ("etc/hosts", Changed, vec![Content, Size]),
            ("etc/new", Added, vec![]),
            ("etc/owned", Changed, vec![Owner]),
            ("etc/passwd", Changed, vec![Mode]),
            ("new", Added, vec![]),
            ("new/deep", Added, vec![]),
            ("new/deep/file", Added, vec![]),
            ("opt/thing", Changed, vec![Type, Content, Size, Mode]),
            ("opt/thing/inside", Added, vec![]),
            ("srv", Changed, vec![Type, Content, Size, Mode]),
            ("srv/index.html", Removed, vec![]),
            ("usr/share/doc/new", Added, vec![]),
            ("usr/share/doc/old", Removed, vec![]),
            ("var/lib/data/a", Removed, vec![]),
        ]
    );
    // Config: only history-free fields count in semantic mode, and the runtime config is equal.
    assert!(d.config.is_empty(), "{:?}", d.config);
}

#[test]
fn semantic_ignores_layer_boundaries_strict_does_not() {
    // B squashed into one layer with the same final content (same mtimes) as the two layers of B.
    let dir = layout_with(&[("b", image(vec![base_layer(), change_layer()]))]);
    let b = open(dir.path(), "b");
    let mut squashed = TarBuilder::new();
    let flat = flatten_image(&b, 1).unwrap();
    for (path, node) in flat.tree.iter() {
        let m = &node.meta;
        squashed.mtime = m.mtime as u64;
        match m.kind {
            Kind::Dir => squashed.dir(path, m.mode),
            Kind::File => squashed.file_owned(path, &file_content(path), m.mode, m.uid, m.gid),
            Kind::Hardlink => squashed.hardlink(path, m.link.as_deref().unwrap()),
            Kind::Symlink => squashed.symlink(path, m.link.as_deref().unwrap()),
            Kind::Char => squashed.char_dev(path, m.rdev.unwrap().0, m.rdev.unwrap().1),
            Kind::Fifo => squashed.fifo(path),
            other => panic!("unexpected {other:?}"),
        };
    }
    let mut sq = image(vec![squashed.finish()]);
    sq.created = "2025-06-01T00:00:00Z".into();
    sq.write_oci_layout(dir.path(), "squashed").unwrap();
    let s = open(dir.path(), "squashed");
    let d = diff_images(&b, &s, semantic()).unwrap();
    // Implicit parents (new, new/deep) have mtime 0 in B's tree and are written explicitly here: equal anyway.
    assert!(d.is_empty(), "{:#?}", d.files);
    let strict = diff_images(&b, &s, DiffOptions::default()).unwrap();
    assert!(strict.config.iter().any(|c| c.field == "Created"));
    assert!(strict.config.iter().any(|c| c.field.starts_with("History[")));
    assert_eq!(
        strict.layers.iter().map(|l| l.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(strict.layers[1].b.is_none());
}

/// Content of each file in base_layer/change_layer, for rebuilding the squashed tar.
fn file_content(path: &str) -> Vec<u8> {
    match path {
        "bin/busybox" => vec![0xbb; 3000],
        "etc/passwd" => b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
        "etc/hosts" => b"127.0.0.1 localhost lamina\n".to_vec(),
        "etc/owned" => b"mine\n".to_vec(),
        "etc/new" => b"new file\n".to_vec(),
        "opt/thing/inside" => b"inside".to_vec(),
        "srv" => vec![b's'; 10],
        "usr/share/doc/new" => b"fresh".to_vec(),
        "var/lib/data/b" => b"keep".to_vec(),
        "new/deep/file" => vec![b'n'; 300],
        other => panic!("no content for {other}"),
    }
}

#[test]
fn strict_layer_diff_lists_whiteouts_and_mtimes() {
    let mut other = TarBuilder::new();
    other.mtime += 100;
    other
        .file("etc/hosts", b"127.0.0.1 localhost lamina\n", 0o644)
        .whiteout("var/lib/data/b");
    let dir = layout_with(&[
        ("b", image(vec![base_layer(), change_layer()])),
        ("c", image(vec![base_layer(), other.finish()])),
    ]);
    let d = diff_images(
        &open(dir.path(), "b"),
        &open(dir.path(), "c"),
        DiffOptions::default(),
    )
    .unwrap();
    assert_eq!(d.layers.len(), 1, "layer 0 is shared and not compared");
    let files = &d.layers[0].files;
    let wh: Vec<_> = files
        .iter()
        .filter(|f| f.path.contains(".wh."))
        .map(|f| (f.path.as_str(), f.kind))
        .collect();
    assert_eq!(
        wh,
        vec![
            ("usr/share/doc/.wh..wh..opq", DiffKind::Removed),
            ("var/lib/data/.wh.a", DiffKind::Removed),
            ("var/lib/data/.wh.b", DiffKind::Added),
        ]
    );
    assert!(
        !files.iter().any(|f| f.path == "etc/hosts"),
        "identical entry in both layers"
    );
}

#[test]
fn archives_read_in_place_agree_with_layout() {
    let img = image(vec![base_layer(), change_layer()]);
    let dir = layout_with(&[("b", img.clone())]);
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("b.oci.tar");
    let docker = tmp.path().join("b.docker.tar");
    img.write_oci_archive(&oci, "b").unwrap();
    img.write_docker_archive(&docker, "example.com/b:1").unwrap();
    let from_layout = open(dir.path(), "b");
    let from_oci = ImageView::open_oci_archive(&oci, None).unwrap();
    let from_docker = ImageView::open_docker_archive(&docker, Some("example.com/b:1")).unwrap();
    assert_eq!(from_docker.tags, vec!["example.com/b:1"]);
    for v in [&from_oci, &from_docker] {
        let d = diff_images(&from_layout, v, DiffOptions::default()).unwrap();
        assert!(d.is_empty(), "{}: {d:#?}", v.name);
        let d = diff_images(&from_layout, v, semantic()).unwrap();
        assert!(d.is_empty(), "{}: {d:#?}", v.name);
    }
    // A docker archive has no manifest; its plain-tar layers are walked all the same.
    assert!(from_docker.manifest.is_none());
    assert_eq!(
        flatten_image(&from_docker, 2).unwrap().tree.len(),
        flatten_image(&from_layout, 2).unwrap().tree.len()
    );
}

#[test]
fn analyze_counts_wasted_and_duplicates() {
    let mut top = TarBuilder::new();
    // Overwrites busybox (3000 wasted), deletes srv/index.html (2000 wasted), copies passwd elsewhere.
    top.file("bin/busybox", &[0xbc; 3000], 0o755)
        .whiteout("srv/index.html")
        .file("root/passwd.bak", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    let dir = layout_with(&[("x", image(vec![base_layer(), top.finish()]))]);
    let a = analyze(&open(dir.path(), "x"), AnalyzeOptions { top: 5, threads: 2 }).unwrap();
    let base_bytes = 3000 + 30 + 20 + 5 + 25 + 2000 + 500 + 700 + 4;
    assert_eq!(a.layers[0].content_bytes, base_bytes);
    assert_eq!(a.total_bytes, base_bytes + 3000 + 30);
    assert_eq!(a.wasted_bytes, 5000);
    assert_eq!(a.image_bytes, a.total_bytes - 5000);
    assert_eq!(a.layers[0].wasted_bytes, 5000);
    assert_eq!(a.layers[1].wasted_bytes, 0);
    assert!((a.efficiency - a.image_bytes as f64 / a.total_bytes as f64).abs() < 1e-12);
    let wasted: Vec<(&str, u64)> = a
        .wasted_paths
        .iter()
        .map(|w| (w.path.as_str(), w.wasted_bytes))
        .collect();
    assert_eq!(wasted, vec![("bin/busybox", 3000), ("srv/index.html", 2000)]);
    assert_eq!(a.duplicates.len(), 1);
    assert_eq!(a.duplicates[0].copies.len(), 2);
    assert_eq!(a.duplicates[0].redundant_bytes, 30);
    assert_eq!(a.layers[0].largest_files[0].path, "bin/busybox");
    assert_eq!(a.layers[0].largest_dirs[0].path, "bin");
    assert_eq!(a.layers[1].created_by, "step 1");
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/inspect")
}

/// Compares `value` as pretty JSON with the golden file; `LAMINA_UPDATE_GOLDEN=1` rewrites it.
fn check_golden(name: &str, value: &impl serde::Serialize) {
    let got = serde_json::to_string_pretty(value).unwrap() + "\n";
    let path = golden_dir().join(name);
    if std::env::var_os("LAMINA_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with LAMINA_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        got,
        want,
        "{} differs; see testdata/inspect/README.md",
        path.display()
    );
}

#[test]
fn json_output_is_stable() {
    let dir = layout_with(&[
        ("a", image(vec![base_layer()])),
        ("b", image(vec![base_layer(), change_layer()])),
    ]);
    let (a, b) = (open(dir.path(), "a"), open(dir.path(), "b"));
    // Serializing twice from independent runs (different thread interleavings) gives the same bytes.
    let once = serde_json::to_string(&diff_images(&a, &b, semantic()).unwrap()).unwrap();
    let twice = serde_json::to_string(
        &diff_images(
            &a,
            &b,
            DiffOptions {
                semantic: true,
                threads: 1,
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(once, twice);
    check_golden("diff-semantic.json", &diff_images(&a, &b, semantic()).unwrap());
    check_golden(
        "diff-strict.json",
        &diff_images(&a, &b, DiffOptions::default()).unwrap(),
    );
    check_golden("analyze.json", &analyze(&b, AnalyzeOptions::default()).unwrap());
}

/// What umoci's unpacked rootfs holds per path (type, mode, owner, size, content hash, link, device).
fn snapshot_fs(root: &Path) -> BTreeMap<String, String> {
    use sha2::Digest as _;
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let (kind, extra) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", String::new())
            } else if ft.is_symlink() {
                (
                    "symlink",
                    std::fs::read_link(&p).unwrap().to_string_lossy().into_owned(),
                )
            } else if ft.is_file() {
                (
                    "file",
                    hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())),
                )
            } else {
                use std::os::unix::fs::FileTypeExt;
                if ft.is_char_device() {
                    ("char", format!("{}:{}", md.rdev() >> 8 & 0xfff, md.rdev() & 0xff))
                } else {
                    ("fifo", String::new())
                }
            };
            let size = if kind == "file" { md.len() } else { 0 };
            out.insert(
                rel,
                format!(
                    "{kind} {:o} {}:{} {size} {extra}",
                    md.mode() & 0o7777,
                    md.uid(),
                    md.gid()
                ),
            );
        }
    }
    out
}

fn snapshot_tree(view: &ImageView) -> BTreeMap<String, String> {
    let flat = flatten_image(view, 2).unwrap();
    flat.tree
        .iter()
        .map(|(p, n)| {
            let m = &n.meta;
            let (kind, extra) = match m.kind {
                Kind::Dir => ("dir", String::new()),
                Kind::File | Kind::Hardlink => ("file", hex::encode(m.hash.unwrap().0)),
                Kind::Symlink => ("symlink", m.link.clone().unwrap()),
                Kind::Char => ("char", format!("{}:{}", m.rdev.unwrap().0, m.rdev.unwrap().1)),
                Kind::Fifo => ("fifo", String::new()),
                other => panic!("{other:?} in a tree"),
            };
            // Symlink modes are not meaningful on Linux (always 0777 on disk).
            let mode = if m.kind == Kind::Symlink { 0o777 } else { m.mode };
            (
                p.clone(),
                format!("{kind} {mode:o} {}:{} {} {extra}", m.uid, m.gid, m.size),
            )
        })
        .collect()
}

#[test]
fn trees_agree_with_umoci_unpack() {
    if std::process::Command::new("umoci")
        .arg("--version")
        .output()
        .is_err()
    {
        lamina_testkit::skip("umoci not installed");
        return;
    }
    let rootless = !std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if rootless {
        lamina_testkit::skip("needs root to create device nodes and chown");
        return;
    }
    let dir = layout_with(&[("b", image(vec![base_layer(), change_layer()]))]);
    let bundle = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:b", dir.path().display()))
        .arg(bundle.path().join("bundle"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = snapshot_fs(&bundle.path().join("bundle/rootfs"));
    let ours = snapshot_tree(&open(dir.path(), "b"));
    assert_eq!(ours, fs);
}
