//! `ADD <url>` downloads, with BuildKit's semantics: http and https (system roots plus lamina's extra CA
//! certificates, see [`crate::tls`]), up to 10 redirects, `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` like Go's
//! net/http (loopback never proxied), the body streamed to the file while hashed, an optional pinned
//! checksum, file mode 0600 and mtime from `Last-Modified` (the epoch when absent).

use std::fs::{File, FileTimes, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::Digest as _;

use crate::RegistryOptions;
use crate::digest::{Algorithm, Digest};
use crate::tls::TlsError;

/// The name BuildKit's Dockerfile front end gives a URL without a usable last path segment.
pub const UNNAMED: &str = "__unnamed__";

/// Errors downloading a URL. Every variant carries the URL; the messages leave it out because the
/// caller's error (`Dockerfile:N: ADD <url>`) already names it.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("not an http:// or https:// URL")]
    BadUrl { url: String },
    #[error("{value:?} is not a checksum (sha256:, sha384: or sha512: and the hex digest)")]
    BadChecksum { value: String },
    #[error("loading extra CA certificates")]
    Trust {
        url: String,
        #[source]
        source: TlsError,
    },
    #[error("proxy {proxy:?} from the environment")]
    BadProxy {
        url: String,
        proxy: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("setting up the HTTP client")]
    Client {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "TLS: {detail} (trust the server's CA with \"ca-certs\" in lamina's config file or a .crt in {certs_dir})"
    )]
    Tls {
        url: String,
        detail: String,
        certs_dir: PathBuf,
    },
    #[error("request failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("redirect refused")]
    Redirect {
        url: String,
        #[source]
        source: crate::bounded::RedirectError,
    },
    #[error("reading the response body")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checksum mismatch: --checksum expects {expected}, the download has {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChecksumAlgo {
    Sha256,
    Sha384,
    Sha512,
}

/// A pinned `--checksum=<algo>:<hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    algo: ChecksumAlgo,
    hex: String,
}

