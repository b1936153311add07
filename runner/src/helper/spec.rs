//! The OCI runtime spec (config.json) for one run, shaped like the one docker generates.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use std::net::{IpAddr, Ipv4Addr};

use super::user::ExecUser;
use crate::confinement::{Confinement, Seccomp, seccomp_from_json};
use crate::network::names;
use crate::request::{Limits, NetOptions, Network, RunRequest};

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
    /// Set when the helper runs in a user namespace (rootless or inside a container).
    pub rootless: Option<&'a super::rootless::Rootless>,
}

pub(crate) fn build(input: &SpecInput<'_>) -> Value {
    let req = input.req;
    let (_, nofile_hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((NOFILE, NOFILE));
    let nofile = NOFILE.min(nofile_hard);
    let conf = &req.confinement;
    let caps = conf.capabilities();
    let mut rlimits = vec![json!({"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile})];
    for u in &conf.ulimits {
        rlimits.retain(|r| r["type"] != u.kind.as_str());
        rlimits.push(json!({"type": u.kind, "hard": u.hard, "soft": u.soft}));
    }
    let shm = format!("size={}k", conf.shm_size.map_or(65536, |b| b.div_ceil(1024)));
    let sys = if conf.privileged { "rw" } else { "ro" };
    // Only the kernel filesystems: binds, tmpfs and /etc files are made from fds by
    // `super::mounts` before the container starts, never by path in the runtime.
    let rootless = input.rootless;
    let pid_ns = rootless.is_none_or(|r| r.fresh_proc);
    let proc_mount = if pid_ns {
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]})
    } else {
        // No PID namespace: the kernel refuses a fresh procfs where the visible one has masked
        // paths (a container without `unmask`), so bind the existing one; MASKED and READONLY below
        // still cover it. The step then sees the other processes of its own (unprivileged) user.
        json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "nosuid", "noexec", "nodev"]})
    };
    // sysfs may only be mounted by the user namespace that owns the network namespace.
    let sys_mount = if rootless.is_some() && req.network == Network::Host {
        json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    } else {
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys]})
    };
    // gid 5 (tty) exists only when a range is mapped.
    let devpts_gid = rootless.is_none_or(|r| r.range);
    let mut devpts = vec!["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
    if devpts_gid {
        devpts.push("gid=5");
    }
    let mounts = vec![
        proc_mount,
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts}),
        sys_mount,
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", shm]}),
    ];
    let mut namespaces = vec![json!({"type": "ipc"})];
    if pid_ns {
        namespaces.insert(0, json!({"type": "pid"}));
    }
    namespaces.extend([json!({"type": "uts"}), json!({"type": "mount"})]);
    // Supplementary groups the namespace does not map cannot be set (and none at all with
    // setgroups denied, in single-id mode).
    let additional_gids: Vec<u32> = match rootless {
        Some(r) if !r.range => Vec::new(),
        Some(_) => input
            .user
            .additional_gids
            .iter()
            .copied()
            .filter(|g| *g <= crate::userns::RANGE_SIZE)
            .collect(),
        None => input.user.additional_gids.clone(),
    };
    if req.network != Network::Host {
        namespaces.push(json!({"type": "network"}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": req.process.tty,
            "user": {"uid": input.user.uid, "gid": input.user.gid, "additionalGids": additional_gids},
            "args": req.process.args,
            "env": input.env,
            "cwd": input.cwd,
            // Inheritable and ambient stay empty, as in docker since 20.10 (CVE-2022-24769): a
            // file capability must not be able to raise a non-root process above the set.
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "inheritable": [], "ambient": []},
            "rlimits": rlimits,
            "noNewPrivileges": !conf.allow_new_privileges,
        },
        "root": {"path": "rootfs", "readonly": req.readonly_rootfs},
        "hostname": if rootless.is_none_or(|r| r.hostname) { json!(input.hostname) } else { Value::Null },
        "mounts": mounts,
        "linux": linux(input, namespaces, &caps),
    })
}

/// The `linux` object: cgroup, resources, namespaces, devices, masked paths, seccomp.
fn linux(input: &SpecInput<'_>, namespaces: Vec<Value>, caps: &[String]) -> Value {
    let conf = &input.req.confinement;
    let mut l = json!({
        "cgroupsPath": input.cgroups_path,
        "resources": if input.rootless.is_some_and(|r| !r.cgroups) {
            json!({})
        } else {
            resources(&input.req.limits, conf)
        },
        "namespaces": namespaces,
    });
    if !conf.privileged {
        l["maskedPaths"] = json!(MASKED);
        l["readonlyPaths"] = json!(READONLY);
        let seccomp = match &conf.seccomp {
            Seccomp::Default => Some(super::seccomp::profile()),
            Seccomp::Unconfined => None,
            Seccomp::Profile(p) => Some(seccomp_from_json(p.clone(), caps)),
        };
        if let Some(s) = seccomp {
            l["seccomp"] = s;
        }
    }
    if !conf.devices.is_empty() {
        l["devices"] = conf
            .devices
            .iter()
            .map(|d| {
                json!({"path": d.path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
                       "fileMode": d.file_mode, "uid": 0, "gid": 0})
            })
            .collect();
    }
    l
}

