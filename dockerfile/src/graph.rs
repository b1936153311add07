//! Stages and their dependencies, with BuildKit's ARG/ENV scoping and build-time expansion applied.
//!
//! Scoping: ARGs before the first FROM are global and visible only to FROM lines (plus the automatic
//! platform ARGs) unless a stage redeclares them with `ARG NAME`; a stage sees an ARG from its
//! declaring line on; `--build-arg` overrides defaults; ENV wins over an ARG of the same name; all
//! words of one ENV/ARG instruction are expanded against the state before it (`ENV a=1 b=$a` sees
//! the old `a`). RUN/CMD/ENTRYPOINT stay unexpanded — their shell does that with [`Step::run_env`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::ast::*;
use super::error::{ErrorKind, ParseError, Warning};
use super::expand::Expander;
use super::source::{Source, Span};
use super::values::{self, suggest};

/// Default PATH of an image without one (what BuildKit gives `FROM scratch`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build args usable in RUN without an ARG line; never reported as unused.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Environment or ARG values in order of definition.
pub type Env = Vec<(String, String)>;
/// A stage's steps and the ENV at its end.
pub type ExpandedStage = (Vec<Step>, Env);
type Args = Vec<(String, Option<String>)>;
/// A stage body expanded: steps, final ENV, final ARGs.
type Expanded = (Vec<Step>, Shared<Env>, Shared<Args>);
/// Per stage: steps, final ENV, dependencies, final ARGs, inherited ARGs, ONBUILD trigger references.
type Visited = Vec<
    Option<(
        Vec<Step>,
        Shared<Env>,
        Vec<usize>,
        Shared<Args>,
        Shared<Args>,
        BTreeMap<String, Ref>,
    )>,
>;
/// ONBUILD triggers of one base image: each parsed instruction with the trigger's text.
pub type Triggers = Vec<(Instruction, String)>;

/// A list that consecutive steps share: most steps change neither ENV nor ARGs, so a step holds the
/// list of the last ENV/ARG line instead of a copy (a chain of long stages would otherwise copy every
/// variable once per step). Reads like a slice.
#[derive(Debug, PartialEq, Eq)]
pub struct Shared<T>(Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared(Arc::default())
    }
}

impl<T: Clone> Shared<T> {
    pub fn new(v: T) -> Self {
        Shared(Arc::new(v))
    }

    /// Copies the list first if another step holds it.
    fn make_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }

    /// The list, copied only if another step holds it.
    pub fn into_inner(self) -> T {
        Arc::unwrap_or_clone(self.0)
    }
}

impl<E> std::ops::Deref for Shared<Vec<E>> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.0
    }
}

impl<'a, E> IntoIterator for &'a Shared<Vec<E>> {
    type Item = &'a E;
    type IntoIter = std::slice::Iter<'a, E>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<E: PartialEq> PartialEq<Vec<E>> for Shared<Vec<E>> {
    fn eq(&self, other: &Vec<E>) -> bool {
        *self.0 == *other
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The one platform type (`lamina_oci::Platform`), re-exported where the front end always had it.
pub use lamina_oci::Platform;

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Stage name to build; the last stage when `None`.
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub platform: Platform,
    pub build_platform: Platform,
    /// Named contexts (`--build-context NAME=…`): an image reference standing in for NAME wherever FROM,
    /// `COPY --from` or `RUN --mount from=` names it and no stage of that name comes first. The caller
    /// turns directories and OCI layouts into images; the graph only substitutes names.
    pub named_contexts: BTreeMap<String, String>,
    /// The ONBUILD triggers of image bases, by the name a stage's [`Base::Image`] holds (each parsed on
    /// its own with [`crate::parse_trigger`]). A trigger's `COPY --from=NAME` or `RUN --mount from=NAME`
    /// names a stage of this Dockerfile when one is called NAME (or has that index), else an image — as
    /// BuildKit resolves them — and such a stage becomes a dependency. Bases not listed run their
    /// triggers as the engine finds them, their `--from`s taken as images.
    pub triggers: BTreeMap<String, Triggers>,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            target: None,
            build_args: BTreeMap::new(),
            platform: Platform::host(),
            build_platform: Platform::host(),
            named_contexts: BTreeMap::new(),
            triggers: BTreeMap::new(),
        }
    }
}

/// A stage's starting point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    Scratch,
    /// An image reference, expanded, as written (not normalized).
    Image(String),
    /// Another stage: its position in [`BuildGraph::stages`].
    Stage(usize),
}

/// Where `COPY --from` / `RUN --mount from=` reads from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ref {
    Stage(usize),
    Image(String),
}

