//! Registry acceptance tests against a real `docker-registry` on a loopback port, with skopeo as the
//! interop peer, htpasswd and token auth, credential files and helpers, and a fault-injecting proxy.

mod registry_support;

use std::path::Path;
use std::process::Output;

use registry_support::*;

fn fails(o: &Output, what: &str) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what} should fail with a user error: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn skopeo_push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{dest}");
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([src.as_str(), dst.as_str()]);
    ok(&skopeo(&args), "skopeo copy to registry");
}

fn raw_manifest(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let r = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&r);
    let o = skopeo(&args);
    ok(&o, "skopeo inspect");
    o.stdout
}

fn tagged_digest(root: &Path, name: &str) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).ok()?).ok()?;
    index["manifests"]
        .as_array()?
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .map(|m| m["digest"].as_str().unwrap().to_owned())
}

/// Reads `path` from the gzip layers of an image in an OCI layout (top layer wins).
fn file_in_layout(layout: &Path, manifest_digest: &str, path: &str) -> Option<Vec<u8>> {
    let blob =
        |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&blob(manifest_digest)).unwrap();
    let mut found = None;
    for l in m["layers"].as_array().unwrap() {
        let data = blob(l["digest"].as_str().unwrap());
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some(path) {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).unwrap();
                found = Some(v);
            }
        }
    }
    found
}

#[test]
fn push_pull_round_trip_with_skopeo_oci_and_schema2() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    simple_layout(&layout, 2 << 20);
    let h = reg.host();
    for (i, format) in [None, Some("v2s2")].into_iter().enumerate() {
        let extra: Vec<&str> = format.map(|f| vec!["--format", f]).unwrap_or_default();
        skopeo_push(&layout, "v1", &format!("{h}/src/img{i}:v1"), &extra);
        let store = tmp.path().join(format!("store{i}"));
        let o = lamina()
            .arg("--root")
            .arg(&store)
            .args(["pull", "--progress", "plain", &format!("{h}/src/img{i}:v1")])
            .output()
            .unwrap();
        ok(&o, "lamina pull");
        assert_store_sound(&store);
        // Unpacked into snapshots as part of the pull.
        let unpacked: Vec<_> = std::fs::read_dir(store.join("snapshots"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("data/blob.bin").is_file())
            .collect();
        assert_eq!(unpacked.len(), 1, "pull did not unpack the layer");
        assert_eq!(
            std::fs::read(unpacked[0].path().join("data/blob.bin")).unwrap(),
            noise(7, 2 << 20)
        );
        let pulled = tagged_digest(&store, &format!("{h}/src/img{i}:v1")).expect("pulled image is tagged");
        let src_raw = raw_manifest(&format!("{h}/src/img{i}:v1"), None);
        assert_eq!(
            pulled,
            format!("sha256:{}", sha256_hex(&src_raw)),
            "pull keeps the registry digest"
        );
        if format.is_some() {
            assert!(
                String::from_utf8_lossy(&src_raw)
                    .contains("application/vnd.docker.distribution.manifest.v2+json")
            );
        }

        let o = lamina()
            .arg("--root")
            .arg(&store)
            .args([
                "push",
                "--progress",
                "plain",
                &format!("{h}/src/img{i}:v1"),
                &format!("{h}/dst/img{i}:v2"),
            ])
            .output()
            .unwrap();
        ok(&o, "lamina push");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("Mounted"),
            "same-registry push should mount: {stderr}"
        );
        assert_eq!(
            raw_manifest(&format!("{h}/dst/img{i}:v2"), None),
            src_raw,
            "push keeps the manifest bytes"
        );

        // skopeo reads what lamina pushed (verifying every blob) and gets the same files.
        let out = tmp.path().join(format!("out{i}"));
        ok(
            &skopeo(&[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{h}/dst/img{i}:v2"),
                &format!("oci:{}:x", out.display()),
            ]),
            "skopeo copy from lamina's push",
        );
        let out_index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let md = out_index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        assert_eq!(
            file_in_layout(&out, &md, "data/blob.bin").unwrap(),
            noise(7, 2 << 20)
        );
        assert_eq!(file_in_layout(&out, &md, "etc/hello.txt").unwrap(), b"hello\n");
    }
    // tags and manifest inspect
    let o = lamina()
        .args(["tags", &format!("{h}/src/img0")])
        .output()
        .unwrap();
    assert_eq!(ok(&o, "lamina tags").trim(), "v1");
    let o = lamina()
        .args(["manifest", "inspect", "--raw", &format!("{h}/src/img0:v1")])
        .output()
        .unwrap();
    ok(&o, "manifest inspect");
    assert_eq!(o.stdout, raw_manifest(&format!("{h}/src/img0:v1"), None));
    // registry → registry copy, then back out to an OCI layout
    for i in [0, 1] {
        let o = lamina()
            .args([
                "copy",
                "--progress",
                "plain",
                &format!("{h}/src/img{i}:v1"),
                &format!("docker://{h}/copied/x{i}:c"),
            ])
            .output()
            .unwrap();
        ok(&o, "lamina copy");
        assert_eq!(
            raw_manifest(&format!("{h}/copied/x{i}:c"), None),
            raw_manifest(&format!("{h}/src/img{i}:v1"), None)
        );
    }
    let oci = tmp.path().join("ocicopy");
    let o = lamina()
        .args([
            "copy",
            &format!("{h}/copied/x0:c"),
            &format!("oci:{}:t", oci.display()),
        ])
        .output()
        .unwrap();
    ok(&o, "lamina copy to oci:");
    ok(
        &skopeo(&["inspect", &format!("oci:{}:t", oci.display())]),
        "skopeo reads lamina's oci: output",
    );
}

