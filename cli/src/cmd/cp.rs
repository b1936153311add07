//! `lamina cp`: copy between a container and the host, with docker's rules (`CONTAINER:PATH`, `-`
//! for a tar on stdin or stdout, `SRC/.` for a directory's contents, a missing destination named
//! after its last component).
//!
//! The container's side is a [`RootView`]: paths in it resolve with `RESOLVE_IN_ROOT`, so a link
//! in the image to `/` (or `../..`) stays inside the container's tree; a running container is
//! frozen while it is read or written. Both ways the data is a tar stream from `archive::write_tree`
//! applied by the store's in-root applier on the receiving side.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use lamina_runner::access::{RootView, fd_path};

use super::container::{archive, start, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Follow a symlink given as SRC.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, a host path, or `-` (a tar on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or `-` (a tar on stdout).
    pub dest: String,
}

/// docker's split: `NAME:PATH` is in a container unless it starts like a local path.
fn container_part(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
        .filter(|(c, _)| !c.is_empty() && !c.contains('/'))
}

/// The name a copied tree gets at its destination's top: the source's last component, or `.` for
/// `DIR/.` (its contents).
fn top_name(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.ends_with("/.") || t == "." {
        return ".".into();
    }
    Path::new(t)
        .file_name()
        .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned())
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    match (container_part(&args.src), container_part(&args.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source (CONTAINER:PATH)"),
        (Some((c, p)), None) => copy_out(&state::find(&root, c)?, p, &args.dest, args.follow_link)?,
        (None, Some((c, p))) => copy_in(&state::find(&root, c)?, &args.src, p, args.follow_link)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn copy_out(rec: &state::Record, src: &str, dest: &str, follow: bool) -> anyhow::Result<()> {
    let req = start::load_request(&rec.dir)?;
    // Absolute before the view: mounting moves the working directory for a moment.
    let dest_abs = (dest != "-").then(|| std::path::absolute(dest)).transpose()?;
    let view = RootView::snapshot(&req.lower_dirs, &req.upper_dir, rec.pid())?;
    let fd = view.resolve(src, follow)?;
    let src_path = fd_path(&fd);
    let st = rustix::fs::fstat(fd.as_fd()).with_context(|| format!("stat {src}"))?;
    let src_is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
    // The fd names the object itself: the magic link is followed to it, never further; a link
    // itself is read with readlinkat (its /proc/self/fd name reads as the magic link).
    let link = (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink)
        .then(|| rustix::fs::readlinkat(&fd, "", Vec::new()))
        .transpose()
        .with_context(|| format!("reading the link {src}"))?
        .map(|t| {
            PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                t.into_bytes(),
            ))
        });
    type Out = Box<dyn std::io::Write + Send>;
    let write = move |name: &str, w: Out| -> anyhow::Result<Out> {
        match &link {
            Some(target) => archive::write_link(name, target, w),
            None => archive::write_tree(&src_path, true, name, w),
        }
    };
    let Some(dest) = dest_abs else {
        let mut out = write(&top_name(src), Box::new(std::io::stdout()))?;
        std::io::Write::flush(&mut out).context("writing the tar to stdout")?;
        return Ok(());
    };
    let (into, name) = place(&dest, src, src_is_dir)?;
    archive::piped(
        move |w| write(&name, Box::new(w)).map(drop),
        |r| archive::apply_into(r, &into),
    )?;
    drop(fd);
    drop(view);
    Ok(())
}

/// docker's destination rules for a host path: into an existing directory under the source's
/// name (or its contents for `DIR/.`); otherwise the destination's own name in its parent.
fn place(dest: &Path, src: &str, src_is_dir: bool) -> anyhow::Result<(PathBuf, String)> {
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => Ok((dest.to_path_buf(), top_name(src))),
        Ok(_) if src_is_dir => bail!("cannot copy a directory to a file: {}", dest.display()),
        Ok(_) => parent_and_name(dest),
        Err(_) if dest.to_string_lossy().ends_with('/') && !src_is_dir => {
            bail!("destination directory {} does not exist", dest.display())
        }
        Err(_) => parent_and_name(dest),
    }
}

fn parent_and_name(dest: &Path) -> anyhow::Result<(PathBuf, String)> {
    let parent = dest.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        bail!("destination directory {} does not exist", parent.display());
    }
    let name = dest
        .file_name()
        .with_context(|| format!("invalid destination {}", dest.display()))?;
    Ok((parent.to_path_buf(), name.to_string_lossy().into_owned()))
}

fn copy_in(rec: &state::Record, src: &str, dest: &str, follow: bool) -> anyhow::Result<()> {
    let req = start::load_request(&rec.dir)?;
    let src_abs = (src != "-").then(|| std::path::absolute(src)).transpose()?;
    let view = match rec.pid() {
        Some(pid) => RootView::live(pid)?,
        None => {
            if rec.active() {
                bail!("container {} is restarting: try again", rec.meta.name);
            }
            RootView::writable(&req.lower_dirs, &req.upper_dir, &req.work_dir)?
        }
    };
    let dest_fd = match view.resolve(dest, true) {
        Ok(fd) => Some(fd),
        Err(lamina_runner::access::AccessError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let dest_is_dir = dest_fd.as_ref().is_some_and(|fd| {
        rustix::fs::fstat(fd.as_fd()).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
    });
    let Some(src_abs) = src_abs else {
        if !dest_is_dir {
            bail!("destination {dest} must be a directory in the container for a tar on stdin");
        }
        let into = dir_path(dest_fd.as_ref().expect("a directory was found"));
        return archive::apply_into(std::io::stdin().lock(), &into);
    };
    let meta = if follow {
        std::fs::metadata(&src_abs)
    } else {
        std::fs::symlink_metadata(&src_abs)
    }
    .with_context(|| format!("cannot stat {src}"))?;
    let (into_fd, name) = if dest_is_dir {
        (dest_fd.expect("a directory was found"), top_name(src))
    } else {
        if dest_fd.is_some() && meta.is_dir() {
            bail!("cannot copy a directory to a file: {dest}");
        }
        let t = dest.trim_end_matches('/');
        if t.is_empty() {
            bail!("invalid destination {dest}");
        }
        let (parent, name) = t.rsplit_once('/').unwrap_or(("", t));
        let parent_fd = view
            .resolve(if parent.is_empty() { "/" } else { parent }, true)
            .with_context(|| format!("destination directory {parent} does not exist in the container"))?;
        (parent_fd, name.to_string())
    };
    let into = dir_path(&into_fd);
    archive::piped(
        move |w| archive::write_tree(&src_abs, follow, &name, w).map(drop),
        |r| archive::apply_into(r, &into),
    )?;
    drop(into_fd);
    drop(view);
    Ok(())
}

/// A directory fd's name for the applier, which opens its root with O_NOFOLLOW: through the magic
/// link as a middle component (`/proc/self/fd/N/.`), which the kernel follows to that directory.
fn dir_path(fd: &std::os::fd::OwnedFd) -> PathBuf {
    fd_path(fd).join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_and_names() {
        assert_eq!(container_part("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(container_part("./a:b"), None);
        assert_eq!(container_part("/tmp/x"), None);
        assert_eq!(container_part("-"), None);
        assert_eq!(top_name("/etc/"), "etc");
        assert_eq!(top_name("/etc/."), ".");
        assert_eq!(top_name("/"), ".");
        assert_eq!(top_name("a/b.txt"), "b.txt");
    }
}
