//! `ADD <url>` end to end against servers started here on loopback: python3's http.server behind TLS with
//! a CA made by `openssl` (trusted through lamina's config file), a plain-http server that redirects to it
//! and doubles as a forward proxy. No RUN, but COPY/ADD chown every file to 0:0 in the snapshot, which
//! needs root (CAP_CHOWN): tests skip otherwise. Results are read from
//! `--output type=tar`; SOURCE_DATE_EPOCH is removed from the environment and the asserted mtimes
//! (2001, the epoch) are older than any it could clamp to.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{have, is_root, lamina_bin};

/// `Last-Modified` of the served files: 2001-09-09T01:46:40Z.
const SERVED_MTIME: u64 = 1_000_000_000;

const SERVER_PY: &str = r#"
import http.server, ssl, sys, threading
root, cert, key, log = sys.argv[1:5]
def record(path):
    with open(log, 'a') as f:
        f.write(path + '\n')
class Files(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def do_GET(self):
        record(self.path)
        super().do_GET()
    def log_message(self, *a):
        pass
class Plain(http.server.BaseHTTPRequestHandler):
    def reply(self, body):
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith('http://'):
            self.reply(('proxied ' + self.path).encode())
        elif self.path.startswith('/plain/'):
            self.reply(b'no last-modified\n')
        elif self.path.startswith('/loop/'):
            n = int(self.path.split('/')[2])
            self.send_response(302)
            self.send_header('Location', '/loop/%d/x' % (n + 1))
            self.send_header('Content-Length', '0')
            self.end_headers()
        else:
            self.send_response(302)
            self.send_header('Location', 'https://127.0.0.1:%d%s' % (tls.server_address[1], self.path.removeprefix('/redirect')))
            self.send_header('Content-Length', '0')
            self.end_headers()
    def log_message(self, *a):
        pass
tls = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Files)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
plain = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Plain)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print(tls.server_address[1], plain.server_address[1], flush=True)
tls.serve_forever()
"#;

struct Servers {
    child: Child,
    https: u16,
    plain: u16,
    www: PathBuf,
    log: PathBuf,
    ca: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Servers {
    /// How many GETs the https server answered for `path`.
    fn hits(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == path)
            .count()
    }

    fn serve(&self, name: &str, content: &[u8]) {
        let p = self.www.join(name);
        std::fs::write(&p, content).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(SERVED_MTIME);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(t))
            .unwrap();
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and the servers. None (with a reason) when
/// python3 or openssl is missing.
fn start(dir: &Path) -> Option<Servers> {
    if !is_root() {
        lamina_testkit::skip("COPY/ADD snapshots chown files to 0:0, which needs root");
        return None;
    }
    if !have("python3") || !have("openssl") {
        lamina_testkit::skip("python3 and openssl are needed for the test servers");
        return None;
    }
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=lamina test CA",
    ];
    ca.extend(ec);
    openssl(&ca, dir);
    let mut srv = vec![
        "req",
        "-x509",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-keyout",
        "srv.key",
        "-out",
        "srv.pem",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ];
    srv.extend(ec);
    openssl(&srv, dir);
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(dir.join("server.py"), SERVER_PY).unwrap();
    let log = dir.join("requests.log");
    let mut child = Command::new("python3")
        .arg(dir.join("server.py"))
        .args([&www, &dir.join("srv.pem"), &dir.join("srv.key"), &log])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: Vec<u16> = line.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    assert_eq!(ports.len(), 2, "server said {line:?}");
    Some(Servers {
        child,
        https: ports[0],
        plain: ports[1],
        www,
        log,
        ca: dir.join("ca.pem"),
    })
}

struct Built {
    ok: bool,
    stderr: String,
    run: usize,
    cached: usize,
}

/// Builds `dockerfile` with lamina's config at `config` (and extra env), exporting the rootfs to `out`.
fn build(
    root: &Path,
    dir: &Path,
    dockerfile: &str,
    config: &Path,
    env: &[(&str, &str)],
    out: &Path,
) -> Built {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut cmd = Command::new(lamina_bin());
    cmd.arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "-o"])
        .arg(format!("type=tar,dest={}", out.display()))
        .arg(&ctx)
        .env("LAMINA_CONFIG", config)
        .env_remove("SOURCE_DATE_EPOCH");
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let (run, cached) = common::step_counts(&stderr);
    Built {
        ok: o.status.success(),
        stderr,
        run,
        cached,
    }
}

#[derive(Debug)]
struct Entry {
    mode: u32,
    mtime: u64,
    uid: u64,
    data: Vec<u8>,
}

fn entries(tar_path: &Path) -> BTreeMap<String, Entry> {
    let mut a = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    let mut m = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        m.insert(
            path,
            Entry {
                mode: h.mode().unwrap() & 0o7777,
                mtime: h.mtime().unwrap(),
                uid: h.uid().unwrap(),
                data,
            },
        );
    }
    m
}

