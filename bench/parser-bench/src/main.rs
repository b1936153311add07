#![allow(unused_imports)]
//! Times parse + graph/expansion of a Dockerfile and .dockerignore matching over a path list.
//! Usage: parser-bench DOCKERFILE DOCKERIGNORE PATHS_FILE

use lamina_dockerfile as dockerfile;

use std::time::{Duration, Instant};

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("ran at least once"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&args[1]).expect("dockerfile");
    let ignore = std::fs::read_to_string(&args[2]).expect("dockerignore");
    let paths_text = std::fs::read_to_string(&args[3]).expect("paths");
    let paths: Vec<&str> = paths_text.lines().collect();

    let (t, n) = best_of(20, || dockerfile::parse(&src, "Dockerfile").expect("parses").instructions.len());
    println!("parse only: {n} instructions: {:.2} ms", t.as_secs_f64() * 1e3);
    let df = dockerfile::parse(&src, "Dockerfile").expect("parses");
    let (t, n) = best_of(20, || dockerfile::graph::BuildGraph::new(&df, &Default::default()).expect("graph").stages.len());
    println!("graph + expansion only: {n} stages: {:.2} ms", t.as_secs_f64() * 1e3);
    let (t, steps) = best_of(20, || {
        let df = dockerfile::parse(&src, "Dockerfile").expect("parses");
        let g = dockerfile::graph::BuildGraph::new(&df, &Default::default()).expect("graph");
        (df.instructions.len(), g.stages.iter().map(|s| s.steps.len()).sum::<usize>())
    });
    println!("parse+expand: {} instructions ({} steps): {:.2} ms", steps.0, steps.1, t.as_secs_f64() * 1e3);

    let m = dockerfile::dockerignore::Matcher::parse(&ignore, ".dockerignore").expect("patterns");
    let (t, n) = best_of(10, || paths.iter().filter(|p| m.is_excluded(p)).count());
    println!("dockerignore (uncached): {} paths x {} patterns: {} excluded in {:.2} ms", paths.len(), m.patterns().len(), n, t.as_secs_f64() * 1e3);
    let (t, n2) = best_of(10, || {
        let mut c = dockerfile::dockerignore::MatchCache::new();
        paths.iter().filter(|p| c.is_excluded(&m, p)).count()
    });
    assert_eq!(n, n2, "cache and plain matching agree");
    println!("dockerignore (MatchCache): {} excluded in {:.2} ms", n2, t.as_secs_f64() * 1e3);
}
