//! Splitting an instruction's text into words the way BuildKit's parser does, keeping offsets: quote-aware
//! words (ENV, LABEL, ARG), whitespace words (FROM, COPY, EXPOSE, VOLUME), leading `--flags`, and JSON
//! string arrays (exec form).

/// A word and its byte range in the logical line. `text` is the word with BuildKit's parse-time
/// processing applied (quotes kept for later expansion, or removed for flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawWord {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Quote-aware split: whitespace outside quotes separates words; quotes and escapes stay in the word
/// (expansion removes them later); an escape character at the very end is dropped.
pub(crate) fn split_words(s: &str, escape: char) -> Vec<RawWord> {
    let mut out = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let mut text = String::new();
        let mut quote: Option<char> = None;
        let mut end = start;
        while let Some(&(i, c)) = it.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            it.next();
            end = i + c.len_utf8();
            match quote {
                None => {
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                        text.push(c);
                    } else if c == '<' && it.peek().is_some_and(|&(_, n)| n == '<') {
                        // A heredoc operator keeps the whitespace after it in its word (`<<  EOF` is one
                        // word), as BuildKit's lexer does.
                        it.next();
                        text.push_str("<<");
                        end = i + 2;
                        while let Some(&(j, w)) = it.peek() {
                            if !w.is_whitespace() || w == '\n' {
                                break;
                            }
                            it.next();
                            text.push(w);
                            end = j + w.len_utf8();
                        }
                    } else if c == escape {
                        if let Some((j, n)) = it.next() {
                            text.push(c);
                            text.push(n);
                            end = j + n.len_utf8();
                        }
                    } else {
                        text.push(c);
                    }
                }
                Some(q) => {
                    if c == q {
                        quote = None;
                        text.push(c);
                    } else if c == escape && q != '\'' {
                        match it.next() {
                            Some((j, n)) => {
                                text.push(c);
                                text.push(n);
                                end = j + n.len_utf8();
                            }
                            None => quote = None,
                        }
                    } else {
                        text.push(c);
                    }
                }
            }
        }
        out.push(RawWord { text, start, end });
    }
    out
}

/// Split on whitespace only; quotes mean nothing here (BuildKit needs JSON form for spaces in COPY paths).
pub(crate) fn split_whitespace(s: &str) -> Vec<RawWord> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(st)) => {
                out.push(RawWord {
                    text: s[st..i].to_string(),
                    start: st,
                    end: i,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(RawWord {
            text: s[st..].to_string(),
            start: st,
            end: s.len(),
        });
    }
    out
}

/// Leading `--name[=value]` words. Quotes are removed and `\` escapes the next character; a bare `--`
/// ends the flags. Returns the flags and the offset where the arguments start.
pub(crate) fn extract_flags(s: &str) -> (Vec<RawWord>, usize) {
    let b = s.as_bytes();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && (b[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if !(s[pos..].starts_with("--")) {
            return (flags, pos);
        }
        let start = pos;
        let mut text = String::new();
        let mut quote: Option<char> = None;
        let mut chars = s[pos..].char_indices();
        let mut end = s.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => match chars.next() {
                    Some((_, n)) => text.push(n),
                    None => {
                        if quote.is_some() {
                            quote = None;
                        }
                    }
                },
                _ => text.push(c),
            }
        }
        pos = end;
        if text == "--" {
            return (flags, pos);
        }
        flags.push(RawWord { text, start, end });
        if pos >= s.len() {
            return (flags, pos);
        }
    }
}

/// Result of trying the exec (JSON) form.
pub(crate) enum Json {
    /// Not a JSON array: use the shell form.
    No,
    /// A JSON array with something other than strings in it: an error, not a fallback.
    NotStrings,
    Strings(Vec<RawWord>),
}

/// Parses `["a", "b"]` keeping the byte range of each string literal.
pub(crate) fn parse_json_array(s: &str, base: usize) -> Json {
    let t = s.trim_start();
    if !t.starts_with('[') {
        return Json::No;
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Json::No;
    };
    if values.iter().any(|v| !v.is_string()) {
        return Json::NotStrings;
    }
    // Valid JSON array of strings: find each literal's range by scanning quotes.
    let lead = s.len() - t.len();
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(values.len());
    let mut i = 0;
    while i < b.len() && out.len() < values.len() {
        if b[i] == b'"' {
            let st = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            let en = (i + 1).min(b.len());
            let text = serde_json::from_str::<String>(&t[st..en]).unwrap_or_default();
            out.push(RawWord {
                text,
                start: base + lead + st,
                end: base + lead + en,
            });
        }
        i += 1;
    }
    Json::Strings(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_aware_words() {
        let w = split_words(r#"a="b c" d\ e 'f\' g"#, '\\');
        let t: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, vec![r#"a="b c""#, r"d\ e", r"'f\'", "g"]);
        assert_eq!((w[1].start, w[1].end), (8, 12));
    }

    #[test]
    fn flags() {
        let (f, rest) = extract_flags("--from=x --chown=\"a b\" src dst");
        assert_eq!(
            f.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            vec!["--from=x", "--chown=a b"]
        );
        assert_eq!(rest, 23);
        let (f, rest) = extract_flags("-- --x");
        assert!(f.is_empty());
        assert_eq!(rest, 2);
    }

    #[test]
    fn json() {
        match parse_json_array(r#" ["a\"b", "c"] "#, 10) {
            Json::Strings(w) => {
                assert_eq!(w[0].text, "a\"b");
                assert_eq!((w[0].start, w[0].end), (12, 18));
            }
            _ => panic!("not parsed"),
        }
        assert!(matches!(parse_json_array("[1]", 0), Json::NotStrings));
        assert!(matches!(parse_json_array("[a]", 0), Json::No));
    }
}
