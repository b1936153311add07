//! `--format` as the docker CLI reads it: `table` (the command's default columns), `json` (one object per
//! line), `table TEMPLATE` (a header row, then one row per item, aligned like docker's tabwriter) or a bare Go
//! template run once per item. Templates are Go `text/template` (the `gotmpl` crate, a port with Go's output)
//! plus docker's functions: `json`, `join`, `split`, `lower`, `upper`, `title`, `pad`, `truncate`.
//!
//! Why gotmpl: of the Rust Go-template crates it is the maintained one with Go's semantics (pipelines,
//! `range`/`with`/`if … else if`, variables, `printf` with Go's verbs, maps printed `map[k:v]` in key order);
//! gtmpl has had no release since 2021 and lacks parts of `printf`; minijinja/handlebars are other languages.
//!
//! Rows are `serde_json` objects keyed by docker's field names; [`to_value`] turns them into template data.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{Template, Value};

/// Why a `--format` can't be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("template parsing error in --format {format:?}")]
    Parse {
        format: String,
        #[source]
        source: gotmpl::TemplateError,
    },
    #[error("executing --format {format:?}")]
    Execute {
        format: String,
        #[source]
        source: gotmpl::TemplateError,
    },
}

/// A parsed `--format`.
pub enum Format {
    /// `table TEMPLATE` (or the default): header row, aligned columns. Keeps its source: the header row is
    /// the same source run with pass-through functions.
    Table(Template, String),
    /// A bare template (`json` is `{{json .}}`): one output line per item, no header.
    Raw(Template),
}

/// One listing's shape: its default table template and the header of each field.
pub struct Listing {
    pub default_table: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
}

impl Format {
    /// Parses `--format` (`None`/`""`/`table`: the listing's default table).
    pub fn parse(format: Option<&str>, listing: &Listing) -> Result<Format, FormatError> {
        let f = format.unwrap_or("").trim();
        let (table, body) = match f {
            "" | "table" => (true, listing.default_table.strip_prefix("table ").unwrap_or("")),
            "json" => (false, "{{json .}}"),
            _ => match f.strip_prefix("table") {
                Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => (true, rest),
                _ => (false, f),
            },
        };
        // Like docker: the two-character escapes `\t` and `\n` in a format mean tab and newline.
        let body = body.trim_matches(' ').replace(r"\t", "\t").replace(r"\n", "\n");
        let t = template(&body).map_err(|source| FormatError::Parse {
            format: f.to_owned(),
            source,
        })?;
        Ok(if table {
            Format::Table(t, body)
        } else {
            Format::Raw(t)
        })
    }

    /// Renders `rows` (objects keyed by docker field names) for stdout.
    pub fn render(&self, rows: &[serde_json::Value], listing: &Listing) -> Result<String, FormatError> {
        let exec = |t: &Template, v: &Value| {
            t.execute_to_string(v).map_err(|source| FormatError::Execute {
                format: t.name().to_owned(),
                source,
            })
        };
        match self {
            Format::Raw(t) => {
                let mut out = String::new();
                for r in rows {
                    out.push_str(&exec(t, &to_value(r))?);
                    out.push('\n');
                }
                Ok(out)
            }
            Format::Table(t, src) => {
                let header: BTreeMap<String, Value> = listing
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                    .collect();
                let mut text = header_template(src)
                    .and_then(|h| h.execute_to_string(&Value::from(header)).ok())
                    .unwrap_or_default();
                text.push('\n');
                for r in rows {
                    text.push_str(&exec(t, &to_value(r))?);
                    text.push('\n');
                }
                Ok(tabwrite(&text))
            }
        }
    }
}

/// Runs a Go template once on `data` (`inspect --format`): no table mode, `\t`/`\n` escapes as docker reads them.
pub fn execute_once(format: &str, data: &serde_json::Value) -> Result<String, FormatError> {
    let body = format.replace(r"\t", "\t").replace(r"\n", "\n");
    let t = template(&body).map_err(|source| FormatError::Parse {
        format: format.to_owned(),
        source,
    })?;
    t.execute_to_string(&to_value(data))
        .map_err(|source| FormatError::Execute {
            format: format.to_owned(),
            source,
        })
}

