//! `ADD <url>` sources: each URL is downloaded by [`lamina_registry::download`] (http/https, lamina's CA
//! certificates, proxies, redirects, pinned checksum, mode 0600, mtime from `Last-Modified`) into
//! `<dir>/u<i>/<name>`, a private context the COPY machinery then reads. Downloaded archives are never
//! extracted.

use std::path::{Path, PathBuf};

use lamina_registry::RegistryOptions;
use lamina_registry::download::{self, Checksum, Downloaded};

use super::BuildError;

/// The URLs of one ADD and where their files go.
pub struct UrlSources {
    urls: Vec<String>,
    pin: Option<Checksum>,
    dir: PathBuf,
    line: usize,
}

impl UrlSources {
    pub fn new(
        urls: Vec<String>,
        checksum: Option<&str>,
        dir: &Path,
        line: usize,
    ) -> Result<Self, BuildError> {
        let pin = checksum
            .map(Checksum::parse)
            .transpose()
            .map_err(|source| BuildError::Fetch {
                line,
                url: urls.first().cloned().unwrap_or_default(),
                source,
            })?;
        if pin.is_some() && urls.len() > 1 {
            return Err(BuildError::ChecksumManyUrls { line });
        }
        Ok(UrlSources {
            urls,
            pin,
            dir: dir.to_path_buf(),
            line,
        })
    }

    /// The source paths (relative to the dir) COPY selects: one per URL, named like BuildKit names it.
    pub fn sources(&self) -> Vec<String> {
        self.urls
            .iter()
            .enumerate()
            .map(|(i, u)| format!("u{i}/{}", download::file_name(u)))
            .collect()
    }

    /// `--checksum`: BuildKit keys a pinned URL by the checksum alone, so a cache hit needs no request.
    pub fn pin(&self) -> Option<&Checksum> {
        self.pin.as_ref()
    }

    /// Downloads every URL (in order); on error nothing of that URL is left in the dir.
    /// `opts`: the build's registry settings (CA certificates from the config file and `--ca-cert`).
    pub fn fetch(
        &self,
        opts: &RegistryOptions,
        rt: &tokio::runtime::Handle,
    ) -> Result<Vec<Downloaded>, BuildError> {
        let mut out = Vec::with_capacity(self.urls.len());
        for (u, rel) in self.urls.iter().zip(self.sources()) {
            let dest = self.dir.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|source| BuildError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let d = download::download(u, &dest, self.pin.as_ref(), opts, rt).map_err(|source| {
                BuildError::Fetch {
                    line: self.line,
                    url: u.clone(),
                    source,
                }
            })?;
            out.push(d);
        }
        Ok(out)
    }
}
