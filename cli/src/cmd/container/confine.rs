//! `run`'s confinement and resource flags (docker's names and syntax) → [`Confinement`].

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use anyhow::{Context, bail};
use lamina_runner::Confinement;
use lamina_runner::confinement::{Device, Seccomp, Throttle, Ulimit, normalize_capability};

use super::opts::parse_size;

/// The flags, as clap gives them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Flags {
    /// Add a Linux capability (NET_ADMIN, CAP_SYS_PTRACE, ALL).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (or ALL).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability, no seccomp filter, no masked /proc paths, all devices allowed.
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// An rlimit: NAME=SOFT[:HARD] (nofile, nproc, core, memlock, stack, …).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (default 64m).
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A host device in the container: HOST[:CONTAINER][:PERMS], PERMS some of rwm.
    #[arg(long, value_name = "HOST[:CONTAINER][:rwm]")]
    pub device: Vec<String>,
    /// CPUs the container may run on (0-3, 0,1).
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long = "cpuset-mems", value_name = "MEMS")]
    pub cpuset_mems: Option<String>,
    /// Memory plus swap (e.g. 1g), or -1 for unlimited swap.
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Block I/O weight, 10 to 1000.
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// Limit reads from a device: PATH:RATE (e.g. /dev/sda:1mb).
    #[arg(long = "device-read-bps", value_name = "PATH:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit writes to a device: PATH:RATE.
    #[arg(long = "device-write-bps", value_name = "PATH:RATE")]
    pub device_write_bps: Vec<String>,
    /// The cgroup to make the container's cgroup under (default /lamina).
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
}

impl Flags {
    pub fn confinement(&self) -> anyhow::Result<Confinement> {
        let caps = |v: &[String]| {
            v.iter()
                .map(|c| normalize_capability(c).map_err(anyhow::Error::from))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let cap_add = caps(&self.cap_add)?;
        let bounding = lamina_runner::confinement::bounding_set();
        if let Some(missing) = cap_add
            .iter()
            .find(|c| *c != "ALL" && !bounding.contains(&c.as_str()))
        {
            bail!(
                "--cap-add {missing}: lamina itself does not hold it (not in its bounding set), so no container can"
            );
        }
        let mut c = Confinement {
            cap_add,
            cap_drop: caps(&self.cap_drop)?,
            privileged: self.privileged,
            ulimits: self
                .ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<anyhow::Result<_>>()?,
            shm_size: self.shm_size.as_deref().map(parse_size).transpose()?,
            devices: self
                .device
                .iter()
                .map(|d| parse_device(d))
                .collect::<anyhow::Result<_>>()?,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            memory_swap: match self.memory_swap.as_deref() {
                None => None,
                Some("-1") => Some(-1),
                Some(s) => Some(parse_size(s)? as i64),
            },
            blkio_weight: self.blkio_weight,
            device_read_bps: self
                .device_read_bps
                .iter()
                .map(|t| parse_throttle(t, "--device-read-bps"))
                .collect::<anyhow::Result<_>>()?,
            device_write_bps: self
                .device_write_bps
                .iter()
                .map(|t| parse_throttle(t, "--device-write-bps"))
                .collect::<anyhow::Result<_>>()?,
            cgroup_parent: self.cgroup_parent.clone(),
            ..Default::default()
        };
        if let Some(w) = c.blkio_weight {
            if !(10..=1000).contains(&w) {
                bail!("--blkio-weight {w}: must be between 10 and 1000");
            }
            if !blkio_weight_supported() {
                // docker's behaviour and wording: a warning, and the weight is dropped.
                eprintln!(
                    "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
                );
                c.blkio_weight = None;
            }
        }
        for opt in &self.security_opt {
            let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), "true"));
            match k {
                "no-new-privileges" => {
                    c.allow_new_privileges = !v
                        .parse::<bool>()
                        .with_context(|| format!("--security-opt {opt}: expected true or false"))?;
                }
                "seccomp" if v == "unconfined" => c.seccomp = Seccomp::Unconfined,
                "seccomp" => {
                    let text = std::fs::read_to_string(v)
                        .with_context(|| format!("--security-opt {opt}: reading the seccomp profile {v}"))?;
                    let json = serde_json::from_str(&text).with_context(|| {
                        format!("--security-opt {opt}: {v} is not a JSON seccomp profile")
                    })?;
                    c.seccomp = Seccomp::Profile(json);
                }
                "apparmor" | "label" => {
                    eprintln!(
                        "lamina: --security-opt {opt} ignored: lamina applies no LSM profile of its own"
                    );
                }
                _ => bail!("--security-opt {opt}: unknown option (no-new-privileges, seccomp=…)"),
            }
        }
        if c.privileged {
            eprintln!(
                "lamina: --privileged: the container gets every capability, no seccomp filter and every device"
            );
        }
        Ok(c)
    }
}

