//! A reader that goes away (`lamina images | head -1`, `lamina history img | grep -q x`) ends lamina the way
//! it ends `ls` or the docker CLI: killed by SIGPIPE, nothing on stderr. Rust ignores SIGPIPE, so a plain
//! `println!` panics there with a backtrace hint instead; these tests fail against that.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{busybox_rootfs_tar, lamina_bin, ok};

/// Runs lamina with stdout a pipe whose read end is already closed, so its first write gets EPIPE.
fn with_closed_stdout(root: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run lamina");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn listing_commands_end_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let Some(tar) = busybox_rootfs_tar(dir.path()) else {
        return;
    };
    ok(&root, &["import", tar.to_str().unwrap(), "bb"]);
    // Commands that print tables, JSON documents, streams and single lines.
    let cases: &[&[&str]] = &[
        &["images"],
        &["images", "--format", "json"],
        &["ps", "-a"],
        &["history", "bb"],
        &["inspect", "bb"],
        &["ls-layer", "bb"],
        &["tree", "bb"],
        &["version"],
    ];
    for args in cases {
        let (status, stderr) = with_closed_stdout(&root, args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "lamina {args:?} complained about the closed pipe:\n{stderr}"
        );
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "lamina {args:?} should end by SIGPIPE, got {status} (stderr: {stderr})"
        );
    }
}

#[test]
fn streaming_an_archive_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let Some(tar) = busybox_rootfs_tar(dir.path()) else {
        return;
    };
    ok(&root, &["import", tar.to_str().unwrap(), "bb"]);
    // `save -o -` streams an archive to stdout through `?`-propagated io errors, not the print macros.
    let (status, stderr) = with_closed_stdout(&root, &["save", "bb", "-o", "-"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status}: {stderr}");
}
