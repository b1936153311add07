//! Golden corpus under testdata/dockerfile/ (see its README): positive Dockerfiles → report JSON,
//! negative Dockerfiles → error message, expansion and .dockerignore tables.
//! `LAMINA_REGEN=1 cargo test -p lamina-builder --test dockerfile_corpus` rewrites the expectations.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use lamina_dockerfile::dockerignore::Matcher;
use lamina_dockerfile::graph::{BuildOptions, Platform};
use lamina_dockerfile::{Expander, report};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/dockerfile")
}

fn regen() -> bool {
    std::env::var_os("LAMINA_REGEN").is_some()
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(corpus().join(dir))
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    v.sort();
    v
}

/// `<case>.opts`: lines `target=NAME`, `build-arg=K=V`, `platform=os/arch`.
fn options(case: &Path) -> BuildOptions {
    let amd64 = Platform::parse("linux/amd64").expect("platform");
    let mut o = BuildOptions {
        target: None,
        build_args: BTreeMap::new(),
        platform: amd64.clone(),
        build_platform: amd64,
        named_contexts: BTreeMap::new(),
        triggers: BTreeMap::new(),
    };
    if let Ok(text) = fs::read_to_string(case.with_extension("opts")) {
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = l.split_once('=').expect("opts line is key=value");
            match k {
                "target" => o.target = Some(v.into()),
                "build-arg" => {
                    let (a, b) = v.split_once('=').expect("build-arg K=V");
                    o.build_args.insert(a.into(), b.into());
                }
                "platform" => o.platform = Platform::parse(v).expect("platform"),
                _ => panic!("unknown option {k} in {}", case.display()),
            }
        }
    }
    o
}

fn check(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if regen() {
        fs::write(path, actual).expect("write golden");
        return;
    }
    let expected = fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

#[test]
fn positive_cases() {
    let mut failures = Vec::new();
    let list = cases("positive");
    assert!(list.len() >= 80, "only {} positive cases", list.len());
    for case in list {
        let src = fs::read_to_string(&case).expect("read case");
        let out = match report::report(&src, "Dockerfile", &options(&case)) {
            Ok(r) => serde_json::to_string_pretty(&r).expect("json") + "\n",
            Err(e) => {
                failures.push(format!("{}: unexpected error: {}", case.display(), e.render()));
                continue;
            }
        };
        check(&case.with_extension("json"), &out, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn negative_cases() {
    let mut failures = Vec::new();
    let list = cases("negative");
    assert!(list.len() >= 30, "only {} negative cases", list.len());
    for case in list {
        let src = fs::read_to_string(&case).expect("read case");
        match report::report(&src, "Dockerfile", &options(&case)) {
            Ok(_) => failures.push(format!("{}: parsed, expected an error", case.display())),
            Err(e) => check(&case.with_extension("err"), &(e.render() + "\n"), &mut failures),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// expand.tsv: `mode<TAB>escape<TAB>input<TAB>env JSON<TAB>expected`; mode `word` expects the text (or
/// `!error`), mode `words` a JSON array.
#[test]
fn expansion_table() {
    let path = corpus().join("expand.tsv");
    let text = fs::read_to_string(&path).expect("expand.tsv");
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            cols.len() == 5,
            "expand.tsv:{}: want 5 tab-separated columns, got {}",
            i + 1,
            cols.len()
        );
        let env: BTreeMap<String, String> = serde_json::from_str(cols[3]).expect("env JSON");
        let escape = cols[1].chars().next().expect("escape char");
        let ex = Expander::new(escape);
        let mut lookup = |n: &str| env.get(n).cloned();
        let actual = match cols[0] {
            "word" => match ex.word(cols[2], &mut lookup) {
                Ok(s) => s,
                Err(e) => format!("!{e}"),
            },
            "words" => match ex.words(cols[2], &mut lookup) {
                Ok(w) => serde_json::to_string(&w).expect("json"),
                Err(e) => format!("!{e}"),
            },
            m => panic!("expand.tsv:{}: unknown mode {m}", i + 1),
        };
        n += 1;
        if actual != cols[4] {
            failures.push(format!(
                "expand.tsv:{}: {:?} → {:?}, expected {:?}",
                i + 1,
                cols[2],
                actual,
                cols[4]
            ));
        }
        out.push_str(&[cols[0], cols[1], cols[2], cols[3], &actual].join("\t"));
        out.push('\n');
    }
    if regen() {
        fs::write(&path, out).expect("write");
        return;
    }
    assert!(n >= 150, "only {n} expansion cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// dockerignore.tsv: `patterns JSON array<TAB>path<TAB>excluded|included`.
#[test]
fn dockerignore_table() {
    let path = corpus().join("dockerignore.tsv");
    let text = fs::read_to_string(&path).expect("dockerignore.tsv");
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() == 3, "dockerignore.tsv:{}: want 3 columns", i + 1);
        let pats: Vec<String> = serde_json::from_str(cols[0]).expect("patterns JSON");
        let m = Matcher::parse(&pats.join("\n"), ".dockerignore").expect("patterns compile");
        let actual = if m.is_excluded(cols[1]) {
            "excluded"
        } else {
            "included"
        };
        let mut cache = lamina_dockerfile::dockerignore::MatchCache::new();
        let cleaned = lamina_dockerfile::dockerignore::clean_path(cols[1]);
        assert_eq!(
            cache.is_excluded(&m, &cleaned),
            actual == "excluded",
            "cache disagrees on line {}",
            i + 1
        );
        n += 1;
        if actual != cols[2] {
            failures.push(format!(
                "dockerignore.tsv:{}: {} {} → {actual}, expected {}",
                i + 1,
                cols[0],
                cols[1],
                cols[2]
            ));
        }
        out.push_str(&[cols[0], cols[1], actual].join("\t"));
        out.push('\n');
    }
    if regen() {
        fs::write(&path, out).expect("write");
        return;
    }
    assert!(n >= 80, "only {n} dockerignore cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
