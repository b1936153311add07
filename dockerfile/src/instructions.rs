//! Second pass: a logical line → a typed [`Instruction`], with the flags each instruction accepts
//! checked (unknown flags, duplicates, missing or malformed values) and warnings for legacy forms.

use super::ast::*;
use super::error::{ErrorKind, ParseError, Warning};
use super::lexer::RawLine;
use super::source::{Source, Span};
use super::values::{self, suggest};
use super::words::{self, Json, RawWord};

pub(crate) const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Bool,
    Str,
    Repeat,
}

fn flag_spec(keyword: &str) -> &'static [(&'static str, FlagType)] {
    use FlagType::*;
    match keyword {
        "FROM" => &[("platform", Str)],
        "RUN" => &[("mount", Repeat), ("network", Str), ("security", Str)],
        "COPY" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Repeat),
        ],
        "ADD" => &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("exclude", Repeat),
            ("checksum", Str),
            ("keep-git-dir", Bool),
            ("unpack", Bool),
        ],
        "HEALTHCHECK" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        _ => &[],
    }
}

pub(crate) struct Ctx<'a> {
    pub src: &'a Source<'a>,
    pub file: &'a str,
    pub escape: char,
    pub warnings: Vec<Warning>,
}

impl Ctx<'_> {
    fn err(&self, span: Span, kind: ErrorKind) -> ParseError {
        ParseError::at(self.src, self.file, span, kind)
    }
    fn warn(&mut self, rule: &'static str, message: String, span: Span) {
        self.warnings.push(Warning::new(rule, message, Some(span)));
    }
}

/// A flag after its spec was checked: value text (quotes removed) and spans.
struct ParsedFlag {
    name: &'static str,
    value: Option<Word>,
    bool_value: bool,
    span: Span,
    raw_exact: bool,
    value_offset: usize,
}

struct Line<'a> {
    raw: &'a RawLine,
}

impl Line<'_> {
    fn span(&self, ctx: &Ctx<'_>, s: usize, e: usize) -> Span {
        self.raw.map.span(ctx.src, s, e)
    }
    fn word(&self, ctx: &Ctx<'_>, w: &RawWord, base: usize) -> Word {
        Word {
            value: w.text.clone(),
            span: self.span(ctx, base + w.start, base + w.end),
        }
    }
}

pub(crate) fn parse_line(ctx: &mut Ctx<'_>, raw: &RawLine) -> Result<Instruction, ParseError> {
    parse_at(ctx, raw, 0, false)
}

