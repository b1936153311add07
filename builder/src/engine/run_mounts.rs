//! `RUN --mount=…` turned into typed [`ExecMount`]s: store-owned cache dirs (with `sharing=locked`
//! held across builds), secrets written to private files, ssh sockets, private copies of bind sources
//! and tmpfs with its size in bytes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::BuildError;
use super::bind_source::BindRequest;
use super::context::SourceTree;
use super::ctx::{SecretSource, StepCtx};
use super::exec::ExecMount;
use super::view::View;
use crate::dockerfile::graph::Ref;
use crate::dockerfile::{Mount, MountType, Step};

/// Temp files and dirs of one RUN and the cache locks it holds, released when it ends.
#[derive(Default)]
pub struct Scratch {
    pub paths: Vec<PathBuf>,
    locks: Vec<lamina_store::buildcache::CacheMount>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = fs::remove_dir_all(p).or_else(|_| fs::remove_file(p));
        }
    }
}

/// The mounts of a RUN step and the env entries they add (secret `env=`, `SSH_AUTH_SOCK`).
pub struct Prepared {
    pub mounts: Vec<ExecMount>,
    pub env: Vec<String>,
}

/// Resolves every `--mount` of `step`; relative targets are under `workdir`.
pub fn prepare(
    ctx: &StepCtx<'_>,
    step: &Step,
    mounts: &[Mount],
    workdir: &str,
    scratch: &mut Scratch,
) -> Result<Prepared, BuildError> {
    let line = step.instruction.span.start.line as usize;
    let mut out = Prepared {
        mounts: Vec::new(),
        env: Vec::new(),
    };
    for (i, m) in mounts.iter().enumerate() {
        let target = m.effective_target().unwrap_or_default();
        let target = if target.starts_with('/') {
            target
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), target)
        };
        match m.mount_type {
            MountType::Cache => {
                let dir = cache_dir(ctx, m, &target, scratch)?;
                out.mounts.push(ExecMount::Cache {
                    dir,
                    target,
                    readonly: m.readonly == Some(true),
                });
            }
            MountType::Secret => {
                let sid = m.effective_id().unwrap_or_default();
                let Some(src) = ctx.settings.secrets.get(&sid) else {
                    if m.required == Some(true) {
                        return Err(BuildError::MissingSecret { line, id: sid });
                    }
                    continue;
                };
                let data = match src {
                    SecretSource::File(p) => fs::read(p).map_err(|source| BuildError::SecretFile {
                        id: sid.clone(),
                        path: p.clone(),
                        source,
                    })?,
                    SecretSource::Env(v) => std::env::var(v).unwrap_or_default().into_bytes(),
                };
                if let Some(var) = m.env.as_ref().map(|w| &w.value).filter(|v| !v.is_empty()) {
                    out.env.push(format!("{var}={}", String::from_utf8_lossy(&data)));
                    if m.target.is_none() {
                        continue;
                    }
                }
                let file = secret_file(ctx.store.tmp_dir(), m, &data, scratch, ctx.settings.unprivileged)?;
                out.mounts.push(ExecMount::Secret { file, target });
            }
            MountType::Tmpfs => out.mounts.push(ExecMount::Tmpfs {
                target,
                size: m.size_bytes(),
            }),
            MountType::Ssh => {
                let sid = m.effective_id().unwrap_or_else(|| "default".into());
                let Some(sock) = ctx.settings.ssh.get(&sid) else {
                    if m.required == Some(true) {
                        return Err(BuildError::MissingSecret {
                            line,
                            id: format!("ssh:{sid}"),
                        });
                    }
                    continue;
                };
                out.env.push(format!("SSH_AUTH_SOCK={target}"));
                out.mounts.push(ExecMount::Ssh {
                    socket: sock.clone(),
                    target,
                });
            }
            MountType::Bind => {
                let from = step.mount_from.get(i).cloned().flatten();
                let source = bind_source(ctx, m, from.as_ref(), line, scratch)?;
                out.mounts.push(ExecMount::Bind {
                    source,
                    target,
                    readonly: m.is_readonly(),
                });
            }
        }
    }
    Ok(out)
}

/// chown, where an unprivileged build (see [`CopySpec::unprivileged`](super::copy::CopySpec)) keeps
/// the caller's ids when the kernel refuses.
fn chown(p: &Path, uid: u32, gid: u32, unprivileged: bool) -> std::io::Result<()> {
    match std::os::unix::fs::chown(p, Some(uid), Some(gid)) {
        Err(e) if unprivileged && e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        r => r,
    }
}

/// The store's dir for a cache mount (made with the mount's owner and mode on first use), held for this
/// RUN: GC leaves a mount in use alone, and `sharing=locked` waits for other users.
fn cache_dir(
    ctx: &StepCtx<'_>,
    m: &Mount,
    target: &str,
    scratch: &mut Scratch,
) -> Result<PathBuf, BuildError> {
    let (uid, gid) = m.owner();
    let spec = lamina_store::buildcache::CacheMountSpec {
        id: m.effective_id().unwrap_or_else(|| target.to_string()),
        uid,
        gid,
        mode: m.mode_or(0o755),
        locked: m.sharing.as_ref().map(|w| w.value.as_str()) == Some("locked"),
        unprivileged: ctx.settings.unprivileged,
    };
    let held = ctx
        .store
        .cache_mount(&spec)
        .map_err(|e| BuildError::Store { source: Box::new(e) })?;
    let dir = held.path.clone();
    scratch.locks.push(held);
    Ok(dir)
}

fn secret_file(
    tmp: &Path,
    m: &Mount,
    data: &[u8],
    scratch: &mut Scratch,
    unprivileged: bool,
) -> Result<PathBuf, BuildError> {
    let p = tmp.join(format!("secret-{}", lamina_runner::new_id()));
    scratch.paths.push(p.clone());
    let io = |source| BuildError::Io {
        path: p.clone(),
        source,
    };
    fs::write(&p, data).map_err(io)?;
    fs::set_permissions(&p, fs::Permissions::from_mode(m.mode_or(0o400))).map_err(io)?;
    let (uid, gid) = m.owner();
    chown(&p, uid, gid, unprivileged).map_err(io)?;
    Ok(p)
}

/// Never the context dir or a snapshot path itself: a private copy of the selection (see
/// bind_source.rs), `.dockerignore` applied for the context.
fn bind_source(
    ctx: &StepCtx<'_>,
    m: &Mount,
    from: Option<&Ref>,
    line: usize,
    scratch: &mut Scratch,
) -> Result<PathBuf, BuildError> {
    let src_path = m
        .source
        .as_ref()
        .map(|w| w.value.clone())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/".into());
    let view_holder: View;
    let (tree, tree_key): (&dyn SourceTree, String) = match from {
        None => (ctx.context, "context".into()),
        Some(Ref::Stage(s)) => {
            view_holder = ctx.stage(*s)?.view();
            (&view_holder, format!("stage:{s}"))
        }
        Some(Ref::Image(name)) => {
            let (_, layers) = ctx.images.load(name, ctx.platform)?;
            view_holder = View::new(layers.iter().rev().map(|l| l.dir.clone()).collect());
            (&view_holder, format!("image:{name}"))
        }
    };
    ctx.binds.materialise(
        &BindRequest {
            tree,
            tree_key,
            source: &src_path,
            readonly: m.is_readonly(),
            line,
            tmp: ctx.store.tmp_dir(),
            unprivileged: ctx.settings.unprivileged,
        },
        &mut scratch.paths,
    )
}
