//! The API the build engine uses: parse → graph → steps with scoping applied.

use lamina_dockerfile::{self as dockerfile, Base, BuildGraph, BuildOptions, Kind, graph::Ref};

fn graph(src: &str, target: Option<&str>, args: &[(&str, &str)]) -> BuildGraph {
    let df = dockerfile::parse(src, "Dockerfile").expect("parses");
    let opts = BuildOptions {
        target: target.map(String::from),
        build_args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    BuildGraph::new(&df, &opts).expect("graph")
}

#[test]
fn stages_are_pruned_and_ordered() {
    let g = graph(
        "FROM alpine AS a\nRUN x\nFROM busybox AS unused\nFROM a AS b\nCOPY --from=0 /x /y\nFROM scratch\nCOPY --from=b / /\n",
        None,
        &[],
    );
    let names: Vec<_> = g.stages.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, vec![Some("a".into()), Some("b".into()), None]);
    assert_eq!(g.stages[1].base, Base::Stage(0));
    assert_eq!(g.stages[2].base, Base::Scratch);
    assert_eq!(g.stages[2].steps[0].copy_from, Some(Ref::Stage(1)));
    let g = graph("FROM alpine AS a\nFROM busybox AS b\n", Some("a"), &[]);
    assert_eq!(g.stages.len(), 1);
}

#[test]
fn arg_scope_and_used_args() {
    let src = "ARG V=1\nARG IMG=alpine\nFROM $IMG\nRUN echo $V\nARG V\nENV E=$V\nWORKDIR /$V\nRUN true\n";
    let g = graph(src, None, &[("V", "9")]);
    let s = &g.stages[0];
    assert_eq!(s.from_used_args, vec!["IMG"]);
    assert!(
        s.steps[0].run_env.is_empty(),
        "global ARG is not visible before it is redeclared"
    );
    let Kind::Env { vars } = &s.steps[2].instruction.kind else {
        panic!()
    };
    assert_eq!(vars[0].value.value, "9");
    assert_eq!(s.steps[2].used_args, vec!["V"]);
    assert_eq!(
        s.steps[4].run_env,
        vec![("V".to_string(), "9".to_string()), ("E".into(), "9".into())]
    );
}

#[test]
fn errors_point_at_the_source() {
    let e = dockerfile::parse("FROM a\nCOPY --frm=x a b\n", "Dockerfile").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2:6: unknown flag --frm for COPY (did you mean --from?)"
    );
    assert_eq!(e.snippet, "2 | COPY --frm=x a b\n  |      ^^^^^^^");
}

/// Steps between ENV/ARG lines share one list; a later ENV/ARG line never changes what earlier steps (or
/// the stage built on this one) saw.
#[test]
fn env_and_args_are_shared_and_copied_on_write() {
    let src = "FROM scratch AS base\nENV A=1\nRUN one\nRUN two\nARG B=2\nRUN three\nENV A=3\nCOPY x /y\n\
               FROM base\nRUN four\nENV A=4\n";
    let g = graph(src, None, &[]);
    let s = &g.stages[0].steps;
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(k, w)| (k.to_string(), w.to_string())).collect()
    };
    let path = dockerfile::graph::DEFAULT_PATH;
    assert_eq!(s[1].env, pairs(&[("PATH", path), ("A", "1")]));
    assert!(
        std::ptr::eq(s[1].env.as_ptr(), s[2].env.as_ptr()),
        "RUNs share the ENV list"
    );
    assert!(std::ptr::eq(s[1].run_env.as_ptr(), s[2].run_env.as_ptr()));
    assert!(s[3].args.is_empty() && s[1].args.is_empty());
    assert_eq!(s[4].args, vec![("B".to_string(), Some("2".to_string()))]);
    assert_eq!(s[4].run_env, pairs(&[("PATH", path), ("A", "1"), ("B", "2")]));
    assert_eq!(s[5].env, pairs(&[("PATH", path), ("A", "1")]));
    assert_eq!(s[6].env, pairs(&[("PATH", path), ("A", "3")]));
    assert_eq!(
        s[2].run_env,
        pairs(&[("PATH", path), ("A", "1")]),
        "earlier RUN unchanged"
    );
    assert_eq!(g.stages[0].final_env, pairs(&[("PATH", path), ("A", "3")]));
    let child = &g.stages[1].steps;
    assert_eq!(child[0].env, pairs(&[("PATH", path), ("A", "3")]));
    assert_eq!(child[0].args, vec![("B".to_string(), Some("2".to_string()))]);
    assert_eq!(g.stages[1].final_env, pairs(&[("PATH", path), ("A", "4")]));
    assert_eq!(g.stages[0].final_env, pairs(&[("PATH", path), ("A", "3")]));

    // Re-expanding on a real base ENV gives the same sharing and values.
    let (steps, env) = g.expand_stage(0, pairs(&[("HOME", "/root")])).unwrap();
    assert_eq!(steps[2].run_env, pairs(&[("HOME", "/root"), ("A", "1")]));
    assert_eq!(env, pairs(&[("HOME", "/root"), ("A", "3")]));
}

#[test]
fn expose_splits_expanded_words_and_keeps_the_container_port() {
    let g = graph(
        "FROM scratch\nENV P=\"80 443/udp\"\nEXPOSE $P 0.0.0.0:8080:81/tcp [::1]:90:91 \"92\"\n",
        None,
        &[],
    );
    let Kind::Expose { ports } = &g.stages[0].steps[1].instruction.kind else {
        panic!("not EXPOSE")
    };
    let values: Vec<&str> = ports.iter().map(|w| w.value.as_str()).collect();
    assert_eq!(
        values,
        ["80", "443/udp", "0.0.0.0:8080:81/tcp", "[::1]:90:91", "92"]
    );
    let keys: Vec<String> = values
        .iter()
        .flat_map(|v| dockerfile::values::exposed_ports(v))
        .collect();
    assert_eq!(keys, ["80/tcp", "443/udp", "81/tcp", "91/tcp", "92/tcp"]);
    let e = dockerfile::parse("FROM scratch\nARG P=bad:80\nEXPOSE $P\n", "Dockerfile")
        .and_then(|df| BuildGraph::new(&df, &BuildOptions::default()).map(|_| ()))
        .unwrap_err();
    assert!(
        e.to_string().starts_with("Dockerfile:3:8: invalid port 'bad:80'"),
        "{e}"
    );
}

#[test]
fn named_contexts_stand_in_for_images_but_not_for_earlier_stages() {
    let df = dockerfile::parse(
        "FROM base AS one\nFROM alpine AS extra\nFROM one\nCOPY --from=extra /a /a\nCOPY --from=ctx /b /b\nRUN --mount=from=ctx,target=/m true\n",
        "Dockerfile",
    )
    .expect("parses");
    let opts = BuildOptions {
        named_contexts: [
            ("base", "sha256:1111"),
            ("extra", "nope"),
            ("ctx", "registry.local/ctx:1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Default::default()
    };
    let g = BuildGraph::new(&df, &opts).expect("graph");
    assert_eq!(g.stages[0].base, Base::Image("sha256:1111".into()));
    let last = g.stages.last().unwrap();
    assert_eq!(last.steps[0].copy_from, Some(Ref::Stage(1)));
    assert_eq!(
        last.steps[1].copy_from,
        Some(Ref::Image("registry.local/ctx:1".into()))
    );
    assert_eq!(
        last.steps[2].mount_from,
        [Some(Ref::Image("registry.local/ctx:1".into()))]
    );
}
