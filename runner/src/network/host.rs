//! The kernel side of a network: bridge, veth pairs, addresses and routes through iproute2's `ip`,
//! netfilter rules through `nft`, both fed a whole batch on stdin.
//!
//! Why the commands and not netlink from Rust: one `ip -batch -` or `nft -f -` exec costs about a
//! millisecond and applies many changes (an nft batch is one atomic transaction), while the
//! netlink crates at hand (netlink-packet-route via libcontainer) have no veth/bridge/route
//! builders and the nftables netlink encoding (libnftnl's job) has no maintained Rust crate. The
//! setup of a container costs two `ip` execs; bridges and rules are touched only when a network
//! gets its first container or loses its last.
#![allow(unsafe_code)]

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use std::net::IpAddr;

use super::NetError;
use super::state::{Lease, NetworkRecord};
use crate::request::Protocol;

/// lamina's own nftables table; each network has its own base chains in it, so networks (and stores)
/// come and go without touching each other's rules.
pub const NFT_TABLE: &str = "lamina";

/// Feed `script` to `prog args…` on stdin; optionally inside the network namespace `netns`.
fn run_batch(prog: &str, args: &[&str], script: &str, netns: Option<BorrowedFd<'_>>) -> Result<(), NetError> {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(ns) = netns {
        let fd = ns.as_raw_fd();
        // SAFETY: setns is async-signal-safe and the closure only uses a copied fd number; the fd
        // stays open in the parent until the child has exec'd (we wait for it below).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let spawn_err = |source| NetError::Exec {
        prog: prog.to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows up as the command's own error below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(NetError::Command {
            prog: prog.to_string(),
            script: script.trim_end().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn ip_batch(script: &str, netns: Option<BorrowedFd<'_>>) -> Result<(), NetError> {
    run_batch("ip", &["-batch", "-"], script, netns)
}

fn nft(script: &str) -> Result<(), NetError> {
    run_batch("nft", &["-f", "-"], script, None)
}

fn sys_net(dev: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/{attr}"))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn link_exists(dev: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(dev).exists()
}

/// The ifalias that marks a bridge as this network's: `lamina:<id prefix>:<networks dir>`. The
/// directory lets any lamina find bridges whose store is gone ([`remove_orphan_bridges`]).
fn tag(rec: &NetworkRecord, dir: &Path) -> String {
    format!("lamina:{}:{}", &rec.id[..16], dir.display())
}

/// Whose a bridge is: `None` = no such link, `Some(true)` = this network's.
pub fn bridge_owner(rec: &NetworkRecord, dir: &Path, dev: &str) -> Option<bool> {
    if !link_exists(dev) {
        return None;
    }
    let alias = sys_net(dev, "ifalias").unwrap_or_default();
    Some(alias.starts_with(&format!("lamina:{}:", &rec.id[..16])) || alias == tag(rec, dir))
}

/// Bridges of lamina networks whose record is gone (a deleted store, a test's temporary one), with
/// no port left on them: deleted. Reads sysfs only, so it is cheap to call on every join.
pub fn remove_orphan_bridges() {
    let Ok(rd) = std::fs::read_dir("/sys/class/net") else {
        return;
    };
    for e in rd.flatten() {
        let dev = e.file_name().to_string_lossy().into_owned();
        if !dev.starts_with("lamina") {
            continue;
        }
        let Some(alias) = sys_net(&dev, "ifalias") else {
            continue;
        };
        let mut f = alias.splitn(3, ':');
        let (Some("lamina"), Some(id), Some(dir)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let owned = std::fs::read_dir(dir).into_iter().flatten().flatten().any(|r| {
            r.path().extension().is_some_and(|x| x == "json")
                && std::fs::read(r.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
                    .is_some_and(|rec| rec.id.starts_with(id) && rec.bridge == dev)
        });
        let ports = std::fs::read_dir(format!("/sys/class/net/{dev}/brif"))
            .map(|d| d.count())
            .unwrap_or(0);
        if !owned && ports == 0 {
            let _ = ip_batch(&format!("link del dev {dev}\n"), None);
        }
    }
}

/// Create the bridge with the gateway address and the network's nft chains; turn on forwarding.
pub fn activate(rec: &NetworkRecord, dir: &Path) -> Result<(), NetError> {
    if bridge_owner(rec, dir, &rec.bridge) != Some(true) {
        let br = &rec.bridge;
        ip_batch(
            &format!(
                "link add name {br} type bridge\nlink set dev {br} alias {tag}\n\
                 addr add {gw}/{p} dev {br}\nlink set dev {br} up\n",
                tag = tag(rec, dir),
                gw = rec.gateway,
                p = rec.subnet.prefix,
            ),
            None,
        )?;
    }
    nft(&rules(rec))?;
    if !rec.internal {
        enable_forwarding()?;
    }
    Ok(())
}

/// The network's chains: forwarding scoped to its bridge, masquerade for its subnet (not for an
/// internal one), and no routing between lamina bridges (containers on different networks must not
/// reach each other; traffic within one bridge is switched, not routed, so it never gets here).
fn rules(rec: &NetworkRecord) -> String {
    let (br, t) = (&rec.bridge, NFT_TABLE);
    let mut s = format!(
        "add table inet {t}\n\
         add chain inet {t} fwd-{br} {{ type filter hook forward priority filter; policy accept; }}\n\
         flush chain inet {t} fwd-{br}\n\
         add rule inet {t} fwd-{br} iifname \"{br}\" oifname \"lamina*\" oifname != \"{br}\" drop\n"
    );
    if rec.internal {
        s += &format!(
            "add rule inet {t} fwd-{br} iifname \"{br}\" oifname != \"{br}\" drop\n\
             add rule inet {t} fwd-{br} oifname \"{br}\" iifname != \"{br}\" drop\n"
        );
    } else {
        s += &format!(
            "add rule inet {t} fwd-{br} oifname \"{br}\" ct state established,related accept\n\
             add rule inet {t} fwd-{br} iifname \"{br}\" accept\n\
             add chain inet {t} nat-{br} {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
             flush chain inet {t} nat-{br}\n\
             add rule inet {t} nat-{br} ip saddr {sn} oifname != \"{br}\" masquerade\n",
            sn = rec.subnet
        );
    }
    s
}

fn enable_forwarding() -> Result<(), NetError> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| NetError::io("write", p.as_ref(), e))
}

/// Undo [`activate`]'s rules: the network's chains, and the table once it holds nothing. The bridge
/// stays (as docker0 does): taking a device down waits for RCU grace periods, ~150 ms here, which
/// every cold `run` would pay; [`remove_bridge`] is for `network rm` and `network prune`. Best
/// effort and idempotent (a crashed run may have left half of it).
pub fn deactivate(rec: &NetworkRecord) {
    let (br, t) = (&rec.bridge, NFT_TABLE);
    let mut script = format!("add table inet {t}\n");
    let chains: &[&str] = if rec.internal { &["fwd"] } else { &["fwd", "nat"] };
    for c in chains {
        script += &format!("flush chain inet {t} {c}-{br}\ndelete chain inet {t} {c}-{br}\n");
    }
    if nft(&script).is_err() {
        // Some chain was already gone; take them one by one.
        for c in chains {
            let _ = nft(&format!(
                "add table inet {t}\nflush chain inet {t} {c}-{br}\ndelete chain inet {t} {c}-{br}\n"
            ));
        }
    }
    if nft_table_empty() {
        let _ = nft(&format!("delete table inet {t}\n"));
    }
}

/// Whether the network's rules are loaded (it has containers, or a crash left them).
pub fn rules_loaded(rec: &NetworkRecord) -> bool {
    Command::new("nft")
        .args(["list", "chain", "inet", NFT_TABLE, &format!("fwd-{}", rec.bridge)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Delete the network's bridge, if it is ours.
pub fn remove_bridge(rec: &NetworkRecord, dir: &Path) {
    if bridge_owner(rec, dir, &rec.bridge) == Some(true) {
        let _ = ip_batch(&format!("link del dev {}\n", rec.bridge), None);
    }
}

fn nft_table_empty() -> bool {
    let out = Command::new("nft")
        .args(["list", "table", "inet", NFT_TABLE])
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => !String::from_utf8_lossy(&o.stdout).contains("chain "),
        _ => false,
    }
}

/// MTU for container interfaces: the bridge's, or 1500 before it has any.
pub fn bridge_mtu(rec: &NetworkRecord) -> u32 {
    sys_net(&rec.bridge, "mtu")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1500)
}

/// A veth pair: the host end on the bridge, the other made directly in the container's namespace
/// (`netns` is its fd, `pid` its init) as `lease.ifname`, then addressed and routed from inside.
/// `default_route`: only the first network of a container routes its default traffic.
pub fn attach(
    rec: &NetworkRecord,
    lease: &Lease,
    netns: BorrowedFd<'_>,
    default_route: bool,
) -> Result<(), NetError> {
    let mtu = bridge_mtu(rec);
    ip_batch(
        &format!(
            "link add name {h} mtu {mtu} master {br} type veth peer name {c} mtu {mtu} netns {pid}\n\
             link set dev {h} up\n",
            h = lease.host_veth,
            br = rec.bridge,
            c = lease.ifname,
            pid = lease.pid,
        ),
        None,
    )?;
    let mut inside = format!(
        "link set dev lo up\naddr add {ip}/{p} dev {c}\nlink set dev {c} up\n",
        ip = lease.ip,
        p = rec.subnet.prefix,
        c = lease.ifname
    );
    if default_route && !rec.internal {
        inside += &format!("route add default via {}\n", rec.gateway);
    }
    ip_batch(&inside, Some(netns))
}

/// Remove the host end of a container's veth (its peer goes with it). Gone already when the
/// container's namespace died.
pub fn detach(lease: &Lease) {
    if link_exists(&lease.host_veth) {
        let _ = ip_batch(&format!("link del dev {}\n", lease.host_veth), None);
    }
}

fn port_chain(kind: &str, lease: &Lease) -> String {
    format!(
        "{kind}-{}",
        &lease.container_id[..lease.container_id.len().min(12)]
    )
}

/// DNAT for `lease.ports` to the lease's address: traffic arriving from outside (prerouting) and
/// sent by the host to one of its own non-loopback addresses (output) is rewritten in the kernel,
/// which measured 1.6x the userspace proxy's throughput (bench/net.sh). Loopback is left to the
/// proxy, which binds the same host port: DNAT to 127.0.0.1 would need `route_localnet`, which
/// exposes the host's loopback services to the LAN (CVE-2020-8558). IPv6 host addresses are
/// proxied only.
pub fn publish(rec: &NetworkRecord, lease: &Lease) -> Result<(), NetError> {
    let t = NFT_TABLE;
    let (pre, out) = (port_chain("pre", lease), port_chain("out", lease));
    let mut s = format!(
        "add table inet {t}\n\
         add chain inet {t} {pre} {{ type nat hook prerouting priority -100; policy accept; }}\n\
         add chain inet {t} {out} {{ type nat hook output priority -100; policy accept; }}\n"
    );
    for p in &lease.ports {
        let IpAddr::V4(hip) = p.host_ip else { continue };
        if hip.is_loopback() {
            continue;
        }
        let proto = match p.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let daddr = if hip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {hip} ")
        };
        let target = format!("dnat ip to {}:{}", lease.ip, p.container_port);
        s += &format!(
            "add rule inet {t} {pre} iifname != \"{br}\" {daddr}fib daddr type local {proto} dport {hp} {target}\n\
             add rule inet {t} {out} ip daddr != 127.0.0.0/8 {daddr}fib daddr type local {proto} dport {hp} {target}\n",
            br = rec.bridge,
            hp = p.host_port,
        );
    }
    nft(&s)
}

/// Remove [`publish`]'s chains.
pub fn unpublish(lease: &Lease) {
    let t = NFT_TABLE;
    let mut s = format!("add table inet {t}\n");
    for c in [port_chain("pre", lease), port_chain("out", lease)] {
        s += &format!("flush chain inet {t} {c}\ndelete chain inet {t} {c}\n");
    }
    let _ = nft(&s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_networks_get_no_nat() {
        let mut rec = NetworkRecord {
            name: "n".into(),
            id: "0123456789abcdef0123".into(),
            bridge: "lamina-01234567".into(),
            subnet: "10.90.0.0/16".parse().unwrap(),
            gateway: "10.90.0.1".parse().unwrap(),
            internal: false,
            auto_subnet: true,
            created: 0,
        };
        let r = rules(&rec);
        assert!(
            r.contains("ip saddr 10.90.0.0/16 oifname != \"lamina-01234567\" masquerade"),
            "{r}"
        );
        rec.internal = true;
        let r = rules(&rec);
        assert!(!r.contains("masquerade"), "{r}");
        assert!(
            r.contains("iifname \"lamina-01234567\" oifname != \"lamina-01234567\" drop"),
            "{r}"
        );
    }
}
