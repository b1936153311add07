//! `lamina version`: what was built (version, git commit, build date, rustc) and what this machine offers
//! lamina (OS/arch, kernel release, the kernel features RUN steps and containers use). `--format json`
//! for scripts; a Go template gets the same fields.

use std::process::ExitCode;

use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `json`, or a Go template over the fields (`{{.Version}}`, `{{.Commit}}`, `{{.Kernel.Release}}`).
    #[arg(long, short = 'f')]
    format: Option<String>,
}

/// Docker's names for the architecture.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The kernel features lamina relies on, as this kernel reports them.
fn kernel() -> serde_json::Value {
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into());
    let overlay = read("/proc/filesystems").is_some_and(|f| f.lines().any(|l| l.ends_with("\toverlay")));
    let cgroup_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let userns = read("/proc/sys/user/max_user_namespaces")
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|n| n > 0);
    let unprivileged_userns = read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v == "1");
    let seccomp = read("/proc/self/status").is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")));
    // openat2(RESOLVE_IN_ROOT), which confines layer paths, came with Linux 5.6.
    let (major, minor) = {
        let mut it = release.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    json!({
        "Release": release,
        "Overlayfs": overlay,
        "CgroupV2": cgroup_v2,
        "UserNamespaces": userns,
        "UnprivilegedUserNamespaces": userns && unprivileged_userns,
        "Seccomp": seccomp,
        "Openat2": (major, minor) >= (5, 6),
    })
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let doc = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Commit": env!("LAMINA_GIT_COMMIT"),
        "BuildDate": env!("LAMINA_BUILD_DATE"),
        "Rustc": env!("LAMINA_RUSTC_VERSION"),
        "Os": std::env::consts::OS,
        "Arch": arch(),
        "Kernel": kernel(),
    });
    match args.format.as_deref() {
        Some("json") => crate::outln!("{doc}"),
        Some(t) => crate::outln!("{}", crate::format::execute_once(t, &doc)?),
        None => {
            let s = |k: &str| doc[k].as_str().unwrap_or_default().to_owned();
            let k = &doc["Kernel"];
            let yes = |f: &str| if k[f].as_bool() == Some(true) { "yes" } else { "no" };
            crate::outln!("lamina {}", s("Version"));
            crate::outln!(" Commit:      {}", s("Commit"));
            crate::outln!(" Built:       {}", s("BuildDate"));
            crate::outln!(" Rustc:       {}", s("Rustc"));
            crate::outln!(" OS/Arch:     {}/{}", s("Os"), s("Arch"));
            crate::outln!(" Kernel:      {}", k["Release"].as_str().unwrap_or_default());
            crate::outln!(
                " Features:    overlayfs {}, cgroup v2 {}, user namespaces {} (unprivileged {}), seccomp {}, openat2 {}",
                yes("Overlayfs"),
                yes("CgroupV2"),
                yes("UserNamespaces"),
                yes("UnprivilegedUserNamespaces"),
                yes("Seccomp"),
                yes("Openat2")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
