//! Lying registries (issue 11, item 5): a small HTTP server on 127.0.0.1, written here, serves endless
//! bodies, pagination that never advances, redirect loops and chains, and blobs longer than their
//! descriptors. Each test shows the payload is real (a plain, unbounded client reading the same endpoint,
//! stopped only by the test's own cap, goes far past lamina's limit), then asserts that lamina fails
//! with a clear error, within a bounded number of requests and with a small peak RSS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

/// Peak RSS lamina may reach in these tests; an unbounded read of any endless body passes it in
/// well under a second on loopback.
const MAX_RSS_KIB: i64 = 96 << 10;

/// What the server answers to one request.
enum Reply {
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A status and headers, then bytes until the client hangs up (no length: read-to-close).
    Endless {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// Status 200, `body`, then bytes without end (no length): a blob longer than its descriptor.
    Overlong { body: Vec<u8> },
}

fn fixed(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
    Reply::Fixed {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

fn redirect(to: &str) -> Reply {
    fixed(302, &[("Location", to)], "")
}

type Handler = dyn Fn(&str, u16) -> Reply + Send + Sync;

/// The hostile server: one thread per connection, one request per connection, every request path
/// logged.
struct Hostile {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    fn start(handler: impl Fn(&str, u16) -> Reply + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let l = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (h, l) = (handler.clone(), l.clone());
                std::thread::spawn(move || serve(conn, &*h, &l, port));
            }
        });
        Hostile { port, log }
    }

    fn requests(&self, prefix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<String>>, port: u16) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    log.lock().unwrap().push(path.clone());
    let mut w = conn;
    let head = |status: u16, headers: &[(String, String)], len: Option<usize>| {
        let mut s = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (k, v) in headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = len {
            s.push_str(&format!("Content-Length: {n}\r\n"));
        }
        s.push_str("\r\n");
        s
    };
    let endless = |w: &mut TcpStream| {
        let chunk = vec![b'a'; 64 << 10];
        while w.write_all(&chunk).is_ok() {}
    };
    match handler(&path, port) {
        Reply::Fixed {
            status,
            headers,
            body,
        } => {
            let _ = w.write_all(head(status, &headers, Some(body.len())).as_bytes());
            let _ = w.write_all(&body);
        }
        Reply::Endless { status, headers } => {
            if w.write_all(head(status, &headers, None).as_bytes()).is_ok() {
                endless(&mut w);
            }
        }
        Reply::Overlong { body } => {
            let h = head(200, &[], None);
            if w.write_all(h.as_bytes()).is_ok() && w.write_all(&body).is_ok() {
                endless(&mut w);
            }
        }
    }
}

