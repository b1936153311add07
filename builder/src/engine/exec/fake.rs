//! An in-process [`Executor`] for tests: no namespaces, no overlay, no root. It sees the step's lower
//! dirs as a merged [`View`], writes the upper dir directly and resolves mount targets to their sources.
//!
//! The "command" is a tiny script language (the shell-form script, or an exec-form argv joined by
//! spaces), statements split on `;` and newlines:
//! `write PATH TEXT…`, `append PATH TEXT…`, `mkdir PATH`, `rm PATH` (a whiteout when the path is in a
//! lower dir: needs mknod, so root), `echo TEXT…`, `cat PATH`, `env`, `pwd`, `sleep MILLIS`, `exit CODE`,
//! `true`. An unknown command prints a message and exits 127, like a shell. A test can also hand in its
//! own closure ([`FakeExecutor::with`]).

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ExecError, ExecMount, ExecRequest, ExecStatus, Executor};
use crate::engine::view::{View, clean_components};

/// What a fake run sees.
pub struct FakeRun<'a> {
    pub req: &'a ExecRequest,
    /// The lower dirs merged, top first.
    pub view: View,
    pub output: &'a mut (dyn Write + Send),
}

/// One call the fake received, with its start and end.
#[derive(Clone, Debug)]
pub struct Call {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: Option<String>,
    pub mounts: Vec<ExecMount>,
    pub network: super::Network,
    pub privileged: bool,
    pub started: Instant,
    pub ended: Instant,
}

