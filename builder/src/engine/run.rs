//! RUN steps: the process (argv from the shell or exec form, env with the proxy spellings BuildKit
//! passes) over the stage's snapshot dirs, with its upper dir as the new snapshot, through the
//! [`Executor`](super::exec::Executor) in the step's context. Output is streamed to the progress; its
//! tail is kept for the error message.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::BuildError;
use super::ctx::StepCtx;
use super::exec::{ExecMount, ExecRequest, Network};
use super::progress::{Event, Progress};
use super::run_mounts::{self, Scratch};
use super::view::View;
use crate::dockerfile::{Command, Kind, Step};

const TAIL_LINES: usize = 20;

/// The stage state a RUN step needs.
pub struct RunInput<'a> {
    pub step: &'a Step,
    /// The progress id of the step.
    pub id: usize,
    /// Snapshot dirs, bottom → top.
    pub lower: Vec<PathBuf>,
    pub user: Option<String>,
    pub shell: Vec<String>,
    pub workdir: String,
    /// The same dirs as a merged view (for mount points).
    pub view: View,
}

/// The process's argv: exec form as is, shell form through the stage's SHELL (heredoc bodies given to it).
fn argv(step: &Step, shell: &[String]) -> Vec<String> {
    let instr = &step.instruction;
    let Kind::Run { command, .. } = &instr.kind else {
        return Vec::new();
    };
    match command {
        Command::Exec(w) => w.iter().map(|w| w.value.clone()).collect(),
        Command::Shell(w) => {
            let mut script = w.value.clone();
            if let Some(h) = instr.heredocs.first() {
                let marker = script.trim();
                if marker.starts_with("<<")
                    && instr.heredocs.len() == 1
                    && marker
                        .trim_start_matches("<<")
                        .trim_start_matches('-')
                        .trim_matches(['"', '\''])
                        == h.name
                {
                    // `RUN <<EOF` alone: the body is the script.
                    script = h.content.clone();
                } else {
                    // Let the shell read the heredocs itself.
                    for h in &instr.heredocs {
                        script.push('\n');
                        script.push_str(&h.content);
                        if !h.content.ends_with('\n') {
                            script.push('\n');
                        }
                        script.push_str(&h.name);
                    }
                }
            }
            let mut a = shell.to_vec();
            a.push(script);
            a
        }
    }
}

/// The step's env; BuildKit passes a predefined proxy ARG in both spellings.
fn env(step: &Step) -> Vec<String> {
    let mut env: Vec<String> = step.run_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (k, v) in step.run_env.iter() {
        let lower = k.to_ascii_lowercase();
        if ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"].contains(&k.as_str())
            && !step.run_env.iter().any(|(n, _)| *n == lower)
        {
            env.push(format!("{lower}={v}"));
        }
    }
    env
}

/// Output lines to the progress, the last few kept for the error message.
struct LogSink<'a> {
    progress: &'a dyn Progress,
    id: usize,
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

impl LogSink<'_> {
    fn line(&mut self, bytes: &[u8]) {
        let l = String::from_utf8_lossy(bytes).into_owned();
        self.progress.event(Event::Log {
            id: self.id,
            line: l.clone(),
        });
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(l);
    }
}

impl Write for LogSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(n) = memchr::memchr(b'\n', &self.partial) {
            let rest = self.partial.split_off(n + 1);
            let line = std::mem::replace(&mut self.partial, rest);
            self.line(&line[..n]);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        Ok(())
    }
}

/// Runs the RUN step of `input` with `upper` as its new snapshot dir.
pub fn run_step(ctx: &StepCtx<'_>, input: &RunInput<'_>, upper: &Path) -> Result<(), BuildError> {
    let step = input.step;
    let line = step.instruction.span.start.line as usize;
    let Kind::Run { mounts, network, .. } = &step.instruction.kind else {
        return Ok(());
    };
    // The engine checked the Dockerfile's RUNs up front; this also covers a base's ONBUILD RUN triggers.
    let host = crate::dockerfile::graph::Platform::host();
    if !super::ctx::same_platform(ctx.platform, &host) {
        ctx.executor
            .can_run(ctx.platform)
            .map_err(|source| BuildError::Emulation {
                line,
                platform: ctx.platform.to_string(),
                host: host.to_string(),
                source,
            })?;
    }
    let argv = argv(step, &input.shell);
    let mut scratch = Scratch::default();
    let prepared = run_mounts::prepare(ctx, step, mounts, &input.workdir, &mut scratch)?;
    make_mount_points(
        &input.view,
        upper,
        &prepared.mounts,
        line,
        ctx.settings.unprivileged,
    )?;
    let work = ctx.writer.staging()?;
    scratch.paths.push(work.clone());
    let mut env = env(step);
    env.extend(prepared.env);
    let req = ExecRequest {
        argv,
        env,
        cwd: input.workdir.clone(),
        user: input.user.clone(),
        hostname: "buildkitsandbox".into(),
        lower: input.lower.clone(),
        upper: upper.to_path_buf(),
        work,
        mounts: prepared.mounts,
        network: match network {
            Some(crate::dockerfile::Network::Host) => Network::Host,
            Some(crate::dockerfile::Network::None) => Network::None,
            _ => ctx.settings.network,
        },
        limits: Default::default(),
    };
    let mut sink = LogSink {
        progress: ctx.progress,
        id: input.id,
        partial: Vec::new(),
        tail: VecDeque::new(),
    };
    let status = ctx.executor.run(&req, &mut sink);
    let _ = sink.flush();
    drop(scratch);
    let status = status.map_err(|source| BuildError::Runner {
        line,
        source: Box::new(source),
    })?;
    if !status.success() {
        return Err(BuildError::RunFailed {
            line,
            command: req.argv.join(" "),
            exit: super::RunExit {
                code: status.code,
                tail: sink.tail.into_iter().collect::<Vec<_>>().join("\n"),
            },
        });
    }
    Ok(())
}

/// Mount points BuildKit leaves in the layer: the target dir of a dir mount, the parents of a file mount.
fn make_mount_points(
    view: &View,
    upper: &Path,
    mounts: &[ExecMount],
    line: usize,
    unprivileged: bool,
) -> Result<(), BuildError> {
    for m in mounts {
        let is_dir = m.source().is_none_or(|s| s.is_dir());
        let mut comps = view
            .resolve(m.target(), true)
            .map_err(|e| BuildError::from(e).at_line(line))?;
        if !is_dir {
            comps.pop();
        }
        if !comps.is_empty() && view.lookup(&comps).is_none() {
            super::copy::mkdir_p(view, upper, &comps, None, unprivileged)?;
        }
    }
    Ok(())
}
