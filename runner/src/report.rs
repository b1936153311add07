//! What isolation a run gets on this machine, and why: the data behind `lamina info`.

use serde::Serialize;

use crate::userns::Isolation;

/// The isolation a RUN step or `lamina run` gets here.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationReport {
    pub isolation: Isolation,
    /// The host uid lamina was started as.
    pub host_uid: u32,
    /// Inside a container (podman, docker, a Kubernetes pod), and what said so.
    pub container: Option<String>,
    /// Steps get their own PID namespace (a fresh /proc could be mounted).
    pub pid_namespace: bool,
    /// `--memory`, `--cpus`, `--pids-limit` are enforced.
    pub limits_enforced: bool,
    /// Network of RUN steps by default (`bridge` as root; rootless `slirp4netns`, else `host`).
    pub default_network: &'static str,
    /// One line per decision, saying why.
    pub notes: Vec<String>,
}

/// Probe this machine (spawns the helper binary `exe` for the /proc probe).
pub fn isolation_report() -> IsolationReport {
    let isolation = crate::userns::isolation().clone();
    let userns = isolation.in_user_namespace();
    let container = container_hint();
    let mut notes = Vec::new();
    match &isolation {
        Isolation::Root => {
            notes.push("running as root: full isolation (namespaces, cgroups, bridge network)".into())
        }
        Isolation::Rootless { uid_map, .. } => notes.push(format!(
            "rootless with a subordinate range (uid map {uid_map}): images equal root-built ones"
        )),
        Isolation::SingleId { reason, uid_map } => notes.push(format!(
            "rootless with a single id (uid map {uid_map}): {reason}; steps may only use uid/gid 0 \
             (add a range to /etc/subuid and /etc/subgid)"
        )),
        Isolation::Unprivileged { reason } => {
            notes.push(format!("no user namespace: {reason}; builds and runs fail"))
        }
    }
    let pid_namespace = match &isolation {
        Isolation::Root => true,
        Isolation::Unprivileged { .. } => false,
        _ => {
            let ok = crate::helper::fresh_proc_once();
            if !ok {
                notes.push(
                    "a fresh /proc cannot be mounted (masked /proc paths: a container without \
                     --security-opt unmask=ALL / procMount: Unmasked): steps run without a PID \
                     namespace on a bind of /proc"
                        .into(),
                );
            }
            ok
        }
    };
    let limits_enforced = !userns;
    if userns {
        notes.push(
            "no writable cgroup hierarchy in the user namespace: --memory, --cpus and --pids-limit are \
             not enforced"
                .into(),
        );
    }
    let user_net = userns.then(crate::helper::user_net_program);
    match &user_net {
        Some(Ok(p)) => notes.push(format!(
            "no bridge without root: the default network is user-mode ({}), outbound only, the host's \
             loopback out of reach",
            p.display()
        )),
        Some(Err(why)) => notes.push(format!(
            "no bridge without root and no user-mode network ({why}): steps use the host network (the \
             user's own); --network none isolates"
        )),
        None => {}
    }
    IsolationReport {
        isolation,
        host_uid: crate::userns::host_uid(),
        container,
        pid_namespace,
        limits_enforced,
        default_network: match user_net {
            None => "bridge",
            Some(Ok(_)) => "slirp4netns",
            Some(Err(_)) => "host",
        },
        notes,
    }
}

fn container_hint() -> Option<String> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Some("kubernetes (KUBERNETES_SERVICE_HOST is set)".into());
    }
    for (file, what) in [("/run/.containerenv", "podman"), ("/.dockerenv", "docker")] {
        if std::path::Path::new(file).exists() {
            return Some(format!("{what} ({file} exists)"));
        }
    }
    std::env::var("container")
        .ok()
        .map(|c| format!("{c} ($container is set)"))
}
