//! Build checks corpus (testdata/dockerfile/checks/): each `NAME.Dockerfile` is written to trip one rule of
//! BuildKit's linter (or none); `NAME.expect` lists the `RULE LINE` pairs it must report, in order, as the
//! rule docs and BuildKit's linter define them (the oracle's BuildKit 0.13 has no linter to ask).

use std::fs;
use std::path::Path;

use lamina_dockerfile::{BuildGraph, BuildOptions, parse};

fn reported(src: &str) -> String {
    let df = parse(src, "Dockerfile").expect("parses");
    // A file can fail to plan (a duplicate stage name is also an error): its checks still report.
    let graph_warnings = BuildGraph::new(&df, &BuildOptions::default()).map_or(Vec::new(), |g| g.warnings);
    df.warnings
        .iter()
        .chain(&graph_warnings)
        .filter(|w| w.rule != "UnusedBuildArg")
        .map(|w| format!("{} {}\n", w.rule, w.span.map_or(0, |s| s.start.line)))
        .collect()
}

#[test]
fn every_rule_reports_at_its_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/dockerfile/checks");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .expect("checks dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    let mut rules = std::collections::BTreeSet::new();
    for case in &cases {
        let src = fs::read_to_string(case).expect("Dockerfile");
        let want = fs::read_to_string(case.with_extension("expect")).expect(".expect file");
        let got = reported(&src);
        rules.extend(want.lines().filter_map(|l| l.split(' ').next()).map(String::from));
        if got != want {
            failures.push(format!("{}:\n  want {want:?}\n  got  {got:?}", case.display()));
        }
    }
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    assert!(rules.len() >= 15, "only {} rules covered: {rules:?}", rules.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_directive_turns_a_warning_into_the_error() {
    let err = parse("# check=error=true\nFROM alpine as b\n", "Dockerfile").expect_err("is an error");
    let text = err.to_string();
    assert!(text.contains("FromAsCasing") && text.contains(":2:"), "{text}");
    // Skipped rules don't fail the build.
    parse(
        "# check=skip=FromAsCasing;error=true\nFROM alpine as b\n",
        "Dockerfile",
    )
    .expect("skipped");
}

#[test]
fn undefined_var_knows_the_base_env_and_suggests() {
    let df = parse("FROM alpine\nENV X=$PATH:/x\nCOPY $PAHT /\n", "Dockerfile").expect("parses");
    let g = BuildGraph::new(&df, &BuildOptions::default()).expect("plans");
    // An image base's ENV is unknown when planning: nothing is reported yet.
    assert!(
        g.warnings.iter().all(|w| w.rule != "UndefinedVar"),
        "{:?}",
        g.warnings
    );
    let w = g
        .undefined_vars(0, vec![("PATH".into(), "/bin".into())])
        .expect("expands");
    let got: Vec<(String, u32)> = w
        .iter()
        .map(|w| (w.message.clone(), w.span.unwrap().start.line))
        .collect();
    assert_eq!(
        got,
        [(
            "Usage of undefined variable '$PAHT' (did you mean $PATH?)".to_string(),
            3
        )]
    );
}
