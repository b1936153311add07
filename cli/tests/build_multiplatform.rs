//! `lamina build --platform linux/amd64,linux/arm64`: one run builds both platforms from a two-platform
//! busybox base (the arm64 busybox from Debian's `busybox-static:arm64`, see scripts/test.sh), arm64
//! RUN steps under QEMU through binfmt_misc, a `FROM --platform=$BUILDPLATFORM` stage once and natively;
//! the index pushed to a real docker-registry is what skopeo and podman read.

mod common;
mod registry_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use registry_support::{Registry, arm64_busybox, busybox_multi_arch_layout, have, lamina, ok, skopeo};

/// Whether the kernel has an enabled arm64 handler with the F flag (what a build inside a rootfs needs).
fn have_arm64_handler() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/sys/fs/binfmt_misc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let t = std::fs::read_to_string(e.path()).unwrap_or_default();
        t.starts_with("enabled")
            && t.contains("0200b700")
            && t.lines()
                .any(|l| l.strip_prefix("flags:").is_some_and(|f| f.contains('F')))
    })
}

/// What the machine lacks for these tests, if anything.
fn missing() -> Option<String> {
    if !common::is_root() {
        return Some("RUN steps need root".into());
    }
    if std::env::consts::ARCH != "x86_64" {
        return Some("the test index pairs an x86_64 host with arm64".into());
    }
    if !have("skopeo") {
        return Some("skopeo is not installed".into());
    }
    if arm64_busybox().is_none() {
        return Some("no arm64 busybox (scripts/test.sh extracts busybox-static:arm64)".into());
    }
    if !have_arm64_handler() {
        return Some(
            "no binfmt_misc handler with the F flag for arm64 (apt-get install qemu-user-static)".into(),
        );
    }
    None
}

/// Pushes the two-platform busybox base; returns its name.
fn push_base(reg: &Registry, dir: &Path) -> String {
    let layout = dir.join("layout");
    busybox_multi_arch_layout(&layout, &arm64_busybox().unwrap());
    let name = format!("{}/busybox:multi", reg.host());
    ok(
        &skopeo(&[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:busybox", layout.display()),
            &format!("docker://{name}"),
        ]),
        "skopeo copy --all (base)",
    );
    name
}

