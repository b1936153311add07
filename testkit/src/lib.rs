//! Honest prerequisites for lamina's tests.
//!
//! A test that needs something the machine may lack (root, a peer tool, a kernel feature) asks here first.
//! Where the prerequisite is missing it is skipped with a printed reason — except under `CI=true`, where a
//! missing prerequisite is a failure: CI must never go green by skipping the tests that matter.
//!
//! Every skip is also appended to the file named by `LAMINA_SKIP_LOG` (one `test<TAB>reason` line), which
//! `scripts/test.sh` reads to print how many tests skipped and why (cargo hides a passing test's stderr).

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// True when running under CI (`CI=true`, as GitHub, GitLab and our `.ci/run` set it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Records that the current test cannot run because of `reason`. Panics under `CI=true`; otherwise prints
/// the reason and logs it. The caller returns right after.
#[track_caller]
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("<unnamed>").to_string();
    if under_ci() {
        panic!("{test}: prerequisite missing under CI=true: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
    if let Some(log) = std::env::var_os("LAMINA_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log)
    {
        // One write per line, so concurrent tests don't interleave within a line.
        let _ = f.write_all(format!("{test}\t{reason}\n").as_bytes());
    }
}

/// Whether the tests run as root (uid 0).
pub fn is_root() -> bool {
    euid() == 0
}

fn euid() -> u32 {
    // /proc/self/status avoids a libc dependency for one call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when root; otherwise [`skip`]s with `why` and returns `false`.
#[track_caller]
pub fn need_root(why: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!("needs root: {why}"));
    false
}

/// `true` when every tool is on PATH; otherwise [`skip`]s naming the missing ones and returns `false`.
#[track_caller]
pub fn need_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!(
        "missing {} (installed by scripts/test.sh)",
        missing.join(", ")
    ));
    false
}

/// `true` when `path` exists; otherwise [`skip`]s with `what` and returns `false`.
#[track_caller]
pub fn need_path(path: impl AsRef<Path>, what: &str) -> bool {
    if path.as_ref().exists() {
        return true;
    }
    skip(&format!("{} missing ({what})", path.as_ref().display()));
    false
}
