//! Mounts made from fds (issue 11, runner side of item 1): binds and tmpfs land where the rootfs says,
//! in request order, with the asked-for flags, and are gone afterwards; a symlink in a mounted volume
//! cannot redirect a later mount onto the host (the runc CVE-2021-30465 class).

mod run_common;

use std::path::Path;
use std::process::Command;

use lamina_runner::Mount;
use run_common::{Fixture, require_root};

fn bind(source: &Path, destination: &str, readonly: bool) -> Mount {
    Mount::Bind {
        source: source.to_path_buf(),
        destination: destination.into(),
        readonly,
    }
}

#[test]
fn mounts_apply_in_order_with_their_flags_and_leave_nothing() {
    require_root!();
    let fx = Fixture::new();
    let vol = fx.path().join("vol");
    let ro = fx.path().join("ro");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("file"), "read-only\n").unwrap();
    let mut req = fx.request(
        "order",
        "echo w > /v/written && cat /v/t/ro/file && (echo x > /v/t/ro/file) 2>/dev/null || echo EROFS; \
         grep ' /v/t ' /proc/mounts | grep -c 'nosuid,nodev'; stat -c %a /v/t",
    );
    // Nested: the tmpfs target is inside the first bind, the last bind inside the tmpfs.
    req.mounts = vec![
        bind(&vol, "/v", false),
        Mount::Tmpfs {
            destination: "/v/t".into(),
            size: 1 << 20,
            mode: 0o1777,
        },
        bind(&ro, "/v/t/ro", true),
    ];
    let (o, out) = fx.run(&req);
    assert_eq!(o.exit_code, 0, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["read-only", "EROFS", "1", "1777"],
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(vol.join("written")).unwrap(), "w\n");
    // The stub for /v/t was made in the volume and is removed again; nothing stays mounted.
    assert!(!vol.join("t").exists(), "mount stub left in the volume");
    assert_eq!(std::fs::read_to_string(ro.join("file")).unwrap(), "read-only\n");
    let upper: Vec<_> = std::fs::read_dir(&req.upper_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !upper.iter().any(|n| n == "v"),
        "mount stub in the diff: {upper:?}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(fx.path().to_str().unwrap()), "{mountinfo}");
}

#[test]
fn binds_into_kernel_filesystems_are_refused() {
    require_root!();
    let fx = Fixture::new();
    for dest in ["/proc/sys/kernel", "/dev/x", "/sys/../sys/fs"] {
        let mut req = fx.request("kfs", "true");
        req.mounts = vec![bind(fx.path(), dest, false)];
        let err = lamina_runner::run(&req).unwrap_err();
        assert!(
            matches!(err, lamina_runner::RunError::MountOnKernelFs { .. }),
            "{dest}: {err}"
        );
    }
    // Through an image symlink, too: refused once resolved.
    std::os::unix::fs::symlink("/proc/sys/kernel", fx.lower.join("data")).unwrap();
    let mut req = fx.request("kfs-link", "true");
    req.mounts = vec![bind(fx.path(), "/data", false)];
    let err = lamina_runner::run(&req).unwrap_err();
    assert!(err.to_string().contains("/proc/sys/kernel"), "{err}");
}

/// A volume holds `x -> <host dir>`; a second mount targets `/v/x`. Resolved by path after the volume
/// is mounted (what a runtime taking path strings does), the kernel follows the link on the host and
/// the second mount covers the host dir. lamina resolves `/v/x` inside the rootfs.
#[test]
fn symlink_in_a_volume_cannot_redirect_a_later_mount() {
    require_root!();
    if !lamina_testkit::need_tools(&["unshare", "mount"]) {
        return;
    }
    let fx = Fixture::new();
    let victim = fx.path().join("victim");
    let vol = fx.path().join("vol");
    let payload = fx.path().join("payload");
    for d in [&victim, &vol, &payload] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(victim.join("canary"), "host").unwrap();
    std::fs::write(payload.join("planted"), "x").unwrap();
    std::os::unix::fs::symlink(&victim, vol.join("x")).unwrap();

    // Naive: the same two binds by path, in a throwaway mount namespace.
    let naive_root = fx.path().join("naive-root");
    std::fs::create_dir_all(naive_root.join("v")).unwrap();
    let script = format!(
        "mount --bind {vol} {root}/v && mount --bind {payload} {root}/v/x && ls {victim}",
        vol = vol.display(),
        root = naive_root.display(),
        payload = payload.display(),
        victim = victim.display(),
    );
    let naive = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let naive = String::from_utf8_lossy(&naive.stdout);
    assert!(
        naive.contains("planted"),
        "naive mount did not reach the host dir: {naive}"
    );

    let mut req = fx.request("swap", "ls /v/x; ls /v/x/../../");
    req.mounts = vec![bind(&vol, "/v", false), bind(&payload, "/v/x", true)];
    let (o, out) = fx.run(&req);
    assert_eq!(o.exit_code, 0, "{out}");
    let entries: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        vec![std::ffi::OsString::from("canary")],
        "host dir touched"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(victim.to_str().unwrap()));
}
