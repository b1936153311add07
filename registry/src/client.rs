//! One registry host: transport (https, or http for loopback and insecure registries; extra CA certs),
//! auth, retries, and the distribution calls.
//!
//! Every distribution call is made here on one reqwest client (rustls, the bounded redirect policy of
//! `bounded.rs`: at most 10 hops, no loops), because registry-client libraries read error and tag bodies
//! whole, follow redirects without loop detection, drop the response headers a manifest PUT must check
//! (`Docker-Content-Digest`), and send fixed-size chunks that ignore `OCI-Chunk-Min-Length`:
//! - probes and pushes: `blob_exists` (HEAD, status only), `mount_blob` (POST `?mount=&from=`), uploads in
//!   one PUT or in chunks (`upload.rs`, resuming from the registry's `Range`);
//! - blob GETs (`blob_get.rs`: the body capped by its descriptor) and tag listing (`tags.rs`);
//! - manifest GET/PUT: size-capped and digest-checked;
//! - the auth handshake (`auth.rs`): scopes, tokens, refresh.
//!
//! Every body read into memory goes through `bounded.rs`.
//!
//! Credentials only go to the registry host and its token realm: reqwest strips `Authorization` on
//! redirects to another host (blob storage), and foreign-layer URLs are
//! fetched without credentials (`blob_get.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};

use super::RegistryError;
use super::auth::{self, Auth};
use super::blob_get::{BlobBody, stream_error};
use super::bounded;
use super::credentials::Credential;
use super::manifest::{self, Descriptor};
use super::progress::{Outcome, Progress};
use super::upload::UploadPolicy;
use crate::blob::{BlobStore, BlobWriter};
use crate::digest::{Digest, Hasher};

/// Manifests larger than this are refused (docker and containerd use 4 MiB too).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Transport and policy knobs shared by every registry the process talks to.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `host[:port]` entries spoken to over plain http (loopback always is).
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA certificates trusted for every registry.
    pub ca_certs: Vec<PathBuf>,
    /// `certs.d`-style dirs: `<dir>/<host[:port]>/*.crt` are trusted for that host.
    pub certs_dirs: Vec<PathBuf>,
    /// Read credentials from this file instead of docker's/podman's defaults.
    pub auth_file: Option<PathBuf>,
    /// Credentials given on the command line; win over any file.
    pub credentials: Option<Credential>,
    /// Concurrent blob transfers per image.
    pub jobs: usize,
    /// Attempts per request before giving up.
    pub attempts: u32,
    /// First backoff delay; doubles per attempt (with jitter), capped at 8 s.
    pub backoff: Duration,
    pub max_manifest_size: u64,
    /// How blobs read from files are uploaded: one streamed PUT or resumable chunks.
    pub upload: UploadPolicy,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            ca_certs: Vec::new(),
            certs_dirs: vec![
                PathBuf::from("/etc/lamina/certs.d"),
                PathBuf::from("/etc/docker/certs.d"),
            ],
            auth_file: None,
            credentials: None,
            jobs: 4,
            attempts: 6,
            backoff: Duration::from_millis(200),
            max_manifest_size: MAX_MANIFEST_SIZE,
            upload: UploadPolicy::default(),
        }
    }
}

/// lamina's config file (`$LAMINA_CONFIG`, else `$XDG_CONFIG_HOME/lamina/config.json`, else
/// `/etc/lamina/config.json`): `{"insecure-registries": [...], "ca-certs": [...]}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ConfigFile {
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
    /// `auto`, `monolithic` or `chunked`.
    push_mode: Option<String>,
    /// Bytes, or with a K/M/G suffix (binary units).
    push_chunk_size: Option<String>,
    /// Blobs at least this big go up in chunks in `auto` mode.
    push_chunked_threshold: Option<String>,
}

