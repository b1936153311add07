//! Container networks without a daemon: Linux bridges, veth pairs, nftables NAT, address leases and
//! hosts files kept under `<store>/networks/` behind one lock.
//!
//! - [`state`]: [`NetworkRecord`]s, [`Lease`]s and the lock ([`Networks::lock`]); leases of dead
//!   containers are reclaimed by whoever takes the lock next.
//! - [`ipam`]: subnets, the host's routes, free subnet and address choice.
//! - [`host`]: the kernel side, through iproute2 and nft batches.
//! - [`names`]: /etc/hosts and /etc/resolv.conf contents.
//! - `claims`: subnets claimed host-wide (under /run), so two stores never choose the same one.
//!
//! A network's nft chains exist exactly while it has leases: [`join`] loads them with the first
//! container, [`leave`] (or a later [`reclaim`]) removes them with the last. Its bridge is made with
//! the first container and stays until `network rm`/`network prune` ([`remove_idle_bridges`]):
//! destroying a device costs RCU grace periods that a cold `run` should not pay. The runner's helper calls [`join`] between
//! creating the container and starting its process, and [`leave`] after reaping it.

mod claims;
pub mod host;
pub mod ipam;
pub mod names;
pub mod state;

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use ipam::Subnet;
pub use state::{CreateOptions, DEFAULT_BRIDGE, DEFAULT_NETWORK, Lease, Locked, NetworkRecord, Networks};

/// Errors of network records and setup.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt network state {path}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid subnet {subnet:?}: use an IPv4 CIDR with a prefix from /8 to /30")]
    InvalidSubnet { subnet: String },
    #[error("invalid network name {name:?}: use [A-Za-z0-9][A-Za-z0-9_.-]*, not host, none or default")]
    InvalidName { name: String },
    #[error("network {name} already exists")]
    Exists { name: String },
    #[error("no such network: {name}")]
    NoSuchNetwork { name: String },
    #[error("subnet {subnet} overlaps {other}, already in use on this host")]
    SubnetInUse { subnet: Subnet, other: Subnet },
    #[error("gateway {gateway} is not a host address of {subnet}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Subnet },
    #[error("no free private subnet left (10.88-99.0.0/16, 172.18-31.0.0/16); give one with --subnet")]
    NoFreeSubnet,
    #[error("network {name} has no free address left")]
    Exhausted { name: String },
    #[error("network {name} is in use by {containers} container(s)")]
    InUse { name: String, containers: usize },
    #[error("the default network cannot be removed")]
    DefaultNetwork,
    #[error("bridge {bridge} exists and is not lamina's network {name} (another store's, or the admin's)")]
    BridgeTaken { bridge: String, name: String },
    #[error("container {id} is not connected to network {name}")]
    NotConnected { id: String, name: String },
    #[error("container {id} is already connected to network {name}")]
    AlreadyConnected { id: String, name: String },
    #[error("no networks directory given (RunRequest.net.networks_dir) and none set for this process")]
    NoNetworksDir,
    #[error("cannot run {prog}")]
    Exec {
        prog: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{prog} failed: {stderr}\n(input was:\n{script})")]
    Command {
        prog: String,
        script: String,
        stderr: String,
    },
}

impl NetError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> NetError {
        NetError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The request's fault rather than the machine's.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            NetError::Io { .. } | NetError::Corrupt { .. } | NetError::Exec { .. } | NetError::Command { .. }
        )
    }
}

static DEFAULT_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The networks directory requests without [`crate::NetOptions::networks_dir`] use: set once by the
/// binary from its store root, so the build engine's RUN steps reach the bridge without carrying
/// the store's paths.
pub fn set_default_dir(dir: PathBuf) {
    let _ = DEFAULT_DIR.set(dir);
}

pub(crate) fn default_dir() -> Option<&'static PathBuf> {
    DEFAULT_DIR.get()
}

/// A container joining networks: who it is, where its namespace is, what peers call it.
pub struct Member<'a> {
    pub container_id: &'a str,
    /// Host pid of the container's init (created, not necessarily started).
    pub pid: i32,
    pub netns: BorrowedFd<'a>,
    pub hostname: &'a str,
    /// Container name and `--network-alias`es.
    pub names: Vec<String>,
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// Published ports: DNATed to the first network's address (see [`host::publish`]).
    pub ports: Vec<crate::request::PortMapping>,
}

