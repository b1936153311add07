//! Round trips (directory → layer → directory gives the same tree), determinism of the written bytes, and
//! overlay upper dirs with real overlayfs.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::{RawTar, dump, header, is_root};
use lamina_store::layer::read::{Kind, TarReader, decompress};
use lamina_store::layer::{ApplyOptions, Compression, WriteOptions, apply_layer, write_layer, write_tar};
use lamina_store::{BlobStore, Digest};

fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A tree with most things a layer can hold; root-only parts (owners, devices) when running as root.
fn sample_tree(dir: &Path) {
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(dir.join("usr/bin/tool"), vec![0x7f; 300_000]).unwrap();
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(dir.join("usr/bin/sg"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(dir.join("usr/bin/sg"), fs::Permissions::from_mode(0o2711)).unwrap();
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool-alias")).unwrap();
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("a-first-link")).unwrap();
    symlink("/usr/bin/tool", dir.join("usr/bin/abs-link")).unwrap();
    symlink("tool", dir.join("usr/bin/rel-link")).unwrap();
    let long_dir = dir.join("d".repeat(120)).join("e".repeat(120));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(200)), b"long name").unwrap();
    symlink("t".repeat(300), dir.join("long-target")).unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    fs::write(dir.join("ünïcødé name"), b"u").unwrap();
    fs::write(dir.join("xattr-file"), b"x").unwrap();
    let _ = rustix::fs::lsetxattr(
        dir.join("xattr-file").as_path(),
        "user.note",
        b"hello",
        rustix::fs::XattrFlags::empty(),
    );
    if is_root() {
        let cap = [1u8, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        rustix::fs::lsetxattr(
            dir.join("usr/bin/sg").as_path(),
            "security.capability",
            &cap,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::create_dir(dir.join("dev")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("dev/null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("dev/loop9"),
            rustix::fs::FileType::BlockDevice,
            rustix::fs::Mode::from_raw_mode(0o660),
            rustix::fs::makedev(7, 9),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("dev/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::os::unix::fs::lchown(dir.join("usr/bin/sg"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(dir.join("usr/bin/rel-link"), Some(42), Some(43)).unwrap();
        std::os::unix::fs::lchown(dir.join("tmp"), Some(7), Some(8)).unwrap();
        // Ids beyond ustar's 7 octal digits need PAX.
        std::os::unix::fs::lchown(dir.join("empty"), Some(3_000_000), Some(3_000_001)).unwrap();
    }
    for p in ["usr/bin/tool", "usr/bin/sg", "empty", "xattr-file"] {
        set_mtime(&dir.join(p), 1_500_000_000);
    }
}

fn blobs() -> (tempfile::TempDir, BlobStore) {
    let d = tempfile::tempdir().unwrap();
    let s = BlobStore::open(d.path()).unwrap();
    (d, s)
}

#[test]
fn roundtrip_preserves_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    sample_tree(&src);
    let (_b, store) = blobs();
    for compression in [
        Compression::Gzip { level: 6 },
        Compression::Zstd { level: 3 },
        Compression::None,
    ] {
        let info = write_layer(
            &src,
            &WriteOptions {
                compression,
                ..WriteOptions::default()
            },
            &store,
        )
        .unwrap();
        assert_eq!(info.media_type, compression.media_type());
        assert_eq!(info.size, store.size(&info.digest).unwrap());
        // diff_id is the sha256 of the uncompressed stream.
        let mut tar = Vec::new();
        decompress(store.open_blob(&info.digest).unwrap())
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::sha256_of(&tar), info.diff_id);

        let dest = tmp.path().join(format!("dest-{}", info.digest.short()));
        fs::create_dir(&dest).unwrap();
        let stats = apply_layer(
            store.open_blob(&info.digest).unwrap(),
            &dest,
            &ApplyOptions::default(),
        )
        .unwrap();
        assert!(stats.hardlinks >= 2, "{stats:?}");
        assert_eq!(
            dump(&dest),
            dump(&src),
            "tree differs after {compression:?} round trip"
        );
    }
}

#[test]
fn hardlinks_are_written_once() {
    let tmp = tempfile::tempdir().unwrap();
    sample_tree(tmp.path());
    let mut tar = Vec::new();
    write_tar(tmp.path(), &WriteOptions::default(), &mut tar).unwrap();
    let mut r = TarReader::new(&tar[..], u64::MAX);
    let mut seen = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        seen.push((
            String::from_utf8(e.path.clone()).unwrap(),
            e.kind,
            e.link.clone(),
            e.size,
        ));
    }
    // Depth-first, names sorted bytewise: the first name of the inode carries the data.
    let first = seen.iter().find(|s| s.0 == "a-first-link").unwrap();
    assert_eq!((first.1, first.3), (Kind::File, 300_000));
    let alias = seen.iter().find(|s| s.0 == "usr/bin/tool-alias").unwrap();
    assert_eq!(
        (alias.1, alias.2.as_deref()),
        (Kind::Hardlink, Some(&b"a-first-link"[..]))
    );
    let names: Vec<_> = seen.iter().map(|s| s.0.clone()).collect();
    assert!(
        names.iter().position(|n| n == "usr/").unwrap() < names.iter().position(|n| n == "usr/bin/").unwrap()
    );
    assert!(!names.iter().any(|n| n.starts_with("./") || n.starts_with('/')));
}

#[test]
fn tar_is_readable_by_gnu_tar() {
    let Ok(out) = Command::new("tar").arg("--version").output() else {
        lamina_testkit::skip("GNU tar not installed");
        return;
    };
    assert!(out.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    sample_tree(&src);
    let mut tar = Vec::new();
    write_tar(&src, &WriteOptions::default(), &mut tar).unwrap();
    let tarfile = tmp.path().join("l.tar");
    fs::write(&tarfile, &tar).unwrap();
    let dest = tmp.path().join("x");
    fs::create_dir(&dest).unwrap();
    let st = Command::new("tar")
        .args([
            "-x",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-p",
            "-f",
        ])
        .arg(&tarfile)
        .arg("-C")
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    let (a, b) = (dump(&src), dump(&dest));
    // GNU tar sets directory mtimes and symlink owners the same way; compare everything.
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k} differs after GNU tar extraction");
    }
}

