//! Test fixtures for the registry tests: a real `docker-registry` on a free loopback port, OCI layouts
//! built in the test, a fault-injecting HTTP proxy and a small token issuer.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub fn lamina() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lamina"));
    c.env("LAMINA_RETRY_BACKOFF_MS", "20")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    c
}

/// Insists that a command succeeded; returns its stdout.
pub fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `docker-registry`, killed on drop.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Starts a registry with `auth` (a YAML `auth:` block or empty); `None` (with a printed reason) if
    /// docker-registry isn't installed.
    pub fn start(auth: &str) -> Option<Registry> {
        if !have("docker-registry") {
            lamina_testkit::skip("docker-registry is not installed (apt-get install docker-registry)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}\n",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reg = Registry { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(reg);
            }
            if reg.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start");
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough to make real-sized blobs.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub struct Layer {
    pub gz: Vec<u8>,
    pub diff_id: String,
}

pub fn layer(files: &[(&str, Vec<u8>)]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    Layer {
        diff_id: format!("sha256:{}", sha256_hex(&tar)),
        gz: gz.finish().unwrap(),
    }
}

fn put_blob(dir: &Path, data: &[u8]) -> String {
    let hex = sha256_hex(data);
    let p = dir.join("blobs/sha256").join(&hex);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    format!("sha256:{hex}")
}

/// Writes an image into an OCI layout at `dir`; returns (manifest digest, manifest bytes).
pub fn image_blobs(dir: &Path, arch: &str, layers: &[Layer]) -> (String, usize) {
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cd = put_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": put_blob(dir, &l.gz), "size": l.gz.len()})).collect::<Vec<_>>(),
    });
    let m = serde_json::to_vec(&manifest).unwrap();
    (put_blob(dir, &m), m.len())
}

pub fn write_index(dir: &Path, entries: &[serde_json::Value]) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A one-image OCI layout tagged `v1` with two layers (one of `big` noise bytes); returns its manifest digest.
pub fn simple_layout(dir: &Path, big: usize) -> String {
    let l1 = layer(&[
        ("etc/hello.txt", b"hello\n".to_vec()),
        ("etc/os", b"lamina-test\n".to_vec()),
    ]);
    let l2 = layer(&[("data/blob.bin", noise(7, big))]);
    let (md, size) = image_blobs(dir, "amd64", &[l1, l2]);
    write_index(
        dir,
        &[
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"}}),
        ],
    );
    md
}

pub fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent-lamina-test-auth.json")
        .output()
        .unwrap()
}

/// Checks every blob in a store is whole: the content hashes to its name. Temp dir must be empty.
pub fn assert_store_sound(root: &Path) {
    let dir = root.join("blobs/sha256");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            assert_eq!(
                sha256_hex(&data),
                e.file_name().to_str().unwrap(),
                "corrupt blob in store"
            );
        }
    }
    if let Ok(rd) = std::fs::read_dir(root.join("tmp")) {
        let left: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "temp files left: {left:?}");
    }
}

/// Which faults the proxy injects, each with a probability in percent.
#[derive(Clone, Default)]
pub struct Faults {
    pub reset_mid_blob: u32,
    pub status_500: u32,
    pub status_429: u32,
    pub truncate: u32,
    pub corrupt: u32,
    /// Replace every manifest GET body with this many bytes.
    pub oversized_manifest: Option<usize>,
    /// Seed of the fault dice.
    pub seed: u64,
    /// Answer blob GETs with a 307 to this port on `localhost` (another host than 127.0.0.1).
    pub redirect_blobs_to: Option<u16>,
    /// Upload PATCHes: read half the body, then reset (the registry never sees the request).
    pub reset_patch: u32,
    /// Upload PATCHes: pass half the body on to the registry, then reset both sides.
    pub half_patch: u32,
    /// At most this many `half_patch` faults (0: no limit), so a test can force a known number of
    /// dropped sessions without depending on the dice.
    pub half_patch_max: usize,
    /// Drop the `Range` header of blob GETs: a registry (or CDN) that always sends the whole blob.
    pub strip_range: bool,
    /// Rewrite `127.0.0.1` in upload `Location` headers to this host (an upload sent elsewhere).
    pub upload_location_host: Option<String>,
    /// Add `OCI-Chunk-Min-Length` to the registry's answer to upload POSTs.
    pub chunk_min_length: Option<u64>,
}

/// A fault-injecting HTTP/1.1 proxy: one request per connection (`Connection: close`).
pub struct Proxy {
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(AtomicU64::new(faults.seed.max(1)));
        let (l2, s2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (log, faults, rng) = (l2.clone(), faults.clone(), rng.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, upstream, &faults, &rng, &log);
                });
            }
        });
        Proxy { port, log, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn roll(rng: &AtomicU64, pct: u32) -> bool {
    if pct == 0 {
        return false;
    }
    let mut x = rng.load(Ordering::SeqCst);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng.store(x, Ordering::SeqCst);
    (x % 100) < u64::from(pct)
}

type Head = (String, Vec<(String, String)>);

fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let start = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Ok(Some((start, headers)))
}

