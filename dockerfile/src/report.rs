//! What `lamina parse` prints (and what the golden corpus records): the parsed file's directives and
//! warnings plus the target's stages with expanded steps.

use std::fmt::Write as _;

use serde::Serialize;

use super::ast::{Command, Instruction, Kind};
use super::graph::{Base, BuildGraph, BuildOptions, Ref};
use super::{Directives, ParseError, Warning, parse};

#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub directives: Directives,
    pub warnings: Vec<Warning>,
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<StageReport>,
}

#[derive(Debug, Serialize)]
pub struct StageReport {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub base: Base,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_used_args: Vec<String>,
    pub steps: Vec<StepReport>,
    pub final_env: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    #[serde(flatten)]
    pub instruction: Instruction,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub run_env: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<Ref>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_from: Vec<Option<Ref>>,
}

/// Parse, build the graph for `opts` and summarize.
pub fn report(src: &str, name: &str, opts: &BuildOptions) -> Result<Report, ParseError> {
    let df = parse(src, name)?;
    let graph = BuildGraph::new(&df, opts)?;
    let mut warnings = df.warnings.clone();
    warnings.extend(graph.warnings.iter().cloned());
    let stages = graph
        .stages
        .iter()
        .map(|s| StageReport {
            index: s.index,
            name: s.name.clone(),
            base: s.base.clone(),
            platform: s.platform.clone(),
            deps: s.deps.clone(),
            from_used_args: s.from_used_args.clone(),
            steps: s
                .steps
                .iter()
                .map(|st| StepReport {
                    instruction: st.instruction.clone(),
                    used_args: st.used_args.clone(),
                    run_env: st.run_env.to_vec(),
                    copy_from: st.copy_from.clone(),
                    mount_from: st.mount_from.clone(),
                })
                .collect(),
            final_env: s.final_env.clone(),
        })
        .collect();
    Ok(Report {
        file: df.file,
        directives: df.directives,
        warnings,
        global_args: graph.global_args.clone(),
        stages,
    })
}

fn command_text(c: &Command) -> String {
    match c {
        Command::Shell(w) => w.value.clone(),
        Command::Exec(ws) => serde_json::to_string(&ws.iter().map(|w| w.value.as_str()).collect::<Vec<_>>())
            .unwrap_or_default(),
    }
}

/// One line per instruction: `LINE:COL KEYWORD flags args` with values as expanded.
pub fn instruction_text(i: &Instruction) -> String {
    let mut s = format!("{}:{} {}", i.span.start.line, i.span.start.col, i.keyword);
    for f in &i.flags {
        match &f.value {
            Some(v) => write!(s, " --{}={}", f.name, v.value),
            None => write!(s, " --{}", f.name),
        }
        .ok();
    }
    let words = |ws: &mut String, list: &mut dyn Iterator<Item = String>| {
        for w in list {
            ws.push(' ');
            ws.push_str(&w);
        }
    };
    match &i.kind {
        Kind::From { image, name, .. } => words(
            &mut s,
            &mut std::iter::once(image.value.clone()).chain(name.iter().map(|n| format!("AS {}", n.value))),
        ),
        Kind::Run { command, .. } | Kind::Cmd { command } | Kind::Entrypoint { command } => {
            s.push(' ');
            s.push_str(&command_text(command));
        }
        Kind::Shell { shell } => words(&mut s, &mut shell.iter().map(|w| w.value.clone())),
        Kind::Label { labels: kv } | Kind::Env { vars: kv } => words(
            &mut s,
            &mut kv.iter().map(|p| format!("{}={:?}", p.key.value, p.value.value)),
        ),
        Kind::Maintainer { name: w }
        | Kind::User { user: w }
        | Kind::Workdir { path: w }
        | Kind::Stopsignal { signal: w } => words(&mut s, &mut std::iter::once(w.value.clone())),
        Kind::Expose { ports: ws } | Kind::Volume { paths: ws } => {
            words(&mut s, &mut ws.iter().map(|w| w.value.clone()))
        }
        Kind::Add(c) | Kind::Copy(c) => words(
            &mut s,
            &mut c.sources.iter().chain([&c.dest]).map(|w| w.value.clone()),
        ),
        Kind::Arg { args } => words(
            &mut s,
            &mut args.iter().map(|a| match &a.default {
                Some(d) => format!("{}={}", a.name.value, d.value),
                None => a.name.value.clone(),
            }),
        ),
        Kind::Onbuild { expression, .. } => words(&mut s, &mut std::iter::once(expression.clone())),
        Kind::Healthcheck(h) => match &h.command {
            None => s.push_str(" NONE"),
            Some(c) => {
                s.push_str(" CMD ");
                s.push_str(&command_text(c));
            }
        },
    }
    for h in &i.heredocs {
        write!(
            s,
            "\n    <<{} ({} bytes{})",
            h.name,
            h.content.len(),
            if h.expand { "" } else { ", verbatim" }
        )
        .ok();
    }
    s
}

/// The human form of a report.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    for (k, v) in &r.global_args {
        writeln!(
            s,
            "global ARG {k}{}",
            v.as_ref().map(|v| format!("={v}")).unwrap_or_default()
        )
        .ok();
    }
    for (pos, st) in r.stages.iter().enumerate() {
        let base = match &st.base {
            Base::Scratch => "scratch".to_string(),
            Base::Image(i) => i.clone(),
            Base::Stage(p) => format!("stage #{p}"),
        };
        writeln!(
            s,
            "#{pos} stage {}{} FROM {base}{}",
            st.index,
            st.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default(),
            st.platform
                .as_ref()
                .map(|p| format!(" --platform={p}"))
                .unwrap_or_default()
        )
        .ok();
        for step in &st.steps {
            writeln!(
                s,
                "  {}",
                instruction_text(&step.instruction).replace('\n', "\n  ")
            )
            .ok();
        }
    }
    s
}
