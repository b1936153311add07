//! Terminals, caller side: raw mode on the caller's terminal, window sizes, the detach-key sequence,
//! and the frames an attach client sends to a container's monitor.
//!
//! A `-t` container's pseudo-terminal lives in the container's own devpts (libcontainer opens it there
//! and hands the master to the helper over a console socket, see `helper::pty`). The helper proxies
//! the master to its own stdio in the foreground, and a detached one serves it on the container's
//! attach socket: output is the raw byte stream, input arrives as [`Frame`]s.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// Window size of a terminal: rows, columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// The size of the terminal on `fd`, if it is one.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<WinSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; the fd is borrowed and open.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets the size of the terminal on `fd` (a pty master); the kernel sends SIGWINCH to its foreground
/// process group.
pub fn set_winsize(fd: BorrowedFd<'_>, size: WinSize) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the struct we pass; the fd is borrowed and open.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The caller's terminal in raw mode for as long as this lives (keys reach the container's pty as
/// typed: ^C is a byte the container's line discipline turns into SIGINT for its foreground job).
pub struct RawMode {
    fd: std::os::fd::OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin when stdin is a terminal; `None` otherwise.
    pub fn stdin() -> Option<RawMode> {
        let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
        let saved = termios::tcgetattr(&fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// What an attach client sends to a container's monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Bytes typed into the container's terminal.
    Input(Vec<u8>),
    /// The client's terminal changed size.
    Resize(WinSize),
}

const INPUT: u8 = 0;
const RESIZE: u8 = 1;
/// Largest input frame (a frame's length is a u16).
pub const MAX_INPUT_FRAME: usize = u16::MAX as usize;

impl Frame {
    /// `[kind u8][len u16 BE][payload]`.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let (kind, payload) = match self {
            Frame::Input(b) => (INPUT, b.clone()),
            Frame::Resize(s) => (RESIZE, [s.rows.to_be_bytes(), s.cols.to_be_bytes()].concat()),
        };
        for chunk in payload
            .chunks(MAX_INPUT_FRAME)
            .chain(payload.is_empty().then_some(&[][..]))
        {
            let mut buf = Vec::with_capacity(3 + chunk.len());
            buf.push(kind);
            buf.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            buf.extend_from_slice(chunk);
            w.write_all(&buf)?;
        }
        Ok(())
    }

    /// The next frame; `None` at a clean end of stream. Unknown kinds are skipped (a newer client).
    pub fn read_from(r: &mut impl Read) -> std::io::Result<Option<Frame>> {
        loop {
            let mut head = [0u8; 3];
            match r.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let len = u16::from_be_bytes([head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            r.read_exact(&mut payload)?;
            match head[0] {
                INPUT => return Ok(Some(Frame::Input(payload))),
                RESIZE if len == 4 => {
                    return Ok(Some(Frame::Resize(WinSize {
                        rows: u16::from_be_bytes([payload[0], payload[1]]),
                        cols: u16::from_be_bytes([payload[2], payload[3]]),
                    })));
                }
                _ => continue,
            }
        }
    }
}

/// A detach-key sequence (`--detach-keys`, docker's syntax: `ctrl-p,ctrl-q`, `ctrl-a,d`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

/// Docker's default.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

#[derive(Debug, thiserror::Error)]
#[error("invalid detach keys {keys:?}: {reason} (expected e.g. ctrl-p,ctrl-q or ctrl-a,d)")]
pub struct DetachKeysError {
    keys: String,
    reason: &'static str,
}

impl std::str::FromStr for DetachKeys {
    type Err = DetachKeysError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DetachKeysError {
            keys: s.to_owned(),
            reason,
        };
        let mut out = Vec::new();
        for key in s.split(',') {
            let b = match key.strip_prefix("ctrl-") {
                Some(k) if k.len() == 1 => {
                    let c = k.as_bytes()[0];
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' => 0,
                        b'[' => 27,
                        b'\\' => 28,
                        b']' => 29,
                        b'^' => 30,
                        b'_' => 31,
                        _ => return Err(err("ctrl- takes a-z, @, [, \\, ], ^ or _")),
                    }
                }
                Some(_) => return Err(err("ctrl- takes one character")),
                None if key.len() == 1 => key.as_bytes()[0],
                None => return Err(err("each key is one character or ctrl-<char>")),
            };
            out.push(b);
        }
        if out.is_empty() {
            return Err(err("no keys"));
        }
        Ok(DetachKeys(out))
    }
}

/// Finds the detach sequence in typed input, holding back a partial match until the next bytes say
/// whether it completes.
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: &DetachKeys) -> Self {
        DetachScanner {
            keys: keys.0.clone(),
            matched: 0,
        }
    }

    /// Bytes to pass on, and whether the sequence was completed (bytes after it are dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            // A broken partial match: what was held back was ordinary input.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker_spells_them() {
        assert_eq!("ctrl-p,ctrl-q".parse::<DetachKeys>().unwrap().0, [16, 17]);
        assert_eq!("ctrl-a,d".parse::<DetachKeys>().unwrap().0, [1, b'd']);
        assert_eq!("ctrl-@,ctrl-_".parse::<DetachKeys>().unwrap().0, [0, 31]);
        assert!("ctrl-pp".parse::<DetachKeys>().is_err());
        assert!("ctrl-1".parse::<DetachKeys>().is_err());
        assert!("ab".parse::<DetachKeys>().is_err());
    }

    #[test]
    fn scanner_holds_partial_matches_and_releases_broken_ones() {
        let keys: DetachKeys = "ctrl-p,ctrl-q".parse().unwrap();
        let mut s = DetachScanner::new(&keys);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
    }

    #[test]
    fn frames_round_trip_and_split_long_input() {
        let mut buf = Vec::new();
        Frame::Input(vec![7; 70_000]).write_to(&mut buf).unwrap();
        Frame::Resize(WinSize { rows: 40, cols: 120 })
            .write_to(&mut buf)
            .unwrap();
        let mut r = &buf[..];
        let a = Frame::read_from(&mut r).unwrap().unwrap();
        let b = Frame::read_from(&mut r).unwrap().unwrap();
        assert_eq!(a, Frame::Input(vec![7; MAX_INPUT_FRAME]));
        assert_eq!(b, Frame::Input(vec![7; 70_000 - MAX_INPUT_FRAME]));
        assert_eq!(
            Frame::read_from(&mut r).unwrap(),
            Some(Frame::Resize(WinSize { rows: 40, cols: 120 }))
        );
        assert_eq!(Frame::read_from(&mut r).unwrap(), None);
    }
}
