//! `lamina build`: build a Dockerfile into an image in the store (and/or an archive, a dir, a tar).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::human_size;
use anyhow::{Context as _, bail};
use lamina_builder::engine;
use lamina_builder::engine::output::{self, Output};
use lamina_builder::engine::progress::{Event, Mode, Printer, Progress as _};
use lamina_builder::engine::remote_cache::CacheSpec;
use lamina_builder::engine::{BuildRequest, SecretSource};
use lamina_store::archive::save::SaveFormat;
use lamina_store::layer::Compression;
use lamina_store::{Reference, Store};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Build context: a directory, `-` (a tar or a Dockerfile on stdin), a git URL
    /// (`https://…/repo.git#REF:SUBDIR`, `git://…`, `file:///…/repo.git`) or a tarball URL.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// Name (and tag) of the image; repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Dockerfile path (default: CONTEXT/Dockerfile); `-` reads it from stdin.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<String>,
    /// Build-time variable (`KEY=VALUE`, or `KEY` to take it from the environment); repeatable.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Stage to build (default: the last).
    #[arg(long)]
    pub target: Option<String>,
    /// Attach an attestation as buildx does: `type=provenance[,mode=min|max]` or `type=sbom`.
    #[arg(long, value_name = "type=provenance|sbom[,mode=min|max]")]
    pub attest: Vec<String>,
    /// Shorthand for `--attest type=provenance` (`true`, `false`, `mode=max`).
    #[arg(long, value_name = "true|false|mode=max", num_args = 0..=1, default_missing_value = "true")]
    pub provenance: Option<String>,
    /// Shorthand for `--attest type=sbom` (`true` or `false`).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    pub sbom: Option<String>,
    /// Label to set on the image (`KEY=VALUE`); repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Target platforms, comma-separated (`linux/amd64,linux/arm64`): several build into an image index.
    /// RUN for another architecture runs under QEMU emulation (binfmt_misc; `apt-get install qemu-user-static`).
    #[arg(long, value_name = "OS/ARCH[/VARIANT],…")]
    pub platform: Option<String>,
    /// Secret for RUN --mount=type=secret: `id=ID,src=FILE` or `id=ID,env=VAR`; repeatable.
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    pub secrets: Vec<String>,
    /// SSH agent socket for RUN --mount=type=ssh: `default` ($SSH_AUTH_SOCK) or `ID=SOCKET`; repeatable.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Network for RUN steps: default (the bridge: outbound through NAT, not the host's loopback),
    /// host (needs --allow network.host), or none (loopback only).
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Entitlements, as BuildKit's: `network.host` lets RUN steps use the host's network,
    /// `security.insecure` lets `RUN --security=insecure` ask for a privileged sandbox.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Don't use the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Don't use the cache for these stages; repeatable.
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Always pull base images (needs the registry client).
    #[arg(long)]
    pub pull: bool,
    /// Push every -t tag to its registry after the build.
    #[arg(long)]
    pub push: bool,
    /// Write the image ID to this file.
    #[arg(long, value_name = "PATH")]
    pub iidfile: Option<PathBuf>,
    /// Write the build's result as buildx does (`containerimage.digest`, `containerimage.config.digest`,
    /// `containerimage.descriptor`, `image.name`) to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// Layer compression: gzip or zstd, optionally `,level=N`.
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// A named context: `NAME=DIR`, `NAME=docker-image://REF` or `NAME=oci-layout://PATH[@DIGEST]`,
    /// read by FROM NAME, `COPY --from=NAME` and `RUN --mount from=NAME`; repeatable.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Run only the build checks (BuildKit's linter rules) and print what they find; exit 1 if any.
    #[arg(long)]
    pub check: bool,
    /// What to do, as buildx's `--call`: `build` (the default) or `check` (same as --check).
    #[arg(long, value_name = "build|check", default_value = "build")]
    pub call: String,
    /// Squash the layers this build adds into one (the base image's layers are kept).
    #[arg(long)]
    pub squash: bool,
    /// Clamp timestamps and set created times to this (seconds since the epoch): reproducible builds.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,
    /// Output: type=image|oci|docker|local|tar[,dest=PATH]; repeatable.
    #[arg(short = 'o', long = "output", value_name = "type=TYPE,dest=PATH")]
    pub outputs: Vec<String>,
    /// Progress output: auto, tty, plain or json.
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Import build cache: `type=registry,ref=REF`, `type=local,src=DIR`, or a bare REF; repeatable.
    #[arg(long = "cache-from", value_name = "type=registry,ref=REF|type=local,src=DIR")]
    pub cache_from: Vec<String>,
    /// Export build cache: `type=registry,ref=REF[,mode=min|max]` or `type=local,dest=DIR[,mode=…]`.
    #[arg(long = "cache-to", value_name = "type=registry,ref=REF|type=local,dest=DIR")]
    pub cache_to: Vec<String>,
    /// Registries of base images, --push and caches (and ADD https:// trusts --ca-cert too).
    #[command(flatten)]
    pub transport: super::transfer::TransportFlags,
}

