//! `lamina prune --all --keep-storage` and `lamina system df` against real builds (root: RUN needs
//! namespaces and overlayfs): builds with `RUN --mount=type=cache` writing megabytes and a changing
//! context fill the store; GC brings `du` of the root under the budget, `fsck` stays clean and the tagged
//! image still runs and exports. The old prune (even `--cache`, its most thorough) can't get there: it
//! never collects cache mounts or context memos.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{lamina, lamina_bin, ok};

const BUDGET: u64 = 30_000_000;
const DATA: usize = 2_000_000;

/// Incompressible bytes (xorshift), different per seed: gzip can't shrink them, so sizes are predictable.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn context(dir: &Path) -> Option<PathBuf> {
    let bb = Path::new("/usr/bin/busybox");
    if !bb.exists() {
        lamina_testkit::skip("no /usr/bin/busybox (busybox-static) for the base rootfs");
        return None;
    }
    let ctx = dir.join("ctx");
    for d in ["rootfs/bin", "rootfs/etc", "rootfs/tmp"] {
        std::fs::create_dir_all(ctx.join(d)).unwrap();
    }
    std::fs::copy(bb, ctx.join("rootfs/bin/busybox")).unwrap();
    for a in ["sh", "cat", "ls", "wc", "cp"] {
        std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin").join(a)).unwrap();
    }
    std::fs::write(ctx.join("rootfs/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCOPY data.bin /data.bin\n\
         RUN --mount=type=cache,target=/cache sh -c 'for i in 1 2 3 4; do cp /data.bin /cache/$(ls /cache | wc -l).bin; done; cat /data.bin /data.bin > /twice'\n",
    )
    .unwrap();
    Some(ctx)
}

fn du(root: &Path) -> u64 {
    let out = Command::new("du").args(["-s", "-B1"]).arg(root).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Builds `ctx` as `app`; returns stderr.
fn build(root: &Path, ctx: &Path) -> String {
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "--network", "none", "-t", "app"])
        .arg(ctx)
        .env_remove("LAMINA_GC_KEEP_STORAGE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{stderr}");
    stderr
}

/// `system df --format json`: (type → (count, size bytes)).
fn df(root: &Path) -> std::collections::BTreeMap<String, (u64, u64)> {
    ok(root, &["system", "df", "--format", "json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let count = v["TotalCount"].as_str().unwrap().parse().unwrap();
            (
                v["Type"].as_str().unwrap().to_owned(),
                (count, v["SizeBytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

#[test]
fn prune_all_keeps_storage_under_budget() {
    if !lamina_testkit::need_root("RUN steps (namespaces, overlayfs)") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path()) else { return };
    let root = t.path().join("store");
    // Four builds, each with new context content (a cold COPY and RUN), each adding to the cache mount;
    // and a second context dir, so there are two context memos.
    for seed in 1..=4 {
        std::fs::write(ctx.join("data.bin"), noise(seed, DATA)).unwrap();
        build(&root, &ctx);
    }
    let other = t.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("Dockerfile"), "FROM app\nCOPY f /f\n").unwrap();
    std::fs::write(other.join("f"), "x").unwrap();
    build(&root, &other);

    let before = du(&root);
    assert!(before > 2 * BUDGET, "the builds should fill the store: {before}");
    let usage = df(&root);
    assert_eq!(usage["Local Volumes"].0, 1, "{usage:?}");
    assert!(usage["Local Volumes"].1 >= 16 * DATA as u64, "{usage:?}");
    assert_eq!(usage["Context Memos"].0, 2, "{usage:?}");
    let listed: u64 = usage.values().map(|v| v.1).sum();
    assert!(
        listed <= before && listed + 1_000_000 >= before,
        "df rows add up to du: {listed} vs {before}"
    );

    // The old prune, at its most thorough, would leave the store over budget.
    let dry: serde_json::Value =
        serde_json::from_str(&ok(&root, &["prune", "--cache", "--dry-run", "--format", "json"])).unwrap();
    let old_freed = dry["freed"].as_u64().unwrap();
    assert!(
        before - old_freed > BUDGET,
        "prune --cache frees {old_freed} of {before}: cache mounts stay"
    );

    let out = ok(&root, &["prune", "--all", "--keep-storage", "30MB"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(out.contains("Deleted cache mount"), "{out}");
    let after = du(&root);
    assert!(
        after <= BUDGET,
        "du {after} > budget {BUDGET} after prune:\n{out}"
    );

    ok(&root, &["fsck"]);
    let run = lamina(
        &root,
        &["run", "--rm", "--network", "none", "app", "wc", "-c", "/twice"],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains(&(2 * DATA).to_string()),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let tar = t.path().join("app.tar");
    ok(&root, &["save", "-o", tar.to_str().unwrap(), "app"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 2 * DATA as u64);

    // Without a budget, --all takes every cache item; tagged images and `fsck` are still fine.
    ok(&root, &["prune", "--all"]);
    let usage = df(&root);
    assert_eq!(usage["Build Cache"].0, 0, "{usage:?}");
    assert_eq!(usage["Local Volumes"].0, 0, "{usage:?}");
    ok(&root, &["fsck"]);
    // And the next build starts cold but works.
    build(&root, &ctx);
}

#[test]
fn automatic_gc_after_a_build_keeps_the_budget() {
    if !lamina_testkit::need_root("RUN steps (namespaces, overlayfs)") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path()) else { return };
    let root = t.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("config.json"), r#"{"gc":{"keepStorage":"30MB"}}"#).unwrap();
    let mut collected = 0;
    for seed in 10..=13 {
        std::fs::write(ctx.join("data.bin"), noise(seed, DATA)).unwrap();
        let stderr = build(&root, &ctx);
        collected += stderr.matches("=> gc: store used").count();
        let used = du(&root);
        assert!(used <= BUDGET, "over budget after build {seed}: {used}\n{stderr}");
    }
    assert!(
        collected >= 2,
        "GC ran after the builds that went over the budget"
    );
    ok(&root, &["fsck"]);
    ok(
        &root,
        &["run", "--rm", "--network", "none", "app", "ls", "/twice"],
    );
}
