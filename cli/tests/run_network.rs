//! Container networking against a "remote host" made here: a network namespace `lamina-test-remote-*`
//! joined to the host by a veth on an RFC 2544 198.18.0.0/15 /30, serving HTTP from a thread inside
//! it. Nothing outside this machine is addressed. Needs root, iproute2 and nft.

mod remote;
mod run_common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use remote::serve;
use remote::{BODY, Remote};
use run_common::{Fixture, require_root};

fn sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().expect("sh")
}

fn need_net_tools() -> bool {
    lamina_testkit::need_tools(&["ip", "nft"])
}

/// A store for one test; its networks (and idle bridges) are pruned on drop.
struct Store {
    fx: Fixture,
    root: PathBuf,
}

impl Store {
    fn new() -> Store {
        let fx = Fixture::new();
        let root = fx.path().join("store");
        Store { fx, root }
    }

    fn lamina(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lamina"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run lamina")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.lamina(args);
        assert!(
            o.status.success(),
            "lamina {args:?}: {}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn rootfs(&self) -> String {
        self.fx.lower.display().to_string()
    }

    fn networks_dir(&self) -> PathBuf {
        self.root.join("networks")
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let ids = self.lamina(&["ps", "-a", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.lamina(&["rm", "-f", id]);
        }
        let _ = self.lamina(&["network", "prune"]);
    }
}

/// `printf GET | nc` from inside a container: the response body or the error text.
fn fetch_script(host: &str, port: u16, path: &str) -> String {
    format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} 2>&1 | tail -n 1")
}

