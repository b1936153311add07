//! First pass over the text: parser directives, logical lines (continuations joined with the current
//! escape character; comment and blank lines inside a continuation dropped), and heredoc bodies.
//! Positions are kept through a [`LineMap`] so later passes can point at the source.

use super::ast::{CheckDirective, Directives, Heredoc, Word};
use super::error::{ErrorKind, ParseError, Warning};
use super::expand::Expander;
use super::source::{LineMap, Source};
use super::words::split_words;

/// Size limits: a hostile or broken file fails with a clear error instead of exhausting memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: usize,
    /// For an instruction with its continuations joined; a physical line is also held to BuildKit's
    /// 65535 bytes.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 16 << 20,
            max_line_bytes: 1 << 20,
        }
    }
}

/// One instruction's text with continuations removed, plus the heredoc bodies that followed it.
#[derive(Debug, Clone)]
pub(crate) struct RawLine {
    pub text: String,
    pub map: LineMap,
    pub heredocs: Vec<Heredoc>,
    /// The comment lines since the previous instruction (BuildKit's `PrevComment`).
    pub comments: Vec<String>,
}

pub(crate) struct Lexed {
    pub directives: Directives,
    pub lines: Vec<RawLine>,
    pub warnings: Vec<Warning>,
}

/// The longest physical line BuildKit's parser accepts (`dockerfile line greater than max allowed size
/// of 65535`).
const MAX_PHYSICAL_LINE: usize = 65535;

struct Phys<'a> {
    offset: usize,
    text: &'a str,
}

fn physical_lines<'a>(
    src: &'a str,
    limits: &Limits,
    file: &str,
    source: &Source<'_>,
) -> Result<Vec<Phys<'a>>, ParseError> {
    let mut out = Vec::new();
    let mut start = 0;
    // A UTF-8 byte order mark is not part of the first line.
    if src.starts_with('\u{feff}') {
        start = 3;
    }
    while start < src.len() {
        let end = memchr::memchr(b'\n', &src.as_bytes()[start..]).map_or(src.len(), |i| start + i);
        let text = src[start..end].strip_suffix('\r').unwrap_or(&src[start..end]);
        // BuildKit reads physical lines with a bufio.Scanner, which refuses one over 64 KiB - 1.
        let limit = limits.max_line_bytes.min(MAX_PHYSICAL_LINE);
        if text.len() > limit {
            let span = source.span(start, start);
            return Err(ParseError::at(
                source,
                file,
                span,
                ErrorKind::LineTooLong {
                    len: text.len(),
                    limit,
                },
            ));
        }
        out.push(Phys { offset: start, text });
        start = end + 1;
    }
    Ok(out)
}

/// `# name = value` with a name made of letters and digits; returns (name, value, value offset).
fn directive(line: &str) -> Option<(&str, &str, usize)> {
    let rest = line.strip_prefix('#')?;
    let r = rest.trim_start_matches([' ', '\t']);
    let name_len = r
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(r.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &r[..name_len];
    let after = r[name_len..].trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let value_start = after.trim_start_matches([' ', '\t']);
    let value = value_start.trim_end_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    let off = line.len() - value_start.len();
    Some((name, value, off))
}

fn parse_check(value: &str) -> Option<CheckDirective> {
    let mut c = CheckDirective::default();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "skip" => {
                for rule in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                    if rule.eq_ignore_ascii_case("all") {
                        c.skip_all = true;
                    } else {
                        c.skip.push(rule.to_string());
                    }
                }
            }
            "error" => c.error = v.trim().parse::<bool>().ok()?,
            _ => return None,
        }
    }
    Some(c)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// A comment line's text without the `#`, trimmed; `None` when that leaves nothing.
fn comment_text(line: &str) -> Option<String> {
    let c = line.trim_start().strip_prefix('#')?.trim();
    (!c.is_empty()).then(|| c.to_string())
}

/// Strips a trailing escape character (and whitespace after it); true when the line continues.
///
/// As BuildKit: the escape continues the line unless it is itself escaped (`foo \\` ends the line), so the
/// character before it must be something else or nothing (a line that is only the escape). Like BuildKit, an
/// odd run (`foo \\\`) is not told apart from an even one: any escape before the last one ends the line.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) if !s.ends_with(escape) => (s, true),
        _ => (line, false),
    }
}

