//! `lamina login [-u USER] [--password-stdin] REGISTRY` and `lamina logout REGISTRY`: docker's config format.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use lamina_registry::{Credential, RegistryClient, credentials};

use super::transfer::RegistryFlags;

/// Log in to a registry (credentials are checked, then saved like `docker login`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Registry host[:port] (default: docker.io).
    pub registry: Option<String>,
    #[arg(long, short)]
    pub username: Option<String>,
    /// Password on the command line (insecure: visible in `ps`; prefer --password-stdin).
    #[arg(long, short, hide_env_values = true)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_flags: RegistryFlags,
}

/// Remove saved credentials for a registry.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port] (default: docker.io).
    pub registry: Option<String>,
    /// The docker config / auth file to edit (default: $DOCKER_CONFIG/config.json).
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

/// The registry part of what the user typed (`https://host/v2/` and `host` both work).
fn registry_name(arg: Option<&str>) -> String {
    let r = arg.unwrap_or(lamina_store::reference::DEFAULT_REGISTRY);
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r);
    let r = r.split('/').next().unwrap_or(r);
    match r {
        "index.docker.io" | "registry-1.docker.io" => lamina_store::reference::DEFAULT_REGISTRY.to_owned(),
        r => r.to_owned(),
    }
}

fn config_path(explicit: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    explicit
        .cloned()
        .or_else(credentials::docker_config_path)
        .context("no $DOCKER_CONFIG or $HOME to store credentials in")
}

pub fn run(_cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let registry = registry_name(args.registry.as_deref());
    let username = match &args.username {
        Some(u) => u.clone(),
        None => {
            if !std::io::stdin().is_terminal() || args.password_stdin {
                bail!("--username is required when stdin is not a terminal");
            }
            eprint!("Username: ");
            std::io::stderr().flush()?;
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u)?;
            u.trim().to_owned()
        }
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, _) => {
            if !args.password_stdin {
                eprint!("Password: ");
                std::io::stderr().flush()?;
            }
            let mut p = String::new();
            std::io::stdin().lock().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty");
    }
    let mut opts = args.registry_flags.options()?;
    opts.credentials = Some(Credential::Basic {
        username: username.clone(),
        password: password.clone(),
    });
    let rt = super::transfer::runtime()?;
    rt.block_on(async {
        let client = RegistryClient::new(&registry, &opts)?;
        client.verify_login().await
    })
    .with_context(|| format!("logging in to {registry}"))?;
    let path = config_path(args.registry_flags.transport.authfile.as_ref())?;
    let stored_in = credentials::store(&registry, &username, &password, &path)
        .with_context(|| format!("saving credentials for {registry}"))?;
    eprintln!("Credentials saved in {stored_in}");
    crate::outln!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn run_logout(_cli: &crate::Cli, args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_name(args.registry.as_deref());
    let path = config_path(args.authfile.as_ref())?;
    if credentials::erase(&registry, &path).with_context(|| format!("removing credentials for {registry}"))? {
        crate::outln!("Removing login credentials for {registry}");
    } else {
        eprintln!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}
