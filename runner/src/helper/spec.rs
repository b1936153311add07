//! The OCI runtime spec (config.json) for one run, shaped like the one docker generates.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::user::ExecUser;
use crate::request::{Limits, Network, RunRequest};

/// Docker's default capability set.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default for RLIMIT_NOFILE, clamped below to what this host allows.
const NOFILE: u64 = 1_048_576;

pub(crate) struct SpecInput<'a> {
    pub req: &'a RunRequest,
    pub user: &'a ExecUser,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub hostname: &'a str,
    pub cgroups_path: &'a str,
}

pub(crate) fn build(input: &SpecInput<'_>) -> Value {
    let req = input.req;
    let (_, nofile_hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((NOFILE, NOFILE));
    let nofile = NOFILE.min(nofile_hard);
    // Only the kernel filesystems: binds, tmpfs and /etc files are made from fds by
    // `super::mounts` before the container starts, never by path in the runtime.
    let mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if req.network == Network::None {
        namespaces.push(json!({"type": "network"}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": input.user.uid, "gid": input.user.gid, "additionalGids": input.user.additional_gids},
            "args": req.process.args,
            "env": input.env,
            "cwd": input.cwd,
            // Inheritable and ambient stay empty, as in docker since 20.10 (CVE-2022-24769): a
            // file capability must not be able to raise a non-root process above the set.
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS,
                             "inheritable": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": req.readonly_rootfs},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": input.cgroups_path,
            "resources": resources(&req.limits),
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
            "seccomp": super::seccomp::profile(),
        },
    })
}

fn resources(limits: &Limits) -> Value {
    let mut r = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(m) = limits.memory {
        r["memory"] = json!({"limit": m, "swap": m});
    }
    if let Some(c) = limits.cpus {
        let period: u64 = 100_000;
        r["cpu"] = json!({"quota": (c * period as f64).round() as i64, "period": period});
    }
    if let Some(p) = limits.pids {
        r["pids"] = json!({"limit": p});
    }
    r
}

/// Docker's environment defaults: PATH, HOSTNAME, HOME when the image/caller don't set them.
pub(crate) fn env(given: &[String], hostname: &str, home: &str) -> Vec<String> {
    let has = |k: &str| given.iter().any(|e| e.split_once('=').map(|(n, _)| n) == Some(k));
    let mut env = Vec::new();
    if !has("PATH") {
        env.push(format!("PATH={}", crate::request::DEFAULT_PATH));
    }
    if !has("HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env.extend(given.iter().cloned());
    if !has("HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// /etc/hosts, /etc/hostname, /etc/resolv.conf contents, written into `dir`.
pub(crate) fn write_etc_files(
    dir: &Path,
    network: Network,
    hostname: &str,
    with_hostname_file: bool,
) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (hosts, resolv) = match network {
        Network::Host => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            host_resolv,
        ),
        Network::None => {
            let hosts = format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
                 ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
            );
            (hosts, filter_resolv(&host_resolv))
        }
    };
    let hostname_file = match network {
        Network::Host => std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| format!("{hostname}\n")),
        Network::None => format!("{hostname}\n"),
    };
    let mut out = Vec::new();
    for (name, content) in [
        ("hosts", hosts),
        ("hostname", hostname_file),
        ("resolv.conf", resolv),
    ] {
        if name == "hostname" && !with_hostname_file {
            continue;
        }
        let p = dir.join(name);
        std::fs::write(&p, content)?;
        out.push((PathBuf::from("/etc").join(name), p));
    }
    Ok(out)
}

/// Like docker: loopback nameservers mean nothing in another network namespace; fall back to public
/// resolvers when none remain.
fn filter_resolv(s: &str) -> String {
    let mut out = String::new();
    let mut ns = 0;
    for line in s.lines() {
        let mut f = line.split_whitespace();
        if f.next() == Some("nameserver") {
            let addr = f.next().unwrap_or("");
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            ns += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if ns == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_defaults() {
        let e = env(&["A=1".into(), "PATH=/x".into()], "h", "/root");
        assert_eq!(e, vec!["HOSTNAME=h", "A=1", "PATH=/x", "HOME=/root"]);
    }

    #[test]
    fn resolv_drops_loopback() {
        assert_eq!(
            filter_resolv("nameserver 127.0.0.53\nsearch x\n"),
            "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(filter_resolv("nameserver 10.0.0.1\n"), "nameserver 10.0.0.1\n");
    }

    #[test]
    fn cpu_quota() {
        let r = resources(&Limits {
            cpus: Some(0.5),
            ..Default::default()
        });
        assert_eq!(r["cpu"]["quota"], 50000);
    }
}
