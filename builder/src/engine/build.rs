//! The engine: turns the stage graph into an image. The [`solve`](super::solve) scheduler runs the
//! stages the target needs (in parallel, bounded by cores, the first failure cancelling the rest); each
//! stage's steps get a [`StepCtx`] and are looked up in the cache, else executed; layer blobs are
//! written by background threads while the next steps run. RUN processes go through an
//! [`Executor`]: the runner for `lamina build`, a fake in tests ([`build_with`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lamina_registry::RegistryOptions;
use lamina_store::config::ImageConfig;
use lamina_store::image::Descriptor;
use lamina_store::layer::Compression;
use lamina_store::{Digest, Image, LayerDesc, Reference, Store};

use super::BuildError;
use super::bind_source::BindSources;
use super::cache::{CacheIndex, CacheRecord, base_key};
use super::context::{Context, Ignore};
use super::ctx::{ImageBases, StepCache, StepCtx, StepSettings};
pub use super::ctx::{SecretSource, StageOut, same_platform};
use super::exec::{Executor, RunnerExecutor};
use super::layers::{Layer, LayerWriter};
use super::plan::{Plan, parse_triggers};
use super::platforms::{self, StageNode};
use super::progress::{Event, Progress};
use super::remote_cache::{self, CacheSpec, RemoteCache};
use super::solve;
use super::step::{StageState, StepRunner};
use crate::dockerfile::graph::{Platform, StageExpandError};
use crate::dockerfile::{Base, BuildGraph};

/// Network for RUN steps without `--network`.
pub use lamina_runner::Network;