fn config_with_ca(dir: &Path, ca: &Path) -> PathBuf {
    let p = dir.join("config.json");
    std::fs::write(&p, serde_json::json!({ "ca-certs": [ca] }).to_string()).unwrap();
    p
}

fn empty_config(dir: &Path) -> PathBuf {
    let p = dir.join("empty-config.json");
    std::fs::write(&p, "{}").unwrap();
    p
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn https_add_with_configured_ca_redirects_mode_and_mtime() {
    let t = tempfile::tempdir().unwrap();
    let Some(s) = start(t.path()) else { return };
    s.serve("hello.txt", b"hello over tls\n");
    // A real tar archive: ADD from a URL must not extract it.
    let mut tb = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    tb.append_data(&mut h, "inner.txt", &b"abc"[..]).unwrap();
    let archive = tb.into_inner().unwrap();
    s.serve("a.tar", &archive);
    let (tp, pp) = (s.https, s.plain);
    let df = format!(
        "FROM scratch\n\
         ADD https://127.0.0.1:{tp}/hello.txt /hello\n\
         ADD http://127.0.0.1:{pp}/redirect/hello.txt /dir/\n\
         ADD https://127.0.0.1:{tp}/a.tar /arch/\n\
         ADD --chmod=644 https://127.0.0.1:{tp}/hello.txt?x=1 /modes/\n\
         ADD http://127.0.0.1:{pp}/plain/ /nolm/\n"
    );
    let root = t.path().join("store");
    let out = t.path().join("out.tar");

    // Without the CA the server's certificate is not trusted: a TLS error naming the URL.
    let b = build(&root, t.path(), &df, &empty_config(t.path()), &[], &out);
    assert!(!b.ok, "untrusted server accepted:\n{}", b.stderr);
    // The error and its cause chain (`error: …` then `caused by: …` lines).
    let err = b
        .stderr
        .find("error:")
        .map(|i| b.stderr[i..].to_string())
        .unwrap_or_default();
    assert!(
        err.contains(&format!("ADD https://127.0.0.1:{tp}/hello.txt"))
            && err.contains("TLS")
            && err.contains("certificate")
            && err.contains("Dockerfile:2"),
        "{}",
        b.stderr
    );

    let cfg = config_with_ca(t.path(), &s.ca);
    let b = build(&root, t.path(), &df, &cfg, &[], &out);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!((b.run, b.cached), (5, 0), "{}", b.stderr);
    let e = entries(&out);
    for (path, mode) in [
        ("hello", 0o600),
        ("dir/hello.txt", 0o600),
        ("modes/hello.txt", 0o644),
    ] {
        let f = e
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing: {:?}", e.keys()));
        assert_eq!(f.data, b"hello over tls\n", "{path}");
        assert_eq!(f.mode, mode, "{path}");
        assert_eq!(f.mtime, SERVED_MTIME, "{path}: mtime from Last-Modified");
        assert_eq!(f.uid, 0, "{path}");
    }
    let a = &e["arch/a.tar"];
    assert_eq!(a.data, archive, "downloaded archives are not extracted");
    assert!(!e.contains_key("arch/inner.txt"));
    // No Last-Modified: the epoch, like BuildKit; an empty last path segment names the file dir-like.
    let n = &e["nolm/plain"];
    assert_eq!(
        (n.data.as_slice(), n.mtime, n.mode),
        (&b"no last-modified\n"[..], 0, 0o600)
    );

    // Unpinned URLs are fetched again on every build; unchanged content keeps the cache.
    let before = s.hits("/hello.txt");
    let b = build(&root, t.path(), &df, &cfg, &[], &out);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!((b.run, b.cached), (0, 5), "{}", b.stderr);
    assert!(s.hits("/hello.txt") > before, "an unpinned URL is re-fetched");
    // Changed content reruns the steps that download it.
    s.serve("hello.txt", b"changed\n");
    let b = build(&root, t.path(), &df, &cfg, &[], &out);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!((b.run, b.cached), (5, 0), "{}", b.stderr);
    assert_eq!(entries(&out)["hello"].data, b"changed\n");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn checksum_pins_content_and_cache_key() {
    let t = tempfile::tempdir().unwrap();
    let Some(s) = start(t.path()) else { return };
    let content = b"pinned content\n";
    s.serve("pinned.bin", content);
    let cfg = config_with_ca(t.path(), &s.ca);
    let root = t.path().join("store");
    let out = t.path().join("out.tar");
    let url = format!("https://127.0.0.1:{}/pinned.bin", s.https);
    let good = format!("sha256:{}", sha256_hex(content));
    let bad = format!("sha256:{}", sha256_hex(b"something else"));

    let df_bad = format!("FROM scratch\nADD --checksum={bad} {url} /p\n");
    let b = build(&root, t.path(), &df_bad, &cfg, &[], &out);
    assert!(!b.ok, "bad checksum accepted:\n{}", b.stderr);
    assert!(
        b.stderr.contains(&url) && b.stderr.contains(&bad) && b.stderr.contains(&good),
        "the error names the URL, expected and actual digests:\n{}",
        b.stderr
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "download left behind: {leftovers:?}");

    let df = format!("FROM scratch\nADD --checksum={good} {url} /p\n");
    let b = build(&root, t.path(), &df, &cfg, &[], &out);
    assert!(b.ok, "{}", b.stderr);
    let e = entries(&out);
    assert_eq!((e["p"].data.as_slice(), e["p"].mode), (&content[..], 0o600));

    // Keyed by the checksum: a rebuild hits the cache without any request, even with the file gone.
    let hits = s.hits("/pinned.bin");
    std::fs::remove_file(s.www.join("pinned.bin")).unwrap();
    let b = build(&root, t.path(), &df, &cfg, &[], &out);
    assert!(b.ok, "{}", b.stderr);
    assert_eq!((b.run, b.cached), (0, 1), "{}", b.stderr);
    assert_eq!(s.hits("/pinned.bin"), hits, "a pinned cache hit makes no request");
    // Without the pin the same instruction must fetch, and the missing file fails with its status.
    let df = format!("FROM scratch\nADD {url} /p\n");
    let b = build(&root, t.path(), &df, &cfg, &[], &out);
    assert!(
        !b.ok && b.stderr.contains("HTTP 404") && b.stderr.contains(&url),
        "{}",
        b.stderr
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn proxies_from_the_environment() {
    let t = tempfile::tempdir().unwrap();
    let Some(s) = start(t.path()) else { return };
    s.serve("hello.txt", b"hello over tls\n");
    let cfg = config_with_ca(t.path(), &s.ca);
    let root = t.path().join("store");
    let out = t.path().join("out.tar");
    let proxy = format!("http://127.0.0.1:{}", s.plain);
    // The .invalid host never resolves: only the proxy can answer. Loopback stays direct even with a
    // dead HTTPS proxy configured, like Go's net/http.
    let df = format!(
        "FROM scratch\nADD http://lamina-proxy-test.invalid/p.txt /p\nADD https://127.0.0.1:{}/hello.txt /h\n",
        s.https
    );
    let env = [
        ("HTTP_PROXY", proxy.as_str()),
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ];
    let b = build(&root, t.path(), &df, &cfg, &env, &out);
    assert!(b.ok, "{}", b.stderr);
    let e = entries(&out);
    assert_eq!(e["p"].data, b"proxied http://lamina-proxy-test.invalid/p.txt");
    assert_eq!(e["h"].data, b"hello over tls\n");
    // NO_PROXY exempts the host: the direct request can't resolve it.
    let env = [("http_proxy", proxy.as_str()), ("NO_PROXY", ".invalid")];
    let b = build(&root, t.path(), &df, &cfg, &env, &out);
    assert!(!b.ok, "NO_PROXY ignored:\n{}", b.stderr);
    assert!(
        b.stderr.contains("http://lamina-proxy-test.invalid/p.txt")
            && b.stderr.to_lowercase().contains("dns"),
        "{}",
        b.stderr
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// One `--checksum` can't pin several URLs (BuildKit refuses it too): a user error naming the line,
/// before anything is fetched.
#[test]
fn checksum_with_several_urls_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let pin = format!("sha256:{}", "ab".repeat(32));
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD --checksum={pin} http://127.0.0.1:9/a http://127.0.0.1:9/b /d/\n"),
    )
    .unwrap();
    let o = common::lamina(
        &t.path().join("root"),
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Dockerfile:2") && err.contains("exactly one URL"),
        "{err}"
    );
}

/// A server that redirects forever: the download stops after 10 redirects with an error naming the
/// URL (same-host hops are the client's, cross-host hops lamina's own, and both are counted).
#[test]
fn endless_redirects_stop() {
    let t = tempfile::tempdir().unwrap();
    let Some(s) = start(t.path()) else { return };
    let cfg = config_with_ca(t.path(), &s.ca);
    let url = format!("http://127.0.0.1:{}/loop/0/x", s.plain);
    let df = format!("FROM scratch\nADD {url} /x\n");
    let b = build(
        &t.path().join("store"),
        t.path(),
        &df,
        &cfg,
        &[],
        &t.path().join("out.tar"),
    );
    assert!(!b.ok, "an endless redirect chain was followed:\n{}", b.stderr);
    assert!(
        b.stderr.contains(&url) && b.stderr.contains("redirect"),
        "{}",
        b.stderr
    );
}
