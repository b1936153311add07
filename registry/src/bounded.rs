//! Bounded reads from the network: every response body lamina holds in memory (manifests, indexes,
//! tag pages, token responses, error bodies) is read through [`read_body`] or [`read_prefix`], and
//! every streamed blob through [`CappedStream`], so a registry that sends an endless or oversized
//! body costs at most the limit, never the host's memory (issue 11: `lamina tags` against an endless
//! body grew to gigabytes). Redirects follow [`redirect_policy`]: at most [`MAX_REDIRECTS`] per
//! request and no URL twice, so a blob that redirects to itself fails on its first loop instead of
//! being retried until the attempts run out.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::digest::Digest;

/// Redirects followed per request (Go's net/http and reqwest use 10 as well).
pub const MAX_REDIRECTS: usize = 10;
/// How much of an error body is kept for the message; the rest is never read.
pub const MAX_ERROR_BODY: u64 = 8 << 10;
/// Token responses are a few KiB of JSON; a megabyte is generous.
pub const MAX_TOKEN_BODY: u64 = 1 << 20;
/// One page of `/tags/list` (1000 tags of up to 128 bytes fit in well under 1 MiB).
pub const MAX_TAG_PAGE: u64 = 4 << 20;
/// All pages of one tag listing together.
pub const MAX_TAG_TOTAL: u64 = 64 << 20;
/// Pages of one tag listing (a million tags at 1000 per page).
pub const MAX_TAG_PAGES: usize = 1000;

/// A body that did not fit, or broke while being read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{what} from {url} is larger than the {limit}-byte limit")]
    TooLarge {
        what: &'static str,
        url: String,
        limit: u64,
    },
    #[error("reading {what} from {url}")]
    Read {
        what: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Why a redirect was refused; reqwest carries it as the source of its redirect error.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RedirectError {
    #[error("more than {limit} redirects, the last to {url}")]
    TooMany { url: String, limit: usize },
    #[error("redirect loop: {url} was already visited")]
    Loop { url: String },
}

/// At most [`MAX_REDIRECTS`] hops, and a URL seen before in the chain is a loop. reqwest still strips
/// credentials when a redirect leaves the host (blob storage on another domain).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let url = attempt.url().to_string();
        if attempt.previous().iter().any(|p| p.as_str() == url) {
            attempt.error(RedirectError::Loop { url })
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(RedirectError::TooMany {
                url,
                limit: MAX_REDIRECTS,
            })
        } else {
            attempt.follow()
        }
    })
}

/// The whole body of `res`, or [`BodyError::TooLarge`] as soon as it passes `limit` (a declared
/// `Content-Length` over the limit is refused before a byte is read).
pub async fn read_body(
    mut res: reqwest::Response,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, BodyError> {
    let url = res.url().to_string();
    let too_large = |url: String| BodyError::TooLarge { what, url, limit };
    if res.content_length().is_some_and(|l| l > limit) {
        return Err(too_large(url));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|source| BodyError::Read {
        what,
        url: url.clone(),
        source,
    })? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large(url));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most [`MAX_ERROR_BODY`] bytes of an error body as text; the rest is dropped unread (the
/// connection closes), and a body that breaks keeps what arrived.
pub async fn read_prefix(mut res: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        let room = MAX_ERROR_BODY as usize - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// A blob stream sent past the size its descriptor declares.
#[derive(Debug, thiserror::Error)]
#[error("blob {digest}: the registry sent more than the {limit} bytes its descriptor declares")]
pub struct BlobOverrun {
    pub digest: Digest,
    pub limit: u64,
}

/// Passes at most `limit` bytes of `inner` through; one byte more ends the stream with a
/// [`BlobOverrun`] error (as an `io::Error` of kind `InvalidData`), so no consumer of a blob stream
/// can be fed more than its descriptor allows.
pub struct CappedStream<S> {
    inner: S,
    left: u64,
    digest: Digest,
    limit: u64,
    failed: bool,
}

impl<S> CappedStream<S> {
    pub fn new(inner: S, digest: Digest, limit: u64) -> Self {
        CappedStream {
            inner,
            left: limit,
            digest,
            limit,
            failed: false,
        }
    }
}

impl<S> Stream for CappedStream<S>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) if b.len() as u64 > self.left => {
                self.failed = true;
                let err = BlobOverrun {
                    digest: self.digest.clone(),
                    limit: self.limit,
                };
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    err,
                ))))
            }
            Poll::Ready(Some(Ok(b))) => {
                self.left -= b.len() as u64;
                Poll::Ready(Some(Ok(b)))
            }
            other => other,
        }
    }
}

/// The [`BlobOverrun`] inside an error from a [`CappedStream`], if that is what it is.
pub fn overrun(e: &std::io::Error) -> Option<&BlobOverrun> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<BlobOverrun>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn capped_stream_passes_exactly_the_limit_and_refuses_one_byte_more() {
        let d = Digest::sha256_of(b"x");
        let chunks =
            || futures_util::stream::iter([Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))]);
        let ok: Vec<_> = CappedStream::new(chunks(), d.clone(), 5).collect().await;
        assert!(ok.iter().all(|c| c.is_ok()));
        let over: Vec<_> = CappedStream::new(chunks(), d.clone(), 4).collect().await;
        let err = over.last().and_then(|r| r.as_ref().err()).expect("overrun error");
        assert_eq!(overrun(err).map(|o| o.limit), Some(4));
        assert_eq!(over.len(), 2, "the stream ends after the error");
    }
}
