//! A build's plan: its Dockerfile parsed once, and from that parse the stage graph of every target
//! platform, with the ONBUILD triggers of the image bases the store has. Callers ask the plan what the
//! build needs before it runs — the entitlements its RUN steps need, the images to pull (those the
//! triggers name too) — and then run it with [`build_plan`](super::build::build_plan).
//!
//! Triggers are known once their base is in the store, so planning and pulling alternate: list the
//! images, pull them, [`Plan::add_triggers`]; a trigger can name an image to pull, or a stage of this
//! Dockerfile, which then becomes a dependency (with its own base to pull). BuildKit's dockerfile2llb
//! loops the same way (`resolveStages` until no trigger adds a dependency).

use std::collections::BTreeMap;

use lamina_store::Store;
use lamina_store::config::ImageConfig;

use super::BuildError;
use super::build::{BuildRequest, target_platforms};
use super::platforms;
use crate::dockerfile::graph::{Platform, Ref, Triggers};
use crate::dockerfile::{self, Base, BuildGraph, Dockerfile, Kind, Network, Security, Span};

/// See the module docs.
pub struct Plan {
    dockerfile: Dockerfile,
    pub(super) targets: Vec<Platform>,
    pub(super) graphs: Vec<BuildGraph>,
    /// Per target: the triggers of each image base loaded so far, by name as the stage has it.
    triggers: Vec<BTreeMap<String, Triggers>>,
}

impl Plan {
    /// Parses `req.dockerfile` (the build's one parse) and makes each target's graph; no trigger is
    /// known yet ([`Plan::add_triggers`]).
    pub fn new(req: &BuildRequest) -> Result<Plan, BuildError> {
        let dockerfile = dockerfile::parse(&req.dockerfile, &req.dockerfile_name)
            .map_err(|e| BuildError::Parse(Box::new(e)))?;
        Plan::from_parsed(dockerfile, req)
    }

    /// [`Plan::new`] from `req.dockerfile` already parsed (by a caller that read the parse first, e.g.
    /// for build checks), so the build still parses it once.
    pub fn from_parsed(dockerfile: Dockerfile, req: &BuildRequest) -> Result<Plan, BuildError> {
        let targets = target_platforms(req)?;
        let mut plan = Plan {
            dockerfile,
            triggers: vec![BTreeMap::new(); targets.len()],
            targets,
            graphs: Vec::new(),
        };
        plan.graphs = plan.make_graphs(req)?;
        Ok(plan)
    }

    fn make_graphs(&self, req: &BuildRequest) -> Result<Vec<BuildGraph>, BuildError> {
        self.targets
            .iter()
            .zip(&self.triggers)
            .map(|(target, triggers)| {
                let opts = dockerfile::BuildOptions {
                    target: req.target.clone(),
                    build_args: req.build_args.clone(),
                    platform: target.clone(),
                    named_contexts: req.named_contexts.clone(),
                    triggers: triggers.clone(),
                    ..Default::default()
                };
                BuildGraph::new(&self.dockerfile, &opts).map_err(|e| BuildError::Parse(Box::new(e)))
            })
            .collect()
    }

    /// The Dockerfile's escape character (ONBUILD triggers are parsed with it).
    pub fn escape(&self) -> char {
        self.dockerfile.directives.escape
    }

    /// `RUN --network=host` and `RUN --security=insecure` are entitlements (BuildKit's `network.host`,
    /// `security.insecure`): refused, naming the line, unless allowed. The Dockerfile's own RUNs and those
    /// of the triggers known so far are checked.
    pub fn check_entitlements(&self, network_host: bool, security_insecure: bool) -> Result<(), BuildError> {
        let file = &self.dockerfile.file;
        let own = self.dockerfile.instructions.iter();
        let triggers = self
            .triggers
            .iter()
            .flat_map(|t| t.values().flatten().map(|(i, _)| i));
        for ins in own.chain(triggers) {
            let Kind::Run {
                network, security, ..
            } = &ins.kind
            else {
                continue;
            };
            let line = ins.span.start.line as usize;
            if !network_host && *network == Some(Network::Host) {
                return Err(BuildError::Entitlement {
                    file: file.clone(),
                    line,
                    flag: "network=host",
                    entitlement: "network.host",
                });
            }
            if !security_insecure && *security == Some(Security::Insecure) {
                return Err(BuildError::Entitlement {
                    file: file.clone(),
                    line,
                    flag: "security=insecure",
                    entitlement: "security.insecure",
                });
            }
        }
        Ok(())
    }

