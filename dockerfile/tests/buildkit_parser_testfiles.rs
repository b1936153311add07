//! BuildKit's parser testfiles (moby/buildkit `frontend/dockerfile/parser/testfiles` and
//! `testfiles-negative`), transcribed as facts into `testdata/dockerfile/buildkit/parser.jsonl` by
//! `transcribe_parser.py` there. Each positive case is parsed with our [`parse`] and our typed instructions
//! are printed the way BuildKit's `Node.Dump` prints its AST (lower-cased instruction, `["--flag=v"]`, the
//! arguments Go-quoted); the dump must equal BuildKit's `result`. Negative cases must fail to parse.
//!
//! BuildKit's raw parser accepts any `--flag` and any HEALTHCHECK type; its instruction layer (which a
//! build always runs, and which our parser folds in) rejects them. The instructions that only pass the raw
//! layer are listed in [`REJECTED_BY_BUILDKIT_INSTRUCTIONS`] with the reason: we must refuse each of them
//! and dump the rest of the file as BuildKit does. Prints the pass rate.

use std::fs;
use std::path::Path;

use lamina_dockerfile::{
    ArgDecl, Command, CopyArgs, Dockerfile, HealthcheckArgs, Instruction, KeyValue, Kind, Span, Word, parse,
};
use serde_json::Value;

/// Instructions BuildKit's raw parser keeps but its instruction layer (BuildKit 0.13's `instructions.Parse`)
/// refuses; each `lines` entry is one single-line instruction, the `ordinals`-th (from 0) of the result.
struct Refused {
    case: &'static str,
    lines: &'static [usize],
    ordinals: &'static [usize],
    #[allow(dead_code)] // documentation, printed on failure
    why: &'static str,
}

const REJECTED_BY_BUILDKIT_INSTRUCTIONS: &[Refused] = &[
    Refused {
        case: "testfiles/flags",
        lines: &[3, 4, 5, 6, 8, 9, 10],
        ordinals: &[2, 3, 4, 5, 7, 8, 9],
        why: "COPY --user/--doit, CMD --doit: `unknown flag` (BFlags.Parse)",
    },
    Refused {
        case: "testfiles/health",
        lines: &[4, 7, 10],
        ordinals: &[3, 5, 8],
        why: "bare HEALTHCHECK: `HEALTHCHECK requires at least one argument`; HEALTHCHECK CMD: `Missing command \
              after HEALTHCHECK CMD`; HEALTHCHECK CONNECT: `Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)` \
              (parseHealthcheck)",
    },
];

/// The refused instructions fail alone (after a FROM) and in the file; the file without them dumps as
/// BuildKit's result without theirs.
fn check_refused(r: &Refused, src: &str, result: &Value) -> Result<(), String> {
    if parse(src, "Dockerfile").is_ok() {
        return Err(format!(
            "parsed; BuildKit's instruction layer refuses it: {}",
            r.why
        ));
    }
    let lines: Vec<&str> = src.lines().collect();
    for &n in r.lines {
        let one = format!("FROM scratch\n{}\n", lines[n - 1]);
        if parse(&one, "Dockerfile").is_ok() {
            return Err(format!(
                "line {n} {:?} parsed; BuildKit refuses it: {}",
                lines[n - 1],
                r.why
            ));
        }
    }
    let rest: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !r.lines.contains(&(i + 1)))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let kept: Vec<Value> = result
        .as_array()
        .expect("result")
        .iter()
        .enumerate()
        .filter(|(i, _)| !r.ordinals.contains(i))
        .map(|(_, v)| v.clone())
        .collect();
    compare(&rest, &Value::Array(kept), 0)
}

/// Cases of a lone CMD: BuildKit's `instructions.Parse` refuses them (`no build stage in current context`,
/// `CurrentStage` in commands.go), and so do we; their JSON/shell-form facts are checked with a
/// `FROM scratch` line put in front (its dump line is dropped).
const NO_STAGE: &[&str] = &[
    "testfiles/jeztah-invalid-json-json-inside-string",
    "testfiles/jeztah-invalid-json-json-inside-string-double",
    "testfiles/jeztah-invalid-json-single-quotes",
    "testfiles/jeztah-invalid-json-unterminated-bracket",
    "testfiles/jeztah-invalid-json-unterminated-string",
    "testfiles/json",
];

/// Go's `strconv.Quote`: `\a \b \f \n \r \t \v \\ \"`, other control bytes as `\xNN`, other non-printable
/// runes as `\uNNNN`, printable Unicode kept.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The source text a single-line span covers (stage names are lower-cased in our AST, `AS` is not kept).
fn text_of(df: &Dockerfile, span: Span) -> String {
    let line = df.source.lines().nth(span.start.line as usize - 1).unwrap_or("");
    let from = span.start.col as usize - 1;
    let to = if span.end.line == span.start.line {
        span.end.col as usize - 1
    } else {
        usize::MAX
    };
    line.chars().skip(from).take(to.saturating_sub(from)).collect()
}

fn words<'a>(ws: impl IntoIterator<Item = &'a Word>) -> Vec<String> {
    ws.into_iter().map(|w| w.value.clone()).collect()
}

fn command(c: &Command) -> Vec<String> {
    match c {
        Command::Exec(ws) => words(ws),
        Command::Shell(w) => vec![w.value.clone()],
    }
}

/// `key value "="` per pair, or `key value ""` for the legacy `ENV key value` form (BuildKit's parseNameVal).
fn name_vals(df: &Dockerfile, kvs: &[KeyValue]) -> Vec<String> {
    let mut out = Vec::new();
    for kv in kvs {
        let joined = text_of(df, Span::new(kv.key.span.end, kv.value.span.start)) == "=";
        out.extend([
            kv.key.value.clone(),
            kv.value.value.clone(),
            if joined { "=" } else { "" }.to_string(),
        ]);
    }
    out
}