/// The naive client: one GET over a raw socket, following no redirects, reading the body until it
/// ends or `cap` bytes arrived. Returns (status, Location, body bytes read).
fn naive_get(port: u16, path: &str, cap: usize) -> (u16, Option<String>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status = status_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut location = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("Location: ") {
            location = Some(v.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    let _ = r.take(cap as u64).read_to_end(&mut body);
    (status, location, body)
}

/// GNU time reports the peak RSS of the lamina process.
fn measurable() -> bool {
    lamina_testkit::need_path("/usr/bin/time", "GNU time (/usr/bin/time), for lamina's peak RSS")
}

/// Runs lamina under `/usr/bin/time -v` and returns (success, lamina's stderr, peak RSS in KiB).
fn run_measured(args: &[&str]) -> (bool, String, i64) {
    let o = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_lamina"))
        .args(args)
        .env("LAMINA_RETRY_BACKOFF_MS", "5")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let rss = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no RSS from /usr/bin/time: {err}"));
    (o.status.success(), err, rss)
}

fn assert_refused(args: &[&str], expect: &[&str]) -> String {
    let (ok, err, rss) = run_measured(args);
    assert!(!ok, "lamina {args:?} succeeded: {err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB for {args:?}:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A well-formed image of one 1024-byte layer, honest about its sizes.
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    config_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
}

fn image() -> Image {
    // Two zero blocks: an empty tar, so a pull can unpack it.
    let layer = vec![0u8; 1024];
    let layer_digest = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    Image {
        manifest,
        config,
        config_digest,
        layer,
        layer_digest,
    }
}

fn manifest_reply(img: &Image) -> Reply {
    fixed(
        200,
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        img.manifest.clone(),
    )
}

fn pull(h: &Hostile, root: &std::path::Path) -> Vec<String> {
    vec![
        "--root".into(),
        root.display().to_string(),
        "pull".into(),
        format!("{}/evil/img:v1", h.host()),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn endless_tag_list_is_cut_at_the_page_limit() {
    if !measurable() {
        return;
    }
    let h = Hostile::start(|path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        _ => Reply::Endless {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
        },
    });
    let (_, _, naive) = naive_get(h.port, "/v2/evil/tags/list", 32 << 20);
    assert_eq!(
        naive.len(),
        32 << 20,
        "the naive read stops only at the test's cap"
    );
    let before = h.requests("/v2/evil/tags");
    assert_refused(
        &["tags", &format!("{}/evil", h.host())],
        &["tag list", "larger than the 4194304-byte limit"],
    );
    assert_eq!(
        h.requests("/v2/evil/tags") - before,
        1,
        "an oversize page is not retried"
    );
}

#[test]
fn tag_pagination_that_never_advances_is_refused() {
    if !measurable() {
        return;
    }
    // Ignores `last=`: the same full page with a `Link` to the next one, forever.
    let page = serde_json::to_vec(&serde_json::json!({
        "name": "evil",
        "tags": (0..1000).map(|i| format!("t{i:04}")).collect::<Vec<_>>(),
    }))
    .unwrap();
    let p = page.clone();
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        _ => fixed(
            200,
            &[("Link", "</v2/evil/tags/list?n=1000&last=t0999>; rel=\"next\"")],
            p.clone(),
        ),
    });
    // Naive: follow `Link` 50 times and the listing never ends, 50 identical pages.
    let mut path = "/v2/evil/tags/list?n=1000".to_owned();
    for _ in 0..50 {
        let (status, _, body) = naive_get(h.port, &path, 8 << 20);
        assert_eq!((status, &body), (200, &page));
        path = "/v2/evil/tags/list?n=1000&last=t0999".to_owned();
    }
    let before = h.requests("/v2/evil/tags");
    assert_refused(
        &["tags", &format!("{}/evil", h.host())],
        &["pagination does not advance", "t0999"],
    );
    assert_eq!(
        h.requests("/v2/evil/tags") - before,
        2,
        "caught on the second page"
    );
}

#[test]
fn endless_manifest_without_length_is_cut_at_4_mib() {
    if !measurable() {
        return;
    }
    let h = Hostile::start(|path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        _ => Reply::Endless {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
        },
    });
    let (_, _, naive) = naive_get(h.port, "/v2/evil/img/manifests/v1", 32 << 20);
    assert_eq!(naive.len(), 32 << 20);
    let tmp = tempfile::tempdir().unwrap();
    assert_refused(
        &strs(&pull(&h, tmp.path())),
        &["larger than the 4194304-byte limit"],
    );
    assert_eq!(
        h.requests("/v2/evil/img/manifests"),
        2,
        "one naive read, one lamina request"
    );
}

#[test]
fn endless_error_body_is_read_as_a_short_prefix() {
    if !measurable() {
        return;
    }
    let h = Hostile::start(|path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        _ => Reply::Endless {
            status: 404,
            headers: vec![],
        },
    });
    let (status, _, naive) = naive_get(h.port, "/v2/evil/img/manifests/v1", 32 << 20);
    assert_eq!((status, naive.len()), (404, 32 << 20));
    let tmp = tempfile::tempdir().unwrap();
    let err = assert_refused(&strs(&pull(&h, tmp.path())), &["answered 404"]);
    assert!(
        err.len() < 64 << 10,
        "the message carries a prefix, not the body: {} bytes",
        err.len()
    );
    assert_eq!(
        h.requests("/v2/evil/img/manifests"),
        2,
        "one naive read, one lamina request"
    );
}

