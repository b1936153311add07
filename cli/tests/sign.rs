//! `lamina sign` / `lamina verify` against a real registry: cosign's storage format (tag
//! `sha256-<hex>.sig`, simple-signing payload layers with the signature annotation), signatures that
//! openssl verifies on its own, and the ways verification must fail: another key, an image changed under
//! its tag, a signature moved from another image.

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

#[test]
fn signatures_in_cosign_format_verify_with_openssl_and_refuse_what_they_must() {
    let Some(reg) = Registry::start("") else { return };
    if !have("skopeo") || !have("openssl") {
        lamina_testkit::skip("skopeo and openssl are needed to push test images and check signatures");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let h = reg.host();
    let layout = t.path().join("layout");
    simple_layout(&layout, 4096);
    let image = format!("{h}/app:1");
    let digest = push_layout(&layout, &image);
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