fn arg_decls(args: &[ArgDecl]) -> Vec<String> {
    args.iter()
        .map(|a| match &a.default {
            Some(d) => format!("{}={}", a.name.value, d.value),
            None => a.name.value.clone(),
        })
        .collect()
}

fn copy_args(c: &CopyArgs) -> Vec<String> {
    let mut v = words(&c.sources);
    v.push(c.dest.value.clone());
    v
}

fn healthcheck(h: &HealthcheckArgs) -> Vec<String> {
    match &h.command {
        None => Vec::new(),
        Some(c) => std::iter::once("CMD".to_string()).chain(command(c)).collect(),
    }
}

/// One instruction as BuildKit's `Node.Dump` prints it.
fn dump(df: &Dockerfile, i: &Instruction) -> String {
    let mut s = i.keyword.to_ascii_lowercase();
    if !i.flags.is_empty() {
        let flags: Vec<String> = i
            .flags
            .iter()
            .map(|f| match &f.value {
                Some(v) => go_quote(&format!("--{}={}", f.name, v.value)),
                None => go_quote(&format!("--{}", f.name)),
            })
            .collect();
        s.push_str(&format!(" [{}]", flags.join(" ")));
    }
    let args: Vec<String> = match &i.kind {
        Kind::Onbuild { trigger, .. } => return format!("onbuild ({})", dump(df, trigger)),
        Kind::From { image, name, .. } => {
            let mut v = vec![image.value.clone()];
            if let Some(n) = name {
                let between = Span::new(image.span.end, n.span.start);
                v.push(text_of(df, between).trim().to_string());
                v.push(text_of(df, n.span));
            }
            v
        }
        Kind::Run { command: c, .. } | Kind::Cmd { command: c } | Kind::Entrypoint { command: c } => {
            command(c)
        }
        Kind::Shell { shell } => words(shell),
        Kind::Label { labels: kv } | Kind::Env { vars: kv } => name_vals(df, kv),
        Kind::Maintainer { name } => vec![name.value.clone()],
        Kind::Expose { ports } => words(ports),
        Kind::Add(c) | Kind::Copy(c) => copy_args(c),
        Kind::Volume { paths } => words(paths),
        Kind::User { user: w } | Kind::Workdir { path: w } | Kind::Stopsignal { signal: w } => {
            vec![w.value.clone()]
        }
        Kind::Arg { args } => arg_decls(args),
        Kind::Healthcheck(h) => healthcheck(h),
    };
    for a in args {
        s.push(' ');
        s.push_str(&go_quote(&a));
    }
    s
}

/// Parses `src` and compares its dump, without the first `skip` lines, with BuildKit's `result`.
fn compare(src: &str, result: &Value, skip: usize) -> Result<(), String> {
    let df = parse(src, "Dockerfile").map_err(|e| format!("refused: {}", e.render()))?;
    let ours: Vec<String> = df
        .instructions
        .iter()
        .skip(skip)
        .map(|i| format!("({})", dump(&df, i)))
        .collect();
    let theirs: Vec<String> = result
        .as_array()
        .expect("result")
        .iter()
        .map(|l| l.as_str().expect("a result line").to_string())
        .collect();
    if ours == theirs {
        return Ok(());
    }
    let diff: Vec<String> = (0..ours.len().max(theirs.len()))
        .filter(|&k| ours.get(k) != theirs.get(k))
        .map(|k| format!("  ours:     {:?}\n  BuildKit: {:?}", ours.get(k), theirs.get(k)))
        .collect();
    Err(format!("dump differs:\n{}", diff.join("\n")))
}

#[test]
fn go_quote_matches_strconv_quote() {
    assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(go_quote("\x00\t♥"), r#""\x00\t♥""#);
    assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
}

#[test]
fn buildkit_parser_testfiles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/dockerfile/buildkit/parser.jsonl");
    let text = fs::read_to_string(&path).expect("parser.jsonl");
    let (mut total, mut failures) = (0, Vec::new());
    for line in text.lines().skip(1) {
        let case: Value = serde_json::from_str(line).expect("a JSON line");
        let name = case["case"].as_str().expect("case");
        let src = case["dockerfile"].as_str().expect("dockerfile");
        total += 1;
        let outcome = if NO_STAGE.contains(&name) {
            match parse(src, "Dockerfile") {
                Ok(_) => Err("parsed a CMD without a stage, BuildKit refuses it".to_string()),
                Err(e) if !e.render().contains("no build stage") => {
                    Err(format!("refused otherwise: {}", e.render()))
                }
                Err(_) => compare(&format!("FROM scratch\n{src}"), &case["result"], 1),
            }
        } else {
            let refused = REJECTED_BY_BUILDKIT_INSTRUCTIONS.iter().find(|r| r.case == name);
            match (parse(src, "Dockerfile"), case.get("error"), refused) {
                (Ok(_), Some(_), _) => Err("parsed, BuildKit refuses it".to_string()),
                (Err(_), Some(_), _) => Ok(()),
                (_, None, Some(r)) => check_refused(r, src, &case["result"]),
                (Err(e), None, None) => Err(format!("refused: {}", e.render())),
                (Ok(_), None, None) => compare(src, &case["result"], 0),
            }
        };
        if let Err(why) = outcome {
            failures.push(format!("{name}: {why}"));
        }
    }
    let passed = total - failures.len();
    eprintln!(
        "BuildKit parser testfiles: {passed}/{total} pass ({:.1}%)",
        100.0 * passed as f64 / total as f64
    );
    assert!(total >= 37, "only {total} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
