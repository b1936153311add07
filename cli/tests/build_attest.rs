//! `lamina build --attest type=provenance,mode=max --sbom=true --push` against a real docker-registry:
//! the pushed index carries an attestation manifest per image in buildx's shape (platform
//! unknown/unknown, `vnd.docker.reference.*` annotations, in-toto layers), read back with skopeo and
//! plain registry GETs; the provenance names the base image's digest and the build args; the SBOM
//! lists the dpkg package a RUN put into the image. `copy --all` keeps the attestations.

mod common;
mod registry_support;

use registry_support::{Registry, have, skopeo};

fn raw(reference: &str) -> serde_json::Value {
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A blob by plain HTTP GET, as any registry client reads it.
fn blob(host: &str, repo: &str, digest: &str) -> serde_json::Value {
    let o = std::process::Command::new("curl")
        .args(["-sf", &format!("http://{host}/v2/{repo}/blobs/{digest}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "GET blob {digest}");
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn provenance_and_sbom_are_attached_as_buildx_attaches_them() {
    if !common::is_root() {
        lamina_testkit::skip("RUN steps need root");
        return;
    }
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") || !have("curl") {
        lamina_testkit::skip("skopeo and curl read the pushed index back");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(tar) = common::busybox_rootfs_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("store");
    common::ok(&root, &["import", tar.to_str().unwrap(), "base"]);
    let base_manifest = common::ok(&root, &["inspect", "--format", "json", "base"]);
    let base: serde_json::Value = serde_json::from_str(&base_manifest).unwrap();
    let base_digest = base["Digest"].as_str().unwrap().to_owned();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nARG FLAVOUR\nRUN mkdir -p /var/lib/dpkg && printf 'Package: hello\\nStatus: install ok installed\\nVersion: 2.10-3\\nArchitecture: amd64\\n\\n' > /var/lib/dpkg/status\n",
    )
    .unwrap();
    let h = reg.host();
    let image = format!("{h}/att:1");
    common::ok(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--attest",
            "type=provenance,mode=max",
            "--sbom=true",
            "--build-arg",
            "FLAVOUR=mint",
            "-t",
            &image,
            "--push",
            ctx.to_str().unwrap(),
        ],
    );
    let index = raw(&image);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    let img = &entries[0];
    assert_eq!(img["platform"]["os"], "linux");
    let att = &entries[1];
    assert_eq!(
        att["platform"],
        serde_json::json!({"architecture": "unknown", "os": "unknown"})
    );
    assert_eq!(
        att["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(att["annotations"]["vnd.docker.reference.digest"], img["digest"]);

    let manifest = raw(&format!("{h}/att@{}", att["digest"].as_str().unwrap()));
    let layers = manifest["layers"].as_array().unwrap();
    let by_type = |t: &str| {
        let l = layers
            .iter()
            .find(|l| l["annotations"]["in-toto.io/predicate-type"] == t)
            .unwrap_or_else(|| panic!("no {t} layer in {manifest}"));
        assert_eq!(l["mediaType"], "application/vnd.in-toto+json");
        blob(&h, "att", l["digest"].as_str().unwrap())
    };
    let prov = by_type("https://slsa.dev/provenance/v0.2");
    let img_hex = img["digest"].as_str().unwrap().trim_start_matches("sha256:");
    assert_eq!(prov["subject"][0]["digest"]["sha256"], img_hex);
    assert!(
        prov["subject"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pkg:docker/{h}/att@1"))
    );
    let materials = prov["predicate"]["materials"].as_array().unwrap();
    assert_eq!(materials.len(), 1, "{prov}");
    assert!(
        materials[0]["uri"]
            .as_str()
            .unwrap()
            .starts_with("pkg:docker/base@latest")
    );
    assert_eq!(
        format!("sha256:{}", materials[0]["digest"]["sha256"].as_str().unwrap()),
        base_digest
    );
    assert_eq!(
        prov["predicate"]["invocation"]["parameters"]["args"]["build-arg:FLAVOUR"],
        "mint"
    );
    let sbom = by_type("https://spdx.dev/Document");
    let names: Vec<&str> = sbom["predicate"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"hello"), "{names:?}");

    // The SBOM's scan of each layer is remembered in the store (by layer digest): a rebuild replays it
    // instead of reading the layers again. Seen by editing the memo of the RUN's layer (same length, so
    // still well-formed): the next SBOM says what the memo says.
    let memos: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("cache/context"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read(p).is_ok_and(|b| {
                b.starts_with(b"lamina-sbom-layer-events-1\n")
                    && b.windows(14).any(|w| w == b"Package: hello")
            })
        })
        .collect();
    assert_eq!(memos.len(), 1, "one memo holds the RUN's dpkg status");
    let edited = std::fs::read(&memos[0]).unwrap();
    let at = edited.windows(14).position(|w| w == b"Package: hello").unwrap();
    let mut edited = edited.clone();
    edited[at + 9..at + 14].copy_from_slice(b"jello");
    std::fs::write(&memos[0], edited).unwrap();
    let image2 = format!("{h}/att:2");
    common::ok(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--sbom=true",
            "--build-arg",
            "FLAVOUR=mint",
            "-t",
            &image2,
            "--push",
            ctx.to_str().unwrap(),
        ],
    );
    let index2 = raw(&image2);
    let att2 = &index2["manifests"][1];
    let manifest2 = raw(&format!("{h}/att@{}", att2["digest"].as_str().unwrap()));
    let sbom2 = blob(&h, "att", manifest2["layers"][0]["digest"].as_str().unwrap());
    let names2: Vec<&str> = sbom2["predicate"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names2.contains(&"jello") && !names2.contains(&"hello"),
        "{names2:?}"
    );

    // A copy of the whole index keeps the attestation manifest and its blobs.
    common::ok(&root, &["copy", "--all", &image, &format!("{h}/mirror:1")]);
    let copied = raw(&format!("{h}/mirror:1"));
    assert_eq!(copied["manifests"], index["manifests"]);
    let _ = raw(&format!("{h}/mirror@{}", att["digest"].as_str().unwrap()));
}

/// `--provenance mode=max,version=v1` (buildx's spelling) attaches an SLSA v1 statement in BuildKit's v1
/// layout instead of v0.2's; an unknown version is refused before anything builds.
#[test]
fn provenance_version_v1_is_slsa_v1() {
    if !common::is_root() {
        lamina_testkit::skip("RUN steps need root");
        return;
    }
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") || !have("curl") {
        lamina_testkit::skip("skopeo and curl read the pushed index back");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(tar) = common::busybox_rootfs_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("store");
    common::ok(&root, &["import", tar.to_str().unwrap(), "base"]);
    let base: serde_json::Value =
        serde_json::from_str(&common::ok(&root, &["inspect", "--format", "json", "base"])).unwrap();
    let base_digest = base["Digest"].as_str().unwrap().to_owned();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nARG FLAVOUR\nRUN echo $FLAVOUR > /f\n",
    )
    .unwrap();
    let h = reg.host();
    let image = format!("{h}/att1:1");
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--build-arg", "FLAVOUR=mint", "-t", &image, "--push"]);
        args.push(ctx.to_str().unwrap());
        common::lamina(&root, &args)
    };
    let bad = build(&["--attest", "type=provenance,version=v3"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected v0.2 or v1"));
    let o = build(&["--provenance", "mode=max,version=v1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let index = raw(&image);
    let att = &index["manifests"][1];
    assert_eq!(
        att["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    let manifest = raw(&format!("{h}/att1@{}", att["digest"].as_str().unwrap()));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v1"
    );
    let prov = blob(&h, "att1", layers[0]["digest"].as_str().unwrap());
    assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v1");
    let img_hex = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    assert_eq!(prov["subject"][0]["digest"]["sha256"], img_hex);
    let def = &prov["predicate"]["buildDefinition"];
    let deps = def["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 1, "{prov}");
    assert_eq!(
        format!("sha256:{}", deps[0]["digest"]["sha256"].as_str().unwrap()),
        base_digest
    );
    assert_eq!(def["externalParameters"]["configSource"]["path"], "Dockerfile");
    assert_eq!(
        def["externalParameters"]["request"]["args"]["build-arg:FLAVOUR"],
        "mint"
    );
    let run = &prov["predicate"]["runDetails"];
    assert!(
        run["builder"]["id"]
            .as_str()
            .unwrap()
            .starts_with("urn:lamina:builder:")
    );
    assert!(
        run["metadata"]["startedOn"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{run}"
    );
}
