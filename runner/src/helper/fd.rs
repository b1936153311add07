//! The few raw-fd and signal-disposition operations the helper needs at startup.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::spawn::REQUEST_FD;

/// Take ownership of the request socket the caller placed on fd 3. Marks it close-on-exec so the
/// container never inherits it.
pub(crate) fn take_request_socket() -> std::io::Result<UnixStream> {
    // SAFETY: fd 3 was placed by `spawn` for this process and nothing else in the helper refers to
    // it, so we become its only owner. If it is not open, the fcntl below fails with EBADF and
    // dropping the OwnedFd merely repeats that error.
    let fd = unsafe { OwnedFd::from_raw_fd(REQUEST_FD) };
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
    Ok(UnixStream::from(fd))
}

/// Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored across execve: reset it so the
/// container's processes get the default (terminate) like under docker.
pub(crate) fn default_sigpipe() {
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
}
