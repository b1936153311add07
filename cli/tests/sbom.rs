//! `lamina sbom`: packages from the image's databases, as the final filesystem has them (a package a
//! RUN step installs is listed, one a later step deletes is not), rendered as valid SPDX 2.3 and
//! CycloneDX 1.5 documents.

mod common;

use std::path::Path;

use common::{lamina_bin, ok};

const STATUS: &str = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\
Maintainer: Santiago Vila <sanvila@debian.org>\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 0.1\n\n";

const RUN_STATUS: &str =
    "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\nSource: hello-src\n";

fn context(dir: &Path) -> Option<std::path::PathBuf> {
    let bb = Path::new("/usr/bin/busybox");
    if !bb.exists() {
        lamina_testkit::skip("/usr/bin/busybox missing (install busybox-static)");
        return None;
    }
    let ctx = dir.join("ctx");
    let files: &[(&str, &str)] = &[
        (
            "rootfs/etc/os-release",
            "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        ),
        ("rootfs/var/lib/dpkg/status", STATUS),
        (
            "rootfs/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
        ),
        (
            "rootfs/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n",
        ),
        (
            "rootfs/app/node_modules/@types/node/package.json",
            r#"{"name": "@types/node", "version": "20.11.0", "license": "MIT"}"#,
        ),
        (
            "rootfs/app/node_modules/@types/node/lib/package.json",
            r#"{"name": "inner", "version": "9"}"#,
        ),
        ("run-status", RUN_STATUS),
        (
            "Dockerfile",
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n\
             RUN cat /run-status >> /var/lib/dpkg/status\n\
             RUN rm -r /usr/lib/python3/dist-packages/six-1.16.0.dist-info\n",
        ),
    ];
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::copy(bb, ctx.join("rootfs/bin/busybox")).unwrap();
    for a in ["sh", "cat", "rm"] {
        std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin").join(a)).unwrap();
    }
    for (name, content) in files {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    // The RUN reads it from the image; COPY it in beside the rootfs.
    std::fs::copy(ctx.join("run-status"), ctx.join("rootfs/run-status")).unwrap();
    Some(ctx)
}

fn purls(doc: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
        .map(|r| r["referenceLocator"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn sbom_lists_what_the_final_filesystem_holds() {
    if !lamina_testkit::need_root("RUN steps need namespaces and overlayfs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path()) else { return };
    let root = t.path().join("store");
    let ctx_s = ctx.display().to_string();
    ok(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "-t",
            "sbom-test",
            &ctx_s,
        ],
    );

    let spdx: serde_json::Value = serde_json::from_str(&ok(&root, &["sbom", "sbom-test"])).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(
        purls(&spdx),
        [
            "pkg:deb/debian/base-files@12.4+deb12u5?arch=amd64",
            "pkg:deb/debian/hello@2.10-3?arch=amd64&upstream=hello-src",
            "pkg:npm/%40types/node@20.11.0",
            "pkg:pypi/requests@2.31.0",
        ],
        "installed by RUN: listed; deinstalled, deleted by a later RUN, or inside a package: not"
    );
    // Every package is reachable from the document through DESCRIBES → CONTAINS, with unique SPDXIDs.
    let ids: Vec<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    let rels = spdx["relationships"].as_array().unwrap();
    for id in &ids[1..] {
        assert!(
            rels.iter()
                .any(|r| r["relationshipType"] == "CONTAINS" && r["relatedSpdxElement"] == *id),
            "{id} not contained"
        );
    }
    // Reproducible: the same image gives the same document.
    assert_eq!(
        ok(&root, &["sbom", "sbom-test"]),
        ok(&root, &["sbom", "sbom-test"])
    );

    let cdx: serde_json::Value =
        serde_json::from_str(&ok(&root, &["sbom", "--format", "cyclonedx-json", "sbom-test"])).unwrap();
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["specVersion"], "1.5");
    assert!(cdx["serialNumber"].as_str().unwrap().starts_with("urn:uuid:"));
    assert_eq!(cdx["components"].as_array().unwrap().len(), 4);
    assert_eq!(cdx["metadata"]["component"]["type"], "container");

    // -o writes the file and nothing to stdout.
    let out = t.path().join("sbom.json");
    let o = ok(&root, &["sbom", "-o", &out.display().to_string(), "sbom-test"]);
    assert!(o.is_empty());
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(purls(&written), purls(&spdx));
}

#[test]
fn sbom_of_a_missing_image_names_it() {
    let t = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(lamina_bin())
        .args([
            "--root",
            &t.path().display().to_string(),
            "sbom",
            "no-such-image:1",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no-such-image"), "{err}");
}
