//! The pod stand-in (issue 13): lamina's own image, built by lamina, runs in podman the way
//! examples/kubernetes/build-job.yaml runs it in a pod, pulls its base from a loopback registry, builds
//! a Dockerfile with RUN steps and pushes the result.
//!
//! podman flags and the pod spec they stand for:
//!   --user 1000:1000                  runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true
//!   (no --privileged, no --cap-add)   privileged: false, capabilities: {} (runtime defaults)
//!   default seccomp                   seccompProfile: RuntimeDefault
//!   (no --security-opt unmask)        procMount: Default (masked /proc: steps run without a PID ns)
//!   -v STORE:~/.local/share/lamina    an emptyDir volume for the store (overlay can't nest on the
//!                                     container's own overlay rootfs)
//!   --network host                    the pod network (reaching the registry on loopback here)
//!
//! Skips without root, podman, docker-registry, setcap (libcap2-bin) or newuidmap (uidmap).

use std::path::Path;
use std::process::Command;

mod common;
#[path = "registry_support/mod.rs"]
mod registry_support;

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn lamina_image_builds_and_pushes_in_an_unprivileged_container() {
    if !lamina_testkit::need_root("podman and the image build need root")
        || !lamina_testkit::need_tools(&["podman", "setcap", "newuidmap", "tar"])
    {
        return;
    }
    let Some(reg) = registry_support::Registry::start("") else {
        return;
    };
    let h = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lamina = |args: &[&str]| {
        let o = Command::new(common::lamina_bin())
            .arg("--root")
            .arg(t.join("store"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "lamina {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // lamina's image, by lamina.
    let ctx = t.join("image-ctx");
    sh(&format!(
        "{} {} {}",
        repo.join("scripts/lamina-image.sh").display(),
        ctx.display(),
        common::lamina_bin().display()
    ));
    std::fs::copy(repo.join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
    let tag = format!("localhost/lamina-pod-test:{}", std::process::id());
    lamina(&["build", "--progress", "plain", "-t", &tag, ctx.to_str().unwrap()]);
    let archive = t.join("image.tar");
    lamina(&["save", "-o", archive.to_str().unwrap(), &tag]);
    sh(&format!("podman load -q -i {}", archive.display()));
    // The base, in the registry.
    let base_tar = t.join("base.tar");
    sh(&format!(
        "bash {} {}",
        repo.join("testdata/conformance/make-base.sh").display(),
        base_tar.display()
    ));
    lamina(&["import", base_tar.to_str().unwrap(), "pod-base"]);
    lamina(&["push", "pod-base", &format!("{h}/pod/base:1")]);
    // The build context and the store volume (an emptyDir in the Job).
    let work = t.join("work");
    std::fs::create_dir_all(work.join("ctx")).unwrap();
    std::fs::create_dir_all(work.join("store")).unwrap();
    std::fs::write(
        work.join("ctx/Dockerfile"),
        format!(
            "FROM {h}/pod/base:1\nRUN mkdir /data && echo pod > /data/f && chown 1000:1000 /data/f \
             && chmod 4755 /data/f && rm -rf /home/svc && id -u > /data/uid\n"
        ),
    )
    .unwrap();
    sh(&format!(
        "chown -R 1000:1000 {} && chmod -R a+rX {}",
        work.join("store").display(),
        work.display()
    ));
    let pushed = format!("{h}/pod/out:1");
    let o = Command::new("podman")
        .args(["run", "--rm", "--user", "1000:1000", "--network", "host"])
        .arg("-v")
        .arg(format!("{}:/ctx:ro", work.join("ctx").display()))
        .arg("-v")
        .arg(format!(
            "{}:/home/builder/.local/share/lamina",
            work.join("store").display()
        ))
        .arg(&tag)
        .args(["build", "--progress", "plain", "-t", &pushed, "--push", "/ctx"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let _ = Command::new("podman").args(["rmi", "-f", &tag]).output();
    assert!(o.status.success(), "build in the container failed:\n{err}");
    assert!(err.contains("pushed"), "{err}");
    // What was pushed carries the in-container owners and modes.
    let check = t.join("check");
    let o = Command::new(common::lamina_bin())
        .arg("--root")
        .arg(&check)
        .args(["pull", &pushed])
        .output()
        .unwrap();
    assert!(o.status.success(), "pull: {}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(common::lamina_bin())
        .arg("--root")
        .arg(&check)
        .args(["ls-layer", "--entries", &format!("{pushed}@-1")])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(listing.contains("-rwsr-xr-x  1000:1000"), "{listing}");
    assert!(listing.contains(".wh.svc"), "{listing}");
}