#[test]
fn nat_names_isolation_and_published_ports() {
    require_root!();
    if !need_net_tools() {
        return;
    }
    let remote = Remote::new();
    let st = Store::new();
    let rootfs = st.rootfs();
    let r = remote.addr.to_string();

    // Outbound through NAT on the default bridge.
    let out = st.ok(&["run", "--rm", &rootfs, "sh", "-c", &fetch_script(&r, 8000, "/")]);
    assert_eq!(out.trim(), BODY, "default bridge → remote");
    // --network none has only loopback.
    let out = st.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &rootfs,
        "sh",
        "-c",
        &fetch_script(&r, 8000, "/"),
    ]);
    assert_ne!(out.trim(), BODY, "--network none reached the remote host");
    assert!(
        st.ok(&["run", "--rm", "--network", "none", &rootfs, "ip", "-o", "link"])
            .lines()
            .count()
            == 1
    );

    // Two user networks; a server on n1 with an alias, published on the host.
    st.ok(&["network", "create", "n1"]);
    st.ok(&["network", "create", "--subnet", "192.168.213.0/24", "n2"]);
    st.ok(&["network", "create", "--internal", "n3"]);
    let host_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{host_port}:80");
    st.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n1",
        "--network-alias",
        "www",
        "-p",
        &publish,
        &rootfs,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert_eq!(
        st.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{host_port}")
    );
    // By name and by alias from a peer on n1 (httpd serves the container's /etc/hostname).
    let web_host = st.ok(&[
        "run",
        "--rm",
        "--network",
        "n1",
        &rootfs,
        "sh",
        "-c",
        &fetch_script("web", 80, "/hostname"),
    ]);
    let alias = st.ok(&[
        "run",
        "--rm",
        "--network",
        "n1",
        &rootfs,
        "sh",
        "-c",
        &fetch_script("www", 80, "/hostname"),
    ]);
    assert!(
        !web_host.trim().is_empty() && !web_host.contains("can't"),
        "by name: {web_host}"
    );
    assert_eq!(web_host, alias);
    // From n2 neither the name nor the address of web is reachable.
    let inspect: serde_json::Value = serde_json::from_str(&st.ok(&["network", "inspect", "n1"])).unwrap();
    let web_ip = inspect[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let other = st.ok(&[
        "run",
        "--rm",
        "--network",
        "n2",
        &rootfs,
        "sh",
        "-c",
        &fetch_script(&web_ip, 80, "/hostname"),
    ]);
    assert_ne!(other, web_host, "n2 reached a container on n1");
    let hosts = st.ok(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "--add-host",
        "db.test:192.0.2.9",
        &rootfs,
        "cat",
        "/etc/hosts",
    ]);
    assert!(
        !hosts.contains("web") && hosts.contains("192.0.2.9\tdb.test"),
        "{hosts}"
    );
    // n2 still has NAT; the internal n3 has none.
    assert_eq!(
        st.ok(&[
            "run",
            "--rm",
            "--network",
            "n2",
            &rootfs,
            "sh",
            "-c",
            &fetch_script(&r, 8000, "/")
        ])
        .trim(),
        BODY
    );
    assert_ne!(
        st.ok(&[
            "run",
            "--rm",
            "--network",
            "n3",
            &rootfs,
            "sh",
            "-c",
            &fetch_script(&r, 8000, "/")
        ])
        .trim(),
        BODY
    );
    // -p from the host.
    let mut body = String::new();
    let mut c = TcpStream::connect(("127.0.0.1", host_port)).expect("published port");
    c.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").unwrap();
    c.read_to_string(&mut body).unwrap();
    assert!(
        body.ends_with(web_host.trim_end()) || body.contains(web_host.trim()),
        "{body}"
    );
    // A port published on every address is DNATed: from the remote host to our address on its link.
    let any_port = TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let web2 = st
        .ok(&[
            "run",
            "-d",
            "-p",
            &format!("{any_port}:80"),
            &rootfs,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ])
        .trim()
        .to_string();
    let chain = format!("pre-{}", &web2[..12]);
    assert!(
        sh(&format!("nft list chain inet lamina {chain}"))
            .status
            .success(),
        "no DNAT chain {chain}"
    );
    let from_remote = sh(&format!(
        "ip netns exec {} sh -c \"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {} {any_port} | tail -n 1\"",
        remote.ns, remote.host_addr
    ));
    assert_eq!(
        String::from_utf8_lossy(&from_remote.stdout).trim(),
        &web2[..12],
        "DNAT from the remote host"
    );
    st.ok(&["rm", "-f", &web2]);
    assert!(
        !sh(&format!("nft list chain inet lamina {chain}"))
            .status
            .success(),
        "DNAT chain {chain} left"
    );
    // resolv.conf overrides.
    let resolv = st.ok(&[
        "run",
        "--rm",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.test",
        &rootfs,
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(resolv, "nameserver 192.0.2.53\nsearch corp.test\n");

    st.ok(&["rm", "-f", "web"]);
    assert!(st.lamina(&["network", "rm", "n1"]).status.success());
    assert!(!st.ok(&["network", "ls", "--format", "{{.Name}}"]).contains("n1"));
}

#[test]
fn run_steps_use_the_bridge_not_the_hosts_loopback() {
    require_root!();
    if !need_net_tools() || !lamina_testkit::need_tools(&["tar"]) {
        return;
    }
    let remote = Remote::new();
    let st = Store::new();
    let tar = st.fx.path().join("bb.tar");
    let o = sh(&format!("tar -C {} -cf {} .", st.rootfs(), tar.display()));
    assert!(o.status.success());
    st.ok(&["import", &tar.display().to_string(), "bb:net"]);
    // A service on the host's loopback: a RUN step must not reach it.
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = local.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in local.incoming().flatten() {
            serve(c);
        }
    });
    let ctx = st.fx.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let gw_try = format!(
        "for h in 127.0.0.1 $(ip route | awk '/default/ {{print $3}}'); do {} ; done",
        fetch_script("$h", lport, "/")
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM bb:net\nRUN {} > /remote\nRUN ({gw_try}) > /local\n",
            fetch_script(&remote.addr.to_string(), 8000, "/")
        ),
    )
    .unwrap();
    let ctx_s = ctx.display().to_string();
    st.ok(&["build", "--progress", "plain", "-t", "netstep", &ctx_s]);
    let remote_out = st.ok(&["run", "--rm", "--network", "none", "netstep", "cat", "/remote"]);
    assert_eq!(remote_out.trim(), BODY);
    let local_out = st.ok(&["run", "--rm", "--network", "none", "netstep", "cat", "/local"]);
    assert!(
        !local_out.contains(BODY),
        "a RUN step reached the host's 127.0.0.1:{lport}: {local_out}"
    );

    // RUN --network=host is an entitlement.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:net\nRUN true\nRUN --network=host true\n",
    )
    .unwrap();
    let o = st.lamina(&["build", "--progress", "plain", "--no-cache", &ctx_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("Dockerfile:3") && err.contains("--allow network.host"),
        "{err}"
    );
    st.ok(&["build", "--progress", "plain", "--allow", "network.host", &ctx_s]);
}

