//! Parsing of docker-style option values.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use lamina_runner::{Mount, PortMapping, Protocol};

/// `1g`, `512m`, `100k`, `1024` (bytes); case-insensitive, optional trailing `b`.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as u64)
}

/// `-p [IP:]HOST:CONTAINER[/tcp|udp]` (docker also allows `CONTAINER` alone; we need a host port).
pub fn parse_port(s: &str) -> anyhow::Result<PortMapping> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, "tcp")) => (a, Protocol::Tcp),
        Some((a, "udp")) => (a, Protocol::Udp),
        Some((_, p)) => bail!("invalid protocol {p:?} in -p {s}"),
        None => (s, Protocol::Tcp),
    };
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [ctr, host] => ("0.0.0.0", *host, *ctr),
        [ctr, host, ip] => (ip.trim_start_matches('[').trim_end_matches(']'), *host, *ctr),
        _ => bail!("invalid -p {s}: expected HOST:CONTAINER[/proto]"),
    };
    let host_ip: IpAddr = ip.parse().with_context(|| format!("invalid address in -p {s}"))?;
    Ok(PortMapping {
        host_ip,
        host_port: host
            .parse()
            .with_context(|| format!("invalid host port in -p {s}"))?,
        container_port: ctr
            .parse()
            .with_context(|| format!("invalid container port in -p {s}"))?,
        protocol: proto,
    })
}

/// `run -P`: every EXPOSEd port not published already, on a free host port (the kernel's pick for
/// an ephemeral bind, released again just before the helper binds it: a race only with other binders).
pub fn publish_exposed(exposed: &[String], given: &[PortMapping]) -> anyhow::Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for e in exposed {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let protocol = match proto {
            "udp" => Protocol::Udp,
            "tcp" => Protocol::Tcp,
            // sctp and the like: the proxy cannot carry them.
            _ => continue,
        };
        let container_port: u16 = port
            .parse()
            .with_context(|| format!("invalid EXPOSE {e:?} in the image"))?;
        if given
            .iter()
            .any(|p| p.container_port == container_port && p.protocol == protocol)
        {
            continue;
        }
        let any = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let host_port = match protocol {
            Protocol::Tcp => std::net::TcpListener::bind(any)?.local_addr()?.port(),
            Protocol::Udp => std::net::UdpSocket::bind(any)?.local_addr()?.port(),
        };
        out.push(PortMapping {
            host_ip: any.ip(),
            host_port,
            container_port,
            protocol,
        });
    }
    Ok(out)
}

/// How `ps` and `port` show a mapping: `0.0.0.0:8080->80/tcp`.
pub fn format_port(p: &PortMapping) -> String {
    let proto = match p.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let ip = match p.host_ip {
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    format!("{ip}:{}->{}/{proto}", p.host_port, p.container_port)
}

/// `--add-host NAME:IP` (IPv6 addresses may be bracketed; docker also takes `NAME=IP`).
pub fn parse_add_host(s: &str) -> anyhow::Result<(String, IpAddr)> {
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .with_context(|| format!("invalid --add-host {s:?}: expected NAME:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip
        .parse()
        .with_context(|| format!("invalid address in --add-host {s}"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        bail!("invalid host name in --add-host {s}");
    }
    Ok((name.to_string(), ip))
}

/// `-v HOST:CONTAINER[:ro|rw]`.
pub fn parse_volume(s: &str) -> anyhow::Result<Mount> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, ro) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, opt] => {
            let ro = opt.split(',').any(|o| o == "ro");
            (*src, *dst, ro)
        }
        _ => bail!("invalid volume {s}: expected HOST:CONTAINER[:ro]"),
    };
    if !src.starts_with('/') {
        bail!("volume {s}: named volumes are not supported, use an absolute host path");
    }
    Ok(Mount::Bind {
        source: PathBuf::from(src),
        destination: dst.to_string(),
        readonly: ro,
    })
}

/// `--mount type=bind,source=/a,target=/b[,readonly]` or `type=tmpfs,target=/t[,tmpfs-size=…][,tmpfs-mode=…]`.
pub fn parse_mount(s: &str) -> anyhow::Result<Mount> {
    let mut kind = "volume";
    let (mut src, mut dst, mut ro, mut size, mut mode) = (None, None, false, 0u64, 0o1777u32);
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        match k {
            "type" => {
                kind = if v == "bind" {
                    "bind"
                } else if v == "tmpfs" {
                    "tmpfs"
                } else {
                    "other"
                }
            }
            "source" | "src" => src = Some(v.to_string()),
            "target" | "destination" | "dst" => dst = Some(v.to_string()),
            "readonly" | "ro" => ro = v != "false" && v != "0",
            "tmpfs-size" => size = parse_size(v)?,
            "tmpfs-mode" => {
                mode = u32::from_str_radix(v, 8).with_context(|| format!("invalid tmpfs-mode in {s}"))?
            }
            "bind-propagation" | "consistency" => {}
            _ => bail!("unknown --mount option {k:?} in {s}"),
        }
    }
    let dst = dst.with_context(|| format!("--mount {s}: target is required"))?;
    match kind {
        "bind" => {
            let src = src.with_context(|| format!("--mount {s}: source is required"))?;
            Ok(Mount::Bind {
                source: PathBuf::from(src),
                destination: dst,
                readonly: ro,
            })
        }
        "tmpfs" => Ok(Mount::Tmpfs {
            destination: dst,
            size,
            mode,
        }),
        _ => bail!("--mount {s}: only type=bind and type=tmpfs are supported"),
    }
}

