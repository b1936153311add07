//! Build progress as people and tools see it. The TTY view runs in tmux panes of 80x24, 120x40 and 200x50
//! (capture-pane during and after a 300-line RUN, after a failing step, after Ctrl-C): one header, no line
//! past the pane's width, no stale spinner lines, `FINISHED`/`ERROR`/`CANCELED` states. `--progress json`
//! is parsed line by line; plain mode prints a failed RUN's output once and folds metadata steps.
//! RUN steps need root; tmux comes from scripts/test.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{have, is_root, lamina_bin};

const LONG_RUN: &str = "FROM scratch\nCOPY rootfs/ /\nENV A=1\nRUN for i in $(seq 1 300); do echo \"line $i: \
日本語 $(printf '%0.s=' $(seq 1 $((i % 190))))\"; done; sleep 3; echo end-of-run\n";
const FAILING: &str =
    "FROM scratch\nCOPY rootfs/ /\nRUN for i in $(seq 1 50); do echo \"out $i\"; done; exit 3\n";

/// A context with a busybox rootfs and `dockerfile`; `None` (after a skip message) where RUN can't work.
fn context(dir: &Path, dockerfile: &str) -> Option<PathBuf> {
    let bb = Path::new("/usr/bin/busybox");
    if !is_root() || !bb.exists() {
        lamina_testkit::skip("RUN steps need root and /usr/bin/busybox");
        return None;
    }
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::copy(bb, ctx.join("rootfs/bin/busybox")).unwrap();
    for a in ["sh", "echo", "seq", "printf", "sleep"] {
        std::os::unix::fs::symlink("busybox", ctx.join("rootfs/bin").join(a)).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    Some(ctx)
}

struct Pane {
    name: String,
}

impl Pane {
    /// Starts `lamina build --progress tty` in a detached tmux session of `w`×`h`; the shell prints
    /// `EXIT=<status>` when it ends.
    fn start(root: &Path, ctx: &Path, w: u16, h: u16, tag: &str) -> Pane {
        Pane::start_with(root, ctx, w, h, tag, "")
    }

    /// [`Pane::start`] with `env` (`NAME=value …`) set for lamina.
    fn start_with(root: &Path, ctx: &Path, w: u16, h: u16, tag: &str, env: &str) -> Pane {
        let name = format!("lamina-progress-{}-{tag}-{w}x{h}", std::process::id());
        let cmd = format!(
            "env {env} {} --root {} build --no-cache --network none --progress tty {}; echo EXIT=$?; sleep 60",
            lamina_bin().display(),
            root.display(),
            ctx.display()
        );
        let st = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                &cmd,
            ])
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session");
        Pane { name }
    }

    fn capture(&self) -> String {
        self.capture_with(&[])
    }

    /// capture-pane with more flags (`-e`: with the escape sequences of colours).
    fn capture_with(&self, flags: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .args(flags)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `what` (30 s at most), returning it.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.capture();
            if s.contains(what) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, k: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, k])
            .status()
            .unwrap();
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn width(s: &str) -> usize {
    // Wide characters (the RUN prints 日本語) take two columns.
    s.chars()
        .map(|c| {
            if ('\u{3000}'..='\u{9fff}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

/// What holds for every screen: one header at the top, every pane line within the pane's width.
fn check_screen(screen: &str, w: usize, when: &str) {
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("[+] Building")).count(),
        1,
        "{when}: one header, no stale copies:\n{screen}"
    );
    assert!(
        lines[0].starts_with("[+] Building"),
        "{when}: pane at the top:\n{screen}"
    );
    // The pane (redrawn in place) must never wrap; what is printed once under it at the end may.
    for l in lines
        .iter()
        .take_while(|l| l.starts_with("[+]") || l.starts_with(" =>"))
    {
        assert!(
            width(l) < w,
            "{when}: line as wide as the pane (it would wrap): {l:?}"
        );
    }
}

fn tmux_ready() -> bool {
    if !have("tmux") {
        lamina_testkit::skip("tmux missing (scripts/test.sh installs it)");
        return false;
    }
    true
}

#[test]
fn tty_view_long_output_at_three_sizes() {
    if !tmux_ready() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path(), LONG_RUN) else {
        return;
    };
    for (w, h) in [(80u16, 24u16), (120, 40), (200, 50)] {
        let root = t.path().join(format!("store-{w}"));
        let pane = Pane::start(&root, &ctx, w, h, "long");
        let during = pane.wait_for("line 300");
        check_screen(&during, w as usize, &format!("{w}x{h} during"));
        assert!(
            during.contains(" => => # line 300"),
            "{w}x{h}: the last log lines under the step:\n{during}"
        );
        assert!(
            !during.contains("line 250:"),
            "{w}x{h}: only the last few lines:\n{during}"
        );
        let used = during.trim_end().lines().count();
        assert!(
            used < h as usize,
            "{w}x{h}: pane shorter than the terminal:\n{during}"
        );
        let after = pane.wait_for("EXIT=");
        check_screen(&after, w as usize, &format!("{w}x{h} after"));
        assert!(after.lines().next().unwrap().ends_with("FINISHED"), "{after}");
        assert!(after.contains("EXIT=0"), "{after}");
        assert!(
            !after.contains(" => => #"),
            "{w}x{h}: finished steps are collapsed:\n{after}"
        );
        assert!(
            !after.contains("ENV A=1"),
            "metadata steps have no line:\n{after}"
        );
        assert!(after.contains("=> built sha256:"), "{after}");
    }
}

#[test]
fn tty_view_failing_step_and_ctrl_c() {
    if !tmux_ready() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path(), FAILING) else {
        return;
    };
    let pane = Pane::start(&t.path().join("store"), &ctx, 120, 40, "fail");
    let after = pane.wait_for("EXIT=");
    check_screen(&after, 120, "failing");
    assert!(after.contains(" => ERROR [stage-0 2/2] RUN"), "{after}");
    assert!(after.contains("EXIT=1"), "{after}");
    let log = after
        .lines()
        .find_map(|l| l.strip_prefix("full log: "))
        .unwrap_or_else(|| panic!("no log path:\n{after}"));
    let full = std::fs::read_to_string(log.trim()).unwrap();
    assert_eq!(
        full.lines().filter(|l| l.contains(" out ")).count(),
        50,
        "the log file has every line"
    );
    std::fs::remove_file(log.trim()).unwrap();
    drop(pane);

    let ctx2 = t.path().join("ctx-long");
    std::fs::rename(&ctx, &ctx2).unwrap();
    std::fs::write(ctx2.join("Dockerfile"), LONG_RUN).unwrap();
    let pane = Pane::start(&t.path().join("store2"), &ctx2, 80, 24, "cancel");
    pane.wait_for("line 300");
    pane.keys("C-c");
    let after = pane.wait_for("EXIT=");
    check_screen(&after, 80, "canceled");
    assert!(after.lines().next().unwrap().ends_with("CANCELED"), "{after}");
    assert!(after.contains(" => CANCELED [stage-0 3/3] RUN"), "{after}");
    assert!(after.contains("EXIT=130"), "{after}");
    if let Some(log) = after.lines().find_map(|l| l.strip_prefix("full log: ")) {
        let _ = std::fs::remove_file(log.trim());
    }
}

