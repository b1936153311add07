//! Word expansion as BuildKit's Dockerfile frontend does it (not a full POSIX shell): `$v ${v}`, the
//! `${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?m} ${v?m}` tests, `${v#p} ${v##p} ${v%p} ${v%%p} ${v/p/r} ${v//p/r}`
//! pattern edits, single and double quotes, and the escape character (`\` or the `# escape=` one).
//!
//! The lookup is a closure so the caller decides the scope (ENV over ARG, the same-instruction rule)
//! and records which names a step used — cache keys depend on that.

use regex::Regex;

/// How deep `${a:-${b:-…}}` may nest before we give up instead of overflowing the stack.
pub const MAX_NESTING: usize = 64;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier { modifier: String },
    #[error("unexpected end of statement while looking for matching {what}")]
    Unterminated { what: &'static str },
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution")]
    InvalidPattern { pattern: String },
    /// Only `\*`, `\?` and `\\` escape in a pattern (`\}` and `\/` just keep the substitution open).
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    InvalidEscape { pattern: String, escaped: String },
    #[error("substitutions nested more than {MAX_NESTING} deep")]
    TooDeep,
}

/// Expansion settings. `Expander::new(escape)` is what instructions use.
#[derive(Debug, Clone, Copy)]
pub struct Expander {
    pub escape: char,
    /// Keep quote characters in the output (heredoc detection needs to see them).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$name` of unset variables as written (heredoc names).
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters (heredoc bodies of COPY/ADD).
    pub skip_quotes: bool,
}

