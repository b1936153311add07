//! RUN steps: the process over overlay (lower = the stage's snapshots, upper = the new snapshot dir), with
//! `--mount` cache/secret/bind/tmpfs/ssh and `--network`; output streamed to the progress, its tail kept
//! for the error message.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lamina_runner::{Mount, Network, Process, RunRequest, RunStdio};
use lamina_store::Digest;
use lamina_store::config::ContainerConfig;

use super::BuildError;
use super::bind_source::BindRequest;
use super::context::SourceTree;
use super::engine::{Engine, SecretSource};
use super::progress::Event;
use super::view::View;
use crate::dockerfile::graph::Ref;
use crate::dockerfile::{Command, Kind, MountType, Step};

const TAIL_LINES: usize = 20;

/// Temp files and dirs of one RUN, removed when it ends.
struct Scratch {
    paths: Vec<PathBuf>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = fs::remove_dir_all(p).or_else(|_| fs::remove_file(p));
        }
    }
}

fn word(w: &Option<crate::dockerfile::Word>) -> Option<String> {
    w.as_ref().map(|w| w.value.clone()).filter(|v| !v.is_empty())
}

fn parse_mode(s: &Option<String>, default: u32) -> u32 {
    s.as_deref()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .unwrap_or(default)
}

#[allow(clippy::too_many_arguments)]
pub fn run_step(
    engine: &Engine<'_>,
    stage_pos: usize,
    step: &Step,
    id: usize,
    lower: &[PathBuf],
    upper: &Path,
    cfg: &ContainerConfig,
    shell: &[String],
    workdir: &str,
    view: &View,
) -> Result<(), BuildError> {
    let instr = &step.instruction;
    let line = instr.span.start.line as usize;
    let Kind::Run {
        command,
        mounts,
        network,
        ..
    } = &instr.kind
    else {
        return Ok(());
    };
    let args = match command {
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
    };
    let mut env: Vec<String> = step.run_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // BuildKit passes a predefined proxy ARG in both spellings.
    for (k, v) in &step.run_env {
        let lower = k.to_ascii_lowercase();
        if ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"].contains(&k.as_str())
            && !step.run_env.iter().any(|(n, _)| *n == lower)
        {
            env.push(format!("{lower}={v}"));
        }
    }
    let mut scratch = Scratch { paths: Vec::new() };
    let tmp = engine.store.tmp_dir().to_path_buf();
    let mut rmounts = Vec::new();
    let mut locks: Vec<fs::File> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let target = m.effective_target().unwrap_or_default();
        let target = if target.starts_with('/') {
            target
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), target)
        };
        match m.mount_type {
            MountType::Cache => {
                let cid = m.effective_id().unwrap_or_else(|| target.clone());
                let uid = word(&m.uid).and_then(|u| u.parse::<u32>().ok()).unwrap_or(0);
                let gid = word(&m.gid).and_then(|g| g.parse::<u32>().ok()).unwrap_or(0);
                let mode = parse_mode(&word(&m.mode), 0o755);
                let name = Digest::sha256_of(format!("{cid}\0{uid}\0{gid}\0{mode:o}").as_bytes());
                let dir = engine.store.cache_dir().join("mounts").join(&name.hex()[..32]);
                if !dir.exists() {
                    let io = |source| BuildError::Io {
                        path: dir.clone(),
                        source,
                    };
                    let staging = tmp.join(format!("cache-{}", lamina_runner::new_id()));
                    fs::create_dir_all(&staging).map_err(io)?;
                    fs::set_permissions(&staging, fs::Permissions::from_mode(mode)).map_err(io)?;
                    std::os::unix::fs::chown(&staging, Some(uid), Some(gid)).map_err(io)?;
                    fs::create_dir_all(dir.parent().unwrap_or(Path::new("/"))).map_err(io)?;
                    if fs::rename(&staging, &dir).is_err() {
                        let _ = fs::remove_dir(&staging); // lost a race: another build created it
                    }
                }
                if word(&m.sharing).as_deref() == Some("locked") {
                    // One writer at a time across builds: held until this RUN ends.
                    let lp = dir.with_extension("lock");
                    let f = fs::File::create(&lp).map_err(|source| BuildError::Io {
                        path: lp.clone(),
                        source,
                    })?;
                    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
                        BuildError::Io {
                            path: lp.clone(),
                            source: e.into(),
                        }
                    })?;
                    locks.push(f);
                }
                rmounts.push(Mount::Bind {
                    source: dir,
                    destination: target,
                    readonly: m.readonly == Some(true),
                });
            }
            MountType::Secret => {
                let sid = m.effective_id().unwrap_or_default();
                let required = m.required == Some(true);
                let Some(src) = engine.req.secrets.get(&sid) else {
                    if required {
                        return Err(BuildError::MissingSecret { line, id: sid });
                    }
                    continue;
                };
                let data = match src {
                    SecretSource::File(p) => fs::read(p).map_err(|source| BuildError::Io {
                        path: p.clone(),
                        source,
                    })?,
                    SecretSource::Env(v) => std::env::var(v).unwrap_or_default().into_bytes(),
                };
                if let Some(var) = word(&m.env) {
                    env.push(format!("{var}={}", String::from_utf8_lossy(&data)));
                    if m.target.is_none() {
                        continue;
                    }
                }
                let p = tmp.join(format!("secret-{}", lamina_runner::new_id()));
                scratch.paths.push(p.clone());
                let io = |source| BuildError::Io {
                    path: p.clone(),
                    source,
                };
                fs::write(&p, &data).map_err(io)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(parse_mode(&word(&m.mode), 0o400)))
                    .map_err(io)?;
                let uid = word(&m.uid).and_then(|u| u.parse::<u32>().ok()).unwrap_or(0);
                let gid = word(&m.gid).and_then(|g| g.parse::<u32>().ok()).unwrap_or(0);
                std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(io)?;
                rmounts.push(Mount::Bind {
                    source: p,
                    destination: target,
                    readonly: true,
                });
            }
            MountType::Tmpfs => {
                let size = word(&m.size).and_then(|s| parse_size(&s)).unwrap_or(0);
                rmounts.push(Mount::Tmpfs {
                    destination: target,
                    size,
                    mode: 0o1777,
                });
            }
            MountType::Ssh => {
                let sid = m.effective_id().unwrap_or_else(|| "default".into());
                let Some(sock) = engine.req.ssh.get(&sid) else {
                    if m.required == Some(true) {
                        return Err(BuildError::MissingSecret {
                            line,
                            id: format!("ssh:{sid}"),
                        });
                    }
                    continue;
                };
                env.push(format!("SSH_AUTH_SOCK={target}"));
                rmounts.push(Mount::Bind {
                    source: sock.clone(),
                    destination: target,
                    readonly: false,
                });
            }
            MountType::Bind => {
                let src_path = word(&m.source).unwrap_or_else(|| "/".into());
                let from = step.mount_from.get(i).cloned().flatten();
                let rw = !m.is_readonly();
                // Never the context dir or a snapshot path itself: a private copy of the selection
                // (see bind_source.rs), .dockerignore applied for the context.
                let view_holder;
                let (tree, tree_key): (&dyn SourceTree, String) = match &from {
                    None => (&engine.context, "context".into()),
                    Some(Ref::Stage(s)) => {
                        let out = engine.stage_result(*s)?;
                        view_holder = View::new(out.layers.iter().rev().map(|l| l.dir.clone()).collect());
                        (&view_holder, format!("stage:{s}"))
                    }
                    Some(Ref::Image(name)) => {
                        let (_, layers) = engine.image_base(name, &engine.platforms[stage_pos])?;
                        view_holder = View::new(layers.iter().rev().map(|l| l.dir.clone()).collect());
                        (&view_holder, format!("image:{name}"))
                    }
                };
                let source = engine.binds.materialise(
                    &BindRequest {
                        tree,
                        tree_key,
                        source: &src_path,
                        readonly: !rw,
                        line,
                        tmp: &tmp,
                    },
                    &mut scratch.paths,
                )?;
                rmounts.push(Mount::Bind {
                    source,
                    destination: target,
                    readonly: !rw,
                });
            }
        }
    }
    // Mount points BuildKit leaves in the layer: the target dir of a dir mount, the parents of a file mount.
    for m in &rmounts {
        let (dest, is_dir) = match m {
            Mount::Bind {
                source, destination, ..
            } => (destination, source.is_dir()),
            Mount::Tmpfs { destination, .. } => (destination, true),
        };
        let mut comps = view
            .resolve(dest, true)
            .map_err(|e| BuildError::from(e).at_line(line))?;
        if !is_dir {
            comps.pop();
        }
        if !comps.is_empty() && view.lookup(&comps).is_none() {
            super::copy::mkdir_p(view, upper, &comps, None)?;
        }
    }
    let work = engine.writer.staging()?;
    scratch.paths.push(work.clone());
    let net = match network {
        Some(crate::dockerfile::Network::Host) => Network::Host,
        Some(crate::dockerfile::Network::None) => Network::None,
        // `default`: the build's network (the bridge unless `lamina build --network` says otherwise).
        _ => engine.req.network,
    };
    let req = RunRequest {
        id: None,
        lower_dirs: lower.to_vec(),
        upper_dir: upper.to_path_buf(),
        work_dir: work,
        mounts: rmounts,
        process: Process {
            args: args.clone(),
            env,
            cwd: workdir.to_string(),
            user: cfg.user.clone().filter(|u| !u.is_empty()),
            additional_groups: Vec::new(),
            tty: false,
        },
        limits: Default::default(),
        network: net,
        hostname: Some("buildkitsandbox".into()),
        etc_hostname: false,
        readonly_rootfs: false,
        helper_exe: engine.req.helper_exe.clone(),
        ports: Vec::new(),
        detach: false,
        status_file: None,
        // The networks dir is the process default, set by the binary from its store root.
        net: Default::default(),
    };
    let (reader, writer) = std::io::pipe().map_err(|source| BuildError::Io {
        path: upper.to_path_buf(),
        source,
    })?;
    let writer2 = writer.try_clone().map_err(|source| BuildError::Io {
        path: upper.to_path_buf(),
        source,
    })?;
    let stdio = RunStdio {
        stdin: Some(std::process::Stdio::null()),
        stdout: Some(writer.into()),
        stderr: Some(writer2.into()),
    };
    let progress = engine.progress;
    let (outcome, tail) = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let mut tail: VecDeque<String> = VecDeque::new();
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            while let Ok(n) = r.read_until(b'\n', &mut buf) {
                if n == 0 {
                    break;
                }
                let l = String::from_utf8_lossy(&buf).trim_end_matches('\n').to_string();
                progress.event(Event::Log { id, line: l.clone() });
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(l);
                buf.clear();
            }
            tail
        });
        let outcome = lamina_runner::run_with_stdio(&req, stdio);
        let tail = h.join().unwrap_or_default();
        (outcome, tail)
    });
    drop(locks);
    let outcome = outcome.map_err(|e| BuildError::Runner {
        line,
        message: super::layers::error_chain(&e),
    })?;
    if outcome.exit_code != 0 || outcome.signal.is_some() {
        return Err(BuildError::RunFailed {
            line,
            command: args.join(" "),
            code: outcome.exit_code,
            tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        'b' => (&s[..s.len() - 1], 1),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}