#[test]
fn no_color_turns_the_panes_colours_off() {
    if !tmux_ready() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(t.path(), "FROM scratch\nCOPY rootfs/ /\nRUN echo hi\n") else {
        return;
    };
    let sgr = |s: &str| s.contains("\x1b[34m") || s.contains("\x1b[1m");
    let coloured = Pane::start_with(&t.path().join("s1"), &ctx, 100, 30, "color", "");
    coloured.wait_for("EXIT=");
    assert!(
        sgr(&coloured.capture_with(&["-e"])),
        "a terminal gets colour by default"
    );
    let plain = Pane::start_with(&t.path().join("s2"), &ctx, 100, 30, "nocolor", "NO_COLOR=1");
    let screen = plain.wait_for("EXIT=");
    assert!(screen.contains("FINISHED"), "{screen}");
    assert!(
        !sgr(&plain.capture_with(&["-e"])),
        "NO_COLOR=1 output has colour codes"
    );
}

fn build(dir: &Path, ctx: &Path, progress: &str) -> (bool, String) {
    let out = Command::new(lamina_bin())
        .arg("--root")
        .arg(dir.join(format!("store-{progress}")))
        .args(["build", "--no-cache", "--network", "none", "--progress", progress])
        .arg(ctx)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_progress_is_only_json_lines() {
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(
        t.path(),
        "FROM scratch\nCOPY rootfs/ /\nENV A=1\nRUN echo hello; echo world\n",
    ) else {
        return;
    };
    let (ok, stderr) = build(t.path(), &ctx, "json");
    assert!(ok, "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["time"].is_string() && e["elapsed"].is_number())
    );
    let logs: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "log")
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert_eq!(logs, ["hello", "world"]);
    assert!(events.iter().any(|e| e["event"] == "step" && e["id"].is_number()));
    let last = events.last().unwrap();
    assert_eq!(last["event"], "result", "the result comes last: {last}");
    assert!(last["image_id"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn plain_progress_prints_a_failure_once() {
    let t = tempfile::tempdir().unwrap();
    let Some(ctx) = context(
        t.path(),
        &FAILING.replace("FROM scratch\n", "FROM scratch\nLABEL a=b\n"),
    ) else {
        return;
    };
    let (ok, stderr) = build(t.path(), &ctx, "plain");
    assert!(!ok);
    assert!(!stderr.contains("LABEL"), "metadata steps are folded:\n{stderr}");
    assert!(stderr.contains("ERROR: "), "{stderr}");
    // Live once, and once in the error block at the end (its last lines): not three times.
    assert_eq!(stderr.matches("out 50\n").count(), 2, "{stderr}");
}
