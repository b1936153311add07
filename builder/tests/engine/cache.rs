//! Cache keys: what reruns a step, what doesn't, and hits across builds.

use lamina_builder::engine::exec::fake::FakeExecutor;

use crate::support::Env;

/// Builds `df` twice (changing the env with `change` in between); the second build's executor calls.
fn rerun_count(env: &Env, df1: &str, df2: &str, change: impl FnOnce(&Env)) -> usize {
    let f = FakeExecutor::new();
    env.run(&env.req(df1), &f).unwrap();
    assert!(f.count() > 0, "first build ran its RUN steps");
    change(env);
    let f = FakeExecutor::new();
    env.run(&env.req(df2), &f).unwrap();
    f.count()
}

#[test]
fn identical_rebuild_is_all_cached_and_runs_nothing() {
    let e = Env::new();
    let df = "FROM scratch\nRUN write /a 1\nRUN write /b 2\n";
    assert_eq!(rerun_count(&e, df, df, |_| {}), 0);
    let b = e.build(df);
    assert_eq!(b.outcome.executed, 0);
    assert_eq!(b.outcome.cached, 2);
    assert_eq!(b.read("/b").as_deref(), Some("2"));
}

#[test]
fn same_image_digest_on_a_cached_rebuild() {
    let e = Env::new();
    let df = "FROM scratch\nRUN write /a 1\n";
    let a = e.build(df);
    let b = e.build(df);
    assert_eq!(a.outcome.image.manifest_digest, b.outcome.image.manifest_digest);
}

#[test]
fn changed_run_command_reruns_it() {
    let e = Env::new();
    assert_eq!(
        rerun_count(
            &e,
            "FROM scratch\nRUN write /a 1\n",
            "FROM scratch\nRUN write /a 2\n",
            |_| {}
        ),
        1
    );
}

#[test]
fn change_invalidates_every_later_step() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a 1\nRUN write /b 1\nRUN write /c 1\n";
    let df2 = "FROM scratch\nRUN write /a 2\nRUN write /b 1\nRUN write /c 1\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 3);
}

#[test]
fn change_late_keeps_earlier_steps_cached() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a 1\nRUN write /b 1\nRUN write /c 1\n";
    let df2 = "FROM scratch\nRUN write /a 1\nRUN write /b 1\nRUN write /c 2\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn env_before_a_run_is_part_of_its_key() {
    let e = Env::new();
    let df1 = "FROM scratch\nENV X=1\nRUN write /a x\n";
    let df2 = "FROM scratch\nENV X=2\nRUN write /a x\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn env_after_a_run_does_not_rerun_it() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a x\nENV X=1\n";
    let df2 = "FROM scratch\nRUN write /a x\nENV X=2\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 0);
}

#[test]
fn label_before_a_run_changes_its_parent_key() {
    let e = Env::new();
    let df1 = "FROM scratch\nLABEL a=1\nRUN write /a x\n";
    let df2 = "FROM scratch\nLABEL a=2\nRUN write /a x\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn build_arg_value_used_by_run_changes_its_key() {
    let e = Env::new();
    let df = "FROM scratch\nARG V\nRUN write /a $V\n";
    let f = FakeExecutor::new();
    let mut r = e.req(df);
    r.build_args.insert("V".into(), "1".into());
    e.run(&r, &f).unwrap();
    r.build_args.insert("V".into(), "2".into());
    let f2 = FakeExecutor::new();
    e.run(&r, &f2).unwrap();
    assert_eq!(f2.count(), 1);
    assert!(f2.calls()[0].env.contains(&"V=2".to_string()));
}