/// Whether the kernel has a weight file for block I/O (BFQ or CFQ on v1, io.weight on v2).
fn blkio_weight_supported() -> bool {
    [
        "/sys/fs/cgroup/blkio/blkio.weight",
        "/sys/fs/cgroup/blkio/blkio.bfq.weight",
        "/sys/fs/cgroup/io.weight",
        "/sys/fs/cgroup/io.bfq.weight",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
}

/// `nofile=100:200`, `nproc=50` (soft = hard).
fn parse_ulimit(s: &str) -> anyhow::Result<Ulimit> {
    let bad = || format!("--ulimit {s:?}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048");
    let (name, vals) = s.split_once('=').with_context(bad)?;
    let kind = match name {
        "as" | "core" | "cpu" | "data" | "fsize" | "locks" | "memlock" | "msgqueue" | "nice" | "nofile"
        | "nproc" | "rss" | "rtprio" | "rttime" | "sigpending" | "stack" => {
            format!("RLIMIT_{}", name.to_uppercase())
        }
        _ => bail!("--ulimit {s:?}: unknown limit {name:?}"),
    };
    let num = |v: &str| -> anyhow::Result<u64> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse::<u64>().with_context(bad)
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        bail!("--ulimit {s:?}: the soft limit is above the hard one");
    }
    Ok(Ulimit { kind, soft, hard })
}

/// `/dev/fuse`, `/dev/sdb:/dev/xvdc`, `/dev/fuse:rw`, `/dev/a:/dev/b:rwm`.
fn parse_device(s: &str) -> anyhow::Result<Device> {
    let parts: Vec<&str> = s.split(':').collect();
    let perms = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, inside, access) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if perms(p) => (*h, *c, *p),
        _ => bail!("--device {s:?}: expected HOST[:CONTAINER][:PERMS]"),
    };
    if !inside.starts_with("/dev/") {
        bail!("--device {s:?}: the container path must be under /dev/");
    }
    let meta = std::fs::metadata(host).with_context(|| format!("--device {s:?}: {host}"))?;
    let kind = if meta.file_type().is_char_device() {
        'c'
    } else if meta.file_type().is_block_device() {
        'b'
    } else {
        bail!("--device {s:?}: {host} is not a device");
    };
    let rdev = meta.rdev();
    Ok(Device {
        path: inside.to_owned(),
        kind,
        major: rustix::fs::major(rdev) as i64,
        minor: rustix::fs::minor(rdev) as i64,
        file_mode: meta.permissions().mode() & 0o7777,
        access: access.to_owned(),
    })
}

/// `/dev/sda:1mb` → the device's numbers and bytes per second.
fn parse_throttle(s: &str, flag: &str) -> anyhow::Result<Throttle> {
    let (path, rate) = s
        .rsplit_once(':')
        .with_context(|| format!("{flag} {s:?}: expected PATH:RATE, e.g. /dev/sda:1mb"))?;
    let meta = std::fs::metadata(path).with_context(|| format!("{flag} {s:?}: {path}"))?;
    if !meta.file_type().is_block_device() {
        bail!("{flag} {s:?}: {path} is not a block device");
    }
    let rdev = meta.rdev();
    Ok(Throttle {
        major: rustix::fs::major(rdev) as i64,
        minor: rustix::fs::minor(rdev) as i64,
        rate: parse_size(rate).with_context(|| format!("{flag} {s:?}: rate"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_parse_as_docker() {
        let u = parse_ulimit("nofile=100:200").unwrap();
        assert_eq!((u.kind.as_str(), u.soft, u.hard), ("RLIMIT_NOFILE", 100, 200));
        let u = parse_ulimit("nproc=50").unwrap();
        assert_eq!((u.soft, u.hard), (50, 50));
        assert!(parse_ulimit("nofile=200:100").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
    }

    #[test]
    fn devices_take_dockers_three_forms() {
        let d = parse_device("/dev/null").unwrap();
        assert_eq!((d.kind, d.major, d.minor, d.access.as_str()), ('c', 1, 3, "rwm"));
        let d = parse_device("/dev/null:/dev/mynull:r").unwrap();
        assert_eq!((d.path.as_str(), d.access.as_str()), ("/dev/mynull", "r"));
        assert_eq!(parse_device("/dev/null:rw").unwrap().path, "/dev/null");
        assert!(parse_device("/etc/passwd").is_err());
        assert!(parse_device("/dev/null:/tmp/x").is_err());
    }
}
