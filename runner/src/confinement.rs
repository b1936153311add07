//! What `docker run` lets a user change about a container's confinement and resources beyond
//! [`crate::Limits`]: capabilities, privileged mode, the seccomp profile, rlimits, /dev/shm, devices,
//! cpusets, swap and block-I/O throttles, the cgroup parent. Plain data in the request; the helper's
//! spec writer applies it ([`Confinement::capabilities`] and friends are the one place each rule lives).

use serde::{Deserialize, Serialize};

/// Every capability Linux 6.x knows, in number order.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
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

/// The seccomp filter a container gets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub enum Seccomp {
    /// lamina's default profile.
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// An OCI `LinuxSeccomp` object (converted from docker's profile format when given one).
    Profile(serde_json::Value),
}

/// An rlimit (`--ulimit nofile=100:200`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    /// `RLIMIT_NOFILE` and so on.
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// A host device made in the container's /dev (`--device /dev/fuse[:/dev/fuse][:rwm]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    pub path: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    /// Cgroup access: some of `rwm`.
    pub access: String,
}

/// A block device's bytes-per-second limit (`--device-read-bps /dev/sda:1mb`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Throttle {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// The request's confinement and resource tuning; the default is docker's default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Confinement {
    /// Added to docker's default set: `CAP_NET_ADMIN` form, or `ALL`.
    pub cap_add: Vec<String>,
    /// Removed from it, or `ALL`.
    pub cap_drop: Vec<String>,
    /// Every capability, no seccomp filter, no masked or read-only /proc paths, writable /sys, every
    /// device allowed by the device cgroup.
    pub privileged: bool,
    pub seccomp: Seccomp,
    /// Let setuid binaries and file capabilities raise privileges (no_new_privs off). lamina's
    /// default is on, stricter than docker's.
    pub allow_new_privileges: bool,
    pub ulimits: Vec<Ulimit>,
    /// Size of /dev/shm in bytes (docker's default 64 MiB).
    pub shm_size: Option<u64>,
    pub devices: Vec<Device>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Memory plus swap in bytes; -1 = unlimited swap (docker's `--memory-swap`).
    pub memory_swap: Option<i64>,
    /// `--blkio-weight` (10–1000).
    pub blkio_weight: Option<u16>,
    pub device_read_bps: Vec<Throttle>,
    pub device_write_bps: Vec<Throttle>,
    /// The cgroup the container's cgroup is made under (`--cgroup-parent`), instead of `/lamina`.
    pub cgroup_parent: Option<String>,
}

/// Why a capability name is refused.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability {name:?} (e.g. NET_ADMIN, CAP_SYS_PTRACE or ALL)")]
pub struct UnknownCapability {
    pub name: String,
}

/// `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all name CAP_NET_ADMIN; `ALL` stays `ALL`.
pub fn normalize_capability(name: &str) -> Result<String, UnknownCapability> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(UnknownCapability {
            name: name.to_owned(),
        })
    }
}

/// The capabilities in this process's bounding set (what a child can ever hold): `ALL` and
/// `--privileged` mean these, as docker's do, so lamina inside a container without, say,
/// CAP_SYS_RESOURCE still starts privileged containers.
pub fn bounding_set() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

