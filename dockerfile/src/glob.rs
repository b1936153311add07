//! The builder's glob matching: Go's `filepath.Match` for one path component (COPY/ADD source wildcards,
//! as BuildKit uses it), and slash-separated paths matched component by component where a whole `**`
//! component spans any number of directories (COPY `--exclude`, as in `.dockerignore`).
//!
//! The component matcher follows Go's algorithm: the pattern is cut into chunks at each `*`, and only the
//! most recent `*` is ever retried, so matching costs O(pattern × name) even for hostile patterns like
//! `*a*a*a*a*b` (a naive recursive matcher is exponential there, and patterns come from Dockerfiles).

/// Does `s` contain a glob metacharacter (`*`, `?`, `[`)?
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go `filepath.Match`: `*` (any run of non-`/` characters), `?` (one non-`/` character), `[a-z]`, `[^x]`
/// (also `[!x]`, which docker has always accepted), and `\\` escapes. A malformed pattern (unterminated
/// class, unescaped `-` or `]` where a class character belongs, dangling `\\`) matches nothing, where Go
/// reports `ErrBadPattern`.
pub fn match_component(pattern: &str, name: &str) -> bool {
    Glob::compile(pattern, Dialect::Go).is_some_and(|g| g.matches(name))
}

/// Matches a slash-separated `path` against `pattern` component by component; a component that is exactly
/// `**` matches zero or more components. Empty and `.` components of the pattern (leading, trailing or
/// doubled slashes) are ignored.
pub fn match_path(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let n: Vec<&str> = path.split('/').collect();
    // reach[j]: the pattern so far matches exactly the first j components of the path. A table instead of
    // recursion keeps several `**` at O(pattern × path) component matches.
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for pc in &p {
        let mut next = vec![false; n.len() + 1];
        if *pc == "**" {
            let mut any = false;
            for j in 0..=n.len() {
                any |= reach[j];
                next[j] = any;
            }
        } else {
            for j in 0..n.len() {
                next[j + 1] = reach[j] && match_component(pc, n[j]);
            }
        }
        reach = next;
    }
    reach[n.len()]
}

/// Which pattern language a [`Glob`] is compiled from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Go's `filepath.Match`: `**` is just two stars.
    Go,
    /// `.dockerignore` as BuildKit's patternmatcher reads it: `**/` spans any number of directories
    /// (`(.*/)?`), a trailing `**` matches anything, `**` elsewhere spans directories too; a class may start
    /// with `]` or end with `-` (both literal, as in a regexp class) and a trailing `\\` is a literal.
    Dockerignore,
}

#[derive(Clone, Debug)]
enum Tok {
    Lit(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    Class(Class),
    /// `**/` (and `**` inside a segment): empty, or anything ending in `/`.
    Dirs,
    /// A trailing `**`: anything.
    All,
}

#[derive(Clone, Debug)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, ch: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != self.negated
    }
}

/// A compiled glob. Matching runs one pass over the name per pattern token (a table of reachable
/// positions), so it costs O(pattern × name) whatever the pattern: patterns come from Dockerfiles and
/// `.dockerignore` files, and a backtracking matcher is exponential on `*a*a*a*a*b`.
#[derive(Clone, Debug)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// Compiles `pattern`; `None` if it is malformed in `dialect`.
    pub fn compile(pattern: &str, dialect: Dialect) -> Option<Glob> {
        let p: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < p.len() {
            let c = p[i];
            i += 1;
            match c {
                '*' if dialect == Dialect::Dockerignore && p.get(i) == Some(&'*') => {
                    i += 1;
                    if p.get(i) == Some(&'/') {
                        i += 1;
                    }
                    toks.push(if i >= p.len() { Tok::All } else { Tok::Dirs });
                }
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::One),
                '[' => {
                    let (class, next) = parse_class(&p, i, dialect)?;
                    toks.push(Tok::Class(class));
                    i = next;
                }
                '\\' => match p.get(i) {
                    Some(&lit) => {
                        toks.push(Tok::Lit(lit));
                        i += 1;
                    }
                    None if dialect == Dialect::Dockerignore => toks.push(Tok::Lit('\\')),
                    None => return None,
                },
                lit => toks.push(Tok::Lit(lit)),
            }
        }
        Some(Glob { toks })
    }

    pub fn matches(&self, name: &str) -> bool {
        let s: Vec<char> = name.chars().collect();
        // reach[j]: the tokens so far can match exactly s[..j].
        let mut reach = vec![false; s.len() + 1];
        reach[0] = true;
        for tok in &self.toks {
            let mut next = vec![false; s.len() + 1];
            match tok {
                Tok::Star => {
                    for j in 0..=s.len() {
                        next[j] = reach[j] || (j > 0 && next[j - 1] && s[j - 1] != '/');
                    }
                }
                Tok::All => {
                    let mut any = false;
                    for j in 0..=s.len() {
                        any |= reach[j];
                        next[j] = any;
                    }
                }
                Tok::Dirs => {
                    let mut any_before = false;
                    for j in 0..=s.len() {
                        next[j] = reach[j] || (j > 0 && any_before && s[j - 1] == '/');
                        any_before |= reach[j];
                    }
                }
                single => {
                    for j in 0..s.len() {
                        next[j + 1] = reach[j]
                            && match single {
                                Tok::Lit(c) => s[j] == *c,
                                Tok::One => s[j] != '/',
                                Tok::Class(class) => class.matches(s[j]),
                                _ => unreachable!("multi-character tokens are handled above"),
                            };
                    }
                }
            }
            reach = next;
            if !reach.iter().any(|r| *r) {
                return false;
            }
        }
        reach[s.len()]
    }
}

