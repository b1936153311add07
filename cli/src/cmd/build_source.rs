//! The main build context when it is not a local directory, made into one before the build (as buildx
//! does): `-` (a tar, plain or compressed, or a lone Dockerfile, on stdin), a git URL
//! (`https://host/repo.git#REF:SUBDIR`, `git://…`, `git@…`, `file:///…/repo.git#…`), or any other
//! http(s) URL (a tarball, or a lone Dockerfile). Tars are unpacked with the store's layer applier (no
//! path leaves the directory); git repositories are cloned with the `git` binary, without `.git`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use lamina_registry::RegistryOptions;
use lamina_store::layer::apply::{ApplyOptions, apply_layer};

/// A local directory to build from; a temporary one lives as long as this.
pub struct MainContext {
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl MainContext {
    /// Whether the context was fetched (a `-f` path is then inside it).
    pub fn is_remote(&self) -> bool {
        self._tmp.is_some()
    }
}

/// BuildKit's (and the docker CLI's) rule: a URL is a git repository when it says so by scheme or by a
/// path ending in `.git` (before an optional `#fragment`).
fn is_git(url: &str) -> bool {
    if url.starts_with("git://") || url.starts_with("git@") || url.starts_with("github.com/") {
        return true;
    }
    let is_url = ["http://", "https://", "file://"]
        .iter()
        .any(|p| url.starts_with(p));
    is_url && url.split('#').next().is_some_and(|p| p.ends_with(".git"))
}

/// Makes `context` a directory: as is when it is one.
pub fn open(context: &Path, registry: &RegistryOptions) -> anyhow::Result<MainContext> {
    let Some(s) = context.to_str() else {
        return Ok(local(context));
    };
    if s == "-" {
        let tmp = tempfile::tempdir()?;
        let body = tmp.path().join(".lamina-stdin");
        let mut f = std::fs::File::create(&body)?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f).context("reading the context from stdin")?;
        let dir = tmp.path().join("ctx");
        unpack_or_dockerfile(&body, &dir).context("the context on stdin")?;
        return Ok(MainContext { dir, _tmp: Some(tmp) });
    }
    if is_git(s) {
        return git(s).with_context(|| format!("git context {s}"));
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        let tmp = tempfile::tempdir()?;
        let body = tmp.path().join(".lamina-download");
        let rt = super::transfer::runtime()?.handle().clone();
        lamina_registry::download::download(s, &body, None, registry, &rt)
            .with_context(|| format!("downloading the context {s}"))?;
        let dir = tmp.path().join("ctx");
        unpack_or_dockerfile(&body, &dir).with_context(|| format!("the context {s}"))?;
        return Ok(MainContext { dir, _tmp: Some(tmp) });
    }
    Ok(local(context))
}

fn local(p: &Path) -> MainContext {
    MainContext {
        dir: p.to_path_buf(),
        _tmp: None,
    }
}

/// A tar (any compression the store reads) is unpacked into `dir`; anything else is taken as the
/// Dockerfile of an otherwise empty context, as `docker build - < Dockerfile`.
fn unpack_or_dockerfile(body: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut plain =
        lamina_store::layer::read::decompress(std::io::BufReader::new(std::fs::File::open(body)?))?;
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < head.len() {
        let k = plain.read(&mut head[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    head.truncate(got);
    if got == 512 && &head[257..262] == b"ustar" {
        let opts = ApplyOptions {
            // The files are the user's context, not a container's: owners don't matter (COPY makes them
            // root's), and a `.wh.` name is a file like any other, never applied.
            same_owner: false,
            ..Default::default()
        };
        apply_layer(std::io::Cursor::new(head).chain(plain), dir, &opts)?;
        return Ok(());
    }
    let mut f = std::fs::File::create(dir.join("Dockerfile"))?;
    std::io::copy(&mut std::io::Cursor::new(head).chain(plain), &mut f)?;
    Ok(())
}

/// Clones `url` (`URL#REF:SUBDIR`, both parts optional) and checks REF out; the context is SUBDIR.
fn git(url: &str) -> anyhow::Result<MainContext> {
    let (repo, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let sub = Path::new(subdir);
    if sub
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!("the subdirectory {subdir:?} must be a relative path inside the repository");
    }
    let tmp = tempfile::tempdir()?;
    let checkout = tmp.path().join("repo");
    run_git(
        Command::new("git")
            .args(["clone", "--quiet", "--no-checkout", "--"])
            .arg(repo)
            .arg(&checkout),
    )?;
    let reference = if reference.is_empty() { "HEAD" } else { reference };
    // A branch exists only as origin/NAME after a clone; tags and commits resolve as they are.
    let commit = [reference.to_string(), format!("origin/{reference}")]
        .iter()
        .find_map(|r| {
            let o = Command::new("git")
                .arg("-C")
                .arg(&checkout)
                .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
                .arg(format!("{r}^{{commit}}"))
                .output()
                .ok()?;
            o.status
                .success()
                .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .with_context(|| format!("no branch, tag or commit {reference:?} in {repo}"))?;
    run_git(
        Command::new("git")
            .arg("-C")
            .arg(&checkout)
            .args(["checkout", "--quiet", "--detach"])
            .arg(&commit),
    )?;
    // BuildKit leaves the repository's metadata out of the context (unless --keep-git-dir, for ADD).
    std::fs::remove_dir_all(checkout.join(".git")).context("removing .git")?;
    let dir = checkout.join(sub);
    if !dir.is_dir() {
        bail!("no directory {subdir:?} at {reference}");
    }
    Ok(MainContext { dir, _tmp: Some(tmp) })
}

fn run_git(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!("git failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn git_urls_as_buildkit_tells_them() {
        for u in [
            "https://example.com/r.git",
            "https://example.com/r.git#main:sub",
            "git://example.com/r",
            "git@example.com:r.git",
            "github.com/moby/buildkit",
            "file:///srv/r.git#v1",
        ] {
            assert!(super::is_git(u), "{u}");
        }
        for u in [
            "https://example.com/ctx.tar.gz",
            "https://example.com/r.git/x",
            "./r.git",
            "-",
        ] {
            assert!(!super::is_git(u), "{u}");
        }
    }
}