impl Expander {
    pub fn new(escape: char) -> Expander {
        Expander {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// Expand to one string (quotes removed, no field splitting).
    pub fn word(
        &self,
        input: &str,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<String, ExpandError> {
        let mut st = State::new(self, input, env);
        let (s, _) = st.stop_on(None, false)?;
        Ok(s)
    }

    /// Expand and split into fields: whitespace from unquoted text and unquoted expansions separates words,
    /// quoted text (even empty `""`) makes a word.
    pub fn words(
        &self,
        input: &str,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<Vec<String>, ExpandError> {
        let mut st = State::new(self, input, env);
        let (_, w) = st.stop_on(None, false)?;
        Ok(w.finish())
    }
}

#[derive(Default)]
struct Fields {
    words: Vec<String>,
    cur: String,
    in_word: bool,
}

impl Fields {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word {
                self.words.push(std::mem::take(&mut self.cur));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.cur.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.cur.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if self.in_word {
            self.words.push(self.cur);
        }
        self.words
    }
}

struct State<'a, 'e> {
    opts: &'a Expander,
    chars: Vec<char>,
    pos: usize,
    env: &'e mut dyn FnMut(&str) -> Option<String>,
    raw_escapes: bool,
    depth: usize,
}

impl<'a, 'e> State<'a, 'e> {
    fn new(opts: &'a Expander, input: &str, env: &'e mut dyn FnMut(&str) -> Option<String>) -> Self {
        State {
            opts,
            chars: input.chars().collect(),
            pos: 0,
            env,
            raw_escapes: opts.raw_escapes,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Fields), ExpandError> {
        let saved = self.raw_escapes;
        if raw_escapes {
            self.raw_escapes = true;
        }
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Fields), ExpandError> {
        let mut out = String::new();
        let mut fields = Fields::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((out, fields));
            }
            if c == '$' {
                let v = self.dollar()?;
                out.push_str(&v);
                fields.add_string(&v);
            } else if c == '\'' && !self.opts.skip_quotes {
                let v = self.single_quote()?;
                out.push_str(&v);
                fields.add_raw_string(&v);
            } else if c == '"' && !self.opts.skip_quotes {
                let v = self.double_quote()?;
                out.push_str(&v);
                fields.add_raw_string(&v);
            } else {
                self.pos += 1;
                if c == self.opts.escape {
                    if self.raw_escapes {
                        fields.add_raw_char(c);
                        out.push(c);
                    }
                    // An escape at the very end escapes nothing and is dropped.
                    let Some(n) = self.next() else { break };
                    fields.add_raw_char(n);
                    out.push(n);
                } else {
                    fields.add_char(c);
                    out.push(c);
                }
            }
        }
        match stop {
            Some('}') | Some('/') => Err(ExpandError::MissingBrace),
            Some(_) => Err(ExpandError::Unterminated { what: "character" }),
            None => Ok((out, fields)),
        }
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        self.pos += 1;
        if self.opts.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::Unterminated { what: "single-quote" }),
                Some('\'') => {
                    if self.opts.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        self.pos += 1;
        if self.opts.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::Unterminated { what: "double-quote" }),
                Some('"') => {
                    self.pos += 1;
                    if self.opts.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.opts.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            // Only these can be escaped inside double quotes; other escapes stay as written.
                            Some(n) if n == '"' || n == '$' || n == self.opts.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
                            Some(_) => {
                                if !self.raw_escapes {
                                    out.push(c);
                                }
                            }
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|d| d.is_ascii_digit()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExpandError::TooDeep);
        }
        let r = self.dollar_inner();
        self.depth -= 1;
        r
    }

    fn dollar_inner(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            _ => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err(ExpandError::MissingBrace);
        };
        let mut modifier = op.to_string();
        match op {
            '}' => {
                let v = self.lookup(&name);
                Ok(match v {
                    Some(v) => v,
                    None if self.opts.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let colon = op == ':';
                if colon {
                    match self.next() {
                        Some(c) => {
                            op = c;
                            modifier.push(c);
                        }
                        None => return Err(ExpandError::MissingBrace),
                    }
                }
                let pattern_op = op == '#' || op == '%';
                if colon && pattern_op {
                    return Err(ExpandError::UnsupportedModifier { modifier });
                }
                let (word, _) = self.stop_on(Some('}'), pattern_op)?;
                let value = self.lookup(&name);
                if self.opts.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                let null = colon && value.is_empty();
                match op {
                    '-' => Ok(if !set || null { word } else { value }),
                    '+' => Ok(if !set || null { String::new() } else { word }),
                    '?' => {
                        if !set {
                            let message = if word.is_empty() {
                                "is not allowed to be unset".into()
                            } else {
                                word
                            };
                            Err(ExpandError::Required { name, message })
                        } else if null {
                            let message = if word.is_empty() {
                                "is not allowed to be empty".into()
                            } else {
                                word
                            };
                            Err(ExpandError::Required { name, message })
                        } else {
                            Ok(value)
                        }
                    }
                    '#' | '%' => {
                        let (greedy, pat) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        trim(&value, &pat, greedy, op == '%')
                    }
                    _ => Err(ExpandError::UnsupportedModifier { modifier }),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let (pattern, _) = self.stop_on(Some('/'), true)?;
                let (replacement, _) = self.stop_on(Some('}'), true)?;
                let value = self.lookup(&name);
                let Some(value) = value else {
                    if self.opts.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                // As BuildKit: the replacement keeps its escapes (`${v//\//\/}` puts `\/`). `//` hands it to Go's
                // ReplaceAllString, a template where `$$` is a dollar and `$0` the match; `/` splices it in as is.
                let toks = tokenize(&pattern)?;
                with_compiled(&toks, true, false, &pattern, |re| {
                    if all {
                        let expand = |caps: &regex::Captures<'_>| go_template(&replacement, &caps[0]);
                        re.replace_all(&value, expand).into_owned()
                    } else {
                        re.replace(&value, regex::NoExpand(&replacement)).into_owned()
                    }
                })
            }
            _ => Err(ExpandError::UnsupportedModifier { modifier }),
        }
    }
}

/// Go's `Regexp.Expand` for a pattern without groups: `$$` → `$`, `$0`/`${0}` → the match, any other
/// `$name`/`${name}` → nothing, a malformed `$` stays.
fn go_template(template: &str, matched: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let (name, after) = match rest.strip_prefix('{') {
            Some(r) => match r.find('}') {
                Some(end) if end > 0 && r[..end].chars().all(is_name) => (&r[..end], &r[end + 1..]),
                _ => ("", rest),
            },
            None => {
                let end = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        if name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u64>() == Ok(0) {
            out.push_str(matched);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// A substitution pattern as BuildKit reads it: `*` and `?` are wildcards, `[` and `]` plain characters
/// (no bracket expressions), `\` escapes only `*`, `?` and itself, and is dropped before `}` and `/`.
/// The escape is always `\`, whatever the Dockerfile's escape directive.
fn tokenize(pattern: &str) -> Result<Vec<Tok>, ExpandError> {
    let mut toks = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Any),
            '\\' => match it.peek() {
                Some('}' | '/') => {}
                Some(&n @ ('*' | '?' | '\\')) => {
                    it.next();
                    toks.push(Tok::Lit(n));
                }
                other => {
                    return Err(ExpandError::InvalidEscape {
                        pattern: pattern.to_string(),
                        escaped: other.map_or_else(|| "EOF".to_string(), |c| c.to_string()),
                    });
                }
            },
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Runs `f` with the regex of a shell pattern.
fn with_compiled<R>(
    toks: &[Tok],
    greedy: bool,
    anchored: bool,
    pattern: &str,
    f: impl FnOnce(&Regex) -> R,
) -> Result<R, ExpandError> {
    let mut re = String::with_capacity(toks.len() * 2 + 2);
    if anchored {
        re.push('^');
    }
    for t in toks {
        match t {
            Tok::Star => re.push_str(if greedy { ".*" } else { ".*?" }),
            Tok::Any => re.push('.'),
            Tok::Lit(c) => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    // Patterns repeat across a Dockerfile (`${VERSION%.*}` in many lines); compiling is the expensive part.
    // The regex is used in place, never cloned: a clone gets a fresh match cache, whose set-up costs more
    // than the search.
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Regex>> = Default::default();
    }
    CACHE.with(|c| {
        if let Some(r) = c.borrow().get(&re) {
            return Ok(f(r));
        }
        let compiled = regex::RegexBuilder::new(&re)
            .size_limit(1 << 20)
            .build()
            .map_err(|_| ExpandError::InvalidPattern {
                pattern: pattern.to_string(),
            })?;
        let out = f(&compiled);
        let mut c = c.borrow_mut();
        if c.len() >= 256 {
            c.clear();
        }
        c.insert(re, compiled);
        Ok(out)
    })
}

/// `${v#p}`/`${v##p}` (prefix) and `${v%p}`/`${v%%p}` (suffix). A suffix is trimmed by reversing
/// value and pattern, so the shortest/longest rightmost match becomes a leftmost one.
fn trim(value: &str, pattern: &str, greedy: bool, suffix: bool) -> Result<String, ExpandError> {
    let mut toks = tokenize(pattern)?;
    if !suffix {
        let end = with_compiled(&toks, greedy, true, pattern, |re| re.find(value).map(|m| m.end()))?;
        return Ok(match end {
            Some(end) => value[end..].to_string(),
            None => value.to_string(),
        });
    }
    toks.reverse();
    let rev: String = value.chars().rev().collect();
    let end = with_compiled(&toks, greedy, true, pattern, |re| re.find(&rev).map(|m| m.end()))?;
    Ok(match end {
        Some(end) => rev[end..].chars().rev().collect(),
        None => value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Result<String, ExpandError> {
        let mut env = |n: &str| match n {
            "a" => Some("hello".to_string()),
            "e" => Some(String::new()),
            "p" => Some("/usr/local/bin".to_string()),
            _ => None,
        };
        Expander::new('\\').word(s, &mut env)
    }

    #[test]
    fn basics() {
        assert_eq!(ex("$a ${a} '$a' \"$a\"").unwrap(), "hello hello $a hello");
        assert_eq!(ex("${x:-d} ${e:-d} ${e-d} ${a:+y} ${x+y}").unwrap(), "d d  y ");
        assert_eq!(
            ex("${p#*/} ${p##*/} ${p%/*} ${p%%/*}").unwrap(),
            "usr/local/bin bin /usr/local "
        );
        assert_eq!(ex("${p/l/L} ${p//l/L}").unwrap(), "/usr/Local/bin /usr/LocaL/bin");
        assert_eq!(
            ex("${x?must}"),
            Err(ExpandError::Required {
                name: "x".into(),
                message: "must".into()
            })
        );
        assert_eq!(ex("${a"), Err(ExpandError::MissingBrace));
        assert_eq!(ex("${}"), Err(ExpandError::BadSubstitution));
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let s = "${a:-".repeat(10_000) + &"}".repeat(10_000);
        assert_eq!(ex(&s), Err(ExpandError::TooDeep));
    }

    #[test]
    fn fields() {
        let mut env = |n: &str| (n == "v").then(|| "x  y".to_string());
        let w = Expander::new('\\').words("a $v \"$v\" ''", &mut env).unwrap();
        assert_eq!(w, vec!["a", "x", "y", "x  y", ""]);
    }
}
