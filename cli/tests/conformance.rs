//! The build conformance suite: every case under `testdata/conformance/<case>/` is built with `lamina build`
//! and its flattened rootfs (`lamina unpack -o`) and config (`lamina inspect`) are compared with the goldens
//! `docker build` produced (`testdata/conformance/regen.sh`). One test per case; every difference is reported.
//!
//! Cases skip with a printed reason while a command they need (`lamina build`, `import`, `unpack`) is not in
//! the binary yet, when not run as root (RUN steps need namespaces and overlayfs), or without the tools the
//! base image script needs (a static busybox, GNU tar). Without `lamina inspect` the config is read from the
//! store's OCI layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

mod common;
#[path = "conformance/dump.rs"]
mod dump;

use common::is_root;

/// The builder under test: lamina, or another `lamina`-compatible command named by LAMINA_CONFORMANCE_BIN
/// (testdata/conformance/docker-as-lamina.sh checks the harness itself against docker).
fn lamina_bin() -> PathBuf {
    std::env::var_os("LAMINA_CONFORMANCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lamina")))
}
const BASE_REF: &str = "lamina-test-base";
/// The network every case builds with: the dockerd that made the goldens has no bridge network.
const NETWORK: &str = "none";

/// The same commands regen.sh runs on its context copy.
const NORMALIZE_CONTEXT: &str = r#"find "$1" -type d -exec chmod 0755 {} +
find "$1" -type f \( -perm -u+x -exec chmod 0755 {} + -o -exec chmod 0644 {} + \)
chown -R 0:0 "$1""#;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance")
}

fn lamina(root: &Path) -> Command {
    let mut c = Command::new(lamina_bin());
    c.arg("--root").arg(root);
    c
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{what}: spawning: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Why the suite can't run here, if it can't: checked once per test binary.
fn skip_reason() -> Option<&'static str> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            for sub in ["build", "import"] {
                let ok = Command::new(lamina_bin())
                    .args([sub, "--help"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !ok {
                    return Some(format!("lamina {sub} not available"));
                }
            }
            if !is_root() {
                return Some("not root: RUN steps need namespaces and overlayfs".into());
            }
            if let Err(e) = base() {
                return Some(format!("base image not buildable: {e}"));
            }
            None
        })
        .as_deref()
}

struct Base {
    tar: PathBuf,
    /// `\tSIZE\tSHA` of this machine's busybox, and of the one the goldens were made with (base.txt).
    busybox_here: String,
    busybox_golden: String,
    _dir: tempfile::TempDir,
}

/// The base image rootfs tar, made once per test binary by make-base.sh from this machine's busybox.
fn base() -> &'static Result<Base, String> {
    static BASE: OnceLock<Result<Base, String>> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let tar = dir.path().join("base.tar");
        run(
            Command::new("bash").arg(corpus().join("make-base.sh")).arg(&tar),
            "make-base.sh",
        )?;
        let f = std::fs::File::open(&tar).map_err(|e| e.to_string())?;
        let tree = dump::dump_tar(f)?;
        let line = tree
            .lines()
            .find(|l| l.starts_with("/usr/bin/busybox\t"))
            .ok_or("base tar has no /usr/bin/busybox")?;
        let f: Vec<&str> = line.split('\t').collect();
        let busybox_here = format!("\t{}\t{}\t", f[5], f[6]);
        let golden =
            std::fs::read_to_string(corpus().join("base.txt")).map_err(|e| format!("base.txt: {e}"))?;
        let g: Vec<&str> = golden.trim_end().split('\t').collect();
        let busybox_golden = format!("\t{}\t{}\t", g.get(1).unwrap_or(&""), g.get(2).unwrap_or(&""));
        Ok(Base {
            tar,
            busybox_here,
            busybox_golden,
            _dir: dir,
        })
    })
}

/// The `args` file: one flag and its value per line (`--build-arg K=V`, `--target S`, `--secret …`).
fn case_args(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("args")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        match line.split_once(' ') {
            Some((flag, value)) => out.extend([flag.to_string(), value.to_string()]),
            None => out.push(line.to_string()),
        }
    }
    out
}

