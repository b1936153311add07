//! Fixtures for the runner tests: a busybox rootfs built from the host's static busybox, and a
//! request template pointing at the built `lamina` binary as helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lamina_runner::{Limits, Network, Process, RunOutcome, RunRequest, RunStdio};

pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Why the runner tests can't run here, if they can't.
pub fn skip_reason() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .map(|l| l.split_whitespace().nth(2) == Some("0"))
    });
    if uid != Some(true) {
        return Some("needs root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} missing (apt-get install busybox-static)"));
    }
    None
}

macro_rules! require_root {
    () => {
        if let Some(reason) = crate::run_common::skip_reason() {
            lamina_testkit::skip(&format!("{reason}"));
            return;
        }
    };
}
pub(crate) use require_root;

/// A test sandbox: busybox lower dir, fresh upper/work, scratch space.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub lower: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lower = tmp.path().join("lower");
        let bin = lower.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        let list = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap();
        for name in String::from_utf8_lossy(&list.stdout).lines() {
            if name != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", bin.join(name));
            }
        }
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("tmp")).unwrap();
        std::fs::write(
            lower.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000:bob:/home/bob:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            lower.join("etc/group"),
            "root:x:0:\nbob:x:1000:\nwheel:x:10:bob\nnogroup:x:65534:\n",
        )
        .unwrap();
        Fixture { tmp, lower }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A request for `sh -c script` with a fresh upper dir named `tag`.
    pub fn request(&self, tag: &str, script: &str) -> RunRequest {
        let upper = self.path().join(format!("{tag}-upper"));
        let work = self.path().join(format!("{tag}-work"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        RunRequest {
            id: None,
            lower_dirs: vec![self.lower.clone()],
            upper_dir: upper,
            work_dir: work,
            mounts: vec![],
            process: Process {
                args: vec!["/bin/sh".into(), "-c".into(), script.into()],
                env: vec![],
                cwd: "/".into(),
                user: None,
                additional_groups: vec![],
                tty: false,
            },
            limits: Limits::default(),
            network: Network::None,
            hostname: None,
            etc_hostname: true,
            readonly_rootfs: false,
            helper_exe: PathBuf::from(env!("CARGO_BIN_EXE_lamina")),
            ports: vec![],
            detach: false,
            status_file: None,
            net: Default::default(),
            attach_socket: None,
            log_file: None,
            confinement: Default::default(),
            supervision: Default::default(),
        }
    }

    /// Run and capture stdout+stderr.
    pub fn run(&self, req: &RunRequest) -> (RunOutcome, String) {
        let out = self.path().join(format!("out-{}", lamina_runner::new_id()));
        let f = std::fs::File::create(&out).unwrap();
        let stdio = RunStdio {
            stdin: Some(std::process::Stdio::null()),
            stdout: Some(f.try_clone().unwrap().into()),
            stderr: Some(f.into()),
        };
        let outcome = lamina_runner::run_with_stdio(req, stdio).expect("run");
        (outcome, std::fs::read_to_string(&out).unwrap())
    }
}

/// The confinement probe (probe.c), built static into `lower/bin/probe`. `None` (after a skip
/// notice, or a failure under CI) when the machine has no C toolchain for it.
pub fn install_probe(fx: &Fixture) -> Option<PathBuf> {
    if !lamina_testkit::need_tools(&["gcc"]) {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_common/probe.c");
    let out = fx.lower.join("bin/probe");
    let st = std::process::Command::new("gcc")
        .args(["-static", "-O", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run gcc");
    if !st.success() {
        lamina_testkit::skip("gcc cannot link a static binary here (libc6-dev missing?)");
        return None;
    }
    Some(out)
}

/// Docker's default capability set as /proc/PID/status prints it.
pub const DOCKER_CAPS: &str = "00000000a80425fb";

/// Assert a probe report shows a confined process: seccomp filter, no_new_privs, docker's caps in
/// the bounding/effective/permitted sets, nothing inheritable or ambient, and every attempt refused.
pub fn assert_confined(entry: &str, report: &str) {
    let field = |name: &str| {
        report
            .lines()
            // Build output prefixes each line with the step number and a timestamp.
            .find_map(|l| l.find(name).map(|i| &l[i + name.len()..]))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{entry}: no {name} in probe output:\n{report}"))
    };
    assert_eq!(field("Seccomp:"), "2", "{entry}: no seccomp filter:\n{report}");
    assert_eq!(
        field("NoNewPrivs:"),
        "1",
        "{entry}: no_new_privs unset:\n{report}"
    );
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(field(set), DOCKER_CAPS, "{entry}: {set}\n{report}");
    }
    for set in ["CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "{entry}: {set}\n{report}");
    }
    for attempt in ["add_key=", "keyctl=", "unshare_user=", "cgroup_mount="] {
        let result = field(attempt);
        assert_ne!(
            result, "ok",
            "{entry}: {attempt}ok inside the container:\n{report}"
        );
    }
}

/// The naive control: the same probe's report from a process that entered the container's
/// namespaces without the container's confinement. Shows the payload is real.
pub fn assert_unconfined(entry: &str, report: &str) {
    assert!(
        report.contains("Seccomp:\t0"),
        "{entry}: control is filtered:\n{report}"
    );
    for attempt in ["add_key=ok", "keyctl=ok", "unshare_user=ok", "cgroup_mount=ok"] {
        assert!(
            report.contains(attempt),
            "{entry}: control lacks {attempt}:\n{report}"
        );
    }
}

/// Removes every container of a test's store when the test ends, passing or not: a detached
/// container's monitor outlives the test process otherwise (and keeps its deleted store open).
pub struct StoreGuard(pub PathBuf);

impl Drop for StoreGuard {
    fn drop(&mut self) {
        let lamina = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_lamina"))
                .arg("--root")
                .arg(&self.0)
                .args(args)
                .output()
        };
        let Ok(ids) = lamina(&["ps", "-aq", "--no-trunc"]) else {
            return;
        };
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = lamina(&args);
        }
    }
}

/// `lamina --root STORE ARGS…`, output captured.
pub fn lamina(store: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lamina"))
        .arg("--root")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

/// [`lamina`], which must succeed; its stdout.
pub fn ok(store: &Path, args: &[&str]) -> String {
    let o = lamina(store, args);
    assert!(
        o.status.success(),
        "lamina {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `--format json` output: one object per line, as docker prints it.
pub fn json_lines(out: &str) -> serde_json::Value {
    serde_json::Value::Array(out.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

/// Polls `cond` every 50 ms for up to 20 s.
pub fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
