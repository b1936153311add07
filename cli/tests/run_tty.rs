//! `lamina run -it`, `run -dit` + `attach` + `exec -it` in a real terminal (tmux, on a private
//! socket): the container gets a pty of its own (`tty` names /dev/pts/N, not the test's terminal),
//! line editing works, ^C interrupts only the foreground command, resizes reach `stty size`, and the
//! detach keys leave the container running. Then signals and docker's exit statuses without a tty.

mod run_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use run_common::{Fixture, require_root};

fn lamina(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lamina"));
    c.arg("--root").arg(store);
    c
}

/// One tmux server of our own, one window running `cmd`.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn have() -> bool {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            lamina_testkit::skip("tmux is not installed (apt-get install tmux)");
        }
        ok
    }

    fn start(dir: &Path, name: &str, cols: u16, rows: u16, cmd: &str) -> Tmux {
        let t = Tmux {
            socket: dir.join(format!("{name}.tmux")),
        };
        let o = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .arg(format!("{cmd}; echo EXIT=$?; sleep 60"))
            .output()
            .unwrap();
        assert!(o.status.success(), "tmux: {}", String::from_utf8_lossy(&o.stderr));
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        c
    }

    /// `keys` as tmux key names (`Enter`, `C-c`), or literal text with `-l`.
    fn keys(&self, keys: &[&str]) {
        assert!(self.cmd().arg("send-keys").args(keys).status().unwrap().success());
    }

    fn type_line(&self, text: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-l", text])
                .status()
                .unwrap()
                .success()
        );
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let o = self.cmd().args(["capture-pane", "-p", "-J"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits until a line of the screen satisfies `f`; returns that line.
    fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if let Some(l) = s.lines().find(|l| f(l.trim_end())) {
                return l.trim_end().to_owned();
            }
            assert!(Instant::now() < deadline, "waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a line that is `text`, or ends with it after a prompt (output that follows a
    /// detach lands on the prompt's line).
    fn wait_for(&self, text: &str) {
        self.wait_line(text, |l| {
            l.strip_suffix(text)
                .is_some_and(|before| before.is_empty() || before.ends_with(' '))
        });
    }

    fn resize(&self, cols: u16, rows: u16) {
        assert!(
            self.cmd()
                .args(["resize-window", "-x", &cols.to_string(), "-y", &rows.to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn run_it_gives_the_container_a_terminal_of_its_own() {
    require_root!();
    if !Tmux::have() {
        return;
    }
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let cmd = format!(
        "{} --root {} run --rm -it --network none {} sh",
        env!("CARGO_BIN_EXE_lamina"),
        sh_quote(&store),
        sh_quote(&fx.lower)
    );
    let t = Tmux::start(fx.path(), "run", 100, 30, &cmd);
    t.wait_line("a prompt", |l| l.ends_with('#'));
    t.type_line("tty");
    let tty = t.wait_line("tty's answer", |l| l.starts_with("/dev/") || l == "not a tty");
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    // The caller's own terminal is not the container's.
    t.type_line("stty size");
    t.wait_for("30 100");
    // Line editing: a typo, rubbed out with backspace, never reaches the command.
    assert!(
        t.cmd()
            .args(["send-keys", "-l", "echo edit-X"])
            .status()
            .unwrap()
            .success()
    );
    t.keys(&["BSpace"]);
    t.type_line("ok");
    t.wait_for("edit-ok");
    // A resize of our terminal reaches the container's.
    t.resize(90, 25);
    std::thread::sleep(Duration::from_millis(300));
    t.type_line("stty size");
    t.wait_for("25 90");
    // ^C interrupts the foreground job only; the shell (the container's init) carries on.
    t.type_line("sleep 100");
    std::thread::sleep(Duration::from_millis(500));
    t.keys(&["C-c"]);
    t.type_line("echo alive-$((40+2))");
    t.wait_for("alive-42");
    t.type_line("exit 3");
    t.wait_for("EXIT=3");
}

#[test]
fn detached_terminal_takes_attach_detach_keys_and_exec_it() {
    require_root!();
    if !Tmux::have() {
        return;
    }
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let o = lamina(&store)
        .args(["run", "-dit", "--name", "term", "--network", "none"])
        .arg(&fx.lower)
        .arg("sh")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bin = env!("CARGO_BIN_EXE_lamina");
    let store_q = sh_quote(&store);

    // `run -dit` keeps the shell waiting on its terminal instead of exiting on a closed stdin.
    std::thread::sleep(Duration::from_millis(500));
    let running = |name: &str| {
        let o = lamina(&store).args(["ps"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.ends_with(name) && l.contains(" Up"))
    };
    assert!(running("term"), "run -dit exited");

    let a = Tmux::start(
        fx.path(),
        "attach",
        100,
        30,
        &format!("{bin} --root {store_q} attach term"),
    );
    std::thread::sleep(Duration::from_millis(300));
    a.keys(&["Enter"]);
    a.type_line("echo attached-$((2+3))");
    a.wait_for("attached-5");
    a.keys(&["C-p", "C-q"]);
    a.wait_for("EXIT=0");
    assert!(running("term"), "detaching stopped the container");

    // Other detach keys, in docker's syntax.
    let b = Tmux::start(
        fx.path(),
        "attach2",
        100,
        30,
        &format!("{bin} --root {store_q} attach --detach-keys ctrl-a,d term"),
    );
    std::thread::sleep(Duration::from_millis(300));
    b.type_line("echo again-$((3+4))");
    b.wait_for("again-7");
    b.keys(&["C-a", "d"]);
    b.wait_for("EXIT=0");
    assert!(running("term"));

    let e = Tmux::start(
        fx.path(),
        "exec",
        70,
        20,
        &format!("{bin} --root {store_q} exec -it term sh"),
    );
    e.wait_line("a prompt", |l| l.ends_with('#'));
    e.type_line("tty");
    let tty = e.wait_line("tty's answer", |l| l.starts_with("/dev/") || l == "not a tty");
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    e.type_line("stty size");
    e.wait_for("20 70");
    e.type_line("exit 4");
    e.wait_for("EXIT=4");

    // Attached when the container ends: attach exits with its status.
    let c = Tmux::start(
        fx.path(),
        "attach3",
        100,
        30,
        &format!("{bin} --root {store_q} attach term"),
    );
    std::thread::sleep(Duration::from_millis(300));
    c.type_line("exit 6");
    c.wait_for("EXIT=6");
    let o = lamina(&store).args(["ps", "-a"]).output().unwrap();
    let ps = String::from_utf8_lossy(&o.stdout);
    assert!(
        ps.lines()
            .any(|l| l.ends_with("term") && l.contains("Exited (6)")),
        "{ps}"
    );
}

#[test]
fn signals_reach_the_container_and_exit_codes_are_dockers() {
    require_root!();
    let fx = Fixture::new();
    let store = fx.path().join("store");
    let script = r#"trap "echo got USR1" USR1; trap "echo got HUP" HUP; trap "echo got INT" INT; trap "echo got TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done"#;
    let out = fx.path().join("signals.out");
    let mut child = lamina(&store)
        .args(["run", "--rm", "--network", "none"])
        .arg(&fx.lower)
        .args(["sh", "-c", script])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&out).unwrap().contains("ready") {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    for sig in [
        rustix::process::Signal::USR1,
        rustix::process::Signal::HUP,
        rustix::process::Signal::INT,
        rustix::process::Signal::TERM,
    ] {
        rustix::process::kill_process(pid, sig).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "ready\ngot USR1\ngot HUP\ngot INT\ngot TERM\n"
    );

    let status = |args: &[&str]| {
        let o = lamina(&store)
            .args(["run", "--rm", "--network", "none"])
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let lower = fx.lower.to_str().unwrap();
    let (code, err) = status(&[lower, "/etc/passwd"]);
    assert_eq!(code, Some(126), "{err}");
    assert_eq!(err.trim(), r#"error: exec: "/etc/passwd": permission denied"#);
    let (code, err) = status(&[lower, "no-such-command"]);
    assert_eq!(code, Some(127), "{err}");
    assert_eq!(
        err.trim(),
        r#"error: exec: "no-such-command": executable file not found in $PATH"#
    );
    // lamina's own failures are 125, whatever their kind.
    let (code, err) = status(&["--pull", "never", "no-such-image:1", "true"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("no such image"), "{err}");
    let (code, err) = status(&["127.0.0.1:1/nothing/here:1", "true"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains("Unable to find image '127.0.0.1:1/nothing/here:1' locally"),
        "{err}"
    );
}
