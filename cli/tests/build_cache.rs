//! `lamina build --cache-to/--cache-from` against a real `docker-registry` and a local cache dir: a fresh
//! store reuses layers built on another store (no RUN executes, same image digest), fetches only the layers
//! its cache hits need, and treats a tampered cache as a miss, never as a corrupt layer.

mod common;
mod registry_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::step_counts as counts;
use registry_support::{Registry, assert_store_sound, lamina};

const EPOCH: &str = "1700000000";

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `lamina --root ROOT build …` with SOURCE_DATE_EPOCH; returns (image id on stdout, stderr).
fn build(root: &Path, ctx: &Path, extra: &[&str]) -> (String, String) {
    let o = lamina()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "--network", "none", "-t", "app"])
        .args(extra)
        .arg(ctx)
        .output()
        .unwrap();
    let err = ok(&o, &format!("lamina build {extra:?}"));
    (String::from_utf8_lossy(&o.stdout).trim().to_owned(), err)
}

fn manifest_digest(stderr: &str) -> String {
    let line = stderr.lines().find(|l| l.starts_with("=> built ")).unwrap();
    line.split_whitespace().nth(2).unwrap().to_owned()
}

fn blobs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("blobs/sha256"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The image's layer digests (hex), bottom → top.
fn layer_hexes(root: &Path, image: &str) -> Vec<String> {
    let o = lamina()
        .arg("--root")
        .arg(root)
        .args(["inspect", image])
        .output()
        .unwrap();
    ok(&o, "lamina inspect");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["Digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_owned()
        })
        .collect()
}

/// A busybox base pushed to `reg` as `base:1`; the context of a two-stage build over it whose RUN steps
/// write random UUIDs, so a RUN that executes again can never reproduce the cached layer.
fn setup(tmp: &Path, reg: &Registry) -> Option<(String, PathBuf)> {
    if !common::is_root() {
        lamina_testkit::skip("RUN steps need root (namespaces, overlay)");
        return None;
    }
    let rootfs = common::busybox_rootfs_tar(tmp)?;
    let seed = tmp.join("seed");
    let base = format!("{}/base:1", reg.host());
    common::ok(&seed, &["import", rootfs.to_str().unwrap(), &base]);
    common::ok(&seed, &["push", &base]);
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("app.txt"), "app v1\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base} AS gen\n\
             RUN echo generated > /gen.txt && cat /proc/sys/kernel/random/uuid > /gen.stamp\n\
             FROM {base}\n\
             COPY app.txt /app/app.txt\n\
             COPY --from=gen /gen.txt /app/gen.txt\n\
             RUN cat /app/app.txt /app/gen.txt > /app/all.txt && cat /proc/sys/kernel/random/uuid > /app/stamp\n\
             CMD [\"cat\", \"/app/all.txt\"]\n"
        ),
    )
    .unwrap();
    Some((base, ctx))
}

