//! RUN steps through the fake executor: layers, env, user, cwd, mounts.

use lamina_builder::engine::SecretSource;
use lamina_builder::engine::exec::ExecMount;
use lamina_builder::engine::exec::fake::FakeExecutor;

use crate::support::{Env, error_line};

fn calls_of(e: &Env, df: &str) -> Vec<lamina_builder::engine::exec::fake::Call> {
    let f = FakeExecutor::new();
    e.run(&e.req(df), &f).unwrap();
    f.calls()
}

#[test]
fn run_writes_a_layer() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /etc/app.conf on\n");
    assert_eq!(b.read("/etc/app.conf").as_deref(), Some("on"));
    assert_eq!(b.layers(), 1);
}

#[test]
fn later_run_sees_earlier_layers() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /a hi\nRUN cat /a\n");
    assert_eq!(b.logs(), vec!["hi"]);
}

#[test]
fn append_copies_up_and_extends() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /a x\nRUN append /a y\n");
    assert_eq!(b.read("/a").as_deref(), Some("xy"));
}

#[test]
fn shell_form_goes_through_the_default_shell() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN write /a 1\n");
    assert_eq!(c[0].argv, vec!["/bin/sh", "-c", "write /a 1"]);
}

#[test]
fn exec_form_is_passed_as_is() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN [\"write\", \"/a\", \"1\"]\n");
    assert_eq!(c[0].argv, vec!["write", "/a", "1"]);
}

#[test]
fn shell_instruction_changes_the_argv() {
    let e = Env::new();
    let c = calls_of(
        &e,
        "FROM scratch\nSHELL [\"/bin/bash\", \"-c\"]\nRUN write /a 1\n",
    );
    assert_eq!(c[0].argv, vec!["/bin/bash", "-c", "write /a 1"]);
}

#[test]
fn heredoc_run_body_is_the_script() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN <<EOF\nwrite /a 1\nwrite /b 2\nEOF\n");
    assert_eq!(c[0].argv[2].trim_end(), "write /a 1\nwrite /b 2");
}

#[test]
fn env_reaches_the_process() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nENV A=1 B=two\nRUN env\n");
    assert!(c[0].env.contains(&"A=1".to_string()));
    assert!(c[0].env.contains(&"B=two".to_string()));
}

#[test]
fn default_path_is_set() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN env\n");
    assert!(
        c[0].env.iter().any(|v| v.starts_with("PATH=/usr/local/sbin")),
        "{:?}",
        c[0].env
    );
}

#[test]
fn arg_values_reach_run_env() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let mut r = e.req("FROM scratch\nARG X=default\nRUN env\n");
    r.build_args.insert("X".into(), "given".into());
    e.run(&r, &f).unwrap();
    assert!(f.calls()[0].env.contains(&"X=given".to_string()));
}

#[test]
fn arg_default_is_used_without_build_arg() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nARG X=default\nRUN env\n");
    assert!(c[0].env.contains(&"X=default".to_string()));
}

#[test]
fn proxy_args_come_in_both_spellings() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let mut r = e.req("FROM scratch\nRUN env\n");
    r.build_args.insert("HTTP_PROXY".into(), "http://p:3128".into());
    e.run(&r, &f).unwrap();
    let env = &f.calls()[0].env;
    assert!(env.contains(&"HTTP_PROXY=http://p:3128".to_string()));
    assert!(env.contains(&"http_proxy=http://p:3128".to_string()), "{env:?}");
}

#[test]
fn workdir_is_the_cwd() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nWORKDIR /srv/app\nRUN pwd\n");
    assert_eq!(c[0].cwd, "/srv/app");
}

#[test]
fn relative_paths_in_run_are_under_workdir() {
    let e = Env::new();
    let b = e.build("FROM scratch\nWORKDIR /w\nRUN write f 1\n");
    assert_eq!(b.read("/w/f").as_deref(), Some("1"));
}

#[test]
fn default_cwd_is_root() {
    let e = Env::new();
    assert_eq!(calls_of(&e, "FROM scratch\nRUN pwd\n")[0].cwd, "/");
}

