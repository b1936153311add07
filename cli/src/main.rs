//! `lamina`: the command-line front end. One module per subcommand under `cmd/`; clap structs are turned into
//! library option types before any library call. Data goes to stdout, progress and logs to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod format;
mod output;

/// A daemonless OCI image builder and layered-storage toolchain.
#[derive(Parser, Debug)]
#[command(name = "lamina", version, about, propagate_version = true)]
pub struct Cli {
    /// Store root (an OCI image layout). Default: /var/lib/lamina as root, else $XDG_DATA_HOME/lamina.
    #[arg(long, global = true, env = "LAMINA_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// Colour on stderr: `auto` (a terminal, and NO_COLOR unset or empty), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = output::ColorChoice::Auto)]
    color: output::ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the version, the build and the kernel features lamina uses.
    Version(cmd::version::Args),
    /// Print shell completions: `lamina completion bash > /etc/bash_completion.d/lamina`.
    Completion(cmd::completion::Args),
    /// Write man pages (one per command) into a directory.
    Man(cmd::completion::ManArgs),
    /// Parse a Dockerfile and print its stages and instructions.
    Parse(cmd::parse::Args),
    /// Pull an image from a registry.
    Pull(cmd::pull::Args),
    /// Push an image to a registry.
    Push(cmd::push::Args),
    /// Log in to a registry.
    Login(cmd::login::Args),
    /// Log out from a registry.
    Logout(cmd::login::LogoutArgs),
    /// Copy an image between registries and OCI layouts.
    Copy(cmd::copy::Args),
    /// List the tags of a repository.
    Tags(cmd::tags::Args),
    /// Inspect remote manifests.
    Manifest(cmd::manifest::Args),
    /// Run a command in a new container.
    Run(Box<cmd::run::Args>),
    /// Create a container (with `run`'s flags) without starting it.
    Create(Box<cmd::run::Args>),
    /// Start created or stopped containers (`-a`: attached, with the container's exit status).
    Start(cmd::start::Args),
    /// Stop and start containers again.
    Restart(cmd::restart::Args),
    /// Wait for containers to stop; print their exit codes.
    Wait(cmd::wait::Args),
    /// Rename a container.
    Rename(cmd::rename::Args),
    /// Container commands: `container inspect`, `container prune`, and docker's `container ls|start|…`.
    Container(cmd::container_cmd::Args),
    /// Show the processes of a container (the host's ps, default -ef).
    Top(cmd::top::Args),
    /// Show CPU, memory, network, block I/O and pids of running containers.
    Stats(cmd::stats::Args),
    /// Freeze every process of containers.
    Pause(cmd::pause::Args),
    /// Thaw paused containers.
    Unpause(cmd::pause::Args),
    /// Copy files between a container and the host (`-` for a tar on stdin/stdout).
    Cp(cmd::cp::Args),
    /// Make an image of a container's changes (one new layer on its image).
    Commit(cmd::commit::Args),
    /// Write a container's filesystem as a tar.
    Export(cmd::export::Args),
    /// List containers.
    Ps(cmd::ps::Args),
    /// Print a container's output.
    Logs(cmd::logs::Args),
    /// Stop running containers (SIGTERM, then SIGKILL).
    Stop(cmd::stop::Args),
    /// Send a signal to running containers.
    Kill(cmd::kill::Args),
    /// Remove containers.
    Rm(cmd::rm::Args),
    /// Manage container networks.
    Network(cmd::network::Args),
    /// List a container's published ports.
    Port(cmd::port::Args),
    /// Run a command in a running container.
    Exec(cmd::exec::Args),
    /// Attach this terminal to a detached `-t` container's terminal (detach with ctrl-p,ctrl-q).
    Attach(cmd::attach::Args),
    /// List images.
    #[command(alias = "ls")]
    Images(cmd::images::Args),
    /// Give an image another name.
    Tag(cmd::tag::Args),
    /// Remove image tags (content stays until `prune`).
    Rmi(cmd::rmi::Args),
    /// Verify every blob and image in the store.
    Fsck(cmd::fsck::Args),
    /// Remove unreferenced blobs, unused snapshots and temp files (`--all`: build cache too, LRU, to a budget).
    Prune(cmd::prune::Args),
    /// Store-wide information: `system df` shows disk usage by kind, `system info` the isolation.
    System(cmd::system::Args),
    /// Show the isolation in effect (root, rootless, single id, inside a container) and why.
    Info(cmd::system::InfoArgs),
    /// Create an image from a rootfs tarball.
    Import(cmd::import::Args),
    /// Write images to an OCI or docker archive.
    Save(cmd::save::Args),
    /// Load images from an OCI or docker archive.
    Load(cmd::load::Args),
    /// Unpack an image's flattened root filesystem into a directory or a tar.
    Unpack(cmd::unpack::Args),
    /// Show an image's manifest, config and layers as JSON (or fields of it), or a container's state.
    Inspect(cmd::inspect::Args),
    /// Show the build steps of an image and the layers they made.
    History(cmd::history::Args),
    /// List what a layer adds, changes and removes (whiteouts resolved).
    #[command(name = "ls-layer")]
    LsLayer(cmd::ls_layer::Args),
    /// Show an image's flattened file tree with sizes.
    Tree(cmd::tree::Args),
    /// Compare two images or layers (exit 0 same, 1 different, 2 error).
    Diff(cmd::diff::Args),
    /// Measure wasted space and duplicates across layers; CI thresholds set the exit status.
    Analyze(cmd::analyze::Args),
    /// List an image's packages as an SBOM (SPDX 2.3 or CycloneDX 1.5 JSON).
    Sbom(cmd::sbom::Args),
    /// Sign an image in a registry (cosign's format, ECDSA P-256 key).
    Sign(cmd::sign::SignArgs),
    /// Verify an image's cosign-format signatures against a public key.
    Verify(cmd::sign::VerifyArgs),
    /// List the OCI referrers (SBOMs, attestations, signatures) of an image in a registry.
    Referrers(cmd::referrers::ListArgs),
    /// OCI artifacts in a registry: `artifact attach` pushes files that refer to an image (like `oras attach`).
    Artifact(cmd::referrers::ArtifactArgs),
    /// Build an image from a Dockerfile.
    Build(Box<cmd::build::Args>),
}

