//! Checks of the suite itself, independent of `lamina build`: the corpus is complete and well-formed, and the
//! Rust dumper prints exactly what the golden generator's dumper (dump.py) prints for the same input.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::{CASES, base, corpus, dump};

fn have_python() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python_dump(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("python3")
        .arg(corpus().join("dump.py"))
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "dump.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("dump.py prints UTF-8")
}

#[test]
fn every_case_is_listed_and_has_goldens() {
    let mut on_disk = Vec::new();
    for e in std::fs::read_dir(corpus()).unwrap() {
        let e = e.unwrap();
        if e.path().join("Dockerfile").is_file() {
            on_disk.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "cases on disk vs the cases! list in conformance.rs"
    );
    assert!(listed.len() >= 40, "the corpus must have at least 40 cases");
    for c in CASES {
        let tree = std::fs::read_to_string(corpus().join(c).join("expected/tree.txt"))
            .unwrap_or_else(|e| panic!("{c}: expected/tree.txt: {e}"));
        let mut prev: Option<&str> = None;
        for line in tree.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 8, "{c}: malformed line {line:?}");
            assert!(f[0].starts_with('/'), "{c}: path not absolute: {line:?}");
            if let Some(p) = prev {
                assert!(
                    p.as_bytes() < f[0].as_bytes(),
                    "{c}: lines not sorted/unique at {line:?}"
                );
            }
            prev = Some(f[0]);
        }
        assert!(!tree.is_empty(), "{c}: empty tree.txt");
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(corpus().join(c).join("expected/config.json")).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{c}: expected/config.json: {e}"));
        assert_eq!(
            cfg.as_object().map(|o| o.len()),
            Some(12),
            "{c}: config.json must have the 12 keys"
        );
    }
}

fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

/// A tar with every entry kind and naming edge the format has to handle.
fn sample_tar(path: &Path) {
    use tar::EntryType as T;
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let file = |b: &mut tar::Builder<std::fs::File>, name: &[u8], mode: u32, uid: u64, data: &[u8]| {
        let mut h = header(T::Regular, mode, uid, uid + 1);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, Path::new(std::ffi::OsStr::from_bytes(name)), data)
            .unwrap();
    };
    b.append_data(&mut header(T::Directory, 0o755, 0, 0), "./d/", std::io::empty())
        .unwrap();
    file(&mut b, b"d/file", 0o4755, 1000, b"hello");
    file(&mut b, b"./d/dup", 0o644, 0, b"first");
    file(&mut b, b"d/dup", 0o600, 7, b"second wins");
    b.append_link(&mut header(T::Link, 0o4755, 1000, 1001), "d/hard", "d/file")
        .unwrap();
    b.append_link(&mut header(T::Link, 0o4755, 1000, 1001), "d/hard2", "./d/hard")
        .unwrap();
    b.append_link(&mut header(T::Symlink, 0o777, 0, 0), "d/sym", "../etc/x")
        .unwrap();
    let mut dev = header(T::Char, 0o666, 0, 0);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    b.append_data(&mut dev, "dev/null", std::io::empty()).unwrap();
    let mut blk = header(T::Block, 0o600, 0, 6);
    blk.set_device_major(7).unwrap();
    blk.set_device_minor(0).unwrap();
    b.append_data(&mut blk, "dev/loop0", std::io::empty()).unwrap();
    b.append_data(&mut header(T::Fifo, 0o620, 5, 5), "p", std::io::empty())
        .unwrap();
    b.append_data(&mut header(T::Directory, 0o1777, 0, 0), "tmp", std::io::empty())
        .unwrap();
    let long = format!("long/{}/{}", "x".repeat(120), "y".repeat(200));
    file(&mut b, long.as_bytes(), 0o640, 3, b"long");
    b.append_link(&mut header(T::Symlink, 0o777, 0, 0), "long-target", &long)
        .unwrap();
    file(
        &mut b,
        "ü/日本語 ファイル.txt".as_bytes(),
        0o644,
        0,
        "ü".as_bytes(),
    );
    file(&mut b, b"we\tird\\name\n", 0o644, 0, b"");
    file(&mut b, b"bad\xffname\xe6\x97", 0o644, 0, b"bytes");
    file(&mut b, b"r", 0o644, 0, b"replaced by a dir");
    b.append_data(&mut header(T::Directory, 0o700, 9, 9), "r/", std::io::empty())
        .unwrap();
    file(&mut b, b"r/x", 0o644, 0, b"x");
    file(&mut b, b"wh/.wh.kept-literally", 0o644, 0, b"");
    b.into_inner().unwrap().flush().unwrap();
}