#[test]
fn user_is_passed_to_the_executor() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nUSER 1000:1000\nRUN true\n");
    assert_eq!(c[0].user.as_deref(), Some("1000:1000"));
}

#[test]
fn no_user_means_none() {
    let e = Env::new();
    assert_eq!(calls_of(&e, "FROM scratch\nRUN true\n")[0].user, None);
}

#[test]
fn network_none_flag() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN --network=none true\n");
    assert_eq!(c[0].network, lamina_builder::engine::exec::Network::None);
}

#[test]
fn network_default_is_the_request_s() {
    let e = Env::new();
    let f = FakeExecutor::new();
    let mut r = e.req("FROM scratch\nRUN true\n");
    r.network = lamina_builder::engine::exec::Network::None;
    e.run(&r, &f).unwrap();
    assert_eq!(f.calls()[0].network, lamina_builder::engine::exec::Network::None);
}

#[test]
fn tmpfs_size_in_megabytes_is_typed() {
    let e = Env::new();
    let c = calls_of(
        &e,
        "FROM scratch\nRUN --mount=type=tmpfs,target=/t,size=64mb true\n",
    );
    assert_eq!(
        c[0].mounts,
        vec![ExecMount::Tmpfs {
            target: "/t".into(),
            size: 64 << 20
        }]
    );
}

#[test]
fn tmpfs_fractional_size_is_not_unlimited() {
    let e = Env::new();
    let c = calls_of(
        &e,
        "FROM scratch\nRUN --mount=type=tmpfs,target=/t,size=1.5g true\n",
    );
    assert!(matches!(c[0].mounts[0], ExecMount::Tmpfs { size, .. } if size == 3 << 29));
}

#[test]
fn tmpfs_without_size_is_kernel_default() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN --mount=type=tmpfs,target=/t true\n");
    assert!(matches!(c[0].mounts[0], ExecMount::Tmpfs { size: 0, .. }));
}

#[test]
fn tmpfs_target_is_kept() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN --mount=type=tmpfs,target=/t true\n");
    assert_eq!(c[0].mounts[0].target(), "/t");
}

#[test]
fn relative_mount_target_is_under_workdir() {
    let e = Env::new();
    let c = calls_of(
        &e,
        "FROM scratch\nWORKDIR /w\nRUN --mount=type=tmpfs,target=t true\n",
    );
    assert_eq!(c[0].mounts[0].target(), "/w/t");
}

#[test]
fn mount_point_dirs_left_empty_are_removed_from_the_layer() {
    // BuildKit >= 0.11: the stub for the target and its missing parents go when the step left them empty.
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN --mount=type=tmpfs,target=/mnt/t true\n");
    assert!(!b.path("/mnt").exists(), "the stub /mnt/t and its parent stay");
    // A parent the step wrote into stays (only the empty target goes).
    let b = e.build("FROM scratch\nRUN --mount=type=tmpfs,target=/mnt/t mkdir /mnt/kept\n");
    assert!(b.path("/mnt/kept").is_dir());
    assert!(!b.path("/mnt/t").exists());
}

#[test]
fn cache_mount_persists_across_builds() {
    let e = Env::new();
    e.build("FROM scratch\nRUN --mount=type=cache,target=/c write /c/f kept\n");
    let b = e.build("FROM scratch\nRUN --mount=type=cache,target=/c cat /c/f\n");
    assert_eq!(b.logs(), vec!["kept"]);
    assert!(!b.exists("/c/f"), "cache content is not in the layer");
}

#[test]
fn cache_mount_ids_separate_caches() {
    let e = Env::new();
    e.build("FROM scratch\nRUN --mount=type=cache,id=one,target=/c write /c/f 1\n");
    let err = e.build_err("FROM scratch\nRUN --mount=type=cache,id=two,target=/c cat /c/f\n");
    assert!(
        err.to_string_chain().contains("exited with code 1"),
        "{}",
        err.to_string_chain()
    );
}