/// One instruction ready to execute.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Expanded where BuildKit expands at build time; RUN/CMD/ENTRYPOINT/HEALTHCHECK/SHELL commands as written.
    pub instruction: Instruction,
    /// ENV in effect before this step (base image env, then the stage's ENV lines); shared by the steps
    /// between two ENV lines.
    pub env: Shared<Vec<(String, String)>>,
    /// ARGs declared in the stage so far with their values (`None`: declared, no value); shared like `env`.
    pub args: Shared<Vec<(String, Option<String>)>>,
    /// ARGs whose values this step's expansion read — part of its cache key.
    pub used_args: Vec<String>,
    /// For RUN: the process environment BuildKit uses (ARGs with values, proxy build args, then ENV);
    /// shared by the RUNs between two ENV/ARG lines.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub run_env: Shared<Vec<(String, String)>>,
    /// COPY/ADD `--from` resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<Ref>,
    /// RUN `--mount from=` resolved, aligned with the RUN's mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_from: Vec<Option<Ref>>,
    /// For an ONBUILD trigger of the base image: the trigger as stored in the image config. Its
    /// instruction's span is the stage's FROM (the trigger has no line of its own in the Dockerfile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Variables this step's expansion read that nothing set or declared (nor a `--build-arg` gave):
    /// BuildKit's UndefinedVar, meaningful once the base image's ENV is known.
    #[serde(skip)]
    pub undefined_vars: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Index of the stage in the Dockerfile (0-based), what `--from=0` means.
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// The FROM line, expanded.
    pub from: Instruction,
    pub from_used_args: Vec<String>,
    /// `--platform` of FROM, expanded.
    pub platform: Option<String>,
    /// Positions in [`BuildGraph::stages`] this stage needs (base, COPY --from, mount from).
    pub deps: Vec<usize>,
    /// Steps expanded assuming an empty base-image ENV (a stage base passes its ENV on);
    /// call [`BuildGraph::expand_stage`] with the real image ENV when building.
    pub steps: Vec<Step>,
    /// ENV at the end of the stage under the same assumption.
    pub final_env: Vec<(String, String)>,
    /// What the `--from` names of the base image's ONBUILD triggers ([`BuildOptions::triggers`]) refer
    /// to, by name as written; stages among them are in [`Stage::deps`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub trigger_from: BTreeMap<String, Ref>,
    /// The base image's triggers when [`BuildOptions::triggers`] listed them (`None`: not known).
    #[serde(skip)]
    pub triggers: Option<Triggers>,
    #[serde(skip)]
    instructions: Vec<Instruction>,
    #[serde(skip)]
    inherited_args: Shared<Args>,
}

/// The stages a target needs, dependencies first; the target is last.
#[derive(Debug, Clone, Serialize)]
pub struct BuildGraph {
    pub stages: Vec<Stage>,
    /// Global ARGs (before the first FROM) with their resolved values.
    pub global_args: Vec<(String, Option<String>)>,
    /// `SOURCE_DATE_EPOCH` from the build args, when valid.
    pub source_date_epoch: Option<i64>,
    pub warnings: Vec<Warning>,
    #[serde(skip)]
    ctx: Ctx,
}

#[derive(Debug, Clone, Default)]
struct Ctx {
    file: String,
    source: String,
    escape: char,
    build_args: BTreeMap<String, String>,
    globals: Vec<(String, Option<String>)>,
    auto_args: Vec<(String, String)>,
}

impl Ctx {
    fn err(&self, span: Span, kind: ErrorKind) -> ParseError {
        ParseError::at(&Source::new(&self.source), &self.file, span, kind)
    }

    /// What global ARG defaults and FROM lines see: the platform ARGs, then the global ARGs so far.
    fn global_scope(&self) -> (Args, Vars) {
        let declared: Args = self
            .auto_args
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .chain(self.globals.iter().cloned())
            .collect();
        let vars = args_as_vars(&declared);
        (declared, vars)
    }
}

/// A variable of the build state: ENV and ARG (with a value) write the same namespace and the latest
/// write wins — `ENV X=a` then `ARG X=b` makes `$X` b (docker 20.10's BuildKit does this; the image
/// config keeps X=a). `true` marks values that came from an ARG.
type Vars = Vec<(String, String, bool)>;

/// The variables visible to an expansion and the ARG names it read.
struct Scope<'a> {
    vars: &'a [(String, String, bool)],
    declared: &'a [(String, Option<String>)],
    used: BTreeSet<String>,
    /// Names read that are neither set nor declared (BuildKit's UndefinedVar), in order of first use.
    undefined: Vec<String>,
}

impl<'a> Scope<'a> {
    fn new(vars: &'a [(String, String, bool)], declared: &'a [(String, Option<String>)]) -> Scope<'a> {
        Scope {
            vars,
            declared,
            used: BTreeSet::new(),
            undefined: Vec::new(),
        }
    }

    fn get(&mut self, name: &str) -> Option<String> {
        if let Some((_, v, is_arg)) = self.vars.iter().find(|(k, _, _)| k == name) {
            if *is_arg {
                self.used.insert(name.to_string());
            }
            return Some(v.clone());
        }
        // A declared ARG without a value is unset, but its (un)setness is still an input of the step.
        if self.declared.iter().any(|(k, _)| k == name) {
            self.used.insert(name.to_string());
        } else if !self.undefined.iter().any(|u| u == name) {
            self.undefined.push(name.to_string());
        }
        None
    }
}

fn args_as_vars(args: &[(String, Option<String>)]) -> Vars {
    args.iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v, true)))
        .collect()
}

