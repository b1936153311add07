//! CLI conventions: `lamina version` (build facts, kernel features), shell completions and man pages made
//! from the clap definition, `--color` and NO_COLOR on error output.

use std::process::Command;

mod common;

use common::{lamina_bin, ok};

#[test]
fn version_reports_build_and_kernel() {
    let t = tempfile::tempdir().unwrap();
    let text = ok(t.path(), &["version"]);
    for field in ["Commit:", "Built:", "Rustc:", "OS/Arch:", "Kernel:", "Features:"] {
        assert!(text.contains(field), "{field} missing:\n{text}");
    }
    let v: serde_json::Value = serde_json::from_str(&ok(t.path(), &["version", "--format", "json"])).unwrap();
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert!(v["Rustc"].as_str().unwrap().starts_with("rustc "), "{v}");
    assert!(
        v["Kernel"]["Overlayfs"].is_boolean() && v["Kernel"]["Release"].is_string(),
        "{v}"
    );
    assert!(!v["Commit"].as_str().unwrap().is_empty());
    assert_eq!(ok(t.path(), &["version", "--format", "{{.Os}}"]).trim(), "linux");
}

#[test]
fn completions_and_man_pages() {
    let t = tempfile::tempdir().unwrap();
    assert!(ok(t.path(), &["completion", "bash"]).contains("_lamina()"));
    assert!(ok(t.path(), &["completion", "zsh"]).starts_with("#compdef lamina"));
    let fish = ok(t.path(), &["completion", "fish"]);
    assert!(
        fish.contains("complete -c lamina") && fish.contains("images"),
        "subcommands complete"
    );
    let dir = t.path().join("man");
    ok(t.path(), &["man", dir.to_str().unwrap()]);
    let page = std::fs::read_to_string(dir.join("lamina-build.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("progress"), "the build page documents its flags");
    assert!(dir.join("lamina.1").exists());
}

#[test]
fn errors_are_coloured_only_when_asked() {
    let t = tempfile::tempdir().unwrap();
    let run = |args: &[&str], no_color: bool| {
        let mut c = Command::new(lamina_bin());
        c.arg("--root").arg(t.path()).args(args);
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        String::from_utf8(c.output().unwrap().stderr).unwrap()
    };
    let always = run(&["--color", "always", "inspect", "no-such-image"], false);
    assert!(always.starts_with("\x1b[1;31merror:"), "{always:?}");
    let auto = run(&["inspect", "no-such-image"], true);
    assert!(auto.starts_with("error:") && !auto.contains('\x1b'), "{auto:?}");
    let never = run(&["--color", "never", "inspect", "no-such-image"], false);
    assert!(!never.contains('\x1b'), "{never:?}");
}
