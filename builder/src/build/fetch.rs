//! `ADD http://…`: a small HTTP/1.0 client (plain http only: no TLS stack in the builder), streaming the
//! body to a file while hashing it, following redirects, verifying `--checksum`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use lamina_store::Digest;
use lamina_store::digest::Hasher;

use super::BuildError;

fn err(url: &str, message: impl Into<String>) -> BuildError {
    BuildError::Fetch {
        url: url.to_string(),
        message: message.into(),
    }
}

/// Downloads `url` into `dest`; returns the sha256 of the body.
pub fn fetch(url: &str, dest: &Path, checksum: Option<&str>) -> Result<Digest, BuildError> {
    let mut current = url.to_string();
    for _ in 0..5 {
        if current.starts_with("https://") {
            return Err(err(
                url,
                "https URLs are not supported by ADD yet (use http, or RUN with a downloader)",
            ));
        }
        let rest = current
            .strip_prefix("http://")
            .ok_or_else(|| err(url, "not an http URL"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let mut s = TcpStream::connect(&addr).map_err(|e| err(url, format!("connecting to {addr}: {e}")))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: lamina\r\nAccept: */*\r\n\r\n"
        )
        .map_err(|e| err(url, e.to_string()))?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| err(url, e.to_string()))?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut location = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).map_err(|e| err(url, e.to_string()))? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("location")
            {
                location = Some(v.trim().to_string());
            }
        }
        if (300..400).contains(&code) {
            let loc = location.ok_or_else(|| err(url, format!("HTTP {code} without Location")))?;
            current = if loc.starts_with("http") {
                loc
            } else {
                format!("http://{hostport}{loc}")
            };
            continue;
        }
        if code != 200 {
            return Err(err(url, format!("HTTP status {}", status.trim())));
        }
        let mut f = File::create(dest).map_err(|e| err(url, format!("{}: {e}", dest.display())))?;
        let mut h = Hasher::new(lamina_store::Algorithm::Sha256);
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = r.read(&mut buf).map_err(|e| err(url, e.to_string()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            f.write_all(&buf[..n]).map_err(|e| err(url, e.to_string()))?;
        }
        let d = h.finish();
        if let Some(want) = checksum
            && want != d.to_string()
        {
            return Err(err(
                url,
                format!("checksum mismatch: got {d}, --checksum wants {want}"),
            ));
        }
        return Ok(d);
    }
    Err(err(url, "too many redirects"))
}

/// The file name ADD gives a URL's content: the last path segment (`index.html` when empty).
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    match after_host.rsplit('/').next() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "index.html".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn downloads_and_verifies() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let (c, _) = l.accept().unwrap();
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut c = c;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                    .unwrap();
            }
        });
        let t = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/dir/file.txt");
        let d = fetch(&url, &t.path().join("f"), None).unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"hello");
        let bad = fetch(&url, &t.path().join("g"), Some("sha256:0000")).unwrap_err();
        assert!(bad.to_string().contains("checksum mismatch"), "{bad}");
        assert_eq!(file_name(&url), "file.txt");
        assert_eq!(file_name("http://h/"), "index.html");
    }
}