fn set_var(vars: &mut Vars, k: &str, v: &str, is_arg: bool) {
    match vars.iter_mut().find(|(n, _, _)| n == k) {
        Some(e) => {
            e.1 = v.to_string();
            e.2 = is_arg;
        }
        None => vars.push((k.to_string(), v.to_string(), is_arg)),
    }
}

fn set(list: &mut Vec<(String, String)>, k: String, v: String) {
    match list.iter_mut().find(|(n, _)| *n == k) {
        Some(e) => e.1 = v,
        None => list.push((k, v)),
    }
}

fn set_arg(list: &mut Vec<(String, Option<String>)>, k: String, v: Option<String>) {
    match list.iter_mut().find(|(n, _)| *n == k) {
        Some(e) => e.1 = v,
        None => list.push((k, v)),
    }
}

impl BuildGraph {
    pub fn new(df: &Dockerfile, opts: &BuildOptions) -> Result<BuildGraph, ParseError> {
        let (t, b) = (&opts.platform, &opts.build_platform);
        let auto_args = vec![
            ("TARGETPLATFORM".to_string(), t.to_string()),
            ("TARGETOS".into(), t.os.clone()),
            ("TARGETARCH".into(), t.architecture.clone()),
            ("TARGETVARIANT".into(), t.variant.clone().unwrap_or_default()),
            ("BUILDPLATFORM".into(), b.to_string()),
            ("BUILDOS".into(), b.os.clone()),
            ("BUILDARCH".into(), b.architecture.clone()),
            ("BUILDVARIANT".into(), b.variant.clone().unwrap_or_default()),
        ];
        let mut ctx = Ctx {
            file: df.file.clone(),
            source: df.source.clone(),
            escape: df.directives.escape,
            build_args: opts.build_args.clone(),
            globals: Vec::new(),
            auto_args,
        };
        let mut consumed: BTreeSet<String> = BTreeSet::new();

        // Global ARGs: each sees the ones before it (even in the same ARG line) and the platform ARGs.
        let mut it = df.instructions.iter().peekable();
        while let Some(ins) = it.next_if(|i| !matches!(i.kind, Kind::From { .. })) {
            if let Kind::Arg { args } = &ins.kind {
                for a in args {
                    let (declared, vars) = ctx.global_scope();
                    let mut scope = Scope::new(&vars, &declared);
                    let name = ctx.expand_word(&a.name, &mut scope)?;
                    let value = match ctx.build_args.get(&name) {
                        Some(v) => Some(v.clone()),
                        None => match &a.default {
                            Some(d) => Some(ctx.expand_word(d, &mut scope)?),
                            None => None,
                        },
                    };
                    consumed.insert(name.clone());
                    set_arg(&mut ctx.globals, name, value);
                }
            }
        }

        // Split into stages.
        struct Raw<'a> {
            from: &'a Instruction,
            body: Vec<&'a Instruction>,
        }
        let mut raws: Vec<Raw<'_>> = Vec::new();
        for ins in it {
            if matches!(ins.kind, Kind::From { .. }) {
                raws.push(Raw {
                    from: ins,
                    body: Vec::new(),
                });
            } else if let Some(r) = raws.last_mut() {
                r.body.push(ins);
            }
        }
        let names: Vec<Option<String>> = raws
            .iter()
            .map(|r| match &r.from.kind {
                Kind::From { name, .. } => name.as_ref().map(|n| n.value.clone()),
                _ => None,
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            if let Some(n) = n
                && names[..i].iter().any(|m| m.as_deref() == Some(n.as_str()))
                && let Kind::From { name: Some(w), .. } = &raws[i].from.kind
            {
                return Err(ctx.err(w.span, ErrorKind::DuplicateStageName { name: n.clone() }));
            }
        }
        let target = match &opts.target {
            None => raws.len() - 1,
            Some(t) => {
                let lt = t.to_ascii_lowercase();
                names
                    .iter()
                    .position(|n| n.as_deref() == Some(lt.as_str()))
                    .ok_or_else(|| {
                        ParseError::whole(
                            &ctx.file,
                            ErrorKind::UnknownTarget {
                                name: t.clone(),
                                suggestion: suggest(t, names.iter().flatten().map(String::as_str)),
                            },
                        )
                    })?
            }
        };

        // Expand each FROM with the global scope; resolve its base.
        // FROM names an earlier stage, else an image: `FROM alpine AS alpine` pulls alpine.
        let find_stage = |name: &str, current: usize| -> Option<usize> {
            let l = name.to_ascii_lowercase();
            names[..current]
                .iter()
                .rposition(|n| n.as_deref() == Some(l.as_str()))
        };
        let mut froms = Vec::with_capacity(raws.len());
        let (declared, vars) = ctx.global_scope();
        for (i, r) in raws.iter().enumerate() {
            let mut scope = Scope::new(&vars, &declared);
            let mut from = r.from.clone();
            let Kind::From { image, platform, .. } = &mut from.kind else {
                unreachable!("split on FROM")
            };
            let raw_image = image.value.clone();
            image.value = ctx.expand_word(image, &mut scope)?;
            if image.value.is_empty() {
                return Err(ctx.err(image.span, ErrorKind::BlankBaseName { raw: raw_image }));
            }
            if let Some(p) = platform {
                p.value = ctx.expand_word(p, &mut scope)?;
                if !values::valid_platform(&p.value) {
                    return Err(ctx.err(
                        p.span,
                        ErrorKind::InvalidFlagValue {
                            flag: "platform".into(),
                            value: p.value.clone(),
                            expected: "os/arch[/variant]",
                        },
                    ));
                }
            }
            let base = if image.value.eq_ignore_ascii_case("scratch") {
                Base::Scratch
            } else {
                match find_stage(&image.value, i) {
                    Some(j) => Base::Stage(j),
                    None => match opts.named_contexts.get(&image.value) {
                        Some(r) => Base::Image(r.clone()),
                        None => Base::Image(image.value.clone()),
                    },
                }
            };
            let platform = platform.as_ref().map(|p| p.value.clone());
            froms.push((from, base, platform, scope.used.into_iter().collect::<Vec<_>>()));
        }

        // Expand every stage in Dockerfile order as far as needed to learn its dependencies; a stage used as
        // a base must be expanded first (its ENV carries over), so go depth-first with cycle detection.
        let n = raws.len();
        let mut expanded: Visited = vec![None; n];
        let mut state = vec![0u8; n]; // 0 new, 1 in progress, 2 done
        let mut order: Vec<usize> = Vec::new();
        /// The depth-first walk's inputs and what it fills in.
        struct Walk<'w> {
            ctx: &'w Ctx,
            raws_body: &'w [Vec<Instruction>],
            froms: &'w [(Instruction, Base, Option<String>, Vec<String>)],
            names: &'w [Option<String>],
            named_contexts: &'w BTreeMap<String, String>,
            triggers: &'w BTreeMap<String, Triggers>,
            expanded: &'w mut Visited,
            state: &'w mut Vec<u8>,
            order: &'w mut Vec<usize>,
            consumed: &'w mut BTreeSet<String>,
        }
        fn visit(i: usize, w: &mut Walk<'_>, via: Span) -> Result<(), ParseError> {
            let (ctx, raws_body, froms, names) = (w.ctx, w.raws_body, w.froms, w.names);
            let named = w.named_contexts;
            let label = |j: usize| names[j].clone().unwrap_or_else(|| j.to_string());
            match w.state[i] {
                2 => return Ok(()),
                1 => {
                    // The stages still in progress from `i` on form the cycle.
                    let mut path: Vec<String> = (0..w.state.len())
                        .filter(|&j| w.state[j] == 1 && j != i)
                        .map(label)
                        .collect();
                    path.insert(0, label(i));
                    path.push(label(i));
                    return Err(ctx.err(
                        via,
                        ErrorKind::StageCycle {
                            name: label(i),
                            via: path.join(" -> "),
                        },
                    ));
                }
                _ => {}
            }
            w.state[i] = 1;
            let base_env = match &froms[i].1 {
                Base::Stage(j) => {
                    visit(*j, w, froms[i].0.span)?;
                    w.expanded[*j]
                        .as_ref()
                        .map(|e| (e.1.clone(), e.3.clone()))
                        .unwrap_or_default()
                }
                Base::Scratch => (
                    Shared::new(vec![("PATH".to_string(), DEFAULT_PATH.to_string())]),
                    Shared::default(),
                ),
                Base::Image(_) => (Shared::default(), Shared::default()),
            };
            // A stage built on another stage inherits its ARGs too (observed with docker 20.10 BuildKit).
            let (base_env, base_args) = base_env;
            let (steps, final_env, final_args) = ctx.expand_body(
                &raws_body[i],
                base_env,
                base_args.clone(),
                w.consumed,
                &|name: &str| resolve_ref(name, names, raws_body.len(), named),
            )?;
            let mut deps = Vec::new();
            if let Base::Stage(j) = froms[i].1 {
                deps.push(j);
            }
            for s in &steps {
                let refs = s.copy_from.iter().chain(s.mount_from.iter().flatten());
                for r in refs {
                    if let Ref::Stage(j) = r {
                        if *j == i {
                            return Err(ctx.err(
                                s.instruction.span,
                                ErrorKind::StageCycle {
                                    name: label(i),
                                    via: format!("{} --from refers to its own stage", s.instruction.keyword),
                                },
                            ));
                        }
                        visit(*j, w, s.instruction.span)?;
                        if !deps.contains(j) {
                            deps.push(*j);
                        }
                    }
                }
            }
            // The base image's triggers run first; the stages their `--from`s name are needed too.
            let mut trigger_from = BTreeMap::new();
            if let Base::Image(image) = &froms[i].1
                && let Some(triggers) = w.triggers.get(image)
            {
                for (ins, _) in triggers {
                    for name in from_names(ins) {
                        let Some(r) = resolve_ref(name, names, raws_body.len(), named) else {
                            continue;
                        };
                        if let Ref::Stage(j) = r {
                            if j == i {
                                return Err(ctx.err(
                                    froms[i].0.span,
                                    ErrorKind::StageCycle {
                                        name: label(i),
                                        via: format!("an ONBUILD trigger of {image} refers to this stage"),
                                    },
                                ));
                            }
                            visit(j, w, froms[i].0.span)?;
                            if !deps.contains(&j) {
                                deps.push(j);
                            }
                        }
                        trigger_from.insert(name.to_string(), r);
                    }
                }
            }
            w.expanded[i] = Some((steps, final_env, deps, final_args, base_args, trigger_from));
            w.state[i] = 2;
            w.order.push(i);
            Ok(())
        }
        let mut bodies: Vec<Vec<Instruction>> = raws
            .iter()
            .map(|r| r.body.iter().map(|i| (*i).clone()).collect())
            .collect();
        let target_span = froms[target].0.span;
        visit(
            target,
            &mut Walk {
                ctx: &ctx,
                raws_body: &bodies,
                froms: &froms,
                names: &names,
                named_contexts: &opts.named_contexts,
                triggers: &opts.triggers,
                expanded: &mut expanded,
                state: &mut state,
                order: &mut order,
                consumed: &mut consumed,
            },
            target_span,
        )?;

