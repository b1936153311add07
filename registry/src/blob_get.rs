//! `GET /v2/<repo>/blobs/<digest>` on our own reqwest client. Client libraries' blob streams read an
//! error body whole (a registry answering 500 with an endless body would fill memory) and follow
//! redirects under reqwest's default policy, which has no loop detection; here the body of a blob is a
//! [`CappedStream`] bounded by its descriptor, an error body is read as a bounded prefix, and redirects
//! follow [`super::bounded::redirect_policy`].

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::RANGE;

use super::bounded::{self, CappedStream};
use super::client::{RegistryClient, status_error};
use super::manifest::Descriptor;
use super::{RegistryError, auth};

pub(super) type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A blob response: the whole blob (status 200: the registry ignored or was not asked for a `Range`)
/// or the requested part (206).
pub(super) enum BlobBody {
    Full(BlobStream),
    Partial(BlobStream),
}

impl RegistryClient {
    /// Opens `desc` in `repo` from byte `offset` (`len` bytes, or to the end). With `foreign`, the
    /// descriptor's `urls` are tried without credentials when the registry does not serve the blob
    /// (CVE-2020-15157: a layer URL must never receive the registry's token).
    pub(super) async fn open_blob(
        &self,
        repo: &str,
        desc: &Descriptor,
        offset: u64,
        len: Option<u64>,
        foreign: bool,
    ) -> Result<BlobBody, RegistryError> {
        let url = format!("{}/v2/{repo}/blobs/{}", self.inner.base, desc.digest);
        let range = match (offset, len) {
            (0, None) => None,
            (off, Some(len)) => Some(format!("bytes={off}-{}", (off + len).saturating_sub(1))),
            (off, None) => Some(format!("bytes={off}-")),
        };
        let with_range = |req: reqwest::RequestBuilder| match &range {
            Some(r) => req.header(RANGE, r.as_str()),
            None => req,
        };
        let req = with_range(self.inner.http.get(&url));
        let req = self
            .inner
            .auth
            .apply(req, repo, &auth::scopes(repo, false, None))
            .await?;
        let mut res = req.send().await.map_err(RegistryError::http("GET", &url))?;
        if foreign && !res.status().is_success() {
            for u in desc
                .urls
                .iter()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            {
                let r = with_range(self.inner.http.get(u))
                    .send()
                    .await
                    .map_err(RegistryError::http("GET", u))?;
                res = r;
                if res.status().is_success() {
                    break;
                }
            }
        }
        let status = res.status().as_u16();
        let from = res.url().to_string();
        // What may still come: the rest of the blob after `offset` for a 206, the whole blob for a 200.
        let cap = |s: reqwest::Response, limit: u64| -> BlobStream {
            let s = s.bytes_stream().map(|r| r.map_err(std::io::Error::other));
            Box::pin(CappedStream::new(s, desc.digest.clone(), limit))
        };
        match status {
            200 => Ok(BlobBody::Full(cap(res, desc.size))),
            206 => Ok(BlobBody::Partial(cap(res, desc.size.saturating_sub(offset)))),
            _ => {
                let message = bounded::read_prefix(res).await;
                Err(status_error(&from, &self.inner.registry, repo, status, message))
            }
        }
    }
}

/// A read error from a blob stream as a registry error: an overrun names the digest and is final,
/// a transport failure may be retried.
pub(super) fn stream_error(desc: &Descriptor, url: &str, e: std::io::Error) -> RegistryError {
    if bounded::overrun(&e).is_some() {
        return RegistryError::BlobTooLong {
            digest: desc.digest.clone(),
            url: url.to_owned(),
            limit: desc.size,
        };
    }
    RegistryError::BlobRead {
        digest: desc.digest.clone(),
        url: url.to_owned(),
        source: e,
    }
}