#[test]
fn rust_and_script_dumpers_agree_on_a_sample_tar() {
    if !have_python() {
        eprintln!("skipped: python3 not available (dump.py needs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("sample.tar");
    sample_tar(&tar);
    let rust = dump::dump_tar(std::fs::File::open(&tar).unwrap()).unwrap();
    let py = python_dump(&["tree".as_ref(), "--flat".as_ref(), tar.as_os_str()]);
    assert_eq!(rust, py, "Rust and dump.py disagree");
    // Spot-check the format itself, so both can't agree on something wrong.
    for want in [
        "/d/file\tfile\t4755\t1000\t1001\t5\t2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\t=/d/file\n",
        "/d/hard2\tfile\t4755\t1000\t1001\t5\t2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\t=/d/file\n",
        "/d/dup\tfile\t0600\t7\t8\t11\t",
        "/d/sym\tsymlink\t0777\t0\t0\t-\t-\t../etc/x\n",
        "/dev\tdir\t0755\t0\t0\t-\t-\t-\n",
        "/dev/null\tchar\t0666\t0\t0\t-\t-\t1,3\n",
        "/dev/loop0\tblock\t0600\t0\t6\t-\t-\t7,0\n",
        "/p\tfifo\t0620\t5\t5\t-\t-\t-\n",
        "/tmp\tdir\t1777\t0\t0\t-\t-\t-\n",
        "/we\\x09ird\\\\name\\x0a\tfile\t",
        "/bad\\xffname\\xe6\\x97\tfile\t",
        "/r\tdir\t0700\t9\t9\t-\t-\t-\n",
        "/ü/日本語 ファイル.txt\tfile\t",
        "/wh/.wh.kept-literally\tfile\t",
    ] {
        assert!(rust.contains(want), "missing {want:?} in:\n{rust}");
    }
    assert!(
        !rust.contains("first"),
        "a later entry for the same path must replace the earlier one"
    );
}

#[test]
fn rust_and_script_dumpers_agree_on_the_base_image() {
    if !have_python() {
        eprintln!("skipped: python3 not available (dump.py needs it)");
        return;
    }
    let base = match base() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipped: base image not buildable: {e}");
            return;
        }
    };
    let (rust, texts) = dump::dump_tar_with_texts(std::fs::File::open(&base.tar).unwrap()).unwrap();
    let py = python_dump(&["tree".as_ref(), "--flat".as_ref(), base.tar.as_os_str()]);
    assert_eq!(rust, py);
    let py_texts: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&python_dump(&["contents".as_ref(), base.tar.as_os_str()])).unwrap();
    assert_eq!(texts, py_texts);
    assert!(texts["/etc/group"].starts_with("root:x:0:\n"), "{texts:?}");
    assert!(rust.contains("/home/svc\tdir\t0750\t1500\t2500\t"), "{rust}");
    assert!(
        rust.contains("/bin\tsymlink\t0777\t0\t0\t-\t-\tusr/bin\n"),
        "{rust}"
    );
}

