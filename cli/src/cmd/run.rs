//! `lamina run`: run a command in a new container from an image (or a rootfs directory).

use std::process::ExitCode;

use anyhow::{Context, bail};
use lamina_runner::{Limits, NetOptions, Network, Process, RunError, RunRequest, RunStdio};

use super::container::{image, opts, state};

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
    let root = cli.store_root();
    pull_as_asked(cli, args)?;
    let platform = args
        .platform
        .as_deref()
        .map(lamina_store::Platform::parse)
        .transpose()
        .context("invalid --platform")?;
    let img = image::resolve_for(&root, &args.image, platform.as_ref())?;
    let entrypoint = match &args.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => img.entrypoint.clone(),
    };
    let cmd = if !args.command.is_empty() {
        args.command.clone()
    } else if args.entrypoint.is_some() {
        Vec::new()
    } else {
        img.cmd.clone()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        bail!(
            "no command specified for {}: the image has no CMD or ENTRYPOINT",
            args.image
        );
    }
    let mut env_over = Vec::new();
    for f in &args.env_file {
        env_over.extend(opts::read_env_file(f)?);
    }
    env_over.extend(args.env.iter().filter_map(|e| opts::expand_env(e)));
    let (network, networks) = match args.network.as_str() {
        "none" => (Network::None, Vec::new()),
        "host" => (Network::Host, Vec::new()),
        "default" | "bridge" => (Network::Bridge, Vec::new()),
        name => {
            // Checked here so a typo fails before anything is created.
            let nets = lamina_runner::network::Networks::for_store(&root);
            nets.lock()?.get(name)?;
            (Network::Bridge, vec![name.to_string()])
        }
    };
    if !args.network_alias.is_empty() && networks.is_empty() {
        bail!("--network-alias needs a user network (--network NAME); the default network has no names");
    }
    let mut mounts = Vec::new();
    for v in &args.volume {
        mounts.push(opts::parse_volume(v)?);
    }
    for m in &args.mount {
        mounts.push(opts::parse_mount(m)?);
    }
    for t in &args.tmpfs {
        mounts.push(opts::parse_tmpfs(t)?);
    }
    let mut ports = args
        .publish
        .iter()
        .map(|p| opts::parse_port(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.publish_all {
        ports.extend(opts::publish_exposed(&img.exposed, &ports)?);
    }
    if !ports.is_empty() && network == Network::Host {
        bail!("-p has no effect with --network host");
    }
    let extra_hosts = args
        .add_host
        .iter()
        .map(|h| opts::parse_add_host(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let confinement = args.confine.confinement()?;
    let mut labels = img.labels.clone();
    labels.extend(opts::parse_labels(&args.label)?);
    let limits = Limits {
        memory: args.memory.as_deref().map(opts::parse_size).transpose()?,
        cpus: args.cpus,
        pids: args.pids_limit,
    };

    let id = lamina_runner::new_id();
    let name = args.name.clone().unwrap_or_else(|| state::default_name(&id));
    if state::list(&root)?.iter().any(|r| r.meta.name == name) {
        bail!("container name {name:?} is already in use");
    }
    let dir = state::containers_dir(&root).join(&id);
    for sub in ["upper", "work"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.display()))?;
    }
    let meta = state::Meta {
        id: id.clone(),
        name,
        image: args.image.clone(),
        command: argv.clone(),
        created: state::now(),
        ports: ports.iter().map(opts::format_port).collect(),
        networks: if network == Network::Bridge && networks.is_empty() {
            vec![lamina_runner::network::DEFAULT_NETWORK.to_string()]
        } else {
            networks.clone()
        },
        auto_remove: args.rm,
        detached: args.detach,
        tty: args.tty,
        labels,
    };
    state::write_meta(&dir, &meta)?;
    // The lease outlives this process for as long as the container's record exists (a detached
    // container, a stopped one `lamina rm` has not removed yet): its upper dir sits on those snapshots.
    if let Some(l) = &img.lease {
        let rel = dir.strip_prefix(&root).unwrap_or(&dir);
        l.keep_while(rel)
            .context("recording the container in its lease")?;
    }

    let req = RunRequest {
        id: Some(id.clone()),
        lower_dirs: img.lowers.clone(),
        upper_dir: dir.join("upper"),
        work_dir: dir.join("work"),
        mounts,
        process: Process {
            args: argv,
            env: opts::merge_env(&img.env, &env_over),
            cwd: args.workdir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| {
                if img.working_dir.is_empty() {
                    "/".to_string()
                } else {
                    img.working_dir.clone()
                }
            }),
            user: args
                .user
                .clone()
                .or_else(|| Some(img.user.clone()).filter(|u| !u.is_empty())),
            additional_groups: args.group_add.clone(),
            tty: args.tty,
        },
        limits,
        network,
        hostname: args.hostname.clone(),
        etc_hostname: true,
        readonly_rootfs: args.read_only,
        helper_exe: std::env::current_exe().context("locating the lamina binary")?,
        ports,
        detach: args.detach,
        status_file: Some(dir.join("status.json")),
        attach_socket: (args.detach && args.tty).then(|| dir.join(state::ATTACH_SOCKET)),
        log_file: args.detach.then(|| dir.join(state::LOG_FILE)),
        confinement,
        net: NetOptions {
            networks_dir: Some(
                lamina_runner::network::Networks::for_store(&root)
                    .dir()
                    .to_path_buf(),
            ),
            networks,
            aliases: std::iter::once(meta.name.clone())
                .chain(args.network_alias.iter().cloned())
                .collect(),
            extra_hosts,
            dns: args.dns.clone(),
            dns_search: args.dns_search.clone(),
            dns_options: args.dns_option.clone(),
        },
    };

    if args.detach {
        // The monitor writes the output to the log itself (lamina_runner::logs), streams apart.
        let stdio = RunStdio {
            stdin: Some(std::process::Stdio::null()),
            stdout: Some(std::process::Stdio::null()),
            stderr: Some(std::process::Stdio::null()),
        };
        let started = lamina_runner::spawn(&req, stdio).and_then(|mut r| r.wait_started());
        if let Some(l) = img.lease {
            l.persist();
        }
        return match started {
            Ok(_) => {
                crate::outln!("{id}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                start_failure(e)
            }
        };
    }

    let stdio = RunStdio {
        stdin: if args.interactive {
            None
        } else {
            Some(std::process::Stdio::null())
        },
        ..Default::default()
    };
    // With -it the container's terminal line discipline sees our keys as typed (^C included).
    let raw = (args.tty && args.interactive)
        .then(lamina_runner::tty::RawMode::stdin)
        .flatten();
    let running = lamina_runner::spawn(&req, stdio);
    let result = running.and_then(|r| {
        let _fwd = args
            .sig_proxy
            .then(|| super::signals::forward_to(r.helper_pid() as i32));
        r.wait()
    });
    drop(raw);
    if args.rm {
        let _ = std::fs::remove_dir_all(&dir);
    } else if let Some(l) = img.lease {
        l.persist();
    }
    match result {
        Ok(outcome) => {
            if outcome.oom_killed {
                let limit = args.memory.as_deref().unwrap_or("unlimited");
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

/// `--pull`: fetch the image before resolving it, as `docker run` does (`Unable to find image … locally`).
fn pull_as_asked(cli: &crate::Cli, args: &Args) -> anyhow::Result<()> {
    if args.image.starts_with('/') || args.image.starts_with('.') {
        return Ok(());
    }
    let wanted = match args.pull.as_str() {
        "always" => true,
        "never" => false,
        _ => {
            let store = super::open_store(cli)?;
            match store.resolve(&args.image) {
                Ok(_) => false,
                Err(lamina_store::StoreError::ImageNotFound(_)) => {
                    eprintln!("Unable to find image '{}' locally", args.image);
                    true
                }
                Err(e) => return Err(e).with_context(|| format!("image {}", args.image)),
            }
        }
    };
    if wanted {
        let pull_args = super::pull::Args {
            image: args.image.clone(),
            platform: args.platform.clone(),
            include_foreign: false,
            quiet: false,
            registry: args.registry.clone(),
        };
        super::pull::fetch(cli, &pull_args)?;
    }
    Ok(())
}

/// docker's convention: 127 when the command isn't found, 126 when it can't be executed; other
/// start failures are lamina's (125, by the caller).
fn start_failure(e: RunError) -> anyhow::Result<ExitCode> {
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