fn read_body(r: &mut BufReader<TcpStream>, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let get = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(body)
}

fn write_response(
    w: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
    send: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    w.write_all(head.as_bytes())?;
    w.write_all(&body[..send.min(body.len())])?;
    w.flush()
}

fn handle(
    client: TcpStream,
    upstream: u16,
    f: &Faults,
    rng: &AtomicU64,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some((start, headers)) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut parts = start.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let range = headers
        .iter()
        .find(|(k, _)| k == "content-range" || k == "range")
        .map(|(_, v)| format!(" {v}"))
        .unwrap_or_default();
    if headers.iter().any(|(k, _)| k == "authorization") {
        let host = headers
            .iter()
            .find(|(k, _)| k == "host")
            .map_or("", |(_, v)| v.as_str());
        log.lock().unwrap().push(format!("AUTH {method} {host} {path}"));
    }
    if method == "PATCH" {
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut half = vec![0; len / 2];
        if roll(rng, f.reset_patch) {
            reader.read_exact(&mut half)?;
            log.lock()
                .unwrap()
                .push(format!("FAULT reset PATCH{range} {path}"));
            return client.shutdown(Shutdown::Both);
        }
        let half_budget = f.half_patch_max == 0
            || log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("FAULT half PATCH"))
                .count()
                < f.half_patch_max;
        if half_budget && roll(rng, f.half_patch) {
            reader.read_exact(&mut half)?;
            let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
            let mut req = format!("{start}\r\n");
            for (k, v) in &headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            up.write_all(req.as_bytes())?;
            up.write_all(&half)?;
            up.flush()?;
            // Let the registry read what it got before the connection dies.
            std::thread::sleep(Duration::from_millis(100));
            let _ = up.shutdown(Shutdown::Both);
            log.lock()
                .unwrap()
                .push(format!("FAULT half PATCH{range} {path}"));
            return client.shutdown(Shutdown::Both);
        }
    }
    let body = read_body(&mut reader, &headers)?;
    let is_blob_get = method == "GET" && path.contains("/blobs/sha256:");
    let is_manifest_get = method == "GET" && path.contains("/manifests/");
    let is_write = matches!(method.as_str(), "PUT" | "POST" | "PATCH");
    let fail = |c: &mut TcpStream, status: &str| {
        log.lock()
            .unwrap()
            .push(format!("FAULT {status} {method} {path}"));
        write_response(c, status, &[], b"{\"errors\":[]}", usize::MAX)
    };
    if is_blob_get && let Some(port) = f.redirect_blobs_to {
        log.lock().unwrap().push(format!("307 {method} {path}"));
        let loc = vec![("location".to_owned(), format!("http://localhost:{port}{path}"))];
        return write_response(&mut client, "307 Temporary Redirect", &loc, b"", usize::MAX);
    }
    if path != "/v2/" && (is_blob_get || is_manifest_get || is_write || method == "HEAD") {
        if roll(rng, f.status_500) {
            return fail(&mut client, "500 Internal Server Error");
        }
        if roll(rng, f.status_429) {
            return fail(&mut client, "429 Too Many Requests");
        }
    }
    // Forward.
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut req = format!("{start}\r\n");
    for (k, v) in &headers {
        if k == "range" && is_blob_get && f.strip_range {
            continue;
        }
        if k != "connection" && k != "transfer-encoding" && k != "content-length" {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    up.write_all(req.as_bytes())?;
    up.write_all(&body)?;
    let mut ur = BufReader::new(up);
    let Some((status_line, rheaders)) = read_head(&mut ur)? else {
        return Ok(());
    };
    let status = status_line
        .split_once(' ')
        .map_or("502 Bad Gateway", |x| x.1)
        .to_owned();
    let mut rbody = if method == "HEAD" {
        Vec::new()
    } else {
        read_body(&mut ur, &rheaders)?
    };
    if method == "HEAD" {
        // Keep the upstream's content-length for HEAD.
        let len = rheaders
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut head = format!("HTTP/1.1 {status}\r\n");
        for (k, v) in &rheaders {
            if k != "connection" {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        let _ = len;
        head.push_str("connection: close\r\n\r\n");
        client.write_all(head.as_bytes())?;
        log.lock()
            .unwrap()
            .push(format!("{} {method} {path}", &status[..3]));
        return Ok(());
    }
    if is_manifest_get
        && let Some(n) = f.oversized_manifest
        && status.starts_with("200")
    {
        let mut big = br#"{"schemaVersion":2,"pad":""#.to_vec();
        big.resize(n, b'a');
        big.extend_from_slice(br#""}"#);
        let hs: Vec<_> = rheaders
            .iter()
            .filter(|(k, _)| k != "docker-content-digest")
            .cloned()
            .collect();
        return write_response(&mut client, &status, &hs, &big, usize::MAX);
    }
    if is_blob_get && rbody.len() > 1024 && status.starts_with("20") {
        if roll(rng, f.reset_mid_blob) {
            log.lock().unwrap().push(format!("FAULT reset{range} {path}"));
            write_response(&mut client, &status, &rheaders, &rbody, rbody.len() / 2)?;
            return client.shutdown(Shutdown::Both);
        }
        if roll(rng, f.truncate) {
            log.lock().unwrap().push(format!("FAULT truncate {path}"));
            let cut = rbody.len() / 3;
            rbody.truncate(cut);
            // Honest length for the short body: the client sees a clean but short response.
            return write_response(&mut client, &status, &rheaders, &rbody, usize::MAX);
        }
        if roll(rng, f.corrupt) {
            log.lock().unwrap().push(format!("FAULT corrupt {path}"));
            let mid = rbody.len() / 2;
            rbody[mid] ^= 0xff;
        }
    }
    let mut rheaders = rheaders;
    if method == "POST"
        && path.contains("/blobs/uploads/")
        && let Some(min) = f.chunk_min_length
    {
        rheaders.push(("oci-chunk-min-length".to_owned(), min.to_string()));
    }
    if let Some(h) = &f.upload_location_host
        && path.contains("/blobs/uploads/")
    {
        for (k, v) in rheaders.iter_mut() {
            if k == "location" {
                *v = v.replace("127.0.0.1", h);
            }
        }
    }
    log.lock().unwrap().push(format!(
        "{} {method}{range} {path}",
        &status[..3.min(status.len())]
    ));
    write_response(&mut client, &status, &rheaders, &rbody, usize::MAX)
}

/// A token issuer for the registry's `auth.token` mode: checks basic credentials, grants what was
/// asked, signs RS256 JWTs with openssl, and records the scopes requested.
pub struct TokenServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub scopes: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    pub fn start(user: &str, pass: &str) -> Option<TokenServer> {
        if !have("openssl") {
            lamina_testkit::skip("openssl is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=lamina-test-token",
            ])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl req failed");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.path().join("cert.pem"))
            .output()
            .unwrap()
            .stdout;
        use base64::Engine;
        let std64 = base64::engine::general_purpose::STANDARD;
        let url64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let x5c = std64.encode(&der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let (sc, key, expected) = (
            scopes.clone(),
            dir.path().join("key.pem"),
            std64.encode(format!("{user}:{pass}")),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                let Ok(Some((start, headers))) = read_head(&mut r) else {
                    continue;
                };
                let target = start.split_whitespace().nth(1).unwrap_or("").to_owned();
                let authed = headers.iter().any(|(k, v)| {
                    k == "authorization" && v.strip_prefix("Basic ") == Some(expected.as_str())
                });
                let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
                let mut access = Vec::new();
                for kv in query.split('&') {
                    if let Some(v) = kv.strip_prefix("scope=") {
                        let v = v
                            .replace("%3A", ":")
                            .replace("%2F", "/")
                            .replace("%2C", ",")
                            .replace('+', " ");
                        sc.lock().unwrap().push(v.clone());
                        let parts: Vec<&str> = v.splitn(3, ':').collect();
                        if let [t, name, actions] = parts.as_slice() {
                            access.push(serde_json::json!({"type": t, "name": name,
                                "actions": actions.split(',').collect::<Vec<_>>()}));
                        }
                    }
                }
                if !authed {
                    let _ = write_response(
                        &mut conn,
                        "401 Unauthorized",
                        &[],
                        b"{\"details\":\"bad credentials\"}",
                        usize::MAX,
                    );
                    continue;
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                let claims = serde_json::json!({"iss": "lamina-test-issuer", "sub": "tester", "aud": "lamina-test-registry",
                    "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access});
                let input = format!(
                    "{}.{}",
                    url64.encode(serde_json::to_vec(&header).unwrap()),
                    url64.encode(serde_json::to_vec(&claims).unwrap())
                );
                let mut child = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
                let sig = child.wait_with_output().unwrap().stdout;
                let token = format!("{input}.{}", url64.encode(sig));
                let body =
                    serde_json::to_vec(&serde_json::json!({"token": token, "expires_in": 600})).unwrap();
                let _ = write_response(
                    &mut conn,
                    "200 OK",
                    &[("content-type".into(), "application/json".into())],
                    &body,
                    usize::MAX,
                );
            }
        });
        Some(TokenServer { port, dir, scopes })
    }

    /// The registry's `auth:` block for this issuer.
    pub fn auth_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: lamina-test-registry\n    issuer: lamina-test-issuer\n    rootcertbundle: {}\n",
            self.port,
            self.dir.path().join("cert.pem").display()
        )
    }
}

pub fn path_with(dir: &Path) -> PathBuf {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.to_owned()];
    paths.extend(std::env::split_paths(&old));
    PathBuf::from(std::env::join_paths(paths).unwrap())
}

/// Stands in for blob storage behind a redirect: serves blobs straight from a registry's storage dir and
/// records the Authorization headers it was sent (there must be none).
pub struct BlobStorage {
    pub port: u16,
    pub auth_seen: Arc<Mutex<Vec<String>>>,
    pub served: Arc<AtomicU64>,
}

impl BlobStorage {
    pub fn start(registry_data: PathBuf) -> BlobStorage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let auth_seen = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::new(AtomicU64::new(0));
        let (a2, s2) = (auth_seen.clone(), served.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                let Ok(Some((start, headers))) = read_head(&mut r) else {
                    continue;
                };
                for (k, v) in &headers {
                    if k == "authorization" {
                        a2.lock().unwrap().push(v.clone());
                    }
                }
                let path = start.split_whitespace().nth(1).unwrap_or("");
                let hex = path.rsplit("sha256:").next().unwrap_or("");
                let file = registry_data
                    .join("docker/registry/v2/blobs/sha256")
                    .join(hex.get(..2).unwrap_or("xx"))
                    .join(hex)
                    .join("data");
                match std::fs::read(file) {
                    Ok(data) => {
                        s2.fetch_add(1, Ordering::SeqCst);
                        let _ = write_response(&mut conn, "200 OK", &[], &data, usize::MAX);
                    }
                    Err(_) => {
                        let _ = write_response(&mut conn, "404 Not Found", &[], b"", usize::MAX);
                    }
                }
            }
        });
        BlobStorage {
            port,
            auth_seen,
            served,
        }
    }
}

