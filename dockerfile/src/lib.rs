//! lamina's Dockerfile front end: text → typed instructions with spans → stage graph with BuildKit's
//! expansion applied. It knows Dockerfile syntax and nothing of stores, registries or the runner: the build
//! engine (`lamina_builder`, which re-exports this crate as `dockerfile`) takes the graph from here.
//!
//! - [`parse`] reads a Dockerfile: parser directives (`syntax`, `escape`, `check`), continuations,
//!   heredocs, JSON exec form with shell-form fallback, flags checked per instruction. The result is a
//!   [`Dockerfile`] of [`Instruction`]s whose words keep their [`Span`]s.
//! - [`expand`] is BuildKit's word expansion; [`graph::BuildGraph`] applies it with ARG/ENV scoping per
//!   stage, resolves stage references, prunes stages the target does not need and orders the rest.

//!
//! - [`glob`] is the one glob matcher (COPY sources, `--exclude`, [`dockerignore`]).
//!
//! Errors are [`ParseError`]s that print as `Dockerfile:12:5: message` with a caret snippet; warnings
//! (legacy forms, deprecated instructions) are collected in [`Dockerfile::warnings`].

pub mod ast;
mod checks;
pub mod dockerignore;
pub mod error;
pub mod expand;
pub mod glob;
pub mod graph;
mod instructions;
mod lexer;
pub mod report;
pub mod source;
pub mod values;
mod words;

pub use ast::*;
pub use error::{ErrorKind, ParseError, Suggestion, Warning};
pub use expand::{ExpandError, Expander};
pub use graph::{Base, BuildGraph, BuildOptions, Stage, Step};
pub use lexer::Limits;
pub use source::{Pos, Span};

/// Parses `src` (named `name` in messages) with the default size limits.
pub fn parse(src: &str, name: &str) -> Result<Dockerfile, ParseError> {
    parse_with_limits(src, name, &Limits::default())
}

/// Parses one ONBUILD trigger of a base image (a string of its config's `OnBuild`) on its own, with
/// the child Dockerfile's `escape` character; `name` names it in messages. Spans are relative to the
/// trigger's text. A blank trigger gives no instruction.
pub fn parse_trigger(text: &str, name: &str, escape: char) -> Result<Vec<Instruction>, ParseError> {
    let lexed = lexer::lex(text, name, &Limits::default())?;
    let source = source::Source::new(text);
    let mut ctx = instructions::Ctx {
        src: &source,
        file: name,
        escape,
        warnings: Vec::new(),
    };
    lexed
        .lines
        .iter()
        .map(|line| instructions::parse_line(&mut ctx, line))
        .collect()
}

/// Parses with explicit size limits.
pub fn parse_with_limits(src: &str, name: &str, limits: &Limits) -> Result<Dockerfile, ParseError> {
    let lexed = lexer::lex(src, name, limits)?;
    let source = source::Source::new(src);
    let mut ctx = instructions::Ctx {
        src: &source,
        file: name,
        escape: lexed.directives.escape,
        warnings: lexed.warnings,
    };
    let mut out = Vec::with_capacity(lexed.lines.len());
    for line in &lexed.lines {
        out.push(instructions::parse_line(&mut ctx, line)?);
    }
    let mut seen_from = false;
    for ins in &out {
        match ins.kind {
            Kind::From { .. } => seen_from = true,
            Kind::Arg { .. } => {}
            _ if !seen_from => {
                return Err(ParseError::at(
                    &source,
                    name,
                    ins.keyword_span,
                    ErrorKind::NoStage {
                        instruction: ins.keyword,
                    },
                ));
            }
            _ => {}
        }
    }
    if !seen_from {
        return Err(ParseError::whole(name, ErrorKind::NoFrom));
    }
    ctx.warnings
        .extend(checks::run(&source, &out, lexed.directives.escape));
    ctx.warnings.sort_by_key(|w| w.span.map(|s| s.start));
    let check = &lexed.directives.check;
    let mut warnings = Vec::new();
    for w in ctx.warnings {
        if check.skips(w.rule) {
            continue;
        }
        if check.error {
            let kind = ErrorKind::CheckFailed {
                rule: w.rule,
                message: w.message.clone(),
            };
            return Err(match w.span {
                Some(s) => ParseError::at(&source, name, s, kind),
                None => ParseError::whole(name, kind),
            });
        }
        warnings.push(w);
    }
    Ok(Dockerfile {
        file: name.to_string(),
        directives: lexed.directives,
        instructions: out,
        warnings,
        source: src.to_string(),
    })
}

/// BuildKit's `parseWords`: the quote-aware split of ENV, LABEL and ARG arguments, quotes and escapes
/// kept. Public only so BuildKit's vectors for it can run as our tests.
#[doc(hidden)]
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    words::split_words(s, escape)
        .into_iter()
        .map(|w| w.text)
        .collect()
}
