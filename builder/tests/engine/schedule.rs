//! Stage scheduling through the engine: parallel stages, waiting on dependencies, cancellation,
//! unused stages.

use std::time::Duration;

use lamina_builder::engine::exec::fake::{Call, FakeExecutor};

use crate::support::Env;

fn call<'a>(calls: &'a [Call], needle: &str) -> Option<&'a Call> {
    calls.iter().find(|c| c.argv.join(" ").contains(needle))
}

#[test]
fn independent_stages_overlap() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        lamina_testkit::skip("needs two cores for two stages at once");
        return;
    }
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS a\nRUN sleep 300; write /a 1\nFROM scratch AS b\nRUN sleep 300; write /b 1\n\
              FROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n";
    let b = e.run(&e.req(df), &f).unwrap();
    let c = f.calls();
    let (a, bb) = (call(&c, "write /a").unwrap(), call(&c, "write /b").unwrap());
    assert!(
        a.started < bb.ended && bb.started < a.ended,
        "a and b ran at the same time"
    );
    assert!(b.exists("/a") && b.exists("/b"));
}

#[test]
fn a_dependent_stage_waits() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS a\nRUN sleep 100; write /a 1\nFROM a\nRUN write /b 1\n";
    e.run(&e.req(df), &f).unwrap();
    let c = f.calls();
    assert!(call(&c, "write /b").unwrap().started >= call(&c, "write /a").unwrap().ended);
}

#[test]
fn copy_from_waits_for_the_stage() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS a\nRUN sleep 100; write /a 1\nFROM scratch\nRUN write /first 1\nCOPY --from=a /a /a\nRUN write /b 1\n";
    let b = e.run(&e.req(df), &f).unwrap();
    let c = f.calls();
    assert!(call(&c, "write /b").unwrap().started >= call(&c, "write /a").unwrap().ended);
    assert_eq!(b.read("/a").as_deref(), Some("1"));
}

#[test]
fn unused_stages_never_run() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS unused\nRUN write /u 1\nFROM scratch\nRUN write /t 1\n";
    e.run(&e.req(df), &f).unwrap();
    let c = f.calls();
    assert!(call(&c, "write /u").is_none());
    assert!(call(&c, "write /t").is_some());
}

#[test]
fn target_selects_a_stage_and_skips_later_ones() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let mut r = e.req("FROM scratch AS a\nRUN write /a 1\nFROM scratch AS b\nRUN write /b 1\n");
    r.target = Some("a".into());
    let b = e.run(&r, &f).unwrap();
    assert!(b.exists("/a") && !b.exists("/b"));
    assert_eq!(f.count(), 1);
}

#[test]
fn failure_cancels_stages_that_have_not_started() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS bad\nRUN exit 4\nFROM bad AS after\nRUN write /never 1\nFROM scratch\nCOPY --from=after /never /n\n";
    let err = e.run(&e.req(df), &f).err().unwrap();
    assert!(call(&f.calls(), "write /never").is_none());
    assert!(err.to_string_chain().contains("code 4"));
}

#[test]
fn first_failure_is_reported_not_a_later_one() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS fast\nRUN exit 5\nFROM scratch AS slow\nRUN sleep 300; exit 6\n\
              FROM scratch\nCOPY --from=fast /x /x\nCOPY --from=slow /y /y\n";
    let err = e.run(&e.req(df), &f).err().unwrap();
    let chain = err.to_string_chain();
    assert!(chain.contains("code 5") && !chain.contains("code 6"), "{chain}");
}

#[test]
fn failure_in_the_target_stops_its_later_steps() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let err = e
        .run(&e.req("FROM scratch\nRUN exit 2\nRUN write /after 1\n"), &f)
        .err()
        .unwrap();
    assert_eq!(f.count(), 1);
    assert!(err.is_user_error());
}

#[test]
fn a_slow_stage_does_not_block_an_unrelated_one() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS slow\nRUN sleep 200; write /s 1\nFROM scratch AS quick\nRUN write /q 1\n\
              FROM scratch\nCOPY --from=slow /s /s\nCOPY --from=quick /q /q\n";
    e.run(&e.req(df), &f).unwrap();
    let c = f.calls();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        assert!(call(&c, "write /q").unwrap().ended < call(&c, "write /s").unwrap().ended);
    }
}

#[test]
fn shared_base_stage_runs_once() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS base\nRUN write /base 1\nFROM base AS x\nRUN write /x 1\nFROM base AS y\nRUN write /y 1\n\
              FROM scratch\nCOPY --from=x /x /x\nCOPY --from=y /y /y\n";
    e.run(&e.req(df), &f).unwrap();
    let n = f
        .calls()
        .iter()
        .filter(|c| c.argv.join(" ").contains("write /base"))
        .count();
    assert_eq!(n, 1);
}