fn lamina_in(root: &Path) -> Command {
    let mut c = lamina();
    c.arg("--root").arg(root);
    c
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn two_platforms_in_one_build_pushed_as_an_index() {
    if let Some(why) = missing() {
        lamina_testkit::skip(&why);
        return;
    }
    let Some(reg) = Registry::start("") else { return };
    let t = tempfile::tempdir().unwrap();
    let base = push_base(&reg, t.path());
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // The tools stage reads no TARGET* arg: one expansion for both targets, so it runs once, on the host.
    // Its marker prints `tools-ran-2` (the step text shows `$((1+1))`, so only output counts).
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM {base} AS tools\n\
             RUN echo tools-ran-$((1+1)) && uname -m > /build-arch\n\
             FROM {base}\n\
             ARG TARGETARCH\n\
             ARG TARGETPLATFORM\n\
             ARG BUILDPLATFORM\n\
             COPY --from=tools /build-arch /build-arch\n\
             RUN uname -m > /uname && echo $TARGETARCH > /targetarch && echo \"$BUILDPLATFORM $TARGETPLATFORM\" > /platforms\n"
        ),
    )
    .unwrap();
    let root = t.path().join("store");
    let out = t.path().join("out");
    let app = format!("{}/app:1", reg.host());
    let o = lamina_in(&root)
        .args(["build", "--progress", "plain", "--network", "none"])
        .args(["--platform", "linux/amd64,linux/arm64", "-t", &app, "--push"])
        .args(["-o", "type=image"])
        .arg("-o")
        .arg(format!("type=local,dest={}", out.display()))
        .arg(&ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("tools-ran-2").count(),
        1,
        "the BUILDPLATFORM stage runs once:\n{stderr}"
    );

    // type=local: one dir per platform; the arm64 RUN ran under emulation.
    let arm = out.join("linux_arm64");
    let amd = out.join("linux_amd64");
    assert_eq!(read(arm.join("uname")), "aarch64\n");
    assert_eq!(read(arm.join("targetarch")), "arm64\n");
    assert_eq!(read(arm.join("platforms")), "linux/amd64 linux/arm64\n");
    assert_eq!(read(arm.join("arch")), "arm64\n", "arm64 image on the arm64 base");
    assert_eq!(read(amd.join("uname")), "x86_64\n");
    assert_eq!(read(amd.join("targetarch")), "amd64\n");
    assert_eq!(read(arm.join("build-arch")), "x86_64\n", "tools ran natively");
    assert_eq!(read(amd.join("build-arch")), "x86_64\n");

    // The registry holds an index of both, which skopeo copies whole.
    let raw = ok(
        &skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{app}"),
        ]),
        "skopeo inspect --raw",
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let mut archs: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);
    let copied = t.path().join("copied");
    ok(
        &skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{app}"),
            &format!("oci:{}:app", copied.display()),
        ]),
        "skopeo copy --all (result)",
    );

    // `save` of the index tag archives every platform.
    let saved = t.path().join("saved.tar");
    ok(
        &lamina_in(&root)
            .args(["save", "--format", "oci", "-o"])
            .arg(&saved)
            .arg(&app)
            .output()
            .unwrap(),
        "lamina save",
    );
    let raw = ok(
        &skopeo(&["inspect", "--raw", &format!("oci-archive:{}:1", saved.display())]),
        "skopeo inspect oci-archive (save)",
    );
    let saved_index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        saved_index["manifests"], index["manifests"],
        "the pushed index, saved"
    );

    // Prune keeps every platform's image of a tagged index; the arm64 one runs under emulation.
    ok(
        &lamina_in(&root).args(["prune", "--all"]).output().unwrap(),
        "lamina prune --all",
    );
    let o = lamina_in(&root)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            "linux/arm64",
            &app,
        ])
        .args(["uname", "-m"])
        .output()
        .unwrap();
    assert_eq!(ok(&o, "lamina run --platform linux/arm64"), "aarch64\n");
    let o = lamina_in(&root)
        .args(["run", "--rm", "--network", "none", &app, "uname", "-m"])
        .output()
        .unwrap();
    assert_eq!(ok(&o, "lamina run (host)"), "x86_64\n");

    // pull --platform takes the arm64 image of the pushed index into a fresh store; run refuses a
    // platform the image is not for.
    let fresh = t.path().join("fresh");
    ok(
        &lamina_in(&fresh)
            .args(["pull", "--platform", "linux/arm64", &app])
            .output()
            .unwrap(),
        "lamina pull --platform linux/arm64",
    );
    let o = lamina_in(&fresh)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            "linux/arm64",
            &app,
        ])
        .args(["cat", "/targetarch"])
        .output()
        .unwrap();
    assert_eq!(ok(&o, "run the pulled arm64 image"), "arm64\n");
    let o = lamina_in(&fresh)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            "linux/amd64",
            &app,
            "true",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is for linux/arm64"));

    // `images` lists the index once, with its platforms; `inspect` shows the index's manifests.
    let o = lamina_in(&root)
        .args(["images", "--no-trunc", "--format", "json"])
        .output()
        .unwrap();
    let listing = ok(&o, "lamina images");
    let row: serde_json::Value = listing
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| {
            format!(
                "{}:{}",
                r["Repository"].as_str().unwrap(),
                r["Tag"].as_str().unwrap()
            ) == app
        })
        .unwrap_or_else(|| panic!("{app} not in\n{listing}"));
    assert_eq!(row["Platforms"], "linux/amd64,linux/arm64");
    // The default table gains a PLATFORMS column only when an index is listed.
    let o = lamina_in(&root).args(["images"]).output().unwrap();
    let table = ok(&o, "lamina images");
    assert!(table.lines().next().unwrap().ends_with("PLATFORMS"), "{table}");
    let o = lamina_in(&root)
        .args(["inspect", "--format", "{{json .Index}}", &app])
        .output()
        .unwrap();
    let idx: serde_json::Value = serde_json::from_str(&ok(&o, "lamina inspect")).unwrap();
    assert_eq!(idx["Digest"].as_str(), row["ID"].as_str());
    let plats: Vec<&str> = idx["Manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["Platform"].as_str())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);

    if !have("podman") {
        lamina_testkit::skip("podman is not installed (apt-get install podman)");
        return;
    }
    let pd = t.path().join("podman");
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::write(pd.join("auth.json"), "{}").unwrap();
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(pd.join("root"))
            .arg("--runroot")
            .arg(pd.join("run"))
            .arg("--tmpdir")
            .arg(pd.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .env("REGISTRY_AUTH_FILE", pd.join("auth.json"))
            .args(args)
            .output()
            .unwrap()
    };
    ok(
        &podman(&["pull", "--tls-verify=false", "--platform", "linux/arm64", &app]),
        "podman pull --platform linux/arm64",
    );
    let arch = ok(
        &podman(&["image", "inspect", "--format", "{{.Architecture}}", &app]),
        "podman image inspect",
    );
    assert_eq!(arch.trim(), "arm64");
}