        // Renumber: positions in `order`.
        let pos_of = |i: usize| order.iter().position(|&o| o == i).unwrap_or(usize::MAX);
        let mut stages = Vec::with_capacity(order.len());
        for &i in &order {
            let (mut steps, final_env, deps, _, inherited_args, mut trigger_from) =
                expanded[i].take().unwrap_or_default();
            let remap = |r: &mut Ref| {
                if let Ref::Stage(j) = r {
                    *j = pos_of(*j);
                }
            };
            for s in &mut steps {
                s.copy_from.iter_mut().for_each(remap);
                s.mount_from.iter_mut().flatten().for_each(remap);
            }
            trigger_from.values_mut().for_each(remap);
            let (from, base, platform, from_used) = froms[i].clone();
            let triggers = match &base {
                Base::Image(image) => opts.triggers.get(image).cloned(),
                _ => None,
            };
            let base = match base {
                Base::Stage(j) => Base::Stage(pos_of(j)),
                b => b,
            };
            stages.push(Stage {
                index: i,
                name: names[i].clone(),
                base,
                from,
                from_used_args: from_used,
                platform,
                deps: deps.into_iter().map(pos_of).collect(),
                steps,
                final_env: final_env.into_inner(),
                trigger_from,
                triggers,
                instructions: std::mem::take(&mut bodies[i]),
                inherited_args,
            });
        }