#[test]
fn declared_arg_seen_by_run_env_changes_its_key() {
    let e = Env::new();
    let df = "FROM scratch\nARG V\nRUN env\n";
    let mut r = e.req(df);
    r.build_args.insert("V".into(), "1".into());
    e.run(&r, &FakeExecutor::new()).unwrap();
    r.build_args.insert("V".into(), "2".into());
    let f = FakeExecutor::new();
    let b = e.run(&r, &f).unwrap();
    assert_eq!(f.count(), 1);
    assert!(b.logs().contains(&"V=2".to_string()), "{:?}", b.logs());
}

#[test]
fn unused_build_arg_does_not_change_keys() {
    let e = Env::new();
    let df = "FROM scratch\nRUN write /a x\n";
    let mut r = e.req(df);
    e.run(&r, &FakeExecutor::new()).unwrap();
    r.build_args.insert("UNUSED".into(), "2".into());
    let f = FakeExecutor::new();
    e.run(&r, &f).unwrap();
    assert_eq!(f.count(), 0);
}

#[test]
fn copied_file_content_change_reruns_copy_and_later_steps() {
    let e = Env::new();
    e.file("a.txt", "one");
    let df = "FROM scratch\nCOPY a.txt /a\nRUN write /b x\n";
    let n = rerun_count(&e, df, df, |e| {
        e.file("a.txt", "two");
    });
    assert_eq!(n, 1);
    assert_eq!(e.build(df).read("/a").as_deref(), Some("two"));
}

#[test]
fn mtime_only_change_keeps_the_cache() {
    let e = Env::new();
    e.file("a.txt", "one");
    let df = "FROM scratch\nCOPY a.txt /a\nRUN write /b x\n";
    let n = rerun_count(&e, df, df, |e| {
        let p = e.ctx.join("a.txt");
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
    });
    assert_eq!(n, 0);
}

#[test]
fn unrelated_context_file_change_keeps_the_cache() {
    let e = Env::new();
    e.file("a.txt", "one").file("other.txt", "x");
    let df = "FROM scratch\nCOPY a.txt /a\nRUN write /b x\n";
    assert_eq!(
        rerun_count(&e, df, df, |e| {
            e.file("other.txt", "y");
        }),
        0
    );
}

#[test]
fn dockerignored_file_change_keeps_the_cache_of_copy_dot() {
    let e = Env::new();
    e.file("a.txt", "one")
        .file("ignored.log", "x")
        .file(".dockerignore", "*.log\n");
    let df = "FROM scratch\nCOPY . /app/\nRUN write /b x\n";
    assert_eq!(
        rerun_count(&e, df, df, |e| {
            e.file("ignored.log", "y");
        }),
        0
    );
}

#[test]
fn new_file_matched_by_copy_dot_reruns() {
    let e = Env::new();
    e.file("a.txt", "one");
    let df = "FROM scratch\nCOPY . /app/\nRUN write /b x\n";
    assert_eq!(
        rerun_count(&e, df, df, |e| {
            e.file("new.txt", "y");
        }),
        1
    );
}

#[test]
fn file_mode_change_reruns_copy() {
    let e = Env::new();
    e.file("a.sh", "echo");
    e.chmod("a.sh", 0o644);
    let df = "FROM scratch\nCOPY a.sh /a\nRUN write /b x\n";
    assert_eq!(rerun_count(&e, df, df, |e| e.chmod("a.sh", 0o755)), 1);
}

#[test]
fn glob_matching_a_new_file_reruns() {
    let e = Env::new();
    e.file("a.txt", "1");
    let df = "FROM scratch\nCOPY *.txt /d/\nRUN write /b x\n";
    assert_eq!(
        rerun_count(&e, df, df, |e| {
            e.file("b.txt", "2");
        }),
        1
    );
}

#[test]
fn no_cache_reruns_everything() {
    let e = Env::new();
    let df = "FROM scratch\nRUN write /a 1\nRUN write /b 1\n";
    e.build(df);
    let mut r = e.req(df);
    r.no_cache = true;
    let f = FakeExecutor::new();
    let b = e.run(&r, &f).unwrap();
    assert_eq!(f.count(), 2);
    assert_eq!(b.outcome.cached, 0);
}