#[test]
fn endless_token_response_is_cut_at_its_limit() {
    if !measurable() {
        return;
    }
    let h = Hostile::start(|path, port| match path {
        "/v2/" => {
            let challenge = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"evil\"");
            fixed(401, &[("WWW-Authenticate", challenge.as_str())], "")
        }
        p if p.starts_with("/token") => Reply::Endless {
            status: 200,
            headers: vec![],
        },
        _ => fixed(401, &[], ""),
    });
    let (status, _, naive) = naive_get(h.port, "/token?scope=x", 32 << 20);
    assert_eq!((status, naive.len()), (200, 32 << 20));
    let before = h.requests("/token");
    assert_refused(
        &["tags", &format!("{}/evil", h.host())],
        &["token response", "larger than the 1048576-byte limit"],
    );
    assert!(
        h.requests("/token") - before <= 2,
        "{} token requests",
        h.requests("/token") - before
    );
}

#[test]
fn self_redirecting_blob_fails_on_the_loop_without_retries() {
    if !measurable() {
        return;
    }
    let img = Arc::new(image());
    let i = img.clone();
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        p if p.starts_with("/v2/evil/img/manifests/") => manifest_reply(&i),
        p => redirect(p),
    });
    let blob = format!("/v2/evil/img/blobs/{}", img.config_digest);
    // Naive: a client that follows Location 100 times is sent back to the same URL 100 times.
    let mut path = blob.clone();
    for _ in 0..100 {
        let (status, loc, _) = naive_get(h.port, &path, 1 << 10);
        assert_eq!(status, 302);
        path = loc.unwrap();
    }
    assert_eq!(path, blob);
    let before = h.requests(&blob);
    let tmp = tempfile::tempdir().unwrap();
    assert_refused(
        &strs(&pull(&h, tmp.path())),
        &["redirect loop", &img.config_digest],
    );
    let n = h.requests(&blob) - before;
    assert!(
        n <= 2,
        "{n} requests for a self-redirecting blob (67 before the fix)"
    );
}

#[test]
fn a_chain_of_eleven_redirects_is_refused() {
    if !measurable() {
        return;
    }
    let img = Arc::new(image());
    let i = img.clone();
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        p if p.starts_with("/v2/evil/img/manifests/") => manifest_reply(&i),
        p if p.starts_with("/v2/evil/img/blobs/") => redirect("/hop/1"),
        p => {
            let k: u32 = p.trim_start_matches("/hop/").parse().unwrap_or(99);
            if k < 11 {
                redirect(&format!("/hop/{}", k + 1))
            } else {
                fixed(200, &[], "{}")
            }
        }
    });
    // Naive: following the chain, the body arrives after exactly 11 redirects.
    let mut path = format!("/v2/evil/img/blobs/{}", img.config_digest);
    let mut hops = 0;
    loop {
        let (status, loc, _) = naive_get(h.port, &path, 1 << 10);
        if status != 302 {
            break;
        }
        hops += 1;
        path = loc.unwrap();
    }
    assert_eq!(hops, 11);
    let before = h.requests("/hop/");
    let tmp = tempfile::tempdir().unwrap();
    assert_refused(&strs(&pull(&h, tmp.path())), &["more than 10 redirects"]);
    assert_eq!(
        h.requests("/hop/") - before,
        10,
        "hops 1..=10 are fetched, the 11th is not"
    );
}

#[test]
fn blob_longer_than_its_descriptor_is_refused_naming_the_digest() {
    if !measurable() {
        return;
    }
    let img = Arc::new(image());
    let i = img.clone();
    let config_path = format!("/v2/evil/img/blobs/{}", img.config_digest);
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        p if p.starts_with("/v2/evil/img/manifests/") => manifest_reply(&i),
        // The real config, so the pull reaches the layer.
        p if p == config_path => fixed(200, &[], i.config.clone()),
        _ => Reply::Overlong {
            body: i.layer.clone(),
        },
    });
    let layer_path = format!("/v2/evil/img/blobs/{}", img.layer_digest);
    let (_, _, naive) = naive_get(h.port, &layer_path, 32 << 20);
    assert_eq!(&naive[..1024], &img.layer[..]);
    assert_eq!(
        naive.len(),
        32 << 20,
        "the naive read takes far more than the 1024 declared bytes"
    );
    let tmp = tempfile::tempdir().unwrap();
    assert_refused(
        &strs(&pull(&h, tmp.path())),
        &[
            &img.layer_digest,
            "more than the 1024 bytes its descriptor declares",
        ],
    );
    assert_eq!(
        h.requests(&layer_path),
        2,
        "one naive read, one lamina request: not retried"
    );
}

