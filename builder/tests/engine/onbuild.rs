//! ONBUILD triggers of an image base run in the child.

use crate::support::Env;

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
