//! Subnets claimed on this host by every store, so two stores never pick the same one.
//!
//! A store's own lock orders its own choices, and the host's routes show other stores' subnets once
//! their bridge is up; between a record being written and its bridge appearing, another store choosing
//! at that moment would see nothing. The claims close that window: under one host-wide flock a store
//! reads every claim, chooses, and writes its own before letting go.
//!
//! ```text
//! /run/lamina-networks/.lock                       flock around choose + claim
//! /run/lamina-networks/<a.b.c.d>_<len>.claim       "<networks dir>\n<network name>\n"
//! ```
//!
//! /run is a tmpfs: claims go with a reboot, as bridges do. A claim whose record no longer names its
//! subnet (the store was deleted, the network removed by hand) is stale and removed. Where the
//! directory can't be made (a user without root, who has no bridges anyway), there are no claims.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::ipam::Subnet;
use super::state::NetworkRecord;

const DIR: &str = "/run/lamina-networks";

/// The host-wide claims, locked.
pub(crate) struct HostClaims {
    dir: PathBuf,
    _lock: File,
}

impl HostClaims {
    /// Takes the host-wide lock; `None` where the claims directory can't be used.
    pub(crate) fn lock() -> Option<HostClaims> {
        Self::lock_at(Path::new(DIR))
    }

    fn lock_at(dir: &Path) -> Option<HostClaims> {
        std::fs::create_dir_all(dir).ok()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(".lock"))
            .ok()?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return None,
            }
        }
        Some(HostClaims {
            dir: dir.to_path_buf(),
            _lock: file,
        })
    }

    fn path(&self, subnet: &Subnet) -> PathBuf {
        self.dir
            .join(format!("{}.claim", subnet.to_string().replace('/', "_")))
    }

    /// Subnets other networks (of any store) hold, leaving out `own` (a store dir and network name).
    pub(crate) fn others(&self, own_dir: &Path, own_name: &str) -> Vec<Subnet> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                let mut lines = text.lines();
                let (dir, name) = (Path::new(lines.next()?), lines.next()?);
                if dir == own_dir && name == own_name {
                    return None;
                }
                let subnet: Subnet = e
                    .file_name()
                    .to_str()?
                    .strip_suffix(".claim")?
                    .replace('_', "/")
                    .parse()
                    .ok()?;
                if live(dir, name, &subnet) {
                    Some(subnet)
                } else {
                    // Under the lock: nobody is writing it.
                    let _ = std::fs::remove_file(e.path());
                    None
                }
            })
            .collect()
    }

    /// Claims `subnet` for the network `name` of the store whose networks dir is `dir`.
    pub(crate) fn claim(&self, subnet: &Subnet, dir: &Path, name: &str) {
        let _ = std::fs::write(self.path(subnet), format!("{}\n{name}\n", dir.display()));
    }

    /// Drops the claim on `subnet` if it is this network's.
    pub(crate) fn release(&self, subnet: &Subnet, dir: &Path, name: &str) {
        let p = self.path(subnet);
        if std::fs::read_to_string(&p).is_ok_and(|t| t == format!("{}\n{name}\n", dir.display())) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The claim's network record still exists and still has that subnet.
fn live(dir: &Path, name: &str, subnet: &Subnet) -> bool {
    std::fs::read(dir.join(format!("{name}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
        .is_some_and(|r| r.subnet == *subnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(dir: &Path, name: &str, subnet: &str) -> Subnet {
        let subnet: Subnet = subnet.parse().unwrap();
        let rec = NetworkRecord {
            name: name.into(),
            id: "x".repeat(64),
            bridge: "lamina-test".into(),
            subnet,
            gateway: subnet.nth(1).unwrap(),
            internal: false,
            auto_subnet: true,
            created: 0,
        };
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec(&rec).unwrap(),
        )
        .unwrap();
        subnet
    }

    #[test]
    fn other_stores_claims_count_until_their_record_goes() {
        let t = tempfile::tempdir().unwrap();
        let (claims_dir, a, b) = (t.path().join("claims"), t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let c = HostClaims::lock_at(&claims_dir).unwrap();
        let sa = record(&a, "n", "10.90.0.0/16");
        c.claim(&sa, &a, "n");
        assert_eq!(c.others(&b, "n"), vec![sa], "another store's claim counts");
        assert!(c.others(&a, "n").is_empty(), "a network's own claim does not");
        // Moved (a record with another subnet): the old claim is stale, and removed.
        record(&a, "n", "10.91.0.0/16");
        assert!(c.others(&b, "n").is_empty());
        assert!(!c.path(&sa).exists());
        record(&a, "n", "10.90.0.0/16");
        c.claim(&sa, &a, "n");
        c.release(&sa, &b, "n");
        assert_eq!(c.others(&b, "n"), vec![sa], "only the owner releases");
        c.release(&sa, &a, "n");
        assert!(c.others(&b, "n").is_empty());
    }
}