fn veth_name(container_id: &str, index: usize) -> String {
    // IFNAMSIZ: 15 characters; the id prefix makes it unique on the host.
    format!("veth{}{index}", &container_id[..container_id.len().min(8)])
}

/// Reclaim what dead containers held, then give `m` an address on each of `networks` (the first gets
/// the default route) and write its hosts file. Returns the hosts file to bind at /etc/hosts. On
/// error, whatever this call set up is undone.
pub fn join(nets: &Networks, networks: &[String], m: &Member<'_>) -> Result<PathBuf, NetError> {
    let locked = nets.lock()?;
    reclaim_locked(&locked)?;
    host::remove_orphan_bridges();
    let starttime = state::process_starttime(m.pid).ok_or_else(|| {
        NetError::io(
            "read",
            Path::new(&format!("/proc/{}/stat", m.pid)),
            std::io::ErrorKind::NotFound.into(),
        )
    })?;
    let hosts_file = locked.hosts_file(m.container_id);
    let mut joined: Vec<Lease> = Vec::new();
    let result = (|| {
        for (i, name) in networks.iter().enumerate() {
            let mut names = vec![m.hostname.to_string()];
            names.extend(m.names.iter().cloned());
            let lease = Lease {
                network: name.clone(),
                container_id: m.container_id.to_string(),
                ip: Ipv4Addr::UNSPECIFIED,
                ifname: format!("eth{i}"),
                host_veth: veth_name(m.container_id, i),
                pid: m.pid,
                starttime,
                names,
                hosts_file: hosts_file.clone(),
                extra_hosts: m.extra_hosts.clone(),
                hostname: m.hostname.to_string(),
                ports: if i == 0 { m.ports.clone() } else { Vec::new() },
            };
            let lease = add_lease(&locked, name, lease, m.netns, i == 0)?;
            joined.push(lease);
        }
        if let Some(first) = joined.first()
            && !first.ports.is_empty()
        {
            host::publish(&locked.get(&first.network)?, first)?;
        }
        Ok::<(), NetError>(())
    })();
    if let Err(e) = result {
        for l in &joined {
            drop_lease(&locked, l);
        }
        deactivate_idle(&locked, &joined);
        return Err(e);
    }
    write_hosts(&locked, m.container_id, &hosts_file, m.hostname, &m.extra_hosts)?;
    refresh_peers(&locked, m.container_id, &joined);
    Ok(hosts_file)
}