fn leftovers(nets: &Path, ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let links = sh("ip -o link show").stdout;
    let links = String::from_utf8_lossy(&links);
    for id in ids {
        let veth = format!("veth{}", &id[..8]);
        if links.contains(&veth) {
            left.push(format!("link {veth}"));
        }
        if nets.join("hosts").join(id).exists() {
            left.push(format!("hosts file of {id}"));
        }
    }
    for e in std::fs::read_dir(nets.join("leases"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for l in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            left.push(format!("lease {}", l.path().display()));
        }
    }
    left
}

#[test]
fn two_hundred_runs_leave_no_links_rules_or_leases() {
    require_root!();
    if !need_net_tools() {
        return;
    }
    let st = Store::new();
    let rootfs = st.rootfs();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..100 {
                    st.ok(&["run", "--rm", &rootfs, "true"]);
                }
            });
        }
    });
    let ids: Vec<String> = Vec::new();
    assert_eq!(leftovers(&st.networks_dir(), &ids), Vec::<String>::new());
    let rec: serde_json::Value = serde_json::from_str(&st.ok(&["network", "inspect", "bridge"])).unwrap();
    let bridge = rec[0]["Bridge"].as_str().unwrap().to_string();
    let rules = String::from_utf8_lossy(&sh("nft list ruleset").stdout).into_owned();
    assert!(!rules.contains(&format!("fwd-{bridge}")), "rules left:\n{rules}");
    let veths = String::from_utf8_lossy(&sh(&format!("ip -o link show master {bridge}")).stdout).into_owned();
    assert!(veths.trim().is_empty(), "veths left on {bridge}: {veths}");
}

#[test]
fn leases_of_killed_runs_are_reclaimed() {
    require_root!();
    if !need_net_tools() {
        return;
    }
    let st = Store::new();
    let rootfs = st.rootfs();
    let id = st.ok(&["run", "-d", &rootfs, "sleep", "300"]).trim().to_string();
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(st.root.join("containers").join(&id).join("status.json")).unwrap(),
    )
    .unwrap();
    let (monitor, pid) = (
        status["monitor_pid"].as_i64().unwrap(),
        status["pid"].as_i64().unwrap(),
    );
    assert_eq!(
        leftovers(&st.networks_dir(), &[]).len(),
        1,
        "one lease while it runs"
    );
    // Crash: monitor and container die without leaving their networks.
    sh(&format!("kill -9 {monitor} {pid}"));
    std::thread::sleep(Duration::from_millis(300));
    st.ok(&["network", "ls"]);
    assert_eq!(
        leftovers(&st.networks_dir(), std::slice::from_ref(&id)),
        Vec::<String>::new()
    );
}

/// Two stores choosing subnets at once never choose the same one: each store sees only its own records
/// and the host's routes (no bridge exists before a container starts), so without the host-wide claims
/// both would take the first free /16.
#[test]
fn two_stores_never_choose_the_same_subnet() {
    require_root!();
    if !need_net_tools() {
        return;
    }
    let stores = [Store::new(), Store::new()];
    let subnets: Vec<Vec<String>> = std::thread::scope(|s| {
        let made: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, st)| {
                s.spawn(move || {
                    (0..3)
                        .map(|n| {
                            let name = format!("claim{i}x{n}");
                            st.ok(&["network", "create", &name]);
                            let v: serde_json::Value =
                                serde_json::from_str(&st.ok(&["network", "inspect", &name])).unwrap();
                            v[0]["Subnet"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        made.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<&String> = subnets.iter().flatten().collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "a subnet chosen twice: {subnets:?}");
    for (i, st) in stores.iter().enumerate() {
        for n in 0..3 {
            st.ok(&["network", "rm", &format!("claim{i}x{n}")]);
        }
    }
}