#[test]
fn arm64_run_steps_cache_apart_from_amd64() {
    if let Some(why) = missing() {
        lamina_testkit::skip(&why);
        return;
    }
    let Some(reg) = Registry::start("") else { return };
    let t = tempfile::tempdir().unwrap();
    let base = push_base(&reg, t.path());
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // Same Dockerfile, each platform alone then both: the second run is all cache hits, and the
    // single-platform runs don't share a RUN layer (the uname differs).
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN uname -m > /uname\n"),
    )
    .unwrap();
    let root = t.path().join("store");
    let build = |platform: &str, dest: &Path| {
        let o = lamina_in(&root)
            .args([
                "build",
                "--progress",
                "plain",
                "--network",
                "none",
                "--platform",
                platform,
            ])
            .arg("-o")
            .arg(format!("type=local,dest={}", dest.display()))
            .arg(&ctx)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{e}");
        e
    };
    build("linux/arm64", &t.path().join("a"));
    assert_eq!(read(t.path().join("a/uname")), "aarch64\n");
    build("linux/amd64", &t.path().join("b"));
    assert_eq!(read(t.path().join("b/uname")), "x86_64\n");
    let both = build("linux/amd64,linux/arm64", &t.path().join("c"));
    assert!(both.contains("(0 steps run, 2 cached)"), "{both}");
    assert_eq!(read(t.path().join("c/linux_arm64/uname")), "aarch64\n");

    // --cache-to carries both platforms' records: a fresh store building both from it runs nothing.
    let cache = t.path().join("cache");
    let o = lamina_in(&root)
        .args(["build", "--progress", "plain", "--network", "none"])
        .args(["--platform", "linux/amd64,linux/arm64"])
        .arg("--cache-to")
        .arg(format!("type=local,dest={},mode=max", cache.display()))
        .arg(&ctx)
        .output()
        .unwrap();
    ok(&o, "build --cache-to");
    let o = lamina_in(&t.path().join("store2"))
        .args(["build", "--progress", "plain", "--network", "none"])
        .args(["--platform", "linux/amd64,linux/arm64"])
        .arg("--cache-from")
        .arg(format!("type=local,src={}", cache.display()))
        .arg("-o")
        .arg(format!("type=local,dest={}", t.path().join("d").display()))
        .arg(&ctx)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{e}");
    assert!(e.contains("(0 steps run, 2 cached)"), "{e}");
    assert_eq!(read(t.path().join("d/linux_arm64/uname")), "aarch64\n");

    // type=oci holds the index and both images, as skopeo reads it; type=docker refuses up front.
    let tar = t.path().join("app.tar");
    let o = lamina_in(&root)
        .args(["build", "--progress", "plain", "--network", "none"])
        .args(["--platform", "linux/amd64,linux/arm64", "-t", "app:2"])
        .arg("-o")
        .arg(format!("type=oci,dest={}", tar.display()))
        .arg(&ctx)
        .output()
        .unwrap();
    ok(&o, "build -o type=oci");
    let raw = ok(
        &skopeo(&["inspect", "--raw", &format!("oci-archive:{}:2", tar.display())]),
        "skopeo inspect oci-archive",
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2), "{raw}");
    let copied = t.path().join("from-archive");
    ok(
        &skopeo(&[
            "copy",
            "--all",
            &format!("oci-archive:{}:2", tar.display()),
            &format!("oci:{}:2", copied.display()),
        ]),
        "skopeo copy --all oci-archive:",
    );
    // type=docker: docker's manifest.json names the host's image (classic `docker load`), the OCI
    // layout beside it holds the whole index (the containerd image store, skopeo oci-archive:).
    let dtar = t.path().join("d.tar");
    let o = lamina_in(&root)
        .args([
            "build",
            "-q",
            "--network",
            "none",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "app:3",
        ])
        .arg("-o")
        .arg(format!("type=docker,dest={}", dtar.display()))
        .arg(&ctx)
        .output()
        .unwrap();
    ok(&o, "build -o type=docker");
    let v: serde_json::Value = serde_json::from_str(&ok(
        &skopeo(&["inspect", &format!("docker-archive:{}", dtar.display())]),
        "skopeo inspect docker-archive",
    ))
    .unwrap();
    assert_eq!(v["Architecture"], "amd64");
    let raw = ok(
        &skopeo(&["inspect", "--raw", &format!("oci-archive:{}:3", dtar.display())]),
        "skopeo inspect oci-archive (docker archive)",
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2), "{raw}");
}
