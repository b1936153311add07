//! `lamina build --platform`: a stage for another platform than the host's builds from that platform's
//! base image (picked from a multi-arch index in a real docker-registry, stored untagged so the tag
//! keeps naming the host's image), and `FROM --platform=$BUILDPLATFORM` stages stay on the host. (RUN
//! under emulation and several platforms at once: build_multiplatform.rs.)

mod common;
mod registry_support;

use std::path::Path;

use registry_support::{Registry, have, lamina, multi_arch_layout, skopeo};

/// Pushes a two-platform index (linux/amd64 and linux/arm64/v8, each with `/arch` naming it).
fn push_multi_arch(reg: &Registry, dir: &Path) -> String {
    let layout = dir.join("layout");
    multi_arch_layout(&layout);
    let name = format!("{}/multi:1", reg.host());
    let o = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{name}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    name
}

struct Out {
    ok: bool,
    stderr: String,
}

fn build(root: &Path, ctx: &Path, df: &str, extra: &[&str]) -> Out {
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    let o = lamina()
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "--network", "none"])
        .args(extra)
        .arg(ctx)
        .output()
        .unwrap();
    Out {
        ok: o.status.success(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// (Architecture, Variant) of an image in the store, and its rootfs unpacked into `dir`.
fn look(root: &Path, image: &str, dir: &Path) -> (String, String) {
    let o = lamina()
        .arg("--root")
        .arg(root)
        .args(["inspect", image])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    let o = lamina()
        .arg("--root")
        .arg(root)
        .args(["unpack", image])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        v["Architecture"].as_str().unwrap_or_default().to_owned(),
        v["Variant"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn builds_for_another_platform_without_run() {
    if !common::is_root() {
        lamina_testkit::skip("COPY sets root ownership, which needs root");
        return;
    }
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => {
            lamina_testkit::skip(&format!(
                "host architecture {a} is in neither image of the test index"
            ));
            return;
        }
    };
    let other = if host_arch == "amd64" { "arm64" } else { "amd64" };
    let Some(reg) = Registry::start("") else { return };
    let t = tempfile::tempdir().unwrap();
    let base = push_multi_arch(&reg, t.path());
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello"), "hi\n").unwrap();
    let root = t.path().join("store");

    // The other platform: its base image, its architecture in the config.
    let df = format!("FROM {base}\nCOPY hello /hello\n");
    let b = build(
        &root,
        &ctx,
        &df,
        &["--platform", &format!("linux/{other}"), "-t", "app-other"],
    );
    assert!(b.ok, "{}", b.stderr);
    let (arch, _) = look(&root, "app-other", &t.path().join("u1"));
    assert_eq!(arch, other);
    assert_eq!(
        std::fs::read_to_string(t.path().join("u1/arch")).unwrap(),
        format!("{other}\n")
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("u1/hello")).unwrap(),
        "hi\n"
    );

    // The tag still names the host's image, and a host build uses it.
    let b = build(&root, &ctx, &df, &["-t", "app-host"]);
    assert!(b.ok, "{}", b.stderr);
    let (arch, _) = look(&root, "app-host", &t.path().join("u2"));
    assert_eq!(arch, host_arch);
    assert_eq!(
        std::fs::read_to_string(t.path().join("u2/arch")).unwrap(),
        format!("{host_arch}\n")
    );
    let (arch, _) = look(&root, &base, &t.path().join("u3"));
    assert_eq!(
        arch, host_arch,
        "pulling for another platform must not retag the base"
    );

    // FROM --platform=$BUILDPLATFORM stays on the host; the final stage is the target's.
    let df = format!(
        "FROM --platform=$BUILDPLATFORM {base} AS tools\n\
         FROM {base}\n\
         COPY --from=tools /arch /build-arch\n"
    );
    let b = build(
        &root,
        &ctx,
        &df,
        &["--platform", &format!("linux/{other}"), "-t", "mixed"],
    );
    assert!(b.ok, "{}", b.stderr);
    look(&root, "mixed", &t.path().join("u4"));
    assert_eq!(
        std::fs::read_to_string(t.path().join("u4/arch")).unwrap(),
        format!("{other}\n")
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("u4/build-arch")).unwrap(),
        format!("{host_arch}\n")
    );

    // scratch gets the target platform, variant included.
    let b = build(
        &root,
        &ctx,
        "FROM scratch\nCOPY hello /\n",
        &["--platform", "linux/arm/v7", "-t", "s"],
    );
    assert!(b.ok, "{}", b.stderr);
    assert_eq!(
        look(&root, "s", &t.path().join("u5")),
        ("arm".into(), "v7".into())
    );

    // A RUN in a stage for another platform runs under emulation; this base has no /bin/sh, so it fails
    // at its line either way: without a binfmt_misc handler, saying how to install one.
    let df = format!("FROM {base}\nCOPY hello /hello\nRUN cat /hello\n");
    let b = build(&root, &ctx, &df, &["--platform", &format!("linux/{other}")]);
    assert!(!b.ok);
    assert!(b.stderr.contains("Dockerfile:3"), "{}", b.stderr);
    let handler = std::fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|d| d.count() > 2)
        .unwrap_or(false);
    if !handler {
        assert!(
            b.stderr.contains("emulation") && b.stderr.contains("qemu-user-static"),
            "{}",
            b.stderr
        );
    }
    let b = build(
        &root,
        &ctx,
        "FROM scratch\n",
        &["--platform", "linux/arm64/v8/extra"],
    );
    assert!(!b.ok && b.stderr.contains("invalid platform"), "{}", b.stderr);
}
