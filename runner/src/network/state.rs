//! Network records and address leases under `<store>/networks/`, behind one flock.
//!
//! ```text
//! networks/.lock                    flock: every read-modify-write below holds it
//! networks/<name>.json              NetworkRecord
//! networks/leases/<name>/<ip>.json  Lease: one address held by one container
//! networks/hosts/<container-id>     the container's /etc/hosts (bind-mounted, rewritten in place)
//! ```
//!
//! No daemon keeps these true: a lease names the container's init pid and its start time, and
//! whoever takes the lock next drops leases whose process is gone ([`Locked::reclaim`]), so a
//! SIGKILLed lamina costs nothing but a stale file until the next network command.

use std::fs::{File, OpenOptions};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use super::NetError;
use super::ipam::{self, Subnet};

/// Docker's name for the default network; its bridge is [`DEFAULT_BRIDGE`].
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "lamina0";

/// One network: a Linux bridge, a subnet, its gateway (the bridge's address).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkRecord {
    pub name: String,
    /// Random; tags the bridge (its ifalias) so a bridge of another store is never taken for ours.
    pub id: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// No NAT and no forwarding off the bridge (`--internal`).
    pub internal: bool,
    /// lamina chose the subnet, so it may move to another free one while the network is idle.
    pub auto_subnet: bool,
    /// Seconds since the epoch.
    pub created: u64,
}

impl NetworkRecord {
    /// Whether containers on this network resolve each other by name (docker: user networks only).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// An address held by a container on a network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub network: String,
    pub container_id: String,
    pub ip: Ipv4Addr,
    /// Interface name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// Host end of the veth pair, on the bridge.
    pub host_veth: String,
    /// The container's init on the host, and its start time (clock ticks since boot), which tells a
    /// reused pid from the original.
    pub pid: i32,
    pub starttime: u64,
    /// Names peers resolve to `ip`: container name, hostname, `--network-alias`es.
    pub names: Vec<String>,
    /// The container's hosts file (shared by its leases on several networks).
    pub hosts_file: PathBuf,
    /// `--add-host` entries, kept so the file can be regenerated when peers come and go.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// The container's own hostname (first line after localhost).
    pub hostname: String,
    /// Ports published to this address by DNAT (the first network's lease only); their nft chains
    /// go with the lease.
    #[serde(default)]
    pub ports: Vec<crate::request::PortMapping>,
}

impl Lease {
    pub fn alive(&self) -> bool {
        process_starttime(self.pid) == Some(self.starttime)
    }
}

/// Start time of a process (field 22 of /proc/PID/stat), `None` when it is gone or a zombie (a
/// container whose monitor was killed stays a zombie until someone reaps it; its netns is gone).
pub fn process_starttime(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses; fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    if matches!(f.next(), Some("Z") | Some("X")) {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// `<store>/networks`.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
}

/// What `lamina network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
}

impl Networks {
    /// The networks of the store at `store_root`.
    pub fn for_store(store_root: &Path) -> Networks {
        Networks {
            dir: store_root.join("networks"),
        }
    }

    /// Networks kept in `dir` itself (what [`crate::NetOptions::networks_dir`] names).
    pub fn at(dir: &Path) -> Networks {
        Networks {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Take the lock (blocking); everything that reads or changes records and leases goes through it.
    pub fn lock(&self) -> Result<Locked<'_>, NetError> {
        for d in [self.dir.clone(), self.dir.join("leases"), self.dir.join("hosts")] {
            std::fs::create_dir_all(&d).map_err(|e| NetError::io("create", &d, e))?;
        }
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| NetError::io("open", &path, e))?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(NetError::io("lock", &path, e.into())),
            }
        }
        Ok(Locked {
            nets: self,
            _file: file,
        })
    }
}