fn parse_at(
    ctx: &mut Ctx<'_>,
    raw: &RawLine,
    start: usize,
    in_onbuild: bool,
) -> Result<Instruction, ParseError> {
    let line = Line { raw };
    let text = raw.text.as_str();
    let kw_start = start + (text[start..].len() - text[start..].trim_start().len());
    let kw_end = text[kw_start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| kw_start + i);
    let kw_text = &text[kw_start..kw_end];
    let keyword_span = line.span(ctx, kw_start, kw_end);
    let Some(keyword) = KEYWORDS.iter().copied().find(|k| k.eq_ignore_ascii_case(kw_text)) else {
        return Err(ctx.err(
            keyword_span,
            ErrorKind::UnknownInstruction {
                name: kw_text.to_string(),
                suggestion: suggest(kw_text, KEYWORDS.iter().copied()),
            },
        ));
    };
    let end = text.trim_end().len().max(kw_end);
    let span = line.span(ctx, kw_start, end);
    if in_onbuild {
        match keyword {
            "ONBUILD" => return Err(ctx.err(keyword_span, ErrorKind::OnbuildChain)),
            "FROM" | "MAINTAINER" => {
                return Err(ctx.err(keyword_span, ErrorKind::OnbuildForbidden { instruction: keyword }));
            }
            _ => {}
        }
    }
    let args_all = &text[kw_end..end];
    let (raw_flags, rest_off) = words::extract_flags(args_all);
    let args_start = kw_end + rest_off;
    let args = &text[args_start.min(end)..end];
    let flags = check_flags(ctx, &line, keyword, &raw_flags, kw_end)?;
    let flags_out: Vec<Flag> = flags
        .iter()
        .map(|f| Flag {
            name: f.name.to_string(),
            value: f.value.clone(),
            span: f.span,
        })
        .collect();
    let heredocs = if in_onbuild {
        Vec::new()
    } else {
        raw.heredocs.clone()
    };
    let need_args = |ctx: &Ctx<'_>, expected: &'static str| {
        if args.is_empty() {
            Err(ctx.err(
                span,
                ErrorKind::ArgCount {
                    instruction: keyword,
                    expected,
                },
            ))
        } else {
            Ok(())
        }
    };
    let get = |name: &str| flags.iter().find(|f| f.name == name);
    let get_word = |name: &str| get(name).and_then(|f| f.value.clone());
    let get_bool = |name: &str| get(name).map(|f| f.bool_value);

    let kind = match keyword {
        "FROM" => {
            let ws = words::split_whitespace(args);
            let ok = ws.len() == 1 || (ws.len() == 3 && ws[1].text.eq_ignore_ascii_case("as"));
            if !ok {
                return Err(ctx.err(
                    span,
                    ErrorKind::ArgCount {
                        instruction: "FROM",
                        expected: "either one or three arguments (FROM image [AS name])",
                    },
                ));
            }
            let name = if ws.len() == 3 {
                let n = &ws[2].text;
                let lower = n.to_ascii_lowercase();
                let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                    && lower
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
                let nspan = line.span(ctx, args_start + ws[2].start, args_start + ws[2].end);
                if !valid {
                    return Err(ctx.err(nspan, ErrorKind::InvalidStageName { name: n.clone() }));
                }
                if lower != *n {
                    ctx.warn(
                        "StageNameCasing",
                        format!("Stage name '{n}' should be lowercase"),
                        nspan,
                    );
                }
                let as_kw = &ws[1].text;
                let kw_upper = kw_text.chars().all(|c| c.is_ascii_uppercase());
                let as_upper = as_kw.chars().all(|c| c.is_ascii_uppercase());
                if kw_upper != as_upper {
                    let aspan = line.span(ctx, args_start + ws[1].start, args_start + ws[1].end);
                    ctx.warn(
                        "FromAsCasing",
                        format!("'{as_kw}' and '{kw_text}' keywords' casing do not match"),
                        aspan,
                    );
                }
                Some(Word {
                    value: lower,
                    span: nspan,
                })
            } else {
                None
            };
            Kind::From {
                image: line.word(ctx, &ws[0], args_start),
                name,
                platform: get_word("platform"),
            }
        }
        "RUN" | "CMD" | "ENTRYPOINT" => {
            let command = match words::parse_json_array(args, args_start) {
                Json::Strings(ws) => {
                    if keyword == "RUN" && ws.is_empty() {
                        return Err(ctx.err(
                            span,
                            ErrorKind::ArgCount {
                                instruction: keyword,
                                expected: "at least one argument",
                            },
                        ));
                    }
                    Command::Exec(ws.iter().map(|w| line.word(ctx, w, 0)).collect())
                }
                Json::NotStrings => {
                    return Err(ctx.err(
                        line.span(ctx, args_start, end),
                        ErrorKind::NotStringArray { instruction: keyword },
                    ));
                }
                Json::No => {
                    need_args(ctx, "at least one argument")?;
                    if keyword != "RUN" {
                        let s = line.span(ctx, args_start, end);
                        ctx.warn(
                            "JSONArgsRecommended",
                            format!("JSON arguments recommended for {keyword} to prevent unintended behavior related to OS signals"),
                            s,
                        );
                    }
                    Command::Shell(Word {
                        value: args.to_string(),
                        span: line.span(ctx, args_start, end),
                    })
                }
            };
            match keyword {
                "RUN" => {
                    let mut mounts = Vec::new();
                    for f in flags.iter().filter(|f| f.name == "mount") {
                        mounts.push(parse_mount(ctx, &line, f)?);
                    }
                    let network = match get_word("network") {
                        None => None,
                        Some(w) => Some(match w.value.as_str() {
                            "default" => Network::Default,
                            "none" => Network::None,
                            "host" => Network::Host,
                            _ => return Err(invalid_flag(ctx, &w, "network", "default, none or host")),
                        }),
                    };
                    let security = match get_word("security") {
                        None => None,
                        Some(w) => Some(match w.value.as_str() {
                            "sandbox" => Security::Sandbox,
                            "insecure" => Security::Insecure,
                            _ => return Err(invalid_flag(ctx, &w, "security", "sandbox or insecure")),
                        }),
                    };
                    Kind::Run {
                        command,
                        mounts,
                        network,
                        security,
                    }
                }
                "CMD" => Kind::Cmd { command },
                _ => Kind::Entrypoint { command },
            }
        }
        "SHELL" => match words::parse_json_array(args, args_start) {
            Json::Strings(ws) if !ws.is_empty() => Kind::Shell {
                shell: ws.iter().map(|w| line.word(ctx, w, 0)).collect(),
            },
            _ => return Err(ctx.err(span, ErrorKind::NotJson { instruction: "SHELL" })),
        },
        "ENV" | "LABEL" => {
            need_args(ctx, "at least one argument")?;
            let pairs = parse_name_val(ctx, &line, keyword, args, args_start, span)?;
            if keyword == "ENV" {
                Kind::Env { vars: pairs }
            } else {
                Kind::Label { labels: pairs }
            }
        }
        "MAINTAINER" => {
            need_args(ctx, "exactly one argument")?;
            ctx.warn(
                "MaintainerDeprecated",
                "the MAINTAINER instruction is deprecated, use a label instead to define an image author"
                    .into(),
                span,
            );
            Kind::Maintainer {
                name: whole(ctx, &line, args, args_start, end),
            }
        }
        "EXPOSE" => {
            need_args(ctx, "at least one argument")?;
            let ports: Vec<Word> = words::split_whitespace(args)
                .iter()
                .map(|w| line.word(ctx, w, args_start))
                .collect();
            for p in &ports {
                if !p.value.contains(['$', '\'', '"', ctx.escape]) && !values::valid_port(&p.value) {
                    return Err(ctx.err(
                        p.span,
                        ErrorKind::InvalidPort {
                            value: p.value.clone(),
                        },
                    ));
                }
            }
            Kind::Expose { ports }
        }
        "ADD" | "COPY" => {
            let (list, json) = maybe_json_list(ctx, &line, keyword, args, args_start, end)?;
            if list.len() < 2 {
                return Err(ctx.err(
                    span,
                    ErrorKind::ArgCount {
                        instruction: keyword,
                        expected: "at least two arguments: one or more sources and a destination",
                    },
                ));
            }
            let mut sources = list;
            let dest = sources.pop().unwrap_or_else(|| Word {
                value: String::new(),
                span,
            });
            // As BuildKit's instruction parser: a heredoc names a source, never where it goes.
            if !json && heredocs.iter().any(|h| h.span.start == dest.span.start) {
                return Err(ctx.err(dest.span, ErrorKind::HeredocDestination { instruction: keyword }));
            }
            if keyword == "COPY"
                && let Some(url) = sources.iter().find(|s| {
                    let v = s.value.to_ascii_lowercase();
                    v.starts_with("http://") || v.starts_with("https://")
                })
            {
                return Err(ctx.err(url.span, ErrorKind::CopyUrl));
            }
            let chmod = get_word("chmod");
            if let Some(c) = &chmod
                && !c.value.contains('$')
                && !values::valid_chmod(&c.value)
            {
                return Err(invalid_flag(
                    ctx,
                    c,
                    "chmod",
                    "an octal mode (0644) or symbolic mode (u+x,go-w)",
                ));
            }
            let checksum = get_word("checksum");
            if let Some(c) = &checksum
                && !c.value.contains('$')
                && !values::valid_checksum(&c.value)
            {
                return Err(invalid_flag(ctx, c, "checksum", "sha256:<64 hex digits>"));
            }
            let exclude = flags
                .iter()
                .filter(|f| f.name == "exclude")
                .filter_map(|f| f.value.clone())
                .collect();
            let a = CopyArgs {
                sources,
                dest,
                json,
                from: get_word("from"),
                chown: get_word("chown"),
                chmod,
                link: get_bool("link").unwrap_or(false),
                parents: get_bool("parents").unwrap_or(false),
                exclude,
                checksum,
                keep_git_dir: get_bool("keep-git-dir").unwrap_or(false),
                unpack: get_bool("unpack"),
            };
            if keyword == "ADD" {
                Kind::Add(a)
            } else {
                Kind::Copy(a)
            }
        }
        "VOLUME" => {
            let (paths, _) = maybe_json_list(ctx, &line, keyword, args, args_start, end)?;
            if paths.is_empty() {
                return Err(ctx.err(
                    span,
                    ErrorKind::ArgCount {
                        instruction: keyword,
                        expected: "at least one argument",
                    },
                ));
            }
            if let Some(p) = paths.iter().find(|p| p.value.trim().is_empty()) {
                return Err(ctx.err(
                    p.span,
                    ErrorKind::ArgCount {
                        instruction: keyword,
                        expected: "non-empty paths",
                    },
                ));
            }
            Kind::Volume { paths }
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" => {
            need_args(ctx, "exactly one argument")?;
            let w = whole(ctx, &line, args, args_start, end);
            match keyword {
                "USER" => Kind::User { user: w },
                "WORKDIR" => Kind::Workdir { path: w },
                _ => {
                    if !w.value.contains('$') && !values::valid_signal(&w.value) {
                        return Err(ctx.err(w.span, ErrorKind::InvalidSignal { value: w.value }));
                    }
                    Kind::Stopsignal { signal: w }
                }
            }
        }
        "ARG" => {
            need_args(ctx, "at least one argument")?;
            let mut decls = Vec::new();
            for w in words::split_words(args, ctx.escape) {
                let wspan = line.span(ctx, args_start + w.start, args_start + w.end);
                let (name, default) = match w.text.find('=') {
                    Some(i) => {
                        let n = Word {
                            value: w.text[..i].to_string(),
                            span: line.span(ctx, args_start + w.start, args_start + w.start + i),
                        };
                        let v = Word {
                            value: w.text[i + 1..].to_string(),
                            span: line.span(ctx, args_start + w.start + i + 1, args_start + w.end),
                        };
                        (n, Some(v))
                    }
                    None => (
                        Word {
                            value: w.text.clone(),
                            span: wspan,
                        },
                        None,
                    ),
                };
                if name.value.is_empty() {
                    return Err(ctx.err(wspan, ErrorKind::BlankName { instruction: "ARG" }));
                }
                decls.push(ArgDecl {
                    name,
                    default,
                    span: wspan,
                });
            }
            Kind::Arg { args: decls }
        }
        "ONBUILD" => {
            need_args(ctx, "at least one argument")?;
            let trigger = parse_at(ctx, raw, kw_end, true)?;
            Kind::Onbuild {
                expression: args_all.trim().to_string(),
                trigger: Box::new(trigger),
            }
        }
        "HEALTHCHECK" => parse_healthcheck(ctx, &line, args, args_start, end, span, &flags)?,
        _ => unreachable!("keyword table and dispatch agree"),
    };
    Ok(Instruction {
        keyword,
        span,
        keyword_span,
        flags: flags_out,
        heredocs,
        kind,
        comments: if in_onbuild {
            Vec::new()
        } else {
            raw.comments.clone()
        },
    })
}