#[test]
fn cache_mount_same_id_other_target_shares() {
    let e = Env::new();
    e.build("FROM scratch\nRUN --mount=type=cache,id=x,target=/a write /a/f shared\n");
    let b = e.build("FROM scratch\nRUN --mount=type=cache,id=x,target=/b cat /b/f\n");
    assert_eq!(b.logs(), vec!["shared"]);
}

#[test]
fn cache_mount_dir_is_in_the_store() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN --mount=type=cache,target=/c true\n");
    let ExecMount::Cache { dir, .. } = &c[0].mounts[0] else {
        panic!("{:?}", c[0].mounts)
    };
    assert!(dir.starts_with(e.store.root()), "{dir:?}");
}

#[test]
fn cache_mount_locked_sharing_runs() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN --mount=type=cache,target=/c,sharing=locked write /c/x 1; echo ok\n");
    assert_eq!(b.logs(), vec!["ok"]);
}

#[test]
fn secret_file_is_mounted_and_not_in_the_layer() {
    let e = Env::new();
    let s = e.dir.path().join("token");
    std::fs::write(&s, "s3cret").unwrap();
    let mut r = e.req("FROM scratch\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n");
    r.secrets.insert("tok".into(), SecretSource::File(s));
    let b = e.run(&r, &FakeExecutor::new()).unwrap();
    assert_eq!(b.logs(), vec!["s3cret"]);
    assert!(!b.exists("/run/secrets/tok"));
}

#[test]
fn secret_as_env() {
    let e = Env::new();
    let s = e.dir.path().join("token");
    std::fs::write(&s, "v").unwrap();
    let f = FakeExecutor::new();
    let mut r = e.req("FROM scratch\nRUN --mount=type=secret,id=tok,env=TOKEN env\n");
    r.secrets.insert("tok".into(), SecretSource::File(s));
    e.run(&r, &f).unwrap();
    assert!(f.calls()[0].env.contains(&"TOKEN=v".to_string()));
    assert!(f.calls()[0].mounts.is_empty());
}

#[test]
fn missing_optional_secret_is_skipped() {
    let e = Env::new();
    let c = calls_of(&e, "FROM scratch\nRUN --mount=type=secret,id=nope true\n");
    assert!(c[0].mounts.is_empty());
}

#[test]
fn missing_required_secret_is_a_user_error_at_its_line() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nRUN true\nRUN --mount=type=secret,id=nope,required=true true\n");
    assert!(err.is_user_error());
    assert_eq!(error_line(&err), Some(3));
}

#[test]
fn ssh_mount_sets_the_agent_socket() {
    let e = Env::new();
    let sock = e.dir.path().join("agent.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let f = FakeExecutor::new();
    let mut r = e.req("FROM scratch\nRUN --mount=type=ssh true\n");
    r.ssh.insert("default".into(), sock.clone());
    e.run(&r, &f).unwrap();
    let c = &f.calls()[0];
    assert!(
        c.env
            .contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string())
    );
    assert_eq!(
        c.mounts,
        vec![ExecMount::Ssh {
            socket: sock,
            target: "/run/buildkit/ssh_agent.0".into()
        }]
    );
}

#[test]
fn bind_mount_of_the_context_is_a_private_copy() {
    let e = Env::new();
    e.file("src/a", "ctx");
    let f = FakeExecutor::new();
    let b = e
        .run(
            &e.req("FROM scratch\nRUN --mount=type=bind,source=src,target=/s cat /s/a\n"),
            &f,
        )
        .unwrap();
    assert_eq!(b.logs(), vec!["ctx"]);
    let ExecMount::Bind { source, readonly, .. } = &f.calls()[0].mounts[0] else {
        panic!()
    };
    assert!(*readonly);
    assert!(
        !source.starts_with(&e.ctx),
        "never the context itself: {source:?}"
    );
}

