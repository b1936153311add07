//! Hostile layers, in the spirit of containerd's TestBreakouts: every archive below tries to write, link or
//! delete outside the destination root. Each case asserts that nothing beside the root changed (a sentinel
//! directory next to it is compared before and after) and, where the archive is legitimate once names are
//! resolved in-root, that it applied there.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use common::{RawTar, dump, header};
use lamina_store::layer::{ApplyOptions, LayerError, apply_layer};

struct Case {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    sentinel: PathBuf,
    before: std::collections::BTreeMap<String, String>,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let root = base.join("root");
        let sentinel = base.join("sentinel");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&sentinel).unwrap();
        fs::write(sentinel.join("keep"), b"precious").unwrap();
        fs::create_dir(sentinel.join("sub")).unwrap();
        let before = dump(&base.join("sentinel"));
        Case {
            _tmp: tmp,
            base,
            root,
            sentinel,
            before,
        }
    }

    fn apply(&self, tar: &[u8]) -> Result<(), LayerError> {
        apply_layer(tar, &self.root, &ApplyOptions::default()).map(|_| ())
    }

    /// The sentinel is untouched and nothing new appeared beside the root.
    fn assert_outside_untouched(&self) {
        assert_eq!(dump(&self.sentinel), self.before, "sentinel changed");
        assert_eq!(
            fs::metadata(self.sentinel.join("keep")).unwrap().nlink(),
            1,
            "sentinel file gained a link"
        );
        let mut names: Vec<_> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["root", "sentinel"],
            "something was created beside the root"
        );
    }

    /// The absolute host path of the sentinel, as an archive would name it.
    fn abs_sentinel(&self) -> String {
        self.sentinel.to_str().unwrap().to_owned()
    }

    fn in_root(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

fn entry_named(err: &LayerError, name: &str) {
    let msg = err.to_string();
    assert!(msg.contains(name), "error {msg:?} should name entry {name:?}");
}

#[test]
fn relative_symlink_escape_stays_in_root() {
    let c = Case::new();
    let tar = RawTar::default()
        .symlink("escape", "../sentinel")
        .file("escape/pwned", b"x")
        .symlink("deep", "../../../../../../../../sentinel")
        .file("deep/pwned2", b"y")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    assert_eq!(fs::read(c.root.join("sentinel/pwned")).unwrap(), b"x");
    assert_eq!(fs::read(c.root.join("sentinel/pwned2")).unwrap(), b"y");
}

#[test]
fn absolute_symlink_escape_resolves_in_root() {
    let c = Case::new();
    let abs = c.abs_sentinel();
    let tar = RawTar::default()
        .dir("var/")
        .symlink("var/run", "/run")
        .file("var/run/x", b"legit")
        .symlink("abs", &abs)
        .file("abs/pwned", b"evil")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    // The docker-compatible case: var/run -> /run, then var/run/x lands in <root>/run/x.
    assert_eq!(fs::read(c.root.join("run/x")).unwrap(), b"legit");
    assert_eq!(fs::read(c.in_root(&format!("{abs}/pwned"))).unwrap(), b"evil");
}

#[test]
fn symlink_then_file_replaces_the_link() {
    let c = Case::new();
    let target = format!("{}/keep", c.abs_sentinel());
    let tar = RawTar::default()
        .symlink("f", &target)
        .file("f", b"new content")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    let md = fs::symlink_metadata(c.root.join("f")).unwrap();
    assert!(md.is_file());
    assert_eq!(fs::read(c.root.join("f")).unwrap(), b"new content");
}

#[test]
fn symlink_then_write_through_parent() {
    let c = Case::new();
    let tar = RawTar::default()
        .symlink("link", &c.abs_sentinel())
        .file("link/keep", b"overwritten?")
        .dir("link/sub/")
        .file("link/sub/new", b"n")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    assert_eq!(
        fs::read(c.in_root(&format!("{}/keep", c.abs_sentinel()))).unwrap(),
        b"overwritten?"
    );
}

#[test]
fn hardlink_out_of_root_is_refused() {
    for target in ["../sentinel/keep", "../../../../sentinel/keep"] {
        let c = Case::new();
        let tar = RawTar::default().hardlink("h", target).end();
        let err = c.apply(&tar).unwrap_err();
        assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");
        entry_named(&err, "h");
        c.assert_outside_untouched();
    }
    let c = Case::new();
    let abs = format!("{}/keep", c.abs_sentinel());
    let err = c.apply(&RawTar::default().hardlink("h", &abs).end()).unwrap_err();
    assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");
    c.assert_outside_untouched();
}

#[test]
fn hardlink_through_symlink_stays_in_root() {
    let c = Case::new();
    let tar = RawTar::default()
        .symlink("s", &c.abs_sentinel())
        .hardlink("h", "s/keep")
        .end();
    let err = c.apply(&tar).unwrap_err();
    assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");
    c.assert_outside_untouched();

    // Legitimate: the link's target path goes through an absolute symlink inside the image.
    let c = Case::new();
    let tar = RawTar::default()
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0")
        .symlink("ln", "/etc")
        .hardlink("h", "ln/passwd")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    let a = fs::metadata(c.root.join("etc/passwd")).unwrap();
    let b = fs::metadata(c.root.join("h")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn hardlink_entry_replacing_symlink_does_not_follow_it() {
    let c = Case::new();
    let tar = RawTar::default()
        .file("real", b"data")
        .symlink("h", &format!("{}/keep", c.abs_sentinel()))
        .hardlink("h", "real")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    assert_eq!(fs::read(c.root.join("h")).unwrap(), b"data");
}

#[test]
fn whiteouts_of_dotdot_and_root_are_rejected() {
    for name in [".wh..", "a/.wh..", ".wh.", "a/.wh."] {
        let c = Case::new();
        let tar = RawTar::default().dir("a/").file(name, b"").end();
        let err = c.apply(&tar).unwrap_err();
        assert!(matches!(err, LayerError::InvalidName { .. }), "{name}: {err}");
        c.assert_outside_untouched();
    }
    // `../.wh.sentinel` is clamped to the root: it whites out <root>/sentinel, which doesn't exist.
    let c = Case::new();
    c.apply(
        &RawTar::default()
            .file("../.wh.sentinel", b"")
            .file("/.wh.sentinel", b"")
            .end(),
    )
    .unwrap();
    c.assert_outside_untouched();
}

#[test]
fn whiteout_through_symlink_stays_in_root() {
    let c = Case::new();
    let tar = RawTar::default()
        .symlink("s", &c.abs_sentinel())
        .file("s/.wh.keep", b"")
        .file("s/.wh.sub", b"")
        .symlink("r", "../sentinel")
        .file("r/.wh.keep", b"")
        .file("r/.wh..wh..opq", b"")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
}

#[test]
fn dotdot_entries_are_clamped() {
    let c = Case::new();
    let tar = RawTar::default()
        .file("../pwned", b"1")
        .file("../../../../pwned2", b"2")
        .file("a/../../sentinel/keep", b"3")
        .dir("../sentinel/sub/")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    assert_eq!(fs::read(c.root.join("pwned")).unwrap(), b"1");
    assert_eq!(fs::read(c.root.join("pwned2")).unwrap(), b"2");
    assert_eq!(fs::read(c.root.join("sentinel/keep")).unwrap(), b"3");
}

#[test]
fn directory_replaced_by_symlink_to_outside() {
    let c = Case::new();
    let tar = RawTar::default()
        .dir("d/")
        .file("d/a", b"a")
        .symlink("d", &c.abs_sentinel())
        .file("d/b", b"b")
        .file("d/keep", b"clobber")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    assert!(
        fs::symlink_metadata(c.root.join("d"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read(c.in_root(&format!("{}/b", c.abs_sentinel()))).unwrap(),
        b"b"
    );
}

#[test]
fn pax_size_mismatch_is_an_error() {
    let c = Case::new();
    let mut t = RawTar::default();
    t.pax(&[("size", b"0")]);
    // The ustar header says 5 bytes; a parser honouring PAX would read the data as the next header.
    t.push(header(b"confused", b'0', 5, 0o644), b"hello");
    let err = c.apply(&t.end()).unwrap_err();
    assert!(matches!(err, LayerError::PaxSizeMismatch { .. }), "{err}");
    entry_named(&err, "confused");
    c.assert_outside_untouched();
}

#[test]
fn truncated_archives_are_errors_naming_the_entry() {
    let mut t = RawTar::default();
    t.file("first", b"ok");
    t.file("big/file", &vec![7u8; 10_000]);
    let full = t.end();
    // Mid-data, mid-header, and exactly at an entry boundary without the end marker.
    for (cut, expect) in [(1024 + 3000, "big/file"), (1024 + 100, "first"), (1024, "first")] {
        let c = Case::new();
        let err = c.apply(&full[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                LayerError::Truncated { .. } | LayerError::MissingTrailer { .. }
            ),
            "cut {cut}: {err}"
        );
        entry_named(&err, expect);
        c.assert_outside_untouched();
    }
    // A truncated gzip stream is an error too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &full).unwrap();
    let gz = gz.finish().unwrap();
    let c = Case::new();
    assert!(c.apply(&gz[..gz.len() / 2]).is_err());
}

#[test]
fn absurd_sizes_are_refused() {
    let c = Case::new();
    let mut h = header(b"huge", b'0', 0, 0o644);
    // A base-256 size of 2^62 bytes.
    h.as_old_mut().size = [0x80, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0];
    let mut t = RawTar::default();
    t.push(h, b"");
    let err = c.apply(&t.end()).unwrap_err();
    assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");
    entry_named(&err, "huge");

    // A PAX header claiming to be 4 GiB must not be read into memory.
    let mut t = RawTar::default();
    t.push(header(b"PaxHeaders/huge", b'x', 4 << 30, 0o644), b"");
    let err = c.apply(&t.end()).unwrap_err();
    assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");

    // A PAX size over the per-file limit.
    let mut t = RawTar::default();
    t.pax(&[("size", b"99999999999999999")]);
    t.push(header(b"paxhuge", b'0', 0, 0o644), b"");
    let err = c.apply(&t.end()).unwrap_err();
    assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");
    c.assert_outside_untouched();
}

#[test]
fn bad_checksum_and_sparse_are_refused() {
    let c = Case::new();
    let mut t = RawTar::default();
    t.file("a", b"x");
    let mut bytes = t.end();
    bytes[0] = b'b'; // name changed after the checksum was computed
    let err = c.apply(&bytes).unwrap_err();
    assert!(matches!(err, LayerError::BadChecksum { .. }), "{err}");
    let mut t = RawTar::default();
    t.push(header(b"sparse", b'S', 0, 0o644), b"");
    let err = c.apply(&t.end()).unwrap_err();
    assert!(matches!(err, LayerError::UnsupportedType { .. }), "{err}");
    c.assert_outside_untouched();
}

#[test]
fn overlay_xattrs_in_layers_are_not_applied() {
    let c = Case::new();
    let mut t = RawTar::default();
    t.pax(&[
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.user.ok", b"1"),
    ]);
    t.push(header(b"d/", b'5', 0, 0o755), b"");
    c.apply(&t.end()).unwrap();
    let mut v = [0u8; 64];
    assert!(
        rustix::fs::lgetxattr(c.root.join("d").as_path(), "trusted.overlay.redirect", &mut v[..]).is_err()
    );
    c.assert_outside_untouched();
}

#[test]
fn whiteouts_and_opaque_dirs_apply_in_delete_mode() {
    let c = Case::new();
    let r = &c.root;
    fs::create_dir_all(r.join("o/old")).unwrap();
    fs::write(r.join("o/oldfile"), b"").unwrap();
    fs::write(r.join("w"), b"").unwrap();
    fs::create_dir_all(r.join("wd/x")).unwrap();
    fs::write(r.join("file2dir"), b"").unwrap();
    fs::create_dir_all(r.join("dir2file/sub")).unwrap();
    let tar = RawTar::default()
        .dir("o/")
        .file("o/a-new", b"")
        .file("o/.wh..wh..opq", b"")
        .file("o/z-new", b"")
        .file(".wh.w", b"")
        .file(".wh.wd", b"")
        .file(".wh.missing", b"")
        .file("nodir/.wh.x", b"")
        .dir("file2dir/")
        .file("dir2file", b"f")
        .end();
    c.apply(&tar).unwrap();
    let mut o: Vec<_> = fs::read_dir(r.join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    o.sort();
    assert_eq!(o, ["a-new", "z-new"]);
    assert!(!r.join("w").exists() && !r.join("wd").exists());
    assert!(!r.join("nodir").exists(), "a whiteout must not create its parent");
    assert!(r.join("file2dir").is_dir());
    assert!(r.join("dir2file").is_file());
    c.assert_outside_untouched();
}

#[test]
fn overlay_mode_keeps_whiteouts_as_overlay_markers() {
    if !common::is_root() {
        lamina_testkit::skip("overlay whiteouts need root (mknod, trusted.* xattrs)");
        return;
    }
    let c = Case::new();
    let tar = RawTar::default()
        .dir("o/")
        .file("o/.wh..wh..opq", b"")
        .file("o/new", b"")
        .file("a/.wh.gone", b"")
        .end();
    let opts = ApplyOptions {
        whiteouts: lamina_store::layer::WhiteoutMode::Overlay,
        ..ApplyOptions::default()
    };
    apply_layer(&tar[..], &c.root, &opts).unwrap();
    let md = fs::symlink_metadata(c.root.join("a/gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(md.file_type().is_char_device() && md.rdev() == 0);
    let mut v = [0u8; 4];
    let n = rustix::fs::lgetxattr(c.root.join("o").as_path(), "trusted.overlay.opaque", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"y");
    assert!(c.root.join("o/new").is_file());
    c.assert_outside_untouched();
}
