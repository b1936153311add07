//! Hostile build inputs (issue 11, builder side): contexts, stages and base images whose links, `..` and
//! `.dockerignore`d files try to reach the host or leak through RUN mounts. Every test first shows that the
//! naive resolution (a plain `Path::join`/realpath on the host, or Python's unfiltered `tarfile`) reaches
//! its canary — a dir in the test's own temp dir — then that lamina's build either fails naming the
//! Dockerfile line or gives an in-root result, with the canary untouched.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::lamina_bin;

const SECRET: &str = "HOST-SECRET-7f3a";

/// `t/canary/secret`: what an escape would read, and where it would write.
fn canary(t: &Path) -> PathBuf {
    let c = t.join("canary");
    fs::create_dir_all(&c).unwrap();
    fs::write(c.join("secret"), SECRET).unwrap();
    c
}

fn assert_untouched(canary: &Path) {
    let names: Vec<_> = fs::read_dir(canary)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["secret"], "canary dir changed");
    assert_eq!(fs::read_to_string(canary.join("secret")).unwrap(), SECRET);
}

/// A context dir with a busybox `rootfs/` (for RUN) and the Dockerfile.
fn context(t: &Path, dockerfile: &str) -> PathBuf {
    let ctx = t.join("ctx");
    fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
    fs::create_dir_all(ctx.join("rootfs/tmp")).unwrap();
    if Path::new("/usr/bin/busybox").exists() {
        fs::copy("/usr/bin/busybox", ctx.join("rootfs/bin/busybox")).unwrap();
        for a in ["sh", "cat", "echo", "ls", "true"] {
            symlink("busybox", ctx.join("rootfs/bin").join(a)).unwrap();
        }
    }
    fs::write(ctx.join("rootfs/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// `n` links `{dir}/l0 -> l1 -> … -> l{n}` and `l{n} -> target`.
fn chain(dir: &Path, n: usize, target: &Path) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        symlink(format!("l{}", i + 1), dir.join(format!("l{i}"))).unwrap();
    }
    symlink(target, dir.join(format!("l{n}"))).unwrap();
}

struct Built {
    ok: bool,
    stderr: String,
}

fn build(root: &Path, ctx: &Path) -> Built {
    build_with(root, ctx, &[])
}

fn build_with(root: &Path, ctx: &Path, extra: &[&str]) -> Built {
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "--network", "none", "-t", "out:1"])
        .args(extra)
        .arg(ctx)
        .output()
        .unwrap();
    Built {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn need_run() -> bool {
    lamina_testkit::need_root("RUN steps need namespaces and overlayfs")
        && lamina_testkit::need_path("/usr/bin/busybox", "busybox-static for the RUN rootfs")
}

/// A 41-link chain ending in an absolute link to the host canary, in the context, in a stage and in a base
/// image, used as a RUN bind source (rw: a write would land on the host). The old resolver stopped after 40
/// hops and bound the 41st link's host path, which the kernel followed.
#[test]
fn link_chain_bind_sources_never_reach_the_host() {
    if !need_run() || !lamina_testkit::need_tools(&["python3"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let c = canary(t.path());
    let root = t.path().join("store");

    // The base image: a tar with the chain, as a registry would serve it.
    let img = t.path().join("img");
    chain(&img.join("c"), 41, &c);
    let tar = t.path().join("evil.tar");
    let st = Command::new("tar")
        .args(["-C"])
        .arg(&img)
        .args(["-cf"])
        .arg(&tar)
        .arg("c")
        .status()
        .unwrap();
    assert!(st.success());
    // Naive: python's tarfile without filters, then the host path of what the old resolver handed back.
    let naive = t.path().join("naive");
    let py = "import tarfile,sys\nt=tarfile.open(sys.argv[1])\ntry:\n t.extractall(sys.argv[2],filter='fully_trusted')\nexcept TypeError:\n t.extractall(sys.argv[2])\n";
    let st = Command::new("python3")
        .args(["-c", py])
        .arg(&tar)
        .arg(&naive)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        fs::read_to_string(naive.join("c/l40/secret")).unwrap(),
        SECRET,
        "payload is real"
    );
    common::ok(&root, &["import", tar.to_str().unwrap(), "evil:1"]);

    for (n, from, src) in [
        ("context", "", "chain/l0"),
        ("stage", ",from=evil", "/c/l0"),
        ("image", ",from=evil:1", "/c/l0"),
    ] {
        let dockerfile = format!(
            "FROM scratch AS evil\nCOPY img/ /\nFROM scratch\nCOPY rootfs/ /\n\
             RUN --mount=type=bind{from},source={src},target=/m,rw sh -c 'cat /m/secret; echo pwned > /m/owned'\n"
        );
        let ctx = context(&t.path().join(n), &dockerfile);
        chain(&ctx.join("chain"), 41, &c);
        chain(&ctx.join("img/c"), 41, &c);
        // Naive for the context and the stage: the leftover link joined onto the host.
        assert_eq!(
            fs::canonicalize(ctx.join("chain/l40")).unwrap(),
            c,
            "payload is real"
        );
        let b = build(&root, &ctx);
        assert!(!b.ok, "{n}: build must fail:\n{}", b.stderr);
        assert!(
            b.stderr.contains("Dockerfile:5"),
            "{n}: names the line:\n{}",
            b.stderr
        );
        assert!(
            b.stderr.contains("too many levels of symbolic links"),
            "{n}:\n{}",
            b.stderr
        );
        assert!(
            !b.stderr.contains(SECRET),
            "{n}: host secret leaked:\n{}",
            b.stderr
        );
        assert_untouched(&c);
    }
}

/// `.dockerignore` hides files from RUN bind mounts of the context too (the default source, a dir source, a
/// file source), not only from COPY (issue 11 item 4).
#[test]
fn dockerignore_applies_to_run_bind_mounts() {
    if !need_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\n\
        RUN --mount=type=bind,target=/c sh -c 'echo LIST1; ls -a /c; cat /c/top.key /c/sub/db.key /c/sub/ok.txt; true'\n\
        RUN --mount=type=bind,source=sub,target=/s sh -c 'echo LIST2; ls -a /s; cat /s/db.key /s/ok.txt; true'\n";
    let ctx = context(t.path(), dockerfile);
    fs::create_dir_all(ctx.join("sub")).unwrap();
    fs::write(ctx.join("top.key"), "SECRET-TOP").unwrap();
    fs::write(ctx.join("sub/db.key"), "SECRET-DB").unwrap();
    fs::write(ctx.join("sub/ok.txt"), "visible-ok").unwrap();
    fs::write(ctx.join(".dockerignore"), "*.key\n**/*.key\n").unwrap();
    // Naive: binding the context dir (what lamina did) shows the ignored files.
    assert_eq!(fs::read_to_string(ctx.join("sub/db.key")).unwrap(), "SECRET-DB");
    let b = build(&root, &ctx);
    assert!(
        b.stderr.contains("LIST1") && b.stderr.contains("LIST2"),
        "{}",
        b.stderr
    );
    assert!(b.stderr.contains("visible-ok"), "{}", b.stderr);
    assert!(
        !b.stderr.contains("SECRET-"),
        "ignored file readable in RUN:\n{}",
        b.stderr
    );
    assert!(b.ok, "{}", b.stderr);

    // A file source that is ignored does not exist.
    let t2 = tempfile::tempdir().unwrap();
    let ctx = context(
        t2.path(),
        "FROM scratch\nCOPY rootfs/ /\nRUN --mount=type=bind,source=top.key,target=/k cat /k\n",
    );
    fs::write(ctx.join("top.key"), "SECRET-TOP").unwrap();
    fs::write(ctx.join(".dockerignore"), "top.key\n").unwrap();
    let b = build(&root, &ctx);
    assert!(!b.ok && b.stderr.contains("Dockerfile:3"), "{}", b.stderr);
    assert!(!b.stderr.contains("SECRET-TOP"), "{}", b.stderr);
}

/// buildah CVE-2024-1753 (bind `source=../..` from the context) and CVE-2024-9675 (cache mount
/// `source`/`id` escaping the cache dir): both stay inside their roots.
#[test]
fn dotdot_sources_and_cache_ids_are_confined() {
    if !need_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let c = canary(t.path());
    let root = t.path().join("store");
    let up = "../../../../../../../../..";
    let host = format!("{up}{}", c.display());
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\n\
         RUN --mount=type=bind,source={host},target=/m,rw sh -c 'cat /m/secret; echo pwned > /m/owned'\n"
    );
    let ctx = context(t.path(), &dockerfile);
    // Naive: the source joined onto the context dir is the host canary.
    assert_eq!(fs::canonicalize(ctx.join(&host)).unwrap(), c, "payload is real");
    let b = build(&root, &ctx);
    assert!(!b.ok && b.stderr.contains("Dockerfile:3"), "{}", b.stderr);
    assert!(!b.stderr.contains(SECRET), "{}", b.stderr);
    assert_untouched(&c);

    let t2 = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\n\
         RUN --mount=type=cache,id={host},source={host},target=/cache sh -c 'cat /cache/secret; echo pwned > /cache/owned; echo CACHE-RAN'\n"
    );
    let ctx = context(t2.path(), &dockerfile);
    let mounts = root.join("cache/mounts");
    fs::create_dir_all(&mounts).unwrap();
    assert_eq!(
        fs::canonicalize(mounts.join(&host)).unwrap(),
        c,
        "payload is real: the id joined onto the cache dir"
    );
    let b = build(&root, &ctx);
    assert!(b.ok && b.stderr.contains("CACHE-RAN"), "{}", b.stderr);
    assert!(!b.stderr.contains(SECRET), "{}", b.stderr);
    assert_untouched(&c);
}