impl RegistryOptions {
    /// Defaults plus what lamina's config file says.
    pub fn load() -> Result<Self, RegistryError> {
        let mut opts = RegistryOptions::default();
        let path = std::env::var_os("LAMINA_CONFIG").map(PathBuf::from).or_else(|| {
            let user = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .map(|d| d.join("lamina/config.json"))
                .filter(|p| p.is_file());
            user.or_else(|| Some(PathBuf::from("/etc/lamina/config.json")))
        });
        if let Some(path) = path.filter(|p| p.is_file()) {
            let bytes = std::fs::read(&path).map_err(RegistryError::io("read", &path))?;
            let file: ConfigFile =
                serde_json::from_slice(&bytes).map_err(|source| RegistryError::BadFile {
                    what: "lamina config",
                    path: path.clone(),
                    source,
                })?;
            opts.insecure_registries.extend(file.insecure_registries);
            opts.ca_certs.extend(file.ca_certs);
            opts.upload.apply("push-mode", file.push_mode.as_deref())?;
            opts.upload
                .apply("push-chunk-size", file.push_chunk_size.as_deref())?;
            opts.upload
                .apply("push-chunked-threshold", file.push_chunked_threshold.as_deref())?;
        }
        // The environment wins over the file, so one CI job can force a mode.
        for (var, key) in [
            ("LAMINA_PUSH_MODE", "push-mode"),
            ("LAMINA_PUSH_CHUNK_SIZE", "push-chunk-size"),
            ("LAMINA_PUSH_CHUNKED_THRESHOLD", "push-chunked-threshold"),
        ] {
            opts.upload.apply(key, std::env::var(var).ok().as_deref())?;
        }
        // For tests and impatient CI: the first retry delay in milliseconds.
        if let Some(ms) = std::env::var("LAMINA_RETRY_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            opts.backoff = Duration::from_millis(ms);
        }
        Ok(opts)
    }

    /// The extra CA certificates trusted for `host` (`host[:port]`): `ca_certs` plus `certs.d/<host>/*.crt`.
    /// Registries and `ADD https://…` share this rule.
    pub fn trusted_cas(&self, host: &str) -> Result<Vec<crate::tls::CaCert>, crate::tls::TlsError> {
        crate::tls::load_ca_certs(&crate::tls::ca_cert_files(&self.ca_certs, &self.certs_dirs, host))
    }

    fn is_insecure(&self, registry: &str) -> bool {
        let r = crate::reference::Reference::parse(&format!("{registry}/x"));
        r.is_ok_and(|r| r.is_loopback_registry()) || self.insecure_registries.iter().any(|i| i == registry)
    }
}

/// The host that serves a registry's API: Docker Hub's name `docker.io` (and its old alias) is served by
/// `index.docker.io`; every other registry serves its own name.
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "index.docker.io",
        other => other,
    }
}

/// A client for one registry host.
#[derive(Clone)]
pub struct RegistryClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) registry: String,
    pub(super) base: String,
    pub(super) http: reqwest::Client,
    pub(super) auth: Auth,
    pub(super) opts: RegistryOptions,
}

