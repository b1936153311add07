//! Concurrent `lamina build`s that pull their base images keep every tag: the base-image pull tags through
//! the store's locked index writer, like the build's own tag, so no read-modify-write of index.json is lost.

mod registry_support;

use std::collections::BTreeSet;
use std::path::Path;

use registry_support::{Registry, have, image_blobs, lamina, layer, ok, skopeo, write_index};

/// Concurrent builds per round, each FROM its own base image.
const BUILDS: usize = 4;
const ROUNDS: usize = 12;

/// Pushes a one-layer image for the host's architecture as `{registry}/base-{i}:1`; returns that name.
fn push_base(reg: &Registry, dir: &Path, i: usize) -> String {
    let layout = dir.join(format!("layout-{i}"));
    let l = layer(&[("base.txt", format!("base {i}\n").into_bytes())]);
    let arch = lamina_store::Platform::host().architecture;
    let (md, size) = image_blobs(&layout, &arch, &[l]);
    write_index(
        &layout,
        &[
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": size, "annotations": {"org.opencontainers.image.ref.name": "v1"}}),
        ],
    );
    let name = format!("{}/base-{i}:1", reg.host());
    ok(
        &skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{name}"),
        ]),
        "skopeo copy to registry",
    );
    name
}

/// The ref.name of every index.json entry of the store at `root`.
fn tags(root: &Path) -> BTreeSet<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect()
}

#[test]
fn concurrent_builds_pulling_bases_keep_every_tag() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bases: Vec<String> = (0..BUILDS).map(|i| push_base(&reg, tmp.path(), i)).collect();
    for round in 0..ROUNDS {
        let root = tmp.path().join(format!("store-{round}"));
        let children: Vec<_> = bases
            .iter()
            .enumerate()
            .map(|(i, base)| {
                let ctx = tmp.path().join(format!("ctx-{round}-{i}"));
                std::fs::create_dir_all(&ctx).unwrap();
                std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nLABEL build={i}\n")).unwrap();
                lamina()
                    .arg("--root")
                    .arg(&root)
                    .args(["build", "--progress", "plain", "--network", "none", "-t"])
                    .arg(format!("out-{i}:latest"))
                    .arg(&ctx)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, c) in children.into_iter().enumerate() {
            ok(
                &c.wait_with_output().unwrap(),
                &format!("round {round}: build {i}"),
            );
        }
        let have = tags(&root);
        for i in 0..BUILDS {
            let base = format!("{}/base-{i}:1", reg.host());
            let out = format!("docker.io/library/out-{i}:latest");
            assert!(
                have.contains(&base),
                "round {round}: lost the tag of base {base}; tags: {have:?}"
            );
            assert!(
                have.contains(&out),
                "round {round}: lost the tag of build result {out}; tags: {have:?}"
            );
        }
    }
}
