//! Build checks over the whole parsed file (BuildKit's `docker build --check` rules that need more than one
//! instruction, or that BuildKit runs while converting): rule names and messages as BuildKit's linter
//! (`frontend/dockerfile/linter/ruleset.go`). Rules about one instruction's own syntax (StageNameCasing,
//! FromAsCasing, MaintainerDeprecated, LegacyKeyValueFormat, JSONArgsRecommended, NoEmptyContinuation)
//! are raised where that instruction is parsed.
//!
//! The oracle's BuildKit 0.13 has no linter; the rules follow today's BuildKit and its rule docs.

use std::sync::LazyLock;

use regex::Regex;

use super::ast::{Instruction, Kind, Word};
use super::error::Warning;
use super::expand::Expander;
use super::source::Source;
use super::values;

/// Stage names BuildKit reserves (`FROM x AS scratch` is refused by the linter, not the parser).
const RESERVED_STAGE_NAMES: [&str; 2] = ["context", "scratch"];

/// The ARGs every FROM may use without declaring them.
const PLATFORM_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// Runs the whole-file rules over `instructions` (in file order); `escape` is the file's escape character.
pub(crate) fn run(src: &Source<'_>, instructions: &[Instruction], escape: char) -> Vec<Warning> {
    let mut out = Vec::new();
    instruction_casing(src, instructions, &mut out);
    // Global ARGs (before the first FROM) with their defaults.
    let globals: Vec<(&str, Option<&str>)> = instructions
        .iter()
        .take_while(|i| !matches!(i.kind, Kind::From { .. }))
        .filter_map(|i| match &i.kind {
            Kind::Arg { args } => Some(args),
            _ => None,
        })
        .flatten()
        .map(|a| {
            (
                a.name.value.as_str(),
                a.default.as_ref().map(|d| d.value.as_str()),
            )
        })
        .collect();
    let mut names: Vec<&str> = Vec::new();
    let mut once: [Option<&Instruction>; 3] = [None, None, None];
    let mut workdir_set = false;
    for ins in instructions {
        match &ins.kind {
            Kind::From {
                image,
                name,
                platform,
            } => {
                once = [None, None, None];
                from_args(ins, image, platform.as_ref(), &globals, escape, &mut out);
                workdir_set = false;
                if let Some(n) = name {
                    let n = n.value.as_str();
                    if RESERVED_STAGE_NAMES.contains(&n) {
                        out.push(warn(
                            ins,
                            "ReservedStageName",
                            format!("Stage name should not use the same name as reserved stage {n:?}"),
                        ));
                    }
                    if names.contains(&n) {
                        out.push(warn(
                            ins,
                            "DuplicateStageName",
                            format!("Duplicate stage name {n:?}, stage names should be unique"),
                        ));
                    }
                    names.push(n);
                }
                if let Some(p) = platform {
                    let stage = name.as_ref().map_or("", |n| n.value.as_str());
                    from_platform(ins, &p.value, stage, &mut out);
                }
            }
            Kind::Cmd { .. } | Kind::Entrypoint { .. } | Kind::Healthcheck(_) => {
                let slot = match ins.kind {
                    Kind::Cmd { .. } => 0,
                    Kind::Entrypoint { .. } => 1,
                    _ => 2,
                };
                // BuildKit reports the earlier one: it is the one that has no effect.
                if let Some(prev) = once[slot] {
                    out.push(warn(
                        prev,
                        "MultipleInstructionsDisallowed",
                        format!(
                            "Multiple {} instructions should not be used in the same stage because only the last one will be used",
                            ins.keyword
                        ),
                    ));
                }
                once[slot] = Some(ins);
            }
            Kind::Workdir { path } => {
                if !workdir_set && !path.value.starts_with('/') && !path.value.starts_with('$') {
                    out.push(warn(
                        ins,
                        "WorkdirRelativePath",
                        format!(
                            "Relative workdir {:?} can have unexpected results if the base image changes",
                            path.value
                        ),
                    ));
                }
                workdir_set = true;
            }
            Kind::Arg { args } => {
                for a in args {
                    secret_key(ins, "ARG", &a.name.value, &mut out);
                }
            }
            Kind::Env { vars } => {
                for v in vars {
                    secret_key(ins, "ENV", &v.key.value, &mut out);
                }
            }
            Kind::Expose { ports } => {
                for p in ports {
                    expose(ins, &p.value, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

fn warn(ins: &Instruction, rule: &'static str, message: String) -> Warning {
    Warning::new(rule, message, Some(ins.span))
}

/// The keyword as written (`from`, `Run`), from the source line it starts on.
fn written_keyword<'a>(src: &Source<'a>, ins: &Instruction) -> Option<&'a str> {
    let line = src.line_text(ins.keyword_span.start.line)?.trim_start();
    let n = line.bytes().take_while(u8::is_ascii_alphabetic).count();
    Some(&line[..n])
}

/// ConsistentInstructionCasing: the majority casing of the keywords that are all lower or all upper case
/// (upper on a tie) is the rule; every keyword not in it (mixed case counts as neither) is reported.
fn instruction_casing(src: &Source<'_>, instructions: &[Instruction], out: &mut Vec<Warning>) {
    let written: Vec<(&Instruction, &str)> = instructions
        .iter()
        .filter_map(|i| Some((i, written_keyword(src, i)?)))
        .collect();
    let lower = written
        .iter()
        .filter(|(_, k)| k.bytes().all(|b| b.is_ascii_lowercase()))
        .count();
    let upper = written
        .iter()
        .filter(|(_, k)| k.bytes().all(|b| b.is_ascii_uppercase()))
        .count();
    let majority_lower = lower > upper;
    for (ins, k) in written {
        let wrong = if majority_lower {
            k.bytes().any(|b| b.is_ascii_uppercase()).then_some("lowercase")
        } else {
            k.bytes().any(|b| b.is_ascii_lowercase()).then_some("uppercase")
        };
        if let Some(casing) = wrong {
            out.push(warn(
                ins,
                "ConsistentInstructionCasing",
                format!("Command '{k}' should match the case of the command majority ({casing})"),
            ));
        }
    }
}

/// UndefinedArgInFrom (a `$NAME` in FROM that no global ARG declares) and InvalidDefaultArgInFrom (the
/// base name, expanded with the global defaults alone, is empty or no image reference).
fn from_args(
    ins: &Instruction,
    image: &Word,
    platform: Option<&Word>,
    globals: &[(&str, Option<&str>)],
    escape: char,
    out: &mut Vec<Warning>,
) {
    for w in std::iter::once(image).chain(platform) {
        for var in referenced_vars(&w.value, escape) {
            if globals.iter().any(|(n, _)| *n == var) || PLATFORM_ARGS.contains(&var.as_str()) {
                continue;
            }
            let suggest = values::suggest_close(&var, globals.iter().map(|(n, _)| *n))
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            out.push(warn(
                ins,
                "UndefinedArgInFrom",
                format!("FROM argument '{var}' is not declared{suggest}"),
            ));
        }
    }
    if !image.value.contains('$') {
        return;
    }
    let ex = Expander::new(escape);
    let mut defaults = |n: &str| {
        globals
            .iter()
            .rev()
            .find(|(g, _)| *g == n)
            .and_then(|(_, d)| d.map(String::from))
    };
    let Ok(base) = ex.word(&image.value, &mut defaults) else {
        return;
    };
    let invalid = base.is_empty()
        || base.ends_with([':', '@', '/'])
        || base.contains(char::is_whitespace)
        || base
            .split(['@', ':'])
            .next()
            .is_some_and(|repo| repo.is_empty() || repo.contains(|c: char| c.is_ascii_uppercase()));
    if invalid && !base.eq_ignore_ascii_case("scratch") {
        out.push(warn(
            ins,
            "InvalidDefaultArgInFrom",
            format!(
                "Default value for ARG {} results in empty or invalid base image name",
                image.value
            ),
        ));
    }
}

/// Names of the variables a word refers to (`$A`, `${B}`, `${C:-x}`), outside single quotes and escapes.
fn referenced_vars(word: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = word.chars().peekable();
    let mut single = false;
    while let Some(c) = chars.next() {
        if single {
            single = c != '\'';
            continue;
        }
        if c == escape {
            chars.next();
            continue;
        }
        if c == '\'' {
            single = true;
            continue;
        }
        if c != '$' {
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// FromPlatformFlagConstDisallowed (unless the stage name mentions the platform's OS or architecture) /
/// RedundantTargetPlatform.
fn from_platform(ins: &Instruction, platform: &str, stage: &str, out: &mut Vec<Warning>) {
    if platform == "$TARGETPLATFORM" || platform == "${TARGETPLATFORM}" {
        out.push(warn(
            ins,
            "RedundantTargetPlatform",
            format!(
                "Setting platform to predefined {platform} in FROM is redundant as this is the default behavior"
            ),
        ));
    } else if !platform.contains('$') && values::valid_platform(platform) {
        let mut parts = platform.split('/');
        let (os, arch) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if stage.contains(os) || stage.contains(arch) {
            return;
        }
        out.push(warn(
            ins,
            "FromPlatformFlagConstDisallowed",
            format!("FROM --platform flag should not use constant value {platform:?}"),
        ));
    }
}

/// SecretsUsedInArgOrEnv: a name whose whole or first/last `_` word is a secret-like token, unless a
/// word says it is public (BuildKit's two regular expressions).
fn secret_key(ins: &Instruction, instruction: &str, key: &str, out: &mut Vec<Warning>) {
    static DENY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)")
            .expect("valid regex")
    });
    static ALLOW: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)").expect("valid regex"));
    if DENY.is_match(key) && !ALLOW.is_match(key) {
        out.push(warn(
            ins,
            "SecretsUsedInArgOrEnv",
            format!("Do not use ARG or ENV instructions for sensitive data ({instruction} {key:?})"),
        ));
    }
}

/// ExposeProtoCasing / ExposeInvalidFormat, on the words as written (unexpanded words are skipped: BuildKit
/// checks the expanded ones, which the graph has).
fn expose(ins: &Instruction, raw: &str, out: &mut Vec<Warning>) {
    if raw.contains('$') {
        return;
    }
    if values::exposed_ports_checked(raw).is_err() {
        return;
    }
    let container = raw.rsplit(':').next().unwrap_or(raw);
    if container
        .split_once('/')
        .is_some_and(|(_, p)| p != p.to_ascii_lowercase())
    {
        out.push(warn(
            ins,
            "ExposeProtoCasing",
            format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
        ));
    }
    if raw.contains(':') {
        out.push(warn(
            ins,
            "ExposeInvalidFormat",
            format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"),
        ));
    }
}