/// The template's source with docker's functions registered.
fn template(body: &str) -> Result<Template, gotmpl::TemplateError> {
    let s = |args: &[Value], i: usize| args.get(i).map(plain).unwrap_or_default();
    Template::new(body)
        .func("json", |args: &[Value]| {
            let v = args.first().map(to_json).unwrap_or(serde_json::Value::Null);
            Ok(Value::from(serde_json::to_string(&v).unwrap_or_default()))
        })
        .func("join", move |args: &[Value]| {
            let sep = s(args, 1);
            let items: Vec<String> = match args.first() {
                Some(Value::List(l)) => l.iter().map(plain).collect(),
                Some(v) => vec![plain(v)],
                None => Vec::new(),
            };
            Ok(Value::from(items.join(&sep)))
        })
        .func("split", move |args: &[Value]| {
            let (text, sep) = (s(args, 0), s(args, 1));
            Ok(Value::from(
                text.split(sep.as_str()).map(Value::from).collect::<Vec<_>>(),
            ))
        })
        .func("lower", move |args: &[Value]| {
            Ok(Value::from(s(args, 0).to_lowercase()))
        })
        .func("upper", move |args: &[Value]| {
            Ok(Value::from(s(args, 0).to_uppercase()))
        })
        .func("title", move |args: &[Value]| Ok(Value::from(title(&s(args, 0)))))
        .func("pad", move |args: &[Value]| {
            let n = |i| args.get(i).and_then(Value::as_int).unwrap_or(0).max(0) as usize;
            Ok(Value::from(format!(
                "{}{}{}",
                " ".repeat(n(1)),
                s(args, 0),
                " ".repeat(n(2))
            )))
        })
        .func("truncate", move |args: &[Value]| {
            let n = args.get(1).and_then(Value::as_int).unwrap_or(0).max(0) as usize;
            Ok(Value::from(s(args, 0).chars().take(n).collect::<String>()))
        })
        .parse(body)
}

/// The same template with every docker function passing its first argument through, run on the header
/// map: `{{upper .Repository}}` heads its column `REPOSITORY`, as docker's header functions do.
fn header_template(src: &str) -> Option<Template> {
    let id = |args: &[Value]| Ok(args.first().cloned().unwrap_or(Value::Nil));
    let mut h = Template::new("header");
    for f in [
        "json", "join", "split", "lower", "upper", "title", "pad", "truncate",
    ] {
        h = h.func(f, id);
    }
    h.parse(src).ok()
}

/// A string as Go's `%v` prints it; other values by their Go rendering.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

/// JSON → template data (objects become maps, so `{{.Field}}` and `{{range}}` work on them).
pub fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::Uint(u),
            (_, Some(i)) => Value::Int(i),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::from(a.iter().map(to_value).collect::<Vec<_>>()),
        serde_json::Value::Object(m) => Value::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), to_value(v)))
                .collect(),
        )),
    }
}

/// Template data → JSON, for the `json` function (map keys sorted, as Go marshals a map).
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::List(l) => l.iter().map(to_json).collect(),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
        }
        Value::Function(_) => serde_json::Value::Null,
    }
}

