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

const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Mark every fd from `first` up close-on-exec: whatever the caller leaked to us (a shell's
/// `7<dir`, a build tool's open files) is gone at our next execve, so it can never become a
/// container process's fd or, through `/proc/self/fd/N`, its cwd (CVE-2024-21626). Marking instead
/// of closing leaves any fd the runtime itself holds valid until then.
pub(crate) fn cloexec_from(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets a descriptor flag; it closes nothing
    // and touches no memory, so no owned fd is invalidated.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
