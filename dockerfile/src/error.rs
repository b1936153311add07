//! Errors and warnings of the Dockerfile front end. Every error names `FILE:LINE:COL` and carries a caret
//! snippet of the offending source line for humans.

use std::fmt;

use serde::Serialize;

use super::expand::ExpandError;
use super::source::{Source, Span};

/// A failure to read a Dockerfile, expand a word in it, or build its stage graph.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ParseError {
    /// The Dockerfile's display name (`Dockerfile`, `build/Dockerfile.dev`).
    pub file: String,
    /// Where; `None` for problems of the whole file or the build options (unknown `--target`).
    pub span: Option<Span>,
    pub kind: Box<ErrorKind>,
    /// The source line with carets under `span` (empty without a span).
    pub snippet: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.span {
            Some(s) => write!(f, "{}:{}:{}: {}", self.file, s.start.line, s.start.col, self.kind),
            None => write!(f, "{}: {}", self.file, self.kind),
        }
    }
}

impl ParseError {
    pub(crate) fn at(src: &Source<'_>, file: &str, span: Span, kind: ErrorKind) -> ParseError {
        ParseError {
            file: file.to_string(),
            span: Some(span),
            kind: Box::new(kind),
            snippet: src.snippet(span),
        }
    }

    pub(crate) fn whole(file: &str, kind: ErrorKind) -> ParseError {
        ParseError {
            file: file.to_string(),
            span: None,
            kind: Box::new(kind),
            snippet: String::new(),
        }
    }

    /// The message followed by the caret snippet, for terminals.
    pub fn render(&self) -> String {
        if self.snippet.is_empty() {
            self.to_string()
        } else {
            format!("{self}\n{}", self.snippet)
        }
    }
}

/// " (did you mean X?)" or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suggestion(pub Option<String>);

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, " (did you mean {s}?)"),
            None => Ok(()),
        }
    }
}

impl Suggestion {
    pub fn map(self, f: impl FnOnce(String) -> String) -> Suggestion {
        Suggestion(self.0.map(f))
    }
}

/// What went wrong, with the subject it went wrong on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ErrorKind {
    #[error("file is {size} bytes, more than the limit of {limit} bytes")]
    FileTooLarge { size: usize, limit: usize },
    #[error("line is {len} bytes long, more than the limit of {limit} bytes")]
    LineTooLong { len: usize, limit: usize },
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscape { value: String },
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    #[error("invalid check directive '{value}': expected skip=<rules>|all and/or error=true|false")]
    InvalidCheckDirective { value: String },
    #[error("unterminated heredoc <<{name}: no line '{name}' before the end of the file")]
    UnterminatedHeredoc { name: String },
    #[error("unknown instruction: {name}{suggestion}")]
    UnknownInstruction { name: String, suggestion: Suggestion },
    #[error("{instruction} requires {expected}")]
    ArgCount {
        instruction: &'static str,
        expected: &'static str,
    },
    #[error("unknown flag --{flag} for {instruction}{suggestion}")]
    UnknownFlag {
        flag: String,
        instruction: &'static str,
        suggestion: Suggestion,
    },
    #[error("duplicate flag --{flag}")]
    DuplicateFlag { flag: String },
    #[error("missing a value on flag --{flag}")]
    FlagMissingValue { flag: String },
    #[error("invalid value '{value}' for flag --{flag}: expected {expected}")]
    InvalidFlagValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("flag --{flag} cannot be used with {context}")]
    FlagNotAllowed { flag: String, context: &'static str },
    #[error("unknown mount option '{option}'{suggestion}")]
    UnknownMountKey { option: String, suggestion: Suggestion },
    #[error("mount option '{option}' is not valid for type={mount_type}")]
    UnknownMountOption { option: String, mount_type: String },
    #[error("unknown mount type '{value}'{suggestion} (expected bind, cache, tmpfs, secret or ssh)")]
    UnknownMountType { value: String, suggestion: Suggestion },
    #[error("invalid value '{value}' for mount option {option}: expected {expected}")]
    InvalidMountValue {
        option: String,
        value: String,
        expected: &'static str,
    },
    #[error("mount option {option} given twice")]
    DuplicateMountOption { option: String },
    #[error("mount type={mount_type} requires a target")]
    MountMissingTarget { mount_type: String },
    #[error("invalid name for build stage: '{name}', name can't start with a number or contain symbols")]
    InvalidStageName { name: String },
    #[error("when using JSON array syntax for {instruction}, arrays must be comprised of strings only")]
    NotStringArray { instruction: &'static str },
    #[error("{instruction} requires the arguments to be in JSON form")]
    NotJson { instruction: &'static str },
    #[error("syntax error - can't find = in '{word}'. Must be of the form: name=value")]
    MissingEquals { word: String },
    #[error("base name ({raw}) should not be blank")]
    BlankBaseName { raw: String },
    #[error("{instruction} cannot accept a heredoc as a destination")]
    HeredocDestination { instruction: &'static str },
    #[error("source can't be a URL for COPY (ADD fetches URLs)")]
    CopyUrl,
    #[error("{instruction} names can not be blank")]
    BlankName { instruction: &'static str },
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{instruction} isn't allowed as an ONBUILD trigger")]
    OnbuildForbidden { instruction: &'static str },
    #[error("unknown type '{value}' in HEALTHCHECK (try CMD)")]
    HealthcheckType { value: String },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    #[error("invalid port '{value}' in EXPOSE: expected [IP:][HOST_PORT:]PORT[-PORT][/tcp|udp|sctp]")]
    InvalidPort { value: String },
    #[error("invalid signal '{value}' in STOPSIGNAL")]
    InvalidSignal { value: String },
    #[error(transparent)]
    Expand(ExpandError),
    #[error("{instruction} before the first FROM: no build stage in current context")]
    NoStage { instruction: &'static str },
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    #[error("duplicate name for build stage: '{name}'")]
    DuplicateStageName { name: String },
    #[error("unknown build stage '{name}'{suggestion}")]
    UnknownStage { name: String, suggestion: Suggestion },
    #[error("target stage '{name}' could not be found{suggestion}")]
    UnknownTarget { name: String, suggestion: Suggestion },
    #[error("circular dependency on build stage '{name}' ({via})")]
    StageCycle { name: String, via: String },
    #[error("{rule}: {message} (an error because of the check=error=true directive)")]
    CheckFailed { rule: &'static str, message: String },
}

/// A problem reported but not fatal. Rule names follow BuildKit's build checks so `# check=skip=…` works
/// with the same names.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static str,
    pub message: String,
    pub span: Option<Span>,
}

impl Warning {
    pub fn new(rule: &'static str, message: impl Into<String>, span: Option<Span>) -> Warning {
        Warning {
            rule,
            message: message.into(),
            span,
        }
    }

    pub fn display(&self, file: &str) -> String {
        match self.span {
            Some(s) => format!(
                "{file}:{}:{}: warning: {}: {}",
                s.start.line, s.start.col, self.rule, self.message
            ),
            None => format!("{file}: warning: {}: {}", self.rule, self.message),
        }
    }
}