#[test]
fn no_cache_filter_reruns_only_that_stage() {
    let e = Env::new();
    let df = "FROM scratch AS a\nRUN write /a 1\nFROM scratch\nCOPY --from=a /a /a\nRUN write /b 1\n";
    e.build(df);
    let mut r = e.req(df);
    r.no_cache_filter = vec!["a".into()];
    let f = FakeExecutor::new();
    e.run(&r, &f).unwrap();
    let calls = f.calls();
    assert_eq!(calls.len(), 1, "only stage a's RUN");
    assert!(calls[0].argv.join(" ").contains("write /a 1"));
}

#[test]
fn rerun_with_same_output_keeps_later_steps_keyed_by_instruction_chain() {
    // Keys chain on the parent key, not the layer content: a changed step reruns what follows.
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a 1\nRUN write /b 1\n";
    let df2 = "FROM scratch\nRUN write /a 1; true\nRUN write /b 1\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 2);
}

#[test]
fn mount_options_are_part_of_the_key() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN --mount=type=tmpfs,target=/t write /a 1\n";
    let df2 = "FROM scratch\nRUN --mount=type=tmpfs,target=/u write /a 1\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn network_option_is_part_of_the_key() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a 1\n";
    let df2 = "FROM scratch\nRUN --network=none write /a 1\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn platform_is_part_of_the_key() {
    let e = Env::new();
    let df = "FROM scratch\nCOPY a /a\n";
    e.file("a", "x");
    let a = e.build(df);
    let mut r = e.req(df);
    r.platform = Some("linux/s390x".into());
    let b = e.run(&r, &FakeExecutor::new()).unwrap();
    assert_eq!(b.outcome.image.config.architecture, "s390x");
    assert_ne!(a.outcome.image.config_digest, b.outcome.image.config_digest);
}

#[test]
fn copy_from_stage_rebuilds_when_that_stage_changes() {
    let e = Env::new();
    let df1 = "FROM scratch AS a\nRUN write /a 1\nFROM scratch\nCOPY --from=a /a /a\nRUN write /b x\n";
    let df2 = "FROM scratch AS a\nRUN write /a 2\nFROM scratch\nCOPY --from=a /a /a\nRUN write /b x\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 2);
}

#[test]
fn cache_survives_a_different_dockerfile_with_the_same_prefix() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a 1\n";
    let df2 = "FROM scratch\nRUN write /a 1\nRUN write /b 2\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn comments_and_blank_lines_do_not_change_keys() {
    let e = Env::new();
    let df1 = "FROM scratch\nRUN write /a 1\n";
    let df2 = "# a comment\nFROM scratch\n\n# another\nRUN write /a 1\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 0);
}

#[test]
fn workdir_before_run_is_part_of_its_key() {
    let e = Env::new();
    let df1 = "FROM scratch\nWORKDIR /x\nRUN write f 1\n";
    let df2 = "FROM scratch\nWORKDIR /y\nRUN write f 1\n";
    assert_eq!(rerun_count(&e, df1, df2, |_| {}), 1);
}

#[test]
fn cached_steps_count_as_cached() {
    let e = Env::new();
    let df = "FROM scratch\nRUN write /a 1\nRUN write /b 1\n";
    let a = e.build(df);
    assert_eq!((a.outcome.executed, a.outcome.cached), (2, 0));
    let b = e.build(df);
    assert_eq!((b.outcome.executed, b.outcome.cached), (0, 2));
}

#[test]
fn warm_rebuild_hashes_no_context_files() {
    let e = Env::new();
    e.file("a", "1").file("b", "2");
    let df = "FROM scratch\nCOPY . /c/\n";
    let a = e.build(df);
    assert!(a.outcome.context_files_hashed >= 2);
    let b = e.build(df);
    assert_eq!(b.outcome.context_files_hashed, 0);
}