pub(crate) fn lex(src: &str, file: &str, limits: &Limits) -> Result<Lexed, ParseError> {
    let source = Source::new(src);
    if src.len() > limits.max_file_bytes {
        return Err(ParseError::whole(
            file,
            ErrorKind::FileTooLarge {
                size: src.len(),
                limit: limits.max_file_bytes,
            },
        ));
    }
    let phys = physical_lines(src, limits, file, &source)?;
    let mut directives = Directives::default();
    let mut warnings = Vec::new();
    let mut lines = Vec::new();
    let mut i = 0;

    // Directives: only at the very top; the first line that is not one ends them (a blank line too).
    let mut seen: Vec<String> = Vec::new();
    // A `#!` first line is skipped when BuildKit looks for `syntax` and `check`; its parser's own
    // directive scan (the one that sets `escape`) stops there, so after one `escape` is ignored.
    let shebang = phys.first().is_some_and(|p| p.text.starts_with("#!"));
    if shebang {
        i = 1;
    }
    while i < phys.len() {
        let p = &phys[i];
        let t = p.text.trim_start_matches([' ', '\t']);
        let lead = p.text.len() - t.len();
        let Some((name, value, voff)) = directive(t) else {
            break;
        };
        let lname = name.to_ascii_lowercase();
        if !matches!(lname.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        let vstart = p.offset + lead + voff;
        let vspan = source.span(vstart, vstart + value.len());
        if seen.contains(&lname) {
            let span = source.span(p.offset + lead, p.offset + p.text.len());
            return Err(ParseError::at(
                &source,
                file,
                span,
                ErrorKind::DuplicateDirective { name: lname },
            ));
        }
        match lname.as_str() {
            "escape" if shebang => {}
            "escape" => {
                directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError::at(
                            &source,
                            file,
                            vspan,
                            ErrorKind::InvalidEscape {
                                value: value.to_string(),
                            },
                        ));
                    }
                }
            }
            "syntax" => {
                directives.syntax = Some(Word {
                    value: value.to_string(),
                    span: vspan,
                })
            }
            // BuildKit keeps the check directive's value up to its first space (`skip=all // why`).
            _ => match parse_check(value.split(' ').next().unwrap_or(value)) {
                Some(c) => directives.check = c,
                None => {
                    return Err(ParseError::at(
                        &source,
                        file,
                        vspan,
                        ErrorKind::InvalidCheckDirective {
                            value: value.to_string(),
                        },
                    ));
                }
            },
        }
        seen.push(lname);
        i += 1;
    }

    let escape = directives.escape;
    // As BuildKit: every comment line before an instruction (directives included) is kept for
    // descriptions; an empty `#` line starts over, a blank line does not.
    let mut comments: Vec<String> = phys[..i].iter().filter_map(|p| comment_text(p.text)).collect();
    while i < phys.len() {
        let p = &phys[i];
        i += 1;
        if is_comment(p.text) {
            match comment_text(p.text) {
                Some(c) => comments.push(c),
                None => comments.clear(),
            }
            continue;
        }
        if p.text.trim().is_empty() {
            continue;
        }
        let t = p.text.trim_start();
        let lead = p.text.len() - t.len();
        let mut text = String::new();
        let mut map = LineMap::default();
        let (piece, mut cont) = strip_continuation(t, escape);
        map.push(0, p.offset + lead, piece.len());
        text.push_str(piece);
        let mut empty_cont_line = None::<usize>;
        while cont && i < phys.len() {
            let q = &phys[i];
            i += 1;
            if is_comment(q.text) {
                continue;
            }
            if q.text.trim().is_empty() {
                empty_cont_line.get_or_insert(q.offset);
                continue;
            }
            let (piece, c) = strip_continuation(q.text, escape);
            cont = c;
            map.push(text.len(), q.offset, piece.len());
            text.push_str(piece);
            if text.len() > limits.max_line_bytes {
                let span = source.span(q.offset, q.offset);
                return Err(ParseError::at(
                    &source,
                    file,
                    span,
                    ErrorKind::LineTooLong {
                        len: text.len(),
                        limit: limits.max_line_bytes,
                    },
                ));
            }
        }
        if empty_cont_line.is_some() {
            // BuildKit reports it at the instruction's last line.
            let off = phys[i - 1].offset;
            warnings.push(Warning::new(
                "NoEmptyContinuation",
                "Empty continuation lines will become errors in a future release",
                Some(source.span(off, off)),
            ));
        }
        let mut heredocs = Vec::new();
        let keyword = text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if matches!(keyword.as_str(), "run" | "copy" | "add") && text.contains("<<") {
            for (name, expand, chomp, fd, s, e) in heredoc_markers(&text) {
                let span = map.span(&source, s, e);
                let body_start = phys.get(i).map_or(src.len(), |q| q.offset);
                let mut content = String::new();
                let mut terminated = false;
                while i < phys.len() {
                    let q = &phys[i];
                    i += 1;
                    let l = if chomp {
                        q.text.trim_start_matches('\t')
                    } else {
                        q.text
                    };
                    if l == name {
                        terminated = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !terminated {
                    return Err(ParseError::at(
                        &source,
                        file,
                        span,
                        ErrorKind::UnterminatedHeredoc { name },
                    ));
                }
                let body_end = phys[i - 1].offset + phys[i - 1].text.len();
                heredocs.push(Heredoc {
                    name,
                    expand,
                    chomp,
                    fd,
                    content,
                    span,
                    body_span: source.span(body_start, body_end),
                });
            }
        }
        lines.push(RawLine {
            text,
            map,
            heredocs,
            comments: std::mem::take(&mut comments),
        });
    }
    Ok(Lexed {
        directives,
        lines,
        warnings,
    })
}

/// Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) among the words of a logical line, as BuildKit
/// finds them: words are split with quotes and escapes kept, then a word must be `[fd]<<[-]NAME`. A
/// quote anywhere in NAME turns expansion of the body off.
/// Returns (name, expand, chomp, fd, start, end) with offsets in `line`.
fn heredoc_markers(line: &str) -> Vec<(String, bool, bool, Option<u32>, usize, usize)> {
    // BuildKit lexes the line with unset variables kept as written, so `<<$EOF` names the word `$EOF`.
    let raw = Expander {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Expander::new('\\')
    };
    let mut out = Vec::new();
    for w in split_words(line, '\\') {
        let slice = &line[w.start..w.end];
        if !slice.contains("<<") {
            continue;
        }
        let Ok(word) = raw.word(slice, &mut |_| None) else {
            continue;
        };
        let digits = word.bytes().take_while(u8::is_ascii_digit).count();
        let Some(rest) = word[digits..].strip_prefix("<<") else {
            continue;
        };
        let fd = if digits > 0 {
            word[..digits].parse().ok()
        } else {
            None
        };
        // `<<-` chomps only when the dash follows `<<` at once; whitespace may follow either (`<< EOF`,
        // `<<- EOF`; `<< -EOF` names `-EOF`), as BuildKit ≥ 0.21's `^(\d*)<<(-?)\s*([^<]*)$`.
        let (chomp, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let rest = rest.trim_start();
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let plain = Expander {
            skip_unset: true,
            ..Expander::new('\\')
        };
        let quoted = Expander {
            raw_quotes: true,
            skip_unset: true,
            ..Expander::new('\\')
        };
        let (Ok(names), Ok(raw_names)) = (
            plain.words(rest, &mut |_| None),
            quoted.words(rest, &mut |_| None),
        ) else {
            continue;
        };
        if names.len() != 1 || raw_names.len() != 1 {
            continue;
        }
        let quotes = |s: &str| s.matches(['\'', '"']).count();
        let expand = quotes(&names[0]) == quotes(&raw_names[0]);
        out.push((names[0].clone(), expand, chomp, fd, w.start, w.end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        lex(src, "Dockerfile", &Limits::default())
            .expect("lexes")
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn an_escaped_escape_ends_the_line() {
        // BuildKit: `\` continues only when the character before it is not the escape too.
        assert_eq!(
            texts("RUN echo a\\\\\nRUN echo b\n"),
            ["RUN echo a\\\\", "RUN echo b"]
        );
        assert_eq!(
            texts("RUN echo a\\\\  \t\nRUN echo b\n"),
            ["RUN echo a\\\\  \t", "RUN echo b"]
        );
        // An odd run is not told apart (BuildKit's regular expression can't either).
        assert_eq!(texts("RUN a \\\\\\\nRUN b\n"), ["RUN a \\\\\\", "RUN b"]);
        // A plain escape, alone on its line too, still continues.
        assert_eq!(texts("RUN a \\\n b\n"), ["RUN a  b"]);
        assert_eq!(texts("RUN a \\\n\\\n b\n"), ["RUN a  b"]);
        // The same with the backtick escape.
        assert_eq!(
            texts("# escape=`\nRUN a``\nRUN b `\n c\n"),
            ["RUN a``", "RUN b  c"]
        );
    }
}

#[cfg(test)]
mod heredoc_tests {
    use super::*;

    fn names(src: &str) -> Vec<Vec<(String, bool, bool)>> {
        lex(src, "Dockerfile", &Limits::default())
            .expect("lexes")
            .lines
            .into_iter()
            .map(|l| {
                l.heredocs
                    .into_iter()
                    .map(|h| (h.name, h.expand, h.chomp))
                    .collect()
            })
            .collect()
    }

    fn one(name: &str, expand: bool, chomp: bool) -> Vec<(String, bool, bool)> {
        vec![(name.to_string(), expand, chomp)]
    }

    #[test]
    fn whitespace_after_the_operator_belongs_to_the_marker() {
        // BuildKit's lexer keeps the blanks after `<<` in the word, then `^(\d*)<<(-?)\s*([^<]*)$`.
        assert_eq!(names("RUN << EOF\nx\nEOF\n"), [one("EOF", true, false)]);
        assert_eq!(names("RUN <<  EOF  > foo\nEOF\n"), [one("EOF", true, false)]);
        assert_eq!(names("RUN << -EOF\nx\n-EOF\n"), [one("-EOF", true, false)]);
        assert_eq!(
            names("RUN <<-\tEOF\n\tx\nEOF\n"),
            [Vec::new(), Vec::new(), Vec::new()]
        );
        assert_eq!(names("RUN << 'EOF'\n$x\nEOF\n"), [one("EOF", false, false)]);
        // Not heredocs: `<<` alone, a herestring, inside quotes.
        assert_eq!(names("RUN echo <<\n"), [Vec::new()]);
        assert_eq!(names("RUN cat <<<word\n"), [Vec::new()]);
        assert_eq!(names("RUN echo '<< EOF'\n"), [Vec::new()]);
    }

    #[test]
    fn a_dollar_in_the_word_is_kept() {
        assert_eq!(names("RUN <<$EOF\n$EOF\n"), [one("$EOF", true, false)]);
        assert_eq!(names("RUN <<E${X}\nx\nE${X}\n"), [one("E${X}", true, false)]);
    }
}

/// BuildKit's parser heredoc vectors (moby/buildkit `frontend/dockerfile/parser/parser_heredoc_test.go`,
/// `TestParseExtractsHeredoc`), transcribed as facts: the same file, and per logical line the heredocs
/// BuildKit finds (name, expand, chomp, fd, content). BuildKit's parser keeps the tabs of a `<<-` body and
/// strips them later; our lexer strips them at once, so the expected content of a chomped body is shown
/// stripped.
#[cfg(test)]
mod buildkit_heredoc_vectors {
    use super::*;

    const FILE: &str = "\nFROM alpine:3.6\n\nENV NAME=me\n\nRUN ls\n\nUSER <<INVALID\nINVALID\n\n\
RUN <<EMPTY\nEMPTY\n\nRUN 3<<EMPTY2\nEMPTY2\n\nRUN \"<<NOHEREDOC\"\n\n\
RUN <<INDENT\n\tfoo\n\tbar\nINDENT\n\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\n\
RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n\nRUN <<-EXPAND\n\texpand $NAME\nEXPAND\n\n\
RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\nRUN <<COPY\necho hello world\necho foo bar\nCOPY\n\n\
RUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\nCOMMENT\n\n\
RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\n\
COPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n\n\
COPY <<EOF /quotes\n\"foo\"\n'bar'\nEOF\n\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n\n\
RUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n\nCOPY <<file.txt /dest\nhello world\nfile.txt\n\n\
RUN <<eo'f'\necho foo\neof\n\nRUN <<eo\\'f\necho foo\neo'f\n\nRUN <<'e'o\\'f\necho foo\neo'f\n\n\
RUN <<'one two'\necho bar\none two\n\nRUN <<$EOF\n$EOF\n\nRUN <<  EOF\nEOF\n\nRUN <<  EOF  > foo\nEOF\n\t";

    type Doc = (&'static str, bool, bool, Option<u32>, &'static str);
    /// (name, expand, chomp, fd, content) of each heredoc of a line.
    type Line = Vec<(String, bool, bool, Option<u32>, String)>;

    #[test]
    fn parser_heredoc_vectors() {
        let none: Vec<Doc> = Vec::new();
        let want: Vec<Vec<Doc>> = vec![
            none.clone(), // ENV
            none.clone(), // RUN ls
            none.clone(), // USER <<INVALID (only RUN, COPY and ADD take heredocs)
            none.clone(), // INVALID
            vec![("EMPTY", true, false, None, "")],
            vec![("EMPTY2", true, false, Some(3), "")],
            none.clone(), // RUN "<<NOHEREDOC"
            vec![("INDENT", true, false, None, "\tfoo\n\tbar\n")],
            vec![("UNINDENT", true, true, None, "baz\nquux\n")],
            vec![("UNINDENT2", true, true, None, "baz\nquux\n")],
            vec![("EXPAND", true, true, None, "expand $NAME\n")],
            vec![("NOEXPAND", false, true, None, "don't expand $NAME\n")],
            vec![("COPY", true, false, None, "echo hello world\necho foo bar\n")],
            vec![(
                "COMMENT",
                true,
                false,
                None,
                "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            )],
            vec![("MOUNT", true, false, None, "echo hello\n")],
            vec![
                ("FILE1", true, false, None, "content 1\n"),
                ("FILE2", true, false, None, "content 2\n"),
            ],
            vec![("EOF", true, false, None, "\"foo\"\n'bar'\n")],
            vec![("X", true, false, None, "Y\n"), ("Y", true, false, None, "X\n")],
            vec![("COMPLEX", true, false, None, "print('hello world')\n")],
            vec![("file.txt", true, false, None, "hello world\n")],
            vec![("eof", false, false, None, "echo foo\n")],
            vec![("eo'f", true, false, None, "echo foo\n")],
            vec![("eo'f", false, false, None, "echo foo\n")],
            vec![("one two", false, false, None, "echo bar\n")],
            vec![("$EOF", true, false, None, "")],
            vec![("EOF", true, false, None, "")],
            vec![("EOF", true, false, None, "")],
        ];
        let lexed = lex(FILE, "Dockerfile", &Limits::default()).expect("lexes");
        let got: Vec<Line> = lexed.lines[1..]
            .iter()
            .map(|l| {
                l.heredocs
                    .iter()
                    .map(|h| (h.name.clone(), h.expand, h.chomp, h.fd, h.content.clone()))
                    .collect()
            })
            .collect();
        let want: Vec<Line> = want
            .into_iter()
            .map(|v| {
                v.into_iter()
                    .map(|(n, e, c, f, body)| (n.to_string(), e, c, f, body.to_string()))
                    .collect()
            })
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "lines: {:?}",
            lexed.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "line {} ({:?})", i + 1, lexed.lines[i + 1].text);
        }
    }
}

/// BuildKit's `TestParseHeredocHelpers`, `TestHeredocsFromLine` and `TestParseJSONHeredoc` (parser
/// package), transcribed as facts about which words are heredoc markers and what they name.
#[cfg(test)]
mod buildkit_heredoc_helpers {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        heredoc_markers(line).into_iter().map(|m| m.0).collect()
    }

    #[test]
    fn markers_as_buildkit_finds_them() {
        // `<<- EOF` is valid for BuildKit's ParseHeredoc on one word, but its shell lexer never makes that
        // word: blanks are kept only right after `<<`, so on a line `<<-` and `EOF` are two words and
        // no heredoc (its TestHeredocsFromLine doesn't check the count, so it passes with none).
        for w in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
        ] {
            assert_eq!(names(&format!("RUN {w}")), ["EOF"], "{w}");
        }
        // ParseHeredoc refuses an unterminated quote, but on a line the shell lexer fails first and
        // heredocsFromLine ignores that error: no heredoc (the body lines are then instructions).
        for w in [
            "", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\"",
        ] {
            assert!(names(&format!("RUN {w}")).is_empty(), "{w}");
        }
        for (line, want) in [
            ("RUN <<EOF", &["EOF"][..]),
            ("RUN <<-EOF", &["EOF"]),
            ("RUN <<- EOF", &[]),
            ("RUN << -EOF", &["-EOF"]),
            ("RUN <<'EOF'", &["EOF"]),
            ("RUN 4<<EOF", &["EOF"]),
            ("RUN <<EOF <<EOF2", &["EOF", "EOF2"]),
            ("RUN '<<EOF'", &[]),
            ("RUN \"<<EOF\"", &[]),
        ] {
            assert_eq!(names(line), want, "{line}");
        }
    }

    #[test]
    fn json_form_has_no_heredocs() {
        let lexed = lex(
            "FROM a\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n",
            "Dockerfile",
            &Limits::default(),
        )
        .expect("lexes");
        assert!(lexed.lines.iter().all(|l| l.heredocs.is_empty()));
    }
}
