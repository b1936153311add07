//! COPY/ADD semantics through the engine.

use crate::support::{Env, error_line};

fn env_with(files: &[(&str, &str)]) -> Env {
    let e = Env::new();
    for (p, c) in files {
        e.file(p, c);
    }
    e
}

#[test]
fn copy_file_to_path() {
    let e = env_with(&[("a.txt", "A")]);
    assert_eq!(
        e.build("FROM scratch\nCOPY a.txt /x/b.txt\n")
            .read("/x/b.txt")
            .as_deref(),
        Some("A")
    );
}

#[test]
fn copy_file_into_dir_with_trailing_slash() {
    let e = env_with(&[("a.txt", "A")]);
    assert_eq!(
        e.build("FROM scratch\nCOPY a.txt /d/\n")
            .read("/d/a.txt")
            .as_deref(),
        Some("A")
    );
}

#[test]
fn copy_file_without_trailing_slash_names_the_file() {
    let e = env_with(&[("a.txt", "A")]);
    let b = e.build("FROM scratch\nCOPY a.txt /d\n");
    assert_eq!(b.read("/d").as_deref(), Some("A"));
}

#[test]
fn copy_file_into_existing_dir_without_slash() {
    let e = env_with(&[("a.txt", "A")]);
    let b = e.build("FROM scratch\nRUN mkdir /d\nCOPY a.txt /d\n");
    assert_eq!(b.read("/d/a.txt").as_deref(), Some("A"));
}

#[test]
fn copy_dir_copies_its_contents() {
    let e = env_with(&[("src/a", "1"), ("src/sub/b", "2")]);
    let b = e.build("FROM scratch\nCOPY src /dst\n");
    assert_eq!(b.read("/dst/a").as_deref(), Some("1"));
    assert_eq!(b.read("/dst/sub/b").as_deref(), Some("2"));
    assert!(!b.exists("/dst/src"));
}

#[test]
fn copy_dot_copies_the_context() {
    let e = env_with(&[("a", "1"), ("d/b", "2")]);
    let b = e.build("FROM scratch\nCOPY . /app/\n");
    assert_eq!(b.ls("/app"), vec!["a", "d"]);
}

#[test]
fn copy_relative_dest_uses_workdir() {
    let e = env_with(&[("a", "1")]);
    let b = e.build("FROM scratch\nWORKDIR /w\nCOPY a rel/\n");
    assert_eq!(b.read("/w/rel/a").as_deref(), Some("1"));
}

#[test]
fn copy_glob_selects_matching_files() {
    let e = env_with(&[("a.txt", "1"), ("b.txt", "2"), ("c.md", "3")]);
    let b = e.build("FROM scratch\nCOPY *.txt /d/\n");
    assert_eq!(b.ls("/d"), vec!["a.txt", "b.txt"]);
}

#[test]
fn copy_question_mark_glob() {
    let e = env_with(&[("a1", "1"), ("a22", "2")]);
    let b = e.build("FROM scratch\nCOPY a? /d/\n");
    assert_eq!(b.ls("/d"), vec!["a1"]);
}

#[test]
fn copy_glob_in_a_subdir() {
    let e = env_with(&[("s/a.c", "1"), ("s/b.h", "2")]);
    let b = e.build("FROM scratch\nCOPY s/*.c /d/\n");
    assert_eq!(b.ls("/d"), vec!["a.c"]);
}

#[test]
fn copy_several_sources_into_dir() {
    let e = env_with(&[("a", "1"), ("b", "2")]);
    let b = e.build("FROM scratch\nCOPY a b /d/\n");
    assert_eq!(b.ls("/d"), vec!["a", "b"]);
}

#[test]
fn copy_several_sources_to_non_dir_fails_with_its_line() {
    let e = env_with(&[("a", "1"), ("b", "2")]);
    let err = e.build_err("FROM scratch\nCOPY a b /d\n");
    assert_eq!(error_line(&err), Some(2));
    assert!(err.is_user_error());
}

#[test]
fn copy_missing_source_fails_with_its_line() {
    let e = Env::new();
    let err = e.build_err("FROM scratch\n\nCOPY nope /x\n");
    assert_eq!(error_line(&err), Some(3), "{}", err.to_string_chain());
    assert!(err.to_string_chain().contains("nope"));
    assert!(err.is_user_error());
}

#[test]
fn copy_glob_matching_nothing_copies_nothing() {
    let e = env_with(&[("a", "1")]);
    let b = e.build("FROM scratch\nCOPY *.none /x/\n");
    assert!(b.ls("/x").is_empty());
    assert!(!b.exists("/a"));
}

#[test]
fn dockerignore_hides_files_from_copy_dot() {
    let e = env_with(&[("keep", "1"), ("drop.log", "2"), (".dockerignore", "*.log\n")]);
    let b = e.build("FROM scratch\nCOPY . /c/\n");
    assert!(b.exists("/c/keep"));
    assert!(!b.exists("/c/drop.log"));
}