impl Confinement {
    /// The capability set, docker's rules: start from the default (or everything when privileged),
    /// drop, then add; `ALL` on either side means every capability of the bounding set.
    pub fn capabilities(&self) -> Vec<String> {
        let everything = || bounding_set().into_iter().map(str::to_owned).collect::<Vec<_>>();
        if self.privileged {
            return everything();
        }
        let all = |v: &[String]| v.iter().any(|c| c == "ALL");
        let mut caps: Vec<String> = if all(&self.cap_drop) {
            Vec::new()
        } else {
            DEFAULT_CAPS
                .iter()
                .filter(|c| !self.cap_drop.iter().any(|d| d == *c))
                .map(|c| c.to_string())
                .collect()
        };
        let added: Vec<String> = if all(&self.cap_add) {
            everything()
        } else {
            self.cap_add.clone()
        };
        for c in added {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
        caps
    }
}

/// The OCI form of a seccomp profile given in docker's format (`archMap`, `syscalls` with
/// `includes`/`excludes`); OCI-form profiles pass through. Rules conditional on capabilities or
/// kernel versions are kept when their condition holds for `caps` (their `excludes` too).
pub fn seccomp_from_json(v: serde_json::Value, caps: &[String]) -> serde_json::Value {
    let Some(obj) = v.as_object() else { return v };
    if !obj.contains_key("archMap")
        && !obj
            .values()
            .any(|s| s.get(0).is_some_and(|e| e.get("includes").is_some()))
    {
        return v;
    }
    let mut out = serde_json::Map::new();
    if let Some(d) = obj.get("defaultAction") {
        out.insert("defaultAction".into(), d.clone());
    }
    if let Some(e) = obj.get("defaultErrnoRet") {
        out.insert("defaultErrnoRet".into(), e.clone());
    }
    let mut arches = Vec::new();
    for a in obj
        .get("archMap")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(arch) = a.get("architecture") {
            arches.push(arch.clone());
        }
        arches.extend(
            a.get("subArchitectures")
                .and_then(|s| s.as_array())
                .into_iter()
                .flatten()
                .cloned(),
        );
    }
    if let Some(a) = obj.get("architectures") {
        arches.extend(a.as_array().into_iter().flatten().cloned());
    }
    out.insert("architectures".into(), serde_json::Value::Array(arches));
    let holds = |cond: Option<&serde_json::Value>| -> bool {
        let Some(c) = cond else { return true };
        c.get("caps")
            .and_then(|v| v.as_array())
            .map(|need| {
                need.iter()
                    .filter_map(|n| n.as_str())
                    .all(|n| caps.iter().any(|have| have == n))
            })
            .unwrap_or(true)
            && c.get("arches")
                .is_none_or(|a| a.as_array().is_some_and(|a| !a.is_empty()))
    };
    let mut syscalls = Vec::new();
    for s in obj
        .get("syscalls")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
    {
        let included = holds(
            s.get("includes")
                .filter(|i| i.as_object().is_some_and(|o| !o.is_empty())),
        );
        let excluded = s
            .get("excludes")
            .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
            .is_some_and(|e| holds(Some(e)));
        if !included || excluded {
            continue;
        }
        let mut rule = serde_json::Map::new();
        for k in ["names", "action", "args", "errnoRet"] {
            if let Some(v) = s.get(k).filter(|v| !v.is_null()) {
                rule.insert(k.into(), v.clone());
            }
        }
        syscalls.push(serde_json::Value::Object(rule));
    }
    out.insert("syscalls".into(), serde_json::Value::Array(syscalls));
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_normalise() {
        assert_eq!(normalize_capability("net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(normalize_capability("CAP_SYS_PTRACE").unwrap(), "CAP_SYS_PTRACE");
        assert_eq!(normalize_capability("all").unwrap(), "ALL");
        assert!(normalize_capability("FLY").is_err());
    }

    #[test]
    fn drop_then_add_as_docker() {
        let c = Confinement {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["CAP_NET_BIND_SERVICE".into()],
            ..Default::default()
        };
        assert_eq!(c.capabilities(), ["CAP_NET_BIND_SERVICE"]);
        let c = Confinement {
            cap_drop: vec!["CAP_CHOWN".into()],
            cap_add: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        };
        let caps = c.capabilities();
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        let p = Confinement {
            privileged: true,
            cap_drop: vec!["ALL".into()],
            ..Default::default()
        };
        assert_eq!(p.capabilities().len(), bounding_set().len());
    }

    #[test]
    fn docker_profiles_become_oci_and_keep_rules_whose_caps_hold() {
        let docker = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}},
            ],
        });
        let oci = seccomp_from_json(docker, &["CAP_CHOWN".into()]);
        assert_eq!(
            oci["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        let names: Vec<_> = oci["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["names"][0].clone())
            .collect();
        assert_eq!(names, [serde_json::json!("read")]);
        let plain = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []});
        assert_eq!(seccomp_from_json(plain.clone(), &[]), plain);
    }
}