#[test]
fn many_stages_all_finish() {
    let e = Env::new();
    let mut df = String::new();
    for i in 0..6 {
        df.push_str(&format!("FROM scratch AS s{i}\nRUN sleep 10; write /f{i} {i}\n"));
    }
    df.push_str("FROM scratch\n");
    for i in 0..6 {
        df.push_str(&format!("COPY --from=s{i} /f{i} /f{i}\n"));
    }
    let b = e.build(&df);
    for i in 0..6 {
        assert_eq!(b.read(&format!("/f{i}")), Some(i.to_string()));
    }
}

#[test]
fn cached_stages_skip_the_executor_entirely() {
    let e = Env::new();
    let df = "FROM scratch AS a\nRUN write /a 1\nFROM scratch\nCOPY --from=a /a /a\n";
    e.build(df);
    let f = FakeExecutor::new();
    let b = e.run(&e.req(df), &f).unwrap();
    assert_eq!(f.count(), 0);
    assert_eq!(b.read("/a").as_deref(), Some("1"));
}

/// A stage the image doesn't contain writes its layer (and cache record) in the background; the build
/// waits for it before returning, or the process exits with the record unwritten and the next build runs
/// the stage again. Its layer is 8 MB of noise, so the write outlasts the rest of the build by far.
#[test]
fn layers_of_stages_outside_the_image_are_recorded_before_the_build_returns() {
    let e = Env::new();
    let df = "FROM scratch AS a\nRUN noise /big 8000000; write /small 1\nFROM scratch\nCOPY --from=a /small /small\n";
    e.build(df);
    let f = FakeExecutor::new();
    let b = e.run(&e.req(df), &f).unwrap();
    assert_eq!(
        f.count(),
        0,
        "stage a ran again: its cache record was not written"
    );
    assert_eq!(b.read("/small").as_deref(), Some("1"));
}

#[test]
fn slow_handler_time_is_measured() {
    let f = FakeExecutor::with(|_| {
        std::thread::sleep(Duration::from_millis(50));
        Ok(0)
    });
    let e = Env::new();
    e.run(&e.req("FROM scratch\nRUN x\n"), &f).unwrap();
    let c = &f.calls()[0];
    assert!(c.ended.duration_since(c.started) >= Duration::from_millis(50));
}

#[test]
fn identical_stages_under_two_names_are_solved_once() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS a\nRUN write /x 1\nFROM scratch AS b\n\nRUN write /x 1\n\
              FROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n";
    // Without the cache, so b can't just hit a's record: one node is the only way to run once.
    let mut r = e.req(df);
    r.no_cache = true;
    let b = e.run(&r, &f).unwrap();
    assert_eq!(f.count(), 1, "a and b are one node");
    assert_eq!(b.read("/a").as_deref(), Some("1"));
    assert_eq!(b.read("/b").as_deref(), Some("1"));
}

#[test]
fn stages_that_differ_are_solved_apart() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS a\nRUN write /x 1\nFROM scratch AS b\nRUN write /x 2\n\
              FROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n";
    let b = e.run(&e.req(df), &f).unwrap();
    assert_eq!(f.count(), 2);
    assert_eq!(b.read("/a").as_deref(), Some("1"));
    assert_eq!(b.read("/b").as_deref(), Some("2"));
}

#[test]
fn stages_reading_equal_stages_are_one_node_too() {
    let e = Env::new();
    let f = FakeExecutor::new();
    // d1 and d2 read different stages (a, b) that do the same work: the whole chain is solved once.
    let df = "FROM scratch AS a\nRUN write /x 1\nFROM scratch AS b\nRUN write /x 1\n\
              FROM scratch AS d1\nCOPY --from=a /x /x\nRUN write /y 2\n\
              FROM scratch AS d2\nCOPY --from=b /x /x\nRUN write /y 2\n\
              FROM scratch\nCOPY --from=d1 /y /1\nCOPY --from=d2 /y /2\n";
    let mut r = e.req(df);
    r.no_cache = true;
    let b = e.run(&r, &f).unwrap();
    assert_eq!(f.count(), 2, "one RUN of a/b, one of d1/d2");
    assert_eq!(b.read("/1").as_deref(), Some("2"));
    assert_eq!(b.read("/2").as_deref(), Some("2"));
}

#[test]
fn a_no_cache_filtered_stage_is_not_merged_with_its_cached_twin() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch AS a\nRUN write /x 1\nFROM scratch AS b\nRUN write /x 1\n\
              FROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n";
    e.run(&e.req(df), &f).unwrap();
    assert_eq!(f.count(), 1);
    // Warm: a is cached; b is filtered, so it runs again although a's twin is in the cache.
    let mut r = e.req(df);
    r.no_cache_filter = vec!["b".into()];
    e.run(&r, &f).unwrap();
    assert_eq!(f.count(), 2, "only b ran on the second build");
}
