//! `-t`: the container's pseudo-terminal, helper side.
//!
//! libcontainer's init opens the pty inside the container's own devpts (so the slave is a device of
//! the container's mount, never a host tty) and sends the master over a console socket, which the
//! helper listens on in its private tmpfs. From there the helper is the terminal's only user outside
//! the container: the output goes to its stdout (the caller's terminal in the foreground, the log
//! file when detached) and to every client on the attach socket; input comes from its stdin in the
//! foreground (`-i`) and from attach clients as [`Frame`]s. The caller's terminal is in raw mode
//! (the CLI's job), so ^C is a byte the container's line discipline turns into SIGINT for the
//! container's foreground job, and nothing else.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::tty::{Frame, WinSize, set_winsize, winsize};

/// How long the init may take to send the master once the container is created.
const MASTER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long output may keep draining after the container's init exited (a background job holding
/// the slave open must not keep the helper alive).
pub(crate) const DRAIN: Duration = Duration::from_secs(2);

/// The console socket libcontainer's init connects to.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: PathBuf) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleSocket { listener, path })
    }

    /// The pty master, sent once the init has opened the container's terminal.
    pub fn receive_master(&self) -> std::io::Result<File> {
        self.listener.set_nonblocking(true)?;
        let start = Instant::now();
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if start.elapsed() > MASTER_TIMEOUT {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the container's init never sent its terminal",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(MASTER_TIMEOUT))?;
        let mut name = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg
                && let Some(&fd) = fds.first()
            {
                for &extra in &fds[1..] {
                    // SAFETY: received with SCM_RIGHTS, so these fds are new and ours alone.
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                // SAFETY: as above; we take sole ownership of the first one.
                return Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the console socket carried no file descriptor",
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the terminal's bytes go besides the helper's stdout.
pub(crate) struct TerminalIo {
    /// Copy the helper's stdin to the terminal (`-i` in the foreground).
    pub stdin: bool,
    /// Serve attach clients on this socket (a detached `-t` container).
    pub attach_socket: Option<PathBuf>,
    /// Write the output here instead of stdout (a detached container's log).
    pub log: Option<crate::logs::LogWriter>,
}

/// The running terminal proxy.
pub(crate) struct Terminal {
    master: Arc<File>,
    output: JoinHandle<()>,
    clients: Arc<Mutex<Vec<UnixStream>>>,
    socket: Option<PathBuf>,
}

impl Terminal {
    /// Starts copying. The initial size comes from the helper's stdin when that is a terminal.
    pub fn start(master: File, io: TerminalIo) -> std::io::Result<Terminal> {
        let master = Arc::new(master);
        let size = winsize(std::io::stdin().as_fd()).unwrap_or(DEFAULT_SIZE);
        let _ = set_winsize(master.as_fd(), size);
        let clients: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        if let Some(path) = &io.attach_socket {
            let listener = bind_long(path)?;
            let (m, c) = (master.clone(), clients.clone());
            std::thread::spawn(move || accept_clients(listener, m, c));
        }
        if io.stdin {
            let m = master.clone();
            std::thread::spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdin.read(&mut buf) {
                    if n == 0 || (&*m).write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        let (m, c, log) = (master.clone(), clients.clone(), io.log);
        let output = std::thread::spawn(move || copy_output(&m, &c, log.as_ref()));
        Ok(Terminal {
            master,
            output,
            clients,
            socket: io.attach_socket,
        })
    }

    /// The caller's terminal changed size (SIGWINCH): pass it on.
    pub fn resize_from_stdin(&self) {
        if let Some(size) = winsize(std::io::stdin().as_fd()) {
            let _ = set_winsize(self.master.as_fd(), size);
        }
    }

    /// The init exited: drain what is left (bounded), then end every attach client's stream.
    pub fn finish(&self) {
        let start = Instant::now();
        while !self.output.is_finished() && start.elapsed() < DRAIN {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
        for c in self.clients.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::io::stdout().flush();
    }
}

/// Master → stdout (or the log) and attach clients, until the slave side is gone (EIO).
fn copy_output(master: &File, clients: &Mutex<Vec<UnixStream>>, log: Option<&crate::logs::LogWriter>) {
    let mut buf = [0u8; 16 * 1024];
    let mut out = std::io::stdout();
    loop {
        let n = match (&*master).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match log {
            Some(l) => {
                let _ = l.append(crate::logs::Stream::Stdout, &buf[..n]);
            }
            None => {
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
        }
        let mut list = clients.lock().unwrap_or_else(|e| e.into_inner());
        list.retain_mut(|c| c.write_all(&buf[..n]).is_ok());
    }
}

fn accept_clients(listener: UnixListener, master: Arc<File>, clients: Arc<Mutex<Vec<UnixStream>>>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let Ok(writer) = conn.try_clone() else { continue };
        clients.lock().unwrap_or_else(|e| e.into_inner()).push(writer);
        let m = master.clone();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(conn);
            while let Ok(Some(frame)) = Frame::read_from(&mut r) {
                match frame {
                    Frame::Input(b) => {
                        if (&*m).write_all(&b).is_err() {
                            break;
                        }
                    }
                    Frame::Resize(size) => {
                        let _ = set_winsize(m.as_fd(), size);
                    }
                }
            }
        });
    }
}

/// Binds a Unix socket whose path may be longer than `sun_path` allows (container dirs under a deep
/// store): through the parent directory's `/proc/self/fd` entry.
pub(crate) fn bind_long(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let (dir, name) = split(path)?;
    let d = File::open(dir)?;
    UnixListener::bind(format!("/proc/self/fd/{}/{}", d.as_raw_fd(), name))
}

/// The client side of [`bind_long`].
pub fn connect_long(path: &Path) -> std::io::Result<UnixStream> {
    let (dir, name) = split(path)?;
    let d = File::open(dir)?;
    UnixStream::connect(format!("/proc/self/fd/{}/{}", d.as_raw_fd(), name))
}

fn split(path: &Path) -> std::io::Result<(&Path, String)> {
    match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => Ok((d, n.to_string_lossy().into_owned())),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a socket path", path.display()),
        )),
    }
}

/// The size a detached terminal starts with, before any client says otherwise.
const DEFAULT_SIZE: WinSize = WinSize { rows: 24, cols: 80 };