#[test]
fn dockerignored_file_named_explicitly_is_not_found() {
    let e = env_with(&[("drop.log", "2"), (".dockerignore", "*.log\n")]);
    let err = e.build_err("FROM scratch\nCOPY drop.log /x\n");
    assert!(err.to_string_chain().contains("drop.log"));
}

#[test]
fn dockerignore_exception_reincludes() {
    let e = env_with(&[
        ("a.log", "1"),
        ("b.log", "2"),
        (".dockerignore", "*.log\n!b.log\n"),
    ]);
    let b = e.build("FROM scratch\nCOPY . /c/\n");
    assert!(!b.exists("/c/a.log"));
    assert!(b.exists("/c/b.log"));
}

#[test]
fn exclude_flag_skips_matches() {
    let e = env_with(&[("a.txt", "1"), ("b.md", "2")]);
    let b = e.build("FROM scratch\nCOPY --exclude=*.md . /c/\n");
    assert!(b.exists("/c/a.txt"));
    assert!(!b.exists("/c/b.md"));
}

#[test]
fn exclude_flag_with_double_star() {
    let e = env_with(&[("d/x/a.md", "1"), ("d/b.txt", "2")]);
    let b = e.build("FROM scratch\nCOPY --exclude=**/*.md d /c/\n");
    assert!(b.exists("/c/b.txt"));
    assert!(!b.exists("/c/x/a.md"));
}

#[test]
fn chmod_octal_sets_mode() {
    let e = env_with(&[("a", "1")]);
    let b = e.build("FROM scratch\nCOPY --chmod=741 a /a\n");
    assert_eq!(b.mode("/a"), 0o741);
}

#[test]
fn chmod_symbolic_sets_mode() {
    let e = env_with(&[("a", "1")]);
    e.chmod("a", 0o644);
    let b = e.build("FROM scratch\nCOPY --chmod=u+x a /a\n");
    assert_eq!(b.mode("/a"), 0o744);
}

#[test]
fn bad_chmod_is_a_user_error_at_its_line() {
    let e = env_with(&[("a", "1")]);
    let err = e.build_err("FROM scratch\nCOPY --chmod=9z a /a\n");
    assert!(err.is_user_error());
    assert_eq!(error_line(&err), Some(2));
}

#[test]
fn copy_keeps_the_source_mode() {
    let e = env_with(&[("run.sh", "#!")]);
    e.chmod("run.sh", 0o750);
    assert_eq!(e.build("FROM scratch\nCOPY run.sh /r\n").mode("/r"), 0o750);
}

#[test]
fn chown_numeric_sets_owner() {
    if !lamina_testkit::need_root("chown to another uid") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let e = env_with(&[("a", "1")]);
    let b = e.build("FROM scratch\nCOPY --chown=123:456 a /a\n");
    let m = std::fs::metadata(b.path("/a")).unwrap();
    assert_eq!((m.uid(), m.gid()), (123, 456));
}

#[test]
fn chown_by_name_uses_the_image_passwd() {
    if !lamina_testkit::need_root("chown to another uid") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let e = env_with(&[
        (
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\napp:x:1002:\n"),
        ("a", "1"),
    ]);
    let b = e.build("FROM scratch\nCOPY etc /etc\nCOPY --chown=app:app a /a\n");
    let m = std::fs::metadata(b.path("/a")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1001, 1002));
}

#[test]
fn chown_unknown_user_is_a_user_error() {
    let e = env_with(&[("a", "1")]);
    let err = e.build_err("FROM scratch\nCOPY --chown=nobody a /a\n");
    assert!(err.is_user_error());
    assert!(err.to_string_chain().contains("nobody"));
    assert_eq!(error_line(&err), Some(2));
}

#[test]
fn copy_from_stage() {
    let e = Env::new();
    let b = e.build("FROM scratch AS a\nRUN write /out/f built\nFROM scratch\nCOPY --from=a /out/f /f\n");
    assert_eq!(b.read("/f").as_deref(), Some("built"));
}

#[test]
fn copy_from_stage_by_index() {
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /f zero\nFROM scratch\nCOPY --from=0 /f /g\n");
    assert_eq!(b.read("/g").as_deref(), Some("zero"));
}

#[test]
fn copy_from_image_in_the_store() {
    let e = env_with(&[("f", "img")]);
    e.base("tools:1", "FROM scratch\nCOPY f /bin/f\n");
    let b = e.build("FROM scratch\nCOPY --from=tools:1 /bin/f /f\n");
    assert_eq!(b.read("/f").as_deref(), Some("img"));
}

#[test]
fn copy_from_stage_dir() {
    let e = Env::new();
    let b = e.build("FROM scratch AS a\nRUN write /o/a 1; write /o/b 2\nFROM scratch\nCOPY --from=a /o /p\n");
    assert_eq!(b.ls("/p"), vec!["a", "b"]);
}

#[test]
fn copy_from_stage_missing_path_fails() {
    let e = Env::new();
    let err = e.build_err("FROM scratch AS a\nRUN write /o 1\nFROM scratch\nCOPY --from=a /missing /p\n");
    assert_eq!(error_line(&err), Some(4));
}

