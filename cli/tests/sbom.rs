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

/// An rpm database in sqlite form, made with the `sqlite3` tool as rpm lays it out (table `Packages`,
/// one header blob a row); enough rows and a big enough blob for interior and overflow pages.
fn rpmdb(path: &Path) -> bool {
    use lamina_sbom::rpm::{make_header, tags};
    if !common::have("sqlite3") {
        lamina_testkit::skip("sqlite3 makes the rpm database");
        return false;
    }
    let mut sql = String::from(
        "PRAGMA page_size=1024; CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);\n",
    );
    let big_license = "MIT and ".repeat(400) + "BSD";
    for i in 0..60 {
        let name = format!("pkg{i:02}");
        let license = if i == 7 { big_license.as_str() } else { "MIT" };
        let blob = make_header(
            &[
                (tags::NAME, &name),
                (tags::VERSION, "1.0"),
                (tags::RELEASE, "1.fc40"),
                (tags::ARCH, "x86_64"),
                (tags::LICENSE, license),
            ],
            &[(tags::EPOCH, if i == 3 { 1 } else { 0 })],
        );
        let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
        sql.push_str(&format!("INSERT INTO Packages (blob) VALUES (X'{hex}');\n"));
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let o = std::process::Command::new("sqlite3")
        .arg(path)
        .arg(&sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    true
}

/// A Go program built by the Go toolchain when there is one, else an ELF-shaped file with a
/// `.go.buildinfo` section as the linker writes it.
fn go_binary(path: &Path, work: &Path) -> &'static str {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if common::have("go") {
        let src = work.join("gosrc");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("go.mod"), "module example.com/hello\n\ngo 1.18\n").unwrap();
        std::fs::write(
            src.join("main.go"),
            "package main\n\nfunc main() { println(\"hi\") }\n",
        )
        .unwrap();
        let o = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(path)
            .arg(".")
            .current_dir(&src)
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", work.join("gocache"))
            .env("GOPATH", work.join("gopath"))
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        return "built by go";
    }
    let mut f = b"\x7fELF\x02\x01\x01\x00".to_vec();
    f.resize(256 << 10, 0);
    f.extend_from_slice(&lamina_sbom::gobuild::make_section(
        "go1.22.1",
        "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\n",
    ));
    f.resize(320 << 10, 0);
    std::fs::write(path, f).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    "hand-made"
}

/// rpm's sqlite database and a Go binary's build info are read from the layers like the others: every
/// row of the database (with epochs, and a blob spilling onto overflow pages), and the binary's module
/// and Go version; a binary without the execute bit is not scanned.
#[test]
fn sbom_reads_rpmdb_sqlite_and_go_build_info() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    if !rpmdb(&ctx.join("rootfs/var/lib/rpm/rpmdb.sqlite")) {
        return;
    }
    std::fs::write(ctx.join("rootfs/os-release"), "ID=fedora\n").unwrap();
    std::fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
    std::fs::rename(ctx.join("rootfs/os-release"), ctx.join("rootfs/etc/os-release")).unwrap();
    let how = go_binary(&ctx.join("rootfs/usr/local/bin/hello"), t.path());
    std::fs::copy(
        ctx.join("rootfs/usr/local/bin/hello"),
        ctx.join("rootfs/usr/local/bin/not-executable"),
    )
    .unwrap();
    std::fs::set_permissions(
        ctx.join("rootfs/usr/local/bin/not-executable"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
    let root = t.path().join("store");
    let ctx_s = ctx.display().to_string();
    ok(&root, &["build", "--progress", "plain", "-t", "sbom-rpm", &ctx_s]);
    let spdx: serde_json::Value = serde_json::from_str(&ok(&root, &["sbom", "sbom-rpm"])).unwrap();
    let all = purls(&spdx);
    let rpms: Vec<&String> = all.iter().filter(|p| p.starts_with("pkg:rpm/")).collect();
    assert_eq!(rpms.len(), 60, "{all:?}");
    assert!(all.contains(&"pkg:rpm/fedora/pkg00@1.0-1.fc40?arch=x86_64".to_string()));
    assert!(all.contains(&"pkg:rpm/fedora/pkg03@1%3A1.0-1.fc40?arch=x86_64".to_string()));
    let big = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pkg07")
        .expect("pkg07");
    assert!(
        big.to_string().contains("BSD"),
        "the overflowing blob was read whole: {big}"
    );
    let go: Vec<&String> = all.iter().filter(|p| p.starts_with("pkg:golang/")).collect();
    assert!(
        go.iter().any(|p| p.starts_with("pkg:golang/example.com/hello@")),
        "{how}: {go:?}"
    );
    let stdlib: Vec<&&String> = go
        .iter()
        .filter(|p| p.starts_with("pkg:golang/stdlib@v1."))
        .collect();
    assert_eq!(stdlib.len(), 1, "one Go binary scanned ({how}): {go:?}");
}
