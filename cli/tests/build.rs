//! `lamina build` end to end: cache behaviour, reproducibility, docker-archive output into podman.
//! The base is a busybox rootfs made from /usr/bin/busybox and copied in `FROM scratch`, so nothing needs a
//! registry. RUN steps need root (namespaces, overlay); tests skip with a reason otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{have, is_root, lamina_bin, ok};

/// A context dir with `rootfs/` (busybox + applet links + passwd) and the given files.
fn context(dir: &Path, files: &[(&str, &str)]) -> Option<PathBuf> {
    let bb = Path::new("/usr/bin/busybox");
    if !bb.exists() {
        return None;
    }
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
    std::fs::create_dir_all(ctx.join("rootfs/tmp")).unwrap();
    std::fs::copy(bb, ctx.join("rootfs/bin/busybox")).unwrap();
    for a in [
        "sh", "cat", "echo", "ls", "cp", "id", "env", "mkdir", "touch", "wc", "sort", "true",
    ] {
        std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin").join(a)).unwrap();
    }
    std::fs::write(
        ctx.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(ctx.join("rootfs/etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    for (name, content) in files {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    Some(ctx)
}

struct Built {
    ok: bool,
    run: usize,
    cached: usize,
    stdout: String,
    stderr: String,
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> Built {
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "--network", "none"])
        .args(extra)
        .arg(ctx)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (run, cached) = common::step_counts(&stderr);
    Built {
        ok: out.status.success(),
        run,
        cached,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

const CACHE_DOCKERFILE: &str = "FROM scratch
COPY rootfs/ /
ENV PATH=/bin
ARG V=1
COPY a.txt /a.txt
RUN cat /a.txt > /a2
COPY b.txt /b.txt
RUN echo $V > /v
";

#[test]
fn cache_reruns_exactly_what_changed() {
    if !is_root() {
        lamina_testkit::skip("RUN steps need root (namespaces and overlayfs)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(
        t.path(),
        &[("a.txt", "a"), ("b.txt", "b"), ("Dockerfile", CACHE_DOCKERFILE)],
    ) else {
        lamina_testkit::skip("/usr/bin/busybox missing (apt-get install busybox-static)");
        return;
    };
    let root = t.path().join("store");
    let b = build(&root, &ctx, &["-t", "cache-test"]);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!((b.run, b.cached), (5, 0), "{}", b.stderr);

    let b = build(&root, &ctx, &["-t", "cache-test"]);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!(
        (b.run, b.cached),
        (0, 5),
        "no change: nothing reruns\n{}",
        b.stderr
    );

    // mtime only.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    drop(f);
    let b = build(&root, &ctx, &["-t", "cache-test"]);
    assert_eq!((b.run, b.cached), (0, 5), "touch: nothing reruns\n{}", b.stderr);

    // One file changed: its COPY and everything after it.
    std::fs::write(ctx.join("b.txt"), "B").unwrap();
    let b = build(&root, &ctx, &["-t", "cache-test"]);
    assert_eq!((b.run, b.cached), (2, 3), "b.txt changed\n{}", b.stderr);

    // An ARG: from its first use (the first RUN after the ARG sees it in its environment).
    let b = build(&root, &ctx, &["-t", "cache-test", "--build-arg", "V=2"]);
    assert_eq!((b.run, b.cached), (3, 2), "ARG changed\n{}", b.stderr);

    // A file that is not selected by any COPY changes nothing.
    std::fs::write(ctx.join("unrelated.txt"), "x").unwrap();
    let b = build(&root, &ctx, &["-t", "cache-test", "--build-arg", "V=2"]);
    assert_eq!((b.run, b.cached), (0, 5), "unselected file\n{}", b.stderr);
}

#[test]
fn copy_only_build_caches_without_root() {
    let t = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nCOPY rootfs/ /\nCOPY a.txt /x/\nWORKDIR /w\nCMD [\"cat\", \"/x/a.txt\"]\n";
    let Some(ctx) = context(t.path(), &[("a.txt", "a"), ("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let root = t.path().join("store");
    let b = build(&root, &ctx, &["-t", "copy-only", "--compression", "zstd"]);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!((b.run, b.cached), (3, 0), "{}", b.stderr);
    assert!(
        b.stdout.trim().starts_with("sha256:"),
        "prints the image id: {}",
        b.stdout
    );
    let b = build(&root, &ctx, &["-t", "copy-only", "--compression", "zstd"]);
    assert_eq!((b.run, b.cached), (0, 3), "{}", b.stderr);
    // A failing COPY names the Dockerfile line.
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY missing.txt /\n").unwrap();
    let b = build(&root, &ctx, &[]);
    assert!(!b.ok);
    assert!(
        b.stderr.contains("Dockerfile:2") && b.stderr.contains("missing.txt"),
        "{}",
        b.stderr
    );
}

fn manifest_digest(root: &Path, tag: &str) -> String {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|r| r.contains(tag))
        })
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn source_date_epoch_builds_are_reproducible() {
    let t = tempfile::tempdir().unwrap();
    let runs = is_root();
    let df = if runs {
        "FROM scratch\nCOPY rootfs/ /\nCOPY a.txt /a.txt\nRUN /bin/echo made > /made\nLABEL x=y\n"
    } else {
        "FROM scratch\nCOPY rootfs/ /\nCOPY a.txt /a.txt\nLABEL x=y\n"
    };
    let Some(ctx) = context(t.path(), &[("a.txt", "a"), ("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let mut digests = Vec::new();
    for i in 0..2 {
        let root = t.path().join(format!("store{i}"));
        // A second build a moment later: file times in RUN layers differ unless clamped.
        std::thread::sleep(std::time::Duration::from_millis(1100 * i));
        let b = build(&root, &ctx, &["-t", "repro", "--source-date-epoch", "1700000000"]);
        assert!(b.ok, "{}", b.stderr);
        digests.push((b.stdout.trim().to_string(), manifest_digest(&root, "repro")));
    }
    assert_eq!(digests[0], digests[1]);
    assert!(!digests[0].1.is_empty());
}

#[test]
fn docker_archive_loads_into_podman_and_runs() {
    if !is_root() || !have("skopeo") || !have("podman") {
        lamina_testkit::skip("needs root, skopeo and podman");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCOPY a.txt /a.txt\nRUN echo ran > /ran\nCMD [\"cat\", \"/a.txt\", \"/ran\"]\n";
    let Some(ctx) = context(t.path(), &[("a.txt", "hello-from-lamina\n"), ("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let root = t.path().join("store");
    let archive = t.path().join("img.tar");
    let name = format!("localhost/lamina-build-test-{}:latest", std::process::id());
    let out = format!("type=docker,dest={}", archive.display());
    let b = build(&root, &ctx, &["-t", &name, "--output", &out]);
    assert!(b.ok, "{}", b.stderr);
    let st = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            &format!("docker-archive:{}", archive.display()),
            &format!("containers-storage:{name}"),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "skopeo copy docker-archive → containers-storage");
    let run = Command::new("podman")
        // podman sets RLIMIT_NOFILE/NPROC above the host's hard limits by default, which fails where root lacks
        // CAP_SYS_RESOURCE (as in this project's CI sandbox); ask for limits any host allows.
        .args(["run", "--rm", "--network", "none"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &name,
        ])
        .output()
        .unwrap();
    let _ = Command::new("podman").args(["rmi", "-f", &name]).output();
    assert!(
        run.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello-from-lamina\nran\n");
}

/// A freshly built image runs with `lamina run` straight away, on the build's own snapshots (aliased by
/// diff_id, nothing unpacked again), and the config's ENTRYPOINT/CMD/USER apply.
#[test]
fn built_image_runs() {
    if !is_root() {
        lamina_testkit::skip("RUN steps and lamina run need root (namespaces and overlayfs)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nRUN echo built-by-run > /msg && rm /etc/group\n\
              USER app\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /msg; id -u; ls /etc\"]\n";
    let Some(ctx) = context(t.path(), &[("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let root = t.path().join("store");
    let b = build(&root, &ctx, &["-t", "runme"]);
    assert!(b.ok, "{}", b.stderr);
    // Real snapshot dirs (aliases are symlinks): running the image must not unpack its layers again —
    // the build aliased each layer's diff_id to the step snapshot that holds its files.
    let dirs = |root: &Path| {
        std::fs::read_dir(root.join("snapshots"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir() && e.file_name().len() == 64)
            .count()
    };
    let before = dirs(&root);
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(&root)
        .args(["run", "--rm", "--network", "none", "runme"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"built-by-run"), "{stdout}");
    assert_eq!(
        lines.get(1),
        Some(&"1000"),
        "USER app from the image config: {stdout}"
    );
    assert!(
        !stdout.contains("group"),
        "the RUN step's whiteout of /etc/group must hold: {stdout}"
    );
    assert_eq!(
        dirs(&root),
        before,
        "lamina run unpacked layers the build had already"
    );
}

/// `--output type=oci|docker` writes exactly what `lamina save` writes for the same names (entries stamped
/// with --source-date-epoch when given), and the archives load back under every -t name.
#[test]
fn oci_and_docker_outputs_are_save_archives() {
    let t = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nCOPY rootfs/ /\nCOPY a.txt /a.txt\nCMD [\"cat\", \"/a.txt\"]\n";
    let Some(ctx) = context(t.path(), &[("a.txt", "a"), ("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let root = t.path().join("store");
    let (oci, docker) = (t.path().join("oci.tar"), t.path().join("docker.tar"));
    let names = ["localhost/out-a:v1", "localhost/out-b:v2"];
    let b = build(
        &root,
        &ctx,
        &[
            "-t",
            names[0],
            "-t",
            names[1],
            "--output",
            "type=image",
            "--output",
            &format!("type=oci,dest={}", oci.display()),
            "--output",
            &format!("type=docker,dest={}", docker.display()),
        ],
    );
    assert!(b.ok, "{}", b.stderr);
    for (archive, format) in [(&oci, "oci"), (&docker, "docker")] {
        let saved = t.path().join(format!("saved-{format}.tar"));
        let s = saved.to_str().unwrap();
        ok(&root, &["save", "--format", format, "-o", s, names[0], names[1]]);
        assert!(
            std::fs::read(archive).unwrap() == std::fs::read(&saved).unwrap(),
            "--output type={format} differs from lamina save --format {format}"
        );
        let fresh = t.path().join(format!("load-{format}"));
        ok(&fresh, &["load", "-i", archive.to_str().unwrap()]);
        let tags = ok(&fresh, &["images", "--format", "json"]);
        for n in names {
            let (repo, tag) = n.split_once(':').unwrap();
            assert!(
                tags.contains(repo) && tags.contains(tag),
                "{format}: {n} not loaded: {tags}"
            );
        }
    }
    assert!(
        tar::Archive::new(std::fs::File::open(&oci).unwrap())
            .entries()
            .unwrap()
            .all(|e| e.unwrap().header().mtime().unwrap() == 0)
    );

    let b = build(
        &root,
        &ctx,
        &[
            "--source-date-epoch",
            "1700000000",
            "--output",
            &format!("type=oci,dest={}", oci.display()),
        ],
    );
    assert!(b.ok, "{}", b.stderr);
    let mut a = tar::Archive::new(std::fs::File::open(&oci).unwrap());
    let mut entries = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 1_700_000_000);
        entries.push(e.path().unwrap().display().to_string());
    }
    assert!(
        entries.contains(&"oci-layout".to_string()) && entries.contains(&"index.json".to_string()),
        "{entries:?}"
    );
}

/// `--root` relative to the working directory (`lamina --root ./store build …`): RUN steps over the
/// base's snapshots and `lamina run` work, as with an absolute root (the runner's helper works from
/// another directory, so the CLI makes the root absolute first).
#[test]
fn relative_store_root_builds_and_runs() {
    if !is_root() {
        lamina_testkit::skip("RUN steps and lamina run need root (namespaces and overlayfs)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let df =
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nRUN echo relative > /msg\nCMD [\"cat\", \"/msg\"]\n";
    let Some(ctx) = context(t.path(), &[("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let lamina = |args: &[&str]| {
        Command::new(lamina_bin())
            .current_dir(t.path())
            .args(["--root", "./store"])
            .args(args)
            .output()
            .unwrap()
    };
    let o = lamina(&[
        "build",
        "--progress",
        "plain",
        "--network",
        "none",
        "-t",
        "rel",
        ctx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = lamina(&["run", "--rm", "--network", "none", "rel"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "relative\n");
}

/// `RUN --security=insecure` is an entitlement: refused at its line without `--allow security.insecure`,
/// privileged with it (CAP_SYS_ADMIN held, `mount` allowed), while the same mount in the default
/// sandbox fails.
#[test]
fn security_insecure_runs_privileged_only_with_the_entitlement() {
    if !is_root() {
        lamina_testkit::skip("RUN steps need root (namespaces and overlayfs)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nRUN true\n\
              RUN --security=insecure mkdir /m && busybox mount -t tmpfs none /m && \
              busybox grep CapEff /proc/self/status\n";
    let Some(ctx) = context(t.path(), &[("Dockerfile", df)]) else {
        lamina_testkit::skip("/usr/bin/busybox missing");
        return;
    };
    let root = t.path().join("store");
    let b = build(&root, &ctx, &[]);
    assert!(!b.ok, "built without the entitlement: {}", b.stderr);
    assert!(
        b.stderr.contains("Dockerfile:5") && b.stderr.contains("--allow security.insecure"),
        "{}",
        b.stderr
    );
    let b = build(&root, &ctx, &["--allow", "security.insecure"]);
    assert!(b.ok, "privileged step failed: {}", b.stderr);
    let capeff = b
        .stderr
        .lines()
        .find_map(|l| l.split("CapEff:").nth(1))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapEff line in the step's output: {}", b.stderr));
    const CAP_SYS_ADMIN: u32 = 21;
    assert!(
        capeff & (1 << CAP_SYS_ADMIN) != 0,
        "CapEff {capeff:x} lacks CAP_SYS_ADMIN"
    );
    // The default sandbox refuses the same mount; the sandboxed form needs no entitlement.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nRUN --security=sandbox mkdir /m && busybox mount -t tmpfs none /m\n",
    )
    .unwrap();
    let b = build(&root, &ctx, &[]);
    assert!(!b.ok, "mounted a tmpfs in the default sandbox: {}", b.stderr);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nRUN --security=sandbox touch /x\n",
    )
    .unwrap();
    let b = build(&root, &ctx, &[]);
    assert!(b.ok, "{}", b.stderr);
}

/// `lamina build --check` runs only the checks: buildx's report with each rule and line, exit 1 when one
/// fired, nothing built; `# check=skip=` silences a rule; a clean file exits 0.
#[test]
fn check_runs_only_the_build_checks() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let root = t.path().join("store");
    let check = |df: &str, extra: &[&str]| {
        std::fs::write(ctx.join("Dockerfile"), df).unwrap();
        Command::new(lamina_bin())
            .arg("--root")
            .arg(&root)
            .arg("build")
            .args(extra)
            .arg(&ctx)
            .output()
            .unwrap()
    };
    // The base is never pulled: nothing but the checks runs.
    let o = check(
        "FROM lamina-no-such-image:1 as Base\nCMD echo hi\nrun true\n",
        &["--check"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with("Check complete, 4 warnings have been found!"),
        "{out}"
    );
    for (rule, line) in [
        ("FromAsCasing", 1),
        ("StageNameCasing", 1),
        ("JSONArgsRecommended", 2),
        ("ConsistentInstructionCasing", 3),
    ] {
        let at = out
            .find(&format!("WARNING: {rule} - "))
            .unwrap_or_else(|| panic!("{rule}: {out}"));
        assert!(
            out[at..].contains(&format!("Dockerfile:{line}\n")),
            "{rule}: {out}"
        );
    }
    let o = check(
        "# check=skip=JSONArgsRecommended\nFROM lamina-no-such-image:1 AS base\nCMD echo hi\n",
        &["--call", "check"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Check complete, no warnings found.\n"
    );

    // UndefinedVar on an image base uses the ENV of the image when the store has it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "f", &b"x\n"[..]).unwrap();
    let rootfs = t.path().join("rootfs.tar");
    std::fs::write(&rootfs, b.into_inner().unwrap()).unwrap();
    ok(
        &root,
        &[
            "import",
            "-c",
            "ENV PATH=/bin",
            rootfs.to_str().unwrap(),
            "lamina-check-base",
        ],
    );
    let o = check(
        "FROM lamina-check-base\nENV P=$PATH:/x\nCOPY $PAHT /\n",
        &["--check"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("Check complete, 1 warning has been found!"),
        "{out}"
    );
    assert!(
        out.contains("Usage of undefined variable '$PAHT' (did you mean $PATH?)\nDockerfile:3\n"),
        "{out}"
    );

    // CopyIgnoredFile: a source .dockerignore leaves out (not one read from a stage).
    std::fs::write(ctx.join(".dockerignore"), "secret.txt\nbuild/\n").unwrap();
    let o = check(
        "FROM scratch AS s\nFROM scratch\nCOPY secret.txt /\nCOPY ok.txt build/out /\nCOPY --from=s secret.txt /x\nADD build /b\n",
        &["--check"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let found: Vec<&str> = out.lines().filter(|l| l.starts_with("Attempting to")).collect();
    assert_eq!(
        found,
        [
            "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore",
            "Attempting to Copy file \"build/out\" that is excluded by .dockerignore",
            "Attempting to Add file \"build\" that is excluded by .dockerignore",
        ],
        "{out}"
    );
    // With an exception in the file the rule stays quiet, as BuildKit's.
    std::fs::write(ctx.join(".dockerignore"), "secret.txt\n!keep.txt\n").unwrap();
    let o = check("FROM scratch\nCOPY secret.txt /\n", &["--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}