/// COPY writes never follow a link into the host: `COPY --parents p/./ r/./q/f /dst/` where the first
/// source puts `q -> <canary>` in the new layer and the second writes `q/f` (a joining copier writes the
/// canary). WORKDIR and COPY destinations through absolute links land inside the image. No RUN: no root.
#[test]
fn copy_and_workdir_writes_stay_in_the_layer() {
    let t = tempfile::tempdir().unwrap();
    let c = canary(t.path());
    let root = t.path().join("store");
    let ctx = context(t.path(), "FROM scratch\nCOPY --parents p/./ r/./q/f /dst/\n");
    fs::create_dir_all(ctx.join("p")).unwrap();
    symlink(&c, ctx.join("p/q")).unwrap();
    fs::create_dir_all(ctx.join("r/q")).unwrap();
    fs::write(ctx.join("r/q/f"), "pwned").unwrap();
    // Naive: a copy of p's `q` followed by a plain join of `q/f` writes into the canary.
    let naive = t.path().join("naive");
    fs::create_dir_all(&naive).unwrap();
    symlink(&c, naive.join("q")).unwrap();
    assert_eq!(fs::canonicalize(naive.join("q")).unwrap(), c, "payload is real");
    let b = build(&root, &ctx);
    assert!(!b.ok, "{}", b.stderr);
    assert!(b.stderr.contains("Dockerfile:2"), "{}", b.stderr);
    assert!(b.stderr.contains("does not write through it"), "{}", b.stderr);
    assert_untouched(&c);

    // WORKDIR and a COPY destination through an absolute link of the image: created in-root.
    let t2 = tempfile::tempdir().unwrap();
    let ctx = context(
        t2.path(),
        "FROM scratch\nCOPY links/ /\nWORKDIR /w/made\nCOPY file /d/f\nCOPY chain/ /chain/\nWORKDIR /chain/l0/x\n",
    );
    fs::create_dir_all(ctx.join("links")).unwrap();
    symlink(&c, ctx.join("links/w")).unwrap();
    symlink(&c, ctx.join("links/d")).unwrap();
    fs::write(ctx.join("file"), "pwned").unwrap();
    chain(&ctx.join("chain"), 41, &c);
    assert_eq!(
        fs::canonicalize(ctx.join("links/w")).unwrap(),
        c,
        "payload is real"
    );
    let b = build(&root, &ctx);
    assert!(!b.ok, "the 41-link WORKDIR must fail:\n{}", b.stderr);
    assert!(b.stderr.contains("Dockerfile:6"), "{}", b.stderr);
    assert!(
        b.stderr.contains("too many levels of symbolic links"),
        "{}",
        b.stderr
    );
    assert_untouched(&c);

    // Without the chain it builds, and the files are inside the image at the canary's path.
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY links/ /\nWORKDIR /w/made\nCOPY file /d/f\n",
    )
    .unwrap();
    let b = build(&root, &ctx);
    assert!(b.ok, "{}", b.stderr);
    assert_untouched(&c);
    let out = t2.path().join("unpacked");
    common::ok(&root, &["unpack", "out:1", out.to_str().unwrap()]);
    let inside = out.join(c.strip_prefix("/").unwrap());
    assert!(inside.join("made").is_dir(), "WORKDIR made in-root");
    assert_eq!(fs::read_to_string(inside.join("f")).unwrap(), "pwned");

    // A COPY source that is an absolute link to the host resolves inside the context: not found there.
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY links/w/secret /got\n").unwrap();
    assert_eq!(
        fs::read_to_string(ctx.join("links/w/secret")).unwrap(),
        SECRET,
        "payload is real"
    );
    let b = build(&root, &ctx);
    assert!(!b.ok && b.stderr.contains("Dockerfile:2"), "{}", b.stderr);
    assert!(b.stderr.contains("not found"), "{}", b.stderr);
}

