//! IPv4 subnets and address choice: parsing `10.88.0.0/16`, overlap with the host's routes, the next
//! free address. Pure functions; the lease files that make allocations hold across processes are in
//! [`super::state`].

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::NetError;

/// An IPv4 network in CIDR form; the address is kept masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = mask(prefix);
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The n-th address of the subnet (1 = the usual gateway).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        // Network and broadcast addresses are not hosts.
        if n == 0 || u64::from(n) >= size - 1 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// Host addresses in order.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (1u32..).map_while(|n| self.nth(n))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Subnet, NetError> {
        let bad = || NetError::InvalidSubnet {
            subnet: s.to_string(),
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        // A bridge network needs a gateway and at least one container address.
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl TryFrom<String> for Subnet {
    type Error = NetError;
    fn try_from(s: String) -> Result<Subnet, NetError> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// The host's IPv4 routes (destination networks, connected ones included) with their devices, read
/// from /proc/net/route: no netlink round trip, no exec.
pub fn host_routes() -> Vec<(String, Subnet)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    parse_routes(&text)
}

fn parse_routes(text: &str) -> Vec<(String, Subnet)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        // Little-endian hex, as the kernel prints them.
        let (Ok(dst), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        if m == 0 {
            // The default route overlaps everything; it is not a reason to avoid a subnet.
            continue;
        }
        let addr = Ipv4Addr::from(dst.swap_bytes());
        out.push((f[0].to_string(), Subnet::new(addr, m.count_ones() as u8)));
    }
    out
}

/// Candidate subnets for networks lamina picks itself: 10.88.0.0/16 … 10.99.0.0/16, then
/// 172.18.0.0/16 … 172.31.0.0/16 (podman's and docker's habits, so users recognise them).
pub fn candidates() -> impl Iterator<Item = Subnet> {
    let tens = (88u8..=99).map(|b| Subnet::new(Ipv4Addr::new(10, b, 0, 0), 16));
    let one72 = (18u8..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16));
    tens.chain(one72)
}

/// The first candidate that overlaps none of `taken`.
pub fn pick_subnet(taken: &[Subnet]) -> Option<Subnet> {
    candidates().find(|c| !taken.iter().any(|t| t.overlaps(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contain() {
        let s: Subnet = "10.88.3.7/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert!(s.contains("10.88.255.1".parse().unwrap()));
        assert!(!s.contains("10.89.0.1".parse().unwrap()));
        assert!("10.0.0.0/31".parse::<Subnet>().is_err());
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("fd00::/64".parse::<Subnet>().is_err());
    }

    #[test]
    fn hosts_skip_network_and_broadcast() {
        let s: Subnet = "192.168.1.0/30".parse().unwrap();
        let h: Vec<_> = s.hosts().map(|a| a.to_string()).collect();
        assert_eq!(h, ["192.168.1.1", "192.168.1.2"]);
    }

    #[test]
    fn overlap_and_pick() {
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        let b: Subnet = "10.88.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert_eq!(pick_subnet(&[]).unwrap(), b);
        let busy: Subnet = "10.88.4.0/24".parse().unwrap();
        assert_eq!(pick_subnet(&[busy]).unwrap().to_string(), "10.89.0.0/16");
        assert_eq!(pick_subnet(&[a]).unwrap().to_string(), "172.18.0.0/16");
    }

    #[test]
    fn proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = parse_routes(text);
        assert_eq!(r, vec![("eth0".to_string(), "192.0.2.0/24".parse().unwrap())]);
    }
}