/// The acceptance test: build on store A with --cache-to (registry, mode=max), then on an empty
/// store B with --cache-from: nothing executes and the image digest is the same. Then a change in the
/// final stage: B reruns exactly the steps after it and never downloads the stale final-stage layers.
#[test]
fn registry_cache_makes_a_fresh_store_build_nothing() {
    let Some(reg) = Registry::start("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, ctx)) = setup(tmp.path(), &reg) else {
        return;
    };
    let cache = format!("{}/app/cache:main", reg.host());

    let a = tmp.path().join("a");
    let (id_a, err_a) = build(
        &a,
        &ctx,
        &["--cache-to", &format!("type=registry,ref={cache},mode=max")],
    );
    assert_eq!(counts(&err_a).0, 4, "store A runs every step:\n{err_a}");
    assert!(err_a.contains("=> exported 4 cache records"), "{err_a}");

    let b = tmp.path().join("b");
    let (id_b, err_b) = build(&b, &ctx, &["--cache-from", &format!("type=registry,ref={cache}")]);
    assert_eq!(
        counts(&err_b),
        (0, 4),
        "store B must take every step from the cache:\n{err_b}"
    );
    assert_eq!(id_a, id_b, "same image id");
    assert_eq!(
        manifest_digest(&err_a),
        manifest_digest(&err_b),
        "same manifest digest"
    );
    assert_store_sound(&b);
    // The image is whole in B: fsck verifies every blob, and it unpacks.
    let o = lamina().arg("--root").arg(&b).args(["fsck"]).output().unwrap();
    ok(&o, "lamina fsck on B");
    let out = tmp.path().join("unpacked");
    let o = lamina()
        .arg("--root")
        .arg(&b)
        .args(["unpack", "app"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o, "lamina unpack on B");
    assert_eq!(
        std::fs::read_to_string(out.join("app/all.txt")).unwrap(),
        "app v1\ngenerated\n"
    );

    // Change the final stage's first input: on a third fresh store, `gen` and its RUN still hit, the
    // final-stage COPY and RUN run, and the stale v1 layers of the final stage are never fetched.
    // (The COPY --from layer is byte-identical in v2, so only the COPY app.txt and RUN layers are stale.)
    let top: Vec<String> = layer_hexes(&a, "app").into_iter().rev().take(3).collect();
    let stale = [top[0].clone(), top[2].clone()];
    std::fs::write(ctx.join("app.txt"), "app v2\n").unwrap();
    let c = tmp.path().join("c");
    let (_, err_c) = build(&c, &ctx, &["--cache-from", &format!("type=registry,ref={cache}")]);
    assert_eq!(counts(&err_c), (3, 1), "only gen's RUN is cached:\n{err_c}");
    let have = blobs(&c);
    for s in &stale {
        assert!(
            !have.contains(s),
            "stale cache layer {s} was downloaded although no step used it"
        );
    }
    assert_store_sound(&c);
}

/// mode=min (the default) exports only the final image's steps; `type=local` round-trips through a
/// directory; a cache whose layer blob was tampered with is a miss (the step runs), never a bad layer.
#[test]
fn local_cache_min_mode_and_tampered_blobs() {
    let Some(reg) = Registry::start("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, ctx)) = setup(tmp.path(), &reg) else {
        return;
    };
    let dir = tmp.path().join("cache-dir");

    let a = tmp.path().join("a");
    let (id_a, err_a) = build(
        &a,
        &ctx,
        &["--cache-to", &format!("type=local,dest={}", dir.display())],
    );
    assert!(
        err_a.contains("=> exported 3 cache records"),
        "min mode: the final stage's 3 steps\n{err_a}"
    );
    assert!(dir.join("index.json").is_file() && dir.join("oci-layout").is_file());
    let exported_layers = layer_hexes(&a, "app");
    // --no-cache reruns the RUNs and their new output (new timestamps) is what the image gets, not the
    // snapshot an earlier build left under the same step key.
    let (id_again, err) = build(&a, &ctx, &["--no-cache"]);
    assert_eq!(counts(&err), (4, 0), "{err}");
    assert_ne!(id_again, id_a, "--no-cache must not reuse the old RUN output");
    let out = lamina().arg("--root").arg(&a).args(["fsck"]).output().unwrap();
    ok(&out, "fsck after --no-cache");
    let (id_warm, _) = build(&a, &ctx, &[]);
    assert_eq!(
        id_warm, id_again,
        "the cache now holds the --no-cache build's steps"
    );

    // min mode has no record for gen's RUN: it runs again on B. The final stage's keys don't depend on
    // gen's layer, only on the content COPY --from selects (same text), so all three hit: same image.
    let b = tmp.path().join("b");
    let src = format!("type=local,src={}", dir.display());
    let (id_b, err_b) = build(&b, &ctx, &["--cache-from", &src]);
    assert_eq!(counts(&err_b), (1, 3), "{err_b}");
    assert_eq!(id_a, id_b);

    // Tamper with every layer blob in the cache dir (same name, other bytes): B2 must notice the digest
    // mismatch, warn, run the steps, and keep its store sound.
    for l in &exported_layers {
        let p = dir.join("blobs/sha256").join(l);
        if p.exists() {
            std::fs::write(&p, b"not the layer you are looking for").unwrap();
        }
    }
    let b2 = tmp.path().join("b2");
    let (_, err) = build(&b2, &ctx, &["--cache-from", &src]);
    assert_eq!(counts(&err).1, 0, "no tampered layer may be used:\n{err}");
    assert!(
        err.contains("running the step"),
        "the bad cache is reported:\n{err}"
    );
    assert_store_sound(&b2);
    let o = lamina().arg("--root").arg(&b2).args(["fsck"]).output().unwrap();
    ok(&o, "lamina fsck on B2");

    // Bad flags are user errors naming the flag.
    let o = lamina()
        .arg("--root")
        .arg(&b2)
        .args(["build", "--cache-to", "type=gha,ref=x"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unsupported cache type \"gha\""));
}

/// Rewrites every record of the local cache at `dir` with `f` (records blob, manifest and index.json
/// re-digested, as a hostile cache would be: internally consistent, lying about the layers).
fn rewrite_records(dir: &Path, f: impl Fn(&mut serde_json::Value)) {
    use registry_support::sha256_hex;
    let blob = |d: &str| dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let put = |data: &[u8]| {
        let hex = sha256_hex(data);
        std::fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdesc = &mut index["manifests"][0];
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(mdesc["digest"].as_str().unwrap())).unwrap()).unwrap();
    let mut records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    for e in records["records"].as_array_mut().unwrap() {
        f(e);
    }
    let (d, n) = put(&serde_json::to_vec(&records).unwrap());
    manifest["config"]["digest"] = d.into();
    manifest["config"]["size"] = n.into();
    let (d, n) = put(&serde_json::to_vec(&manifest).unwrap());
    mdesc["digest"] = d.into();
    mdesc["size"] = n.into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A cache that lies consistently — the right blobs under wrong diff_ids, or gzip blobs labelled as
/// plain tar — is caught when the layer is unpacked or sniffed: every step runs, the image is whole and
/// loads, and the store stays sound. `ignore-error=true` turns a failing export into a warning.
#[test]
fn lying_cache_records_are_misses() {
    let Some(reg) = Registry::start("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, ctx)) = setup(tmp.path(), &reg) else {
        return;
    };
    let a = tmp.path().join("a");
    let (id_a, _) = build(&a, &ctx, &[]);

    for (name, lie) in [
        (
            "diff_id",
            &(|e: &mut serde_json::Value| {
                e["record"]["layer"]["diff_id"] =
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000".into();
            }) as &dyn Fn(&mut serde_json::Value),
        ),
        ("media type", &|e: &mut serde_json::Value| {
            e["record"]["layer"]["media_type"] = "application/vnd.oci.image.layer.v1.tar".into();
            e["layer"]["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
        }),
    ] {
        let dir = tmp.path().join(format!("cache-{name}"));
        let (_, err) = build(
            &a,
            &ctx,
            &["--cache-to", &format!("type=local,dest={}", dir.display())],
        );
        assert!(err.contains("=> exported 3 cache records"), "{err}");
        rewrite_records(&dir, lie);
        let b = tmp.path().join(format!("b-{name}"));
        let (id_b, err) = build(
            &b,
            &ctx,
            &["--cache-from", &format!("type=local,src={}", dir.display())],
        );
        assert_eq!(
            counts(&err),
            (4, 0),
            "a lying cache ({name}) must not be used:\n{err}"
        );
        assert!(
            err.contains("running the step"),
            "the lie is reported ({name}):\n{err}"
        );
        assert_ne!(id_b, id_a, "fresh RUN output, not the cache's ({name})");
        assert_store_sound(&b);
        let o = lamina().arg("--root").arg(&b).args(["fsck"]).output().unwrap();
        ok(&o, "fsck");
    }

    // An export that fails: an error, unless ignore-error=true.
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "a file where the cache dir should go").unwrap();
    let dest = format!("type=local,dest={}", blocker.join("sub").display());
    let o = lamina()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .arg("--root")
        .arg(&a)
        .args(["build", "--progress", "plain", "--cache-to", &dest])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exporting build cache"));
    let (_, err) = build(&a, &ctx, &["--cache-to", &format!("{dest},ignore-error=true")]);
    assert!(err.contains("ignore-error=true"), "{err}");
}
