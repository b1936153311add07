//! A build's platforms: the targets `--platform a,b` asks for, the platform of each stage (BuildKit's
//! rule), and the plan that joins one stage graph per target into one set of solver nodes.
//!
//! The front end expands a Dockerfile once per target platform (TARGETARCH and friends differ). Nodes are
//! keyed by content ([`node_key`](super::node_key)): a stage whose expansion, platform and inputs are the
//! same as another's — in two targets' graphs (typically `FROM --platform=$BUILDPLATFORM` that reads no
//! TARGET* arg), or twice in one graph under two names — becomes one node, so it runs once.

use std::collections::HashMap;

use lamina_store::Digest;

use super::BuildError;
use super::node_key::stage_key;
use super::solve::Node;
use crate::dockerfile::graph::Platform;
use crate::dockerfile::{Base, BuildGraph, Stage};

/// One stage of one target's graph, as the solver runs it.
#[derive(Clone, Debug)]
pub struct StageNode {
    /// The target (index into the build's graphs) whose graph holds the stage.
    pub graph: usize,
    /// Its position in that graph's stages.
    pub pos: usize,
    pub platform: Platform,
    /// (position in the graph, node) of each stage it depends on.
    pub deps: Vec<(usize, usize)>,
    /// Its content key: every stage with this key is this node.
    pub key: Digest,
}

/// `--platform`'s comma-separated list, normalised and without repeats; the host's when not given.
pub fn parse_targets(spec: Option<&str>) -> Result<Vec<Platform>, BuildError> {
    let Some(spec) = spec else {
        return Ok(vec![Platform::host()]);
    };
    let mut out: Vec<Platform> = Vec::new();
    for p in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = Platform::parse(p).map_err(|_| BuildError::Platform { platform: p.into() })?;
        if !out.iter().any(|o| o.to_string() == parsed.to_string()) {
            out.push(parsed);
        }
    }
    if out.is_empty() {
        return Err(BuildError::Platform {
            platform: spec.into(),
        });
    }
    Ok(out)
}

/// The platform of each stage: its `FROM --platform`, else (FROM another stage) that stage's, else the
/// target platform. BuildKit's rule, so `FROM --platform=$BUILDPLATFORM` stages run on the host.
pub fn stage_platforms(graph: &BuildGraph, target: &Platform) -> Result<Vec<Platform>, BuildError> {
    let mut out: Vec<Platform> = Vec::with_capacity(graph.stages.len());
    for st in &graph.stages {
        let p = match (&st.platform, &st.base) {
            (Some(p), _) => Platform::parse(p).map_err(|_| BuildError::Platform { platform: p.clone() })?,
            (None, Base::Stage(i)) => out[*i].clone(),
            (None, _) => target.clone(),
        };
        out.push(p);
    }
    Ok(out)
}

/// The nodes of every target's graph, shared stages merged, and each target's final node. Stages
/// `uncached` says are built without the cache (`--no-cache-filter`, by name) never share a node with
/// stages that use it.
pub fn plan(
    graphs: &[BuildGraph],
    targets: &[Platform],
    uncached: &dyn Fn(&Stage) -> bool,
) -> Result<(Vec<StageNode>, Vec<usize>), BuildError> {
    let mut nodes: Vec<StageNode> = Vec::new();
    let mut seen: HashMap<Digest, usize> = HashMap::new();
    let mut tops = Vec::with_capacity(graphs.len());
    for (g, (graph, target)) in graphs.iter().zip(targets).enumerate() {
        let platforms = stage_platforms(graph, target)?;
        let mut ids: Vec<usize> = Vec::with_capacity(graph.stages.len());
        let mut keys: Vec<Digest> = Vec::with_capacity(graph.stages.len());
        for (pos, st) in graph.stages.iter().enumerate() {
            // Stages come dependencies first, so every dependency has its node already.
            let deps: Vec<(usize, usize)> = st
                .deps
                .iter()
                .filter_map(|d| ids.get(*d).map(|n| (*d, *n)))
                .collect();
            // Two stages are one node when everything a step reads is the same: the expanded stage
            // (steps, args, env), its platform and the content of the stages it reads from.
            let mut key = stage_key(st, &platforms[pos], &|d| keys[d].clone());
            if uncached(st) {
                key = Digest::sha256_of(format!("{key} without the cache").as_bytes());
            }
            let id = *seen.entry(key.clone()).or_insert_with(|| {
                nodes.push(StageNode {
                    graph: g,
                    pos,
                    platform: platforms[pos].clone(),
                    deps: deps.clone(),
                    key: key.clone(),
                });
                nodes.len() - 1
            });
            ids.push(id);
            keys.push(key);
        }
        let top = ids
            .last()
            .copied()
            .ok_or(BuildError::DependencyFailed { stage: 0 })?;
        tops.push(top);
    }
    Ok((nodes, tops))
}

/// The solver's view of the plan.
pub fn solver_nodes(nodes: &[StageNode]) -> Vec<Node> {
    nodes
        .iter()
        .map(|n| Node {
            deps: n.deps.iter().map(|(_, id)| *id).collect(),
        })
        .collect()
}
