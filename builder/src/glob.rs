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
/// (also `[!x]`, which docker has always accepted), and `\` escapes. A malformed pattern (unterminated
/// class, unescaped `-` or `]` where a class character belongs, dangling `\`) matches nothing, where Go
/// reports `ErrBadPattern`.
pub fn match_component(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (&p[..], &n[..]);
    'chunks: while !p.is_empty() {
        let (star, chunk, rest) = scan_chunk(p);
        p = rest;
        if star && chunk.is_empty() {
            // A trailing `*` takes the rest of the component.
            return !n.contains(&'/');
        }
        // Without a star before it, the chunk must match here; with one, at the first place that works
        // (a later failure never needs an earlier star retried: the chunk between stars is fixed text).
        match match_chunk(chunk, n) {
            Chunk::Bad => return false,
            Chunk::Rest(t) if t.is_empty() || !p.is_empty() => {
                n = t;
                continue;
            }
            _ => {}
        }
        if star {
            for i in 0..n.len() {
                if n[i] == '/' {
                    break;
                }
                match match_chunk(chunk, &n[i + 1..]) {
                    Chunk::Bad => return false,
                    // The last chunk must end the name; keep looking for a later place that does.
                    Chunk::Rest(t) if p.is_empty() && !t.is_empty() => continue,
                    Chunk::Rest(t) => {
                        n = t;
                        continue 'chunks;
                    }
                    Chunk::NoMatch => {}
                }
            }
        }
        return false;
    }
    n.is_empty()
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

/// Splits off the leading stars (whether there were any) and the chunk up to the next unescaped `*`
/// outside a class.
fn scan_chunk(p: &[char]) -> (bool, &[char], &[char]) {
    let mut p = p;
    let mut star = false;
    while p.first() == Some(&'*') {
        p = &p[1..];
        star = true;
    }
    let mut in_class = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    let i = i.min(p.len());
    (star, &p[..i], &p[i..])
}

enum Chunk<'a> {
    /// The chunk matched a prefix; here is the rest of the name.
    Rest(&'a [char]),
    NoMatch,
    /// The pattern is malformed.
    Bad,
}

/// Matches a star-free chunk against the start of `s`.
fn match_chunk<'a>(chunk: &[char], s: &'a [char]) -> Chunk<'a> {
    let (mut c, mut s) = (chunk, s);
    // A failed match still scans the whole chunk, so a malformed class is reported whatever the name.
    let mut failed = false;
    while let Some(&pc) = c.first() {
        match pc {
            '[' => {
                let Some(class) = parse_class(&c[1..]) else {
                    return Chunk::Bad;
                };
                match s.first() {
                    Some(ch) if !failed && class.matches(*ch) => s = &s[1..],
                    _ => failed = true,
                }
                c = class.rest;
            }
            '?' => {
                match s.first() {
                    Some(ch) if !failed && *ch != '/' => s = &s[1..],
                    _ => failed = true,
                }
                c = &c[1..];
            }
            '\\' => {
                let Some(&lit) = c.get(1) else {
                    return Chunk::Bad;
                };
                match s.first() {
                    Some(ch) if !failed && *ch == lit => s = &s[1..],
                    _ => failed = true,
                }
                c = &c[2..];
            }
            lit => {
                match s.first() {
                    Some(ch) if !failed && *ch == lit => s = &s[1..],
                    _ => failed = true,
                }
                c = &c[1..];
            }
        }
    }
    if failed { Chunk::NoMatch } else { Chunk::Rest(s) }
}

struct Class<'a> {
    negated: bool,
    ranges: Vec<(char, char)>,
    /// The pattern after the closing `]`.
    rest: &'a [char],
}

impl Class<'_> {
    fn matches(&self, ch: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != self.negated
    }
}

/// Parses a class body (after `[`); `None` if it is malformed (unterminated, empty, a dangling escape).
fn parse_class(p: &[char]) -> Option<Class<'_>> {
    let mut p = p;
    let negated = matches!(p.first(), Some('^' | '!'));
    if negated {
        p = &p[1..];
    }
    let mut ranges = Vec::new();
    loop {
        match p.first()? {
            ']' if !ranges.is_empty() => {
                return Some(Class {
                    negated,
                    ranges,
                    rest: &p[1..],
                });
            }
            _ => {}
        }
        let (lo, after) = class_char(p)?;
        p = after;
        let mut hi = lo;
        if p.first() == Some(&'-') {
            let (h, after) = class_char(&p[1..])?;
            hi = h;
            p = after;
        }
        ranges.push((lo, hi));
    }
}

/// One class character, `\` escapes allowed; an unescaped `-` or `]` here is malformed (as in Go).
fn class_char(p: &[char]) -> Option<(char, &[char])> {
    match p.first()? {
        '\\' => Some((*p.get(1)?, &p[2..])),
        '-' | ']' => None,
        c => Some((*c, &p[1..])),
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
