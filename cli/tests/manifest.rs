//! `lamina manifest create|add|annotate|inspect|push|rm`: a list assembled in the store from two
//! single-platform builds, pushed with its images to a real docker-registry, read back by skopeo.

mod common;
mod registry_support;

use std::path::Path;
use std::process::Output;

use registry_support::{Registry, have, lamina, multi_arch_layout, ok, skopeo};

fn lam(root: &Path, args: &[&str]) -> Output {
    lamina().arg("--root").arg(root).args(args).output().unwrap()
}

fn json(o: &Output, what: &str) -> serde_json::Value {
    serde_json::from_str(&ok(o, what)).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// (digest, "os/arch[/variant]") of each entry of an index document.
fn entries(v: &serde_json::Value) -> Vec<(String, String)> {
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                s = format!("{s}/{v}");
            }
            (m["digest"].as_str().unwrap().to_owned(), s)
        })
        .collect()
}

#[test]
fn a_list_from_two_builds_is_pushed_with_its_images() {
    if !common::is_root() {
        lamina_testkit::skip("COPY sets root ownership, which needs root");
        return;
    }
    if !have("skopeo") {
        lamina_testkit::skip("skopeo is not installed");
        return;
    }
    let Some(reg) = Registry::start("") else { return };
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    multi_arch_layout(&layout);
    let base = format!("{}/base:1", reg.host());
    ok(
        &skopeo(&[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{base}"),
        ]),
        "skopeo copy (base)",
    );
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCOPY hello /hello\n"),
    )
    .unwrap();
    std::fs::write(ctx.join("hello"), "hi\n").unwrap();
    let root = t.path().join("store");
    let ctx_s = ctx.to_str().unwrap();
    for (p, tag) in [("linux/amd64", "app-amd"), ("linux/arm64", "app-arm")] {
        ok(
            &lam(
                &root,
                &[
                    "build",
                    "-q",
                    "--network",
                    "none",
                    "--platform",
                    p,
                    "-t",
                    tag,
                    ctx_s,
                ],
            ),
            "lamina build",
        );
    }
    let digest_of = |image: &str| {
        let v = json(&lam(&root, &["inspect", image]), "lamina inspect");
        let v = if v.is_array() { v[0].clone() } else { v };
        v["Digest"].as_str().unwrap().to_owned()
    };
    let (amd, arm) = (digest_of("app-amd"), digest_of("app-arm"));

    // create with one image, add the other: both listed under their configs' platforms.
    let list = "localhost/app:list";
    ok(
        &lam(&root, &["manifest", "create", list, "app-amd"]),
        "manifest create",
    );
    let again = lam(&root, &["manifest", "create", list, "app-amd"]);
    assert!(!again.status.success(), "create refuses an existing list");
    ok(&lam(&root, &["manifest", "add", list, "app-arm"]), "manifest add");
    let v = json(&lam(&root, &["manifest", "inspect", list]), "manifest inspect");
    assert_eq!(v["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(
        entries(&v),
        vec![
            (amd.clone(), "linux/amd64".into()),
            (arm.clone(), "linux/arm64".into())
        ]
    );

    // annotate changes that entry only; adding it again replaces rather than repeats it.
    ok(
        &lam(
            &root,
            &[
                "manifest",
                "annotate",
                list,
                "app-arm",
                "--variant",
                "v8",
                "--annotation",
                "org.example=yes",
            ],
        ),
        "manifest annotate",
    );
    ok(
        &lam(&root, &["manifest", "add", list, "app-amd"]),
        "manifest add (again)",
    );
    let v = json(&lam(&root, &["manifest", "inspect", list]), "manifest inspect");
    let mut got = entries(&v);
    got.sort();
    let mut want = vec![
        (amd.clone(), "linux/amd64".to_string()),
        (arm.clone(), "linux/arm64".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "arm64/v8 normalises to arm64; one entry per platform");
    let arm_entry = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == arm.as_str())
        .unwrap();
    assert_eq!(arm_entry["annotations"]["org.example"], "yes");

    // push: the index and both images; skopeo reads and copies it whole.
    let dest = format!("{}/app:multi", reg.host());
    ok(&lam(&root, &["manifest", "push", list, &dest]), "manifest push");
    let raw = ok(
        &skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{dest}"),
        ]),
        "skopeo inspect",
    );
    let remote: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let mut got = entries(&remote);
    got.sort();
    assert_eq!(got, want);
    ok(
        &skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{dest}"),
            &format!("oci:{}:x", t.path().join("copied").display()),
        ]),
        "skopeo copy --all",
    );
    // inspect of a registry reference (not in the store) asks the registry.
    let v = json(
        &lam(&root, &["manifest", "inspect", &dest]),
        "manifest inspect (remote)",
    );
    assert_eq!(v, remote);

    // rm removes the list, not its images; add refuses an image as the list.
    let listed = |root: &Path| {
        let names = ok(
            &lam(root, &["images", "--format", "{{.Repository}}:{{.Tag}}"]),
            "lamina images",
        );
        names.lines().any(|n| n == list)
    };
    assert!(listed(&root), "the list shows in images");
    ok(&lam(&root, &["manifest", "rm", list]), "manifest rm");
    assert!(!listed(&root), "rm untags the list");
    ok(&lam(&root, &["inspect", "app-arm"]), "image kept");
    let o = lam(&root, &["manifest", "add", "app-amd", "app-arm"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a manifest list"));
}
