//! Errors: the right Dockerfile line, typed causes, user vs internal.

use crate::support::{Env, error_line};

#[test]
fn parse_error_names_its_line() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nRUN true\nBOGUS x\n");
    assert!(err.is_user_error());
    assert_eq!(error_line(&err), Some(3), "{}", err.to_string_chain());
}

#[test]
fn parse_error_has_a_snippet() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nBOGUS x\n");
    assert!(err.to_string().contains("BOGUS"), "{err}");
}

#[test]
fn unknown_target_is_a_user_error() {
    let e = Env::new();
    let mut r = e.req("FROM scratch AS a\nRUN true\n");
    r.target = Some("nope".into());
    let err = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .err()
        .unwrap();
    assert!(err.is_user_error());
    assert!(err.to_string_chain().contains("nope"));
}

#[test]
fn missing_base_image_names_it_and_the_from_line() {
    let e = Env::new();
    let err = e.build_err("# c\nFROM nothere:1\nRUN true\n");
    let chain = err.to_string_chain();
    assert!(chain.contains("nothere"), "{chain}");
    assert_eq!(error_line(&err), Some(2));
    assert!(err.is_user_error());
}

#[test]
fn unknown_stage_in_copy_from_is_a_parse_error() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nCOPY --from=ghost /a /a\n");
    assert!(err.is_user_error());
}

#[test]
fn bad_platform_is_a_user_error() {
    let e = Env::new();
    let mut r = e.req("FROM scratch\n");
    r.platform = Some("not a platform".into());
    let err = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .err()
        .unwrap();
    assert!(err.is_user_error());
}

#[test]
fn run_for_a_foreign_platform_runs_through_the_executor() {
    // The fake needs no emulator (platforms.rs has the missing-emulator error).
    let e = Env::new();
    let mut r = e.req("FROM scratch\nCOPY . /\nRUN write /ran 1\n");
    r.platform = Some(
        if cfg!(target_arch = "s390x") {
            "linux/amd64"
        } else {
            "linux/s390x"
        }
        .into(),
    );
    let b = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .unwrap();
    assert_eq!(b.read("/ran").as_deref(), Some("1"));
}

#[test]
fn error_in_a_second_stage_names_its_line() {
    let e = Env::new();
    let err = e.build_err("FROM scratch AS a\nRUN true\nFROM a\nRUN true\nRUN exit 7\n");
    assert_eq!(error_line(&err), Some(5));
}

#[test]
fn store_failure_is_internal() {
    let e = Env::new();
    // The cache index can't be made: a file where its dir goes.
    let cache = e.store.cache_dir().join("build");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(&cache).ok();
    std::fs::write(&cache, "not a dir").unwrap();
    let err = e.build_err("FROM scratch\nRUN true\n");
    assert!(!err.is_user_error(), "{}", err.to_string_chain());
}

#[test]
fn chain_includes_the_cause() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nCOPY missing /m\n");
    let chain = err.to_string_chain();
    assert!(
        chain.contains("Dockerfile:2") && chain.contains("missing"),
        "{chain}"
    );
}

#[test]
fn missing_secret_file_is_a_user_error() {
    let e = Env::new();
    let mut r = e.req("FROM scratch\nRUN --mount=type=secret,id=s true\n");
    r.secrets.insert(
        "s".into(),
        lamina_builder::engine::SecretSource::File(e.dir.path().join("no-such-file")),
    );
    let err = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .err()
        .unwrap();
    assert!(err.is_user_error());
    assert_eq!(error_line(&err), Some(2));
}

#[test]
fn bad_tmpfs_size_is_rejected_by_the_front_end() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nRUN --mount=type=tmpfs,target=/t,size=lots true\n");
    assert!(err.is_user_error());
    assert_eq!(error_line(&err), Some(2));
}
