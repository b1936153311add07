//! BuildKit's own shell-lexer vectors (moby/buildkit `frontend/dockerfile/shell`: `envVarTest`, `wordsTest` and
//! the tables of `lex_test.go`), transcribed as facts into `testdata/dockerfile/buildkit/shell.tsv` by
//! `transcribe.py` there, run through our [`Expander`] with BuildKit's settings (escape `\`, unset variables
//! expand to nothing). Prints the pass rate; every row must pass.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use lamina_dockerfile::Expander;
use serde_json::Value;

#[test]
fn buildkit_shell_lexer_vectors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/dockerfile/buildkit/shell.tsv");
    let text = fs::read_to_string(&path).expect("shell.tsv");
    let ex = Expander::new('\\');
    let (mut total, mut failures) = (0, Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "malformed row: {line}");
        let input: String = serde_json::from_str(cols[2]).expect("input");
        let env: BTreeMap<String, String> = serde_json::from_str(cols[3]).expect("env");
        let expected: Value = serde_json::from_str(cols[4]).expect("expected");
        let mut lookup = |n: &str| env.get(n).cloned();
        let actual = match cols[1] {
            "word" => ex.word(&input, &mut lookup).map(Value::from),
            "words" => ex.words(&input, &mut lookup).map(Value::from),
            m => panic!("unknown mode {m}"),
        };
        let ok = match (&expected, &actual) {
            (Value::String(s), Err(_)) => s == "error",
            (Value::Object(o), Err(e)) => o["error_contains"]
                .as_str()
                .is_some_and(|m| e.to_string().contains(m)),
            (_, Ok(v)) => *v == expected && expected != "error",
            _ => false,
        };
        total += 1;
        if !ok {
            failures.push(format!(
                "{}: {input:?} → {actual:?}, BuildKit: {expected}",
                cols[0]
            ));
        }
    }
    let passed = total - failures.len();
    eprintln!(
        "BuildKit shell vectors: {passed}/{total} pass ({:.1}%)",
        100.0 * passed as f64 / total as f64
    );
    assert!(total >= 300, "only {total} vectors");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// BuildKit's `TestConvertShellPatternToRegex` (lex_test.go): what a `${V##pattern}` pattern matches,
/// seen through longest-prefix removal, and the patterns it refuses. Not transcribed, as Go helper
/// details: TestReverseString/TestReversePattern (the helpers behind `%`, whose behaviour envVarTest
/// covers), TestGetEnv (the Go env-slice type), and TestShellParser4Words's second mode, which reads the
/// already-consumed file and so runs no vector.
#[test]
fn buildkit_shell_pattern_vectors() {
    let ex = Expander::new('\\');
    // (pattern as written in the word, value of V, V with the longest matching prefix removed).
    let matches = [
        ("*", "abc", Some("")),
        ("?", "abc", Some("bc")),
        (r"\*", "*abc", Some("abc")),
        (r"(()[]{\}^$.\*\?|\\", r"(()[]{}^$.*?|\z", Some("z")),
        (r"\", "abc", None),
        (r"\x", "abc", None),
        (r"\\\", "abc", None),
    ];
    let mut failures = Vec::new();
    for (pattern, value, expected) in matches {
        let word = format!("${{V##{pattern}}}");
        let mut lookup = |n: &str| (n == "V").then(|| value.to_string());
        let got = ex.word(&word, &mut lookup).ok();
        if got.as_deref() != expected {
            failures.push(format!(
                "{word:?} with V={value:?}: {got:?}, BuildKit: {expected:?}"
            ));
        }
    }
    eprintln!(
        "BuildKit shell pattern vectors: {}/{} pass",
        matches.len() - failures.len(),
        matches.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
