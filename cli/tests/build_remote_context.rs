//! The main context from elsewhere than a directory: a git repository (`file://…/repo.git#REF:SUBDIR`),
//! a tar or a lone Dockerfile on stdin (`-`), a tarball served over HTTP on loopback. COPY-only builds:
//! no root needed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::{have, lamina_bin, ok};

/// `hello.txt` of `image`, read from its flattened rootfs.
fn hello(root: &Path, image: &str, scratch: &Path) -> String {
    let out = scratch.join(format!("{image}.tar"));
    ok(root, &["unpack", image, "-o", out.to_str().unwrap()]);
    let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().trim_start_matches("./") == "hello.txt" {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            return s;
        }
    }
    panic!("no hello.txt in {image}");
}

fn build_from(root: &Path, context: &str, tag: &str, stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(lamina_bin())
        .arg("--root")
        .arg(root)
        .args([
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "-t",
            tag,
            context,
        ])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn git_repository_by_branch_tag_commit_and_subdir() {
    if !have("git") {
        lamina_testkit::skip("git is not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo.git");
    std::fs::create_dir_all(repo.join("app")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("app/Dockerfile"), "FROM scratch\nCOPY hello.txt /\n").unwrap();
    std::fs::write(repo.join("Dockerfile"), "FROM scratch\nCOPY app/hello.txt /\n").unwrap();
    std::fs::write(repo.join("app/hello.txt"), "v1\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "one"]);
    git(&repo, &["tag", "v1"]);
    let first = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(repo.join("app/hello.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "two"]);
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("app/hello.txt"), "feature\n").unwrap();
    git(&repo, &["commit", "-qam", "three"]);
    git(&repo, &["checkout", "-q", "main"]);
    let root = t.path().join("store");
    let url = format!("file://{}", repo.display());
    for (fragment, want) in [
        ("", "v2\n"),
        ("#v1", "v1\n"),
        ("#feature:app", "feature\n"),
        (&*format!("#{}:app", first.trim()), "v1\n"),
        ("#:app", "v2\n"),
    ] {
        let o = build_from(&root, &format!("{url}{fragment}"), "g", None);
        assert!(
            o.status.success(),
            "{fragment}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(hello(&root, "g", t.path()), want, "{fragment}");
    }
    for (fragment, msg) in [
        ("#nope", "no branch, tag or commit"),
        ("#main:../x", "relative path"),
    ] {
        let o = build_from(&root, &format!("{url}{fragment}"), "g", None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(msg), "{fragment}: {err}");
    }
}

fn context_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("Dockerfile", "FROM scratch\nCOPY hello.txt /\n"),
        ("hello.txt", "from a tar\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn tar_or_dockerfile_on_stdin() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let o = build_from(&root, "-", "s", Some(&context_tar()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(hello(&root, "s", t.path()), "from a tar\n");
    // Not a tar: the Dockerfile of an empty context.
    let o = build_from(&root, "-", "d", Some(b"FROM scratch\nLABEL from=stdin\n"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = build_from(&root, "-", "d", Some(b"FROM scratch\nCOPY hello.txt /\n"));
    assert!(!o.status.success(), "an empty context has no hello.txt");
}

#[test]
fn tarball_served_on_loopback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = context_tar();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 4096];
        let n = s.read(&mut req).unwrap();
        let head = String::from_utf8_lossy(&req[..n]).into_owned();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        head
    });
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let o = Command::new(lamina_bin())
        .arg("--root")
        .arg(&root)
        .args(["build", "--progress", "plain", "--network", "none", "-t", "u"])
        .arg(format!("http://127.0.0.1:{port}/ctx.tar"))
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .unwrap();
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /ctx.tar "), "{head}");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(hello(&root, "u", t.path()), "from a tar\n");
}