#[test]
fn copy_link_gives_an_independent_layer() {
    let e = env_with(&[("a", "1")]);
    let b = e.build("FROM scratch\nRUN write /x 1\nCOPY --link a /d/a\n");
    assert_eq!(b.read("/d/a").as_deref(), Some("1"));
    assert_eq!(b.read("/x").as_deref(), Some("1"));
    assert_eq!(b.layers(), 2);
}

#[test]
fn copy_parents_keeps_the_dirs() {
    let e = env_with(&[("x/y/a.txt", "1"), ("x/z/b.txt", "2")]);
    let b = e.build("FROM scratch\nCOPY --parents x/*/*.txt /out/\n");
    assert!(b.exists("/out/x/y/a.txt"), "{:?}", b.ls("/out"));
    assert!(b.exists("/out/x/z/b.txt"));
}

#[test]
fn copy_parents_with_dot_slash_pivot() {
    let e = env_with(&[("x/y/a.txt", "1")]);
    let b = e.build("FROM scratch\nCOPY --parents x/./y/a.txt /out/\n");
    assert!(b.exists("/out/y/a.txt"), "{:?}", b.ls("/out"));
}

#[test]
fn copy_heredoc_makes_a_file() {
    let e = Env::new();
    let b = e.build("FROM scratch\nCOPY <<EOF /h.txt\nhello\nEOF\n");
    assert_eq!(b.read("/h.txt").as_deref(), Some("hello\n"));
}

#[test]
fn copy_over_a_deleted_file_restores_it() {
    if !lamina_testkit::need_root("the fake's rm makes an overlay whiteout (mknod)") {
        return;
    }
    let e = env_with(&[("a", "new")]);
    let b = e.build("FROM scratch\nRUN write /a old\nRUN rm /a\nCOPY a /a\n");
    assert_eq!(b.read("/a").as_deref(), Some("new"));
}

#[test]
fn whiteout_hides_a_lower_file() {
    if !lamina_testkit::need_root("the fake's rm makes an overlay whiteout (mknod)") {
        return;
    }
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /a 1; write /b 2\nRUN rm /a\n");
    assert!(!b.exists("/a"));
    assert_eq!(b.read("/b").as_deref(), Some("2"));
}

#[test]
fn whiteout_hides_a_lower_dir() {
    if !lamina_testkit::need_root("the fake's rm makes an overlay whiteout (mknod)") {
        return;
    }
    let e = Env::new();
    let b = e.build("FROM scratch\nRUN write /d/a 1\nRUN rm /d\nRUN write /e 1\n");
    assert!(!b.exists("/d"));
    assert!(b.exists("/e"));
}

#[test]
fn copy_from_stage_does_not_copy_whiteouts() {
    if !lamina_testkit::need_root("the fake's rm makes an overlay whiteout (mknod)") {
        return;
    }
    let e = Env::new();
    let b = e.build(
        "FROM scratch AS a\nRUN write /o/a 1; write /o/b 2\nRUN rm /o/a\nFROM scratch\nCOPY --from=a /o /p\n",
    );
    assert_eq!(b.ls("/p"), vec!["b"]);
}

#[test]
fn add_local_tar_is_unpacked() {
    let e = Env::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append_data(&mut h, "inner/f", &b"tar"[..]).unwrap();
    std::fs::write(e.ctx.join("a.tar"), builder.into_inner().unwrap()).unwrap();
    let b = e.build("FROM scratch\nADD a.tar /x/\n");
    assert_eq!(b.read("/x/inner/f").as_deref(), Some("tar"));
}

#[test]
fn copy_does_not_unpack_a_tar() {
    let e = Env::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_cksum();
    builder.append_data(&mut h, "f", &b"tar"[..]).unwrap();
    std::fs::write(e.ctx.join("a.tar"), builder.into_inner().unwrap()).unwrap();
    let b = e.build("FROM scratch\nCOPY a.tar /x/\n");
    assert!(b.exists("/x/a.tar"));
    assert!(!b.exists("/x/f"));
}

#[test]
fn add_plain_file_is_copied() {
    let e = env_with(&[("a.txt", "plain")]);
    assert_eq!(
        e.build("FROM scratch\nADD a.txt /a\n").read("/a").as_deref(),
        Some("plain")
    );
}

#[test]
fn copy_symlink_is_kept_as_a_link() {
    let e = env_with(&[("target", "t")]);
    std::os::unix::fs::symlink("target", e.ctx.join("link")).unwrap();
    let b = e.build("FROM scratch\nCOPY . /c/\n");
    let l = std::fs::read_link(b.path("/c/link")).unwrap();
    assert_eq!(l.to_str(), Some("target"));
}

#[test]
fn copy_makes_one_layer_per_step() {
    let e = env_with(&[("a", "1"), ("b", "2")]);
    let b = e.build("FROM scratch\nCOPY a /a\nCOPY b /b\n");
    assert_eq!(b.layers(), 2);
}