/// An OCI layout at `layout` tagged `multi`: an index of linux/amd64 and linux/arm64/v8 images, each one
/// layer with `/arch` naming its architecture. Returns the manifest digests (amd64, arm64) and the
/// index's hex digest.
pub fn multi_arch_layout(layout: &Path) -> (String, String, String) {
    let (amd, amd_size) = image_blobs(layout, "amd64", &[layer(&[("arch", b"amd64\n".to_vec())])]);
    let (arm, arm_size) = image_blobs(layout, "arm64", &[layer(&[("arch", b"arm64\n".to_vec())])]);
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_size, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]});
    let ib = serde_json::to_vec(&index).unwrap();
    let idx_hex = sha256_hex(&ib);
    std::fs::write(layout.join("blobs/sha256").join(&idx_hex), &ib).unwrap();
    write_index(
        layout,
        &[
            serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{idx_hex}"), "size": ib.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}),
        ],
    );
    (amd, arm, idx_hex)
}

/// The arm64 static busybox scripts/test.sh extracts from Debian's `busybox-static:arm64`
/// (`LAMINA_BUSYBOX_ARM64` overrides), when it is there.
pub fn arm64_busybox() -> Option<PathBuf> {
    let p = std::env::var_os("LAMINA_BUSYBOX_ARM64")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/lamina-arm64/bin/busybox"));
    p.is_file().then_some(p)
}

