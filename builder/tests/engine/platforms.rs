//! Multi-platform builds through the engine: one solve for every `--platform` target, shared
//! `$BUILDPLATFORM` stages once, the platform ARGs as BuildKit sets them, an index of the results, cache
//! keys apart per platform, and the missing-emulator error at the RUN's line.

use std::io::Write;

use lamina_builder::dockerfile::graph::Platform;
use lamina_builder::engine::exec::binfmt::EmulatorError;
use lamina_builder::engine::exec::fake::{Call, FakeExecutor};
use lamina_builder::engine::exec::{ExecError, ExecRequest, ExecStatus, Executor};
use lamina_builder::engine::{BuildError, build_with};
use lamina_store::image::Parsed;

use crate::support::{Env, Recorder};

fn calls_with<'a>(calls: &'a [Call], needle: &str) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.argv.join(" ").contains(needle))
        .collect()
}

fn env_of(c: &Call, k: &str) -> Option<String> {
    c.env
        .iter()
        .find_map(|e| e.strip_prefix(&format!("{k}=")).map(str::to_owned))
}

/// A target platform that is not the host's.
fn foreign() -> &'static str {
    if Platform::host().architecture == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    }
}

#[test]
fn every_target_builds_and_a_shared_build_platform_stage_runs_once() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let host = Platform::host().to_string();
    let df = "FROM --platform=$BUILDPLATFORM scratch AS tools\nRUN write /tool built\n\
              FROM scratch\nARG TARGETARCH\nCOPY --from=tools /tool /tool\nRUN write /target x\n";
    let mut req = e.req(df);
    req.platform = Some(format!("{host},{}", foreign()));
    let rec = Recorder::default();
    let out = build_with(&e.store, &req, &rec, &f).unwrap_or_else(|e| panic!("{}", e.to_string_chain()));
    let calls = f.calls();
    assert_eq!(calls_with(&calls, "write /tool").len(), 1, "tools runs once");
    let targets = calls_with(&calls, "write /target");
    let mut archs: Vec<String> = targets.iter().filter_map(|c| env_of(c, "TARGETARCH")).collect();
    archs.sort();
    let mut want = vec![
        Platform::host().architecture,
        Platform::parse(foreign()).unwrap().architecture,
    ];
    want.sort();
    assert_eq!(archs, want);

    // One image per target, in --platform order, each with its platform; an index of both.
    assert_eq!(out.images.len(), 2);
    assert_eq!(out.images[0].config.platform().to_string(), host);
    assert_eq!(out.images[1].config.platform().to_string(), foreign());
    assert_eq!(
        out.image.manifest_digest, out.images[0].manifest_digest,
        "the host's image"
    );
    let index = out.index.expect("an index for two targets");
    let Parsed::Index(idx) = e.store.read_manifest(&index.digest, None).unwrap() else {
        panic!("not an index");
    };
    let listed: Vec<(String, String)> = idx
        .manifests
        .iter()
        .map(|d| (d.digest.to_string(), d.platform.as_ref().unwrap().to_string()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (out.images[0].manifest_digest.to_string(), host.clone()),
            (out.images[1].manifest_digest.to_string(), foreign().to_string()),
        ]
    );
    // And the store resolves the index to each platform's image.
    let arm = e
        .store
        .load_image_for(&index.digest, &Platform::parse(foreign()).unwrap())
        .unwrap();
    assert_eq!(arm.manifest_digest, out.images[1].manifest_digest);
}

#[test]
fn targets_build_in_parallel() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        lamina_testkit::skip("needs two cores for two platforms at once");
        return;
    }
    let e = Env::new();
    let f = FakeExecutor::new();
    let mut req = e.req("FROM scratch\nRUN sleep 300; write /t 1\n");
    req.platform = Some(format!("{},{}", Platform::host(), foreign()));
    let rec = Recorder::default();
    build_with(&e.store, &req, &rec, &f).unwrap();
    let c = f.calls();
    assert_eq!(c.len(), 2);
    assert!(
        c[0].started < c[1].ended && c[1].started < c[0].ended,
        "the two platforms' RUNs overlap"
    );
}