fn invalid_flag(ctx: &Ctx<'_>, w: &Word, flag: &str, expected: &'static str) -> ParseError {
    ctx.err(
        w.span,
        ErrorKind::InvalidFlagValue {
            flag: flag.to_string(),
            value: w.value.clone(),
            expected,
        },
    )
}

fn whole(ctx: &Ctx<'_>, line: &Line<'_>, args: &str, args_start: usize, end: usize) -> Word {
    Word {
        value: args.to_string(),
        span: line.span(ctx, args_start, end),
    }
}

fn maybe_json_list(
    ctx: &Ctx<'_>,
    line: &Line<'_>,
    keyword: &'static str,
    args: &str,
    args_start: usize,
    end: usize,
) -> Result<(Vec<Word>, bool), ParseError> {
    match words::parse_json_array(args, args_start) {
        Json::Strings(ws) => Ok((ws.iter().map(|w| line.word(ctx, w, 0)).collect(), true)),
        Json::NotStrings => Err(ctx.err(
            line.span(ctx, args_start, end),
            ErrorKind::NotStringArray { instruction: keyword },
        )),
        Json::No => Ok((
            words::split_whitespace(args)
                .iter()
                .map(|w| line.word(ctx, w, args_start))
                .collect(),
            false,
        )),
    }
}

