//! `lamina sign` / `lamina verify` against a real registry: cosign's storage format (tag
//! `sha256-<hex>.sig`, simple-signing payload layers with the signature annotation), signatures that
//! openssl verifies on its own, and the ways verification must fail: another key, an image changed under
//! its tag, a signature moved from another image. Then referrers on the same registry (Debian's
//! docker-registry 2.8 has no referrers API, so this is the referrers tag schema, read back with skopeo):
//! `lamina artifact attach`, `lamina referrers`, and `lamina copy` carrying referrers and signatures along.

mod registry_support;

use std::path::Path;
use std::process::Command;

use registry_support::*;

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl").args(args).output().unwrap()
}

/// A P-256 key pair as openssl writes it: (private PEM, public PEM).
fn keypair(dir: &Path, name: &str) -> (String, String) {
    let k = dir.join(format!("{name}.key"));
    let p = dir.join(format!("{name}.pub"));
    ok(
        &openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            k.to_str().unwrap(),
        ]),
        "openssl ecparam",
    );
    ok(
        &openssl(&[
            "ec",
            "-in",
            k.to_str().unwrap(),
            "-pubout",
            "-out",
            p.to_str().unwrap(),
        ]),
        "openssl ec -pubout",
    );
    (k.display().to_string(), p.display().to_string())
}

fn push_layout(layout: &Path, dest: &str) -> String {
    let src = format!("oci:{}:v1", layout.display());
    ok(
        &skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &src,
            &format!("docker://{dest}"),
        ]),
        "skopeo copy",
    );
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]);
    format!("sha256:{}", sha256_hex(&ok_bytes(&raw)))
}

fn ok_bytes(o: &std::process::Output) -> Vec<u8> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout.clone()
}

fn lamina_ok(args: &[&str]) -> (String, String) {
    let o = lamina().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "lamina {args:?}:\n{err}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

fn lamina_fails(args: &[&str]) -> String {
    let o = lamina().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "lamina {args:?} succeeded:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A registry with one image pushed as `app:1`: (registry, scratch dir, reference, manifest digest);
/// `None` (with the reason printed) without skopeo or openssl.
fn pushed_image() -> Option<(Registry, tempfile::TempDir, String, String)> {
    let reg = Registry::start("")?;
    if !have("skopeo") || !have("openssl") {
        lamina_testkit::skip("skopeo and openssl are needed to push test images and check signatures");
        return None;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    simple_layout(&layout, 4096);
    let image = format!("{}/app:1", reg.host());
    let digest = push_layout(&layout, &image);
    Some((reg, t, image, digest))
}

#[test]
fn signatures_in_cosign_format_verify_with_openssl_and_refuse_what_they_must() {
    let Some((reg, t, image, digest)) = pushed_image() else {
        return;
    };
    let h = reg.host();
    let (k1, p1) = keypair(t.path(), "one");
    let (k2, p2) = keypair(t.path(), "two");

    lamina_ok(&["sign", "--key", &k1, &image]);
    let (out, err) = lamina_ok(&["verify", "--key", &p1, &image]);
    assert!(err.contains(&digest), "{err}");
    let claims: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        claims[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claims[0]["critical"]["identity"]["docker-reference"],
        format!("{h}/app")
    );

    // cosign's layout, checked with skopeo and openssl alone.
    let sig_tag = format!("{h}/app:{}.sig", digest.replacen(':', "-", 1));
    let dir = t.path().join("sigdir");
    ok(
        &skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{sig_tag}"),
            &format!("dir:{}", dir.display()),
        ]),
        "skopeo copy signature image",
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let sig_b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    let payload = dir.join(layer["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let sig = t.path().join("sig.der");
    let decoded = Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(sig_b64.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    std::fs::write(&sig, ok_bytes(&decoded)).unwrap();
    let v = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &p1,
        "-signature",
        sig.to_str().unwrap(),
        payload.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("Verified OK"),
        "{v:?}"
    );
    let v2 = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &p2,
        "-signature",
        sig.to_str().unwrap(),
        payload.to_str().unwrap(),
    ]);
    assert!(!v2.status.success(), "openssl: the other key must not verify");

    // Another key.
    let err = lamina_fails(&["verify", "--key", &p2, &image]);
    assert!(err.contains("does not match the key"), "{err}");
    // A second signer adds a layer; both keys verify, and re-signing adds nothing new.
    lamina_ok(&["sign", "--key", &k2, &image]);
    lamina_ok(&["verify", "--key", &p2, &image]);
    lamina_ok(&["verify", "--key", &p1, &image]);

    // The image changes under its tag: the signature does not follow.
    let other = t.path().join("other");
    simple_layout(&other, 8192);
    let other_digest = push_layout(&other, &image);
    assert_ne!(other_digest, digest);
    let err = lamina_fails(&["verify", "--key", &p1, &image]);
    assert!(
        err.contains("no signatures found") && err.contains(&other_digest),
        "{err}"
    );
    // The old digest still verifies by digest.
    lamina_ok(&["verify", "--key", &p1, &format!("{h}/app@{digest}")]);

    // A signature moved from the old image onto the new one's signature tag: signed, but for another digest.
    let moved = format!("{h}/app:{}.sig", other_digest.replacen(':', "-", 1));
    ok(
        &skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{sig_tag}"),
            &format!("docker://{moved}"),
        ]),
        "skopeo copy (moving a signature)",
    );
    let err = lamina_fails(&["verify", "--key", &p1, &image]);
    assert!(err.contains(&format!("signed payload is for {digest}")), "{err}");

    // A key file that is not a key.
    let bad = t.path().join("bad.pem");
    std::fs::write(&bad, "hello").unwrap();
    let err = lamina_fails(&["sign", "--key", bad.to_str().unwrap(), &image]);
    assert!(err.contains("bad.pem"), "{err}");
}