    /// Images the build reads from (FROM, COPY --from, RUN --mount from=, and the `--from`s of known
    /// ONBUILD triggers that name no stage), each with the platform it is needed for (`os/arch[/variant]`,
    /// the stage's), sorted.
    pub fn external_images(&self) -> Result<Vec<(String, String)>, BuildError> {
        let mut out = Vec::new();
        for (graph, target) in self.graphs.iter().zip(&self.targets) {
            let platforms = platforms::stage_platforms(graph, target)?;
            for (st, p) in graph.stages.iter().zip(&platforms) {
                let p = p.to_string();
                if let Base::Image(n) = &st.base {
                    out.push((n.clone(), p.clone()));
                }
                let refs = st
                    .steps
                    .iter()
                    .flat_map(|s| s.copy_from.iter().chain(s.mount_from.iter().flatten()))
                    .chain(st.trigger_from.values());
                for r in refs {
                    if let Ref::Image(n) = r {
                        out.push((n.clone(), p.clone()));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Reads the ONBUILD triggers of the image bases now in `store` that weren't read yet (`req`'s image
    /// overrides say which pull a base is, as in the build) and remakes the graphs with them. True when the
    /// graphs changed: then they may need more images ([`Plan::external_images`]) — pull those and call
    /// this again. Bases not in the store yet are left for a later call (or the build's error).
    pub fn add_triggers(&mut self, store: &Store, req: &BuildRequest) -> Result<bool, BuildError> {
        let mut changed = false;
        for (g, (graph, target)) in self.graphs.iter().zip(&self.targets).enumerate() {
            let platforms = platforms::stage_platforms(graph, target)?;
            for (st, platform) in graph.stages.iter().zip(&platforms) {
                let Base::Image(name) = &st.base else { continue };
                if self.triggers[g].contains_key(name) {
                    continue;
                }
                let Some(config) = base_config(store, req, name, platform) else {
                    continue;
                };
                let parsed = parse_triggers(name, &config, st.from.span, self.dockerfile.directives.escape)?;
                changed |= !parsed.is_empty();
                self.triggers[g].insert(name.clone(), parsed);
            }
        }
        if changed {
            self.graphs = self.make_graphs(req)?;
        }
        Ok(changed)
    }
}

/// The config of base `name` for `platform` if the store has it: the override's pull, else the tag.
fn base_config(store: &Store, req: &BuildRequest, name: &str, platform: &Platform) -> Option<ImageConfig> {
    let digest = match req.image_overrides.get(&(name.to_string(), platform.to_string())) {
        Some(d) => d.clone(),
        None => store.resolve(name).ok()?.digest().clone(),
    };
    Some(store.load_image(&digest).ok()?.config)
}

/// The ONBUILD triggers of base image `image` (its config), each parsed on its own with the Dockerfile's
/// escape character, with its text. `from` is the FROM's span: a trigger has no line of its own in the
/// Dockerfile, so it takes the FROM's (for errors and entitlement checks). BuildKit refuses `ONBUILD`,
/// `FROM` and `MAINTAINER` as triggers.
pub(super) fn parse_triggers(
    image: &str,
    config: &ImageConfig,
    from: Span,
    escape: char,
) -> Result<Triggers, BuildError> {
    let line = from.start.line as usize;
    let texts = config
        .config
        .as_ref()
        .and_then(|c| c.on_build.as_deref())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let parsed =
            dockerfile::parse_trigger(text, "ONBUILD trigger", escape).map_err(|e| BuildError::Trigger {
                line,
                trigger: text.clone(),
                image: image.to_string(),
                source: Box::new(BuildError::Parse(Box::new(e))),
            })?;
        for mut ins in parsed {
            (ins.span, ins.keyword_span) = (from, from);
            if let "ONBUILD" | "FROM" | "MAINTAINER" = ins.keyword {
                return Err(BuildError::TriggerNotAllowed {
                    line,
                    trigger: text.clone(),
                    image: image.to_string(),
                    keyword: ins.keyword,
                });
            }
            out.push((ins, text.clone()));
        }
    }
    Ok(out)
}
