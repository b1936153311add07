//! `lamina build --check` (buildx's `--check`, `--call check`): only the build checks run, printed in
//! buildx's layout; and the short warning list a normal build prints before it starts.

use std::collections::BTreeMap;
use std::process::ExitCode;

use lamina_builder::dockerfile::source::Source;
use std::path::Path;

use lamina_builder::dockerfile::dockerignore::Matcher;
use lamina_builder::dockerfile::{Base, BuildGraph, BuildOptions, Dockerfile, Kind, ParseError, Warning};
use lamina_store::Store;

/// The file's warnings (parser, checks and graph), in line order. A file that fails to parse or plan
/// is the build's error to report, not the checks'. UndefinedVar in a stage on an image needs that
/// image's ENV: it is checked for the bases `store` already has (nothing is pulled for the checks).
/// CopyIgnoredFile needs the local `context` dir and the Dockerfile's path (for its own ignore file).
pub fn warnings(
    parsed: Result<&Dockerfile, &ParseError>,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    store: Option<&Store>,
    context: Option<(&Path, &Path)>,
) -> anyhow::Result<Vec<Warning>> {
    let df = parsed.map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let opts = BuildOptions {
        target: target.map(String::from),
        build_args: build_args.clone(),
        ..Default::default()
    };
    let graph = BuildGraph::new(df, &opts).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let mut all = df.warnings.clone();
    all.extend(graph.warnings.iter().cloned());
    for (pos, st) in graph.stages.iter().enumerate() {
        let Base::Image(image) = &st.base else { continue };
        let Some(img) = store.and_then(|s| {
            let r = s.resolve(image).ok()?;
            s.load_image(&r.descriptor.digest).ok()
        }) else {
            continue;
        };
        let env = img
            .config
            .config
            .as_ref()
            .map(|c| lamina_builder::engine::meta::env_pairs(&c.env))
            .unwrap_or_default();
        if let Ok(w) = graph.undefined_vars(pos, env) {
            all.extend(w);
        }
    }
    if let Some((dir, dockerfile)) = context
        && let Ok(ignore) = Matcher::for_build(dir, dockerfile)
    {
        all.extend(copy_ignored(&graph, &ignore));
    }
    all.sort_by_key(|w| w.span.map(|s| s.start));
    Ok(all)
}

/// CopyIgnoredFile: a COPY/ADD source from the main context that `.dockerignore` leaves out. As BuildKit,
/// not checked when the file has exceptions (`!pattern`: what they let back in can't be told statically),
/// and `.` or `/` only when a pattern drops every entry of the root.
fn copy_ignored(graph: &BuildGraph, ignore: &Matcher) -> Vec<Warning> {
    let mut out = Vec::new();
    if ignore.is_empty() || ignore.patterns().iter().any(|p| p.exception) {
        return out;
    }
    let root_ignored = ignore.patterns().iter().any(|p| p.text == "*" || p.text == "**");
    for st in &graph.stages {
        for step in &st.steps {
            let (cmd, args) = match &step.instruction.kind {
                Kind::Copy(a) => ("Copy", a),
                Kind::Add(a) => ("Add", a),
                _ => continue,
            };
            if step.copy_from.is_some() || args.from.is_some() {
                continue;
            }
            for src in &args.sources {
                let v = src.value.as_str();
                let lower = v.to_ascii_lowercase();
                let heredoc = step.instruction.heredocs.iter().any(|h| {
                    v.trim_start_matches('<')
                        .trim_start_matches('-')
                        .trim_matches(['"', '\''])
                        == h.name
                });
                if heredoc
                    || lower.starts_with("http://")
                    || lower.starts_with("https://")
                    || lower.starts_with("git@")
                {
                    continue;
                }
                let clean = v
                    .trim_start_matches("./")
                    .trim_start_matches('/')
                    .trim_end_matches('/');
                let excluded = if clean.is_empty() || clean == "." {
                    root_ignored
                } else {
                    ignore.is_excluded(clean)
                };
                if excluded {
                    let shown = if clean.is_empty() { "." } else { clean };
                    out.push(Warning::new(
                        "CopyIgnoredFile",
                        format!("Attempting to {cmd} file {shown:?} that is excluded by .dockerignore"),
                        Some(step.instruction.span),
                    ));
                }
            }
        }
    }
    out
}

/// The rule's documentation page, as BuildKit links it (`FromAsCasing` → `from-as-casing`).
fn rule_url(rule: &str) -> String {
    // A dash starts each word; an acronym (`JSON`) is one word.
    let c: Vec<char> = rule.chars().collect();
    let mut slug = String::new();
    for (i, &ch) in c.iter().enumerate() {
        let starts_word = i > 0
            && ch.is_ascii_uppercase()
            && (c[i - 1].is_ascii_lowercase() || c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if starts_word {
            slug.push('-');
        }
        slug.push(ch.to_ascii_lowercase());
    }
    format!("https://docs.docker.com/go/dockerfile/rule/{slug}/")
}

/// Prints the checks as buildx does and exits 1 when any rule fired.
pub fn run(dockerfile: &str, name: &str, warnings: &[Warning]) -> ExitCode {
    let src = Source::new(dockerfile);
    let last_line = dockerfile.lines().count() as u32;
    match warnings.len() {
        0 => {
            println!("Check complete, no warnings found.");
            return ExitCode::SUCCESS;
        }
        1 => println!("Check complete, 1 warning has been found!"),
        n => println!("Check complete, {n} warnings have been found!"),
    }
    for w in warnings {
        println!();
        println!("WARNING: {} - {}", w.rule, rule_url(w.rule));
        println!("{}", w.message);
        if let Some(span) = w.span {
            let line = span.start.line;
            println!("{name}:{line}");
            println!("--------------------");
            let first = line.saturating_sub(2).max(1);
            for l in first..=(line + 2).min(last_line) {
                let Some(text) = src.line_text(l) else { break };
                let mark = if l == line { ">>>" } else { "   " };
                println!(" {l:>3} | {mark} {text}");
            }
            println!("--------------------");
        }
    }
    ExitCode::from(1)
}

/// The summary a build prints on stderr before it starts, as buildx's `N warnings found` list.
pub fn print_summary(warnings: &[Warning]) {
    if warnings.is_empty() {
        return;
    }
    let n = warnings.len();
    eprintln!(" {n} warning{} found:", if n == 1 { "" } else { "s" });
    for w in warnings {
        match w.span {
            Some(s) => eprintln!(" - {}: {} (line {})", w.rule, w.message, s.start.line),
            None => eprintln!(" - {}: {}", w.rule, w.message),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_urls_are_kebab_case() {
        assert_eq!(
            super::rule_url("FromAsCasing"),
            "https://docs.docker.com/go/dockerfile/rule/from-as-casing/"
        );
        assert_eq!(
            super::rule_url("JSONArgsRecommended"),
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
    }
}
