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
    let Kind::Run {
        mounts,
        network,
        security,
        ..
    } = &step.instruction.kind
    else {
        return Ok(());
    };
    let privileged = *security == Some(crate::dockerfile::Security::Insecure);
    // Checked here and not only by the caller: a base image's ONBUILD RUN can ask for it too.
    if privileged && !ctx.settings.allow_insecure {
        return Err(BuildError::Privileged { line });
    }
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
    let stubs = make_mount_points(
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
        privileged,
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
    remove_mount_stubs(upper, &stubs);
    Ok(())
}

/// Makes the mount points of `mounts` that the image lacks: the target dir of a dir mount, the parents of
/// a file mount. Returns the stubs to remove after the step (see [`remove_mount_stubs`]): every mount
/// target, `/etc/resolv.conf` and `/etc/hosts` that did not exist, with their missing parents, each
/// chain deepest first — BuildKit's (≥ 0.11) `MountStubsCleaner` list.
fn make_mount_points(
    view: &View,
    upper: &Path,
    mounts: &[ExecMount],
    line: usize,
    unprivileged: bool,
) -> Result<Vec<Vec<String>>, BuildError> {
    let mut stubs = Vec::new();
    for m in mounts {
        let is_dir = m.source().is_none_or(|s| s.is_dir());
        let mut comps = view
            .resolve(m.target(), true)
            .map_err(|e| BuildError::from(e).at_line(line))?;
        missing_chain(view, &comps, &mut stubs);
        if !is_dir {
            comps.pop();
        }
        if !comps.is_empty() && view.lookup(&comps).is_none() {
            super::copy::mkdir_p(view, upper, &comps, None, unprivileged)?;
        }
    }
    for runtime_file in ["/etc/resolv.conf", "/etc/hosts"] {
        if let Ok(comps) = view.resolve(runtime_file, true) {
            missing_chain(view, &comps, &mut stubs);
        }
    }
    Ok(stubs)
}

/// Pushes `comps` and each of its parents that `view` lacks, deepest first.
fn missing_chain(view: &View, comps: &[String], stubs: &mut Vec<Vec<String>>) {
    let mut c = comps.to_vec();
    while !c.is_empty() && view.lookup(&c).is_none() {
        stubs.push(c.clone());
        c.pop();
    }
}

/// Removes from the step's new layer the stubs that are still an empty dir or an empty file (BuildKit
/// ≥ 0.11 leaves no trace of a mount point the step did not use), keeping the parent's times. The step
/// may have replaced a stub's parent with a link, so the walk never follows one; a stub that is not a
/// plain dir or file (e.g. a whiteout) is left alone.
fn remove_mount_stubs(upper: &Path, stubs: &[Vec<String>]) {
    'stub: for comps in stubs {
        let mut path = upper.to_path_buf();
        for c in comps {
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue 'stub;
            }
            path.push(c);
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let empty = if meta.is_dir() {
            std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none())
        } else {
            meta.is_file() && meta.len() == 0
        };
        if !empty {
            continue;
        }
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let times = std::fs::metadata(&parent).ok();
        let removed = if meta.is_dir() {
            std::fs::remove_dir(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if removed.is_ok()
            && let Some(t) = times
            && let (Ok(a), Ok(m)) = (t.accessed(), t.modified())
            && let Ok(dir) = std::fs::File::open(&parent)
        {
            // Best effort, as BuildKit: the parent's times only matter for reproducible layers.
            let _ = dir.set_times(std::fs::FileTimes::new().set_accessed(a).set_modified(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::remove_mount_stubs;

    fn c(p: &str) -> Vec<String> {
        p.split('/').map(String::from).collect()
    }

    #[test]
    fn only_untouched_stubs_are_removed_and_links_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path().join("upper");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(up.join("a/b/c")).unwrap();
        std::fs::create_dir_all(up.join("x/y")).unwrap();
        std::fs::write(up.join("x/keep"), "k").unwrap();
        std::fs::write(up.join("stubfile"), "").unwrap();
        std::fs::write(up.join("used"), "data").unwrap();
        std::fs::create_dir_all(outside.join("empty")).unwrap();
        // The step replaced a stub's parent with a link out of the layer.
        std::os::unix::fs::symlink(&outside, up.join("l")).unwrap();
        let stubs = [
            c("a/b/c"),
            c("a/b"),
            c("a"),
            c("x/y"),
            c("x"),
            c("stubfile"),
            c("used"),
            c("l/empty"),
            c("missing/m"),
        ];
        remove_mount_stubs(&up, &stubs);
        let mut left: Vec<String> = walkdir(&up);
        left.sort();
        assert_eq!(left, ["l", "used", "x", "x/keep"]);
        assert!(outside.join("empty").is_dir(), "followed a link out of the layer");
    }

    fn walkdir(root: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                if e.file_type().unwrap().is_dir() {
                    todo.push(p);
                }
            }
        }
        out
    }
}