/// Builds one case with lamina and returns every difference from its goldens (empty = conformant).
fn check_case(name: &str) -> Result<Vec<String>, String> {
    let dir = corpus().join(name);
    let Ok(base) = base() else {
        return Err("no base".into());
    };
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).map_err(|e| e.to_string())?;
    if dir.join("context").is_dir() {
        // cp -a keeps modes and symlinks exactly as checked out, like regen.sh does.
        run(
            Command::new("cp").arg("-a").arg(dir.join("context/.")).arg(&ctx),
            "copying the context",
        )?;
    }
    // As regen.sh does: only git's executable bit counts, not the checkout's umask or owner.
    run(
        Command::new("sh")
            .arg("-c")
            .arg(NORMALIZE_CONTEXT)
            .arg("sh")
            .arg(&ctx),
        "normalizing context modes",
    )?;
    if dir.join("setup.sh").is_file() {
        run(
            Command::new("sh")
                .args(["-c", "umask 022 && exec sh \"$0\""])
                .arg(dir.join("setup.sh"))
                .current_dir(&ctx),
            "setup.sh",
        )?;
    }
    run(
        lamina(&root).arg("import").arg(&base.tar).arg(BASE_REF),
        "lamina import of the base",
    )?;

    let tag = format!("lamina-conf-{name}");
    let build = |dockerfile: &Path, tag: &str, extra: &[String]| -> Result<(), String> {
        let mut c = lamina(&root);
        c.current_dir(&ctx)
            .args(["build", "--progress", "plain", "--network", NETWORK, "-f"]);
        c.arg(dockerfile).args(["-t", tag]).args(extra).arg(".");
        run(&mut c, &format!("lamina build of {}", dockerfile.display())).map(drop)
    };
    if dir.join("pre.Dockerfile").is_file() {
        build(&dir.join("pre.Dockerfile"), &format!("{tag}-pre"), &[])?;
    }
    build(&dir.join("Dockerfile"), &tag, &case_args(&dir))?;

    let (actual_tree, actual_texts) = if has(&root, "unpack") {
        let rootfs = tmp.path().join("rootfs.tar");
        run(
            lamina(&root).args(["unpack", &tag, "-o"]).arg(&rootfs),
            "lamina unpack",
        )?;
        dump::dump_tar_with_texts(
            std::fs::File::open(&rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?,
        )?
    } else {
        layers_from_layout(&root, &tag)?
    };
    let expected_tree = std::fs::read_to_string(dir.join("expected/tree.txt"))
        .map_err(|e| format!("expected/tree.txt: {e}"))?
        .replace(&base.busybox_golden, &base.busybox_here);
    let mut diffs = dump::diff_trees(&expected_tree, &actual_tree);
    let expected_texts: BTreeMap<String, String> =
        std::fs::read_to_string(dir.join("expected/contents.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
    dump::annotate_contents(&mut diffs, &expected_texts, &actual_texts);

    let actual_config = dump::normalize_config(&image_config(&root, &tag)?);
    let expected_config: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected/config.json"))
            .map_err(|e| format!("config.json: {e}"))?,
    )
    .map_err(|e| format!("expected/config.json: {e}"))?;
    diffs.extend(dump::diff_configs(&expected_config, &actual_config));
    Ok(diffs)
}

/// The inner `config` object (Env, Cmd…) of an image, from `lamina inspect --format json`, which may print the
/// image config itself, an object holding it under `config`/`Config`, or a one-element array of either.
fn image_config(root: &Path, tag: &str) -> Result<Value, String> {
    if !has(root, "inspect") {
        return config_from_layout(root, tag);
    }
    let out = run(
        lamina(root).args(["inspect", "--format", "json", tag]),
        "lamina inspect",
    )?;
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("lamina inspect: not JSON: {e}"))?;
    let v = match v {
        Value::Array(mut a) if a.len() == 1 => a.remove(0),
        v => v,
    };
    let looks_like_config = |c: &Value| {
        c.as_object().is_some_and(|o| {
            ["Env", "Cmd", "Entrypoint", "WorkingDir", "Labels"]
                .iter()
                .any(|k| o.contains_key(*k))
        })
    };
    let candidates = [
        v.pointer("/config/config"),
        v.pointer("/Config/config"),
        v.pointer("/image/config/config"),
        v.pointer("/config"),
        v.pointer("/Config"),
    ];
    for c in candidates.into_iter().flatten() {
        if looks_like_config(c) {
            return Ok(c.clone());
        }
    }
    // An image with an empty config (no Env at all) shows up as an object without those keys.
    v.pointer("/config/config")
        .or_else(|| v.pointer("/config"))
        .or_else(|| v.pointer("/Config"))
        .cloned()
        .ok_or_else(|| format!("lamina inspect: no image config found in {v}"))
}

/// Does the binary under test have this subcommand?
fn has(root: &Path, sub: &str) -> bool {
    lamina(root)
        .args([sub, "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read_json(p: PathBuf) -> Result<Value, String> {
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))
}

fn blob_path(root: &Path, digest: &str) -> PathBuf {
    root.join("blobs").join(digest.replace(':', "/"))
}

/// Without `lamina inspect`: the config blob of the manifest the store's index.json tags with `tag`.
fn config_from_layout(root: &Path, tag: &str) -> Result<Value, String> {
    let manifest = manifest_from_layout(root, tag)?;
    let config = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or("manifest without config")?;
    Ok(read_json(blob_path(root, config))?
        .get("config")
        .cloned()
        .unwrap_or(Value::Null))
}

