//! BuildKit's instruction-level heredoc vectors (moby/buildkit
//! `frontend/dockerfile/instructions/parse_heredoc_test.go`: TestErrorCasesHeredoc, TestCopyHeredoc,
//! TestRunHeredoc), transcribed as facts and run through `dockerfile::parse` (each file gets a `FROM`
//! first, which our parser requires). BuildKit keeps a `<<-` RUN body's tabs until it runs it; ours are
//! stripped when parsed, so such an expected body is shown stripped.

use lamina_dockerfile::{self as dockerfile, Command, Kind};

fn one(src: &str) -> dockerfile::Instruction {
    let df = dockerfile::parse(&format!("FROM scratch\n{src}"), "Dockerfile").expect("parses");
    df.instructions.into_iter().nth(1).expect("one instruction")
}

/// (file, context sources, dest, heredoc sources as (name, body, expand)).
type CopyCase = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static [(&'static str, &'static str, bool)],
);

#[test]
fn copy_heredocs() {
    let cases: &[CopyCase] = &[
        ("COPY /foo /bar", &["/foo"], "/bar", &[]),
        ("COPY <<EOF /bar\nEOF", &[], "/bar", &[("EOF", "", true)]),
        (
            "COPY <<EOF /bar\nTESTING\nEOF",
            &[],
            "/bar",
            &[("EOF", "TESTING\n", true)],
        ),
        (
            "COPY <<-EOF /bar\n\tTESTING\nEOF",
            &[],
            "/bar",
            &[("EOF", "TESTING\n", true)],
        ),
        (
            "COPY <<'EOF' /bar\nTESTING\nEOF",
            &[],
            "/bar",
            &[("EOF", "TESTING\n", false)],
        ),
        (
            "COPY <<EOF1 <<EOF2 /bar\nthis is the first file\nEOF1\nthis is the second file\nEOF2",
            &[],
            "/bar",
            &[
                ("EOF1", "this is the first file\n", true),
                ("EOF2", "this is the second file\n", true),
            ],
        ),
        (
            "COPY <<EOF foo.txt /bar\nthis is inline\nEOF",
            &["foo.txt"],
            "/bar",
            &[("EOF", "this is inline\n", true)],
        ),
        (
            "COPY <<EOF /quotes\n\"quotes\"\nEOF",
            &[],
            "/quotes",
            &[("EOF", "\"quotes\"\n", true)],
        ),
    ];
    for (src, paths, dest, docs) in cases {
        let ins = one(src);
        let Kind::Copy(c) = &ins.kind else {
            panic!("{src}: not COPY")
        };
        let heredoc_words: Vec<&str> = c
            .sources
            .iter()
            .map(|w| w.value.as_str())
            .filter(|w| w.starts_with("<<"))
            .collect();
        let plain: Vec<&str> = c
            .sources
            .iter()
            .map(|w| w.value.as_str())
            .filter(|w| !w.starts_with("<<"))
            .collect();
        assert_eq!(&plain, paths, "{src}");
        assert_eq!(heredoc_words.len(), docs.len(), "{src}");
        assert_eq!(c.dest.value, *dest, "{src}");
        let got: Vec<(&str, &str, bool)> = ins
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str(), h.expand))
            .collect();
        assert_eq!(&got, docs, "{src}");
    }
}

#[test]
fn a_heredoc_destination_is_refused() {
    let err = dockerfile::parse("FROM scratch\nCOPY /foo <<EOF\nEOF", "Dockerfile").expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("Dockerfile:2"), "{text}");
    assert!(text.to_lowercase().contains("heredoc"), "{text}");
}

/// (file, shell form?, command words, heredocs as (name, body, chomp)).
type RunCase = (
    &'static str,
    bool,
    &'static [&'static str],
    &'static [(&'static str, &'static str, bool)],
);

#[test]
fn run_heredocs() {
    let cases: &[RunCase] = &[
        ("RUN [\"ls\", \"/\"]", false, &["ls", "/"], &[]),
        ("RUN [\"<<EOF\"]", false, &["<<EOF"], &[]),
        ("RUN ls /", true, &["ls /"], &[]),
        (
            "RUN <<EOF\nls /\nwhoami\nEOF",
            true,
            &["<<EOF"],
            &[("EOF", "ls /\nwhoami\n", false)],
        ),
        (
            "RUN <<'EOF' | python\nprint(\"hello\")\nprint(\"world\")\nEOF",
            true,
            &["<<'EOF' | python"],
            &[("EOF", "print(\"hello\")\nprint(\"world\")\n", false)],
        ),
        (
            "RUN <<-EOF\n\techo test\nEOF",
            true,
            &["<<-EOF"],
            &[("EOF", "echo test\n", true)],
        ),
    ];
    for (src, shell, words, docs) in cases {
        let ins = one(src);
        let Kind::Run { command, .. } = &ins.kind else {
            panic!("{src}: not RUN")
        };
        let (is_shell, got): (bool, Vec<&str>) = match command {
            Command::Shell(w) => (true, vec![w.value.as_str()]),
            Command::Exec(ws) => (false, ws.iter().map(|w| w.value.as_str()).collect()),
        };
        assert_eq!((is_shell, got.as_slice()), (*shell, *words), "{src}");
        let heredocs: Vec<(&str, &str, bool)> = ins
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str(), h.chomp))
            .collect();
        assert_eq!(&heredocs, docs, "{src}");
    }
}
