//! `lamina run`: run a command in a new container from an image (or a rootfs directory).

use std::process::ExitCode;

use lamina_runner::RunError;

use super::container::{create, start};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove the container (and its writable layer) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Container name.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy ours).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Bind mount a host path: HOST:CONTAINER[:ro].
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volume: Vec<String>,
    /// Mount: type=bind,source=…,target=…[,readonly] or type=tmpfs,target=…
    #[arg(long = "mount", value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Working directory inside the container (created if missing).
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid], resolved in the image's /etc/passwd and /etc/group.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Add supplementary groups.
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Override the image's ENTRYPOINT ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Max number of processes.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Network: bridge (the default network, NAT outbound; default), a user network's name (see
    /// `lamina network create`), none (private, loopback only) or host.
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Another name peers on user networks resolve to this container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Add a line to /etc/hosts: NAME:IP.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// DNS server for /etc/resolv.conf (replaces the host's).
    #[arg(long)]
    pub dns: Vec<std::net::IpAddr>,
    /// DNS search domain for /etc/resolv.conf.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// resolv.conf option (e.g. ndots:2).
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Publish a port: [IP:]HOST:CONTAINER[/tcp|udp].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image EXPOSEs on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Container hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Keep stdin open: pass ours to the container (with -t, typed into its terminal).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal in the container (with -d, reach it with `lamina attach`).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Proxy signals sent to lamina to the container's process (docker's default).
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Mount the root filesystem read-only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs: /path[:size=…,mode=…].
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    #[command(flatten)]
    pub confine: super::container::confine::Flags,
    /// Set metadata on the container (KEY=VALUE); `ps --filter label=KEY[=VALUE]` finds it.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Restart policy of a detached container: no, on-failure[:N], always or unless-stopped
    /// (applied by its monitor for as long as it lives; there is no daemon).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Run lamina's init as pid 1: it starts the command, reaps zombies and forwards signals.
    #[arg(long)]
    pub init: bool,
    /// Health check command, run in the container by a detached container's monitor (`sh -c`).
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s, 500ms).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Time a health check may take.
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures that make the container unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Time at the start during which failures don't count.
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable the image's HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Signal `stop` sends first (default: the image's STOPSIGNAL, else SIGTERM).
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    /// Pull the image first: missing (when the store doesn't have it), always, or never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    #[command(flatten)]
    pub registry: super::transfer::RegistryFlags,
    /// Image reference, or a path to an unpacked rootfs directory.
    /// Run this platform's image of a multi-platform index (os/arch[/variant]); another architecture
    /// than the host's runs under QEMU emulation (binfmt_misc).
    #[arg(long)]
    pub platform: Option<String>,
    pub image: String,
    /// Command and arguments (replace the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Exit status for lamina's own errors in `run`, as docker's: the container's own statuses (its exit
/// code, 126/127 when its command can't be executed, 128+N when killed) stay distinguishable.
pub const OWN_ERROR: u8 = 125;

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    match run_container(cli, args) {
        Ok(code) => Ok(code),
        Err(e) => Ok(crate::output::report_error_as(&e, OWN_ERROR)),
    }
}

fn run_container(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let create::Created {
        id,
        dir,
        mut meta,
        req,
        lease,
    } = create::create(cli, args)?;
    if args.detach {
        let started = start::start_detached(&dir, &mut meta, &req)?;
        if let Some(l) = lease {
            l.persist();
        }
        return match started {
            Ok(()) => {
                crate::outln!("{id}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                start_failure(e)
            }
        };
    }
    let how = start::Attach {
        interactive: args.interactive,
        sig_proxy: args.sig_proxy,
    };
    let result = start::run_attached(&dir, &mut meta, &req, &how)?;
    if args.rm {
        let _ = std::fs::remove_dir_all(&dir);
    } else if let Some(l) = lease {
        l.persist();
    }
    exit_status(&id, result, args.memory.as_deref())
}

/// `run`'s and `start -a`'s exit status: the container's, or docker's codes for what went wrong.
pub fn exit_status(
    id: &str,
    result: Result<lamina_runner::RunOutcome, RunError>,
    memory: Option<&str>,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(outcome) => {
            if outcome.oom_killed {
                let limit = memory.unwrap_or("unlimited");
                eprintln!(
                    "lamina: container {} was killed: out of memory (memory limit {limit})",
                    &id[..12]
                );
            }
            Ok(ExitCode::from(outcome.exit_code.clamp(0, 255) as u8))
        }
        Err(e) => start_failure(e),
    }
}

/// docker's convention: 127 when the command isn't found, 126 when it can't be executed; other
/// start failures are lamina's (125, by the caller).
pub fn start_failure(e: RunError) -> anyhow::Result<ExitCode> {
    if let Some(f) = e.exec_failure() {
        eprintln!("error: {}", f.message);
        return Ok(ExitCode::from(f.code));
    }
    if e.is_user_error() {
        Err(e.into())
    } else {
        Err(anyhow::Error::new(e).context(crate::output::Internal("the container runtime failed".into())))
    }
}