fn parse_name_val(
    ctx: &mut Ctx<'_>,
    line: &Line<'_>,
    keyword: &'static str,
    args: &str,
    args_start: usize,
    span: Span,
) -> Result<Vec<KeyValue>, ParseError> {
    let ws = words::split_words(args, ctx.escape);
    let mut out = Vec::new();
    if !ws[0].text.contains('=') {
        // Legacy `ENV key value with spaces`: the value is the rest of the line.
        let key_end = args.find(char::is_whitespace);
        let Some(key_end) = key_end else {
            return Err(ctx.err(
                span,
                ErrorKind::ArgCount {
                    instruction: keyword,
                    expected: "two arguments (name and value)",
                },
            ));
        };
        let vstart = key_end + (args[key_end..].len() - args[key_end..].trim_start().len());
        let key = Word {
            value: args[..key_end].to_string(),
            span: line.span(ctx, args_start, args_start + key_end),
        };
        let value = Word {
            value: args[vstart..].to_string(),
            span: line.span(ctx, args_start + vstart, args_start + args.len()),
        };
        ctx.warn(
            "LegacyKeyValueFormat",
            format!(
                "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
            ),
            span,
        );
        out.push(KeyValue { key, value, span });
        return Ok(out);
    }
    for w in ws {
        let wspan = line.span(ctx, args_start + w.start, args_start + w.end);
        let Some(i) = w.text.find('=') else {
            return Err(ctx.err(wspan, ErrorKind::MissingEquals { word: w.text }));
        };
        if i == 0 {
            return Err(ctx.err(wspan, ErrorKind::BlankName { instruction: keyword }));
        }
        out.push(KeyValue {
            key: Word {
                value: w.text[..i].to_string(),
                span: line.span(ctx, args_start + w.start, args_start + w.start + i),
            },
            value: Word {
                value: w.text[i + 1..].to_string(),
                span: line.span(ctx, args_start + w.start + i + 1, args_start + w.end),
            },
            span: wspan,
        });
    }
    Ok(out)
}

