//! Which CA certificates lamina trusts on top of the system roots — one rule for registries and for
//! `ADD https://…`: the config file's `ca-certs` (every host) plus docker's `certs.d` convention,
//! `<dir>/<host[:port]>/*.crt` (that host only).

use std::path::{Path, PathBuf};

/// Errors loading extra CA certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading CA certificate {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA certificate {path} is not valid PEM")]
    Parse {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("CA certificate file {path} holds no PEM certificate")]
    Empty { path: PathBuf },
}

/// One extra trusted CA certificate (PEM) and the file it came from.
#[derive(Clone, Debug)]
pub struct CaCert {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

/// The CA files trusted for `host` (`host[:port]` as written in the reference or URL), sorted so the
/// same config always yields the same trust order.
pub fn ca_cert_files(ca_certs: &[PathBuf], certs_dirs: &[PathBuf], host: &str) -> Vec<PathBuf> {
    let mut files = ca_certs.to_vec();
    // A host containing a path separator would escape the certs dir.
    if !host.is_empty() && !host.contains('/') && host != "." && host != ".." {
        for dir in certs_dirs {
            if let Ok(rd) = std::fs::read_dir(dir.join(host)) {
                files.extend(
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "crt")),
                );
            }
        }
    }
    files.sort();
    files
}

/// Reads and checks the given PEM files.
pub fn load_ca_certs(files: &[PathBuf]) -> Result<Vec<CaCert>, TlsError> {
    files
        .iter()
        .map(|path| {
            let pem = std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.clone(),
                source,
            })?;
            let cert = CaCert {
                path: path.clone(),
                pem,
            };
            cert.to_reqwest()?;
            Ok(cert)
        })
        .collect()
}

impl CaCert {
    /// Every certificate of the file (a bundle may hold several).
    pub fn to_reqwest(&self) -> Result<Vec<reqwest::Certificate>, TlsError> {
        let certs = reqwest::Certificate::from_pem_bundle(&self.pem).map_err(|source| TlsError::Parse {
            path: self.path.clone(),
            source,
        })?;
        if certs.is_empty() {
            return Err(TlsError::Empty {
                path: self.path.clone(),
            });
        }
        Ok(certs)
    }
}

/// What lamina says it is, and how long it waits, on every HTTP connection (registries and ADD URLs).
pub const USER_AGENT: &str = concat!("lamina/", env!("CARGO_PKG_VERSION"));
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A reqwest client builder with lamina's user agent and timeouts; add trust with [`trust`].
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
}

/// Adds `certs` to the roots a reqwest client trusts (the system roots stay trusted).
pub fn trust(
    mut builder: reqwest::ClientBuilder,
    certs: &[CaCert],
) -> Result<reqwest::ClientBuilder, TlsError> {
    for c in certs {
        builder = builder.tls_certs_merge(c.to_reqwest()?);
    }
    Ok(builder)
}

/// The first certs dir, for hints in error messages.
pub fn certs_dir_hint(certs_dirs: &[PathBuf], host: &str) -> PathBuf {
    certs_dirs
        .first()
        .map(|d| d.join(host))
        .unwrap_or_else(|| Path::new("/etc/lamina/certs.d").join(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_and_per_host_files_only_for_that_host() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("certs.d");
        std::fs::create_dir_all(d.join("h:5000")).unwrap();
        std::fs::write(d.join("h:5000/ca.crt"), "x").unwrap();
        std::fs::write(d.join("h:5000/client.key"), "x").unwrap();
        let global = vec![t.path().join("g.pem")];
        let f = ca_cert_files(&global, std::slice::from_ref(&d), "h:5000");
        assert_eq!(
            f,
            vec![t.path().join("certs.d/h:5000/ca.crt"), t.path().join("g.pem")]
        );
        assert_eq!(ca_cert_files(&global, std::slice::from_ref(&d), "h"), global);
        assert_eq!(
            ca_cert_files(&global, std::slice::from_ref(&d), "../certs.d/h:5000"),
            global
        );
        let e = load_ca_certs(&global).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e}");
        std::fs::write(&global[0], "not pem").unwrap();
        let e = load_ca_certs(&global).unwrap_err();
        assert!(e.to_string().contains("g.pem"), "{e}");
        // The registry client applies the same rule and fails on the same file.
        let opts = crate::RegistryOptions {
            ca_certs: global,
            ..Default::default()
        };
        let e = crate::RegistryClient::new("registry.example", &opts)
            .err()
            .expect("a bad CA file is an error");
        assert!(matches!(e, crate::RegistryError::Trust { .. }), "{e}");
    }
}