        let mut warnings = Vec::new();
        let unused: Vec<&String> = ctx
            .build_args
            .keys()
            .filter(|k| {
                !consumed.contains(*k)
                    && !PROXY_ARGS.contains(&k.as_str())
                    && *k != "SOURCE_DATE_EPOCH"
                    && !k.starts_with("BUILDKIT_")
            })
            .collect();
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            warnings.push(Warning::new(
                "UnusedBuildArg",
                format!("one or more build-args [{}] were not consumed", list.join(" ")),
                None,
            ));
        }
        // UndefinedVar where the ENV is known without a base image: stages rooted in scratch.
        for st in &stages {
            let mut root = &st.base;
            while let Base::Stage(j) = root {
                root = &stages[*j].base;
            }
            if *root == Base::Scratch {
                warnings.extend(undefined_var_warnings(&st.steps));
            }
        }
        let source_date_epoch = ctx
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.parse::<i64>().ok());
        Ok(BuildGraph {
            stages,
            global_args: ctx.globals.clone(),
            source_date_epoch,
            warnings,
            ctx,
        })
    }

    /// UndefinedVar of stage `pos` once its base image's ENV is known (`base_env`, as for
    /// [`expand_stage`](Self::expand_stage)); stages rooted in scratch already report it in
    /// [`BuildGraph::warnings`].
    pub fn undefined_vars(
        &self,
        pos: usize,
        base_env: Vec<(String, String)>,
    ) -> Result<Vec<Warning>, ParseError> {
        let (steps, _) = self.expand_stage(pos, base_env)?;
        Ok(undefined_var_warnings(&steps))
    }

    /// The Dockerfile's escape character (for parsing ONBUILD triggers the same way).
    pub fn escape(&self) -> char {
        self.ctx.escape
    }

    /// The target stage (last in [`BuildGraph::stages`]).
    pub fn target(&self) -> &Stage {
        &self.stages[self.stages.len() - 1]
    }

    /// Re-expands stage `pos` on top of the real base ENV (the image config's `Env` as `K=V` pairs split,
    /// or a base stage's final ENV). Returns the steps and the ENV at the end of the stage.
    pub fn expand_stage(
        &self,
        pos: usize,
        base_env: Vec<(String, String)>,
    ) -> Result<ExpandedStage, ParseError> {
        self.expand_stage_with(pos, base_env, &[]).map_err(|e| match e {
            StageExpandError::Stage(e) => e,
            StageExpandError::Trigger { source, .. } => source,
        })
    }

    /// [`expand_stage`](Self::expand_stage) with the base image's ONBUILD `triggers` (each parsed by
    /// [`parse_trigger`](super::parse_trigger), with its text) run first, as BuildKit does: they expand
    /// in the child's scope on the base's ENV, and what they set (ENV, ARG) is seen by the stage's own
    /// instructions. Each trigger step's span is the FROM's.
    pub fn expand_stage_with(
        &self,
        pos: usize,
        base_env: Vec<(String, String)>,
        triggers: &[(Instruction, String)],
    ) -> Result<ExpandedStage, StageExpandError> {
        let stage = &self.stages[pos];
        let mut consumed = BTreeSet::new();
        // A trigger's `--from` was resolved when the graph was made (a stage, then a dependency, or an
        // image); one the graph didn't know of names an image: the scheduler knew no stage for it.
        let from_trigger = |name: &str| {
            Some(
                stage
                    .trigger_from
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Ref::Image(name.to_string())),
            )
        };
        let as_image = |name: &str| Some(Ref::Image(name.to_string()));
        let mut env = Shared::new(base_env);
        let mut args = stage.inherited_args.clone();
        let mut steps = Vec::with_capacity(triggers.len() + stage.steps.len());
        for (ins, text) in triggers {
            let mut ins = ins.clone();
            ins.span = stage.from.span;
            ins.keyword_span = stage.from.span;
            let (mut t, e, a) = self
                .ctx
                .expand_body(
                    std::slice::from_ref(&ins),
                    env,
                    args,
                    &mut consumed,
                    &from_trigger,
                )
                .map_err(|source| StageExpandError::Trigger {
                    trigger: text.clone(),
                    source,
                })?;
            for s in &mut t {
                s.trigger = Some(text.clone());
            }
            steps.extend(t);
            (env, args) = (e, a);
        }
        // Stage references were resolved when the graph was built; they are copied over below.
        let (mut own, env, _) = self
            .ctx
            .expand_body(&stage.instructions, env, args, &mut consumed, &as_image)
            .map_err(StageExpandError::Stage)?;
        for (s, orig) in own.iter_mut().zip(&stage.steps) {
            s.copy_from = orig.copy_from.clone();
            s.mount_from = orig.mount_from.clone();
        }
        steps.extend(own);
        Ok((steps, env.into_inner()))
    }
}

