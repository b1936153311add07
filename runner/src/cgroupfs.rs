//! A running container's cgroup seen from outside: resource counters for `lamina stats`, the
//! processes for `lamina top`, and the freezer for `lamina pause`/`unpause`.
//!
//! The cgroup is found from the container's init (`/proc/PID/cgroup`), so `--cgroup-parent` and
//! rootless stand-ins need no second copy of the naming rule; v1 (one directory per controller) and
//! v2 (one unified directory) are both read. Every path hangs off a mount root the caller passes, so
//! the parsing is tested on a temp dir.

use std::path::{Path, PathBuf};

/// The cgroup mount root on a normal host.
pub const MOUNT_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("process {pid} is in no {controller} cgroup")]
    NoController { pid: i32, controller: &'static str },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One container's cgroup directories.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pid: i32,
    /// v2: the unified directory.
    unified: Option<PathBuf>,
    /// v1: (controllers as the hierarchy names them, e.g. `cpu,cpuacct`; directory).
    v1: Vec<(String, PathBuf)>,
}

/// Counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time used by every task, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, page cache that can be dropped not counted (docker's figure).
    pub memory: u64,
    /// The memory limit; `None` = unlimited.
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub block_read: u64,
    pub block_write: u64,
}

impl Cgroup {
    /// The cgroup of process `pid` (from `/proc/PID/cgroup`), under `mount_root`.
    pub fn of_pid(pid: i32, mount_root: &Path) -> Result<Cgroup, CgroupError> {
        let p = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = std::fs::read_to_string(&p).map_err(io("read", &p))?;
        Ok(Cgroup::parse(pid, &text, mount_root))
    }

