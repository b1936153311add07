//! `.dockerignore`: which build-context paths to leave out.
//!
//! Semantics follow docker/BuildKit: one pattern per line, `#` lines are comments, patterns are cleaned
//! (`./a//b/` → `a/b`, a leading `/` dropped), `*` and `?` stay within a path segment, `**` spans any
//! number of segments, `[a-z]`/`[!a-z]` are classes, `\` escapes. A pattern that matches a directory
//! matches everything under it. Patterns apply in order and the last one that matches decides; `!`
//! patterns re-include. `<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's.
//!
//! Speed: patterns are compiled once; literal patterns compare strings, the rest go through
//! [`crate::glob::Glob`] (the builder's one matcher, in its `.dockerignore` dialect).
//! [`Matcher::can_skip_dir`] lets a context walker skip a whole ignored directory unless an exception
//! could re-include something inside it, and [`MatchCache`] memoizes the "does a parent match"
//! part per directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::glob::{Dialect, Glob};

/// A `.dockerignore` problem.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{file}:{line}: invalid pattern '{pattern}'")]
    BadPattern {
        file: String,
        line: usize,
        pattern: String,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: the path equals the pattern.
    Exact(String),
    /// `**/lit`: the path is `lit` or ends with `/lit`.
    AnyDirThen(String),
    /// `lit/**` (or `**` alone when empty): the path starts with `lit/`.
    Prefix(String),
    /// Anything else, through the one glob matcher.
    Glob(Glob),
}

#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern text without the `!`.
    pub text: String,
    pub exception: bool,
    /// 1-based line in the file.
    pub line: usize,
    kind: Kind,
    /// The pattern's `/`-separated segments, each compiled once (None: `**`, or uncompilable alone),
    /// for the directory-pruning decision.
    segments: Vec<Option<Kind>>,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        self.kind.matches(path)
    }
}

impl Kind {
    fn matches(&self, path: &str) -> bool {
        match self {
            Kind::Exact(s) => path == s,
            Kind::AnyDirThen(s) => {
                path == s
                    || (path.ends_with(s.as_str())
                        && path.as_bytes().get(path.len() - s.len() - 1) == Some(&b'/'))
            }
            Kind::Prefix(p) => {
                p.is_empty() || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'/'))
            }
            Kind::Glob(g) => g.matches(path),
        }
    }
}

/// Compiled patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
}

/// Cleans a path like Go's `filepath.Clean` on a relative, slash-separated path; `""` and `/` become `.`.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let rooted = p.starts_with('/');
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let s = out.join("/");
    match (rooted, s.is_empty()) {
        (true, true) => "/".into(),
        (true, false) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

fn compile(text: &str) -> Option<Kind> {
    if !has_meta(text) {
        return Some(Kind::Exact(text.to_string()));
    }
    if let Some(rest) = text.strip_prefix("**/")
        && !has_meta(rest)
    {
        return Some(Kind::AnyDirThen(rest.to_string()));
    }
    if text == "**" {
        return Some(Kind::Prefix(String::new()));
    }
    if let Some(rest) = text.strip_suffix("/**")
        && !has_meta(rest)
    {
        return Some(Kind::Prefix(rest.to_string()));
    }
    Glob::compile(text, Dialect::Dockerignore).map(Kind::Glob)
}

impl Matcher {
    /// Parses `.dockerignore` text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Matcher, IgnoreError> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = if n == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            if p.is_empty() {
                continue;
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let kind = compile(&cleaned).ok_or_else(|| IgnoreError::BadPattern {
                file: file.to_string(),
                line: n + 1,
                pattern: line.to_string(),
            })?;
            patterns.push(Pattern {
                segments: cleaned
                    .split('/')
                    .map(|s| if s.contains("**") { None } else { compile(s) })
                    .collect(),
                text: cleaned,
                exception,
                line: n + 1,
                kind,
            });
        }
        let has_exceptions = patterns.iter().any(|p| p.exception);
        Ok(Matcher {
            patterns,
            has_exceptions,
        })
    }

    /// Reads the ignore file that applies: `<dockerfile>.dockerignore` if it exists, else
    /// `<context>/.dockerignore`, else no patterns.
    pub fn for_build(context: &Path, dockerfile: &Path) -> Result<Matcher, IgnoreError> {
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        for path in [PathBuf::from(specific), context.join(".dockerignore")] {
            match std::fs::read_to_string(&path) {
                Ok(text) => return Matcher::parse(&text, &path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(IgnoreError::Read { path, source }),
            }
        }
        Ok(Matcher::default())
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Is the context-relative, slash-separated `path` excluded? (A match on a parent directory counts.)
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        let parents: Vec<&str> = parent_prefixes(&path).collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exception != matched {
                continue;
            }
            if p.matches(&path) || parents.iter().any(|d| p.matches(d)) {
                matched = !p.exception;
            }
        }
        matched
    }

    /// True when `dir` is excluded and no exception pattern could re-include anything beneath it, so a
    /// walker may skip the whole directory.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.is_excluded(dir) {
            return false;
        }
        if !self.has_exceptions {
            return true;
        }
        let dir = clean_path(dir);
        let segs: Vec<&str> = dir.split('/').collect();
        !self.patterns.iter().filter(|p| p.exception).any(|p| {
            // Could the exception match something under dir/? Walk dir's segments against the pattern's.
            for (i, s) in segs.iter().enumerate() {
                let Some(ps) = p.segments.get(i) else { return false };
                // `**` (None) may match anything below.
                let Some(k) = ps else { return true };
                if !k.matches(s) {
                    return false;
                }
            }
            p.segments.len() > segs.len()
        })
    }
}

