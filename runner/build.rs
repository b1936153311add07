//! Builds `init/main.rs` (lamina-init, the `--init` pid 1) as a static binary the runner embeds:
//! it must run inside any image, which may have no libc. Where a static link is impossible (no
//! libc.a), an empty file is embedded instead and `--init` reports that at run time.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/main.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set")).join("lamina-init");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2024",
        "--crate-name",
        "lamina_init",
        "-C",
        "panic=abort",
        "-C",
        "opt-level=s",
    ])
    .args([
        "-C",
        "strip=symbols",
        "-C",
        "debuginfo=0",
        "-C",
        "target-feature=+crt-static",
    ])
    .arg("--target")
    .arg(&target)
    .arg("init/main.rs")
    .arg("-o")
    .arg(&out);
    let ok = cmd.status().is_ok_and(|s| s.success());
    if !ok {
        println!("cargo:warning=cannot build a static lamina-init for {target}: --init will be unavailable");
        std::fs::write(&out, b"").expect("write the empty stand-in");
    }
}