fn kv(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("invalid {what} {s:?}: expected KEY=VALUE"),
    }
}

fn parse_compression(s: &str) -> anyhow::Result<Compression> {
    let (name, level) = match s.split_once(",level=") {
        Some((n, l)) => (n, Some(l)),
        None => (s, None),
    };
    let spec = match level {
        Some(l) => format!("{name}:{l}"),
        None => name.to_string(),
    };
    Compression::parse(&spec).with_context(|| format!("invalid --compression {s:?}: gzip|zstd[,level=N]"))
}

fn parse_secret(s: &str) -> anyhow::Result<(String, SecretSource)> {
    let mut id = None;
    let mut src = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(SecretSource::File(PathBuf::from(v))),
            Some(("env", v)) => src = Some(SecretSource::Env(v.to_string())),
            Some(("type", _)) => {}
            _ => bail!("invalid --secret {s:?}: expected id=ID,src=PATH or id=ID,env=VAR"),
        }
    }
    let id = id.with_context(|| format!("--secret {s:?} has no id="))?;
    let src = match src {
        Some(s) => s,
        // Like BuildKit: without src/env, an env var named like the id, else a file named like it.
        None if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
        None => SecretSource::File(PathBuf::from(&id)),
    };
    if let SecretSource::File(p) = &src
        && !p.is_file()
    {
        bail!("secret {id:?}: file {} not found", p.display());
    }
    Ok((id, src))
}

fn parse_caches(specs: &[String], export: bool) -> anyhow::Result<Vec<CacheSpec>> {
    specs
        .iter()
        .map(|s| CacheSpec::parse(s, export).map_err(anyhow::Error::new))
        .collect()
}

fn registry_flags(args: &Args, progress: &str) -> super::transfer::RegistryFlags {
    super::transfer::RegistryFlags {
        transport: args.transport.clone(),
        progress: progress.into(),
        jobs: 4,
        ..Default::default()
    }
}

/// Pulls a base image into the store (FROM of an image that isn't local, or `--pull`): tagged, for the
/// host platform; untagged for another `platform` (`os/arch[/variant]`), so the tag keeps naming the
/// host's image. Returns the manifest digest.
fn pull_base(
    cli: &crate::Cli,
    name: &str,
    quiet: bool,
    opts: &lamina_registry::RegistryOptions,
    platform: Option<&str>,
) -> anyhow::Result<lamina_store::Digest> {
    use lamina_registry::{BlobSources, RegistryClient, pull};
    let reference = Reference::parse(name).with_context(|| format!("invalid base image name {name:?}"))?;
    if !quiet {
        eprintln!("=> pulling {}", reference.familiar());
    }
    let root = cli.store_root();
    let blobs =
        lamina_store::BlobStore::open(&root).with_context(|| format!("opening store {}", root.display()))?;
    let sources = BlobSources::new(&root);
    let rt = super::transfer::runtime()?;
    let popts = pull::PullOptions {
        platform: platform
            .map(lamina_store::Platform::parse)
            .transpose()
            .context("invalid platform for a base image")?,
        include_foreign: false,
    };
    let pulled = rt
        .block_on(async {
            let client = RegistryClient::new(reference.registry(), opts)?;
            pull::pull(
                &client,
                &reference,
                &blobs,
                Some(&sources),
                &popts,
                &lamina_registry::NoProgress,
                &|_, _| {},
            )
            .await
        })
        .with_context(|| {
            format!(
                "base image {} is not in the local store and pulling it failed",
                reference.familiar()
            )
        })?;
    // Through the store's locked index writer: concurrent builds tag too.
    let store = super::open_store(cli)?;
    let mut desc = pulled.manifest.clone();
    desc.platform = None;
    match platform {
        None => store.set_tag(&reference, desc),
        Some(_) => store.add_untagged(desc),
    }
    .with_context(|| format!("tagging {} in {}", reference.familiar(), root.display()))?;
    Ok(pulled.manifest.digest.clone())
}