fn parent_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Memoizes, per directory, which patterns match that directory or one of its parents, so matching
/// many files of one directory costs one pass over the patterns each.
#[derive(Debug, Default)]
pub struct MatchCache {
    dirs: HashMap<String, Vec<bool>>,
}

impl MatchCache {
    pub fn new() -> MatchCache {
        MatchCache::default()
    }

    fn dir_bits(&mut self, m: &Matcher, dir: &str) -> Vec<bool> {
        if let Some(b) = self.dirs.get(dir) {
            return b.clone();
        }
        let parent_bits = match dir.rfind('/') {
            Some(i) => self.dir_bits(m, &dir[..i]),
            None => vec![false; m.patterns.len()],
        };
        let bits: Vec<bool> = m
            .patterns
            .iter()
            .zip(&parent_bits)
            .map(|(p, &pb)| pb || p.matches(dir))
            .collect();
        self.dirs.insert(dir.to_string(), bits.clone());
        bits
    }

    /// Same answer as [`Matcher::is_excluded`] for an already clean path.
    pub fn is_excluded(&mut self, m: &Matcher, path: &str) -> bool {
        let bits = match path.rfind('/') {
            Some(i) => {
                let dir = &path[..i];
                if !self.dirs.contains_key(dir) {
                    self.dir_bits(m, dir);
                }
                self.dirs.get(dir).map(|v| v.as_slice())
            }
            None => None,
        };
        let mut matched = false;
        for (i, p) in m.patterns.iter().enumerate() {
            if p.exception != matched {
                continue;
            }
            if bits.is_some_and(|b| b[i]) || p.matches(path) {
                matched = !p.exception;
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let m = Matcher::parse("# c\n*.log\n!keep.log\nbuild/\n**/tmp\n/abs\n", ".dockerignore").unwrap();
        assert!(m.is_excluded("a.log"));
        assert!(!m.is_excluded("keep.log"));
        assert!(!m.is_excluded("sub/a.log"));
        assert!(m.is_excluded("build/x/y"));
        assert!(m.is_excluded("a/b/tmp/c"));
        assert!(m.is_excluded("abs"));
        assert!(m.can_skip_dir("build"));
        let m = Matcher::parse("node_modules\n!node_modules/keep\n", "x").unwrap();
        assert!(!m.can_skip_dir("node_modules"));
        let m = Matcher::parse("a\n!b/c\n", "x").unwrap();
        assert!(m.can_skip_dir("a"));
    }

    #[test]
    fn cache_agrees() {
        let m = Matcher::parse("a/*\n!a/b*\na/b/c\n**/*.o\n", "x").unwrap();
        let mut c = MatchCache::new();
        for p in ["a/x", "a/b", "a/b/c", "a/b/d", "z/y.o", "y.o", "a/bc/x"] {
            assert_eq!(c.is_excluded(&m, p), m.is_excluded(p), "{p}");
        }
    }
}
