//! The executor seam: how a RUN step's process runs. The engine builds an [`ExecRequest`] from typed
//! values (argv, env, cwd, user, the lower dirs and upper dir of the step, typed mounts, network) and an
//! [`Executor`] runs it, streaming output to a sink and reporting the exit status.
//!
//! [`RunnerExecutor`] is the real one (namespaces and overlay through `lamina_runner`, needs root);
//! [`fake::FakeExecutor`] runs in-process over the merged lower view and writes the upper dir directly,
//! so cache and step logic are testable without root.

pub mod binfmt;
pub mod fake;

use std::io::{Read, Write};
use std::path::PathBuf;

pub use lamina_runner::Network;

/// A mount for the process, already resolved to a source lamina made (never a path of an untrusted tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecMount {
    /// A private copy of a bind source (context, stage or image selection).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A store-owned cache dir, kept across builds.
    Cache {
        dir: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs; `size` in bytes, 0 for the kernel's default.
    Tmpfs { target: String, size: u64 },
    /// A secret written to a private file (read-only in the container).
    Secret { file: PathBuf, target: String },
    /// An ssh-agent socket.
    Ssh { socket: PathBuf, target: String },
}

impl ExecMount {
    pub fn target(&self) -> &str {
        match self {
            ExecMount::Bind { target, .. }
            | ExecMount::Cache { target, .. }
            | ExecMount::Tmpfs { target, .. }
            | ExecMount::Secret { target, .. }
            | ExecMount::Ssh { target, .. } => target,
        }
    }

    /// The host path behind the mount (None for tmpfs).
    pub fn source(&self) -> Option<&PathBuf> {
        match self {
            ExecMount::Bind { source, .. } => Some(source),
            ExecMount::Cache { dir, .. } => Some(dir),
            ExecMount::Secret { file, .. } => Some(file),
            ExecMount::Ssh { socket, .. } => Some(socket),
            ExecMount::Tmpfs { .. } => None,
        }
    }

    fn to_runner(&self) -> lamina_runner::Mount {
        match self {
            ExecMount::Tmpfs { target, size } => lamina_runner::Mount::Tmpfs {
                destination: target.clone(),
                size: *size,
                mode: 0o1777,
            },
            ExecMount::Bind {
                source,
                target,
                readonly,
            }
            | ExecMount::Cache {
                dir: source,
                target,
                readonly,
            } => lamina_runner::Mount::Bind {
                source: source.clone(),
                destination: target.clone(),
                readonly: *readonly,
            },
            ExecMount::Secret { file, target } => lamina_runner::Mount::Bind {
                source: file.clone(),
                destination: target.clone(),
                readonly: true,
            },
            ExecMount::Ssh { socket, target } => lamina_runner::Mount::Bind {
                source: socket.clone(),
                destination: target.clone(),
                readonly: false,
            },
        }
    }
}

/// One process to run for a RUN step.
#[derive(Clone, Debug)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub cwd: String,
    pub user: Option<String>,
    pub hostname: String,
    /// The stage's snapshot dirs, bottom → top.
    pub lower: Vec<PathBuf>,
    /// The step's new snapshot dir: what the process changes lands here (overlay upper format).
    pub upper: PathBuf,
    /// An empty dir on the upper's filesystem for overlay's bookkeeping.
    pub work: PathBuf,
    pub mounts: Vec<ExecMount>,
    pub network: Network,
    pub limits: lamina_runner::Limits,
    /// `RUN --security=insecure` with the `security.insecure` entitlement: every capability of the
    /// bounding set, no seccomp filter, writable /sys and /proc (the runner's privileged mode).
    pub privileged: bool,
}

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecStatus {
    /// Shell-style: the exit code, or 128 + the signal number.
    pub code: i32,
    pub signal: Option<i32>,
}

impl ExecStatus {
    pub fn success(&self) -> bool {
        self.code == 0 && self.signal.is_none()
    }
}

