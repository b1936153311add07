//! BuildKit's parser unit vectors (moby/buildkit `frontend/dockerfile/parser/`: `parser_test.go`,
//! `line_parsers_test.go`, `json_test.go`, `directives_test.go`), transcribed as facts into our own
//! tables. TestParseCases/TestParseErrorCases (the testfiles) run in buildkit_parser_testfiles.rs.
//! Skipped, with no meaning for a Dockerfile: DetectSyntax's `//syntax=` and JSON forms (5 vectors, for
//! frontends other than Dockerfile) and ParseDirective's `//check=` (1).

use lamina_dockerfile::{self as dockerfile, Command, Dockerfile, Kind};

type Check = fn(&Dockerfile) -> bool;

/// (Go test, Dockerfile, expected: Some(check) parses and holds, None fails).
type Row = (&'static str, String, Option<Check>);

fn second(df: &Dockerfile) -> &Kind {
    &df.instructions[1].kind
}

fn pairs(df: &Dockerfile) -> Vec<(String, String)> {
    match second(df) {
        Kind::Label { labels: kv } | Kind::Env { vars: kv } => kv
            .iter()
            .map(|p| (p.key.value.clone(), p.value.value.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

fn exec(df: &Dockerfile) -> Option<Vec<String>> {
    match second(df) {
        Kind::Cmd {
            command: Command::Exec(ws),
        } => Some(ws.iter().map(|w| w.value.clone()).collect()),
        _ => None,
    }
}

const LINE_INFO: &str = "# ESCAPE=\\\n\n\n\nFROM brimstone/ubuntu:14.04\n\n\n# TORUN -v /var/run/docker.sock:/var/run/docker.sock\n\n\nENV GOPATH \\\n/go\n\n\n\n# Install the packages we need, clean up after them and us\nRUN apt-get update \\\n\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.clean \\\n\n\n    && apt-get --no-install-recommends install -y git golang ca-certificates \\\n    && apt-get clean \\\n    && rm -rf /var/lib/apt/lists \\\n\n\t&& go get -v github.com/brimstone/consuldock \\\n    && mv $GOPATH/bin/consuldock /usr/local/bin/consuldock \\\n\n\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.dirty \\\n\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty | awk '/^>/ {print $2}') \\\n\t&& rm /tmp/dpkg.* \\\n\t&& rm -rf $GOPATH\n\n\n\n";

const EMPTY_CONT: &str = "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";

fn lines(df: &Dockerfile, i: usize) -> (u32, u32) {
    let s = df.instructions[i].span;
    (s.start.line, s.end.line)
}

fn rows() -> Vec<Row> {
    let f = |s: &str| format!("FROM busybox\n{s}\n");
    let mut out: Vec<Row> = vec![
        (
            "TestParseIncludesLineNumbers",
            LINE_INFO.into(),
            Some(|df| df.instructions.len() == 3 && lines(df, 0).0 == 5 && lines(df, 2).1 == 31),
        ),
        (
            "TestParseIncludesLineNumbers",
            LINE_INFO.into(),
            Some(|df| lines(df, 0) == (5, 5)),
        ),
        (
            "TestParseIncludesLineNumbers",
            LINE_INFO.into(),
            Some(|df| lines(df, 1) == (11, 12)),
        ),
        (
            "TestParseIncludesLineNumbers",
            LINE_INFO.into(),
            Some(|df| lines(df, 2) == (17, 31)),
        ),
        (
            "TestParseWarnsOnEmptyContinutationLine",
            EMPTY_CONT.into(),
            Some(|df| {
                let w: Vec<_> = df
                    .warnings
                    .iter()
                    .filter(|w| w.rule == "NoEmptyContinuation")
                    .collect();
                // Each warning points into its instruction: `RUN something` (lines 7-11), `RUN another` (13-15).
                w.len() == 2
                    && w[0].span.is_some_and(|s| (7..=11).contains(&s.start.line))
                    && w[1].span.is_some_and(|s| (13..=15).contains(&s.start.line))
            }),
        ),
        (
            "TestParseReturnsScannerErrors",
            format!("\n\t\tFROM image\n\t\tLABEL test={}\n", "a".repeat(64 * 1024)),
            None,
        ),
        (
            "TestParseNameValOldFormat",
            f("LABEL foo bar"),
            Some(|df| pairs(df) == [("foo".into(), "bar".into())]),
        ),
        (
            "TestParseNameValNewFormat",
            f("LABEL foo=bar thing=star"),
            Some(|df| pairs(df) == [("foo".into(), "bar".into()), ("thing".into(), "star".into())]),
        ),
        ("TestParseNameValWithoutVal", f("ENV foo"), None),
    ];
    for j in [
        r#"["a",42,"b"]"#,
        r#"["a",123.456,"b"]"#,
        r#"["a",{},"b"]"#,
        r#"["a",{"c": "d"},"b"]"#,
        r#"["a",["c"],"b"]"#,
        r#"["a",true,"b"]"#,
        r#"["a",false,"b"]"#,
        r#"["a",null,"b"]"#,
    ] {
        out.push(("TestJSONArraysOfStrings", f(&format!("CMD {j}")), None));
    }
    let valid: [(&str, Check); 8] = [
        ("[]", |df| exec(df).is_some_and(|v| v.is_empty())),
        (r#"[""]"#, |df| exec(df) == Some(vec![String::new()])),
        (r#"["a"]"#, |df| exec(df) == Some(vec!["a".into()])),
        (r#"["a","b"]"#, |df| {
            exec(df) == Some(vec!["a".into(), "b".into()])
        }),
        (r#"[ "a", "b" ]"#, |df| {
            exec(df) == Some(vec!["a".into(), "b".into()])
        }),
        ("[\t\"a\",\t\"b\"\t]", |df| {
            exec(df) == Some(vec!["a".into(), "b".into()])
        }),
        ("\t[\t\"a\",\t\"b\"\t]\t", |df| {
            exec(df) == Some(vec!["a".into(), "b".into()])
        }),
        (
            r#"["abc 123", "♥", "☃", "\" \\ \/ \b \f \n \r \t \u0000"]"#,
            |df| {
                exec(df)
                    == Some(vec![
                        "abc 123".into(),
                        "♥".into(),
                        "☃".into(),
                        "\" \\ / \u{8} \u{c} \n \r \t \u{0}".into(),
                    ])
            },
        ),
    ];
    for (j, c) in valid {
        out.push(("TestJSONArraysOfStrings", f(&format!("CMD {j}")), Some(c)));
    }
    let directives: [(&str, &str, Check); 10] = [
        (
            "TestDirectives",
            "#escape=\\\n# key = FOO bar\n\n# smth\nFROM busybox\n",
            |df| df.directives.escape == '\\',
        ),
        (
            "TestDirectives",
            "# EScape=`\n# KEY = FOO bar\n\n# smth\nFROM busybox\n",
            |df| df.directives.escape == '`',
        ),
        (
            "TestDetectSyntax",
            "# syntax = dockerfile:experimental // opts\nFROM busybox\n",
            |df| {
                df.directives.syntax.as_ref().is_some_and(|w| {
                    w.value == "dockerfile:experimental // opts"
                        && w.value.split_whitespace().next() == Some("dockerfile:experimental")
                        && w.span.start.line == 1
                })
            },
        ),
        (
            "TestDetectSyntax",
            "#!/bin/sh\n# syntax = dockerfile:experimental\nFROM busybox\n",
            |df| {
                df.directives
                    .syntax
                    .as_ref()
                    .is_some_and(|w| w.value == "dockerfile:experimental" && w.span.start.line == 2)
            },
        ),
        (
            "TestDetectSyntax",
            "#!/bin/sh\n\n# syntax = dockerfile:experimental\nFROM busybox\n",
            |df| df.directives.syntax.is_none(),
        ),
        ("TestDetectSyntax", "FROM busybox\nRUN ls\n", |df| {
            df.directives.syntax.is_none()
        }),
        (
            "TestDetectSyntaxBOM",
            "\u{feff}# syntax = myfrontend\nFROM busybox\n",
            |df| {
                df.directives
                    .syntax
                    .as_ref()
                    .is_some_and(|w| w.value == "myfrontend" && w.span.start.line == 1)
            },
        ),
        (
            "TestParseDirective",
            "#check = skip=all // opts\nFROM busybox\n",
            |df| df.directives.check.skip_all,
        ),
        (
            "TestParseDirective",
            "#!/bin/sh\n# check = skip=all\nFROM busybox\n",
            |df| df.directives.check.skip_all,
        ),
        (
            "TestParseDirective",
            "#!/bin/sh\n\n# check = skip=all\nFROM busybox\n",
            |df| !df.directives.check.skip_all,
        ),
    ];
    for (t, s, c) in directives {
        out.push((t, s.into(), Some(c)));
    }
    out.push((
        "TestParseDirective",
        "FROM busybox\nRUN ls\n".into(),
        Some(|df| !df.directives.check.skip_all && df.directives.check.skip.is_empty()),
    ));
    out
}

#[test]
fn buildkit_parser_vectors() {
    let rows = rows();
    let mut failures = Vec::new();
    for (test, src, expect) in &rows {
        match (dockerfile::parse(src, "Dockerfile"), expect) {
            (Ok(df), Some(c)) if c(&df) => {}
            (Err(_), None) => {}
            (got, _) => {
                let got = format!(
                    "{:?}",
                    got.map(|d| (
                        d.directives,
                        d.warnings,
                        d.instructions.get(1).map(|i| i.kind.clone())
                    ))
                );
                let cut = |s: &str| s.chars().take(300).collect::<String>();
                failures.push(format!("{test}: {:?}: {}", cut(src), cut(&got)));
            }
        }
    }
    // TestParseWords: parseWords keeps quotes and escapes in each word.
    let words: [(&str, &[&str]); 8] = [
        ("foo", &["foo"]),
        ("foo bar", &["foo", "bar"]),
        ("foo\\ bar", &["foo\\ bar"]),
        ("foo=bar", &["foo=bar"]),
        ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
        (r#"foo bar "abc xyz""#, &["foo", "bar", r#""abc xyz""#]),
        ("àöû", &["àöû"]),
        (r#"föo bàr "âbc xÿz""#, &["föo", "bàr", r#""âbc xÿz""#]),
    ];
    for (input, expected) in words {
        let got = dockerfile::split_words(input, '\\');
        if got != expected {
            failures.push(format!(
                "TestParseWords: {input:?} → {got:?}, BuildKit: {expected:?}"
            ));
        }
    }
    let total = rows.len() + words.len();
    let count = |p: &str| rows.iter().filter(|r| r.0.starts_with(p)).count();
    eprintln!(
        "BuildKit parser vectors: {}/{total} pass (parser_test.go {}, line_parsers_test.go {}, json_test.go {}, directives_test.go {})",
        total - failures.len(),
        count("TestParseI") + count("TestParseW") + count("TestParseR") + words.len(),
        count("TestParseNameVal"),
        count("TestJSON"),
        count("TestDirectives") + count("TestDetect") + count("TestParseDirective"),
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 40, "only {total} vectors");
}