fn add_lease(
    locked: &Locked<'_>,
    network: &str,
    lease: Lease,
    netns: BorrowedFd<'_>,
    default_route: bool,
) -> Result<Lease, NetError> {
    let mut rec = locked.get(network)?;
    if locked.leases(network)?.is_empty() {
        // Another store's lock does not cover us: its default network may create the same bridge
        // name between our check and our `link add`. Then the name is taken; pick again.
        let mut attempt = 0;
        loop {
            prepare_idle(locked, &mut rec)?;
            match host::activate(&rec, locked.dir()) {
                Ok(()) => break,
                Err(_)
                    if attempt < 3 && host::bridge_owner(&rec, locked.dir(), &rec.bridge) == Some(false) =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
    let lease = locked.allocate(&rec, lease)?;
    if let Err(e) = host::attach(&rec, &lease, netns, default_route) {
        locked.release(&lease);
        host::detach(&lease);
        return Err(e);
    }
    Ok(lease)
}

/// Before an idle network comes up: make sure its subnet is still free and its bridge name ours.
fn prepare_idle(locked: &Locked<'_>, rec: &mut NetworkRecord) -> Result<(), NetError> {
    if host::bridge_owner(rec, locked.dir(), &rec.bridge) == Some(false) {
        if rec.name != DEFAULT_NETWORK {
            return Err(NetError::BridgeTaken {
                bridge: rec.bridge.clone(),
                name: rec.name.clone(),
            });
        }
        // Another store's default network holds lamina0: take the next free name.
        let free = (1..100)
            .map(|n| format!("lamina{n}"))
            .find(|b| host::bridge_owner(rec, locked.dir(), b) != Some(false))
            .ok_or_else(|| NetError::BridgeTaken {
                bridge: rec.bridge.clone(),
                name: rec.name.clone(),
            })?;
        rec.bridge = free;
        locked.save(rec)?;
    }
    locked.recheck_subnet(rec)
}

fn drop_lease(locked: &Locked<'_>, l: &Lease) {
    if !l.ports.is_empty() {
        host::unpublish(l);
    }
    host::detach(l);
    locked.release(l);
}

/// Those of the networks of `gone` left without leases lose their rules.
fn deactivate_idle(locked: &Locked<'_>, gone: &[Lease]) {
    let mut seen: Vec<&str> = Vec::new();
    for l in gone {
        if seen.contains(&l.network.as_str()) {
            continue;
        }
        seen.push(&l.network);
        if locked.leases(&l.network).is_ok_and(|v| v.is_empty())
            && let Ok(rec) = locked.get(&l.network)
        {
            host::deactivate(&rec);
        }
    }
}

/// `network prune`: reclaim, then take down the bridges of networks without containers. Returns
/// the networks whose bridge went.
pub fn remove_idle_bridges(locked: &Locked<'_>) -> Result<Vec<String>, NetError> {
    reclaim_locked(locked)?;
    let mut out = Vec::new();
    for rec in locked.records()? {
        if locked.leases(&rec.name)?.is_empty()
            && host::bridge_owner(&rec, locked.dir(), &rec.bridge) == Some(true)
        {
            host::deactivate(&rec);
            host::remove_bridge(&rec, locked.dir());
            out.push(rec.name);
        }
    }
    Ok(out)
}

/// `network rm`: the record, its rules and its bridge; refused while containers use it.
pub fn remove(nets: &Networks, name: &str) -> Result<NetworkRecord, NetError> {
    let locked = nets.lock()?;
    reclaim_locked(&locked)?;
    let rec = locked.remove(name)?;
    host::deactivate(&rec);
    host::remove_bridge(&rec, locked.dir());
    Ok(rec)
}

/// (Re)write one container's hosts file from its leases and its peers' on name-resolving networks.
fn write_hosts(
    locked: &Locked<'_>,
    container_id: &str,
    path: &Path,
    hostname: &str,
    extra: &[(String, IpAddr)],
) -> Result<(), NetError> {
    let all = locked.all_leases()?;
    let recs = locked.records()?;
    let resolving = |net: &str| recs.iter().any(|r| r.name == net && r.resolves_names());
    let mine: Vec<&Lease> = all.iter().filter(|l| l.container_id == container_id).collect();
    let mut own: Vec<(IpAddr, Vec<String>)> = Vec::new();
    for l in &mine {
        let mut names = vec![hostname.to_string()];
        if resolving(&l.network) {
            names.extend(l.names.iter().cloned());
        }
        own.push((IpAddr::V4(l.ip), names));
    }
    let mut peers = Vec::new();
    for l in &all {
        if l.container_id != container_id
            && resolving(&l.network)
            && mine.iter().any(|m| m.network == l.network)
        {
            peers.push((IpAddr::V4(l.ip), l.names.clone()));
        }
    }
    let text = names::hosts(&own, extra, &peers);
    // In place: the file is bind-mounted into the container, a rename would not be seen.
    std::fs::write(path, text).map_err(|e| NetError::io("write", path, e))
}

/// Rewrite the hosts files of everyone sharing a name-resolving network with `changed`.
fn refresh_peers(locked: &Locked<'_>, except: &str, changed: &[Lease]) {
    let Ok(all) = locked.all_leases() else { return };
    let mut done: Vec<&str> = Vec::new();
    for l in &all {
        if l.container_id == except || done.contains(&l.container_id.as_str()) {
            continue;
        }
        if changed.iter().any(|c| c.network == l.network) {
            done.push(&l.container_id);
            let _ = write_hosts(
                locked,
                &l.container_id,
                &l.hosts_file,
                &l.hostname,
                &l.extra_hosts,
            );
        }
    }
}

/// Give back everything `container_id` holds: veths, leases, its hosts file; idle networks go down.
pub fn leave(nets: &Networks, container_id: &str) -> Result<(), NetError> {
    let locked = nets.lock()?;
    let mine: Vec<Lease> = locked
        .all_leases()?
        .into_iter()
        .filter(|l| l.container_id == container_id)
        .collect();
    for l in &mine {
        drop_lease(&locked, l);
    }
    let _ = std::fs::remove_file(locked.hosts_file(container_id));
    refresh_peers(&locked, container_id, &mine);
    deactivate_idle(&locked, &mine);
    reclaim_locked(&locked)
}

/// Drop leases of containers that are gone (a lamina killed with SIGKILL never called [`leave`]) and
/// take idle networks down.
pub fn reclaim(nets: &Networks) -> Result<(), NetError> {
    let locked = nets.lock()?;
    reclaim_locked(&locked)
}

fn reclaim_locked(locked: &Locked<'_>) -> Result<(), NetError> {
    let dead = locked.take_dead()?;
    for l in &dead {
        if !l.ports.is_empty() {
            host::unpublish(l);
        }
        host::detach(l);
        let _ = std::fs::remove_file(&l.hosts_file);
    }
    if !dead.is_empty() {
        refresh_peers(locked, "", &dead);
        deactivate_idle(locked, &dead);
    }
    Ok(())
}

/// `lamina network connect`: a running container joins one more network (next free `ethN`).
pub fn connect(
    nets: &Networks,
    network: &str,
    container_id: &str,
    pid: i32,
    netns: BorrowedFd<'_>,
    extra_names: &[String],
) -> Result<Lease, NetError> {
    let locked = nets.lock()?;
    reclaim_locked(&locked)?;
    let mine: Vec<Lease> = locked
        .all_leases()?
        .into_iter()
        .filter(|l| l.container_id == container_id)
        .collect();
    if mine.iter().any(|l| l.network == network) {
        return Err(NetError::AlreadyConnected {
            id: container_id.to_string(),
            name: network.to_string(),
        });
    }
    let base = mine.first().cloned();
    let starttime = state::process_starttime(pid).unwrap_or(0);
    let index = (0..)
        .find(|i| !mine.iter().any(|l| l.ifname == format!("eth{i}")))
        .expect("a free index");
    let hostname = base
        .as_ref()
        .map(|b| b.hostname.clone())
        .unwrap_or_else(|| container_id[..12].to_string());
    let mut names = base
        .as_ref()
        .map(|b| b.names.clone())
        .unwrap_or_else(|| vec![hostname.clone()]);
    names.extend(extra_names.iter().cloned());
    let hosts_file = locked.hosts_file(container_id);
    let extra = base.as_ref().map(|b| b.extra_hosts.clone()).unwrap_or_default();
    let lease = Lease {
        network: network.to_string(),
        container_id: container_id.to_string(),
        ip: Ipv4Addr::UNSPECIFIED,
        ifname: format!("eth{index}"),
        host_veth: veth_name(container_id, index),
        pid,
        starttime,
        names,
        hosts_file: hosts_file.clone(),
        extra_hosts: extra.clone(),
        hostname: hostname.clone(),
        ports: Vec::new(),
    };
    let lease = add_lease(&locked, network, lease, netns, mine.is_empty())?;
    if base.is_some() {
        write_hosts(&locked, container_id, &hosts_file, &hostname, &extra)?;
    }
    refresh_peers(&locked, container_id, std::slice::from_ref(&lease));
    Ok(lease)
}

/// `lamina network disconnect`.
pub fn disconnect(nets: &Networks, network: &str, container_id: &str) -> Result<(), NetError> {
    let locked = nets.lock()?;
    let Some(l) = locked
        .all_leases()?
        .into_iter()
        .find(|l| l.container_id == container_id && l.network == network)
    else {
        return Err(NetError::NotConnected {
            id: container_id.to_string(),
            name: network.to_string(),
        });
    };
    drop_lease(&locked, &l);
    if locked.hosts_file(container_id).exists() {
        let _ = write_hosts(&locked, container_id, &l.hosts_file, &l.hostname, &l.extra_hosts);
    }
    refresh_peers(&locked, container_id, std::slice::from_ref(&l));
    deactivate_idle(&locked, std::slice::from_ref(&l));
    Ok(())
}