fn check_flags(
    ctx: &Ctx<'_>,
    line: &Line<'_>,
    keyword: &'static str,
    raw: &[RawWord],
    base: usize,
) -> Result<Vec<ParsedFlag>, ParseError> {
    let spec = flag_spec(keyword);
    let mut out: Vec<ParsedFlag> = Vec::new();
    for f in raw {
        let fspan = line.span(ctx, base + f.start, base + f.end);
        let body = &f.text[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(sname, ty)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(ctx.err(
                fspan,
                ErrorKind::UnknownFlag {
                    flag: name.to_string(),
                    instruction: keyword,
                    suggestion: suggest(name, spec.iter().map(|(n, _)| *n)).map(|s| format!("--{s}")),
                },
            ));
        };
        if ty != FlagType::Repeat && out.iter().any(|o| o.name == sname) {
            return Err(ctx.err(
                fspan,
                ErrorKind::DuplicateFlag {
                    flag: name.to_string(),
                },
            ));
        }
        // When the flag had no quotes or escapes, the value's offsets in the line are exact.
        let raw_text = &line.raw.text[base + f.start..base + f.end];
        let raw_exact = raw_text == f.text;
        let value_offset = base + f.start + 2 + name.len() + 1;
        let vspan = if raw_exact {
            line.span(ctx, value_offset, base + f.end)
        } else {
            fspan
        };
        let mut bool_value = true;
        let value = match (ty, value) {
            (FlagType::Bool, None) => None,
            (FlagType::Bool, Some(v)) => {
                bool_value = match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ctx.err(
                            vspan,
                            ErrorKind::InvalidFlagValue {
                                flag: name.to_string(),
                                value: v.to_string(),
                                expected: "true or false",
                            },
                        ));
                    }
                };
                Some(Word {
                    value: v.to_string(),
                    span: vspan,
                })
            }
            (_, None) => {
                return Err(ctx.err(
                    fspan,
                    ErrorKind::FlagMissingValue {
                        flag: name.to_string(),
                    },
                ));
            }
            (_, Some(v)) => Some(Word {
                value: v.to_string(),
                span: vspan,
            }),
        };
        out.push(ParsedFlag {
            name: sname,
            value,
            bool_value,
            span: fspan,
            raw_exact,
            value_offset,
        });
    }
    Ok(out)
}