/// One layer of a busybox rootfs: `bin/busybox` from `binary`, `bin/sh` and friends linking to it.
pub fn busybox_layer(binary: &Path) -> Layer {
    let data = std::fs::read(binary).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", &data[..]).unwrap();
    for applet in ["sh", "uname", "cat", "echo", "ls", "wc"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox").unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    Layer {
        diff_id: format!("sha256:{}", sha256_hex(&tar)),
        gz: gz.finish().unwrap(),
    }
}

/// An OCI layout at `layout` tagged `busybox`: an index of linux/amd64 and linux/arm64 busybox images
/// (the host's static busybox and `arm64`), each also with `/arch` naming its architecture.
pub fn busybox_multi_arch_layout(layout: &Path, arm64: &Path) {
    let image = |arch: &str, bb: &Path| {
        image_blobs(
            layout,
            arch,
            &[
                busybox_layer(bb),
                layer(&[("arch", format!("{arch}\n").into_bytes())]),
            ],
        )
    };
    let (amd, amd_size) = image("amd64", Path::new("/usr/bin/busybox"));
    let (arm, arm_size) = image("arm64", arm64);
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_size, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]});
    let ib = serde_json::to_vec(&index).unwrap();
    let idx_hex = sha256_hex(&ib);
    std::fs::write(layout.join("blobs/sha256").join(&idx_hex), &ib).unwrap();
    write_index(
        layout,
        &[
            serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{idx_hex}"), "size": ib.len(), "annotations": {"org.opencontainers.image.ref.name": "busybox"}}),
        ],
    );
}
