//! Small blobs held in memory (signature payloads, their configs): pushed from bytes and fetched with a
//! size limit, digest checked.

use bytes::Bytes;
use futures_util::StreamExt;

use super::manifest::Descriptor;
use super::progress::NoProgress;
use super::{RegistryClient, RegistryError};
use crate::digest::Digest;

impl RegistryClient {
    /// Uploads `data` as a blob unless the registry has it; returns its descriptor.
    pub async fn push_bytes(
        &self,
        repo: &str,
        media_type: &str,
        data: Vec<u8>,
    ) -> Result<Descriptor, RegistryError> {
        let desc = Descriptor::new(media_type, Digest::sha256_of(&data), data.len() as u64);
        if self.blob_exists(repo, &desc.digest, true).await? {
            return Ok(desc);
        }
        let data = Bytes::from(data);
        self.upload(repo, &desc, &NoProgress, || {
            let d = data.clone();
            async move { Ok(futures_util::stream::once(async move { Ok(d) })) }
        })
        .await?;
        Ok(desc)
    }

    /// Fetches a blob of at most `max` bytes into memory; its digest is checked before it is returned.
    pub async fn fetch_small(
        &self,
        repo: &str,
        desc: &Descriptor,
        max: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if desc.size > max {
            return Err(RegistryError::SmallBlobTooLarge {
                reference: format!("{}/{repo}", self.registry()),
                digest: desc.digest.clone(),
                size: desc.size,
                limit: max,
            });
        }
        let mut stream = Box::pin(self.blob_stream(repo, desc).await?);
        let mut out = Vec::with_capacity(desc.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| super::blob_get::stream_error(desc, repo, source))?;
            out.extend_from_slice(&chunk);
        }
        let actual = Digest::sha256_of(&out);
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what: "blob",
                reference: format!("{}/{repo}", self.registry()),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(out)
    }
}