impl RegistryClient {
    pub fn new(registry: &str, opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let host = api_host(registry);
        let insecure = opts.is_insecure(registry);
        let scheme = if insecure { "http" } else { "https" };
        let base = format!("{scheme}://{host}");

        let cas = opts
            .trusted_cas(registry)
            .map_err(|source| RegistryError::Trust {
                registry: registry.to_owned(),
                source,
            })?;
        let http = crate::tls::trust(
            crate::tls::client_builder().redirect(bounded::redirect_policy()),
            &cas,
        )
        .map_err(|source| RegistryError::Trust {
            registry: registry.to_owned(),
            source,
        })?;
        let http = http.build().map_err(|source| RegistryError::Http {
            op: "build HTTP client for",
            url: base.clone(),
            source,
        })?;
        let auth = Auth::new(
            registry,
            &base,
            http.clone(),
            opts.credentials.clone(),
            opts.auth_file.clone(),
        );
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                registry: registry.to_owned(),
                base,
                http,
                auth,
                opts: opts.clone(),
            }),
        })
    }

    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.inner.opts
    }

    pub(super) fn retrier(&self, what: String) -> Retrier<'_> {
        Retrier {
            client: self,
            what,
            attempt: 0,
            reauthed: false,
            high_water: 0,
        }
    }

    /// `GET /v2/<repo>/manifests/<reference>`: size-capped, verified against `expected` (a digest
    /// reference) or the `Docker-Content-Digest` header. Returns bytes, media type and digest.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, String, Digest), RegistryError> {
        let name = format!("{}/{repo}:{reference}", self.inner.registry);
        let mut r = self.retrier(format!("fetch manifest {name}"));
        loop {
            match self.get_manifest_once(repo, reference, expected, &name).await {
                Ok(v) => return Ok(v),
                Err(e) => r.check(e).await?,
            }
        }
    }

    async fn get_manifest_once(
        &self,
        repo: &str,
        reference: &str,
        expected: Option<&Digest>,
        name: &str,
    ) -> Result<(Vec<u8>, String, Digest), RegistryError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.inner.base);
        let req = self
            .inner
            .http
            .get(&url)
            .header(ACCEPT, manifest::ACCEPT.join(", "));
        let req = self
            .inner
            .auth
            .apply(req, repo, &auth::scopes(repo, false, None))
            .await?;
        let res = req.send().await.map_err(RegistryError::http("GET", &url))?;
        let status = res.status().as_u16();
        if status != 200 {
            let message = bounded::read_prefix(res).await;
            return Err(status_error(&url, &self.inner.registry, repo, status, message));
        }
        let limit = self.inner.opts.max_manifest_size;
        if let Some(len) = res.content_length().filter(|l| *l > limit) {
            return Err(RegistryError::ManifestTooLarge {
                reference: name.to_owned(),
                size: Some(len),
                limit,
            });
        }
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let header_digest = res
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let body = match bounded::read_body(res, limit, "manifest").await {
            Err(bounded::BodyError::TooLarge { .. }) => {
                return Err(RegistryError::ManifestTooLarge {
                    reference: name.to_owned(),
                    size: None,
                    limit,
                });
            }
            other => other?,
        };
        let want = expected.cloned().or(header_digest);
        let actual = match &want {
            Some(w) => hash_with(w, &body),
            None => Digest::sha256_of(&body),
        };
        if let Some(want) = want
            && want != actual
        {
            return Err(RegistryError::DigestMismatch {
                what: "manifest",
                reference: name.to_owned(),
                expected: want,
                actual,
            });
        }
        Ok((body, content_type, actual))
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the exact bytes; checks the digest the registry
    /// reports. Returns the manifest digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        body: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        Ok(self
            .put_manifest_reporting(repo, reference, body, media_type)
            .await?
            .digest)
    }

    /// [`Self::put_manifest`], also returning the `OCI-Subject` the registry sent back: a registry with
    /// the referrers API names the subject of a manifest that has one; without it, the pusher keeps
    /// the referrers tag up to date itself.
    pub async fn put_manifest_reporting(
        &self,
        repo: &str,
        reference: &str,
        body: &[u8],
        media_type: &str,
    ) -> Result<PutManifest, RegistryError> {
        let digest = Digest::sha256_of(body);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.inner.base);
        let body = Bytes::copy_from_slice(body);
        let mut r = self.retrier(format!(
            "push manifest {}/{repo}:{reference}",
            self.inner.registry
        ));
        loop {
            let attempt = async {
                let req = self
                    .inner
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .header(CONTENT_LENGTH, body.len())
                    .body(body.clone());
                let req = self
                    .inner
                    .auth
                    .apply(req, repo, &auth::scopes(repo, true, None))
                    .await?;
                let res = req.send().await.map_err(|source| RegistryError::Http {
                    op: "PUT",
                    url: url.clone(),
                    source,
                })?;
                let status = res.status().as_u16();
                if !(200..300).contains(&status) {
                    let message = bounded::read_prefix(res).await;
                    return Err(status_error(&url, &self.inner.registry, repo, status, message));
                }
                if let Some(reported) = res
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok())
                    && reported != digest
                {
                    return Err(RegistryError::DigestMismatch {
                        what: "pushed manifest (Docker-Content-Digest)",
                        reference: format!("{}/{repo}:{reference}", self.inner.registry),
                        expected: digest.clone(),
                        actual: reported,
                    });
                }
                Ok(res
                    .headers()
                    .get("oci-subject")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok()))
            };
            match attempt.await {
                Ok(subject) => {
                    return Ok(PutManifest {
                        digest: digest.clone(),
                        subject,
                    });
                }
                Err(e) => r.check(e).await?,
            }
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: whether the registry has the blob. Status only: no body is read,
    /// and redirects follow the bounded policy.
    pub async fn blob_exists(&self, repo: &str, digest: &Digest, push: bool) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.inner.base);
        let scopes = auth::scopes(repo, push, None);
        let mut r = self.retrier(format!("check blob {digest} in {}/{repo}", self.inner.registry));
        loop {
            let attempt = async {
                let req = self
                    .inner
                    .auth
                    .apply(self.inner.http.head(&url), repo, &scopes)
                    .await?;
                let res = req.send().await.map_err(RegistryError::http("HEAD", &url))?;
                match res.status().as_u16() {
                    200..=299 => Ok(true),
                    404 => Ok(false),
                    s => Err(status_error(&url, &self.inner.registry, repo, s, String::new())),
                }
            };
            match attempt.await {
                Ok(v) => return Ok(v),
                Err(e) => r.check(e).await?,
            }
        }
    }

    /// Downloads a blob into the store, hashing as it streams, resuming with `Range` after a broken
    /// transfer; the blob lands at its address only if digest and size match.
    pub async fn fetch_blob(
        &self,
        repo: &str,
        desc: &Descriptor,
        blobs: &BlobStore,
        progress: &dyn Progress,
    ) -> Result<Outcome, RegistryError> {
        if blobs.contains(&desc.digest) {
            return Ok(Outcome::Exists);
        }
        let blob_err = |source| RegistryError::Blob {
            digest: desc.digest.clone(),
            source,
        };
        // Foreign layers are fetched from their URLs when the registry does not have them.
        let foreign = !desc.urls.is_empty();
        let mut writer: Option<BlobWriter> = None;
        let mut r = self.retrier(format!(
            "download {} from {}/{repo}",
            desc.digest, self.inner.registry
        ));
        loop {
            if writer.is_none() {
                writer = Some(blobs.writer_with(desc.digest.algorithm()).map_err(blob_err)?);
            }
            let w = writer.as_mut().expect("set above");
            let offset = w.count();
            let attempt = async {
                let from = format!("{}/{repo}", self.inner.registry);
                let mut stream = match self.open_blob(repo, desc, offset, None, foreign).await? {
                    BlobBody::Partial(s) => s,
                    // The registry ignored the Range: start over.
                    BlobBody::Full(s) if offset > 0 => return Ok(Some(s)),
                    BlobBody::Full(s) => s,
                };
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| stream_error(desc, &from, e))?;
                    std::io::Write::write_all(w, &chunk).map_err(|e| {
                        blob_err(crate::blob::BlobError::Io {
                            op: "write",
                            path: blobs.tmp_dir().to_owned(),
                            source: e,
                        })
                    })?;
                    if w.count() > desc.size {
                        return Err(blob_err(crate::blob::BlobError::SizeMismatch {
                            digest: desc.digest.clone(),
                            expected: desc.size,
                            actual: w.count(),
                        }));
                    }
                    progress.advance(&desc.digest, w.count());
                }
                if w.count() < desc.size {
                    return Err(RegistryError::Status {
                        url: from,
                        status: 599,
                        message: format!("transfer ended at byte {} of {}", w.count(), desc.size),
                    });
                }
                Ok(None)
            };
            match attempt.await {
                Ok(None) => {
                    let w = writer.take().expect("set above");
                    match w.commit_expect(&desc.digest) {
                        Ok(_) => return Ok(Outcome::Downloaded),
                        Err(e) => r.check(blob_err(e)).await?,
                    }
                }
                Ok(Some(_full)) => {
                    // Drop the partial file; the next attempt starts from byte 0.
                    writer = None;
                }
                Err(e) => {
                    // A size overflow or a write error poisons the partial file.
                    if matches!(e, RegistryError::Blob { .. } | RegistryError::BlobTooLong { .. }) {
                        writer = None;
                    } else if let Some(w) = writer.as_ref() {
                        // Bytes arrived before the break; the next attempt resumes after them.
                        r.progressed(w.count());
                    }
                    progress.retrying(&desc.digest, &e);
                    r.check(e).await?;
                }
            }
        }
    }

    /// A verified-at-the-end stream of a remote blob, for registry→registry copies. The destination
    /// registry checks the digest of what it receives, so a corrupted stream never lands anywhere.
    pub async fn blob_stream(
        &self,
        repo: &str,
        desc: &Descriptor,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static, RegistryError>
    {
        let s = match self.open_blob(repo, desc, 0, None, false).await? {
            BlobBody::Full(s) | BlobBody::Partial(s) => s,
        };
        Ok(s)
    }

    /// Checks that the configured credentials are accepted (what `login` does before saving them).
    pub async fn verify_login(&self) -> Result<(), RegistryError> {
        match self.inner.auth.challenge().await? {
            auth::Challenge::None => Ok(()),
            auth::Challenge::Basic => {
                let url = format!("{}/v2/", self.inner.base);
                let req = self.inner.http.get(&url);
                let req = self.inner.auth.apply(req, "", &[]).await?;
                let res = req.send().await.map_err(|source| RegistryError::Http {
                    op: "GET",
                    url: url.clone(),
                    source,
                })?;
                match res.status().as_u16() {
                    200..=299 => Ok(()),
                    401 => Err(RegistryError::Unauthorized {
                        registry: self.inner.registry.clone(),
                    }),
                    s => Err(status_error(&url, &self.inner.registry, "", s, String::new())),
                }
            }
            auth::Challenge::Bearer { .. } => self.inner.auth.grant("", &[]).await.map(|_| ()),
        }
    }
}