/// Why [`BuildGraph::expand_stage_with`] failed: in an ONBUILD trigger, or in the stage's own lines.
#[derive(Debug, thiserror::Error)]
pub enum StageExpandError {
    #[error("ONBUILD trigger `{trigger}`")]
    Trigger {
        trigger: String,
        #[source]
        source: ParseError,
    },
    #[error(transparent)]
    Stage(ParseError),
}

/// BuildKit's UndefinedVar for each step, with its suggestion from the names the step could see.
fn undefined_var_warnings(steps: &[Step]) -> Vec<Warning> {
    let mut out = Vec::new();
    for step in steps {
        for var in &step.undefined_vars {
            let known = step
                .env
                .iter()
                .map(|(k, _)| k.as_str())
                .chain(step.args.iter().map(|(k, _)| k.as_str()));
            let hint = values::suggest_close(var, known)
                .map(|m| format!(" (did you mean ${m}?)"))
                .unwrap_or_default();
            out.push(Warning::new(
                "UndefinedVar",
                format!("Usage of undefined variable '${var}'{hint}"),
                Some(step.instruction.span),
            ));
        }
    }
    out
}

/// The `--from` names an instruction reads: `COPY --from`, `RUN --mount from=`, as written.
fn from_names(ins: &Instruction) -> Vec<&str> {
    match &ins.kind {
        Kind::Copy(c) => c.from.iter().map(|w| w.value.as_str()).collect(),
        Kind::Run { mounts, .. } => mounts
            .iter()
            .filter_map(|m| m.from.as_ref())
            .map(|w| w.value.as_str())
            .collect(),
        _ => Vec::new(),
    }
}

fn resolve_ref(
    name: &str,
    names: &[Option<String>],
    count: usize,
    named: &BTreeMap<String, String>,
) -> Option<Ref> {
    let l = name.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| n.as_deref() == Some(l.as_str())) {
        return Some(Ref::Stage(i));
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<usize>().ok().filter(|&i| i < count).map(Ref::Stage);
    }
    Some(Ref::Image(
        named.get(name).map_or(name, String::as_str).to_string(),
    ))
}

impl Ctx {
    fn expand_word(&self, w: &Word, scope: &mut Scope<'_>) -> Result<String, ParseError> {
        Expander::new(self.escape)
            .word(&w.value, &mut |n| scope.get(n))
            .map_err(|e| self.err(w.span, ErrorKind::Expand(e)))
    }

    fn expand_in_place(&self, w: &mut Word, scope: &mut Scope<'_>) -> Result<(), ParseError> {
        w.value = self.expand_word(w, scope)?;
        Ok(())
    }

