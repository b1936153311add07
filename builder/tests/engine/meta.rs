//! Metadata steps: the image config the build writes.

use crate::support::Env;

#[test]
fn env_is_in_the_config() {
    let b = Env::new().build("FROM scratch\nENV A=1\nENV B=$A-2\n");
    assert_eq!(b.env("A").as_deref(), Some("1"));
    assert_eq!(b.env("B").as_deref(), Some("1-2"));
}

#[test]
fn workdir_is_in_the_config_and_made() {
    let e = Env::new();
    let b = e.build("FROM scratch\nWORKDIR /a\nWORKDIR b\n");
    assert_eq!(b.config().working_dir.as_deref(), Some("/a/b"));
    assert!(b.path("/a/b").is_dir());
}

#[test]
fn cmd_and_entrypoint() {
    let b = Env::new().build("FROM scratch\nENTRYPOINT [\"/bin/app\"]\nCMD [\"--help\"]\n");
    assert_eq!(b.config().entrypoint, Some(vec!["/bin/app".to_string()]));
    assert_eq!(b.config().cmd, Some(vec!["--help".to_string()]));
}

#[test]
fn label_and_request_labels() {
    let e = Env::new();
    let mut r = e.req("FROM scratch\nLABEL a=1\n");
    r.labels.insert("b".into(), "2".into());
    let b = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .unwrap();
    assert_eq!(b.config().labels.get("a").map(String::as_str), Some("1"));
    assert_eq!(b.config().labels.get("b").map(String::as_str), Some("2"));
}

#[test]
fn user_is_in_the_config() {
    let b = Env::new().build("FROM scratch\nUSER 1000\n");
    assert_eq!(b.config().user.as_deref(), Some("1000"));
}

#[test]
fn expose_is_in_the_config() {
    let b = Env::new().build("FROM scratch\nEXPOSE 8080/tcp\n");
    assert!(b.config().exposed_ports.contains_key("8080/tcp"));
}

#[test]
fn stage_base_passes_its_config_on() {
    let e = Env::new();
    let b = e.build("FROM scratch AS a\nENV X=from-a\nFROM a\nRUN env\n");
    assert_eq!(b.env("X").as_deref(), Some("from-a"));
    assert!(b.logs().contains(&"X=from-a".to_string()));
}

#[test]
fn image_base_env_expands_in_the_child() {
    let e = Env::new();
    e.base("envbase:1", "FROM scratch\nENV BASEDIR=/opt/base\n");
    let b = e.build("FROM envbase:1\nWORKDIR $BASEDIR/sub\n");
    assert_eq!(b.config().working_dir.as_deref(), Some("/opt/base/sub"));
}

#[test]
fn image_base_layers_come_first() {
    let e = Env::new();
    e.file("a", "base");
    e.base("layered:1", "FROM scratch\nCOPY a /a\n");
    let b = e.build("FROM layered:1\nRUN write /b child\n");
    assert_eq!(b.layers(), 2);
    assert_eq!(b.read("/a").as_deref(), Some("base"));
    assert_eq!(b.read("/b").as_deref(), Some("child"));
}

#[test]
fn source_date_epoch_sets_created() {
    let b = Env::new().build("FROM scratch\nRUN write /a 1\n");
    assert_eq!(
        b.outcome.image.config.created.as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
}

#[test]
fn squash_merges_the_new_layers() {
    let e = Env::new();
    let mut r = e.req("FROM scratch\nRUN write /a 1\nRUN write /b 2\nRUN write /c 3\n");
    r.squash = true;
    let b = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .unwrap();
    assert_eq!(b.layers(), 1);
    assert_eq!(b.ls("/"), vec!["a", "b", "c"]);
}

#[test]
fn history_has_one_entry_per_instruction() {
    let b = Env::new().build("FROM scratch\nENV A=1\nRUN write /a 1\nCMD [\"x\"]\n");
    let h = &b.outcome.image.config.history;
    assert_eq!(h.len(), 3);
    assert_eq!(h.iter().filter(|h| !h.empty_layer).count(), 1);
}

#[test]
fn diff_ids_match_the_layers() {
    let b = Env::new().build("FROM scratch\nRUN write /a 1\nRUN write /b 1\n");
    let img = &b.outcome.image;
    let ids: Vec<_> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(img.config.rootfs.diff_ids, ids);
}

#[test]
fn platform_of_scratch_is_the_target() {
    let e = Env::new();
    let mut r = e.req("FROM scratch\n");
    r.platform = Some("linux/arm64".into());
    let b = e
        .run(&r, &lamina_builder::engine::exec::fake::FakeExecutor::new())
        .unwrap();
    assert_eq!(b.outcome.image.config.architecture, "arm64");
    assert_eq!(b.outcome.image.config.os, "linux");
}

#[test]
fn arg_in_from_line_selects_the_base() {
    let e = Env::new();
    e.file("a", "v2");
    e.base("argbase:2", "FROM scratch\nCOPY a /a\n");
    let b = e.build("ARG V=2\nFROM argbase:$V\n");
    assert_eq!(b.read("/a").as_deref(), Some("v2"));
}
