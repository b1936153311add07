//! The "remote host" network tests talk to: a network namespace `lamina-test-remote-*` joined to the
//! host by a veth on an RFC 2544 198.18.0.0/15 /30, serving HTTP from a thread inside it. Nothing
//! outside this machine is addressed. Needs root and iproute2.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What the remote answers every request with.
pub const BODY: &str = "hello-from-remote";
static NEXT: AtomicU32 = AtomicU32::new(0);

fn sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().expect("sh")
}

/// The remote host: a namespace, a veth to it, an HTTP server on `addr`. Removed on drop.
pub struct Remote {
    pub ns: String,
    host_if: String,
    pub addr: Ipv4Addr,
    /// The host's end of the link, as the remote sees it.
    pub host_addr: Ipv4Addr,
}

impl Remote {
    pub fn new() -> Remote {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // A /30 per remote: 198.18.<slot>.<4k+1>/30 host side, .<4k+2> remote side.
        let slot = (std::process::id() % 250) as u8;
        let base = (n % 60) as u8 * 4;
        let ns = format!("lamina-test-remote-{}-{n}", std::process::id());
        let host_if = format!("lmtr{}x{n}", std::process::id() % 100000);
        let (h, r) = (
            Ipv4Addr::new(198, 18, slot, base + 1),
            Ipv4Addr::new(198, 18, slot, base + 2),
        );
        let out = sh(&format!(
            "set -e; ip netns add {ns}; ip link add {host_if} type veth peer name eth0 netns {ns}; \
             ip addr add {h}/30 dev {host_if}; ip link set {host_if} up; \
             ip -n {ns} addr add {r}/30 dev eth0; ip -n {ns} link set eth0 up; ip -n {ns} link set lo up; \
             ip -n {ns} route add default via {h}"
        ));
        let remote = Remote {
            ns,
            host_if,
            addr: r,
            host_addr: h,
        };
        assert!(
            out.status.success(),
            "remote setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns_file = std::fs::File::open(format!("/run/netns/{}", remote.ns)).expect("netns file");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // setns affects only this thread: the listener lives in the remote namespace.
            rustix::thread::move_into_link_name_space(
                ns_file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            let l = TcpListener::bind((r, 8000)).expect("bind remote");
            tx.send(()).unwrap();
            for c in l.incoming().flatten() {
                serve(c);
            }
        });
        rx.recv().unwrap();
        remote
    }
}

/// Answers one request with [`BODY`].
pub fn serve(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 1024];
    let _ = c.read(&mut buf);
    let _ =
        c.write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len()).as_bytes());
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip link del {} 2>/dev/null; ip netns del {}",
            self.host_if, self.ns
        ));
    }
}