/// Parses a class whose body starts at `p[i]` (after `[`); returns it and the index after `]`.
fn parse_class(p: &[char], mut i: usize, dialect: Dialect) -> Option<(Class, usize)> {
    let negated = matches!(p.get(i), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match p.get(i)? {
            ']' if !ranges.is_empty() => return Some((Class { negated, ranges }, i + 1)),
            _ => {}
        }
        let (lo, next) = class_char(p, i, dialect, ranges.is_empty())?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            match (dialect, p.get(i + 1)) {
                // `[a-]`: a literal `-` at the end, as in a regexp class.
                (Dialect::Dockerignore, Some(']')) => {}
                _ => {
                    let (h, next) = class_char(p, i + 1, dialect, false)?;
                    hi = h;
                    i = next;
                }
            }
        }
        ranges.push((lo, hi));
    }
}

/// One class character at `p[i]`, `\\` escapes allowed. In Go an unescaped `-` or `]` here is malformed;
/// in a `.dockerignore` class they are literal (`]` only first), as in a regexp class.
fn class_char(p: &[char], i: usize, dialect: Dialect, first: bool) -> Option<(char, usize)> {
    match (p.get(i)?, dialect) {
        ('\\', _) => Some((*p.get(i + 1)?, i + 2)),
        ('-' | ']', Dialect::Go) => None,
        (']', Dialect::Dockerignore) if !first => None,
        (c, _) => Some((*c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_like_go() {
        // Cases from Go's filepath.Match documentation and tests.
        for (pat, name, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a?b", "a/b", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("ab[!e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[x\\-]", "-", true),
            ("*x", "xxx", true),
            ("*.txt", "a.txt", true),
            ("*.txt", "a.txt.bak", false),
            ("f?le", "file", true),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(match_component(pat, name), want, "{pat:?} vs {name:?}");
        }
    }

    #[test]
    fn malformed_patterns_match_nothing() {
        for pat in ["[", "[^", "[]a]", "[-]", "a[", "[a-", "a\\", "[x-]", "*[", "*x["] {
            for name in ["", "a", "[", "x", "]a"] {
                assert!(!match_component(pat, name), "{pat:?} vs {name:?}");
            }
        }
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let name = "a".repeat(2000);
        let pat = format!("{}b", "*a".repeat(30));
        let t = std::time::Instant::now();
        assert!(!match_component(&pat, &name));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        let deep = vec!["a"; 200].join("/");
        assert!(!match_path(&format!("{}b", "**/".repeat(20)), &deep));
    }

    #[test]
    fn dockerignore_dialect_like_buildkit() {
        let m = |pat: &str, path: &str| Glob::compile(pat, Dialect::Dockerignore).unwrap().matches(path);
        // `**/` spans zero or more directories; a trailing `**` anything; `*`, `?` stay in a segment.
        assert!(m("**/*.go", "a.go"));
        assert!(m("**/*.go", "x/y/a.go"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/x/y/c"));
        assert!(m("a/**", "a/x/y"));
        assert!(!m("a/**", "a"));
        assert!(m("a**", "abc/d"));
        assert!(m("a**b", "ab"));
        assert!(m("a**b", "ax/y/b"));
        assert!(!m("a**b", "axb"));
        assert!(!m("*.go", "x/a.go"));
        assert!(!m("?", "/"));
        // Classes: `]` first and `-` last are literal, a trailing backslash is literal.
        assert!(m("[]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[!a]x", "bx"));
        assert!(m("x\\", "x\\"));
        assert!(Glob::compile("[a", Dialect::Dockerignore).is_none());
        // In Go's dialect the same are errors, and `**` is two stars.
        for bad in ["[]a]", "[a-]", "x\\"] {
            assert!(Glob::compile(bad, Dialect::Go).is_none(), "{bad:?}");
        }
        assert!(!Glob::compile("a**", Dialect::Go).unwrap().matches("ab/c"));
        // Linear time on a hostile pattern.
        let t = std::time::Instant::now();
        let name = "a/".repeat(500);
        assert!(!m(&format!("{}b", "**a".repeat(40)), &name));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn paths_with_double_star() {
        for (pat, path, want) in [
            ("*.md", "README.md", true),
            ("*.md", "docs/a.md", false),
            ("**/*.md", "docs/a.md", true),
            ("**/*.md", "a.md", true),
            ("docs/**", "docs/a/b", true),
            ("docs/**", "docs", true),
            ("docs/**/x", "docs/x", true),
            ("docs/**/x", "docs/a/b/x", true),
            ("docs/**/x", "docs/a/b/y", false),
            ("docs", "docs", true),
            ("docs", "docs/a", false),
            ("/docs/./a/", "docs/a", true),
            ("**", "anything/at/all", true),
            ("a/*/c", "a/b/c", true),
            ("a/*/c", "a/b/b/c", false),
        ] {
            assert_eq!(match_path(pat, path), want, "{pat:?} vs {path:?}");
        }
    }
}