/// BuildKit CVE-2024-23652 class: after a RUN, the step has replaced a mount point's parent with a link to
/// the host and planted links in its writable bind copy. Nothing lamina removes afterwards follows them: it
/// leaves mount points in the layer (as BuildKit does now) and removes its private copies without
/// following links.
#[test]
fn cleanup_after_run_follows_no_planted_link() {
    if !need_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let c = canary(t.path());
    let root = t.path().join("store");
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\n\
         RUN --mount=type=bind,source=sub,target=/x/mnt,rw --mount=type=tmpfs,target=/y/t \
         sh -c 'ln -s {c} /x/mnt/l; ln -s {c}/secret /x/mnt/s; mv /y /y.old 2>/dev/null; ln -s {c} /y 2>/dev/null; echo STEP-DONE'\n",
        c = c.display()
    );
    let ctx = context(t.path(), &dockerfile);
    fs::create_dir_all(ctx.join("sub")).unwrap();
    fs::write(ctx.join("sub/f"), "x").unwrap();
    // Naive: removing the planted entries by following them deletes the canary's file.
    let naive = t.path().join("naive");
    fs::create_dir_all(&naive).unwrap();
    symlink(c.join("secret"), naive.join("s")).unwrap();
    assert_eq!(
        fs::canonicalize(naive.join("s")).unwrap(),
        c.join("secret"),
        "payload is real"
    );
    let b = build(&root, &ctx);
    assert!(b.ok && b.stderr.contains("STEP-DONE"), "{}", b.stderr);
    assert_untouched(&c);
    assert!(
        fs::read_dir(root.join("tmp")).map_or(true, |d| d
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().starts_with("bind-"))),
        "private bind copies removed after the build"
    );
}