#[test]
fn multi_arch_index_selects_platform() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (amd, arm, idx_hex) = multi_arch_layout(&layout);
    let h = reg.host();
    skopeo_push(&layout, "multi", &format!("{h}/multi:1"), &["--all"]);
    let name = format!("{h}/multi:1");
    for (platform, want) in [
        ("linux/arm64", &arm),
        ("linux/amd64", &amd),
        ("linux/arm64/v8", &arm),
    ] {
        let store = tmp.path().join(format!("s-{}", platform.replace('/', "-")));
        ok(
            &lamina()
                .arg("--root")
                .arg(&store)
                .args(["pull", "--platform", platform, &name])
                .output()
                .unwrap(),
            "pull --platform",
        );
        assert_eq!(tagged_digest(&store, &name).as_ref(), Some(want), "{platform}");
    }
    let err = fails(
        &lamina()
            .arg("--root")
            .arg(tmp.path().join("s390"))
            .args(["pull", "--platform", "linux/s390x", &name])
            .output()
            .unwrap(),
        "pull s390x",
    );
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64/v8"),
        "{err}"
    );
    // copy --all keeps the index digest
    ok(
        &lamina()
            .args(["copy", "--all", &name, &format!("{h}/multi-copy:1")])
            .output()
            .unwrap(),
        "copy --all",
    );
    assert_eq!(
        sha256_hex(&raw_manifest(&format!("{h}/multi-copy:1"), None)),
        idx_hex
    );
}

