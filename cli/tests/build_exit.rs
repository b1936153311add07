//! `lamina build` exit codes: 1 when the input is at fault (a failing RUN), with the cause chain printed
//! once; 2 when lamina or the machine is (the store's cache index can't be made).

use std::path::Path;
use std::process::Command;

mod common;

use common::{is_root, lamina_bin};

fn build(root: &Path, ctx: &Path) -> (Option<i32>, String) {
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "--network", "none"])
        .arg(ctx)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn failing_run_exits_1_with_the_chain() {
    let bb = Path::new("/usr/bin/busybox");
    if !is_root() || !bb.exists() {
        lamina_testkit::skip("RUN needs root and /usr/bin/busybox");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::copy(bb, ctx.join("rootfs/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin/echo")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nRUN echo about to fail; exit 3\n",
    )
    .unwrap();
    let (code, err) = build(&t.path().join("store"), &ctx);
    assert_eq!(code, Some(1), "{err}");
    let i = err.find("error: ").expect("an error line");
    let report = &err[i..];
    assert!(report.starts_with("error: Dockerfile:3: RUN"), "{report}");
    assert!(report.contains("caused by: exited with code 3"), "{report}");
    assert!(report.contains("about to fail"), "{report}");
    assert_eq!(err.matches("error: ").count(), 1, "rendered once:\n{err}");
}

#[test]
fn store_failure_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a"), "x").unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a /a\n").unwrap();
    let (code, err) = build(&root, &ctx);
    assert_eq!(code, Some(0), "{err}");
    // The cache index's dir replaced by a file: lamina's store is broken, not the user's input.
    let idx = root.join("cache/build");
    std::fs::remove_dir_all(&idx).unwrap();
    std::fs::write(&idx, "not a dir").unwrap();
    let (code, err) = build(&root, &ctx);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("caused by:"), "{err}");
}