/// The networks directory, locked.
pub struct Locked<'a> {
    nets: &'a Networks,
    _file: File,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Locked<'_> {
    /// The networks directory.
    pub fn dir(&self) -> &Path {
        &self.nets.dir
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.nets.dir.join(format!("{name}.json"))
    }

    fn lease_dir(&self, network: &str) -> PathBuf {
        self.nets.dir.join("leases").join(network)
    }

    /// Path of a container's hosts file.
    pub fn hosts_file(&self, container_id: &str) -> PathBuf {
        self.nets.dir.join("hosts").join(container_id)
    }

    /// All networks, the default one included (made on first use), by name.
    pub fn records(&self) -> Result<Vec<NetworkRecord>, NetError> {
        self.get(DEFAULT_NETWORK)?;
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.nets.dir).map_err(|e| NetError::io("read", &self.nets.dir, e))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".json")
                && let Ok(Some(r)) = self.load(n)
            {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn load(&self, name: &str) -> Result<Option<NetworkRecord>, NetError> {
        let p = self.record_path(name);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| NetError::Corrupt { path: p, source: e }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NetError::io("read", &p, e)),
        }
    }

    /// A network by name; the default network is created on first use.
    pub fn get(&self, name: &str) -> Result<NetworkRecord, NetError> {
        if let Some(r) = self.load(name)? {
            return Ok(r);
        }
        if name == DEFAULT_NETWORK {
            return self.create_record(CreateOptions {
                name: name.to_string(),
                ..Default::default()
            });
        }
        Err(NetError::NoSuchNetwork {
            name: name.to_string(),
        })
    }

    /// `lamina network create`.
    pub fn create(&self, opts: CreateOptions) -> Result<NetworkRecord, NetError> {
        if !valid_name(&opts.name) || opts.name == "host" || opts.name == "none" || opts.name == "default" {
            return Err(NetError::InvalidName { name: opts.name });
        }
        if self.load(&opts.name)?.is_some() || opts.name == DEFAULT_NETWORK {
            return Err(NetError::Exists { name: opts.name });
        }
        self.create_record(opts)
    }

    fn create_record(&self, opts: CreateOptions) -> Result<NetworkRecord, NetError> {
        // Held until the record is written and claimed: no other store chooses meanwhile.
        let claims = super::claims::HostClaims::lock();
        let mut others = self.other_subnets(&opts.name)?;
        if let Some(c) = &claims {
            others.extend(c.others(&self.nets.dir, &opts.name));
        }
        let subnet = match opts.subnet {
            Some(s) => {
                if let Some(o) = others.iter().find(|o| o.overlaps(&s)) {
                    return Err(NetError::SubnetInUse { subnet: s, other: *o });
                }
                s
            }
            None => ipam::pick_subnet(&others).ok_or(NetError::NoFreeSubnet)?,
        };
        let gateway = match opts.gateway {
            Some(g) if !subnet.contains(g) || subnet.nth(0) == Some(g) => {
                return Err(NetError::GatewayOutside { gateway: g, subnet });
            }
            Some(g) => g,
            None => subnet.nth(1).ok_or(NetError::InvalidSubnet {
                subnet: subnet.to_string(),
            })?,
        };
        let id = crate::new_id();
        let bridge = if opts.name == DEFAULT_NETWORK {
            DEFAULT_BRIDGE.to_string()
        } else {
            // IFNAMSIZ is 16 with the NUL; "lamina" + '-' + 8 hex = 15. The "lamina" prefix is what
            // the isolation rule matches (`oifname "lamina*"`).
            format!("lamina-{}", &id[..8])
        };
        let rec = NetworkRecord {
            name: opts.name,
            id,
            bridge,
            subnet,
            gateway,
            internal: opts.internal,
            auto_subnet: opts.subnet.is_none(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        self.save(&rec)?;
        if let Some(c) = &claims {
            c.claim(&rec.subnet, &self.nets.dir, &rec.name);
        }
        Ok(rec)
    }

    /// Host routes (not on this network's own bridge) and the other networks of this store.
    fn other_subnets(&self, name: &str) -> Result<Vec<Subnet>, NetError> {
        let own_bridge = self.load(name)?.map(|r| r.bridge);
        let mut taken: Vec<Subnet> = ipam::host_routes()
            .into_iter()
            .filter(|(dev, _)| Some(dev) != own_bridge.as_ref())
            .map(|(_, s)| s)
            .collect();
        let rd = std::fs::read_dir(&self.nets.dir).map_err(|e| NetError::io("read", &self.nets.dir, e))?;
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = f.strip_suffix(".json")
                && n != name
                && let Ok(Some(r)) = self.load(n)
            {
                taken.push(r.subnet);
            }
        }
        Ok(taken)
    }

    pub(crate) fn save(&self, rec: &NetworkRecord) -> Result<(), NetError> {
        let p = self.record_path(&rec.name);
        let tmp = p.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(rec).expect("record serialises");
        std::fs::write(&tmp, json).map_err(|e| NetError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| NetError::io("rename", &p, e))
    }

    /// If the subnet of an idle network now overlaps a host route (a VPN came up), move it when lamina
    /// chose it, refuse otherwise.
    pub(crate) fn recheck_subnet(&self, rec: &mut NetworkRecord) -> Result<(), NetError> {
        let claims = super::claims::HostClaims::lock();
        let mut others = self.other_subnets(&rec.name)?;
        if let Some(c) = &claims {
            others.extend(c.others(&self.nets.dir, &rec.name));
            // Claimed before this check existed (or lost with /run): claim it now.
            c.claim(&rec.subnet, &self.nets.dir, &rec.name);
        }
        let Some(o) = others.iter().find(|o| o.overlaps(&rec.subnet)).copied() else {
            return Ok(());
        };
        if !rec.auto_subnet {
            return Err(NetError::SubnetInUse {
                subnet: rec.subnet,
                other: o,
            });
        }
        let old = rec.subnet;
        rec.subnet = ipam::pick_subnet(&others).ok_or(NetError::NoFreeSubnet)?;
        rec.gateway = rec.subnet.nth(1).expect("a /16 has hosts");
        self.save(rec)?;
        if let Some(c) = &claims {
            c.release(&old, &self.nets.dir, &rec.name);
            c.claim(&rec.subnet, &self.nets.dir, &rec.name);
        }
        Ok(())
    }

    /// Remove a network record; refused while containers hold addresses on it.
    pub fn remove(&self, name: &str) -> Result<NetworkRecord, NetError> {
        let rec = self.get(name)?;
        if name == DEFAULT_NETWORK {
            return Err(NetError::DefaultNetwork);
        }
        let users = self.leases(name)?;
        if !users.is_empty() {
            return Err(NetError::InUse {
                name: name.to_string(),
                containers: users.len(),
            });
        }
        let _ = std::fs::remove_dir(self.lease_dir(name));
        let p = self.record_path(name);
        std::fs::remove_file(&p).map_err(|e| NetError::io("remove", &p, e))?;
        if let Some(c) = super::claims::HostClaims::lock() {
            c.release(&rec.subnet, &self.nets.dir, name);
        }
        Ok(rec)
    }

    /// Leases on one network.
    pub fn leases(&self, network: &str) -> Result<Vec<Lease>, NetError> {
        let dir = self.lease_dir(network);
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(NetError::io("read", &dir, e)),
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json")
                && let Ok(b) = std::fs::read(&p)
                && let Ok(l) = serde_json::from_slice::<Lease>(&b)
            {
                out.push(l);
            }
        }
        out.sort_by_key(|l| l.ip);
        Ok(out)
    }

    /// Every lease on every network.
    pub fn all_leases(&self) -> Result<Vec<Lease>, NetError> {
        let mut out = Vec::new();
        for r in self.records()? {
            out.extend(self.leases(&r.name)?);
        }
        Ok(out)
    }

    /// The lowest free address on `rec` (never the gateway), recorded for `lease` (whose `ip` is set).
    pub(crate) fn allocate(&self, rec: &NetworkRecord, mut lease: Lease) -> Result<Lease, NetError> {
        let dir = self.lease_dir(&rec.name);
        std::fs::create_dir_all(&dir).map_err(|e| NetError::io("create", &dir, e))?;
        let used: Vec<Ipv4Addr> = self.leases(&rec.name)?.iter().map(|l| l.ip).collect();
        let ip = rec
            .subnet
            .hosts()
            .find(|a| *a != rec.gateway && !used.contains(a))
            .ok_or_else(|| NetError::Exhausted {
                name: rec.name.clone(),
            })?;
        lease.ip = ip;
        let p = dir.join(format!("{ip}.json"));
        let json = serde_json::to_vec_pretty(&lease).expect("lease serialises");
        std::fs::write(&p, json).map_err(|e| NetError::io("write", &p, e))?;
        Ok(lease)
    }

    pub(crate) fn release(&self, lease: &Lease) {
        let _ = std::fs::remove_file(self.lease_dir(&lease.network).join(format!("{}.json", lease.ip)));
    }

    /// Leases whose container is gone, removed from disk and returned (the caller undoes what they held).
    pub(crate) fn take_dead(&self) -> Result<Vec<Lease>, NetError> {
        let dead: Vec<Lease> = self.all_leases()?.into_iter().filter(|l| !l.alive()).collect();
        for l in &dead {
            self.release(l);
        }
        Ok(dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(net: &str, id: &str) -> Lease {
        Lease {
            network: net.into(),
            container_id: id.into(),
            ip: Ipv4Addr::UNSPECIFIED,
            ifname: "eth0".into(),
            host_veth: "v".into(),
            pid: std::process::id() as i32,
            starttime: process_starttime(std::process::id() as i32).unwrap(),
            names: vec![],
            hosts_file: "/nonexistent".into(),
            extra_hosts: vec![],
            hostname: "h".into(),
            ports: vec![],
        }
    }

    #[test]
    fn create_allocate_release() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::for_store(tmp.path());
        let l = nets.lock().unwrap();
        let rec = l
            .create(CreateOptions {
                name: "n1".into(),
                subnet: Some("192.168.77.0/29".parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rec.gateway.to_string(), "192.168.77.1");
        assert!(rec.bridge.len() <= 15 && rec.bridge.starts_with("lamina-"));
        // Overlapping subnets and duplicate names are refused.
        let clash = l.create(CreateOptions {
            name: "n2".into(),
            subnet: Some("192.168.77.0/24".parse().unwrap()),
            ..Default::default()
        });
        assert!(matches!(clash, Err(NetError::SubnetInUse { .. })), "{clash:?}");
        assert!(matches!(
            l.create(CreateOptions {
                name: "n1".into(),
                ..Default::default()
            }),
            Err(NetError::Exists { .. })
        ));
        // A /29 has 6 hosts; one is the gateway.
        let mut got = Vec::new();
        for i in 0..5 {
            got.push(l.allocate(&rec, lease("n1", &format!("c{i}"))).unwrap());
        }
        assert_eq!(got[0].ip.to_string(), "192.168.77.2");
        assert_eq!(got[4].ip.to_string(), "192.168.77.6");
        assert!(matches!(
            l.allocate(&rec, lease("n1", "x")),
            Err(NetError::Exhausted { .. })
        ));
        l.release(&got[2]);
        assert_eq!(l.allocate(&rec, lease("n1", "y")).unwrap().ip, got[2].ip);
        assert!(matches!(
            l.remove("n1"),
            Err(NetError::InUse { containers: 5, .. })
        ));
        assert!(l.take_dead().unwrap().is_empty(), "our own pid is alive");
    }

    #[test]
    fn dead_leases_are_reclaimed() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::for_store(tmp.path());
        let l = nets.lock().unwrap();
        let rec = l
            .create(CreateOptions {
                name: "n".into(),
                subnet: Some("192.168.78.0/24".parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let mut dead = lease("n", "gone");
        dead.pid = pid;
        dead.starttime = process_starttime(pid).unwrap_or(1);
        child.wait().unwrap();
        l.allocate(&rec, dead).unwrap();
        l.allocate(&rec, lease("n", "alive")).unwrap();
        let taken = l.take_dead().unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].container_id, "gone");
        assert_eq!(l.leases("n").unwrap().len(), 1);
        assert!(l.remove("n").is_err());
    }

    #[test]
    fn default_network_is_made_on_first_use() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::for_store(tmp.path());
        let l = nets.lock().unwrap();
        let recs = l.records().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].bridge, DEFAULT_BRIDGE);
        assert!(matches!(l.remove(DEFAULT_NETWORK), Err(NetError::DefaultNetwork)));
        assert!(matches!(
            l.create(CreateOptions {
                name: "-x".into(),
                ..Default::default()
            }),
            Err(NetError::InvalidName { .. })
        ));
    }
}