/// Go's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` as docker uses it: tab-terminated cells padded to
/// the column's widest cell plus 3 (at least 10); the text after a line's last tab is not padded. A column
/// spans the run of consecutive lines that have it, as in Go.
pub fn tabwrite(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text
        .split_inclusive('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let width = |s: &str| unicode_width::UnicodeWidthStr::width(s.trim_end_matches('\n'));
    let mut widths: Vec<Vec<usize>> = lines.iter().map(|l| vec![0; l.len().saturating_sub(1)]).collect();
    let cols = lines.iter().map(|l| l.len().saturating_sub(1)).max().unwrap_or(0);
    for c in 0..cols {
        let mut i = 0;
        while i < lines.len() {
            if lines[i].len() <= c + 1 {
                i += 1;
                continue;
            }
            let start = i;
            while i < lines.len() && lines[i].len() > c + 1 {
                i += 1;
            }
            let w = lines[start..i].iter().map(|l| width(l[c])).max().unwrap_or(0);
            let w = (w + PADDING).max(MIN_WIDTH);
            for row in &mut widths[start..i] {
                row[c] = w;
            }
        }
    }
    let mut out = String::new();
    for (l, w) in lines.iter().zip(&widths) {
        for (c, cell) in l.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = w.get(c) {
                out.push_str(&" ".repeat(w.saturating_sub(width(cell))));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Listing = Listing {
        default_table: "table {{.Repository}}\t{{.Tag}}\t{{.Size}}",
        headers: &[("Repository", "REPOSITORY"), ("Tag", "TAG"), ("Size", "SIZE")],
    };

    fn rows() -> Vec<serde_json::Value> {
        vec![
            json!({"Repository": "busybox", "Tag": "latest", "Size": "4.26MB", "Tags": ["a", "b"], "N": 3}),
            json!({"Repository": "localhost/a-long-name", "Tag": "v1", "Size": "12B", "Tags": [], "N": 0}),
        ]
    }

    fn render(f: &str) -> String {
        Format::parse(Some(f), &L).unwrap().render(&rows(), &L).unwrap()
    }

    #[test]
    fn default_table_aligns_like_docker() {
        assert_eq!(
            render("table"),
            "REPOSITORY              TAG       SIZE\n\
             busybox                 latest    4.26MB\n\
             localhost/a-long-name   v1        12B\n"
        );
        assert_eq!(
            render(r"table {{.Tag}}\t{{upper .Repository}}").lines().next(),
            Some("TAG       REPOSITORY")
        );
    }

    #[test]
    fn raw_templates_and_functions() {
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}"),
            "busybox:latest\nlocalhost/a-long-name:v1\n"
        );
        assert_eq!(render(r#"{{join .Tags ","}}|{{len .Tags}}"#), "a,b|2\n|0\n");
        assert_eq!(render(r#"{{range .Tags}}<{{.}}>{{end}}"#), "<a><b>\n\n");
        assert_eq!(render(r#"{{if .N}}some{{else}}none{{end}}"#), "some\nnone\n");
        let first = |f| {
            Format::parse(Some(f), &L)
                .unwrap()
                .render(&rows()[..1], &L)
                .unwrap()
        };
        assert_eq!(first(r#"{{index .Tags 1}}"#), "b\n");
        // Out of range is an error, as in Go.
        assert!(
            Format::parse(Some("{{index .Tags 0}}"), &L)
                .unwrap()
                .render(&rows(), &L)
                .is_err()
        );
        assert_eq!(
            render(r#"{{lower "AbC"}} {{title "ab cd"}} {{truncate .Repository 3}}"#)
                .lines()
                .next(),
            Some("abc Ab Cd bus")
        );
        assert_eq!(render(r#"{{pad .Tag 1 2}}|"#).lines().next(), Some(" latest  |"));
        assert_eq!(render(r#"{{split "a:b" ":"}}"#).lines().next(), Some("[a b]"));
        assert_eq!(render("{{.Missing}}").lines().next(), Some("<no value>"));
    }

    #[test]
    fn json_is_one_object_per_line() {
        let out = render("json");
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, rows());
        assert_eq!(render("{{json .Tags}}").lines().next(), Some(r#"["a","b"]"#));
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(Format::parse(Some("{{.Repository"), &L).is_err());
        let undefined = Format::parse(Some("{{nosuchfunc .X}}"), &L).and_then(|f| f.render(&rows(), &L));
        assert!(undefined.is_err());
    }

    #[test]
    fn tabwriter_columns_follow_go() {
        assert_eq!(
            tabwrite("a\tb\nlonger-than-ten\tc\n"),
            "a                 b\nlonger-than-ten   c\n"
        );
        // Unicode cells are measured by display width.
        assert_eq!(tabwrite("日本\tx\n"), "日本      x\n");
    }
}