#[test]
fn bind_mount_honours_dockerignore() {
    let e = Env::new();
    e.file("a.log", "hidden").file(".dockerignore", "*.log\n");
    let err = e.build_err("FROM scratch\nRUN --mount=type=bind,target=/s cat /s/a.log\n");
    assert!(err.to_string_chain().contains("exited with code 1"));
}

#[test]
fn bind_mount_from_stage() {
    let e = Env::new();
    let b = e.build("FROM scratch AS a\nRUN write /o/f st\nFROM scratch\nRUN --mount=type=bind,from=a,source=/o,target=/m cat /m/f\n");
    assert_eq!(b.logs(), vec!["st"]);
}

#[test]
fn bind_mount_rw_writes_are_discarded() {
    let e = Env::new();
    e.file("d/a", "1");
    let b = e.build("FROM scratch\nRUN --mount=type=bind,source=d,target=/m,rw write /m/new x\n");
    assert!(!b.exists("/m/new"));
    assert!(!e.ctx.join("d/new").exists());
}

#[test]
fn failing_run_is_a_user_error_with_code_line_and_output() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nRUN true\nRUN echo boom; exit 3\n");
    let chain = err.to_string_chain();
    assert!(err.is_user_error());
    assert_eq!(error_line(&err), Some(3));
    assert!(chain.contains("code 3") && chain.contains("boom"), "{chain}");
}

#[test]
fn unknown_fake_command_exits_127() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\nRUN frobnicate\n");
    assert!(err.to_string_chain().contains("127"));
}

#[test]
fn executor_failure_is_internal() {
    let e = Env::new();
    let f = FakeExecutor::with(|_| Err(std::io::Error::other("sandbox broke")));
    let err = e.run(&e.req("FROM scratch\nRUN true\n"), &f).err().unwrap();
    assert!(!err.is_user_error());
    assert_eq!(error_line(&err), Some(2));
    assert!(err.to_string_chain().contains("sandbox broke"));
}

#[test]
fn custom_handler_sees_the_lower_view() {
    let e = Env::new();
    e.build("FROM scratch\nRUN write /base 1\n");
    let f = FakeExecutor::with(|run| {
        let seen = run.view.read_file("/base").is_some();
        Ok(if seen { 0 } else { 9 })
    });
    e.run(&e.req("FROM scratch\nRUN write /base 1\nRUN check\n"), &f)
        .unwrap();
    assert_eq!(f.count(), 1, "first RUN was cached, the second saw its layer");
}

#[test]
fn output_lines_are_streamed_in_order() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN echo one; echo two; echo three\n");
    assert_eq!(b.logs(), vec!["one", "two", "three"]);
}

#[test]
fn run_history_names_the_command() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /a 1\n");
    let h = &b.outcome.image.config.history;
    assert!(
        h.iter()
            .any(|h| h.created_by.as_deref().unwrap_or("").contains("write /a 1")),
        "{h:?}"
    );
}

/// `--security=insecure` reaches the executor as a privileged request only with the entitlement; without
/// it the engine refuses the step itself (a base's ONBUILD RUN never passes the CLI's Dockerfile check).
#[test]
fn security_insecure_is_privileged_only_with_the_entitlement() {
    let e = Env::new();
    let df = "FROM scratch\nRUN write /a 1\nRUN --security=insecure write /b 2\n";
    let mut req = e.req(df);
    req.allow_insecure = true;
    let exec = FakeExecutor::new();
    e.run(&req, &exec).unwrap();
    let privileged: Vec<bool> = exec.calls().iter().map(|c| c.privileged).collect();
    assert_eq!(privileged, [false, true]);

    e.base(
        "insecure-ob:1",
        "FROM scratch\nONBUILD RUN --security=insecure write /t 1\n",
    );
    let exec = FakeExecutor::new();
    let err = match e.run(&e.req("FROM insecure-ob:1\n"), &exec) {
        Ok(_) => panic!("an ONBUILD RUN --security=insecure ran without the entitlement"),
        Err(err) => err,
    };
    let chain = err.to_string_chain();
    assert!(chain.contains("security.insecure entitlement"), "{chain}");
    assert_eq!(exec.count(), 0);
}