const MOUNT_KEYS: &[&str] = &[
    "type",
    "target",
    "dst",
    "destination",
    "source",
    "src",
    "from",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "size",
    "env",
    "required",
];

fn allowed(t: MountType, key: &str) -> bool {
    match key {
        "type" => true,
        "target" => true,
        "source" | "from" => matches!(t, MountType::Bind | MountType::Cache),
        "readonly" => matches!(t, MountType::Bind | MountType::Cache),
        "id" => matches!(t, MountType::Cache | MountType::Secret | MountType::Ssh),
        "sharing" => t == MountType::Cache,
        "mode" | "uid" | "gid" => matches!(t, MountType::Cache | MountType::Secret | MountType::Ssh),
        "size" => t == MountType::Tmpfs,
        "env" => t == MountType::Secret,
        "required" => matches!(t, MountType::Secret | MountType::Ssh),
        _ => false,
    }
}

/// Splits a CSV record: commas separate fields, a field may be double-quoted with `""` for a quote.
fn csv_fields(s: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let b: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    loop {
        let start = b.get(i).map_or(s.len(), |c| c.0);
        let mut field = String::new();
        if b.get(i).map(|c| c.1) == Some('"') {
            i += 1;
            while i < b.len() {
                if b[i].1 == '"' {
                    if b.get(i + 1).map(|c| c.1) == Some('"') {
                        field.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                field.push(b[i].1);
                i += 1;
            }
            while i < b.len() && b[i].1 != ',' {
                field.push(b[i].1);
                i += 1;
            }
        } else {
            while i < b.len() && b[i].1 != ',' {
                field.push(b[i].1);
                i += 1;
            }
        }
        let end = b.get(i).map_or(s.len(), |c| c.0);
        out.push((field, start, end));
        if i >= b.len() {
            return out;
        }
        i += 1;
    }
}

fn parse_mount(ctx: &Ctx<'_>, line: &Line<'_>, f: &ParsedFlag) -> Result<Mount, ParseError> {
    let value = f.value.as_ref().map(|w| w.value.as_str()).unwrap_or("");
    let fspan = f.span;
    // Offsets inside the flag value are exact only when it had no quotes or escapes.
    let opt_span = |s: usize, e: usize| -> Span {
        if f.raw_exact {
            line.span(ctx, f.value_offset + s, f.value_offset + e)
        } else {
            fspan
        }
    };
    let mut mount_type = MountType::Bind;
    let mut opts: Vec<(String, String, bool, Span)> = Vec::new();
    for (field, s, e) in csv_fields(value) {
        if field.trim().is_empty() {
            continue;
        }
        let (k, v, has_v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.to_string(), true),
            None => (field.trim().to_ascii_lowercase(), String::new(), false),
        };
        let sp = opt_span(s, e);
        let canon = match k.as_str() {
            "dst" | "destination" => "target",
            "src" => "source",
            "ro" => "readonly",
            "rw" | "readwrite" => "readwrite",
            other if MOUNT_KEYS.contains(&other) => other,
            other => {
                return Err(ctx.err(
                    sp,
                    ErrorKind::UnknownMountKey {
                        option: other.to_string(),
                        suggestion: suggest(other, MOUNT_KEYS.iter().copied()),
                    },
                ));
            }
        };
        if canon == "type" {
            mount_type = match v.as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                other => {
                    return Err(ctx.err(
                        sp,
                        ErrorKind::UnknownMountType {
                            value: other.to_string(),
                            suggestion: suggest(other, ["bind", "cache", "tmpfs", "secret", "ssh"]),
                        },
                    ));
                }
            };
            continue;
        }
        if !has_v && !matches!(canon, "readonly" | "readwrite" | "required") {
            return Err(ctx.err(
                sp,
                ErrorKind::InvalidMountValue {
                    option: canon.to_string(),
                    value: String::new(),
                    expected: "a value (option=value)",
                },
            ));
        }
        if opts.iter().any(|o| o.0 == canon) {
            return Err(ctx.err(
                sp,
                ErrorKind::DuplicateMountOption {
                    option: canon.to_string(),
                },
            ));
        }
        opts.push((canon.to_string(), v, has_v, sp));
    }
    let mut m = Mount {
        mount_type,
        span: fspan,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
        readonly: None,
        required: None,
    };
    for (k, v, has_v, sp) in opts {
        let check_key = if k == "readwrite" { "readonly" } else { k.as_str() };
        if !allowed(mount_type, check_key) {
            return Err(ctx.err(
                sp,
                ErrorKind::UnknownMountOption {
                    option: k.clone(),
                    mount_type: mount_type.as_str().into(),
                },
            ));
        }
        let parse_bool = |v: &str| -> Result<bool, ParseError> {
            if !has_v {
                return Ok(true);
            }
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ctx.err(
                    sp,
                    ErrorKind::InvalidMountValue {
                        option: k.clone(),
                        value: v.to_string(),
                        expected: "true or false",
                    },
                )),
            }
        };
        if !v.contains('$')
            && let Some(expected) = values::mount_value_problem(&k, &v)
        {
            return Err(ctx.err(
                sp,
                ErrorKind::InvalidMountValue {
                    option: k.clone(),
                    value: v,
                    expected,
                },
            ));
        }
        let w = Some(Word {
            value: v.clone(),
            span: sp,
        });
        match k.as_str() {
            "target" => m.target = w,
            "source" => m.source = w,
            "from" => m.from = w,
            "id" => m.id = w,
            "sharing" => m.sharing = w,
            "mode" => m.mode = w,
            "uid" => m.uid = w,
            "gid" => m.gid = w,
            "size" => m.size = w,
            "env" => m.env = w,
            "readonly" => m.readonly = Some(parse_bool(&v)?),
            "readwrite" => m.readonly = Some(!parse_bool(&v)?),
            "required" => m.required = Some(parse_bool(&v)?),
            _ => {}
        }
    }
    let has_target = m.target.as_ref().is_some_and(|t| !t.value.is_empty());
    let ok = match mount_type {
        MountType::Bind | MountType::Cache | MountType::Tmpfs => has_target,
        MountType::Secret => has_target || m.id.is_some() || m.env.is_some(),
        MountType::Ssh => true,
    };
    if !ok {
        return Err(ctx.err(
            fspan,
            ErrorKind::MountMissingTarget {
                mount_type: mount_type.as_str().into(),
            },
        ));
    }
    Ok(m)
}