fn hash_with(like: &Digest, data: &[u8]) -> Digest {
    let mut h = Hasher::new(like.algorithm());
    h.update(data);
    h.finish()
}

/// What a manifest PUT gave back.
#[derive(Clone, Debug)]
pub struct PutManifest {
    pub digest: Digest,
    /// `OCI-Subject`: the registry tracks this manifest's subject in its referrers API.
    pub subject: Option<Digest>,
}

pub(super) fn status_error(
    url: &str,
    registry: &str,
    repo: &str,
    status: u16,
    message: String,
) -> RegistryError {
    match status {
        401 => RegistryError::Status {
            url: url.to_owned(),
            status,
            message: String::new(),
        },
        403 => RegistryError::Denied {
            registry: registry.to_owned(),
            repository: repo.to_owned(),
        },
        _ => RegistryError::Status {
            url: url.to_owned(),
            status,
            message: message.chars().take(500).collect(),
        },
    }
}

/// Retry policy for one operation: back off on retryable errors, refresh the token once on a 401.
pub(super) struct Retrier<'a> {
    client: &'a RegistryClient,
    what: String,
    attempt: u32,
    reauthed: bool,
    high_water: u64,
}

impl Retrier<'_> {
    /// `Ok(())` means "try again"; otherwise the error to return.
    pub(super) async fn check(&mut self, e: RegistryError) -> Result<(), RegistryError> {
        let retryable = e.is_retryable();
        self.check_as(e, retryable).await
    }

    /// The transfer has reached byte `position`: a resumable transfer that gets further than ever
    /// before gets a fresh budget of attempts instead of dying on its n-th hiccup. Only a new high-water
    /// mark counts, so a transfer that keeps restarting from 0 (a registry that ignores Range or drops
    /// upload sessions) still runs out of attempts.
    pub(super) fn progressed(&mut self, position: u64) {
        if position > self.high_water {
            self.high_water = position;
            self.attempt = 0;
        }
    }

    /// Like `check`, with the caller deciding whether `e` is worth another attempt.
    pub(super) async fn check_as(&mut self, e: RegistryError, retryable: bool) -> Result<(), RegistryError> {
        self.attempt += 1;
        if e.is_unauthorized() {
            if self.reauthed {
                return Err(RegistryError::Unauthorized {
                    registry: self.client.inner.registry.clone(),
                });
            }
            self.reauthed = true;
            self.client.inner.auth.invalidate().await;
            return Ok(());
        }
        let max = self.client.inner.opts.attempts.max(1);
        if !retryable {
            return Err(e);
        }
        if self.attempt >= max {
            return Err(RegistryError::GaveUp {
                what: std::mem::take(&mut self.what),
                attempts: self.attempt,
                source: Box::new(e),
            });
        }
        tracing::debug!(what = %self.what, attempt = self.attempt, error = %e, "retrying");
        let base = self.client.inner.opts.backoff.as_millis() as u64;
        let delay = (base << (self.attempt - 1).min(6)).min(8000);
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()) % (delay / 2 + 1))
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(delay / 2 + jitter)).await;
        Ok(())
    }
}
