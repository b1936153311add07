//! Registry images for inspection: manifest and config fetched into memory (size-capped), layers streamed
//! from the registry chunk by chunk through a bounded channel, hashed on the way and checked at EOF. Nothing is
//! written to the store or to disk.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use super::InspectError;
use crate::digest::{Digest, Hasher};
use crate::reference::Reference;
use lamina_registry::{Descriptor, Manifest, Platform, RegistryClient, pull};

/// A blob to stream from a registry.
pub(crate) struct RemoteBlob {
    pub client: Arc<RegistryClient>,
    pub runtime: tokio::runtime::Handle,
    pub repo: String,
    pub desc: Descriptor,
}

impl std::fmt::Debug for RemoteBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RemoteBlob({}/{}@{})",
            self.client.registry(),
            self.repo,
            self.desc.digest
        )
    }
}

/// Chunks in flight per stream: bounds memory to a few MB per layer being read.
const CHANNEL_DEPTH: usize = 16;

impl RemoteBlob {
    pub(crate) fn open(self: &Arc<Self>) -> Box<dyn Read + Send> {
        let (tx, rx): (SyncSender<io::Result<Bytes>>, Receiver<io::Result<Bytes>>) =
            sync_channel(CHANNEL_DEPTH);
        let blob = Arc::clone(self);
        self.runtime.spawn(async move {
            let stream = match blob.client.blob_stream(&blob.repo, &blob.desc).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(e)));
                    return;
                }
            };
            let mut stream = std::pin::pin!(stream);
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                // A blocking send on a runtime worker: the reader drains quickly, and the channel is bounded.
                if tokio::task::block_in_place(|| tx.send(chunk)).is_err() || failed {
                    return;
                }
            }
        });
        Box::new(ChannelReader {
            rx,
            chunk: Bytes::new(),
            hasher: Some(Hasher::new(self.desc.digest.algorithm())),
            expected: self.desc.digest.clone(),
            count: 0,
            size: self.desc.size,
        })
    }
}

struct ChannelReader {
    rx: Receiver<io::Result<Bytes>>,
    chunk: Bytes,
    hasher: Option<Hasher>,
    expected: Digest,
    count: u64,
    size: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    if let Some(h) = &mut self.hasher {
                        h.update(&c);
                    }
                    self.count += c.len() as u64;
                    self.chunk = c;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    // Sender gone: end of stream. Verify before reporting EOF.
                    if let Some(h) = self.hasher.take() {
                        let got = h.finish();
                        if got != self.expected || self.count != self.size {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "blob {} from the registry has digest {got} and {} bytes (expected {} bytes)",
                                    self.expected, self.count, self.size
                                ),
                            ));
                        }
                    }
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

fn registry_err(reference: &Reference) -> impl FnOnce(lamina_registry::RegistryError) -> InspectError + '_ {
    move |source| InspectError::Registry {
        reference: reference.to_string(),
        source: Box::new(source),
    }
}

/// Opens `reference` on its registry for this host's platform (or `platform`).
pub fn open_registry(
    client: RegistryClient,
    runtime: tokio::runtime::Handle,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<super::source::ImageView, InspectError> {
    let client = Arc::new(client);
    let repo = reference.repository().to_string();
    let (desc, _, manifest) = runtime
        .block_on(pull::resolve_manifest(&client, reference, platform, None))
        .map_err(registry_err(reference))?;
    let (bytes, _, _) = runtime
        .block_on(client.get_manifest(&repo, &desc.digest.to_string(), Some(&desc.digest)))
        .map_err(registry_err(reference))?;
    let manifest_json: Value = serde_json::from_slice(&bytes).map_err(|source| InspectError::Json {
        what: format!("manifest of {reference}"),
        source,
    })?;
    let Manifest::Image { config, layers, .. } = manifest else {
        return Err(InspectError::Malformed {
            what: reference.to_string(),
            expected: "image manifest",
        });
    };
    let blob = |d: &Descriptor| {
        Arc::new(RemoteBlob {
            client: Arc::clone(&client),
            runtime: runtime.clone(),
            repo: repo.clone(),
            desc: d.clone(),
        })
    };
    let mut config_bytes = Vec::new();
    blob(&config)
        .open()
        .take(32 << 20)
        .read_to_end(&mut config_bytes)
        .map_err(|source| InspectError::Tar {
            layer: format!("config {} of {reference}", config.digest),
            source,
        })?;
    let config_json: Value = serde_json::from_slice(&config_bytes).map_err(|source| InspectError::Json {
        what: format!("config of {reference}"),
        source,
    })?;
    let parts = super::source::RemoteParts {
        name: reference.familiar(),
        manifest_digest: desc.digest.clone(),
        manifest: manifest_json,
        config_digest: config.digest.clone(),
        config: config_json,
        layers: layers.iter().map(|l| (l.clone(), blob(l))).collect(),
    };
    Ok(super::source::ImageView::from_remote(parts))
}
