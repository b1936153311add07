//! What a step sees: [`StepCtx`] — store handles, the cache, progress, the executor, the sources it may
//! read (context, finished stages, image bases) and the build's settings. Steps never see the engine,
//! so step.rs and run.rs depend on this module only, and the engine depends on them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use lamina_registry::RegistryOptions;
use lamina_store::config::ImageConfig;
use lamina_store::{Digest, Image, Store};

use super::BuildError;
use super::bind_source::BindSources;
use super::cache::{CacheIndex, CacheRecord};
use super::context::Context;
use super::exec::{Executor, Network};
use super::layers::{self, Layer, LayerWriter};
use super::progress::{Event, Progress};
use super::remote_cache::RemoteCache;
use super::view::View;
use crate::dockerfile::graph::Platform;

/// A secret given with `--secret`.
#[derive(Clone, Debug)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// A finished stage, shared with the stages that need it.
#[derive(Clone)]
pub struct StageOut {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub key: Digest,
    pub base_layers: usize,
}

impl StageOut {
    /// Its rootfs as a read-only merged view.
    pub fn view(&self) -> View {
        View::new(self.layers.iter().rev().map(|l| l.dir.clone()).collect())
    }
}

/// Build-wide settings steps read.
pub struct StepSettings {
    pub secrets: BTreeMap<String, SecretSource>,
    pub ssh: BTreeMap<String, PathBuf>,
    /// Network of RUN steps without `--network`.
    pub network: Network,
    pub registry: RegistryOptions,
    /// RFC 3339 and Unix seconds of the build's `created` time.
    pub created: String,
    pub created_secs: i64,
    /// SOURCE_DATE_EPOCH, if set: part of every step's cache key (a layer made under one epoch has other
    /// mtimes than one made without), and the time of every new history entry.
    pub epoch: Option<i64>,
    /// The Dockerfile text (history entries quote it).
    pub source: String,
    /// See [`BuildRequest::unprivileged`](super::BuildRequest::unprivileged).
    pub unprivileged: bool,
    /// See [`BuildRequest::runtime`](super::BuildRequest::runtime).
    pub runtime: Option<tokio::runtime::Handle>,
}

impl StepSettings {
    /// The runtime for `what`, or why there is none.
    pub fn runtime(&self, what: &'static str) -> Result<&tokio::runtime::Handle, super::BuildError> {
        self.runtime.as_ref().ok_or(super::BuildError::NoRuntime { what })
    }
}

/// The local cache index and the records imported with `--cache-from`.
pub struct StepCache {
    pub index: CacheIndex,
    pub remote: Option<RemoteCache>,
}

impl StepCache {
    /// The layer cached under `key`: local first, else imported (fetched and unpacked). Anything wrong
    /// with a remote copy is a warning and a miss.
    pub fn lookup(
        &self,
        key: &Digest,
        writer: &LayerWriter,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<Option<Layer>, BuildError> {
        if let Some(rec) = self.index.get(key)
            && let Some(layer) = writer.from_cache(&rec)?
        {
            return Ok(Some(layer));
        }
        Ok(self.remote_hit(key, writer, store, progress))
    }

    fn remote_hit(
        &self,
        key: &Digest,
        writer: &LayerWriter,
        store: &Store,
        progress: &dyn Progress,
    ) -> Option<Layer> {
        let remote = self.remote.as_ref()?;
        let warn = |message: String| progress.event(Event::Info { message });
        let rec = match remote.fetch(key, store.blobs())? {
            // Unpacked under its diff_id (a snapshot holds one layer's files, so that name is exact),
            // never into whatever a crashed local run left under the step key.
            Ok(rec) => CacheRecord {
                snapshot: Some(rec.layer.diff_id.hex().to_string()),
                ..rec
            },
            Err(e) => {
                warn(format!("cache: {}; running the step", layers::error_chain(&e)));
                return None;
            }
        };
        match writer.from_cache(&rec) {
            Ok(Some(layer)) => {
                if let Err(e) = self.index.put(&rec) {
                    warn(format!("cache: recording {key}: {}", layers::error_chain(&e)));
                }
                Some(layer)
            }
            Ok(None) => None,
            Err(e) => {
                warn(format!(
                    "cache: imported layer {} for step key {key} is unusable: {}; running the step",
                    rec.layer.digest,
                    layers::error_chain(&e)
                ));
                None
            }
        }
    }
}

/// Image bases by name: the store's, or the ones pulled for another platform.
pub struct ImageBases<'a> {
    pub store: &'a Store,
    pub writer: &'a LayerWriter,
    /// (name, `os/arch[/variant]`) → manifest digest of an untagged pull.
    pub overrides: &'a BTreeMap<(String, String), Digest>,
    /// Every base loaded is recorded here (provenance materials).
    pub materials: &'a super::attest::Materials,
}

impl ImageBases<'_> {
    /// An image base and its unpacked snapshot dirs.
    pub fn load(&self, name: &str, platform: &Platform) -> Result<(Image, Vec<Layer>), BuildError> {
        let want = platform.to_string();
        let base_err = |source| BuildError::BaseImage {
            name: name.to_string(),
            source: Box::new(source),
        };
        let digest = match self.overrides.get(&(name.to_string(), want.clone())) {
            Some(d) => d.clone(),
            None => self.store.resolve(name).map_err(base_err)?.digest().clone(),
        };
        let img = self.store.load_image(&digest).map_err(base_err)?;
        let has = img.config.platform();
        // Images without a platform in their config (some hand-made ones) are taken as they are.
        if !has.architecture.is_empty() && !same_platform(&has, platform) {
            return Err(BuildError::BaseImagePlatform {
                name: name.to_string(),
                has: has.to_string(),
                want,
            });
        }
        let layers = self.writer.base_layers(&img)?;
        self.materials.record(name, platform, &img.manifest_digest);
        Ok((img, layers))
    }
}

/// Same os and architecture, and the same variant when both name one.
pub fn same_platform(a: &Platform, b: &Platform) -> bool {
    a.os == b.os
        && a.architecture == b.architecture
        && (a.variant.is_none() || b.variant.is_none() || a.variant == b.variant)
}

/// Everything one step may use.
pub struct StepCtx<'a> {
    pub store: &'a Store,
    pub writer: &'a LayerWriter,
    pub cache: &'a StepCache,
    pub progress: &'a dyn Progress,
    pub executor: &'a dyn Executor,
    pub context: &'a Context,
    pub binds: &'a BindSources,
    pub images: &'a ImageBases<'a>,
    /// Outputs of the stages this stage depends on (all finished before it started).
    pub stages: &'a HashMap<usize, StageOut>,
    pub settings: &'a StepSettings,
    /// The platform this stage builds for.
    pub platform: &'a Platform,
    pub no_cache: bool,
}

impl StepCtx<'_> {
    /// A stage this one depends on.
    pub fn stage(&self, pos: usize) -> Result<&StageOut, BuildError> {
        self.stages
            .get(&pos)
            .ok_or(BuildError::DependencyFailed { stage: pos })
    }
}