fn raw(reference: &str) -> serde_json::Value {
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    serde_json::from_slice(&ok_bytes(&o)).unwrap()
}

/// `lamina referrers --format json`: the artifact types listed, in order.
fn referrer_types(image: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["referrers", image, "--format", "json"];
    args.extend_from_slice(extra);
    let (out, _) = lamina_ok(&args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn attached_artifacts_are_listed_and_travel_with_copy() {
    let Some((reg, t, image, digest)) = pushed_image() else {
        return;
    };
    let h = reg.host();
    let sbom = t.path().join("sbom.spdx.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#).unwrap();
    let prov = t.path().join("provenance.json");
    std::fs::write(&prov, br#"{"_type":"https://in-toto.io/Statement/v1"}"#).unwrap();

    let attach = |file: &Path, ty: &str| {
        let o = lamina()
            .args(["artifact", "attach", &image, "--artifact-type", ty])
            .arg(format!("{}:{ty}", file.display()))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let sbom_digest = attach(&sbom, "application/spdx+json");
    // The same file at the same time is the same artifact: listed once, not twice.
    assert_eq!(attach(&sbom, "application/spdx+json"), sbom_digest);
    attach(&prov, "application/vnd.in-toto+json");

    // What skopeo reads back: the artifact names the image as its subject and carries the file.
    let art = raw(&format!("{h}/app@{sbom_digest}"));
    assert_eq!(art["subject"]["digest"], digest.as_str());
    assert_eq!(art["artifactType"], "application/spdx+json");
    assert_eq!(art["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(
        art["layers"][0]["digest"],
        format!("sha256:{}", sha256_hex(&std::fs::read(&sbom).unwrap())).as_str()
    );
    assert_eq!(
        art["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "sbom.spdx.json"
    );
    // ...and the referrers tag of the schema is an index of both artifacts.
    let tag = format!("{h}/app:{}", digest.replacen(':', "-", 1));
    let index = raw(&tag);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    assert_eq!(index["manifests"][0]["digest"], sbom_digest.as_str());

    assert_eq!(
        referrer_types(&image, &[]),
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    assert_eq!(
        referrer_types(&image, &["--artifact-type", "application/vnd.in-toto+json"]),
        ["application/vnd.in-toto+json"]
    );

    // A copy to another repository brings the referrers and the signature along.
    let (key, public) = keypair(t.path(), "k");
    lamina_ok(&["sign", "--key", &key, &image]);
    let copied = format!("{h}/elsewhere/app:1");
    lamina_ok(&["copy", &image, &copied]);
    assert_eq!(
        referrer_types(&copied, &[]),
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    lamina_ok(&["verify", "--key", &public, &copied]);
    let art = raw(&format!("{h}/elsewhere/app@{sbom_digest}"));
    assert_eq!(art["subject"]["digest"], digest.as_str());

    // Unless asked not to.
    let bare = format!("{h}/bare/app:1");
    lamina_ok(&["copy", "--skip-referrers", &image, &bare]);
    assert!(referrer_types(&bare, &[]).is_empty());
    let err = lamina_fails(&["verify", "--key", &public, &bare]);
    assert!(err.contains("no signatures found"), "{err}");
}

fn lamina_in(root: &Path, args: &[&str]) -> std::process::Output {
    lamina().arg("--root").arg(root).args(args).output().unwrap()
}

/// An image only in the local store is signed there (cosign's signature image, tagged
/// `NAME:sha256-<hex>.sig` in the store) and verified there; `push` takes the signature along, where
/// openssl checks it independently and `verify docker://` accepts it; an image changed under its tag
/// has no signature.
#[test]
fn local_store_signatures_verify_locally_and_travel_with_push() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") || !have("openssl") {
        lamina_testkit::skip("skopeo and openssl check the pushed signature");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let image = format!("{}/local/app:1", reg.host());
    let tar = t.path().join("rootfs.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello", &b"hello\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let o = lamina_in(&root, &["import", tar.to_str().unwrap(), &image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (k1, p1) = keypair(t.path(), "one");
    let (_, p2) = keypair(t.path(), "two");

    let o = lamina_in(&root, &["sign", "--key", &k1, &image]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("local store"), "{err}");
    let o = lamina_in(&root, &["verify", "--key", &p1, &image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let claims: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let digest = claims[0]["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = lamina_in(&root, &["verify", "--key", &p2, &image]);
    assert!(!o.status.success(), "another key verified");
    // Nothing went to the registry yet.
    let o = lamina_in(&root, &["verify", "--key", &p1, &format!("docker://{image}")]);
    assert!(
        !o.status.success(),
        "a local signature is in the registry before any push"
    );

    let o = lamina_in(&root, &["push", &image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = lamina_in(&root, &["verify", "--key", &p1, &format!("docker://{image}")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The pushed signature image, checked with skopeo and openssl alone.
    let sig_ref = format!(
        "docker://{}/local/app:{}.sig",
        reg.host(),
        digest.replacen(':', "-", 1)
    );
    let sig_dir = t.path().join("sig");
    ok(
        &skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &sig_ref,
            &format!("dir:{}", sig_dir.display()),
        ]),
        "skopeo copy signature image",
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sig_dir.join("manifest.json")).unwrap()).unwrap();
    let layer = &manifest["layers"][0];
    let payload = sig_dir.join(layer["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let sig = {
        use base64::Engine as _;
        let b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap();
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    };
    let sig_file = t.path().join("sig.der");
    std::fs::write(&sig_file, sig).unwrap();
    let v = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &p1,
        "-signature",
        sig_file.to_str().unwrap(),
        payload.to_str().unwrap(),
    ]);
    assert!(
        v.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&v.stderr)
    );

    // The tag now names another image: its signature is not there.
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "other", &b"bye\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let o = lamina_in(&root, &["import", tar.to_str().unwrap(), &image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = lamina_in(&root, &["verify", "--key", &p1, &image]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no signatures found"),
        "{err}"
    );
}