/// Without `lamina unpack`: the image's layer blobs from the store, flattened like dump.py flattens docker's.
fn layers_from_layout(root: &Path, tag: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let manifest = manifest_from_layout(root, tag)?;
    let mut readers: Vec<Box<dyn std::io::Read>> = Vec::new();
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let d = l["digest"].as_str().ok_or("layer without digest")?;
        let p = blob_path(root, d);
        let f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        readers.push(Box::new(std::io::BufReader::new(f)));
    }
    dump::dump_layers(readers)
}

fn manifest_from_layout(root: &Path, tag: &str) -> Result<Value, String> {
    let index = read_json(root.join("index.json"))?;
    let wanted = [format!("{tag}:latest"), format!("/{tag}:latest"), tag.to_string()];
    let manifest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(Value::as_str)
                .is_some_and(|n| n == wanted[2] || n == wanted[0] || n.ends_with(&wanted[1]))
        })
        .ok_or_else(|| format!("no index.json entry for {tag} in {}", root.display()))?;
    let digest = manifest["digest"].as_str().ok_or("index entry without digest")?;
    read_json(blob_path(root, digest))
}

fn case(name: &str) {
    if let Some(reason) = skip_reason() {
        lamina_testkit::skip(&format!("conformance {name}: {reason}"));
        return;
    }
    match check_case(name) {
        Ok(diffs) if diffs.is_empty() => {}
        Ok(diffs) => panic!(
            "conformance {name}: {} difference(s) from docker:\n  {}",
            diffs.len(),
            diffs.join("\n  ")
        ),
        Err(e) => panic!("conformance {name}: {e}"),
    }
}

macro_rules! cases {
    ($($test:ident => $dir:literal,)*) => {
        $(#[test] fn $test() { case($dir) })*
        const CASES: &[&str] = &[$($dir),*];
    };
}

cases! {
    add_archive_chown => "add-archive-chown",
    add_archives => "add-archives",
    arg_env_precedence => "arg-env-precedence",
    arg_predefined => "arg-predefined",
    arg_scoping => "arg-scoping",
    cli_label => "cli-label",
    copy_basic => "copy-basic",
    copy_chmod => "copy-chmod",
    copy_chown_existing => "copy-chown-existing",
    copy_chown_expand => "copy-chown-expand",
    copy_chown_names => "copy-chown-names",
    copy_dest_rules => "copy-dest-rules",
    copy_dir_contents => "copy-dir-contents",
    copy_empty_and_special_names => "copy-empty-and-special-names",
    copy_from_hardlinks => "copy-from-hardlinks",
    copy_from_stage_symlink_dir => "copy-from-stage-symlink-dir",
    copy_hardlinks => "copy-hardlinks",
    copy_link => "copy-link",
    copy_modes => "copy-modes",
    copy_overwrite => "copy-overwrite",
    copy_symlinks => "copy-symlinks",
    copy_through_symlink => "copy-through-symlink",
    copy_wildcard_dirs => "copy-wildcard-dirs",
    copy_wildcards => "copy-wildcards",
    dockerignore => "dockerignore",
    dockerignore_dockerfile => "dockerignore-dockerfile",
    entrypoint_resets_cmd => "entrypoint-resets-cmd",
    env_expansion => "env-expansion",
    escape_and_continuation => "escape-and-continuation",
    expansion_everywhere => "expansion-everywhere",
    expansion_patterns => "expansion-patterns",
    expose_forms => "expose-forms",
    from_arg_multi => "from-arg-multi",
    hardlinks_run => "hardlinks-run",
    healthcheck_none => "healthcheck-none",
    heredocs => "heredocs",
    long_paths => "long-paths",
    metadata_all => "metadata-all",
    metadata_shell_forms => "metadata-shell-forms",
    multistage_copy_from => "multistage-copy-from",
    multistage_index_and_image => "multistage-index-and-image",
    multistage_parallel => "multistage-parallel",
    multistage_target => "multistage-target",
    onbuild => "onbuild",
    onbuild_record => "onbuild-record",
    run_env_and_shell => "run-env-and-shell",
    run_exec_form => "run-exec-form",
    run_modify_base => "run-modify-base",
    run_mount_bind => "run-mount-bind",
    run_mount_cache => "run-mount-cache",
    run_mount_secret => "run-mount-secret",
    run_mount_stubs => "run-mount-stubs",
    run_ownership => "run-ownership",
    scratch_only => "scratch-only",
    setuid_bits => "setuid-bits",
    special_files => "special-files",
    unicode_names => "unicode-names",
    user_from_passwd_run => "user-from-passwd-run",
    user_workdir => "user-workdir",
    volume_then_write => "volume-then-write",
    whiteout_copy_over => "whiteout-copy-over",
    whiteout_dir => "whiteout-dir",
    whiteout_file => "whiteout-file",
    whiteout_links => "whiteout-links",
    whiteout_recreate => "whiteout-recreate",
    workdir_env => "workdir-env",
}

#[path = "conformance/selfcheck.rs"]
mod selfcheck;