impl Cli {
    /// The store root to use.
    /// The store root, always absolute: snapshot paths end up in overlay mounts made by a helper
    /// process with another working directory, so a relative `--root ./store` must not leak through.
    pub fn store_root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return std::path::absolute(r).unwrap_or_else(|_| r.clone());
        }
        // Root in a user namespace we made ourselves is still the user: their store, not the host's.
        if euid_is_root() && !lamina_runner::userns::entered() {
            return PathBuf::from("/var/lib/lamina");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("lamina")
    }
}

/// Effective uid 0? Read from /proc so the binary needs no `unsafe` for `geteuid`.
fn euid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn main() -> ExitCode {
    // The runner's single-threaded helper: dispatched before clap (and before any thread exists).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(lamina_runner::HELPER_SUBCOMMAND) {
        return lamina_runner::helper_main(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some(lamina_runner::EXEC_SUBCOMMAND) {
        return lamina_runner::exec_helper_main(&argv[2..]);
    }
    let cli = Cli::parse();
    // A non-root user becomes root of a new user namespace now, while the process is single-threaded
    // (unshare(CLONE_NEWUSER) refuses threaded callers; parsing made none); everything after runs as
    // that root. Not for `exec`: a rootless container lives in the user namespace of the `run` that
    // made it, which its exec helper joins from the user's own namespace (a fresh one could not).
    if !matches!(cli.command, Command::Exec(_)) {
        lamina_runner::userns::enter();
    }
    output::set_color(cli.color);
    let result = match &cli.command {
        Command::Build(a) => cmd::build::run(&cli, a),
        Command::Version(a) => cmd::version::run(a),
        Command::Completion(a) => cmd::completion::run(a),
        Command::Man(a) => cmd::completion::run_man(a),
        Command::Parse(args) => cmd::parse::run(&cli, args),
        Command::Pull(a) => cmd::pull::run(&cli, a),
        Command::Push(a) => cmd::push::run(&cli, a),
        Command::Login(a) => cmd::login::run(&cli, a),
        Command::Logout(a) => cmd::login::run_logout(&cli, a),
        Command::Copy(a) => cmd::copy::run(&cli, a),
        Command::Tags(a) => cmd::tags::run(&cli, a),
        Command::Manifest(a) => cmd::manifest::run(&cli, a),
        Command::Run(a) => cmd::run::run(&cli, a),
        Command::Create(a) => cmd::create::run(&cli, a),
        Command::Start(a) => cmd::start::run(&cli, a),
        Command::Restart(a) => cmd::restart::run(&cli, a),
        Command::Wait(a) => cmd::wait::run(&cli, a),
        Command::Rename(a) => cmd::rename::run(&cli, a),
        Command::Container(a) => cmd::container_cmd::run(&cli, a),
        Command::Top(a) => cmd::top::run(&cli, a),
        Command::Stats(a) => cmd::stats::run(&cli, a),
        Command::Pause(a) => cmd::pause::pause(&cli, a),
        Command::Unpause(a) => cmd::pause::unpause(&cli, a),
        Command::Cp(a) => cmd::cp::run(&cli, a),
        Command::Commit(a) => cmd::commit::run(&cli, a),
        Command::Export(a) => cmd::export::run(&cli, a),
        Command::Ps(a) => cmd::ps::run(&cli, a),
        Command::Logs(a) => cmd::logs::run(&cli, a),
        Command::Stop(a) => cmd::stop::run(&cli, a),
        Command::Kill(a) => cmd::kill::run(&cli, a),
        Command::Rm(a) => cmd::rm::run(&cli, a),
        Command::Exec(a) => cmd::exec::run(&cli, a),
        Command::Attach(a) => cmd::attach::run(&cli, a),
        Command::Network(a) => cmd::network::run(&cli, a),
        Command::Port(a) => cmd::port::run(&cli, a),
        Command::Images(a) => cmd::images::run(&cli, a),
        Command::Tag(a) => cmd::tag::run(&cli, a),
        Command::Rmi(a) => cmd::rmi::run(&cli, a),
        Command::Fsck(a) => cmd::fsck::run(&cli, a),
        Command::Prune(a) => cmd::prune::run(&cli, a),
        Command::System(a) => cmd::system::run(&cli, a),
        Command::Info(a) => cmd::system::info(&cli, a),
        Command::Import(a) => cmd::import::run(&cli, a),
        Command::Save(a) => cmd::save::run(&cli, a),
        Command::Load(a) => cmd::load::run(&cli, a),
        Command::Unpack(a) => cmd::unpack::run(&cli, a),
        Command::Inspect(a) => cmd::container_cmd::inspect_any(&cli, a),
        Command::History(a) => cmd::history::run(&cli, a),
        Command::LsLayer(a) => cmd::ls_layer::run(&cli, a),
        Command::Tree(a) => cmd::tree::run(&cli, a),
        Command::Diff(a) => cmd::diff::run(&cli, a),
        Command::Analyze(a) => cmd::analyze::run(&cli, a),
        Command::Sbom(a) => cmd::sbom::run(&cli, a),
        Command::Sign(a) => cmd::sign::run_sign(&cli, a),
        Command::Verify(a) => cmd::sign::run_verify(&cli, a),
        Command::Referrers(a) => cmd::referrers::run_list(&cli, a),
        Command::Artifact(a) => cmd::referrers::run_artifact(&cli, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = output::report_error(&e);
            single_id_hint(&cli.command);
            code
        }
    }
}

/// With one id mapped, any step or file owned by another id fails with EINVAL deep in a tool's output
/// (`chown: Invalid argument`): say once what the cause likely is and how to fix it.
fn single_id_hint(command: &Command) {
    if !matches!(command, Command::Build(_) | Command::Run(_) | Command::Pull(_)) {
        return;
    }
    if let lamina_runner::userns::Isolation::SingleId { reason, .. } = lamina_runner::userns::isolation() {
        eprintln!(
            "note: rootless with a single id ({reason}): only uid/gid 0 exist in containers, so a chown \
             or USER to another id fails; give the user a range in /etc/subuid and /etc/subgid \
             (e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`)"
        );
    }
}