fn parse_healthcheck(
    ctx: &mut Ctx<'_>,
    line: &Line<'_>,
    args: &str,
    args_start: usize,
    end: usize,
    span: Span,
    flags: &[ParsedFlag],
) -> Result<Kind, ParseError> {
    let typ_end = args.find(char::is_whitespace).unwrap_or(args.len());
    let typ = &args[..typ_end];
    let rest_rel = typ_end + (args[typ_end..].len() - args[typ_end..].trim_start().len());
    let rest = &args[rest_rel..];
    let rest_start = args_start + rest_rel;
    let get = |n: &str| flags.iter().find(|f| f.name == n).and_then(|f| f.value.clone());
    let mut h = HealthcheckArgs {
        command: None,
        interval: get("interval"),
        timeout: get("timeout"),
        start_period: get("start-period"),
        start_interval: get("start-interval"),
        retries: get("retries"),
    };
    for (name, w) in [
        ("interval", &h.interval),
        ("timeout", &h.timeout),
        ("start-period", &h.start_period),
        ("start-interval", &h.start_interval),
    ] {
        if let Some(w) = w {
            match values::parse_duration(&w.value) {
                Some(d) if d == 0 || d >= 1_000_000 => {}
                Some(_) => {
                    return Err(invalid_flag(
                        ctx,
                        w,
                        name,
                        "0, or a duration that cannot be less than 1ms",
                    ));
                }
                None => return Err(invalid_flag(ctx, w, name, "a duration like 30s or 1m30s")),
            }
        }
    }
    if let Some(w) = &h.retries
        && w.value.parse::<u32>().is_err()
    {
        return Err(invalid_flag(ctx, w, "retries", "a non-negative integer"));
    }
    if typ.eq_ignore_ascii_case("NONE") {
        if !rest.is_empty() {
            return Err(ctx.err(line.span(ctx, rest_start, end), ErrorKind::HealthcheckNoneArgs));
        }
        return Ok(Kind::Healthcheck(h));
    }
    if !typ.eq_ignore_ascii_case("CMD") {
        if typ.is_empty() {
            return Err(ctx.err(
                span,
                ErrorKind::ArgCount {
                    instruction: "HEALTHCHECK",
                    expected: "at least one argument: NONE, or CMD and a command",
                },
            ));
        }
        return Err(ctx.err(
            line.span(ctx, args_start, args_start + typ_end),
            ErrorKind::HealthcheckType {
                value: typ.to_string(),
            },
        ));
    }
    let command = match words::parse_json_array(rest, rest_start) {
        Json::Strings(ws) if !ws.is_empty() => {
            Command::Exec(ws.iter().map(|w| line.word(ctx, w, 0)).collect())
        }
        Json::NotStrings => {
            return Err(ctx.err(
                line.span(ctx, rest_start, end),
                ErrorKind::NotStringArray {
                    instruction: "HEALTHCHECK",
                },
            ));
        }
        _ if rest.is_empty() || rest == "[]" => {
            return Err(ctx.err(
                span,
                ErrorKind::ArgCount {
                    instruction: "HEALTHCHECK",
                    expected: "a command after CMD",
                },
            ));
        }
        _ => Command::Shell(Word {
            value: rest.to_string(),
            span: line.span(ctx, rest_start, end),
        }),
    };
    h.command = Some(command);
    Ok(Kind::Healthcheck(h))
}