fn resources(limits: &Limits, conf: &Confinement) -> Value {
    let mut devices = vec![json!({"allow": conf.privileged, "access": "rwm"})];
    for d in conf.devices.iter().filter(|_| !conf.privileged) {
        devices.push(
            json!({"allow": true, "type": d.kind.to_string(), "major": d.major,
                            "minor": d.minor, "access": d.access}),
        );
    }
    let mut r = json!({"devices": devices});
    if let Some(m) = limits.memory {
        // Docker: without --memory-swap the swap limit equals the memory limit (no swap use).
        let swap = conf.memory_swap.unwrap_or(m as i64);
        r["memory"] = json!({"limit": m, "swap": swap});
    }
    let mut cpu = serde_json::Map::new();
    if let Some(c) = limits.cpus {
        let period: u64 = 100_000;
        cpu.insert("quota".into(), json!((c * period as f64).round() as i64));
        cpu.insert("period".into(), json!(period));
    }
    if let Some(c) = &conf.cpuset_cpus {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = &conf.cpuset_mems {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = limits.pids {
        r["pids"] = json!({"limit": p});
    }
    let throttles = |t: &[crate::confinement::Throttle]| -> Vec<Value> {
        t.iter()
            .map(|t| json!({"major": t.major, "minor": t.minor, "rate": t.rate}))
            .collect()
    };
    if conf.blkio_weight.is_some() || !conf.device_read_bps.is_empty() || !conf.device_write_bps.is_empty() {
        let mut b = json!({});
        if let Some(w) = conf.blkio_weight {
            b["weight"] = json!(w);
        }
        if !conf.device_read_bps.is_empty() {
            b["throttleReadBpsDevice"] = json!(throttles(&conf.device_read_bps));
        }
        if !conf.device_write_bps.is_empty() {
            b["throttleWriteBpsDevice"] = json!(throttles(&conf.device_write_bps));
        }
        r["blockIO"] = b;
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

/// /etc/hosts, /etc/hostname, /etc/resolv.conf contents, written into `dir`. A bridge container's
/// /etc/hosts is its networks' file instead (`crate::network`), written once it has addresses.
pub(crate) fn write_etc_files(
    dir: &Path,
    network: Network,
    hostname: &str,
    with_hostname_file: bool,
    net: &NetOptions,
) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host = network == Network::Host;
    let resolv = names::resolv(&host_resolv, &net.dns, &net.dns_search, &net.dns_options, host);
    let hosts = if host {
        let mut h = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        for (name, ip) in &net.extra_hosts {
            h += &format!("{ip}\t{name}\n");
        }
        h
    } else {
        let own = [(
            IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
            vec![hostname.to_string()],
        )];
        names::hosts(&own, &net.extra_hosts, &[])
    };
    let hostname_file = if host {
        std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| format!("{hostname}\n"))
    } else {
        format!("{hostname}\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_defaults() {
        let e = env(&["A=1".into(), "PATH=/x".into()], "h", "/root");
        assert_eq!(e, vec!["HOSTNAME=h", "A=1", "PATH=/x", "HOME=/root"]);
    }

    #[test]
    fn etc_files_carry_extra_hosts() {
        let tmp = tempfile::tempdir().unwrap();
        let net = NetOptions {
            extra_hosts: vec![("db".into(), "192.0.2.7".parse().unwrap())],
            ..Default::default()
        };
        let files = write_etc_files(tmp.path(), Network::None, "box", false, &net).unwrap();
        assert_eq!(files.len(), 2, "no /etc/hostname asked for");
        let hosts = std::fs::read_to_string(tmp.path().join("hosts")).unwrap();
        assert!(
            hosts.contains("127.0.1.1\tbox\n") && hosts.contains("192.0.2.7\tdb\n"),
            "{hosts}"
        );
    }

    #[test]
    fn cpu_quota() {
        let r = resources(
            &Limits {
                cpus: Some(0.5),
                ..Default::default()
            },
            &Confinement::default(),
        );
        assert_eq!(r["cpu"]["quota"], 50000);
    }
}