#[test]
fn basic_auth_login_config_and_credential_helper() {
    if !have("htpasswd") || !have("skopeo") {
        lamina_testkit::skip("htpasswd (apache2-utils) or skopeo missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = std::process::Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret-pw"])
        .output()
        .unwrap();
    std::fs::write(tmp.path().join("htpasswd"), ok(&htpasswd, "htpasswd")).unwrap();
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: lamina-test\n    path: {}\n",
        tmp.path().join("htpasswd").display()
    );
    let Some(reg) = Registry::start(&auth) else { return };
    let h = reg.host();
    let layout = tmp.path().join("layout");
    simple_layout(&layout, 64 << 10);
    skopeo_push(
        &layout,
        "v1",
        &format!("{h}/private/img:v1"),
        &["--dest-creds", "alice:s3cret-pw"],
    );
    let name = format!("{h}/private/img:v1");
    let store = tmp.path().join("store");
    let pull = |cfg: &Path| {
        lamina()
            .arg("--root")
            .arg(&store)
            .env("DOCKER_CONFIG", cfg)
            .env("HOME", cfg)
            .args(["pull", &name])
            .output()
            .unwrap()
    };

    let cfg = tmp.path().join("docker");
    let err = fails(&pull(&cfg), "anonymous pull");
    assert!(err.contains("lamina login"), "{err}");

    let login = |pw: &str| {
        let mut c = lamina();
        c.env("DOCKER_CONFIG", &cfg)
            .args(["login", "-u", "alice", "--password-stdin", &h]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{pw}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = login("wrong-pw");
    let err = fails(&o, "login with a wrong password");
    assert!(!err.contains("wrong-pw"));
    let o = login("s3cret-pw");
    assert!(ok(&o, "login").contains("Login Succeeded"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("s3cret-pw"));
    let conf = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(conf.contains(&h) && !conf.contains("s3cret-pw"), "{conf}");
    ok(&pull(&cfg), "pull with config.json credentials");
    assert_store_sound(&store);

    ok(
        &lamina()
            .env("DOCKER_CONFIG", &cfg)
            .args(["logout", &h])
            .output()
            .unwrap(),
        "logout",
    );
    std::fs::remove_dir_all(&store).unwrap();
    fails(&pull(&cfg), "pull after logout");

    // A credential helper named in credHelpers.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-lamtest");
    std::fs::write(&helper, "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"alice\\\",\\\"Secret\\\":\\\"s3cret-pw\\\"}\"\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&helper).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hcfg = tmp.path().join("helpercfg");
    std::fs::create_dir_all(&hcfg).unwrap();
    std::fs::write(
        hcfg.join("config.json"),
        format!(r#"{{"credHelpers":{{"{h}":"lamtest"}}}}"#),
    )
    .unwrap();
    let o = lamina()
        .arg("--root")
        .arg(&store)
        .env("DOCKER_CONFIG", &hcfg)
        .env("PATH", path_with(&bin))
        .args(["pull", &name])
        .output()
        .unwrap();
    ok(&o, "pull with a credential helper");

    // Blobs redirected to another host ("blob storage") get no credentials.
    let storage = BlobStorage::start(reg.dir.path().join("data"));
    let proxy = Proxy::start(
        reg.port,
        Faults {
            redirect_blobs_to: Some(storage.port),
            seed: 1,
            ..Default::default()
        },
    );
    std::fs::write(
        hcfg.join("config.json"),
        format!(r#"{{"credHelpers":{{"127.0.0.1:{}":"lamtest"}}}}"#, proxy.port),
    )
    .unwrap();
    let o = lamina()
        .arg("--root")
        .arg(tmp.path().join("redirected"))
        .env("DOCKER_CONFIG", &hcfg)
        .env("PATH", path_with(&bin))
        .args(["pull", &format!("127.0.0.1:{}/private/img:v1", proxy.port)])
        .output()
        .unwrap();
    ok(&o, "pull with blobs redirected to another host");
    assert!(
        storage.served.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "redirect not followed"
    );
    assert!(
        storage.auth_seen.lock().unwrap().is_empty(),
        "credentials leaked to the redirect target"
    );
    assert_store_sound(&tmp.path().join("redirected"));
}

#[test]
fn token_auth_with_scopes_and_cross_repo_mount() {
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let Some(tokens) = TokenServer::start("bob", "tok-pw") else {
        return;
    };
    let Some(reg) = Registry::start(&tokens.auth_config()) else {
        return;
    };
    let h = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    simple_layout(&layout, 256 << 10);
    skopeo_push(
        &layout,
        "v1",
        &format!("{h}/team-a/img:v1"),
        &["--dest-creds", "bob:tok-pw"],
    );
    let cfg = tmp.path().join("docker");
    std::fs::create_dir_all(&cfg).unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:tok-pw");
    std::fs::write(
        cfg.join("config.json"),
        format!(r#"{{"auths":{{"{h}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let store = tmp.path().join("store");
    let run = |args: &[&str]| {
        lamina()
            .arg("--root")
            .arg(&store)
            .env("DOCKER_CONFIG", &cfg)
            .args(args)
            .output()
            .unwrap()
    };
    ok(
        &run(&["pull", &format!("{h}/team-a/img:v1")]),
        "pull with token auth",
    );
    tokens.scopes.lock().unwrap().clear();
    let o = run(&[
        "push",
        "--progress",
        "plain",
        &format!("{h}/team-a/img:v1"),
        &format!("{h}/team-b/img:v1"),
    ]);
    ok(&o, "push with token auth");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Mounted"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let scopes = tokens.scopes.lock().unwrap().clone();
    assert!(
        scopes.iter().any(|s| s == "repository:team-b/img:pull,push"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:team-a/img:pull"),
        "mount needs the source scope: {scopes:?}"
    );
    assert_eq!(
        raw_manifest(&format!("{h}/team-b/img:v1"), Some("bob:tok-pw")),
        raw_manifest(&format!("{h}/team-a/img:v1"), Some("bob:tok-pw"))
    );
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let wrong = base64::engine::general_purpose::STANDARD.encode("bob:nope");
    std::fs::write(
        bad.join("config.json"),
        format!(r#"{{"auths":{{"{h}":{{"auth":"{wrong}"}}}}}}"#),
    )
    .unwrap();
    let o = lamina()
        .arg("--root")
        .arg(tmp.path().join("s2"))
        .env("DOCKER_CONFIG", &bad)
        .args(["pull", &format!("{h}/team-a/img:v1")])
        .output()
        .unwrap();
    let err = fails(&o, "pull with wrong token credentials");
    assert!(err.contains("refused the credentials"), "{err}");
}

fn seed_image(h: &str, tmp: &Path, repo: &str, big: usize) {
    let layout = tmp.join(format!("layout-{}", repo.replace('/', "-")));
    simple_layout(&layout, big);
    skopeo_push(&layout, "v1", &format!("{h}/{repo}:v1"), &[]);
}

#[test]
fn flaky_registry_pull_and_push_recover() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    seed_image(&reg.host(), tmp.path(), "flaky/src", 3 << 20);
    let proxy = Proxy::start(
        reg.port,
        Faults {
            reset_mid_blob: 10,
            status_500: 8,
            status_429: 6,
            truncate: 8,
            corrupt: 8,
            seed: 42,
            ..Default::default()
        },
    );
    let ph = format!("127.0.0.1:{}", proxy.port);
    let store = tmp.path().join("store");
    for attempt in 0..2 {
        // Two pulls into fresh stores: faults land on different requests each time.
        let s = store.join(attempt.to_string());
        let o = lamina()
            .arg("--root")
            .arg(&s)
            .args(["pull", "--progress", "plain", &format!("{ph}/flaky/src:v1")])
            .output()
            .unwrap();
        ok(&o, "pull through a flaky proxy");
        assert_store_sound(&s);
    }
    let log_before = proxy.log.lock().unwrap().len();
    let o = lamina()
        .arg("--root")
        .arg(store.join("0"))
        .args([
            "push",
            "--progress",
            "plain",
            &format!("{ph}/flaky/src:v1"),
            &format!("{ph}/flaky/dst:v1"),
        ])
        .output()
        .unwrap();
    ok(&o, "push through a flaky proxy");
    let log = proxy.log.lock().unwrap()[log_before..].to_vec();
    let faults = proxy
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("FAULT"))
        .count();
    assert!(faults > 0, "the proxy injected no faults: test is vacuous");
    let first_manifest = log
        .iter()
        .position(|l| l.starts_with("201 PUT") && l.contains("/manifests/"))
        .expect("manifest pushed");
    let last_blob = log
        .iter()
        .rposition(|l| l.starts_with("201") && (l.contains("/blobs/uploads/") || l.contains("mount=")))
        .unwrap_or(0);
    assert!(
        last_blob < first_manifest,
        "manifest pushed before its blobs: {log:#?}"
    );
    assert_eq!(
        raw_manifest(&format!("{}/flaky/dst:v1", reg.host()), None),
        raw_manifest(&format!("{}/flaky/src:v1", reg.host()), None)
    );
}

#[test]
fn hostile_registry_fails_clearly() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    seed_image(&reg.host(), tmp.path(), "bad/src", 64 << 10);
    // Oversized manifest.
    let big = Proxy::start(
        reg.port,
        Faults {
            oversized_manifest: Some(5 << 20),
            seed: 1,
            ..Default::default()
        },
    );
    let store = tmp.path().join("s1");
    let o = lamina()
        .arg("--root")
        .arg(&store)
        .args(["pull", &format!("127.0.0.1:{}/bad/src:v1", big.port)])
        .output()
        .unwrap();
    let err = fails(&o, "pull of an oversized manifest");
    assert!(err.contains("larger than the 4194304-byte limit"), "{err}");
    assert!(tagged_digest(&store, &format!("127.0.0.1:{}/bad/src:v1", big.port)).is_none());
    // Every blob corrupted in transit: retried, then a clear digest error, and nothing bad stored.
    let corrupt = Proxy::start(
        reg.port,
        Faults {
            corrupt: 100,
            seed: 1,
            ..Default::default()
        },
    );
    let store = tmp.path().join("s2");
    let o = lamina()
        .arg("--root")
        .arg(&store)
        .args(["pull", &format!("127.0.0.1:{}/bad/src:v1", corrupt.port)])
        .output()
        .unwrap();
    let err = fails(&o, "pull of corrupted blobs");
    assert!(err.contains("digest"), "{err}");
    assert_store_sound(&store);
    // Uploads always failing: push gives up and no manifest appears at the registry.
    let ok_store = tmp.path().join("s3");
    ok(
        &lamina()
            .arg("--root")
            .arg(&ok_store)
            .args(["pull", &format!("{}/bad/src:v1", reg.host())])
            .output()
            .unwrap(),
        "direct pull",
    );
    let down = Proxy::start(
        reg.port,
        Faults {
            status_500: 100,
            seed: 1,
            ..Default::default()
        },
    );
    let o = lamina()
        .arg("--root")
        .arg(&ok_store)
        .args([
            "push",
            &format!("{}/bad/src:v1", reg.host()),
            &format!("127.0.0.1:{}/bad/never:v1", down.port),
        ])
        .output()
        .unwrap();
    let err = fails(&o, "push to a failing registry");
    assert!(err.contains("500"), "{err}");
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/bad/never:v1", reg.host()),
    ]);
    assert!(
        !o.status.success(),
        "a manifest was pushed although its blobs failed"
    );
}

/// `lamina build --push`: every -t tag is pushed after the build; a fresh store pulls the same manifest
/// and unpacks the built file. Copy-only Dockerfile, so no root is needed.
#[test]
fn build_push_then_pull_into_fresh_store() {
    let Some(reg) = Registry::start("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "pushed by build\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/x\"]\n",
    )
    .unwrap();
    let h = reg.host();
    let tag = format!("{h}/built/app:1");
    let a = tmp.path().join("a");
    let o = lamina()
        .arg("--root")
        .arg(&a)
        .args(["build", "--progress", "plain", "-t", &tag, "--push"])
        .arg(&ctx)
        .output()
        .unwrap();
    ok(&o, "lamina build --push");
    let built = tagged_digest(&a, &tag).expect("built image is tagged");
    assert_eq!(format!("sha256:{}", sha256_hex(&raw_manifest(&tag, None))), built);

    let b = tmp.path().join("b");
    ok(
        &lamina()
            .arg("--root")
            .arg(&b)
            .args(["pull", "--progress", "plain", &tag])
            .output()
            .unwrap(),
        "lamina pull",
    );
    assert_store_sound(&b);
    assert_eq!(tagged_digest(&b, &tag).as_deref(), Some(built.as_str()));
    let out = tmp.path().join("rootfs");
    ok(
        &lamina()
            .arg("--root")
            .arg(&b)
            .args(["unpack", &tag])
            .arg(&out)
            .output()
            .unwrap(),
        "lamina unpack",
    );
    assert_eq!(
        std::fs::read_to_string(out.join("hello.txt")).unwrap(),
        "pushed by build\n"
    );

    // Without a tag there is nothing to push to: a clear error before anything is built.
    let o = lamina()
        .arg("--root")
        .arg(&a)
        .args(["build", "--push"])
        .arg(&ctx)
        .output()
        .unwrap();
    let err = fails(&o, "build --push without -t");
    assert!(err.contains("--push needs"), "{err}");
}
