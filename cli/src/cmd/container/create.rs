//! A container record from `run`/`create` flags: the image resolved, every flag validated, the
//! record (`meta.json`) and the runner request (`request.json`) written; `start` runs it.

use anyhow::{Context, bail};
use lamina_runner::{Limits, NetOptions, Network, Process, RunRequest};

use super::{image, opts, state};
use crate::cmd::run::Args;

/// A container that exists and hasn't started.
pub struct Created {
    pub id: String,
    pub dir: std::path::PathBuf,
    pub meta: state::Meta,
    pub req: RunRequest,
    /// Holds the image's snapshots; persist it (the record keeps it) unless the container goes away
    /// with this process (`run --rm` in the foreground).
    pub lease: Option<lamina_store::Lease>,
}

pub fn create(cli: &crate::Cli, args: &Args) -> anyhow::Result<Created> {
    let root = cli.store_root();
    pull_as_asked(cli, args)?;
    let restart = opts::parse_restart(&args.restart)?;
    if args.rm && restart != lamina_runner::RestartPolicy::No {
        bail!("conflicting options: --restart and --rm");
    }
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
    let argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
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
        stop_signal: {
            let sig = args.stop_signal.clone().or_else(|| img.stop_signal.clone());
            if let Some(s) = &sig {
                crate::cmd::kill::parse_signal(s).context("invalid --stop-signal")?;
            }
            sig
        },
        stop_timeout: args.stop_timeout,
        entrypoint,
        cmd,
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
        // How it runs (detached or not, its log, its attach socket) is decided when it starts.
        detach: false,
        status_file: Some(dir.join("status.json")),
        attach_socket: None,
        log_file: None,
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
        supervision: lamina_runner::Supervision {
            restart,
            stop_file: Some(dir.join(state::STOP_FILE)),
            init: args.init,
            health: health_check(args, img.healthcheck.as_ref(), &dir)?,
            // Set by `start` for a detached `--rm` container.
            remove_dir: None,
        },
    };
    super::start::save_request(&dir, &req)?;
    Ok(Created {
        id,
        dir,
        meta,
        req,
        lease: img.lease,
    })
}

/// docker's merge: each `--health-*` flag replaces that field of the image's HEALTHCHECK; `NONE`
/// (or `--no-healthcheck`) means none.
fn health_check(
    args: &Args,
    image: Option<&lamina_store::config::Healthcheck>,
    dir: &std::path::Path,
) -> anyhow::Result<Option<lamina_runner::health::HealthCheck>> {
    if args.no_healthcheck {
        if args.health_cmd.is_some() {
            bail!("--no-healthcheck conflicts with --health-cmd");
        }
        return Ok(None);
    }
    let base = image.cloned().unwrap_or_default();
    let test = match &args.health_cmd {
        Some(c) => vec!["CMD-SHELL".to_string(), c.clone()],
        None => base.test.clone(),
    };
    let command = match test.split_first() {
        None => return Ok(None),
        Some((kind, _)) if kind == "NONE" => return Ok(None),
        Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
        Some((kind, rest)) if kind == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
        Some(_) => test.clone(),
    };
    if command.is_empty() {
        return Ok(None);
    }
    let ms =
        |flag: &Option<String>, name: &str, image_ns: Option<i64>, default_ms: u64| -> anyhow::Result<u64> {
            match flag {
                Some(s) => Ok(lamina_store::gc::parse_duration(s)
                    .with_context(|| format!("invalid --{name} {s:?}"))?
                    .as_millis() as u64),
                None => Ok(image_ns
                    .filter(|&n| n > 0)
                    .map_or(default_ms, |n| (n / 1_000_000) as u64)),
            }
        };
    Ok(Some(lamina_runner::health::HealthCheck {
        command,
        interval_ms: ms(&args.health_interval, "health-interval", base.interval, 30_000)?,
        timeout_ms: ms(&args.health_timeout, "health-timeout", base.timeout, 30_000)?,
        start_period_ms: ms(
            &args.health_start_period,
            "health-start-period",
            base.start_period,
            0,
        )?,
        retries: args
            .health_retries
            .or(base
                .retries
                .and_then(|r| u32::try_from(r).ok())
                .filter(|&r| r > 0))
            .unwrap_or(3),
        state_file: dir.join(state::HEALTH_FILE),
    }))
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
            let store = crate::cmd::open_store(cli)?;
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
        let pull_args = crate::cmd::pull::Args {
            image: args.image.clone(),
            platform: args.platform.clone(),
            include_foreign: false,
            quiet: false,
            registry: args.registry.clone(),
        };
        crate::cmd::pull::fetch(cli, &pull_args)?;
    }
    Ok(())
}
