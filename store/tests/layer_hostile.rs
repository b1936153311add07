//! Hostile layers: containerd's pkg/archive `TestBreakouts` classes and the ones found since (CVE-2007-4559's
//! tarfile family, CVE-2018-15664-style symlink swaps, CVE-2024-21626/buildkit link races, forged overlayfs
//! metadata). Every archive below tries to write, link, chmod or delete outside the destination root.
//!
//! Each breakout test runs its payload three ways (see `common::breakout`): through Python's unfiltered
//! `tarfile` — which must hit the canary next to its root, or the payload proves nothing — then through
//! lamina's applier in overlay-snapshot mode (as root) and in delete mode, which must leave the canary alone
//! and either apply the archive in-root or refuse it with an error naming the entry.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use common::breakout::{Breakout, Case, entry_named, host_resolves_to};
use common::{RawTar, header};
use lamina_store::layer::{ApplyOptions, LayerError, apply_layer};

// --- names -----------------------------------------------------------------------------------------------

#[test]
fn absolute_names_land_in_root() {
    let Some(o) = Breakout::new(|c| {
        let abs = c.abs_sentinel();
        RawTar::default()
            .file(&format!("{abs}/pwned"), b"abs")
            .file(&format!("{abs}/keep"), b"clobbered")
            .dir(&format!("{abs}/sub/newdir/"))
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    assert_eq!(
        fs::read(c.in_root(&format!("{}/pwned", c.abs_sentinel()))).unwrap(),
        b"abs"
    );
    assert_eq!(
        fs::read(c.in_root(&format!("{}/keep", c.abs_sentinel()))).unwrap(),
        b"clobbered"
    );
}

#[test]
fn dotdot_entries_are_clamped() {
    let Some(o) = Breakout::new(|_| {
        RawTar::default()
            .file("../pwned", b"1")
            .file("../../../../pwned2", b"2")
            .file("a/../../sentinel/keep", b"3")
            .dir("../sentinel/sub/")
            .dir("../sentinel/newdir/")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let r = &o.case.root;
    assert_eq!(fs::read(r.join("pwned")).unwrap(), b"1");
    assert_eq!(fs::read(r.join("pwned2")).unwrap(), b"2");
    assert_eq!(fs::read(r.join("sentinel/keep")).unwrap(), b"3");
    assert!(r.join("sentinel/newdir").is_dir());
}

#[test]
fn long_names_through_pax_and_gnu_are_confined() {
    let long = format!("../sentinel/{}/{}", "a".repeat(90), "b".repeat(90));
    let Some(o) = Breakout::new(|c| {
        let mut t = RawTar::default();
        // The ustar name is harmless; the PAX `path` record is what an extractor honours.
        t.pax(&[("path", format!("{long}/pax").as_bytes())]);
        t.file("innocent", b"pax");
        t.gnu_long_name(&format!("{long}/gnu"));
        t.file("innocent2", b"gnu");
        // A PAX linkpath pointing out, then a write through it.
        t.pax(&[("linkpath", c.abs_sentinel().as_bytes())]);
        t.symlink("paxlink", "harmless");
        t.file("paxlink/keep", b"through pax link");
        t.end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    let inner = long.trim_start_matches("../");
    assert_eq!(fs::read(c.root.join(format!("{inner}/pax"))).unwrap(), b"pax");
    assert_eq!(fs::read(c.root.join(format!("{inner}/gnu"))).unwrap(), b"gnu");
    assert_eq!(
        fs::read(c.in_root(&format!("{}/keep", c.abs_sentinel()))).unwrap(),
        b"through pax link"
    );
}

// --- symlinks --------------------------------------------------------------------------------------------

#[test]
fn relative_symlink_escape_stays_in_root() {
    let Some(o) = Breakout::new(|_| {
        RawTar::default()
            .symlink("escape", "../sentinel")
            .file("escape/pwned", b"x")
            .symlink("deep", "../../../../../../../../sentinel")
            .file("deep/pwned2", b"y")
            .dir("updown/")
            .symlink("updown/l", "up/../../../sentinel")
            .file("updown/l/pwned3", b"z")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let r = &o.case.root;
    assert_eq!(fs::read(r.join("sentinel/pwned")).unwrap(), b"x");
    assert_eq!(fs::read(r.join("sentinel/pwned2")).unwrap(), b"y");
}

#[test]
fn absolute_symlink_escape_resolves_in_root() {
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .dir("var/")
            .symlink("var/run", "/run")
            .file("var/run/x", b"legit")
            .symlink("abs", &c.abs_sentinel())
            .file("abs/pwned", b"evil")
            // SymlinkEmptyFile: truncating through the link.
            .file("abs/keep", b"")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    // The docker-compatible case: var/run -> /run, then var/run/x lands in <root>/run/x.
    assert_eq!(fs::read(c.root.join("run/x")).unwrap(), b"legit");
    assert_eq!(
        fs::read(c.in_root(&format!("{}/pwned", c.abs_sentinel()))).unwrap(),
        b"evil"
    );
}

#[test]
fn symlink_to_slash_then_dirs_and_files_through_it() {
    let Some(o) = Breakout::new(|c| {
        let abs = c.abs_sentinel();
        RawTar::default()
            .symlink("rootlink", "/")
            .dir(&format!("rootlink{abs}/made/"))
            .file(&format!("rootlink{abs}/made/f"), b"1")
            .file(&format!("rootlink{abs}/keep"), b"2")
            .symlink("dotdot", "..")
            .file("dotdot/pwned", b"3")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    assert_eq!(
        fs::read(c.in_root(&format!("{}/made/f", c.abs_sentinel()))).unwrap(),
        b"1"
    );
    assert_eq!(fs::read(c.root.join("pwned")).unwrap(), b"3");
}

#[test]
fn symlink_chains_within_the_kernel_limit_stay_in_root() {
    // 30 hops (under the kernel's 40, so the host follows all of them) ending outside the root.
    let Some(o) = Breakout::new(|c| {
        let mut t = RawTar::default();
        for i in 0..30 {
            t.symlink(&format!("l{i}"), &format!("l{}", i + 1));
        }
        t.symlink("l30", &c.abs_sentinel());
        t.file("l0/keep", b"through the chain");
        t.file("l0/sub/new", b"n");
        t.end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    assert_eq!(
        fs::read(c.in_root(&format!("{}/keep", c.abs_sentinel()))).unwrap(),
        b"through the chain"
    );
}

#[test]
fn symlink_loops_and_overlong_chains_are_errors_not_hangs() {
    // Issue 11 finding 1: a resolver with a hop limit handed back the 41st link unresolved. Here every
    // length past the kernel's limit, and every loop, must be an error naming the entry — never a path
    // the host resolves further. (No tarfile control: the host kernel refuses these itself, ELOOP.)
    let c = Case::new();
    let abs = c.abs_sentinel();
    for (n, last) in [(41usize, abs.as_str()), (200, abs.as_str()), (2, "l0")] {
        let mut t = RawTar::default();
        for i in 0..n {
            t.symlink(&format!("l{i}"), &format!("l{}", i + 1));
        }
        t.symlink(&format!("l{n}"), last);
        t.file("l0/keep", b"x");
        let err = c.apply(&t.end()).unwrap_err();
        entry_named(&err, "l0/keep");
        c.assert_outside_untouched();
        // The host agrees this is no path at all.
        assert!(host_resolves_to(&c.root.join("l0")).is_none());
        fs::remove_dir_all(&c.root).unwrap();
        fs::create_dir(&c.root).unwrap();
    }
    // Loops as the target of a dangling-link parent walk (`mkdir -p` through a link to a missing dir).
    let tar = RawTar::default()
        .symlink("a", "b/x")
        .symlink("b", "a/y")
        .file("a/f", b"x")
        .end();
    let err = c.apply(&tar).unwrap_err();
    entry_named(&err, "a/f");
    c.assert_outside_untouched();
}

#[test]
fn symlink_then_file_of_the_same_name_replaces_the_link() {
    let Some(o) = Breakout::new(|c| {
        let target = format!("{}/keep", c.abs_sentinel());
        RawTar::default()
            .symlink("f", &target)
            .file("f", b"new content")
            // A file, then a symlink of the same name, then the file again (duplicate entries).
            .file("g", b"first")
            .symlink("g", "../sentinel/keep")
            .file("g", b"second")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let r = &o.case.root;
    assert!(fs::symlink_metadata(r.join("f")).unwrap().is_file());
    assert_eq!(fs::read(r.join("f")).unwrap(), b"new content");
    assert_eq!(fs::read(r.join("g")).unwrap(), b"second");
}

#[test]
fn directory_replaced_by_symlink_mid_archive() {
    // The applier caches parent handles; replacing a directory by a symlink must drop that cache. Python's
    // tarfile cannot unlink a directory to plant the link, so its control starts where the swap happened.
    let swap = |c: &Case| {
        let mut t = RawTar::default();
        t.symlink("d", &c.abs_sentinel());
        t.file("d/b", b"b");
        t.file("d/keep", b"clobber");
        t.dir("d/sub/");
        t.file("d/sub/deep", b"deep");
        t
    };
    if Breakout::new(|c| swap(c).end()).run().is_none() {
        return;
    }
    let c = Case::new();
    let mut t = RawTar::default();
    t.dir("d/").dir("d/sub/").file("d/a", b"a").file("d/sub/x", b"x");
    t.buf.extend_from_slice(&swap(&c).buf);
    c.apply(&t.end()).unwrap();
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
    assert_eq!(
        fs::read(c.in_root(&format!("{}/sub/deep", c.abs_sentinel()))).unwrap(),
        b"deep"
    );
}

#[test]
fn directory_entry_replaces_a_symlink_instead_of_following_it() {
    // DirectoryOverrideSymlink: an existing link (from this layer or below) then a dir entry of its name.
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .symlink("localetc", &c.abs_sentinel())
            .dir("localetc/")
            .file("localetc/keep", b"x")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let r = &o.case.root;
    assert!(fs::symlink_metadata(r.join("localetc")).unwrap().is_dir());
    assert_eq!(fs::read(r.join("localetc/keep")).unwrap(), b"x");
}

#[test]
fn symlinks_named_dotdot_or_root_are_refused() {
    // SymlinkParentDirectory / SymlinkEmptyFilename: a link that would replace the root or its parent.
    for name in ["..", "", ".", "a/..", "../.."] {
        let c = Case::new();
        fs::create_dir(c.root.join("a")).unwrap();
        // Naive control: the name joined onto the root is the root or outside it.
        let naive = host_resolves_to(&c.root.join(name)).unwrap();
        assert!(!naive.starts_with(c.root.join("a")), "{name}");
        let tar = RawTar::default().dir("a/").symlink(name, &c.abs_sentinel()).end();
        let err = c.apply(&tar).unwrap_err();
        assert!(matches!(err, LayerError::InvalidName { .. }), "{name:?}: {err}");
        c.assert_outside_untouched();
        assert!(fs::symlink_metadata(&c.root).unwrap().is_dir());
    }
}

// --- hardlinks -------------------------------------------------------------------------------------------

#[test]
fn hardlink_out_of_root_is_refused_and_never_written_through() {
    for target in ["../sentinel/keep", "a/../../sentinel/keep", "ABS"] {
        let Some(o) = Breakout::new(|c| {
            let t = if target == "ABS" {
                format!("{}/keep", c.abs_sentinel())
            } else {
                target.to_owned()
            };
            // The link, then a write to its name: tarfile writes through the link into the host file.
            RawTar::default()
                .dir("a/")
                .hardlink("h", &t)
                .file("h", b"written through")
                .end()
        })
        .run() else {
            return;
        };
        let err = o.result.unwrap_err();
        assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");
        entry_named(&err, "h");
    }
}

#[test]
fn hardlink_through_symlink_stays_in_root() {
    // HardlinkAbsolute / HardlinkRelative: the link's target path goes through a symlink out of the root.
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .symlink("s", &c.abs_sentinel())
            .hardlink("h", "s/keep")
            .file("h", b"written through")
            .end()
    })
    .run() else {
        return;
    };
    let err = o.result.unwrap_err();
    assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");

    // Legitimate: the same shape inside the image links the in-root file.
    let c = Case::new();
    let tar = RawTar::default()
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0")
        .symlink("ln", "/etc")
        .hardlink("h", "ln/passwd")
        .dir("breakouts/")
        .symlink("breakouts/d1", "../../etc")
        .hardlink("breakouts/mypasswd", "/breakouts/d1/passwd")
        .hardlink("direct", "../../../../etc/passwd")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    let ino = fs::metadata(c.root.join("etc/passwd")).unwrap().ino();
    for p in ["h", "breakouts/mypasswd", "direct"] {
        assert_eq!(fs::metadata(c.root.join(p)).unwrap().ino(), ino, "{p}");
    }
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_not_its_target() {
    // HardlinkSymlinkAbsolute / HardlinkSymlinkChmod: `h` links `s`, a symlink to a host file, with a setuid
    // mode. Following `s` (link(2) with AT_SYMLINK_FOLLOW, then chmod by path) links and chmods the host file.
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .symlink("s", &format!("{}/keep", c.abs_sentinel()))
            .raw("h", b'1', 0o4777, "s")
            .symlink("rel", "../sentinel/keep")
            .raw("h2", b'1', 0o4777, "rel")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let r = &o.case.root;
    for (l, s) in [("h", "s"), ("h2", "rel")] {
        let md = fs::symlink_metadata(r.join(l)).unwrap();
        assert!(md.file_type().is_symlink(), "{l}");
        assert_eq!(md.ino(), fs::symlink_metadata(r.join(s)).unwrap().ino());
    }
}

#[test]
fn hardlink_entry_replacing_symlink_does_not_follow_it() {
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .file("real", b"data")
            .symlink("h", &format!("{}/keep", c.abs_sentinel()))
            .hardlink("h", "real")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    assert_eq!(fs::read(o.case.root.join("h")).unwrap(), b"data");
}

// --- whiteouts -------------------------------------------------------------------------------------------

#[test]
fn whiteouts_of_dotdot_and_root_are_rejected() {
    for name in [
        ".wh..",
        "a/.wh..",
        ".wh.",
        "a/.wh.",
        ".wh...",
        "a/.wh...",
        ".wh..wh..opq/x",
    ] {
        let c = Case::new();
        fs::create_dir(c.root.join("a")).unwrap();
        // Naive control: the whited-out path joined onto the root is the marker's own directory or one
        // above it, never a child it may delete.
        let (dir, target) = name.rsplit_once(".wh.").unwrap();
        let naive = host_resolves_to(&c.root.join(dir).join(target));
        let tar = RawTar::default().dir("a/").file(name, b"").end();
        let res = c.apply(&tar);
        c.assert_outside_untouched();
        if name.starts_with(".wh..wh..opq/") {
            // A directory named like the opaque marker is just a name (WhiteoutDirectoryName).
            res.unwrap();
            continue;
        }
        let naive = naive.unwrap();
        assert!(
            c.root.join(dir).starts_with(&naive),
            "{name}: naive target {naive:?}"
        );
        let err = res.unwrap_err();
        assert!(matches!(err, LayerError::InvalidName { .. }), "{name}: {err}");
    }
    // `../.wh.sentinel` is clamped to the root: it whites out <root>/sentinel, which doesn't exist. Joined
    // naively it names the canary itself.
    let c = Case::new();
    assert_eq!(
        host_resolves_to(&c.root.join("..").join("sentinel")),
        Some(c.sentinel.clone())
    );
    c.apply(
        &RawTar::default()
            .file("../.wh.sentinel", b"")
            .file("/.wh.sentinel", b"")
            .file("a/../../.wh.sentinel", b"")
            .end(),
    )
    .unwrap();
    c.assert_outside_untouched();
}

#[test]
fn whiteout_through_symlink_stays_in_root() {
    // WhiteoutSymlinkPath: `s/.wh.keep` where `s` points out. tarfile writes the marker files into the
    // canary; a join-then-remove applier deletes the canary's files.
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .symlink("s", &c.abs_sentinel())
            .file("s/.wh.keep", b"")
            .file("s/.wh.sub", b"")
            .symlink("r", "../sentinel")
            .file("r/.wh.keep", b"")
            .file("r/.wh..wh..opq", b"")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    // What lamina planted, resolved on the host, is the canary: a join-then-remove would have deleted it.
    assert_eq!(host_resolves_to(&c.root.join("r")), Some(c.sentinel.clone()));
}

#[test]
fn whiteout_of_a_symlink_removes_the_link_not_its_target() {
    // WhiteoutSymlink: `.wh.localetc` where localetc points at a directory outside.
    let c = Case::new();
    std::os::unix::fs::symlink(&c.sentinel, c.root.join("localetc")).unwrap();
    std::os::unix::fs::symlink("../sentinel", c.root.join("rel")).unwrap();
    // Naive control: the joined path resolves to the canary, which a following remove_all would empty.
    assert_eq!(
        host_resolves_to(&c.root.join("localetc")),
        Some(c.sentinel.clone())
    );
    let tar = RawTar::default()
        .file(".wh.localetc", b"")
        .file(".wh.rel", b"")
        .end();
    c.apply(&tar).unwrap();
    c.assert_outside_untouched();
    assert!(fs::symlink_metadata(c.root.join("localetc")).is_err());
    assert!(fs::symlink_metadata(c.root.join("rel")).is_err());
}

#[test]
fn opaque_marker_through_symlink_stays_in_root() {
    // An opaque marker whose directory is a link out: a naive applier empties (or marks opaque) the host
    // directory; tarfile writes the marker file into it.
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .symlink("o", &c.abs_sentinel())
            .file("o/.wh..wh..opq", b"")
            .symlink("p", "../../sentinel")
            .file("p/.wh..wh..opq", b"")
            .end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
}

// --- devices, setuid, xattrs -----------------------------------------------------------------------------

#[test]
fn device_nodes_and_fifos_land_in_root() {
    if !lamina_testkit::need_root("the naive control must be able to mknod to hit the canary") {
        return;
    }
    let Some(o) = Breakout::new(|c| {
        RawTar::default()
            .device("../sentinel/null", b'3', 1, 3)
            .device(&format!("{}/blk", c.abs_sentinel()), b'4', 7, 0)
            .symlink("s", &c.abs_sentinel())
            .device("s/fifo", b'6', 0, 0)
            .end()
    })
    .run() else {
        return;
    };
    let stats = o.result.unwrap();
    let c = &o.case;
    let null = fs::symlink_metadata(c.root.join("sentinel/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert!(
        fs::symlink_metadata(c.in_root(&format!("{}/fifo", c.abs_sentinel())))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(stats.skipped_devices, 0);
}

#[test]
fn setuid_files_land_in_root() {
    let Some(o) = Breakout::new(|c| {
        let mut t = RawTar::default();
        t.push(header(b"../sentinel/suid", b'0', 2, 0o4755), b"#!");
        t.symlink("s", &c.abs_sentinel());
        t.push(header(b"s/sgid", b'0', 2, 0o2755), b"#!");
        // Mode change of an existing host file through a link: tarfile chmods by path.
        t.push(header(b"s/keep", b'0', 8, 0o4777), b"precious");
        t.end()
    })
    .run() else {
        return;
    };
    o.result.unwrap();
    let c = &o.case;
    let mode = |p: &str| fs::metadata(c.root.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("sentinel/suid"), 0o4755);
    let abs = c.abs_sentinel();
    let rel = abs.trim_start_matches('/');
    assert_eq!(mode(&format!("{rel}/sgid")), 0o2755);
    assert_eq!(mode(&format!("{rel}/keep")), 0o4777);
}

#[test]
fn xattrs_never_reach_through_links() {
    // A naive applier sets xattrs by joined path, following the entry's own link: file capabilities and
    // user xattrs land on the host file the symlink names.
    let caps: &[u8] = &[1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let Some(o) = Breakout::new(|c| {
        let mut t = RawTar::default();
        t.pax(&[("SCHILY.xattr.user.pwned", b"1")]);
        t.symlink("s", &format!("{}/keep", c.abs_sentinel()));
        t.pax(&[("SCHILY.xattr.security.capability", caps)]);
        t.symlink("cap", "../sentinel/keep");
        t.pax(&[("SCHILY.xattr.user.pwned", b"2")]);
        t.file("../sentinel/keep", b"precious");
        t.end()
    })
    .with_xattrs()
    .run() else {
        return;
    };
    let stats = o.result.unwrap();
    assert!(stats.skipped_xattrs >= 2, "{stats:?}");
    let mut v = [0u8; 8];
    let n = rustix::fs::lgetxattr(
        o.case.root.join("sentinel/keep").as_path(),
        "user.pwned",
        &mut v[..],
    );
    assert_eq!(
        &v[..n.unwrap()],
        b"2",
        "a plain file's own xattr is applied, in-root"
    );
}

#[test]
fn overlay_xattrs_in_layers_are_not_applied() {
    // trusted.overlay.* (and user.overlay.* for userxattr mounts) would let a layer forge overlayfs
    // redirects, origins and opaque flags. The naive control applies them.
    let forged: &[(&str, &[u8])] = &[
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.user.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.user.ok", b"1"),
    ];
    let tar = || {
        let mut t = RawTar::default();
        t.pax(forged);
        t.push(header(b"d/", b'5', 0, 0o755), b"");
        t.end()
    };
    let get = |c: &Case, k: &str| {
        let mut v = [0u8; 64];
        rustix::fs::lgetxattr(c.root.join("d").as_path(), k, &mut v[..]).ok()
    };
    if lamina_testkit::need_tools(&["python3"]) && common::is_root() {
        let control = Case::new();
        control.naive_extract(&tar(), true);
        assert!(
            get(&control, "trusted.overlay.redirect").is_some(),
            "the naive control forged it"
        );
    }
    let c = Case::new();
    c.apply(&tar()).unwrap();
    for k in [
        "trusted.overlay.redirect",
        "trusted.overlay.opaque",
        "user.overlay.redirect",
    ] {
        assert!(get(&c, k).is_none(), "{k} was applied");
    }
    assert!(get(&c, "user.ok").is_some());
    c.assert_outside_untouched();
}

// --- malformed archives ----------------------------------------------------------------------------------

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
