//! Shared pieces of the registry commands: transport/auth flags, the tokio runtime, and progress
//! rendering (a bar per blob on a TTY, plain lines otherwise).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lamina_registry::{Credential, Outcome, Progress, RegistryError, RegistryOptions};
use lamina_store::Digest;

use crate::output::human_size;

/// How to reach and trust registries: every command that talks to one takes these (`build` too).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TransportFlags {
    /// Talk plain http to this registry (host[:port]); loopback registries always are. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Trust this PEM CA certificate (besides the system roots and certs.d dirs). Repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Read credentials from this docker config.json / podman auth.json instead of the defaults.
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

/// Flags every registry command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryFlags {
    #[command(flatten)]
    pub transport: TransportFlags,
    /// Credentials as USER:PASSWORD (prefer `lamina login`: this shows up in `ps`).
    #[arg(long, value_name = "USER:PASSWORD", hide_env_values = true)]
    pub creds: Option<String>,
    /// Parallel blob transfers.
    #[arg(long, short = 'j', default_value_t = 4)]
    pub jobs: usize,
    /// Progress output: auto (bars on a TTY), tty, plain, or quiet.
    #[arg(long, default_value = "auto", value_parser = ["auto", "tty", "plain", "quiet"])]
    pub progress: String,
}

impl RegistryFlags {
    pub fn options(&self) -> Result<RegistryOptions, RegistryError> {
        let mut o = RegistryOptions::load()?;
        o.insecure_registries
            .extend(self.transport.insecure_registry.iter().cloned());
        o.ca_certs.extend(self.transport.ca_cert.iter().cloned());
        o.auth_file = self.transport.authfile.clone();
        o.jobs = self.jobs.max(1);
        if let Some(c) = &self.creds {
            let (u, p) = c.split_once(':').unwrap_or((c.as_str(), ""));
            o.credentials = Some(Credential::Basic {
                username: u.to_owned(),
                password: p.to_owned(),
            });
        }
        Ok(o)
    }

    pub fn reporter(&self) -> Reporter {
        let tty = match self.progress.as_str() {
            "tty" => true,
            "plain" | "quiet" => false,
            _ => std::io::stderr().is_terminal(),
        };
        Reporter::new(tty, self.progress == "quiet")
    }
}

/// The process's one tokio runtime (registry I/O, `ADD <url>`, build caches), made on first use; the
/// libraries take its handle and make none of their own.
pub fn runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    Ok(RT.get_or_init(|| rt))
}

/// Renders transfer events.
pub struct Reporter {
    bars: Option<MultiProgress>,
    quiet: bool,
    state: Mutex<HashMap<Digest, (ProgressBar, u64)>>,
}

impl Reporter {
    pub fn new(tty: bool, quiet: bool) -> Self {
        Reporter {
            bars: (tty && !quiet).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            quiet,
            state: Mutex::new(HashMap::new()),
        }
    }

    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

fn verb(o: Outcome) -> &'static str {
    match o {
        Outcome::Downloaded => "Pull complete",
        Outcome::Pushed => "Pushed",
        Outcome::Exists => "Already exists",
        Outcome::Mounted => "Mounted from another repository",
        Outcome::Skipped => "Skipped (foreign layer)",
    }
}

impl Progress for Reporter {
    fn start(&self, digest: &Digest, size: u64, kind: &str) {
        if self.quiet {
            return;
        }
        let mut st = self.state.lock().expect("progress lock");
        if st.contains_key(digest) {
            return;
        }
        let bar = match &self.bars {
            Some(m) => {
                let b = m.add(ProgressBar::new(size));
                b.set_style(
                    ProgressStyle::with_template("{prefix} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}")
                        .expect("valid template"),
                );
                b.set_prefix(format!("{} {kind:6}", digest.short()));
                b
            }
            None => {
                eprintln!("{}: {kind} {}", digest.short(), human_size(size));
                ProgressBar::hidden()
            }
        };
        st.insert(digest.clone(), (bar, size));
    }

    fn advance(&self, digest: &Digest, done: u64) {
        if let Some((b, _)) = self.state.lock().expect("progress lock").get(digest) {
            b.set_position(done);
        }
    }

    fn retrying(&self, digest: &Digest, error: &RegistryError) {
        self.line(&format!("{}: retrying after: {error}", digest.short()));
    }

    fn finish(&self, digest: &Digest, outcome: Outcome) {
        if self.quiet {
            return;
        }
        let entry = self.state.lock().expect("progress lock").remove(digest);
        match (&self.bars, entry) {
            (Some(_), Some((b, _))) => {
                b.finish_and_clear();
                self.line(&format!("{}: {}", digest.short(), verb(outcome)));
            }
            _ => eprintln!("{}: {}", digest.short(), verb(outcome)),
        }
    }

    fn message(&self, text: &str) {
        self.line(text);
    }
}