/// Everything `lamina build` asks for.
pub struct BuildRequest {
    pub dockerfile: String,
    /// Name for messages (`Dockerfile`, or the -f path).
    pub dockerfile_name: String,
    pub context_dir: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh id=socket` (id `default` when not given).
    pub ssh: BTreeMap<String, PathBuf>,
    pub network: Network,
    pub no_cache: bool,
    pub no_cache_filter: Vec<String>,
    pub compression: Compression,
    pub squash: bool,
    pub source_date_epoch: Option<i64>,
    /// The lamina binary the runner re-execs.
    pub helper_exe: PathBuf,
    /// `--platform`: the target platforms, comma-separated (default: the host's). Several build in one
    /// run into an index; RUN for another platform than the host's runs under binfmt_misc emulation.
    pub platform: Option<String>,
    /// Base images pulled for a non-host platform, stored untagged: (name, `os/arch[/variant]`) →
    /// manifest digest. Other bases are resolved by name in the store.
    pub image_overrides: BTreeMap<(String, String), Digest>,
    /// `--cache-from`: caches to import records from (layers fetched only on a hit).
    pub cache_from: Vec<CacheSpec>,
    /// `--cache-to`: where to export this build's cache records and layers.
    pub cache_to: Vec<CacheSpec>,
    /// Transport/auth settings for registry caches.
    pub registry: RegistryOptions,
    /// Without CAP_CHOWN, leave owners the kernel refuses as the caller's instead of failing (the engine
    /// tests through the fake executor; real builds run as root and leave this false).
    pub unprivileged: bool,
    /// The `security.insecure` entitlement: `RUN --security=insecure` runs privileged (else it is refused).
    pub allow_insecure: bool,
    /// The binary's one tokio runtime, for registry caches and `ADD <url>` (the builder makes none).
    pub runtime: Option<tokio::runtime::Handle>,
    /// `--attest`/`--provenance`/`--sbom`: attestation manifests in the result's index (always an index
    /// then, as buildx).
    pub attest: super::attest::Attest,
    /// The tags the caller will give the result (the attestations' subject names).
    pub tags: Vec<String>,
    /// `--build-context NAME=…`: the image reference standing in for NAME (see
    /// [`BuildOptions::named_contexts`](crate::dockerfile::BuildOptions::named_contexts)).
    pub named_contexts: BTreeMap<String, String>,
}

/// What a build produced.
pub struct BuildOutcome {
    /// The image for the host's platform when it was a target, else for the first target.
    pub image: Image,
    /// One image per target platform, in `--platform` order.
    pub images: Vec<Image>,
    /// For several targets: the OCI index of `images` (each with its platform), in the store untagged.
    pub index: Option<Descriptor>,
    /// Steps executed / taken from the cache.
    pub executed: usize,
    pub cached: usize,
    /// Context files whose content was read (0 on a warm rebuild).
    pub context_files_hashed: usize,
    /// `--cache-to` results: (destination, cache manifest digest, records written).
    pub cache_exported: Vec<(String, Digest, usize)>,
}

/// Shared state of one build, owned by [`build_with`]; steps see a [`StepCtx`] made from it.
struct Engine<'a> {
    store: &'a Store,
    req: &'a BuildRequest,
    progress: &'a dyn Progress,
    executor: &'a dyn Executor,
    context: Context,
    /// Read-only RUN bind sources materialised so far (removed with the engine).
    binds: BindSources,
    cache: StepCache,
    writer: LayerWriter,
    /// One stage graph per target platform.
    graphs: Vec<BuildGraph>,
    /// The stages of all graphs as the solver runs them (shared ones once).
    nodes: Vec<StageNode>,
    settings: StepSettings,
    step_ids: Mutex<usize>,
    counts: Mutex<(usize, usize)>,
    /// Base images the stages loaded (provenance materials).
    materials: super::attest::Materials,
    /// The Dockerfile's escape character, for ONBUILD triggers found while building.
    escape: char,
}

impl BuildRequest {
    /// A request with lamina's defaults: the host platform, gzip, no args, no cache options.
    pub fn new(dockerfile: impl Into<String>, context_dir: impl Into<PathBuf>) -> BuildRequest {
        BuildRequest {
            dockerfile: dockerfile.into(),
            dockerfile_name: "Dockerfile".into(),
            context_dir: context_dir.into(),
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            network: Network::Host,
            no_cache: false,
            no_cache_filter: Vec::new(),
            compression: Compression::default(),
            squash: false,
            source_date_epoch: None,
            helper_exe: PathBuf::from("/proc/self/exe"),
            platform: None,
            image_overrides: BTreeMap::new(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            registry: RegistryOptions::default(),
            unprivileged: false,
            allow_insecure: false,
            runtime: None,
            attest: Default::default(),
            tags: Vec::new(),
            named_contexts: BTreeMap::new(),
        }
    }
}

/// `.dockerignore` through the parser's matcher.
struct DockerIgnore(crate::dockerfile::dockerignore::Matcher);

impl Ignore for DockerIgnore {
    fn excluded(&self, rel: &str, _is_dir: bool) -> bool {
        self.0.is_excluded(rel)
    }
    fn may_reinclude(&self, rel_dir: &str) -> bool {
        !self.0.can_skip_dir(rel_dir)
    }
}

/// Now, RFC 3339 with nanoseconds (provenance times are wall-clock, not SOURCE_DATE_EPOCH).
fn now_rfc3339() -> String {
    let (secs, nanos) = now_secs();
    super::meta::rfc3339(secs, nanos)
}

fn now_secs() -> (i64, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// Builds the request into an image in `store` (not tagged: the caller tags/exports), RUN steps in the
/// runner's sandbox.
///
/// Everything the build creates or uses in the store is held by a lease (the store's, if `store` is a
/// leased handle, else one taken here for the build), so a concurrent `lamina prune` keeps it. A caller
/// that tags or exports the image afterwards passes a leased store, to keep it until then.
pub fn build(store: &Store, req: &BuildRequest, progress: &dyn Progress) -> Result<BuildOutcome, BuildError> {
    let executor = RunnerExecutor {
        helper_exe: req.helper_exe.clone(),
    };
    build_with(store, req, progress, &executor)
}

/// [`build`] with RUN processes run by `executor`.
pub fn build_with(
    store: &Store,
    req: &BuildRequest,
    progress: &dyn Progress,
    executor: &dyn Executor,
) -> Result<BuildOutcome, BuildError> {
    let mut plan = Plan::new(req)?;
    while plan.add_triggers(store, req)? {}
    build_plan_with(store, req, plan, progress, executor)
}

/// [`build`] of a [`Plan`] made from `req` (its images pulled, its triggers added by the caller).
pub fn build_plan(
    store: &Store,
    req: &BuildRequest,
    plan: Plan,
    progress: &dyn Progress,
) -> Result<BuildOutcome, BuildError> {
    let executor = RunnerExecutor {
        helper_exe: req.helper_exe.clone(),
    };
    build_plan_with(store, req, plan, progress, &executor)
}

/// [`build_plan`] with RUN processes run by `executor`.
pub fn build_plan_with(
    store: &Store,
    req: &BuildRequest,
    plan: Plan,
    progress: &dyn Progress,
    executor: &dyn Executor,
) -> Result<BuildOutcome, BuildError> {
    let own;
    let store = match store.current_lease() {
        Some(_) => store,
        None => {
            let lease = store.lease().map_err(|source| BuildError::Store {
                source: Box::new(source),
            })?;
            own = store.leased(&lease);
            &own
        }
    };
    let source = req.dockerfile.clone();
    let started = now_rfc3339();
    let escape = plan.escape();
    let Plan { targets, graphs, .. } = plan;
    // The front end's warnings (unused build args, …) as BuildKit words them: `Rule: message (line N)`;
    // every platform's graph has the same ones, so the first speaks for all.
    for w in &graphs[0].warnings {
        let at = w
            .span
            .map_or_else(String::new, |s| format!(" (line {})", s.start.line));
        progress.event(Event::Warning {
            message: format!("{}: {}{at}", w.rule, w.message),
        });
    }
    let (nodes, tops) = platforms::plan(&graphs, &targets, &|st| uncached(req, st))?;
    let solver_nodes = platforms::solver_nodes(&nodes);

    let matcher = crate::dockerfile::dockerignore::Matcher::for_build(
        &req.context_dir,
        Path::new(&req.dockerfile_name),
    )
    .map_err(BuildError::Ignore)?;
    let ignore = (!matcher.is_empty()).then(|| Box::new(DockerIgnore(matcher)) as Box<dyn Ignore>);
    let cache_dir = store.cache_dir();
    let context = Context::open(&req.context_dir, ignore, Some(&cache_dir))?;
    let index = CacheIndex::open(&cache_dir)?;
    // Whole seconds: a step's cache record keeps its time in seconds, and a cached rebuild must write the
    // same history times (hence the same image ID) as the build that made the records.
    let (secs, nanos) = match req.source_date_epoch {
        Some(e) => (e, 0),
        None => (now_secs().0, 0),
    };
    let host = Platform::host();
    // A foreign stage's RUN needs a binfmt_misc handler: checked before anything runs, at the RUN's line.
    for n in solve::needed_all(&solver_nodes, &tops)
        .into_iter()
        .map(|i| &nodes[i])
    {
        if same_platform(&n.platform, &host) {
            continue;
        }
        if let Some(run) = graphs[n.graph].stages[n.pos]
            .steps
            .iter()
            .find(|s| matches!(s.instruction.kind, crate::dockerfile::Kind::Run { .. }))
        {
            executor
                .can_run(&n.platform)
                .map_err(|source| BuildError::Emulation {
                    line: run.instruction.span.start.line as usize,
                    platform: n.platform.to_string(),
                    host: host.to_string(),
                    source,
                })?;
        }
    }
    let remote = if req.cache_from.is_empty() || req.no_cache {
        None
    } else {
        let warn = |message: String| progress.event(Event::Info { message });
        Some(RemoteCache::import(
            &req.cache_from,
            &req.registry,
            store.blobs(),
            &warn,
            req.runtime.as_ref(),
        )?)
        .filter(|r| !r.is_empty())
    };
    let engine = Engine {
        store,
        req,
        progress,
        executor,
        context,
        binds: BindSources::new(),
        cache: StepCache { index, remote },
        writer: LayerWriter::new(store, req.compression, req.source_date_epoch)?,
        graphs,
        nodes,
        settings: StepSettings {
            secrets: req.secrets.clone(),
            ssh: req.ssh.clone(),
            network: req.network,
            registry: req.registry.clone(),
            created: super::meta::rfc3339(secs, nanos),
            created_secs: secs,
            epoch: req.source_date_epoch,
            source,
            unprivileged: req.unprivileged,
            allow_insecure: req.allow_insecure,
            runtime: req.runtime.clone(),
        },
        step_ids: Mutex::new(0),
        counts: Mutex::new((0, 0)),
        materials: Default::default(),
        escape,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let outs = solve::solve_all(&solver_nodes, &tops, cores, |id, deps| engine.run_stage(id, deps))?;
    // Stages in plan order (each target's Dockerfile order), for a deterministic `--cache-to mode=max`.
    let mut done: Vec<(usize, &StageOut)> = outs.iter().map(|(p, o)| (*p, o)).collect();
    done.sort_by_key(|(p, _)| *p);
    let all_layers: Vec<Layer> = done
        .iter()
        .flat_map(|(_, o)| o.layers.iter().filter(|l| l.key.is_some()).cloned())
        .collect();
    engine.context.save_memo()?;
    let mut target_layers: Vec<Layer> = Vec::new();
    let mut images: Vec<Image> = Vec::with_capacity(tops.len());
    for top in &tops {
        let target = outs
            .get(top)
            .cloned()
            .ok_or(BuildError::DependencyFailed { stage: *top })?;
        target_layers.extend(target.layers.iter().filter(|l| l.key.is_some()).cloned());
        images.push(engine.finish(target)?);
    }
    // Several platforms, or attestations (buildx makes an index for those even of one image).
    let index = if images.len() > 1 || req.attest.any() {
        let facts = super::attest::BuildFacts {
            req,
            materials: &engine.materials,
            started,
            finished: now_rfc3339(),
        };
        let manifests = super::attest::index_entries(store, &images, &facts)?;
        Some(
            store
                .write_image_index(manifests)
                .map_err(|source| BuildError::Store {
                    source: Box::new(source),
                })?,
        )
    } else {
        None
    };
    let main = targets.iter().position(|t| same_platform(t, &host)).unwrap_or(0);
    let image = images[main].clone();
    let cache_exported = if req.cache_to.is_empty() {
        Vec::new()
    } else {
        engine.progress.event(Event::Info {
            message: "exporting build cache".into(),
        });
        let min = engine.records_of(&target_layers)?;
        let max = engine.records_of(&all_layers)?;
        let warn = |message: String| engine.progress.event(Event::Info { message });
        remote_cache::export(
            &req.cache_to,
            &min,
            &max,
            &req.registry,
            store.blobs(),
            &warn,
            req.runtime.as_ref(),
        )?
    };
    // Layers of stages the image doesn't contain are still being written (and their cache records with
    // them) in the background: a build that returned now would lose them when the process exits, and the
    // next build would run those stages again. A failed one only costs that rerun.
    for l in &all_layers {
        let _ = l.wait();
    }
    let (executed, cached) = *engine.counts.lock().unwrap_or_else(|p| p.into_inner());
    Ok(BuildOutcome {
        image,
        images,
        index,
        executed,
        cached,
        context_files_hashed: engine.context.hashed.load(std::sync::atomic::Ordering::Relaxed),
        cache_exported,
    })
}

/// Images the build reads from (FROM, COPY --from, RUN --mount from=), for pulling before the build,
/// each with the platform it is needed for. [`Plan::external_images`] of a fresh plan (without the
/// triggers of bases: a caller that pulls them uses the plan itself).
pub fn external_images(req: &BuildRequest) -> Result<Vec<(String, String)>, BuildError> {
    Plan::new(req)?.external_images()
}

/// The first `--platform` target, or the host's.
pub fn target_platform(req: &BuildRequest) -> Result<Platform, BuildError> {
    Ok(target_platforms(req)?.swap_remove(0))
}

/// Every `--platform` target (comma-separated), or the host's.
pub fn target_platforms(req: &BuildRequest) -> Result<Vec<Platform>, BuildError> {
    platforms::parse_targets(req.platform.as_deref())
}

/// Whether `--no-cache-filter` names `stage` (or its index).
fn uncached(req: &BuildRequest, stage: &crate::dockerfile::Stage) -> bool {
    req.no_cache_filter
        .iter()
        .any(|f| stage.name.as_deref() == Some(f.as_str()) || *f == stage.index.to_string())
}

impl Engine<'_> {
    fn next_step_id(&self) -> usize {
        let mut id = self.step_ids.lock().unwrap_or_else(|p| p.into_inner());
        *id += 1;
        *id
    }

    /// The cache records of `layers` (their blobs written first), deduplicated, in order.
    fn records_of(&self, layers: &[Layer]) -> Result<Vec<CacheRecord>, BuildError> {
        let mut out: Vec<CacheRecord> = Vec::new();
        for l in layers {
            l.wait()?;
            let Some(key) = &l.key else { continue };
            if out.iter().any(|r| &r.key == key) {
                continue;
            }
            let rec = self
                .cache
                .index
                .get(key)
                .ok_or_else(|| BuildError::CacheRecordMissing { key: key.clone() })?;
            out.push(rec);
        }
        Ok(out)
    }

    fn images(&self) -> ImageBases<'_> {
        ImageBases {
            store: self.store,
            writer: &self.writer,
            overrides: &self.req.image_overrides,
            materials: &self.materials,
        }
    }

    /// Runs node `id`; `deps` holds its dependencies' outputs by node, the steps see them by stage position.
    fn run_stage(&self, id: usize, deps: &HashMap<usize, StageOut>) -> Result<StageOut, BuildError> {
        let by_pos: HashMap<usize, StageOut> = self.nodes[id]
            .deps
            .iter()
            .filter_map(|(pos, n)| deps.get(n).map(|o| (*pos, o.clone())))
            .collect();
        let r = self.run_stage_inner(id, &by_pos);
        if let Err(e) = &r {
            self.progress.event(Event::Info {
                message: format!("stage {} failed: {e}", self.stage_name(id)),
            });
        }
        r
    }

    /// The stage's name; with several targets, after its platform (`linux/arm64 build`).
    fn stage_name(&self, id: usize) -> String {
        let n = &self.nodes[id];
        let st = &self.graphs[n.graph].stages[n.pos];
        let name = st.name.clone().unwrap_or_else(|| format!("stage-{}", st.index));
        if self.graphs.len() > 1 {
            format!("{} {name}", n.platform)
        } else {
            name
        }
    }

    fn run_stage_inner(
        &self,
        node_id: usize,
        deps: &HashMap<usize, StageOut>,
    ) -> Result<StageOut, BuildError> {
        let node = &self.nodes[node_id];
        let (pos, graph, platform) = (node.pos, &self.graphs[node.graph], &node.platform);
        let stage = &graph.stages[pos];
        let from_line = stage.from.span.start.line as usize;
        let (config, layers, key) = match &stage.base {
            Base::Scratch => {
                let mut c = ImageConfig::scratch();
                c.set_platform(platform);
                c.config_mut().working_dir = Some("/".into());
                // Image bases differ by config digest; scratch is the one base the platform must key.
                (c, Vec::new(), base_key(&format!("scratch {platform}")))
            }
            Base::Stage(i) => {
                let out = deps
                    .get(i)
                    .ok_or(BuildError::DependencyFailed { stage: *i })?
                    .clone();
                (out.config, out.layers, out.key)
            }
            Base::Image(name) => {
                let id = self.next_step_id();
                self.progress.event(Event::Step {
                    id,
                    stage: self.stage_name(node_id),
                    // BuildKit's numbering: an image base is step 1 of its stage.
                    index: 1,
                    total: stage.steps.len() + 1,
                    line: from_line,
                    text: format!("FROM {name}"),
                });
                let (img, layers) = self
                    .images()
                    .load(name, platform)
                    .map_err(|e| e.at_line(from_line))?;
                self.progress.event(Event::Done { id, seconds: 0.0 });
                let key = base_key(&img.config_digest.to_string());
                (img.config, layers, key)
            }
        };
        let base_env = config
            .config
            .as_ref()
            .map(|c| super::meta::env_pairs(&c.env))
            .unwrap_or_default();
        // Only an image base's triggers run (BuildKit's rule); a stage base passes its own on.
        let triggers = match (&stage.base, &stage.triggers) {
            (Base::Image(_), Some(known)) => known.clone(),
            (Base::Image(name), None) => parse_triggers(name, &config, stage.from.span, self.escape)?,
            _ => Vec::new(),
        };
        // The graph's own expansion assumed an empty base ENV (right for scratch and stage bases).
        let steps = if triggers.is_empty() && (base_env.is_empty() || !matches!(stage.base, Base::Image(_))) {
            stage.steps.clone()
        } else {
            let image = match &stage.base {
                Base::Image(n) => n.clone(),
                _ => String::new(),
            };
            graph
                .expand_stage_with(pos, base_env, &triggers)
                .map_err(|e| match e {
                    StageExpandError::Trigger { trigger, source } => BuildError::Trigger {
                        line: from_line,
                        trigger,
                        image,
                        source: Box::new(BuildError::Parse(Box::new(source))),
                    },
                    StageExpandError::Stage(e) => BuildError::Parse(Box::new(e)),
                })?
                .0
        };
        let base_layers = layers.len();
        let mut state = StageState::new(config, layers, key);
        // A child consumes its base's triggers (they run as its first steps).
        if matches!(stage.base, Base::Image(_)) {
            state.config.config_mut().on_build = None;
        }
        // Steps count from 2 after an image base, which was step 1 (as BuildKit numbers them).
        let from_image = usize::from(matches!(stage.base, Base::Image(_)));
        let total = steps.len() + from_image;
        let no_cache = self.req.no_cache || uncached(self.req, stage);
        let images = self.images();
        let ctx = StepCtx {
            store: self.store,
            writer: &self.writer,
            cache: &self.cache,
            progress: self.progress,
            executor: self.executor,
            context: &self.context,
            binds: &self.binds,
            images: &images,
            stages: deps,
            settings: &self.settings,
            platform,
            no_cache,
        };
        let runner = StepRunner { ctx: &ctx };
        for (i, step) in steps.iter().enumerate() {
            let started = Instant::now();
            let id = self.next_step_id();
            let line = step.instruction.span.start.line as usize;
            self.progress.event(Event::Step {
                id,
                stage: self.stage_name(node_id),
                index: i + 1 + from_image,
                total,
                line,
                text: super::meta::step_text(step, &self.settings.source),
            });
            match runner.execute(&mut state, step, id) {
                Ok(None) => self.progress.event(Event::Done {
                    id,
                    seconds: started.elapsed().as_secs_f64(),
                }),
                Ok(Some(cached)) => {
                    let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
                    if cached {
                        c.1 += 1;
                        self.progress.event(Event::Cached { id });
                    } else {
                        c.0 += 1;
                        self.progress.event(Event::Done {
                            id,
                            seconds: started.elapsed().as_secs_f64(),
                        });
                    }
                }
                Err(e) => {
                    let e = match (&step.trigger, &stage.base) {
                        (Some(trigger), Base::Image(image)) => BuildError::Trigger {
                            line,
                            trigger: trigger.clone(),
                            image: image.clone(),
                            source: Box::new(e),
                        },
                        _ => e.at_line(line),
                    };
                    self.progress.event(Event::Failed {
                        id,
                        error: e.to_string_chain(),
                    });
                    return Err(e);
                }
            }
        }
        Ok(StageOut {
            config: state.config,
            layers: state.layers,
            key: state.key,
            base_layers,
        })
    }

    /// Waits for the target's layers, applies build-level labels and squash, writes the image.
    fn finish(&self, mut out: StageOut) -> Result<Image, BuildError> {
        self.progress.event(Event::Info {
            message: if self.graphs.len() > 1 {
                format!("writing layers ({})", out.config.platform())
            } else {
                "writing layers".into()
            },
        });
        let mut descs: Vec<LayerDesc> = Vec::with_capacity(out.layers.len());
        for l in &out.layers {
            descs.push(l.wait()?);
        }
        if self.req.squash && out.layers.len() > out.base_layers + 1 {
            let new = &out.layers[out.base_layers..];
            let squashed = self.writer.squash(new)?;
            descs.truncate(out.base_layers);
            descs.push(squashed);
            // History: keep the base's entries, then one entry for the squashed layer.
            let base_hist = out.config.history.len() - count_new_history(&out.config, out.base_layers);
            let mut h = out.config.history[..base_hist].to_vec();
            h.push(super::meta::history(
                &self.settings.created,
                "lamina build --squash".into(),
                false,
            ));
            out.config.history = h;
        }
        if !self.req.labels.is_empty() {
            let cc = out.config.config_mut();
            for (k, v) in &self.req.labels {
                cc.labels.insert(k.clone(), v.clone());
            }
        }
        out.config.rootfs.kind = "layers".into();
        out.config.rootfs.diff_ids = descs.iter().map(|d| d.diff_id.clone()).collect();
        out.config.created = Some(match self.settings.epoch {
            Some(_) => self.settings.created.clone(),
            None => super::meta::fill_history_times(&mut out.config.history)
                .unwrap_or_else(|| self.settings.created.clone()),
        });
        let _lock = self.store.lock_shared().map_err(|source| BuildError::Store {
            source: Box::new(source),
        })?;
        self.store
            .write_image(&out.config, &descs)
            .map_err(|source| BuildError::Store {
                source: Box::new(source),
            })
    }
}

fn count_new_history(cfg: &ImageConfig, base_layers: usize) -> usize {
    // History entries after the one that produced the base's last layer.
    let mut seen = 0;
    for (i, h) in cfg.history.iter().enumerate() {
        if seen == base_layers {
            return cfg.history.len() - i;
        }
        if !h.empty_layer {
            seen += 1;
        }
    }
    0
}

/// Tags `image` with every reference in `tags`.
pub fn tag_image(store: &Store, image: &Image, tags: &[Reference]) -> Result<(), BuildError> {
    for t in tags {
        store
            .set_tag(t, image.descriptor())
            .map_err(|source| BuildError::Store {
                source: Box::new(source),
            })?;
    }
    Ok(())
}