#[test]
fn a_build_platform_stage_that_reads_a_target_arg_runs_per_target() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM --platform=$BUILDPLATFORM scratch AS tools\nARG TARGETARCH\nRUN write /tool x\n\
              FROM scratch\nCOPY --from=tools /tool /tool\n";
    let mut req = e.req(df);
    req.platform = Some(format!("{},{}", Platform::host(), foreign()));
    let rec = Recorder::default();
    build_with(&e.store, &req, &rec, &f).unwrap();
    let calls = f.calls();
    let tools = calls_with(&calls, "write /tool");
    assert_eq!(tools.len(), 2, "cross-compiling stages run once per target");
    let mut archs: Vec<Option<String>> = tools.iter().map(|c| env_of(c, "TARGETARCH")).collect();
    archs.sort();
    archs.dedup();
    assert_eq!(archs.len(), 2, "each run sees its own TARGETARCH: {archs:?}");
}

#[test]
fn platform_args_as_buildkit_sets_them() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch\nARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG TARGETVARIANT\n\
              ARG BUILDPLATFORM\nARG BUILDOS\nARG BUILDARCH\nRUN write /x 1\n";
    let mut req = e.req(df);
    // `arm` normalises to arm/v7 in the one platform model.
    req.platform = Some("linux/arm".into());
    let b = e.run(&req, &f).unwrap();
    let c = f.calls();
    let c = &calls_with(&c, "write /x")[0];
    let host = Platform::host();
    assert_eq!(env_of(c, "TARGETPLATFORM").as_deref(), Some("linux/arm/v7"));
    assert_eq!(env_of(c, "TARGETOS").as_deref(), Some("linux"));
    assert_eq!(env_of(c, "TARGETARCH").as_deref(), Some("arm"));
    assert_eq!(env_of(c, "TARGETVARIANT").as_deref(), Some("v7"));
    assert_eq!(env_of(c, "BUILDPLATFORM"), Some(host.to_string()));
    assert_eq!(env_of(c, "BUILDOS").as_deref(), Some("linux"));
    assert_eq!(env_of(c, "BUILDARCH"), Some(host.architecture.clone()));
    assert!(b.outcome.index.is_none(), "one target: an image, no index");
    assert_eq!(b.outcome.image.config.architecture, "arm");
}

#[test]
fn cache_keys_differ_per_platform() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let df = "FROM scratch\nRUN write /x 1\n";
    let mut req = e.req(df);
    req.platform = Some(foreign().into());
    assert_eq!(e.run(&req, &f).unwrap().outcome.executed, 1);
    assert_eq!(e.run(&req, &f).unwrap().outcome.cached, 1, "same platform: a hit");
    req.platform = None;
    let host = e.run(&req, &f).unwrap();
    assert_eq!(host.outcome.executed, 1, "another platform: not the same step");
    req.platform = Some(format!("{},{}", Platform::host(), foreign()));
    let both = e.run(&req, &f).unwrap();
    assert_eq!((both.outcome.executed, both.outcome.cached), (0, 2));
}

/// The fake, with no emulator for any foreign platform.
struct NoEmulator(FakeExecutor);

impl Executor for NoEmulator {
    fn run(&self, req: &ExecRequest, output: &mut (dyn Write + Send)) -> Result<ExecStatus, ExecError> {
        self.0.run(req, output)
    }
    fn can_run(&self, p: &Platform) -> Result<(), EmulatorError> {
        Err(EmulatorError::NoHandler {
            arch: p.architecture.clone(),
            dir: "/proc/sys/fs/binfmt_misc".into(),
        })
    }
}

#[test]
fn a_missing_emulator_fails_at_the_run_line_before_anything_runs() {
    let e = Env::new();
    e.file("a", "a");
    let exec = NoEmulator(FakeExecutor::new());
    let df = "FROM scratch AS native\nRUN write /n 1\nFROM scratch\nCOPY a /a\nRUN write /x 1\n";
    let mut req = e.req(df);
    req.platform = Some(foreign().into());
    let rec = Recorder::default();
    let err = match build_with(&e.store, &req, &rec, &exec) {
        Ok(_) => panic!("built without an emulator"),
        Err(err) => err,
    };
    // Line 5, the target's RUN: the `native` stage is not needed, so its RUN (line 2) doesn't count.
    assert!(matches!(err, BuildError::Emulation { line: 5, .. }), "{err:?}");
    assert!(
        err.is_user_error(),
        "the machine lacks a tool the user can install"
    );
    let chain = err.to_string_chain();
    assert!(chain.contains("apt-get install qemu-user-static"), "{chain}");
    assert!(exec.0.calls().is_empty(), "nothing ran");
    // Without RUN a foreign stage needs no emulator.
    let df = "FROM scratch\nCOPY a /a\n";
    build_with(&e.store, &e.req(df), &rec, &exec).unwrap();
}