    fn expand_opt(&self, w: &mut Option<Word>, scope: &mut Scope<'_>) -> Result<(), ParseError> {
        if let Some(w) = w {
            self.expand_in_place(w, scope)?;
        }
        Ok(())
    }

    fn resolve_stage_ref(&self, w: &Word, resolve: &dyn Fn(&str) -> Option<Ref>) -> Result<Ref, ParseError> {
        resolve(&w.value).ok_or_else(|| {
            self.err(
                w.span,
                ErrorKind::UnknownStage {
                    name: w.value.clone(),
                    suggestion: Default::default(),
                },
            )
        })
    }

    fn expand_body(
        &self,
        body: &[Instruction],
        base_env: Shared<Env>,
        base_args: Shared<Args>,
        consumed: &mut BTreeSet<String>,
        resolve: &dyn Fn(&str) -> Option<Ref>,
    ) -> Result<Expanded, ParseError> {
        // Copied on write: only ENV/ARG lines make new lists; the steps between share them.
        let mut env = base_env;
        let mut args = base_args;
        let mut vars: Vars = env.iter().map(|(k, v)| (k.clone(), v.clone(), false)).collect();
        for (k, v, _) in args_as_vars(&args) {
            set_var(&mut vars, &k, &v, true);
        }
        // The RUN environment of the current `vars`, made at the first RUN after they change.
        let mut run_env: Option<Shared<Env>> = None;
        let mut steps = Vec::with_capacity(body.len());
        for ins in body {
            let mut out = ins.clone();
            let mut scope = Scope::new(&vars, &args);
            let mut new_env: Vec<(String, String)> = Vec::new();
            let mut new_args: Vec<(String, Option<String>)> = Vec::new();
            let mut copy_from = None;
            let mut mount_from = Vec::new();
            let is_copy = matches!(out.kind, Kind::Copy(_));
            match &mut out.kind {
                Kind::Env { vars } => {
                    for kv in vars.iter_mut() {
                        self.expand_in_place(&mut kv.key, &mut scope)?;
                        self.expand_in_place(&mut kv.value, &mut scope)?;
                        if kv.key.value.is_empty() {
                            return Err(self.err(kv.span, ErrorKind::BlankName { instruction: "ENV" }));
                        }
                        new_env.push((kv.key.value.clone(), kv.value.value.clone()));
                    }
                }
                Kind::Label { labels } => {
                    for kv in labels.iter_mut() {
                        self.expand_in_place(&mut kv.key, &mut scope)?;
                        self.expand_in_place(&mut kv.value, &mut scope)?;
                        if kv.key.value.is_empty() {
                            return Err(self.err(kv.span, ErrorKind::BlankName { instruction: "LABEL" }));
                        }
                    }
                }
                Kind::Arg { args: decls } => {
                    for a in decls.iter_mut() {
                        self.expand_in_place(&mut a.name, &mut scope)?;
                        self.expand_opt(&mut a.default, &mut scope)?;
                        let name = a.name.value.clone();
                        consumed.insert(name.clone());
                        let value = if let Some(v) = self.build_args.get(&name) {
                            Some(v.clone())
                        } else if let Some(d) = &a.default {
                            Some(d.value.clone())
                        } else if let Some((_, g)) = self.globals.iter().find(|(k, _)| *k == name) {
                            g.clone()
                        } else {
                            self.auto_args
                                .iter()
                                .find(|(k, _)| *k == name)
                                .map(|(_, v)| v.clone())
                        };
                        new_args.push((name, value));
                    }
                }
                Kind::Add(c) | Kind::Copy(c) => {
                    for s in c.sources.iter_mut() {
                        if !is_heredoc_word(&s.value, &ins.heredocs) {
                            self.expand_in_place(s, &mut scope)?;
                        }
                    }
                    // BuildKit refuses a URL source for COPY after expansion too (`COPY $URL /`).
                    if is_copy
                        && let Some(url) = c.sources.iter().find(|s| {
                            let v = s.value.to_ascii_lowercase();
                            v.starts_with("http://") || v.starts_with("https://")
                        })
                    {
                        return Err(self.err(url.span, ErrorKind::CopyUrl));
                    }
                    self.expand_in_place(&mut c.dest, &mut scope)?;
                    self.expand_opt(&mut c.from, &mut scope)?;
                    self.expand_opt(&mut c.chown, &mut scope)?;
                    self.expand_opt(&mut c.chmod, &mut scope)?;
                    self.expand_opt(&mut c.checksum, &mut scope)?;
                    for e in c.exclude.iter_mut() {
                        self.expand_in_place(e, &mut scope)?;
                    }
                    if let Some(m) = &c.chmod
                        && !values::valid_chmod(&m.value)
                    {
                        return Err(self.invalid(
                            m,
                            "chmod",
                            "an octal mode (0644) or symbolic mode (u+x,go-w)",
                        ));
                    }
                    if let Some(m) = &c.checksum
                        && !values::valid_checksum(&m.value)
                    {
                        return Err(self.invalid(m, "checksum", "sha256:<64 hex digits>"));
                    }
                    if let Some(f) = &c.from {
                        copy_from = Some(self.resolve_stage_ref(f, resolve)?);
                    }
                    // Heredoc bodies of COPY/ADD: variables expand (quotes are kept), unless the
                    // delimiter was quoted.
                    let raw = Expander {
                        skip_quotes: true,
                        ..Expander::new('\\')
                    };
                    for h in out.heredocs.iter_mut().filter(|h| h.expand) {
                        h.content = raw
                            .word(&h.content, &mut |n| scope.get(n))
                            .map_err(|e| self.err(h.body_span, ErrorKind::Expand(e)))?;
                    }
                }
                Kind::Expose { ports } => {
                    // BuildKit splits each expanded word into fields: `ENV P="80 443"` then `EXPOSE $P`.
                    let mut fields = Vec::with_capacity(ports.len());
                    for p in ports.iter() {
                        let values = Expander::new(self.escape)
                            .words(&p.value, &mut |n| scope.get(n))
                            .map_err(|e| self.err(p.span, ErrorKind::Expand(e)))?;
                        for value in values {
                            if !values::valid_port(&value) {
                                return Err(self.err(p.span, ErrorKind::InvalidPort { value }));
                            }
                            fields.push(Word { value, span: p.span });
                        }
                    }
                    *ports = fields;
                }
                Kind::Volume { paths } => {
                    for p in paths.iter_mut() {
                        self.expand_in_place(p, &mut scope)?;
                    }
                }
                Kind::User { user: w } | Kind::Workdir { path: w } => self.expand_in_place(w, &mut scope)?,
                Kind::Stopsignal { signal } => {
                    self.expand_in_place(signal, &mut scope)?;
                    if !values::valid_signal(&signal.value) {
                        return Err(self.err(
                            signal.span,
                            ErrorKind::InvalidSignal {
                                value: signal.value.clone(),
                            },
                        ));
                    }
                }
                Kind::Run { mounts, .. } => {
                    for m in mounts.iter_mut() {
                        for (opt, w) in [
                            ("target", &mut m.target),
                            ("source", &mut m.source),
                            ("from", &mut m.from),
                            ("id", &mut m.id),
                            ("sharing", &mut m.sharing),
                            ("mode", &mut m.mode),
                            ("uid", &mut m.uid),
                            ("gid", &mut m.gid),
                            ("size", &mut m.size),
                            ("env", &mut m.env),
                        ] {
                            if let Some(w) = w {
                                self.expand_in_place(w, &mut scope)?;
                                if let Some(expected) = values::mount_value_problem(opt, &w.value) {
                                    return Err(self.err(
                                        w.span,
                                        ErrorKind::InvalidMountValue {
                                            option: opt.into(),
                                            value: w.value.clone(),
                                            expected,
                                        },
                                    ));
                                }
                            }
                        }
                        mount_from.push(match &m.from {
                            Some(f) => Some(self.resolve_stage_ref(f, resolve)?),
                            None => None,
                        });
                    }
                    // The shell sees every ARG in scope, so a RUN depends on all of them.
                    scope.used.extend(args.iter().map(|(k, _)| k.clone()));
                }
                _ => {}
            }
            let used = scope.used.into_iter().collect();
            let undefined_vars = scope
                .undefined
                .into_iter()
                .filter(|n| !self.build_args.contains_key(n))
                .collect();
            let step_run_env = if matches!(out.kind, Kind::Run { .. }) {
                let e = run_env.get_or_insert_with(|| {
                    let mut e: Env = vars.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
                    for p in PROXY_ARGS {
                        if let Some(v) = self.build_args.get(*p)
                            && !e.iter().any(|(k, _)| k == p)
                        {
                            e.push((p.to_string(), v.clone()));
                        }
                    }
                    Shared::new(e)
                });
                e.clone()
            } else {
                Shared::default()
            };
            steps.push(Step {
                instruction: out,
                env: env.clone(),
                args: args.clone(),
                used_args: used,
                run_env: step_run_env,
                copy_from,
                mount_from,
                trigger: None,
                undefined_vars,
            });
            if !new_env.is_empty() || !new_args.is_empty() {
                run_env = None;
            }
            if !new_env.is_empty() {
                let env = env.make_mut();
                for (k, v) in new_env {
                    set_var(&mut vars, &k, &v, false);
                    set(env, k, v);
                }
            }
            if !new_args.is_empty() {
                let args = args.make_mut();
                for (k, v) in new_args {
                    if let Some(v) = &v {
                        set_var(&mut vars, &k, v, true);
                    }
                    set_arg(args, k, v);
                }
            }
        }
        Ok((steps, env, args))
    }

    fn invalid(&self, w: &Word, flag: &str, expected: &'static str) -> ParseError {
        self.err(
            w.span,
            ErrorKind::InvalidFlagValue {
                flag: flag.into(),
                value: w.value.clone(),
                expected,
            },
        )
    }
}

/// A COPY/ADD source word that names one of the instruction's heredocs (`<<EOF`, `<<-"EOF"`).
pub fn is_heredoc_word(word: &str, heredocs: &[Heredoc]) -> bool {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = w.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    heredocs.iter().any(|h| h.name == name)
}