/// dump.py's layer mode (used for docker's goldens) applies whiteouts the way docker and lamina must.
#[test]
fn script_applies_whiteouts_across_layers() {
    use tar::EntryType as T;
    if !have_python() {
        eprintln!("skipped: python3 not available (dump.py needs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layer = |name: &str, entries: &[(&str, T, &[u8])]| {
        let p = dir.path().join(name);
        let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
        for (path, kind, data) in entries {
            let mut h = header(*kind, if *kind == T::Directory { 0o755 } else { 0o644 }, 0, 0);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap().flush().unwrap();
        p
    };
    let l1 = layer(
        "l1.tar",
        &[
            ("a/", T::Directory, b""),
            ("a/old", T::Regular, b"old"),
            ("a/keep", T::Regular, b"keep"),
            ("b/", T::Directory, b""),
            ("b/x", T::Regular, b"x"),
            ("c", T::Regular, b"c"),
        ],
    );
    let l2 = layer(
        "l2.tar",
        &[
            ("a/", T::Directory, b""),
            ("a/.wh.old", T::Regular, b""),
            ("b/", T::Directory, b""),
            ("b/.wh..wh..opq", T::Regular, b""),
            ("b/new", T::Regular, b"new"),
            (".wh.c", T::Regular, b""),
        ],
    );
    let out = python_dump(&["tree".as_ref(), l1.as_os_str(), l2.as_os_str()]);
    let paths: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(paths, ["/a", "/a/keep", "/b", "/b/new"], "{out}");
    // The Rust flattener (used while `lamina unpack` is missing) agrees, gzip-compressed layers included.
    let gz = dir.path().join("l2.tar.gz");
    let mut enc =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::copy(&mut std::fs::File::open(&l2).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    let open = |p: &Path| -> Box<dyn std::io::Read> { Box::new(std::fs::File::open(p).unwrap()) };
    let (rust, _) = dump::dump_layers(vec![open(&l1), open(&gz)]).unwrap();
    assert_eq!(rust, out);
}

#[test]
fn config_normalizers_agree() {
    if !have_python() {
        eprintln!("skipped: python3 not available (dump.py needs it)");
        return;
    }
    let image_config = json!({
        "architecture": "amd64",
        "config": {
            "Env": ["Z=1", "A=2"], "Cmd": ["sh"], "Entrypoint": null, "WorkingDir": "",
            "User": "app", "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"b": "1", "a": "ü"},
            "Volumes": {"/v": {}}, "StopSignal": "SIGKILL", "Shell": ["/bin/sh", "-ec"], "OnBuild": [],
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 0, "Retries": 3},
            "ArgsEscaped": true, "Image": "sha256:0"
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.json");
    std::fs::write(&p, serde_json::to_vec(&image_config).unwrap()).unwrap();
    let py: serde_json::Value =
        serde_json::from_str(&python_dump(&["config".as_ref(), p.as_os_str()])).unwrap();
    let rust = dump::normalize_config(&image_config["config"]);
    assert_eq!(rust, py);
    assert_eq!(rust["Env"], json!(["A=2", "Z=1"]));
    assert_eq!(rust["ExposedPorts"], json!(["53/udp", "80/tcp"]));
    assert_eq!(
        rust["Healthcheck"],
        json!({"Test": ["CMD", "true"], "Retries": 3})
    );
    assert_eq!(rust["WorkingDir"], json!(null));
    assert_eq!(rust["OnBuild"], json!(null));
}

#[test]
fn differ_reports_every_kind_of_difference() {
    let expected =
        "/a\tfile\t0644\t0\t0\t1\tab\t-\n/b\tdir\t0755\t0\t0\t-\t-\t-\n/c\tdir\t0755\t0\t0\t-\t-\t-\n";
    let actual =
        "/a\tfile\t0600\t0\t5\t1\tab\t-\n/c\tdir\t0755\t0\t0\t-\t-\t-\n/d\tfifo\t0644\t0\t0\t-\t-\t-\n";
    let d = dump::diff_trees(expected, actual);
    assert_eq!(d.len(), 3, "{d:#?}");
    assert!(
        d[0].starts_with("differs /a: mode 0644 != 0600, gid 0 != 5"),
        "{d:#?}"
    );
    assert!(d[1].starts_with("missing /b"), "{d:#?}");
    assert!(d[2].starts_with("extra /d"), "{d:#?}");
    assert!(dump::diff_trees(expected, expected).is_empty());
    let mut d = dump::diff_trees(expected, actual.replace("\tab\t", "\tcd\t").as_str());
    let texts = |t: &str| [("/a".to_string(), t.to_string())].into_iter().collect();
    dump::annotate_contents(&mut d, &texts("docker's"), &texts("lamina's"));
    assert!(
        d[0].ends_with(
            "sha256 ab != cd (expected != actual)\n      docker: \"docker's\"\n      lamina: \"lamina's\""
        ),
        "{d:#?}"
    );
    let c = dump::diff_configs(
        &json!({"User": "a", "Cmd": null}),
        &json!({"User": "b", "Cmd": null}),
    );
    assert_eq!(c, ["config User: expected \"a\", got \"b\""]);
}

/// The front end alone: every corpus Dockerfile (with its --build-arg/--target flags) parses and plans.
/// Reports all failures at once; skips while `lamina parse` isn't in the binary.
#[test]
fn every_case_parses() {
    let bin = super::lamina_bin();
    if !Command::new(&bin)
        .args(["parse", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: lamina parse not available");
        return;
    }
    let mut failures = Vec::new();
    for c in CASES {
        let dir = corpus().join(c);
        let args = super::case_args(&dir);
        let mut plan_args = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if matches!(a.as_str(), "--build-arg" | "--target") {
                plan_args.extend(args[i..].iter().take(2).cloned());
            }
        }
        for (file, extra) in [("pre.Dockerfile", &Vec::new()), ("Dockerfile", &plan_args)] {
            let path = dir.join(file);
            if !path.is_file() {
                continue;
            }
            let out = Command::new(&bin)
                .arg("parse")
                .arg("-f")
                .arg(&path)
                .args(extra)
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{c}/{file}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} Dockerfile(s) rejected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn config_is_found_in_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let put = |v: serde_json::Value| -> String {
        let bytes = serde_json::to_vec(&v).unwrap();
        let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(root.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let config = put(json!({"architecture": "amd64", "config": {"User": "app"}}));
    let other = put(json!({"architecture": "amd64", "config": {"User": "other"}}));
    let manifest = |c: &str| put(json!({"schemaVersion": 2, "config": {"digest": c}, "layers": []}));
    let (m1, m2) = (manifest(&other), manifest(&config));
    let entry = |d: &str, name: &str| json!({"digest": d, "annotations": {"org.opencontainers.image.ref.name": name}});
    let index = json!({"schemaVersion": 2, "manifests": [
        entry(&m1, "docker.io/library/lamina-conf-x-pre:latest"),
        entry(&m2, "docker.io/library/lamina-conf-x:latest"),
    ]});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    assert_eq!(
        super::config_from_layout(root, "lamina-conf-x").unwrap(),
        json!({"User": "app"})
    );
    assert!(super::config_from_layout(root, "lamina-conf-y").is_err());
}