/// Why a process could not be run at all (a non-zero exit is an [`ExecStatus`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("running the process in the sandbox")]
    Runner {
        #[source]
        source: lamina_runner::RunError,
    },
    #[error("output pipe of the process")]
    Pipe {
        #[source]
        source: std::io::Error,
    },
    #[error("fake executor: {path}")]
    Fake {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ExecError {
    /// The request was at fault (a missing executable, a bad user), not the machine.
    pub fn is_user_error(&self) -> bool {
        match self {
            ExecError::Runner { source } => source.is_user_error(),
            ExecError::Pipe { .. } | ExecError::Fake { .. } => false,
        }
    }
}

/// Runs RUN processes. Implementations must be usable from several stage threads at once.
pub trait Executor: Send + Sync {
    /// Runs `req` to completion; stdout and stderr (interleaved) are written to `output` as they come.
    fn run(&self, req: &ExecRequest, output: &mut (dyn Write + Send)) -> Result<ExecStatus, ExecError>;

    /// Whether processes of `platform` (another than the host's) can run: by default, when the kernel
    /// has a binfmt_misc handler for it. Asked before a build starts, for each stage with a RUN.
    fn can_run(&self, platform: &crate::dockerfile::graph::Platform) -> Result<(), binfmt::EmulatorError> {
        binfmt::find_handler(std::path::Path::new(binfmt::BINFMT_DIR), platform).map(|_| ())
    }
}

/// The real executor: `lamina_runner` in a fresh sandbox, re-exec'ing `helper_exe`.
pub struct RunnerExecutor {
    pub helper_exe: PathBuf,
}

impl Executor for RunnerExecutor {
    fn run(&self, req: &ExecRequest, output: &mut (dyn Write + Send)) -> Result<ExecStatus, ExecError> {
        let rreq = lamina_runner::RunRequest {
            id: None,
            lower_dirs: req.lower.clone(),
            upper_dir: req.upper.clone(),
            work_dir: req.work.clone(),
            mounts: req.mounts.iter().map(ExecMount::to_runner).collect(),
            process: lamina_runner::Process {
                args: req.argv.clone(),
                env: req.env.clone(),
                cwd: req.cwd.clone(),
                user: req.user.clone(),
                additional_groups: Vec::new(),
                tty: false,
            },
            limits: req.limits,
            network: req.network,
            hostname: Some(req.hostname.clone()),
            etc_hostname: false,
            readonly_rootfs: false,
            helper_exe: self.helper_exe.clone(),
            ports: Vec::new(),
            detach: false,
            status_file: None,
            // The networks dir is the process default, set by the binary from its store root.
            net: Default::default(),
            attach_socket: None,
            log_file: None,
            confinement: lamina_runner::Confinement {
                privileged: req.privileged,
                ..Default::default()
            },
            supervision: Default::default(),
        };
        let pipe = |source| ExecError::Pipe { source };
        let (mut reader, writer) = std::io::pipe().map_err(pipe)?;
        let writer2 = writer.try_clone().map_err(pipe)?;
        let stdio = lamina_runner::RunStdio {
            stdin: Some(std::process::Stdio::null()),
            stdout: Some(writer.into()),
            stderr: Some(writer2.into()),
        };
        let outcome = std::thread::scope(|s| {
            // The copy ends when the last write end closes: the runner drops ours once the child has them.
            s.spawn(move || {
                let mut buf = [0u8; 8192];
                // A failing sink still drains the pipe, or a chatty process would block on a full pipe.
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let _ = output.write_all(&buf[..n]);
                }
                let _ = output.flush();
            });
            lamina_runner::run_with_stdio(&rreq, stdio)
        });
        let o = outcome.map_err(|source| ExecError::Runner { source })?;
        Ok(ExecStatus {
            code: o.exit_code,
            signal: o.signal,
        })
    }
}
