//! Confinement for the helper's own threads that live next to a container: the port proxy's
//! threads sit in the container's network namespace and handle bytes the container sends. They get
//! the container's seccomp profile and no_new_privs, and no capabilities at all (they only accept,
//! connect, read and write). Capabilities, no_new_privs and a seccomp filter without TSYNC are all
//! per-thread in Linux, so the helper's main thread keeps what it needs for teardown; threads the
//! confined thread spawns inherit its state.

use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp};

/// Why a helper thread could not be confined.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfineError {
    #[error("cannot set no_new_privs on a proxy thread")]
    NoNewPrivs(#[source] std::io::Error),
    #[error("cannot drop the capabilities of a proxy thread")]
    Capabilities(#[source] libcontainer::syscall::SyscallError),
    #[error("the seccomp profile does not parse as an OCI seccomp object")]
    Profile(#[source] serde_json::Error),
    #[error("cannot load the seccomp filter on a proxy thread")]
    Seccomp(#[source] libcontainer::seccomp::SeccompError),
}

/// Confine the calling thread: no_new_privs, every capability set emptied (bounding first, while
/// CAP_SETPCAP is still held), then the container's seccomp filter.
pub(crate) fn current_thread() -> Result<(), ConfineError> {
    rustix::thread::set_no_new_privs(true).map_err(|e| ConfineError::NoNewPrivs(e.into()))?;
    let none: LinuxCapabilities = serde_json::from_value(serde_json::json!({
        "bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []
    }))
    .map_err(ConfineError::Profile)?;
    let syscall = libcontainer::syscall::syscall::create_syscall();
    libcontainer::capabilities::drop_privileges(&none, syscall.as_ref())
        .map_err(ConfineError::Capabilities)?;
    let profile: LinuxSeccomp =
        serde_json::from_value(super::seccomp::profile()).map_err(ConfineError::Profile)?;
    libcontainer::seccomp::initialize_seccomp(&profile).map_err(ConfineError::Seccomp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_parses_as_oci_seccomp() {
        let p: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(super::super::seccomp::profile()).unwrap();
        // No TSYNC: the filter must stay on the thread that loads it.
        assert!(p.flags().as_ref().is_none_or(|f| f.is_empty()));
    }
}