/// Whether the store has `name` for `platform` (its config says so, or says nothing).
fn local_has(store: &Store, name: &str, platform: &str) -> bool {
    store
        .resolve(name)
        .ok()
        .and_then(|r| store.load_image(r.digest()).ok())
        .is_some_and(|img| {
            let c = &img.config;
            let has = match &c.variant {
                Some(v) => format!("{}/{}/{v}", c.os, c.architecture),
                None => format!("{}/{}", c.os, c.architecture),
            };
            c.architecture.is_empty() || has == platform || platform.starts_with(&format!("{has}/"))
        })
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    if args.push && args.tags.is_empty() {
        bail!("--push needs at least one -t/--tag naming the registry and repository to push to");
    }
    if args.context.as_os_str() == "-" && args.file.as_deref() == Some("-") {
        bail!("the context and the Dockerfile can't both come from stdin (-f - with context -)");
    }
    let main_context = super::build_source::open(&args.context, &registry_flags(args, "quiet").options()?)?;
    let (dockerfile, name) = match args.file.as_deref() {
        Some(p) if main_context.is_remote() && !p.starts_with('/') && p != "-" => {
            let path = main_context.dir.join(p);
            (
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading Dockerfile {p} in the context"))?,
                p.to_string(),
            )
        }
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the Dockerfile from stdin")?;
            (s, "Dockerfile".to_string())
        }
        Some(p) => {
            let path = PathBuf::from(p);
            (
                std::fs::read_to_string(&path).with_context(|| format!("reading Dockerfile {p}"))?,
                p.to_string(),
            )
        }
        None => {
            let p = main_context.dir.join("Dockerfile");
            (
                std::fs::read_to_string(&p).with_context(|| format!("reading Dockerfile {}", p.display()))?,
                "Dockerfile".into(),
            )
        }
    };
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(a) {
                Ok(v) => build_args.insert(a.clone(), v),
                Err(_) => None,
            },
        };
    }
    let check_only = match args.call.as_str() {
        "build" => args.check,
        "check" => true,
        c => bail!("--call {c:?}: lamina can call build or check"),
    };
    let check_store = super::open_store(cli).ok();
    // The build's one parse: the checks read it, then the engine's plan takes it.
    let parsed = lamina_builder::dockerfile::parse(&dockerfile, &name);
    let warnings = super::build_check::warnings(
        parsed.as_ref(),
        &build_args,
        args.target.as_deref(),
        check_store.as_ref(),
        // The ignore file the engine reads: CONTEXT/.dockerignore, or NAME.dockerignore next to -f NAME.
        Some((&main_context.dir, std::path::Path::new(&name))),
    );
    if check_only {
        return Ok(super::build_check::run(&dockerfile, &name, &warnings?));
    }
    // A file that does not parse is reported by the build itself, with its progress.
    if let Ok(w) = &warnings
        && !args.quiet
    {
        super::build_check::print_summary(w);
    }
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = kv(l, "--label")?;
        labels.insert(k, v);
    }
    let mut secrets = BTreeMap::new();
    for s in &args.secrets {
        let (id, src) = parse_secret(s)?;
        secrets.insert(id, src);
    }
    let mut ssh = BTreeMap::new();
    for s in &args.ssh {
        let (id, sock) = match s.split_once('=') {
            Some((i, p)) => (i.to_string(), PathBuf::from(p)),
            None => (
                s.clone(),
                std::env::var_os("SSH_AUTH_SOCK")
                    .map(PathBuf::from)
                    .with_context(|| format!("--ssh {s}: SSH_AUTH_SOCK is not set"))?,
            ),
        };
        ssh.insert(id, sock);
    }
    for a in &args.allow {
        if a != "network.host" && a != "security.insecure" {
            bail!("unknown entitlement --allow {a:?}: lamina knows network.host and security.insecure");
        }
    }
    let host_allowed = args.allow.iter().any(|a| a == "network.host");
    let insecure_allowed = args.allow.iter().any(|a| a == "security.insecure");
    let network = match args.network.as_str() {
        "none" => lamina_runner::Network::None,
        // RUN steps get network access by default, as with docker build: the default bridge.
        "default" | "bridge" => lamina_runner::Network::Bridge,
        "host" if host_allowed => lamina_runner::Network::Host,
        "host" => bail!("--network host needs --allow network.host"),
        n => bail!("invalid --network {n:?}: none, host or default"),
    };
    // RUN steps on the bridge lease their addresses in this store.
    lamina_runner::network::set_default_dir(
        lamina_runner::network::Networks::for_store(&cli.store_root())
            .dir()
            .to_path_buf(),
    );
    let tags: Vec<Reference> = args
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<anyhow::Result<_>>()?;
    let outputs: Vec<Output> = args
        .outputs
        .iter()
        .map(|o| Output::parse(o).map_err(anyhow::Error::new))
        .collect::<anyhow::Result<_>>()?;
    let mode = match args.progress.as_str() {
        _ if args.quiet => Mode::Quiet,
        "auto" if std::io::stderr().is_terminal() => Mode::Tty,
        "auto" | "plain" => Mode::Plain,
        "tty" => Mode::Tty,
        "json" | "rawjson" => Mode::Json,
        p => bail!("invalid --progress {p:?}: auto, tty, plain or json"),
    };
    let mut req = BuildRequest {
        dockerfile,
        dockerfile_name: name,
        context_dir: main_context.dir.clone(),
        build_args,
        target: args.target.clone(),
        labels,
        secrets,
        ssh,
        network,
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        compression: parse_compression(&args.compression)?,
        squash: args.squash,
        source_date_epoch: args.source_date_epoch,
        helper_exe: std::env::current_exe().context("locating the lamina binary")?,
        platform: args.platform.clone(),
        image_overrides: BTreeMap::new(),
        cache_from: parse_caches(&args.cache_from, false)?,
        cache_to: parse_caches(&args.cache_to, true)?,
        registry: registry_flags(args, "quiet").options()?,
        unprivileged: false,
        runtime: Some(super::transfer::runtime()?.handle().clone()),
        attest: parse_attest(args)?,
        tags: args.tags.clone(),
        named_contexts: BTreeMap::new(),
    };
    let store = super::open_store(cli)?;
    // Held until the image is tagged and exported: until then only the lease keeps its content (and the
    // untagged images of named contexts) from prune.
    let lease = store.lease()?;
    req.named_contexts = super::build_context::resolve(&store, &args.build_contexts, &req.registry)?;
    // Entitlements and the images to pull are asked of the plan the build runs.
    let parsed = parsed.map_err(|e| engine::BuildError::Parse(Box::new(e)))?;
    let mut plan = engine::Plan::from_parsed(parsed, &req)?;
    plan.check_entitlements(host_allowed, insecure_allowed)?;
    let host = lamina_builder::dockerfile::graph::Platform::host().to_string();
    // Made before the pulls: in the TTY and JSON views every message goes through it (a stray stderr
    // line would break the pane or the JSON stream).
    let printer = Printer::new(mode);
    printer.set_color(crate::output::color());
    let mut seen = std::collections::BTreeSet::new();
    loop {
        for (name, platform) in plan.external_images()? {
            if !seen.insert((name.clone(), platform.clone())) {
                continue;
            }
            let quiet = mode != Mode::Plain;
            if matches!(mode, Mode::Tty | Mode::Json) {
                printer.event(Event::Info {
                    message: format!("pulling {name} if it is not local"),
                });
            }
            if platform == host {
                if args.pull || store.resolve(&name).is_err() {
                    pull_base(cli, &name, quiet, &req.registry, None)?;
                }
            } else if args.pull || !local_has(&store, &name, &platform) {
                let d = pull_base(cli, &name, quiet, &req.registry, Some(&platform))?;
                req.image_overrides.insert((name, platform), d);
            }
        }
        // The bases' ONBUILD triggers may name more images (or stages with bases of their own).
        if !plan.add_triggers(&store, &req)? {
            break;
        }
        plan.check_entitlements(host_allowed, insecure_allowed)?;
    }
    let store = store.leased(&lease);
    let outcome = engine::build_plan(&store, &req, plan, &printer)?;
    let image = &outcome.image;
    if outputs.is_empty() || outputs.contains(&Output::Image) {
        match &outcome.index {
            Some(index) => {
                for t in &tags {
                    store
                        .set_tag(t, index.clone())
                        .with_context(|| format!("tagging {}", t.familiar()))?;
                }
                if tags.is_empty() {
                    store
                        .add_untagged(index.clone())
                        .context("recording the untagged index in the store")?;
                }
            }
            None => {
                engine::tag_image(&store, image, &tags)?;
                if tags.is_empty() {
                    // Recorded untagged, so the printed ID works in run/tag/rmi (`<none>` in `images`).
                    store
                        .add_untagged(image.descriptor())
                        .context("recording the untagged image in the store")?;
                }
            }
        }
    }
    let mtime = args.source_date_epoch.unwrap_or(0).max(0) as u64;
    for o in &outputs {
        match o {
            Output::Image => {}
            Output::Oci(d) | Output::Docker(d) => {
                let format = match o {
                    Output::Docker(_) => SaveFormat::Docker,
                    _ => SaveFormat::Oci,
                };
                match &outcome.index {
                    Some(index) => {
                        let item = output::IndexItem {
                            index,
                            images: &outcome.images,
                            primary: image,
                        };
                        output::write_index_archive(&store, &item, &tags, d, mtime, format)?
                    }
                    None => output::write_archive(&store, image, &tags, d, mtime, format)?,
                }
            }
            Output::Local(d) => {
                let w = lamina_builder::engine::layers::LayerWriter::new(
                    &store,
                    req.compression,
                    req.source_date_epoch,
                )?;
                if outcome.images.len() > 1 {
                    // As buildx: one dir per platform, `linux_arm64` (variant too: `linux_arm_v7`).
                    for img in &outcome.images {
                        let dir = d.join(img.config.platform().to_string().replace('/', "_"));
                        output::write_local(&w, img, &dir)?
                    }
                } else {
                    output::write_local(&w, image, d)?
                }
            }
            Output::Tar(d) => {
                let w = lamina_builder::engine::layers::LayerWriter::new(
                    &store,
                    req.compression,
                    req.source_date_epoch,
                )?;
                output::write_rootfs_tar(&store, &w, image, d, req.source_date_epoch)?
            }
        }
    }
    if args.push {
        let flags = registry_flags(args, if mode == Mode::Quiet { "quiet" } else { "plain" });
        for tag in &tags {
            let pushed = super::push::push_image(cli, &tag.to_string(), None, &flags)?;
            printer.event(Event::Info {
                message: format!("pushed {}@{}", pushed.dest.familiar(), pushed.digest),
            });
        }
    }
    for (dest, digest, n) in &outcome.cache_exported {
        printer.event(Event::Info {
            message: format!("exported {n} cache records to {dest} ({digest})"),
        });
    }
    // An index has no config: its ID is its digest.
    let id = match &outcome.index {
        Some(index) => index.digest.to_string(),
        None => image.config_digest.to_string(),
    };
    if let Some(p) = &args.metadata_file {
        std::fs::write(p, metadata(image, outcome.index.as_ref(), &tags)?)
            .with_context(|| format!("writing --metadata-file {}", p.display()))?;
    }
    if let Some(p) = &args.iidfile {
        std::fs::write(p, &id).with_context(|| format!("writing --iidfile {}", p.display()))?;
    }
    printer.event(Event::Result {
        image_id: id.clone(),
        manifest_digest: outcome
            .index
            .as_ref()
            .map_or(&image.manifest_digest, |i| &i.digest)
            .to_string(),
        tags: args.tags.clone(),
        executed: outcome.executed,
        cached: outcome.cached,
    });
    printer.finish();
    crate::outln!("{id}");
    // The build's content is tagged (or exported) by now: its lease may go before GC looks.
    drop(store);
    drop(lease);
    auto_gc(cli, mode == Mode::Quiet)?;
    Ok(ExitCode::SUCCESS)
}

