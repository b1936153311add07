//! BuildKit's instruction-level unit vectors (moby/buildkit `frontend/dockerfile/instructions/`:
//! `parse_test.go`, `bflag_test.go`, `support_test.go`), transcribed as facts into our own table and run
//! through `dockerfile::parse`. Each row names the Go test it comes from (TestCommentsDetection is its own
//! test below). BuildKit's tests call `ParseInstruction` on one node; ours parse a whole file, so every
//! row gets a `FROM busybox` first. Error rows match a fragment of BuildKit's message (case-insensitive).
//! Skipped as Go API details with no user-visible meaning: TestCommandsTooManyArguments (a hand-built
//! node no text can produce), BenchmarkParseBuildStageName, and bflag's "IsUsed" of flags that were not
//! given (defaults are not observable beyond "absent"). commands_rundevice_test.go is newer than BuildKit
//! 0.13 (RUN --device, labs) and not covered.

use lamina_dockerfile::{self as dockerfile, Command, Dockerfile, Kind};

enum Expect {
    /// Parses; the check holds on the second instruction (the one after FROM).
    Ok(fn(&dockerfile::Instruction) -> bool),
    /// Parses or fails, but does not panic (TestNilLinter).
    NoPanic,
    /// Fails with a message containing this fragment of BuildKit's.
    Err(&'static str),
}

struct V {
    test: &'static str,
    src: String,
    expect: Expect,
}

fn v(test: &'static str, src: impl Into<String>, expect: Expect) -> V {
    V {
        test,
        src: src.into(),
        expect,
    }
}

fn any(_: &dockerfile::Instruction) -> bool {
    true
}

fn flag_names(i: &dockerfile::Instruction) -> Vec<&str> {
    i.flags.iter().map(|f| f.name.as_str()).collect()
}

fn cmd_exec(i: &dockerfile::Instruction) -> Vec<&str> {
    match &i.kind {
        Kind::Cmd {
            command: Command::Exec(ws),
        } => ws.iter().map(|w| w.value.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn copy(i: &dockerfile::Instruction) -> &dockerfile::CopyArgs {
    match &i.kind {
        Kind::Copy(c) | Kind::Add(c) => c,
        k => panic!("not COPY/ADD: {k:?}"),
    }
}

fn vectors() -> Vec<V> {
    use Expect::*;
    let mut out = Vec::new();
    for cmd in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        out.push(v(
            "TestCommandsExactlyOneArgument",
            cmd,
            Err("requires exactly one argument"),
        ));
    }
    for cmd in ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"] {
        out.push(v(
            "TestCommandsAtLeastOneArgument",
            cmd,
            Err("requires at least one argument"),
        ));
    }
    for cmd in ["ADD", "COPY"] {
        out.push(v(
            "TestCommandsNoDestinationArgument",
            format!("{cmd} arg1"),
            Err("requires at least two arguments"),
        ));
    }
    for cmd in ["ENV", "LABEL"] {
        out.push(v(
            "TestCommandsBlankNames",
            format!("{cmd} =arg2"),
            Err("names can not be blank"),
        ));
    }
    out.push(v(
        "TestHealthCheckCmd",
        "HEALTHCHECK CMD hello world",
        Ok(|i| {
            matches!(&i.kind, Kind::Healthcheck(h)
                if matches!(&h.command, Some(Command::Shell(w)) if w.value == "hello world"))
        }),
    ));
    out.push(v(
        "TestParseOptInterval",
        "HEALTHCHECK --interval=50ns CMD true",
        Err("cannot be less than 1ms"),
    ));
    for d in ["0ms", "1ms"] {
        out.push(v(
            "TestParseOptInterval",
            format!("HEALTHCHECK --interval={d} CMD true"),
            Ok(any),
        ));
    }
    // command.Commands: every instruction keyword BuildKit knows.
    for cmd in [
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    ] {
        for tail in [" foo=bar", " a", " a b", " a b c", " 0 0"] {
            out.push(v("TestNilLinter", format!("{cmd}{tail}"), NoPanic));
        }
    }
    let errors = [
        (
            "COPY\t\n\t\tquux \\\n      bar",
            "COPY requires at least two arguments",
        ),
        ("ONBUILD FROM scratch", "FROM isn't allowed as an ONBUILD trigger"),
        ("MAINTAINER --boo joe@example.com", "unknown flag"),
        (
            "ONBUILD ONBUILD RUN touch foobar",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("FOO bar", "unknown instruction: FOO"),
        ("foo bar", "unknown instruction: foo"),
    ];
    for (src, msg) in errors {
        out.push(v("TestErrorCases", src, Err(msg)));
    }
    out.push(v(
        "TestRunCmdFlagsUsed",
        "RUN --mount=type=tmpfs,target=/foo/ echo hello",
        Ok(|i| flag_names(i) == ["mount"]),
    ));
    // support_test.go TestHandleJSONArgs: JSON args stay separate words, shell-form args are one string.
    let json_args: [(&str, Expect); 4] = [
        (
            "CMD []",
            Ok(|i| matches!(&i.kind, Kind::Cmd { command: Command::Exec(w) } if w.is_empty())),
        ),
        ("CMD [\"foo\"]", Ok(|i| cmd_exec(i) == ["foo"])),
        ("CMD [\"foo\", \"bar\"]", Ok(|i| cmd_exec(i) == ["foo", "bar"])),
        (
            "CMD foo bar",
            Ok(|i| matches!(&i.kind, Kind::Cmd { command: Command::Shell(w) } if w.value == "foo bar")),
        ),
    ];
    for (src, e) in json_args {
        out.push(v("TestHandleJSONArgs", src, e));
    }
    // bflag_test.go TestBuilderFlags, on COPY's flags: --chown a string flag, --link and --parents
    // bool flags.
    let bflags: [(&str, Expect); 12] = [
        ("COPY a b", Ok(|i| i.flags.is_empty())),
        (
            "COPY -- a b",
            Ok(|i| i.flags.is_empty() && copy(i).sources[0].value == "a"),
        ),
        ("COPY --chown a b", Err("")),
        (
            "COPY --chown= a b",
            Ok(|i| copy(i).chown.as_ref().is_some_and(|w| w.value.is_empty())),
        ),
        (
            "COPY --chown=BYE a b",
            Ok(|i| copy(i).chown.as_ref().is_some_and(|w| w.value == "BYE")),
        ),
        ("COPY --link a b", Ok(|i| copy(i).link)),
        ("COPY --link=true a b", Ok(|i| copy(i).link)),
        ("COPY --link=false a b", Ok(|i| !copy(i).link)),
        ("COPY --link=false1 a b", Err("")),
        ("COPY --bool2 a b", Err("unknown flag")),
        (
            "COPY --link --chown=BYE a b",
            Ok(|i| copy(i).link && copy(i).chown.as_ref().is_some_and(|w| w.value == "BYE")),
        ),
        (
            "COPY --link=false --parents --chown=my-val a b",
            Ok(|i| flag_names(i) == ["link", "parents", "chown"] && !copy(i).link && copy(i).parents),
        ),
    ];
    for (src, e) in bflags {
        out.push(v("TestBuilderFlags", src, e));
    }
    out
}

fn check(src: &str, expect: &Expect) -> Result<(), String> {
    let text = format!("FROM busybox\n{src}\n");
    let parsed: Result<Dockerfile, _> = std::panic::catch_unwind(|| dockerfile::parse(&text, "Dockerfile"))
        .map_err(|_| "panicked".to_string())?;
    match (expect, parsed) {
        (Expect::NoPanic, _) => Ok(()),
        (Expect::Ok(f), Ok(df)) => {
            let ins = df.instructions.get(1).ok_or("no instruction after FROM")?;
            if f(ins) {
                Ok(())
            } else {
                Err(format!("unexpected result {:?}", ins.kind))
            }
        }
        (Expect::Ok(_), Err(e)) => Err(format!("failed: {e}")),
        (Expect::Err(m), Err(e)) => {
            let msg = e.to_string().to_lowercase();
            if msg.contains(&m.to_lowercase()) {
                Ok(())
            } else {
                Err(format!("error {msg:?} lacks {m:?}"))
            }
        }
        (Expect::Err(_), Ok(df)) => Err(format!("parsed: {:?}", df.instructions.get(1).map(|i| &i.kind))),
    }
}

#[test]
fn buildkit_instruction_vectors() {
    let vs = vectors();
    let mut failures = Vec::new();
    for x in &vs {
        if let Err(why) = check(&x.src, &x.expect) {
            failures.push(format!("{}: {:?}: {why}", x.test, x.src));
        }
    }
    let bflag = vs.iter().filter(|x| x.test == "TestBuilderFlags").count();
    let support = vs.iter().filter(|x| x.test == "TestHandleJSONArgs").count();
    eprintln!(
        "BuildKit instruction vectors: {}/{} pass (parse_test.go {}, bflag_test.go {bflag}, support_test.go {support})",
        vs.len() - failures.len(),
        vs.len(),
        vs.len() - bflag - support,
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(vs.len() >= 120, "only {} vectors", vs.len());
}

/// TestCommentsDetection: a comment line above a FROM or ARG that starts with the stage's or the arg's
/// name describes it (what `--call outline` shows); other comments describe nothing.
#[test]
fn comments_detection() {
    let dt = "# foo sets foo\nARG foo=bar\n\n# base defines first stage\nFROM busybox AS base\n# this is irrelevant\nARG foo\n# bar defines bar\n# baz is something else\nARG bar baz=123\n";
    let df = dockerfile::parse(dt, "Dockerfile").expect("parses");
    let mut docs = Vec::new();
    for ins in &df.instructions {
        match &ins.kind {
            Kind::From { name: Some(n), .. } => docs.push((n.value.clone(), ins.doc_comment(&n.value))),
            Kind::Arg { args } => {
                for a in args {
                    docs.push((a.name.value.clone(), ins.doc_comment(&a.name.value)));
                }
            }
            _ => {}
        }
    }
    let want = [
        ("foo", Some("sets foo")),
        ("base", Some("defines first stage")),
        ("foo", None),
        ("bar", Some("defines bar")),
        ("baz", Some("is something else")),
    ];
    let got: Vec<(&str, Option<&str>)> = docs.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    assert_eq!(got, want);
}
