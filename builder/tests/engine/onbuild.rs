//! ONBUILD triggers of an image base run in the child.

use lamina_builder::engine;
use lamina_store::Reference;

use crate::support::{Env, error_line};

#[test]
fn trigger_runs_in_the_child() {
    let e = Env::new();
    e.base("ob:1", "FROM scratch\nONBUILD RUN write /triggered yes\n");
    let b = e.build("FROM ob:1\nRUN write /own 1\n");
    assert_eq!(b.read("/triggered").as_deref(), Some("yes"));
    assert!(b.exists("/own"));
}

#[test]
fn trigger_does_not_run_in_the_base_itself() {
    let e = Env::new();
    let b = e.base("ob:2", "FROM scratch\nONBUILD RUN write /triggered yes\n");
    assert!(!b.exists("/triggered"));
    assert!(b.config().on_build.as_ref().is_some_and(|t| t.len() == 1));
}

#[test]
fn child_consumes_the_triggers() {
    let e = Env::new();
    e.base("ob:3", "FROM scratch\nONBUILD RUN write /t 1\n");
    let b = e.build("FROM ob:3\n");
    assert!(b.config().on_build.as_ref().is_none_or(|t| t.is_empty()));
}

#[test]
fn trigger_copy_uses_the_child_context() {
    let e = Env::new();
    e.base("ob:4", "FROM scratch\nONBUILD COPY app.txt /app/\n");
    e.file("app.txt", "child");
    let b = e.build("FROM ob:4\n");
    assert_eq!(b.read("/app/app.txt").as_deref(), Some("child"));
}

#[test]
fn triggers_run_before_the_child_steps() {
    let e = Env::new();
    e.base("ob:5", "FROM scratch\nONBUILD RUN write /order first\n");
    let b = e.build("FROM ob:5\nRUN append /order -second\n");
    assert_eq!(b.read("/order").as_deref(), Some("first-second"));
}

#[test]
fn trigger_env_applies_to_the_child() {
    let e = Env::new();
    e.base("ob:6", "FROM scratch\nONBUILD ENV FROM_TRIGGER=1\n");
    let b = e.build("FROM ob:6\n");
    assert_eq!(b.env("FROM_TRIGGER").as_deref(), Some("1"));
}

#[test]
fn failing_trigger_fails_the_build() {
    let e = Env::new();
    e.base("ob:7", "FROM scratch\nONBUILD RUN exit 9\n");
    let err = e.build_err("FROM ob:7\nRUN true\n");
    assert!(err.to_string_chain().contains("code 9"));
    assert!(err.is_user_error());
}

#[test]
fn grandchild_does_not_rerun_triggers() {
    let e = Env::new();
    e.base("ob:8", "FROM scratch\nONBUILD RUN append /count x\n");
    e.base("ob-child:8", "FROM ob:8\n");
    let b = e.build("FROM ob-child:8\n");
    assert_eq!(b.read("/count").as_deref(), Some("x"));
}

/// Tags `name` as a scratch image whose config holds `triggers` as written (a registry image may hold
/// triggers lamina's parser would refuse in a Dockerfile).
fn raw_base(e: &Env, name: &str, triggers: &[&str]) {
    let b = e.build("FROM scratch\n");
    let mut cfg = b.outcome.image.config.clone();
    cfg.config_mut().on_build = Some(triggers.iter().map(|t| t.to_string()).collect());
    let img = e.store.write_image(&cfg, &[]).unwrap();
    engine::tag_image(&e.store, &img, &[Reference::parse(name).unwrap()]).unwrap();
}

#[test]
fn later_error_names_its_own_line_after_triggers() {
    let e = Env::new();
    e.base(
        "ob:9",
        "FROM scratch\nONBUILD RUN write /a 1\nONBUILD RUN write /b 2\n",
    );
    // Splicing the two triggers into the text shifted this to line 5.
    let err = e.build_err("FROM ob:9\nRUN true\nRUN exit 3\n");
    assert_eq!(error_line(&err), Some(3), "{}", err.to_string_chain());
}

#[test]
fn failing_trigger_names_the_from_line_and_the_image() {
    let e = Env::new();
    e.base("ob:10", "FROM scratch\nONBUILD RUN exit 4\n");
    let err = e.build_err("# first\n\nFROM ob:10\nRUN true\n");
    let chain = err.to_string_chain();
    assert_eq!(error_line(&err), Some(3), "{chain}");
    assert!(
        chain.contains("ONBUILD trigger `RUN exit 4` of base image ob:10"),
        "{chain}"
    );
    assert!(chain.contains("code 4"), "{chain}");
}

#[test]
fn refused_triggers_name_the_image() {
    for (i, t) in ["ONBUILD RUN true", "FROM scratch", "MAINTAINER me"]
        .iter()
        .enumerate()
    {
        let e = Env::new();
        let name = format!("raw:{i}");
        raw_base(&e, &name, &[t]);
        let err = e.build_err(&format!("FROM {name}\n"));
        let chain = err.to_string_chain();
        assert!(chain.contains(&format!("base image {name}")), "{chain}");
        assert!(chain.contains(t), "{chain}");
        assert!(err.is_user_error());
    }
}

#[test]
fn bad_trigger_names_the_image_not_a_dockerfile_line_after_from() {
    let e = Env::new();
    raw_base(&e, "raw:bad", &["COPY --nope a /b"]);
    let err = e.build_err("FROM raw:bad\nRUN true\n");
    let chain = err.to_string_chain();
    assert_eq!(error_line(&err), Some(1), "{chain}");
    assert!(chain.contains("of base image raw:bad"), "{chain}");
}

#[test]
fn trigger_expands_with_the_base_env_and_sets_env_for_the_child() {
    let e = Env::new();
    e.base(
        "ob:11",
        "FROM scratch\nENV WHO=base\nONBUILD ENV GREETING=hi-$WHO\n",
    );
    let b = e.build("FROM ob:11\nENV BOTH=$GREETING-child\n");
    assert_eq!(b.env("GREETING").as_deref(), Some("hi-base"));
    assert_eq!(b.env("BOTH").as_deref(), Some("hi-base-child"));
}

#[test]
fn triggers_of_a_stage_base_do_not_run() {
    let e = Env::new();
    let b = e.build("FROM scratch AS parent\nONBUILD RUN write /t 1\nFROM parent\nRUN write /own 1\n");
    assert!(!b.exists("/t"));
    assert!(b.exists("/own"));
}

#[test]
fn triggers_hit_the_cache_on_a_second_build() {
    let e = Env::new();
    e.base("ob:12", "FROM scratch\nONBUILD RUN write /t 1\n");
    let df = "FROM ob:12\nRUN write /own 1\n";
    let first = e.build(df);
    assert_eq!(first.outcome.executed, 2);
    let second = e.build(df);
    assert_eq!((second.outcome.executed, second.outcome.cached), (0, 2));
    assert_eq!(
        second.outcome.image.config_digest,
        first.outcome.image.config_digest
    );
}