/// The `--metadata-file` document, with buildx's keys: the manifest's digest and descriptor, the config
/// digest (the image ID), the tags as full names joined by commas.
fn metadata(
    image: &lamina_store::image::Image,
    index: Option<&lamina_store::Descriptor>,
    tags: &[Reference],
) -> anyhow::Result<String> {
    // For a multi-platform build buildx names the index; the config digest stays the primary image's.
    let desc = match index {
        Some(i) => serde_json::to_value(i)?,
        None => {
            let mut desc = serde_json::json!({
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest.to_string(),
                "size": image.manifest_size,
            });
            if let Some(p) = image.descriptor().platform {
                desc["platform"] = serde_json::to_value(p)?;
            }
            desc
        }
    };
    let digest = index.map_or(&image.manifest_digest, |i| &i.digest);
    let mut doc = serde_json::json!({
        "containerimage.config.digest": image.config_digest.to_string(),
        "containerimage.descriptor": desc,
        "containerimage.digest": digest.to_string(),
    });
    if !tags.is_empty() {
        let names: Vec<String> = tags.iter().map(ToString::to_string).collect();
        doc["image.name"] = names.join(",").into();
    }
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// GC after a build when the store is over its budget (`gc.keepStorage` in `<root>/config.json`, or
/// `LAMINA_GC_KEEP_STORAGE`; off unless set). Skipped, not waited for, while another lamina process holds
/// the store lock: the next build catches up.
fn auto_gc(cli: &crate::Cli, quiet: bool) -> anyhow::Result<()> {
    let root = cli.store_root();
    let policy = lamina_store::gc::GcPolicy::load(&root)?;
    let Some(keep) = policy.keep_storage else {
        return Ok(());
    };
    let used = lamina_store::gc::disk_usage(&root);
    if used <= keep {
        return Ok(());
    }
    match lamina_store::lock::try_acquire(&root.join("lock"), true) {
        Ok(Some(_free)) => {}
        _ => {
            if !quiet {
                eprintln!(
                    "=> gc: store busy, skipped (over its {} budget)",
                    human_size(keep)
                );
            }
            return Ok(());
        }
    }
    let store = super::open_store(cli)?;
    let report = lamina_store::prune::prune(
        &store,
        lamina_store::prune::PruneOptions {
            gc: Some(lamina_store::gc::GcOptions {
                keep_storage: Some(keep),
                until: None,
            }),
            ..Default::default()
        },
    )?;
    if !quiet {
        eprintln!(
            "=> gc: store used {}, over its {} budget; reclaimed {}",
            human_size(used),
            human_size(keep),
            human_size(report.freed())
        );
    }
    Ok(())
}

/// `--attest`, `--provenance`, `--sbom` → what to attach (buildx's syntax).
fn parse_attest(args: &Args) -> anyhow::Result<engine::attest::Attest> {
    use engine::attest::ProvenanceMode;
    let mut a = engine::attest::Attest::default();
    let mode = |m: Option<&str>, flag: &str| match m {
        None | Some("min") => Ok(ProvenanceMode::Min),
        Some("max") => Ok(ProvenanceMode::Max),
        Some(other) => bail!("{flag}: mode={other}: expected min or max"),
    };
    for spec in &args.attest {
        let mut kv = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .with_context(|| format!("--attest {spec}: expected type=provenance or type=sbom"))?;
            kv.insert(k.trim(), v.trim());
        }
        let disabled = kv.get("disabled").is_some_and(|d| *d == "true");
        match kv.get("type").copied() {
            Some("provenance") if disabled => a.provenance = None,
            Some("provenance") => {
                a.provenance = Some(mode(kv.get("mode").copied(), &format!("--attest {spec}"))?)
            }
            Some("sbom") => a.sbom = !disabled,
            _ => bail!("--attest {spec}: type must be provenance or sbom"),
        }
    }
    match args.provenance.as_deref() {
        None => {}
        Some("false" | "0") => a.provenance = None,
        Some("true" | "1") => a.provenance = Some(ProvenanceMode::Min),
        Some(other) => {
            let m = other.strip_prefix("mode=");
            if m.is_none() {
                bail!("--provenance {other}: true, false or mode=min|max");
            }
            a.provenance = Some(mode(m, "--provenance")?);
        }
    }
    match args.sbom.as_deref() {
        None => {}
        Some("true" | "1") => a.sbom = true,
        Some("false" | "0") => a.sbom = false,
        Some(other) => bail!("--sbom {other}: true or false"),
    }
    Ok(a)
}
