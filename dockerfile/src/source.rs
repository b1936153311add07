//! Positions in the Dockerfile text: a line table for offset → line:column, spans that survive line
//! continuations, and the caret snippets printed under error messages.

use std::fmt;

use serde::{Serialize, Serializer};

/// A 1-based line and column (columns count characters, so carets line up under non-ASCII text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A source range. `end` is exclusive on the column. A span may cover several physical lines when a
/// word was continued with the escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub fn new(start: Pos, end: Pos) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}-{}:{}",
            self.start.line, self.start.col, self.end.line, self.end.col
        )
    }
}

// Spans print as "L:C-L:C" strings: goldens stay readable and diffs stay small.
impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The Dockerfile text with a table of line starts.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Source { text, line_starts }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Line and column of a byte offset (clamped to the text; offsets inside a UTF-8 sequence round down).
    pub fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count() + 1;
        Pos {
            line: (line + 1) as u32,
            col: col as u32,
        }
    }

    pub fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.pos(start), self.pos(end))
    }

    /// The text of a 1-based line without its line terminator.
    pub fn line_text(&self, line: u32) -> Option<&'a str> {
        let i = (line as usize).checked_sub(1)?;
        let start = *self.line_starts.get(i)?;
        let end = self.line_starts.get(i + 1).copied().unwrap_or(self.text.len());
        let l = &self.text[start..end];
        Some(l.strip_suffix('\n').unwrap_or(l).trim_end_matches('\r'))
    }

    /// A two-line caret snippet for `span`: the source line and carets under the spanned part of it.
    pub fn snippet(&self, span: Span) -> String {
        let Some(text) = self.line_text(span.start.line) else {
            return String::new();
        };
        let width = text.chars().count() as u32;
        let from = span.start.col.clamp(1, width + 1);
        let to = if span.end.line == span.start.line {
            span.end.col.clamp(from + 1, width.max(from) + 1)
        } else {
            width.max(from) + 1
        };
        let num = span.start.line.to_string();
        let pad = " ".repeat(num.len());
        // Tabs keep their width in the caret line so the carets stay aligned in a terminal.
        let lead: String = text
            .chars()
            .take((from - 1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "{num} | {text}\n{pad} | {lead}{}",
            "^".repeat((to - from).max(1) as usize)
        )
    }
}

/// Maps offsets of a logical line (physical lines joined after removing continuations, comments and
/// empty lines) back to offsets in the source.
#[derive(Debug, Clone, Default)]
pub struct LineMap {
    /// (offset in the logical line, offset in the source) at the start of every joined piece.
    segments: Vec<(usize, usize)>,
    len: usize,
}

impl LineMap {
    pub fn push(&mut self, logical_start: usize, source_start: usize, len: usize) {
        self.segments.push((logical_start, source_start));
        self.len = logical_start + len;
    }

    pub fn source_offset(&self, logical: usize) -> usize {
        let i = match self.segments.binary_search_by(|s| s.0.cmp(&logical)) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        };
        let (l, s) = self.segments.get(i).copied().unwrap_or((0, 0));
        s + logical.saturating_sub(l)
    }

    /// Span of the logical range `start..end`; an end that falls on a piece boundary stays on the
    /// earlier piece's line.
    pub fn span(&self, src: &Source<'_>, start: usize, end: usize) -> Span {
        let s = src.pos(self.source_offset(start));
        let e = if end > start {
            let last = self.source_offset(end - 1);
            let p = src.pos(last);
            Pos {
                line: p.line,
                col: p.col + 1,
            }
        } else {
            s
        };
        Span::new(s, e)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_snippet() {
        let src = Source::new("FROM a\r\nCOPY --frm=x b c\n");
        assert_eq!(src.pos(0), Pos { line: 1, col: 1 });
        assert_eq!(src.pos(13), Pos { line: 2, col: 6 });
        assert_eq!(src.line_text(1), Some("FROM a"));
        let snip = src.snippet(src.span(13, 18));
        assert_eq!(snip, "2 | COPY --frm=x b c\n  |      ^^^^^");
    }

    #[test]
    fn line_map_crosses_pieces() {
        let src = Source::new("RUN a \\\n  b\n");
        let mut m = LineMap::default();
        m.push(0, 0, 6);
        m.push(6, 8, 3);
        assert_eq!(m.span(&src, 4, 5).to_string(), "1:5-1:6");
        assert_eq!(m.span(&src, 8, 9).to_string(), "2:3-2:4");
    }
}