impl Checksum {
    pub fn parse(value: &str) -> Result<Checksum, DownloadError> {
        let bad = || DownloadError::BadChecksum {
            value: value.to_owned(),
        };
        let (algo, hex) = value.split_once(':').ok_or_else(bad)?;
        let (algo, len) = match algo {
            "sha256" => (ChecksumAlgo::Sha256, 64),
            "sha384" => (ChecksumAlgo::Sha384, 96),
            "sha512" => (ChecksumAlgo::Sha512, 128),
            _ => return Err(bad()),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        Ok(Checksum {
            algo,
            hex: hex.to_owned(),
        })
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = match self.algo {
            ChecksumAlgo::Sha256 => "sha256",
            ChecksumAlgo::Sha384 => "sha384",
            ChecksumAlgo::Sha512 => "sha512",
        };
        write!(f, "{a}:{}", self.hex)
    }
}

/// What a download produced.
#[derive(Clone, Debug)]
pub struct Downloaded {
    /// sha256 of the body: the content part of the build cache key.
    pub digest: Digest,
    pub size: u64,
    /// `Last-Modified`, when the server sent a parsable one (also the file's mtime).
    pub last_modified: Option<SystemTime>,
}

/// The file name ADD gives a URL's content: the last segment of the decoded path, like Go's
/// `path.Base(u.Path)`, else [`UNNAMED`]. The query and fragment never count.
pub fn file_name(url: &str) -> String {
    let Ok(u) = reqwest::Url::parse(url) else {
        return UNNAMED.to_owned();
    };
    let path = percent_decode(u.path());
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(b) if !b.is_empty() && b != "." && b != ".." => b.to_owned(),
        _ => UNNAMED.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host[:port]` as written in the URL: the `certs.d` directory name for it.
fn authority(u: &reqwest::Url) -> String {
    let host = u.host_str().unwrap_or_default();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Proxies from the environment as Go's net/http reads them (BuildKit's transport): `HTTP_PROXY` for
/// http, `HTTPS_PROXY` for https, `NO_PROXY` exclusions, and loopback destinations always direct.
fn with_env_proxies(
    mut b: reqwest::ClientBuilder,
    url: &str,
) -> Result<reqwest::ClientBuilder, DownloadError> {
    let mut no = env_first(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
    no.push_str(",localhost,127.0.0.0/8,::1");
    b = b.no_proxy();
    for (vars, https) in [
        (["HTTP_PROXY", "http_proxy"], false),
        (["HTTPS_PROXY", "https_proxy"], true),
    ] {
        if let Some(p) = env_first(&vars) {
            let made = if https {
                reqwest::Proxy::https(p.as_str())
            } else {
                reqwest::Proxy::http(p.as_str())
            };
            let proxy = made.map_err(|source| DownloadError::BadProxy {
                url: url.to_owned(),
                proxy: p.clone(),
                source,
            })?;
            b = b.proxy(proxy.no_proxy(reqwest::NoProxy::from_string(&no)));
        }
    }
    Ok(b)
}

use crate::bounded::{MAX_REDIRECTS, RedirectError};

/// A client trusting the system roots plus the CAs configured for `host`. It follows no redirects
/// itself: `fetch` follows them one hop at a time, so the hop limit and loop check cover the whole
/// chain (a per-client limit would reset on every change of host).
fn client_for(url: &str, host: &str, opts: &RegistryOptions) -> Result<reqwest::Client, DownloadError> {
    let cas = opts.trusted_cas(host).map_err(|source| DownloadError::Trust {
        url: url.to_owned(),
        source,
    })?;
    let b = crate::tls::client_builder().redirect(reqwest::redirect::Policy::none());
    let b = crate::tls::trust(b, &cas).map_err(|source| DownloadError::Trust {
        url: url.to_owned(),
        source,
    })?;
    with_env_proxies(b, url)?
        .build()
        .map_err(|source| DownloadError::Client {
            url: url.to_owned(),
            source,
        })
}

/// sha256 always (the cache key's content digest), plus the pinned algorithm when it is another one.
struct Hashers {
    sha256: sha2::Sha256,
    extra: Extra,
}

enum Extra {
    None,
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hashers {
    fn new(pin: Option<&Checksum>) -> Hashers {
        let extra = match pin.map(|c| c.algo) {
            Some(ChecksumAlgo::Sha384) => Extra::Sha384(sha2::Sha384::new()),
            Some(ChecksumAlgo::Sha512) => Extra::Sha512(sha2::Sha512::new()),
            _ => Extra::None,
        };
        Hashers {
            sha256: sha2::Sha256::new(),
            extra,
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        match &mut self.extra {
            Extra::None => {}
            Extra::Sha384(h) => h.update(data),
            Extra::Sha512(h) => h.update(data),
        }
    }

    /// The sha256 digest and the body's checksum in the pinned algorithm (`algo:hex`).
    fn finish(self) -> (Digest, String) {
        let d = Digest::new(Algorithm::Sha256, &hex::encode(self.sha256.finalize()))
            .expect("sha256 hex is a valid digest");
        let pinned = match self.extra {
            Extra::None => d.to_string(),
            Extra::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Extra::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        };
        (d, pinned)
    }
}

/// Downloads `url` into the new file `dest` (mode 0600, mtime from `Last-Modified` or the epoch).
/// With `pin`, a body with another checksum is an error and `dest` is removed. Blocking, on the caller's
/// runtime `rt` (the binary's one runtime); from a thread inside a runtime it blocks on a helper thread.
pub fn download(
    url: &str,
    dest: &Path,
    pin: Option<&Checksum>,
    opts: &RegistryOptions,
    rt: &tokio::runtime::Handle,
) -> Result<Downloaded, DownloadError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| download_blocking(url, dest, pin, opts, rt))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        download_blocking(url, dest, pin, opts, rt)
    }
}

fn download_blocking(
    url: &str,
    dest: &Path,
    pin: Option<&Checksum>,
    opts: &RegistryOptions,
    rt: &tokio::runtime::Handle,
) -> Result<Downloaded, DownloadError> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| DownloadError::BadUrl { url: url.to_owned() })?;
    let io = |source| DownloadError::Io {
        path: dest.to_path_buf(),
        source,
    };
    rt.block_on(async {
        // Redirects within one host are followed by the client; a redirect to another host gets a
        // client of its own, so CA certificates configured for one host (certs.d/HOST) are never
        // trusted for another.
        let mut current = parsed;
        let mut visited = vec![current.clone()];
        let mut hops = 0;
        let mut resp = loop {
            let host = authority(&current);
            let client = client_for(url, &host, opts)?;
            let resp = client
                .get(current.clone())
                .send()
                .await
                .map_err(|e| request_error(url, e, &opts.certs_dirs, &host))?;
            let next = resp
                .status()
                .is_redirection()
                .then(|| resp.headers().get(reqwest::header::LOCATION))
                .flatten()
                .and_then(|l| l.to_str().ok())
                .and_then(|l| current.join(l).ok());
            match next {
                Some(n) if visited.contains(&n) => {
                    return Err(DownloadError::Redirect {
                        url: url.to_owned(),
                        source: RedirectError::Loop { url: n.to_string() },
                    });
                }
                Some(n) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    visited.push(n.clone());
                    current = n;
                }
                Some(n) => {
                    return Err(DownloadError::Redirect {
                        url: url.to_owned(),
                        source: RedirectError::TooMany {
                            url: n.to_string(),
                            limit: MAX_REDIRECTS,
                        },
                    });
                }
                None => break resp,
            }
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(DownloadError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(io)?;
        let written = write_body(&mut resp, file, url, dest, pin).await;
        if written.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        let (file, digest, size) = written?;
        let t = last_modified.unwrap_or(UNIX_EPOCH);
        if let Err(e) = file.set_times(FileTimes::new().set_modified(t).set_accessed(t)) {
            let _ = std::fs::remove_file(dest);
            return Err(io(e));
        }
        Ok(Downloaded {
            digest,
            size,
            last_modified,
        })
    })
}

/// Streams the body into `file` while hashing; checks the pin.
async fn write_body(
    resp: &mut reqwest::Response,
    file: File,
    url: &str,
    dest: &Path,
    pin: Option<&Checksum>,
) -> Result<(File, Digest, u64), DownloadError> {
    let io = |source| DownloadError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut out = BufWriter::with_capacity(256 << 10, file);
    let mut hashers = Hashers::new(pin);
    let mut size = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| DownloadError::Body {
        url: url.to_owned(),
        source: e.without_url(),
    })? {
        hashers.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).map_err(io)?;
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    let (digest, actual) = hashers.finish();
    if let Some(p) = pin
        && p.to_string() != actual
    {
        return Err(DownloadError::ChecksumMismatch {
            url: url.to_owned(),
            expected: p.to_string(),
            actual,
        });
    }
    Ok((file, digest, size))
}

/// Certificate problems get their own message with the fix; other failures keep reqwest's chain.
fn request_error(url: &str, e: reqwest::Error, certs_dirs: &[PathBuf], host: &str) -> DownloadError {
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut detail = None;
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains("certificate") || text.contains("TLS") || text.contains("handshake") {
            detail = Some(text);
        }
        cause = c.source();
    }
    match detail {
        Some(detail) => DownloadError::Tls {
            url: url.to_owned(),
            detail,
            certs_dir: crate::tls::certs_dir_hint(certs_dirs, host),
        },
        None => DownloadError::Request {
            url: url.to_owned(),
            source: e.without_url(),
        },
    }
}

#[cfg(test)]
mod tests {
    fn test_rt() -> tokio::runtime::Handle {
        static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
            .handle()
            .clone()
    }

    use super::*;

    #[test]
    fn names_like_buildkit() {
        assert_eq!(file_name("http://h/dir/file.txt?x=1#y"), "file.txt");
        assert_eq!(file_name("http://h/dir/sub/"), "sub");
        assert_eq!(file_name("http://h/"), UNNAMED);
        assert_eq!(file_name("http://h"), UNNAMED);
        assert_eq!(file_name("http://h/a/.."), UNNAMED);
        assert_eq!(file_name("https://h/a%20b.tar.gz"), "a b.tar.gz");
        assert_eq!(file_name("https://h/x/a%2Fb"), "b");
    }

    /// A one-shot-per-connection HTTP/1.0 server answering every request with `body`.
    fn serve(body: &'static [u8], requests: usize) -> String {
        use std::io::{BufRead, BufReader};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..requests {
                let (mut c, _) = l.accept().unwrap();
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 09 Sep 2001 01:46:40 GMT\r\n\r\n",
                    body.len()
                );
                c.write_all(head.as_bytes()).unwrap();
                c.write_all(body).unwrap();
            }
        });
        format!("http://127.0.0.1:{port}/d/file.bin")
    }

    #[test]
    fn streams_pins_and_cleans_up() {
        use std::os::unix::fs::MetadataExt;
        let body: &'static [u8] = b"some body\n";
        let url = serve(body, 3);
        let t = tempfile::tempdir().unwrap();
        let opts = RegistryOptions::default();
        let sha512 = {
            use sha2::Digest as _;
            format!("sha512:{}", hex::encode(sha2::Sha512::digest(body)))
        };
        let pin = Checksum::parse(&sha512).unwrap();
        let d = download(&url, &t.path().join("a"), Some(&pin), &opts, &test_rt()).unwrap();
        assert_eq!(
            d.digest,
            Digest::sha256_of(body),
            "the content digest is sha256 whatever the pin"
        );
        assert_eq!(d.size, body.len() as u64);
        let m = std::fs::metadata(t.path().join("a")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o600, 1_000_000_000));
        assert_eq!(std::fs::read(t.path().join("a")).unwrap(), body);

        let wrong = Checksum::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        let e = download(&url, &t.path().join("b"), Some(&wrong), &opts, &test_rt()).unwrap_err();
        match &e {
            DownloadError::ChecksumMismatch {
                url: u,
                expected,
                actual,
            } => {
                assert_eq!((u, expected), (&url, &wrong.to_string()));
                assert_eq!(actual, &Digest::sha256_of(body).to_string());
            }
            other => panic!("{other:?}"),
        }
        assert!(!t.path().join("b").exists(), "a rejected download is removed");
        // The destination is never silently replaced.
        std::fs::write(t.path().join("c"), "x").unwrap();
        let e = download(&url, &t.path().join("c"), None, &opts, &test_rt()).unwrap_err();
        assert!(matches!(e, DownloadError::Io { .. }), "{e:?}");
        assert!(matches!(
            download("ftp://h/x", &t.path().join("d"), None, &opts, &test_rt()),
            Err(DownloadError::BadUrl { .. })
        ));
    }

    #[test]
    fn checksums_parse_strictly() {
        let h = "a".repeat(64);
        assert_eq!(
            Checksum::parse(&format!("sha256:{h}")).unwrap().to_string(),
            format!("sha256:{h}")
        );
        assert!(Checksum::parse(&format!("sha512:{h}")).is_err());
        assert!(Checksum::parse(&format!("md5:{h}")).is_err());
        assert!(Checksum::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    /// A server whose `/hop/N` redirects to `/hop/N+1` below `last` (and `/hop/last` serves a body);
    /// with `last == 0` every path redirects to itself. Returns the first URL and the request count.
    fn redirector(last: u32) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let n = count.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let k: u32 = path.trim_start_matches("/hop/").parse().unwrap_or(0);
                let head = if last == 0 {
                    format!("HTTP/1.0 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\n\r\n")
                } else if k < last {
                    format!(
                        "HTTP/1.0 302 Found\r\nLocation: /hop/{}\r\nContent-Length: 0\r\n\r\n",
                        k + 1
                    )
                } else {
                    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned()
                };
                let _ = c.write_all(head.as_bytes());
            }
        });
        (format!("http://127.0.0.1:{port}/hop/0"), count)
    }

    #[test]
    fn redirects_stop_at_a_loop_and_after_ten_hops() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let opts = RegistryOptions::default();
        // A URL redirecting to itself: refused on its first repeat.
        let (url, count) = redirector(0);
        let e = download(&url, &dir.path().join("a"), None, &opts, &test_rt()).unwrap_err();
        assert!(
            matches!(
                e,
                DownloadError::Redirect {
                    source: RedirectError::Loop { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Ten redirects are followed, eleven are not.
        let (url, count) = redirector(10);
        download(&url, &dir.path().join("b"), None, &opts, &test_rt()).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 11);
        let (url, count) = redirector(11);
        let e = download(&url, &dir.path().join("c"), None, &opts, &test_rt()).unwrap_err();
        assert!(
            matches!(
                e,
                DownloadError::Redirect {
                    source: RedirectError::TooMany { limit: 10, .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 11);
    }
}
