//! Container records under `<store>/containers/<id>/`: `meta.json` (what was asked for), `status.json`
//! (written by the runner's monitor), `output.log` (stdout and stderr of detached containers, framed), `upper/`, `work/`,
//! and `attach.sock` while a detached `-t` container's monitor serves its terminal.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    /// Published ports as `IP:HOST->CONTAINER/proto`.
    pub ports: Vec<String>,
    /// Networks joined at start (`bridge` for the default one); empty for none/host.
    #[serde(default)]
    pub networks: Vec<String>,
    pub auto_remove: bool,
    pub detached: bool,
    /// Started with `-t`: it has a terminal `lamina attach` can reach while it runs detached.
    #[serde(default)]
    pub tty: bool,
    /// `--label KEY=VALUE`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--stop-signal` or the image's STOPSIGNAL: what `stop` sends first.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: `stop`'s default grace period, seconds.
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// The two halves of `command` (`--entrypoint` or the image's, then the arguments or the
    /// image's CMD), kept apart for `inspect` and `commit`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
}

/// A detached container's output, as `lamina_runner::logs` frames, in the container's dir.
pub const LOG_FILE: &str = "output.log";

/// Written by `lamina stop`: the container's monitor restarts it no more.
pub const STOP_FILE: &str = "stopped";

/// A detached container's health, written by its monitor (`lamina_runner::health`).
pub const HEALTH_FILE: &str = "health.json";

/// The socket a detached `-t` container's monitor serves its terminal on, in the container's dir.
pub const ATTACH_SOCKET: &str = "attach.sock";

pub struct Record {
    pub dir: PathBuf,
    pub meta: Meta,
    pub status: Option<lamina_runner::ContainerStatus>,
}

impl Record {
    /// Running = the monitor said so and is still alive (a monitor killed with SIGKILL can't say).
    pub fn running(&self) -> bool {
        match &self.status {
            Some(s) => s.running && pid_alive(s.monitor_pid),
            None => false,
        }
    }

    /// Running, or between two runs of its restart policy: its monitor still has work to do.
    pub fn active(&self) -> bool {
        match &self.status {
            Some(s) => (s.running || s.restarting) && pid_alive(s.monitor_pid),
            None => false,
        }
    }

    /// Between two runs of its restart policy.
    pub fn restarting(&self) -> bool {
        self.active() && !self.running()
    }

    /// The monitor's last word on the container's health, if it has a health check.
    pub fn health(&self) -> Option<lamina_runner::health::HealthState> {
        let bytes = std::fs::read(self.dir.join(HEALTH_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Running with its cgroup frozen (`lamina pause`).
    pub fn paused(&self) -> bool {
        self.cgroup().is_some_and(|c| c.frozen())
    }

    /// The running container's cgroup, found from its init.
    pub fn cgroup(&self) -> Option<lamina_runner::cgroupfs::Cgroup> {
        let pid = self.pid()?;
        lamina_runner::cgroupfs::Cgroup::of_pid(
            pid,
            std::path::Path::new(lamina_runner::cgroupfs::MOUNT_ROOT),
        )
        .ok()
    }

    pub fn pid(&self) -> Option<i32> {
        self.status
            .as_ref()
            .filter(|_| self.running())
            .and_then(|s| s.pid)
    }
}

pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

pub fn load(dir: &Path) -> anyhow::Result<Record> {
    let meta_path = dir.join("meta.json");
    let meta: Meta = serde_json::from_slice(
        &std::fs::read(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?,
    )
    .with_context(|| format!("parsing {}", meta_path.display()))?;
    let status = std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(Record {
        dir: dir.to_path_buf(),
        meta,
        status,
    })
}

pub fn list(root: &Path) -> anyhow::Result<Vec<Record>> {
    let dir = containers_dir(root);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        if let Ok(r) = load(&e.path()) {
            out.push(r);
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.meta.created));
    Ok(out)
}

/// Find by full id, unique id prefix, or name.
pub fn find(root: &Path, key: &str) -> anyhow::Result<Record> {
    let all = list(root)?;
    if let Some(i) = all.iter().position(|r| r.meta.name == key || r.meta.id == key) {
        return Ok(all.into_iter().nth(i).expect("index from position"));
    }
    let mut matches: Vec<Record> = all.into_iter().filter(|r| r.meta.id.starts_with(key)).collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => bail!("no such container: {key}"),
        _ => bail!("container id prefix {key} is ambiguous"),
    }
}

pub fn write_meta(dir: &Path, meta: &Meta) -> anyhow::Result<()> {
    let p = dir.join("meta.json");
    std::fs::write(&p, serde_json::to_vec_pretty(meta)?).with_context(|| format!("writing {}", p.display()))
}

/// Remove a container's directory (upper dir included).
pub fn remove(rec: &Record) -> anyhow::Result<()> {
    std::fs::remove_dir_all(&rec.dir).with_context(|| format!("removing {}", rec.dir.display()))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Docker-style random names are overkill; `lamina_<first 8 of id>` is unique enough and stable.
pub fn default_name(id: &str) -> String {
    format!("lamina_{}", &id[..8])
}