    /// `/proc/PID/cgroup` text → directories. v2 only where the root is a unified mount (a hybrid
    /// host also lists `0::/` for its half-used unified tree).
    pub fn parse(pid: i32, text: &str, mount_root: &Path) -> Cgroup {
        let v2_host = mount_root.join("cgroup.controllers").exists();
        let mut cg = Cgroup {
            pid,
            unified: None,
            v1: Vec::new(),
        };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if ctrls.is_empty() {
                if v2_host {
                    cg.unified = Some(mount_root.join(rel));
                }
            } else if !v2_host && !ctrls.starts_with("name=") {
                cg.v1.push((ctrls.to_string(), mount_root.join(ctrls).join(rel)));
            }
        }
        cg
    }

    /// The directory of `controller` (v1), or the unified one (v2).
    fn dir(&self, controller: &'static str) -> Result<&Path, CgroupError> {
        if let Some(u) = &self.unified {
            return Ok(u);
        }
        self.v1
            .iter()
            .find(|(c, _)| c.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
            .ok_or(CgroupError::NoController {
                pid: self.pid,
                controller,
            })
    }

    fn read(&self, controller: &'static str, file: &str) -> Result<String, CgroupError> {
        let p = self.dir(controller)?.join(file);
        std::fs::read_to_string(&p).map_err(io("read", &p))
    }

    /// Host pids of every process in the container.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(self
            .read("pids", "cgroup.procs")?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// The counters; one that the kernel doesn't offer reads as 0.
    pub fn stats(&self) -> Stats {
        let num = |s: Result<String, CgroupError>| s.ok().and_then(|s| s.trim().parse::<u64>().ok());
        let stat_field = |s: &str, key: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut st = Stats::default();
        if self.unified.is_some() {
            let cpu = self.read("cpu", "cpu.stat").unwrap_or_default();
            st.cpu_ns = stat_field(&cpu, "usage_usec").unwrap_or(0) * 1000;
            let mstat = self.read("memory", "memory.stat").unwrap_or_default();
            let cur = num(self.read("memory", "memory.current")).unwrap_or(0);
            st.memory = cur.saturating_sub(stat_field(&mstat, "inactive_file").unwrap_or(0));
            st.memory_limit = num(self.read("memory", "memory.max"));
            for l in self.read("io", "io.stat").unwrap_or_default().lines() {
                for kv in l.split_whitespace() {
                    match kv.split_once('=') {
                        Some(("rbytes", v)) => st.block_read += v.parse::<u64>().unwrap_or(0),
                        Some(("wbytes", v)) => st.block_write += v.parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        } else {
            st.cpu_ns = num(self.read("cpuacct", "cpuacct.usage")).unwrap_or(0);
            let mstat = self.read("memory", "memory.stat").unwrap_or_default();
            let usage = num(self.read("memory", "memory.usage_in_bytes")).unwrap_or(0);
            st.memory = usage.saturating_sub(stat_field(&mstat, "total_inactive_file").unwrap_or(0));
            // v1 says "unlimited" with the largest page-aligned i64.
            st.memory_limit = num(self.read("memory", "memory.limit_in_bytes")).filter(|&l| l < (1u64 << 62));
            for l in self
                .read("blkio", "blkio.throttle.io_service_bytes")
                .unwrap_or_default()
                .lines()
            {
                let f: Vec<&str> = l.split_whitespace().collect();
                if let [_, op, v] = f.as_slice() {
                    let v = v.parse::<u64>().unwrap_or(0);
                    match *op {
                        "Read" => st.block_read += v,
                        "Write" => st.block_write += v,
                        _ => {}
                    }
                }
            }
        }
        st.pids = num(self.read("pids", "pids.current")).unwrap_or(0);
        st
    }

    /// Freezes (`true`) or thaws every process in the container.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value) = if self.unified.is_some() {
            ("cgroup.freeze", if frozen { "1" } else { "0" })
        } else {
            ("freezer.state", if frozen { "FROZEN" } else { "THAWED" })
        };
        let p = self.dir("freezer")?.join(file);
        std::fs::write(&p, value).map_err(io("write", &p))
    }

    /// Whether the container is frozen (or freezing).
    pub fn frozen(&self) -> bool {
        if self.unified.is_some() {
            self.read("freezer", "cgroup.events")
                .is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            self.read("freezer", "freezer.state")
                .is_ok_and(|s| s.trim() != "THAWED")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_counters_and_freezer() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let text = "9:name=systemd:/\n8:pids:/lamina/c\n6:freezer:/lamina/c\n4:memory:/lamina/c\n\
                    2:cpu,cpuacct:/lamina/c\n7:blkio:/lamina/c\n0::/\n";
        for (d, files) in [
            (
                "pids",
                vec![("pids.current", "3\n"), ("cgroup.procs", "10\n11\n12\n")],
            ),
            ("freezer", vec![("freezer.state", "THAWED\n")]),
            (
                "memory",
                vec![
                    ("memory.usage_in_bytes", "5000\n"),
                    ("memory.limit_in_bytes", "9223372036854771712\n"),
                    ("memory.stat", "cache 10\ntotal_inactive_file 1000\n"),
                ],
            ),
            ("cpu,cpuacct", vec![("cpuacct.usage", "123456789\n")]),
            (
                "blkio",
                vec![(
                    "blkio.throttle.io_service_bytes",
                    "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n",
                )],
            ),
        ] {
            let dir = r.join(d).join("lamina/c");
            std::fs::create_dir_all(&dir).unwrap();
            for (f, v) in files {
                std::fs::write(dir.join(f), v).unwrap();
            }
        }
        let cg = Cgroup::parse(10, text, r);
        assert_eq!(cg.pids().unwrap(), vec![10, 11, 12]);
        let st = cg.stats();
        assert_eq!(
            st,
            Stats {
                cpu_ns: 123_456_789,
                memory: 4000,
                memory_limit: None,
                pids: 3,
                block_read: 4096,
                block_write: 512,
            }
        );
        assert!(!cg.frozen());
        cg.set_frozen(true).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("freezer/lamina/c/freezer.state")).unwrap(),
            "FROZEN"
        );
        assert!(cg.frozen());
    }

    #[test]
    fn v2_unified() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(r.join("cgroup.controllers"), "cpu memory pids io\n").unwrap();
        let dir = r.join("lamina/c");
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in [
            ("cpu.stat", "usage_usec 2000\nuser_usec 1000\n"),
            ("memory.current", "8192\n"),
            ("memory.max", "1048576\n"),
            ("memory.stat", "inactive_file 192\n"),
            ("pids.current", "1\n"),
            ("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n"),
            ("cgroup.events", "populated 1\nfrozen 0\n"),
        ] {
            std::fs::write(dir.join(f), v).unwrap();
        }
        let cg = Cgroup::parse(1, "0::/lamina/c\n", r);
        let st = cg.stats();
        assert_eq!(
            (
                st.cpu_ns,
                st.memory,
                st.memory_limit,
                st.pids,
                st.block_read,
                st.block_write
            ),
            (2_000_000, 8000, Some(1_048_576), 1, 100, 200)
        );
        assert!(!cg.frozen());
        cg.set_frozen(true).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "1");
    }
}