/// A store holding `img` as `<honest>/evil/img:v1`, pulled from an honest server; for the push tests.
fn store_with_image(img: &Arc<Image>) -> (tempfile::TempDir, String) {
    let i = img.clone();
    let honest = Hostile::start(move |path, _| {
        let blob = path.rsplit('/').next().unwrap_or("");
        match path {
            "/v2/" => fixed(200, &[], "{}"),
            p if p.starts_with("/v2/evil/img/manifests/") => manifest_reply(&i),
            _ if blob == i.config_digest => fixed(200, &[], i.config.clone()),
            _ if blob == i.layer_digest => fixed(200, &[], i.layer.clone()),
            _ => fixed(404, &[], ""),
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let args = pull(&honest, tmp.path());
    let o = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (tmp, format!("{}/evil/img:v1", honest.host()))
}

#[test]
fn push_against_a_self_redirecting_blob_probe_fails_on_the_loop() {
    if !measurable() {
        return;
    }
    let img = Arc::new(image());
    let (root, src) = store_with_image(&img);
    // Every blob probe (HEAD) is sent back to itself; uploads would be accepted.
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        p if p.starts_with("/v2/evil/dst/blobs/uploads/") => fixed(202, &[("Location", p)], ""),
        p => redirect(p),
    });
    let blob = format!("/v2/evil/dst/blobs/{}", img.layer_digest);
    let mut path = blob.clone();
    for _ in 0..50 {
        let (status, loc, _) = naive_get(h.port, &path, 1 << 10);
        assert_eq!(status, 302, "a naive client is sent round forever");
        path = loc.unwrap();
    }
    let before = h.requests(&blob);
    let dest = format!("{}/evil/dst:v1", h.host());
    let root = root.path().display().to_string();
    assert_refused(&["--root", &root, "push", &src, &dest], &["redirect loop"]);
    let n = h.requests(&blob) - before;
    assert!(n <= 2, "{n} probes of a self-redirecting blob");
}

#[test]
fn endless_error_body_on_upload_is_not_read() {
    if !measurable() {
        return;
    }
    let img = Arc::new(image());
    let (root, src) = store_with_image(&img);
    // Blobs are missing; every upload session request answers 500 with a body that never ends.
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        p if p.starts_with("/v2/evil/dst/blobs/uploads/") => Reply::Endless {
            status: 500,
            headers: vec![],
        },
        _ => fixed(404, &[], ""),
    });
    let (status, _, naive) = naive_get(h.port, "/v2/evil/dst/blobs/uploads/", 32 << 20);
    assert_eq!(status, 500);
    assert_eq!(naive.len(), 32 << 20, "the error body goes on past any bound");
    let before = h.requests("/v2/evil/dst/blobs/uploads/");
    let dest = format!("{}/evil/dst:v1", h.host());
    let root = root.path().display().to_string();
    let err = assert_refused(&["--root", &root, "push", &src, &dest], &["500"]);
    let n = h.requests("/v2/evil/dst/blobs/uploads/") - before;
    assert!(n <= 12, "{n} upload attempts:\n{err}");
}

/// The digest `Docker-Content-Digest` names for `img`'s manifest.
fn manifest_digest(img: &Image) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(&img.manifest)))
}

/// A referrers index holding one artifact descriptor of `artifact_type`, numbered `n`.
fn referrers_page(n: u8, artifact_type: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", hex::encode([n; 32])),
            "size": 500 + n as u64,
            "artifactType": artifact_type,
        }],
    }))
    .unwrap()
}

