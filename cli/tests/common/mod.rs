//! Shared helpers for lamina's CLI integration tests: run the binary, build a busybox rootfs tarball.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn lamina_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lamina"))
}

/// `lamina --root ROOT args…`
pub fn lamina(root: &Path, args: &[&str]) -> Output {
    Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run lamina")
}

/// Runs lamina and insists on success; returns stdout.
pub fn ok(root: &Path, args: &[&str]) -> String {
    let out = lamina(root, args);
    assert!(
        out.status.success(),
        "lamina {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A busybox rootfs tarball made from the host's static busybox, like a minimal base image: `bin/busybox`,
/// a few applet symlinks, a hardlink, /etc/passwd and /etc/group, an empty /tmp (1777). `None` (with a
/// printed reason) if /usr/bin/busybox is missing.
pub fn busybox_rootfs_tar(dir: &Path) -> Option<PathBuf> {
    let bb = Path::new("/usr/bin/busybox");
    if !bb.exists() {
        lamina_testkit::skip("/usr/bin/busybox missing (install busybox-static)");
        return None;
    }
    let out = dir.join("rootfs.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&out).unwrap());
    let dir_entry = |b: &mut tar::Builder<std::fs::File>, path: &str, mode: u32| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    };
    for d in ["bin", "etc", "root", "usr", "usr/bin"] {
        dir_entry(&mut b, d, 0o755);
    }
    dir_entry(&mut b, "tmp", 0o1777);
    let data = std::fs::read(bb).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, "bin/busybox", &data[..]).unwrap();
    for applet in ["sh", "ls", "cat", "echo", "true", "env"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox").unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Link);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    b.append_link(&mut h, "usr/bin/busybox-hardlink", "bin/busybox")
        .unwrap();
    for (path, content, mode, uid) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            0o644,
            0,
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644, 0),
        ("root/.profile", "export PS1='# '\n", 0o600, 0),
        ("usr/owned-by-nobody", "x\n", 0o640, 65534),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(content.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap();
    Some(out)
}

/// A tarball holding one file of `size` pseudo-random (incompressible) bytes, written without holding it in
/// memory.
pub fn big_tar(path: &Path, size: u64) {
    struct Rng(u64);
    impl std::io::Read for Rng {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            for chunk in buf.chunks_mut(8) {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
            }
            Ok(buf.len())
        }
    }
    let mut b = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()));
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    b.append_data(
        &mut h,
        "big.bin",
        std::io::Read::take(Rng(0x9e37_79b9_7f4a_7c15), size),
    )
    .unwrap();
    b.into_inner().unwrap();
}

/// Parsed `lamina images --format json --no-trunc`: one object per line with docker's keys (`Repository`,
/// `Tag`, `ID`, `Digest`, …).
pub fn images(root: &Path) -> Vec<serde_json::Value> {
    ok(root, &["images", "--format", "json", "--no-trunc"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Whether the tests run as root (RUN steps need namespaces and overlay mounts).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// (steps run, steps cached) from `lamina build`'s summary line `=> built … (N steps run, M cached)`;
/// (0, 0) when there is none (a failed build).
pub fn step_counts(stderr: &str) -> (usize, usize) {
    let Some(l) = stderr.lines().find(|l| l.contains("steps run,")) else {
        return (0, 0);
    };
    let nums: Vec<usize> = l.split(['(', ' ', ',']).filter_map(|w| w.parse().ok()).collect();
    match nums[..] {
        [run, cached, ..] => (run, cached),
        _ => (0, 0),
    }
}
