//! Networking for a private network namespace: loopback up, and the userspace port proxy.
//!
//! Published ports are proxied, not NATed: the host-side socket is bound in the helper's (host)
//! namespace, then one thread per mapping `setns`-es into the container's network namespace (which
//! affects only the calling thread), confines itself ([`super::confine::current_thread`]: the
//! container's seccomp profile, no_new_privs, no capabilities) and serves: container-side sockets it
//! and its children create belong to the container's namespace and connect to its loopback. The
//! thread reports whether it got confined before `publish` returns, so a proxy never runs
//! unconfined. No iptables, no veth.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use libcontainer::network::link::LinkClient;
use libcontainer::network::wrapper::create_network_client;
use nix::sched::CloneFlags;

use super::SetupError;
use crate::request::{PortMapping, Protocol};

pub(crate) fn open_netns(pid: i32) -> Result<OwnedFd, SetupError> {
    let path = format!("/proc/{pid}/ns/net");
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|e| SetupError::io("open", path.as_ref(), e))
}

/// Bring `lo` up inside `netns` (a new network namespace starts with it down). Runs on a thread of its
/// own that ends in that namespace: in a user namespace we may enter the container's network
/// namespace (ours owns it) but never return to the host's (the initial one owns that). The thread is
/// joined before the container starts, so no thread outlives this call.
pub(crate) fn loopback_up(netns: &OwnedFd) -> Result<(), SetupError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| SetupError::Netns { source: e.into() })?;
            // A fresh namespace numbers its loopback 1.
            LinkClient::new(create_network_client())
                .and_then(|mut c| c.set_up(1))
                .map_err(|e| SetupError::Loopback {
                    message: e.to_string(),
                })
        })
        .join()
        .unwrap_or_else(|_| {
            Err(SetupError::Loopback {
                message: "the loopback thread panicked".into(),
            })
        })
    })
}

/// Bind the host side of every mapping now (so a busy port fails the start), serve in threads that
/// are confined before this returns.
pub(crate) fn publish(ports: &[PortMapping], netns: Arc<OwnedFd>) -> Result<(), SetupError> {
    for p in ports {
        let addr = SocketAddr::new(p.host_ip, p.host_port);
        let port = p.container_port;
        let (ready, confined) = std::sync::mpsc::sync_channel(1);
        let ns = netns.clone();
        match p.protocol {
            Protocol::Tcp => {
                let l = TcpListener::bind(addr).map_err(|e| SetupError::Publish { addr, source: e })?;
                std::thread::spawn(move || {
                    if enter_confined(&ns, &ready) {
                        serve_tcp(l, port)
                    }
                });
            }
            Protocol::Udp => {
                let s = UdpSocket::bind(addr).map_err(|e| SetupError::Publish { addr, source: e })?;
                std::thread::spawn(move || {
                    if enter_confined(&ns, &ready) {
                        serve_udp(s, port)
                    }
                });
            }
        }
        match confined.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(source),
            Err(_) => {
                return Err(SetupError::Netns {
                    source: std::io::Error::other("proxy thread exited before confining itself"),
                });
            }
        }
    }
    Ok(())
}

/// On a fresh proxy thread: join the container's network namespace, confine, say how it went.
fn enter_confined(netns: &OwnedFd, ready: &std::sync::mpsc::SyncSender<Result<(), SetupError>>) -> bool {
    let result = nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| SetupError::Netns { source: e.into() })
        .and_then(|()| super::confine::current_thread().map_err(SetupError::Confine));
    let ok = result.is_ok();
    let _ = ready.send(result);
    ok
}

/// Runs confined in the container's namespace: accept works on the host-side listener whatever the
/// thread's namespace; each connection's thread inherits namespace and confinement.
fn serve_tcp(l: TcpListener, port: u16) {
    for conn in l.incoming() {
        let Ok(client) = conn else { continue };
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
                return;
            };
            let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                return;
            };
            let t = std::thread::spawn(move || pump(c2, u2));
            pump(upstream, client);
            let _ = t.join();
        });
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn serve_udp(host: UdpSocket, port: u16) {
    // One container-side socket per client address, created in the container's namespace by this
    // (confined) thread; replies are relayed by a thread per client.
    let mut peers: HashMap<SocketAddr, UdpSocket> = HashMap::new();
    let mut buf = [0u8; 65536];
    loop {
        let Ok((n, from)) = host.recv_from(&mut buf) else {
            return;
        };
        let sock = match peers.get(&from) {
            Some(s) => s,
            None => {
                let Ok(s) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
                    continue;
                };
                if s.connect((Ipv4Addr::LOCALHOST, port)).is_err() {
                    continue;
                }
                let (Ok(reply), Ok(back)) = (s.try_clone(), host.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = reply.set_read_timeout(Some(Duration::from_secs(180)));
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = reply.recv(&mut buf) {
                        let _ = back.send_to(&buf[..n], from);
                    }
                });
                peers.entry(from).or_insert(s)
            }
        };
        let _ = sock.send(&buf[..n]);
    }
}