/// The server side of `lamina referrers`: the ping and the subject's manifest, then `referrers`.
fn referrers_server(referrers: impl Fn(&str) -> Reply + Send + Sync + 'static) -> (Hostile, String) {
    let img = image();
    let digest = manifest_digest(&img);
    let d = digest.clone();
    let h = Hostile::start(move |path, _| match path {
        "/v2/" => fixed(200, &[], "{}"),
        "/v2/evil/img/manifests/v1" => fixed(
            200,
            &[
                ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                ("Docker-Content-Digest", &d),
            ],
            img.manifest.clone(),
        ),
        p if p.starts_with("/v2/evil/img/referrers/") => referrers(p),
        _ => fixed(404, &[], "{}"),
    });
    (h, digest)
}

#[test]
fn referrers_pagination_that_loops_is_refused() {
    if !measurable() {
        return;
    }
    // Every page links back to the first: a listing without end.
    let (h, digest) = referrers_server(|p| {
        let base = p.split('?').next().unwrap_or(p).to_owned();
        fixed(
            200,
            &[("Link", &format!("<{base}>; rel=\"next\""))],
            referrers_page(1, "application/spdx+json"),
        )
    });
    // Naive: follow `Link` 50 times, and the same page keeps coming.
    let mut path = format!("/v2/evil/img/referrers/{digest}");
    for _ in 0..50 {
        let (status, _, body) = naive_get(h.port, &path, 1 << 20);
        assert_eq!(status, 200);
        assert_eq!(body, referrers_page(1, "application/spdx+json"));
        path = format!("/v2/evil/img/referrers/{digest}");
    }
    let before = h.requests("/v2/evil/img/referrers");
    assert_refused(
        &["referrers", &format!("{}/evil/img:v1", h.host())],
        &["pagination does not advance"],
    );
    assert_eq!(
        h.requests("/v2/evil/img/referrers") - before,
        1,
        "caught before reading the first page twice"
    );
}

#[test]
fn endless_referrers_index_is_cut_at_the_manifest_limit() {
    if !measurable() {
        return;
    }
    let (h, digest) = referrers_server(|_| Reply::Endless {
        status: 200,
        headers: vec![(
            "Content-Type".into(),
            "application/vnd.oci.image.index.v1+json".into(),
        )],
    });
    // Naive: 32 MiB read and the index still has not ended.
    let (_, _, body) = naive_get(h.port, &format!("/v2/evil/img/referrers/{digest}"), 32 << 20);
    assert_eq!(body.len(), 32 << 20);
    assert_refused(
        &["referrers", &format!("{}/evil/img:v1", h.host())],
        &["referrers index", "limit"],
    );
}

#[test]
fn referrers_api_pages_are_joined_and_filtered() {
    // An honest registry with the API: two pages, filters not applied server-side (no
    // `OCI-Filters-Applied`), so lamina filters by artifact type itself.
    let (h, digest) = referrers_server(|p| {
        let base = p.split('?').next().unwrap_or(p).to_owned();
        if p.contains("page=2") {
            fixed(200, &[], referrers_page(2, "application/vnd.in-toto+json"))
        } else {
            fixed(
                200,
                &[("Link", &format!("<{base}?page=2>; rel=\"next\""))],
                referrers_page(1, "application/spdx+json"),
            )
        }
    });
    let list = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_lamina"))
            .args([
                "referrers",
                &format!("{}/evil/img:v1", h.host()),
                "--format",
                "json",
            ])
            .args(extra)
            .env_remove("DOCKER_CONFIG")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["artifactType"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&[]),
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    assert_eq!(
        list(&["--artifact-type", "application/vnd.in-toto+json"]),
        ["application/vnd.in-toto+json"]
    );
    // The API answered, so the referrers tag (the fallback) was never asked for.
    let tag = format!(
        "/v2/evil/img/manifests/sha256-{}",
        digest.trim_start_matches("sha256:")
    );
    assert_eq!(h.requests(&tag), 0);
}