type Handler = dyn Fn(&mut FakeRun<'_>) -> io::Result<i32> + Send + Sync;

/// The fake executor; records every call.
pub struct FakeExecutor {
    handler: Option<Box<Handler>>,
    calls: Mutex<Vec<Call>>,
}

impl Default for FakeExecutor {
    fn default() -> Self {
        FakeExecutor::new()
    }
}

impl FakeExecutor {
    /// Runs the script language above.
    pub fn new() -> FakeExecutor {
        FakeExecutor {
            handler: None,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` for every call instead; its `Ok` value is the exit code.
    pub fn with(f: impl Fn(&mut FakeRun<'_>) -> io::Result<i32> + Send + Sync + 'static) -> FakeExecutor {
        FakeExecutor {
            handler: Some(Box::new(f)),
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn count(&self) -> usize {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Executor for FakeExecutor {
    /// Runs in-process over any platform's tree: emulation is never needed.
    fn can_run(&self, _: &crate::dockerfile::graph::Platform) -> Result<(), super::binfmt::EmulatorError> {
        Ok(())
    }

    fn run(&self, req: &ExecRequest, output: &mut (dyn Write + Send)) -> Result<ExecStatus, ExecError> {
        let started = Instant::now();
        let mut run = FakeRun {
            req,
            view: View::new(req.lower.iter().rev().cloned().collect()),
            output,
        };
        let r = match &self.handler {
            Some(h) => h(&mut run),
            None => interpret(&mut run),
        };
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(Call {
            argv: req.argv.clone(),
            env: req.env.clone(),
            cwd: req.cwd.clone(),
            user: req.user.clone(),
            mounts: req.mounts.clone(),
            network: req.network,
            privileged: req.privileged,
            started,
            ended: Instant::now(),
        });
        let code = r.map_err(|source| ExecError::Fake {
            path: req.upper.clone(),
            source,
        })?;
        Ok(ExecStatus { code, signal: None })
    }
}

/// The script: `sh -c SCRIPT` gives SCRIPT, an exec form its words.
fn script_of(argv: &[String]) -> String {
    match argv {
        [sh, c, rest @ ..] if sh.ends_with("sh") && c == "-c" => rest.join(" "),
        _ => argv.join(" "),
    }
}

/// Where a container path lives for the fake: a mount's source, else the upper dir.
enum Place {
    Mount(PathBuf),
    Rootfs(Vec<String>),
}

fn place(req: &ExecRequest, path: &str) -> Place {
    let abs = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", req.cwd.trim_end_matches('/'))
    };
    let comps = clean_components(&abs);
    let mut best: Option<(usize, &PathBuf)> = None;
    for m in &req.mounts {
        let Some(src) = m.source() else { continue };
        let t = clean_components(m.target());
        if comps.starts_with(&t) && best.is_none_or(|(n, _)| t.len() > n) {
            best = Some((t.len(), src));
        }
    }
    match best {
        Some((n, src)) => {
            let mut p = src.clone();
            p.extend(&comps[n..]);
            Place::Mount(p)
        }
        None => Place::Rootfs(comps),
    }
}

fn read(run: &FakeRun<'_>, path: &str) -> io::Result<Vec<u8>> {
    match place(run.req, path) {
        Place::Mount(p) => fs::read(p),
        Place::Rootfs(comps) => {
            let up = run.req.upper.join(comps.join("/"));
            if up.is_file() {
                return fs::read(up);
            }
            run.view
                .read_file(&format!("/{}", comps.join("/")))
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path}: not found")))
        }
    }
}

fn host_path(run: &FakeRun<'_>, path: &str) -> PathBuf {
    match place(run.req, path) {
        Place::Mount(p) => p,
        Place::Rootfs(comps) => run.req.upper.join(comps.join("/")),
    }
}

fn write(run: &FakeRun<'_>, path: &str, data: &[u8]) -> io::Result<()> {
    let p = host_path(run, path);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&p, data)
}

fn remove(run: &FakeRun<'_>, path: &str) -> io::Result<()> {
    let p = host_path(run, path);
    if let Place::Rootfs(comps) = place(run.req, path)
        && run.view.lookup(&comps).is_some()
    {
        // Hidden from the lower dirs by an overlay whiteout, as the kernel would leave it.
        let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        return rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .map_err(io::Error::from);
    }
    fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p))
}

fn interpret(run: &mut FakeRun<'_>) -> io::Result<i32> {
    let script = script_of(&run.req.argv);
    for stmt in script.split([';', '\n']) {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            continue;
        };
        let arg = |i: usize| args.get(i).copied().unwrap_or("");
        let text = || args.get(1..).map(|a| a.join(" ")).unwrap_or_default();
        match cmd {
            "true" | ":" => {}
            "write" => write(run, arg(0), text().as_bytes())?,
            "append" => {
                let mut d = read(run, arg(0)).unwrap_or_default();
                d.extend_from_slice(text().as_bytes());
                write(run, arg(0), &d)?;
            }
            // `noise PATH BYTES`: incompressible bytes (xorshift), for layers that take a while to write.
            "noise" => {
                let n: usize = arg(1).parse().unwrap_or(0);
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                let mut d = Vec::with_capacity(n + 8);
                while d.len() < n {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    d.extend_from_slice(&x.to_le_bytes());
                }
                d.truncate(n);
                write(run, arg(0), &d)?;
            }
            "mkdir" => fs::create_dir_all(host_path(run, arg(0)))?,
            "rm" => remove(run, arg(0))?,
            "echo" => writeln!(run.output, "{}", args.join(" "))?,
            "cat" => match read(run, arg(0)) {
                Ok(d) => run.output.write_all(&d)?,
                Err(e) => {
                    writeln!(run.output, "cat: {}: {e}", arg(0))?;
                    return Ok(1);
                }
            },
            "env" => {
                for e in &run.req.env {
                    writeln!(run.output, "{e}")?;
                }
            }
            "pwd" => writeln!(run.output, "{}", run.req.cwd)?,
            "sleep" => std::thread::sleep(Duration::from_millis(arg(0).parse().unwrap_or(0))),
            "exit" => return Ok(arg(0).parse().unwrap_or(1)),
            other => {
                writeln!(run.output, "fake: {other}: command not found")?;
                return Ok(127);
            }
        }
    }
    Ok(0)
}