#[test]
fn output_is_deterministic_across_runs_and_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    let two = tmp.path().join("two");
    for d in [&one, &two] {
        fs::create_dir(d).unwrap();
        sample_tree(d);
        // Enough data for several parallel gzip chunks, mixing compressible and random bytes.
        let mut x: u32 = 1;
        let noise: Vec<u8> = (0..700_000)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 24) as u8
            })
            .collect();
        fs::write(d.join("noise"), &noise).unwrap();
        fs::write(d.join("text"), "lorem ipsum dolor sit amet ".repeat(40_000)).unwrap();
        set_mtime(&d.join("noise"), 1_700_000_000);
        set_mtime(&d.join("text"), 1_700_000_000);
    }
    // The trees were made at different times: SOURCE_DATE_EPOCH clamps every mtime (dirs and links too).
    let sde = Some(1_000_000_000);
    let (_b, store) = blobs();
    for compression in [Compression::Gzip { level: 6 }, Compression::Zstd { level: 3 }] {
        let mut digests = Vec::new();
        for (dir, threads) in [(&one, 1), (&one, 2), (&two, 2), (&two, 1), (&one, 4)] {
            let opts = WriteOptions {
                compression,
                source_date_epoch: sde,
                overlay_upper: false,
                threads,
            };
            let info = write_layer(dir, &opts, &store).unwrap();
            digests.push((info.digest, info.diff_id));
        }
        assert!(
            digests.windows(2).all(|w| w[0] == w[1]),
            "{compression:?}: {digests:?}"
        );
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn overlay_upper_dir_becomes_a_layer_with_whiteouts() {
    if !is_root() {
        lamina_testkit::skip("mounting overlayfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|n| tmp.path().join(n));
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    fs::create_dir_all(lower.join("etc/conf.d")).unwrap();
    fs::write(lower.join("etc/conf.d/a"), b"a").unwrap();
    fs::write(lower.join("etc/conf.d/b"), b"b").unwrap();
    fs::write(lower.join("etc/hosts"), b"h").unwrap();
    fs::create_dir_all(lower.join("replaced/inner")).unwrap();
    fs::write(lower.join("gone"), b"g").unwrap();
    fs::create_dir_all(lower.join("keepdir")).unwrap();
    fs::write(lower.join("keepdir/k"), b"k").unwrap();

    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    if let Err(e) = rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        std::ffi::CString::new(opts).unwrap().as_c_str(),
    ) {
        lamina_testkit::skip(&format!("overlayfs mount failed here: {e}"));
        return;
    }
    let result = std::panic::catch_unwind(|| {
        fs::remove_file(merged.join("gone")).unwrap();
        fs::remove_dir_all(merged.join("etc/conf.d")).unwrap();
        fs::create_dir(merged.join("etc/conf.d")).unwrap();
        fs::write(merged.join("etc/conf.d/new"), b"n").unwrap();
        fs::remove_dir_all(merged.join("replaced")).unwrap();
        fs::write(merged.join("replaced"), b"now a file").unwrap();
        fs::write(merged.join("added"), b"+").unwrap();
        dump(&merged)
    });
    let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
    let merged_dump = result.unwrap();

    let opts = WriteOptions {
        overlay_upper: true,
        compression: Compression::None,
        ..WriteOptions::default()
    };
    let mut tar = Vec::new();
    write_tar(&upper, &opts, &mut tar).unwrap();
    let mut r = TarReader::new(&tar[..], u64::MAX);
    let mut names = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        assert!(
            e.xattrs.iter().all(|(k, _)| !k.starts_with(b"trusted.overlay.")),
            "overlay xattrs leaked"
        );
        names.push(String::from_utf8(e.path).unwrap());
    }
    assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
    assert!(
        names.contains(&"etc/conf.d/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    let opq = names.iter().position(|n| n == "etc/conf.d/.wh..wh..opq").unwrap();
    assert_eq!(
        names[opq - 1],
        "etc/conf.d/",
        "opaque marker follows its directory"
    );
    assert!(names.contains(&"replaced".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("keepdir")), "{names:?}");

    // Applying the layer onto a copy of the lower dir (deletion mode) gives the merged view.
    let flat = tmp.path().join("flat");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&lower)
        .arg(&flat)
        .status()
        .unwrap();
    assert!(st.success());
    apply_layer(&tar[..], &flat, &ApplyOptions::default()).unwrap();
    let mut flat_dump = dump(&flat);
    let mut merged_dump = merged_dump;
    // Directory mtimes legitimately differ between the live overlay and a fresh apply; compare the rest.
    for d in [&mut flat_dump, &mut merged_dump] {
        for v in d.values_mut() {
            if let Some(i) = v.find(" mtime=") {
                v.truncate(i);
            }
        }
    }
    assert_eq!(flat_dump, merged_dump);
    let _ = have("true");
}

/// Numeric fields left empty (all NUL, or spaces) read as 0, as GNU tar and Go's archive/tar read them;
/// a field with anything else that is not a number is still refused, naming the entry and field.
#[test]
fn empty_numeric_header_fields_read_as_zero() {
    let mut t = RawTar::default();
    let mut h = header(b"nul-fields", b'0', 2, 0o644);
    h.as_old_mut().uid = [0; 8];
    h.as_old_mut().gid = [0; 8];
    h.as_old_mut().mtime = [0; 12];
    t.push(h, b"hi");
    let mut h = header(b"space-fields", b'5', 0, 0o755);
    h.as_old_mut().uid = [b' '; 8];
    h.as_old_mut().gid = *b" \0 \0 \0 \0";
    h.as_old_mut().mtime = [b' '; 12];
    t.push(h, b"");
    let tar = t.end();
    let mut r = TarReader::new(&tar[..], u64::MAX);
    let mut seen = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        seen.push((
            String::from_utf8(e.path.clone()).unwrap(),
            e.uid,
            e.gid,
            e.mtime,
            e.mode,
        ));
    }
    assert_eq!(
        seen,
        [
            ("nul-fields".to_string(), 0, 0, 0, 0o644),
            ("space-fields".to_string(), 0, 0, 0, 0o755)
        ]
    );
    let root = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], root.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(fs::read(root.path().join("nul-fields")).unwrap(), b"hi");

    for (field, garbage) in [("uid", *b"12x4\0\0\0\0"), ("gid", *b"9999999\0")] {
        let mut t = RawTar::default();
        let mut h = header(b"garbage", b'0', 0, 0o644);
        match field {
            "uid" => h.as_old_mut().uid = garbage,
            _ => h.as_old_mut().gid = garbage,
        }
        t.push(h, b"");
        let tar = t.end();
        let err = TarReader::new(&tar[..], u64::MAX).next_entry().unwrap_err();
        assert!(
            matches!(&err, lamina_store::layer::LayerError::BadHeader { entry, field: f } if entry == "garbage" && *f == field),
            "{err}"
        );
    }
}
