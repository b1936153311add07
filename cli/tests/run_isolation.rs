//! Runner acceptance: isolation and the known escapes (run as root; skipped elsewhere).

mod run_common;

use run_common::{Fixture, require_root};

#[test]
fn pid1_hostname_loopback_only() {
    require_root!();
    let fx = Fixture::new();
    let mut req = fx.request(
        "iso",
        "echo pid=$$; ps -o pid | wc -l; hostname; cat /proc/net/dev | grep -c :",
    );
    req.hostname = Some("boxy".into());
    let (o, out) = fx.run(&req);
    assert_eq!(o.exit_code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "{out}");
    // header + sh + ps + wc: no host processes.
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 4, "{out}");
    assert_eq!(lines[2], "boxy");
    assert_eq!(lines[3], "1", "only lo expected: {out}");
}

#[test]
fn exit_codes_pass_through() {
    require_root!();
    let fx = Fixture::new();
    let (o, _) = fx.run(&fx.request("exit", "exit 7"));
    assert_eq!((o.exit_code, o.signal, o.oom_killed), (7, None, false));
    let (o, _) = fx.run(&fx.request("sig", "sleep 10 & kill -9 $!; wait $!"));
    assert_eq!(o.exit_code, 137);
}

#[test]
fn only_stdio_fds_inside() {
    require_root!();
    let fx = Fixture::new();
    let (o, out) = fx.run(&fx.request("fds", "for f in 0 1 2 3 4 5 6 7 8 9 10 11 12 19 20 63 255; do [ -e /proc/$$/fd/$f ] && echo -n \"$f \"; done; true"));
    assert_eq!(o.exit_code, 0, "{out}");
    assert_eq!(out.trim(), "0 1 2", "leaked fds: {out}");
}

#[test]
fn proc_cwd_is_rejected() {
    require_root!();
    let fx = Fixture::new();
    for cwd in ["/proc/self/fd/3", "/x/../proc/1/cwd"] {
        let mut req = fx.request("cwd", "pwd");
        req.process.cwd = cwd.into();
        let err = lamina_runner::run(&req).unwrap_err();
        assert!(
            matches!(err, lamina_runner::RunError::InvalidCwd { .. }),
            "{cwd}: {err}"
        );
    }
}

#[test]
fn privileged_operations_fail() {
    require_root!();
    let fx = Fixture::new();
    let script = "mount -t tmpfs t /tmp 2>/dev/null && echo MOUNTED; \
                  (echo 1 > /proc/sys/kernel/panic) 2>/dev/null && echo SYSCTL; \
                  date -s 2001-01-01 2>&1 | grep -q 'not permitted' || echo TIME; \
                  rmmod loop 2>/dev/null && echo MODULE; insmod /x.ko 2>/dev/null && echo MODULE; \
                  unshare -n true 2>/dev/null && echo UNSHARE; \
                  [ -s /proc/kcore ] && echo KCORE; cat /proc/keys 2>/dev/null | grep -q . && echo KEYS; \
                  echo done";
    let (o, out) = fx.run(&fx.request("priv", script));
    assert_eq!(o.exit_code, 0, "{out}");
    assert_eq!(out.trim(), "done", "a privileged operation succeeded: {out}");
}