/// Secret and tmpfs `target=` with `..`: the mount points lamina leaves in the layer are made in-root, and
/// the secret is visible at the clamped path inside the container, never written next to the host canary.
#[test]
fn secret_and_tmpfs_targets_with_dotdot_stay_in_root() {
    if !need_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let c = canary(t.path());
    let root = t.path().join("store");
    let up = "../../../../../../../../..";
    let target = format!("{up}{}/planted/s", c.display());
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\n\
         RUN --mount=type=secret,id=s,target={target} --mount=type=tmpfs,target={up}{c}/tmpfs \
         sh -c 'cat {c}/planted/s; echo; ls -d {c}/tmpfs && echo TARGETS-OK'\n",
        c = c.display()
    );
    let ctx = context(t.path(), &dockerfile);
    let secret = t.path().join("secret.txt");
    fs::write(&secret, "the-build-secret").unwrap();
    // Naive: the target joined onto a dir of the host (the context, or an upper dir) is the canary.
    assert_eq!(
        fs::canonicalize(ctx.join(format!("{up}{}", c.display()))).unwrap(),
        c,
        "payload is real"
    );
    let src = format!("id=s,src={}", secret.display());
    let b = build_with(&root, &ctx, &["--secret", &src]);
    assert!(b.ok && b.stderr.contains("TARGETS-OK"), "{}", b.stderr);
    assert!(b.stderr.contains("the-build-secret"), "{}", b.stderr);
    assert_untouched(&c);
}
