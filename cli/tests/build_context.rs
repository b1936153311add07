//! Named contexts (`lamina build --build-context NAME=…`): a directory, `docker-image://` and
//! `oci-layout://` and a git repository stand in for NAME in FROM and `COPY --from`. COPY-only builds,
//! so no root is needed.

use std::path::Path;

mod common;

use common::{lamina, ok};

/// The files of `image`'s flattened rootfs (`lamina unpack`), sorted.
fn files(root: &Path, image: &str, out: &Path) -> Vec<String> {
    ok(root, &["unpack", image, "-o", out.to_str().unwrap()]);
    let mut a = tar::Archive::new(std::fs::File::open(out).unwrap());
    let mut names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    names.sort();
    names
}

fn build(root: &Path, ctx: &Path, tag: &str, contexts: &[String]) -> std::process::Output {
    let mut args = vec!["build", "--progress", "plain", "--network", "none", "-t", tag];
    for c in contexts {
        args.extend(["--build-context", c.as_str()]);
    }
    args.push(ctx.to_str().unwrap());
    lamina(root, &args)
}

#[test]
fn directory_docker_image_and_oci_layout_contexts() {
    let t = tempfile::tempdir().unwrap();
    let (ctx, extra, root) = (
        t.path().join("ctx"),
        t.path().join("extra"),
        t.path().join("store"),
    );
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::create_dir_all(extra.join("sub")).unwrap();
    std::fs::write(extra.join("sub/hello.txt"), "hello\n").unwrap();
    std::fs::write(ctx.join("in-main.txt"), "main\n").unwrap();
    let dir_ctx = format!("extra={}", extra.display());

    // A directory, read by COPY --from (the main context stays the main context).
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY --from=extra /sub/hello.txt /h.txt\nCOPY in-main.txt /\n",
    )
    .unwrap();
    let o = build(&root, &ctx, "first", std::slice::from_ref(&dir_ctx));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        files(&root, "first", &t.path().join("1.tar")),
        ["h.txt", "in-main.txt"]
    );

    // docker-image:// for FROM: `base` is no image anywhere, the context names one in the store.
    std::fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY --from=extra /sub /s\n").unwrap();
    let o = build(
        &root,
        &ctx,
        "second",
        &[dir_ctx.clone(), "base=docker-image://first".into()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        files(&root, "second", &t.path().join("2.tar")),
        ["h.txt", "in-main.txt", "s", "s/hello.txt"]
    );

    // oci-layout:// of a saved image, with and without @DIGEST, into a fresh store.
    let layout = t.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let archive = t.path().join("first.oci.tar");
    ok(
        &root,
        &[
            "save",
            "--format",
            "oci",
            "first",
            "-o",
            archive.to_str().unwrap(),
        ],
    );
    tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .unpack(&layout)
        .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let root2 = t.path().join("store2");
    for spec in [
        format!("base=oci-layout://{}@{digest}", layout.display()),
        format!("base=oci-layout://{}", layout.display()),
    ] {
        let o = build(&root2, &ctx, "third", &[dir_ctx.clone(), spec.clone()]);
        assert!(
            o.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            files(&root2, "third", &t.path().join("3.tar")),
            ["h.txt", "in-main.txt", "s", "s/hello.txt"]
        );
    }
    let o = build(
        &root2,
        &ctx,
        "bad",
        &[
            dir_ctx,
            format!("base=oci-layout://{}@sha256:{}", layout.display(), "0".repeat(64)),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no image sha256:000"));
}

#[test]
fn a_stage_of_the_same_name_comes_first_and_bad_specs_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let (ctx, root) = (t.path().join("ctx"), t.path().join("store"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch AS extra\nCOPY a.txt /from-stage\nFROM scratch\nCOPY --from=extra /from-stage /x\n",
    )
    .unwrap();
    let other = t.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let o = build(&root, &ctx, "s", &[format!("extra={}", other.display())]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&root, "s", &t.path().join("s.tar")), ["x"]);
    for (spec, msg) in [
        ("noequals", "expected NAME=VALUE"),
        ("x=ftp://example.invalid/ctx.tar", "unknown kind of context"),
        ("x=/nonexistent/lamina-ctx", "is not a directory"),
    ] {
        let o = build(&root, &ctx, "s", &[spec.to_string()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(msg), "{spec}: {err}");
    }
}

#[test]
fn a_git_repository_as_a_named_context() {
    if !common::have("git") {
        lamina_testkit::skip("git is not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("lib.git");
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    std::fs::write(repo.join("sub/hello.txt"), "from git\n").unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "."],
        &[
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "-qm",
            "one",
        ],
    ] {
        let o = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let (ctx, root) = (t.path().join("ctx"), t.path().join("store"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY --from=lib /hello.txt /h.txt\n",
    )
    .unwrap();
    let o = build(
        &root,
        &ctx,
        "g",
        &[format!("lib=file://{}#main:sub", repo.display())],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&root, "g", &t.path().join("g.tar")), ["h.txt"]);
}
