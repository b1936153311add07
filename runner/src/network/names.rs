//! /etc/hosts and /etc/resolv.conf contents.
//!
//! Containers on a user network find each other through their hosts files, which lamina rewrites
//! (under the networks lock) whenever a peer joins or leaves, rather than through a resolver per
//! network: without a daemon a resolver would be a process that someone must start, keep alive and
//! stop with the last container, and it would have to serve every libc's quirks; every libc reads
//! /etc/hosts on each lookup, so a rewritten file is seen at once. The files are bind-mounted, so a
//! rewrite keeps the inode (truncate and write, never rename).

use std::fmt::Write as _;
use std::net::IpAddr;

/// The lines every hosts file starts with.
pub const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// A hosts file: localhost, the container's own addresses (`own`: address and names, hostname
/// first), `--add-host` entries, then peers.
pub fn hosts(
    own: &[(IpAddr, Vec<String>)],
    extra: &[(String, IpAddr)],
    peers: &[(IpAddr, Vec<String>)],
) -> String {
    let mut s = String::from(LOCALHOST);
    let line = |s: &mut String, ip: &IpAddr, names: &[String]| {
        let mut seen: Vec<&str> = Vec::new();
        for n in names {
            if !n.is_empty() && !seen.contains(&n.as_str()) {
                seen.push(n);
            }
        }
        if !seen.is_empty() {
            let _ = writeln!(s, "{ip}\t{}", seen.join(" "));
        }
    };
    for (ip, names) in own {
        line(&mut s, ip, names);
    }
    for (name, ip) in extra {
        let _ = writeln!(s, "{ip}\t{name}");
    }
    for (ip, names) in peers {
        line(&mut s, ip, names);
    }
    s
}

/// resolv.conf from the host's: `dns` replaces its nameservers, `search` and `options` its lines of
/// that kind. Loopback nameservers (systemd-resolved's 127.0.0.53 and the like) mean nothing in
/// another network namespace and are dropped, as docker does; with none left, public resolvers.
pub fn resolv(
    host: &str,
    dns: &[IpAddr],
    search: &[String],
    options: &[String],
    keep_loopback: bool,
) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                let addr = f.next().unwrap_or("");
                let loopback = addr.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
                if !dns.is_empty() || (loopback && !keep_loopback) {
                    continue;
                }
                servers += 1;
            }
            Some("search") | Some("domain") if !search.is_empty() => continue,
            Some("options") if !options.is_empty() => continue,
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    for d in dns {
        let _ = writeln!(out, "nameserver {d}");
        servers += 1;
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    if !search.is_empty() {
        let _ = writeln!(out, "search {}", search.join(" "));
    }
    if !options.is_empty() {
        let _ = writeln!(out, "options {}", options.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_self_extra_and_peers() {
        let own = vec![(
            "10.0.0.2".parse().unwrap(),
            vec!["web".into(), "web".into(), "w1".into()],
        )];
        let extra = vec![("db.local".to_string(), "192.0.2.9".parse().unwrap())];
        let peers = vec![("10.0.0.3".parse().unwrap(), vec!["cache".into()])];
        let h = hosts(&own, &extra, &peers);
        assert!(h.starts_with(LOCALHOST));
        assert!(h.contains("10.0.0.2\tweb w1\n"), "{h}");
        assert!(h.contains("10.0.0.3\tcache\n"), "{h}");
        assert!(h.contains("192.0.2.9\tdb.local\n"), "{h}");
    }

    #[test]
    fn resolv_drops_loopback_and_takes_overrides() {
        let host = "nameserver 127.0.0.53\nsearch corp\noptions edns0\n";
        assert_eq!(
            resolv(host, &[], &[], &[], false),
            "search corp\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv(host, &[], &[], &[], true), host);
        let r = resolv(
            "nameserver 10.0.0.1\nsearch corp\n",
            &["192.0.2.53".parse().unwrap()],
            &["a.example".into(), "b.example".into()],
            &["ndots:2".into()],
            false,
        );
        assert_eq!(
            r,
            "nameserver 192.0.2.53\nsearch a.example b.example\noptions ndots:2\n"
        );
    }
}
