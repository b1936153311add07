//! User-mode networking for rootless containers, through slirp4netns.
//!
//! Without root on the host a container can't have a veth on a bridge or nftables NAT. slirp4netns
//! (Debian's `slirp4netns`) gives its network namespace a tap device whose packets it carries through
//! ordinary sockets of the user's own: outbound TCP/UDP works, with the user's rights and no more.
//! Chosen over pasta because Debian bookworm ships slirp4netns (passt only later) and podman uses it
//! there too; both would do. The container sees 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3 (which
//! forwards to the host's resolvers, loopback ones included). `--disable-host-loopback` keeps the host's
//! 127.0.0.1 out of reach, like the bridge. Published ports keep using the runner's userspace proxy.
//!
//! slirp4netns lives as long as the helper holds the write end of its exit pipe: when the helper ends
//! (however it ends), the pipe closes and slirp4netns exits.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

use super::SetupError;

/// The container's DNS server inside slirp4netns's network.
pub(crate) const DNS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 3);

/// How long slirp4netns gets to configure the tap device.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The slirp4netns binary to use, or why user-mode networking can't be had here: it must be on PATH,
/// and the tun device must open for this user (0666, as udev makes it; a pod has none unless given).
pub(crate) fn program() -> Result<PathBuf, &'static str> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let prog = std::env::split_paths(&path)
        .map(|d| d.join("slirp4netns"))
        .find(|p| p.is_file())
        .ok_or("no slirp4netns on PATH (package slirp4netns)")?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|_| "/dev/net/tun cannot be opened (absent, or not mode 0666)")?;
    Ok(prog)
}

/// A running slirp4netns for one container; stopped on drop.
pub(crate) struct UserNet {
    child: Child,
    /// Closing it tells slirp4netns to exit (`--exit-fd`).
    exit: Option<OwnedFd>,
}

impl Drop for UserNet {
    fn drop(&mut self) {
        drop(self.exit.take());
        // It exits on the closed pipe within a poll round; a stuck one is killed.
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SetupError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::io("create a pipe for", Path::new("slirp4netns"), e.into()))
}

/// Lets `fd` through execve (the child's end of a pipe; the parent drops its copy after the spawn).
fn inheritable(fd: &OwnedFd) -> Result<(), SetupError> {
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map(|_| ())
        .map_err(|e| SetupError::io("pass a pipe to", Path::new("slirp4netns"), e.into()))
}

/// Same user namespace as this process? slirp4netns must join the container's only if it differs
/// (setns into one's own user namespace fails).
fn same_userns(pid: i32) -> bool {
    let ino = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    ino("/proc/self/ns/user") == ino(&format!("/proc/{pid}/ns/user"))
}

/// Starts slirp4netns on the network namespace of `pid` (a container created, not yet started) and
/// waits until its tap device is up and configured. Its messages go to `log`.
pub(crate) fn start(program: &Path, pid: i32, log: &Path) -> Result<UserNet, SetupError> {
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    inheritable(&ready_w)?;
    inheritable(&exit_r)?;
    let stderr = std::fs::File::create(log).map_err(|e| SetupError::io("create", log, e))?;
    let mut cmd = Command::new(program);
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        &format!("--ready-fd={}", ready_w.as_raw_fd()),
        &format!("--exit-fd={}", exit_r.as_raw_fd()),
    ]);
    if !same_userns(pid) {
        cmd.arg(format!("--userns-path=/proc/{pid}/ns/user"));
    }
    cmd.args([&pid.to_string(), "tap0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let child = cmd.spawn().map_err(|e| SetupError::io("run", program, e))?;
    // Only slirp4netns holds these ends now: a dead slirp4netns reads as EOF on the ready pipe.
    drop(ready_w);
    drop(exit_r);
    let mut net = UserNet {
        child,
        exit: Some(exit_w),
    };
    let failed = |why: String| {
        let said = std::fs::read_to_string(log).unwrap_or_default();
        SetupError::UserNet {
            why: format!(
                "{why}{}",
                said.trim()
                    .lines()
                    .last()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            ),
        }
    };
    // Read on a thread so the wait has a timeout; a slirp4netns killed on timeout ends the read.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let _ = tx.send(std::fs::File::from(ready_r).read(&mut byte));
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(Ok(1)) => Ok(net),
        Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let status = net.child.wait().ok();
            Err(failed(format!(
                "slirp4netns exited ({})",
                status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string())
            )))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(failed(format!(
            "slirp4netns did not configure the network in {}s",
            READY_TIMEOUT.as_secs()
        ))),
    }
}