/// `--tmpfs /path[:size=…,mode=…]`.
pub fn parse_tmpfs(s: &str) -> anyhow::Result<Mount> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    let (mut size, mut mode) = (0u64, 0o1777u32);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", v)) => size = parse_size(v)?,
            Some(("mode", v)) => {
                mode = u32::from_str_radix(v, 8).with_context(|| format!("invalid mode in --tmpfs {s}"))?
            }
            _ => {}
        }
    }
    Ok(Mount::Tmpfs {
        destination: dst.to_string(),
        size,
        mode,
    })
}

/// `--env-file`: `KEY=VALUE` lines, `#` comments, a bare `KEY` takes the value from our environment.
pub fn read_env_file(path: &str) -> anyhow::Result<Vec<String>> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading env file {path}"))?;
    Ok(s.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(expand_env)
        .collect())
}

/// `-e KEY=VALUE` as is; `-e KEY` copies our value (dropped when unset, like docker).
pub fn expand_env(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

/// Merge env lists: later entries override earlier ones with the same key, order of first appearance.
pub fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for e in overrides {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        match out
            .iter()
            .position(|x| x.split_once('=').map(|(k, _)| k).unwrap_or(x) == key)
        {
            Some(i) => out[i] = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// `--label KEY=VALUE` (a bare KEY is an empty value, as docker).
pub fn parse_labels(labels: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            anyhow::bail!("--label {l:?}: empty key");
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// `--restart no|on-failure[:N]|always|unless-stopped`.
pub fn parse_restart(s: &str) -> anyhow::Result<lamina_runner::RestartPolicy> {
    use lamina_runner::RestartPolicy as P;
    let (name, max) = s.split_once(':').map_or((s, None), |(n, m)| (n, Some(m)));
    let policy =
        match (name, max) {
            ("no", None) => P::No,
            ("always", None) => P::Always,
            ("unless-stopped", None) => P::UnlessStopped,
            ("on-failure", None) => P::OnFailure { max_retries: None },
            ("on-failure", Some(m)) => P::OnFailure {
                max_retries: Some(m.parse().with_context(|| {
                    format!("invalid --restart {s:?}: maximum retry count must be a number")
                })?),
            },
            (_, Some(_)) => bail!("invalid --restart {s:?}: only on-failure takes a maximum retry count"),
            _ => bail!("invalid --restart {s:?}: expected no, on-failure[:N], always or unless-stopped"),
        };
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn ports() {
        let p = parse_port("8080:80").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, Protocol::Tcp)
        );
        let p = parse_port("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!(
            (p.host_ip.to_string().as_str(), p.protocol),
            ("127.0.0.1", Protocol::Udp)
        );
        assert!(parse_port("80").is_err());
        assert!(parse_port("1:2/sctp").is_err());
    }

    #[test]
    fn add_hosts_and_port_text() {
        assert_eq!(parse_add_host("db:192.0.2.1").unwrap().1.to_string(), "192.0.2.1");
        assert_eq!(
            parse_add_host("v6=[2001:db8::1]").unwrap().1.to_string(),
            "2001:db8::1"
        );
        assert!(parse_add_host("nohost").is_err());
        assert_eq!(
            format_port(&parse_port("127.0.0.1:8080:80/udp").unwrap()),
            "127.0.0.1:8080->80/udp"
        );
        let all = publish_exposed(&["80/tcp".into(), "53/udp".into(), "9/sctp".into()], &[]).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|p| p.host_port != 0));
        let given = parse_port("8080:80").unwrap();
        assert_eq!(publish_exposed(&["80/tcp".into()], &[given]).unwrap().len(), 0);
    }

    #[test]
    fn volumes_and_mounts() {
        assert_eq!(
            parse_volume("/a:/b:ro").unwrap(),
            Mount::Bind {
                source: "/a".into(),
                destination: "/b".into(),
                readonly: true
            }
        );
        assert!(parse_volume("name:/b").is_err());
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap(),
            Mount::Tmpfs {
                destination: "/t".into(),
                size: 1 << 20,
                mode: 0o1777
            }
        );
        assert_eq!(
            parse_tmpfs("/run:size=64k,mode=755").unwrap(),
            Mount::Tmpfs {
                destination: "/run".into(),
                size: 64 << 10,
                mode: 0o755
            }
        );
    }

    #[test]
    fn restart_policies() {
        use lamina_runner::RestartPolicy as P;
        assert_eq!(parse_restart("no").unwrap(), P::No);
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            P::OnFailure { max_retries: Some(3) }
        );
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
        let p = parse_restart("on-failure:2").unwrap();
        assert!(p.restarts_after(1, 1) && !p.restarts_after(1, 2) && !p.restarts_after(0, 0));
        assert!(parse_restart("always").unwrap().restarts_after(0, 100));
    }

    #[test]
    fn env_merge() {
        let m = merge_env(&["A=1".into(), "B=2".into()], &["B=3".into(), "C=4".into()]);
        assert_eq!(m, vec!["A=1", "B=3", "C=4"]);
    }
}
