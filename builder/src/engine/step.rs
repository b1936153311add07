//! Executes one step of a stage: cache lookup by key, else COPY/ADD into a new snapshot dir or RUN over
//! overlay, then hands the snapshot to the background layer writer. Metadata steps only change the config.

use std::fs;
use std::io::Read;
use std::path::Path;

use lamina_store::Digest;
use lamina_store::config::ImageConfig;

use super::BuildError;
use super::cache::KeyBuilder;
use super::context::{Context, SourceTree, select, selection_digest};
use super::copy::{CopySpec, copy};
use super::ctx::StepCtx;
use super::layers::Layer;
use super::meta::{self, StageMeta};
use super::perms::{parse_chmod, resolve_chown};
use super::view::View;
use crate::dockerfile::graph::Ref;
use crate::dockerfile::{CopyArgs, Kind, Step};

/// The running state of a stage.
pub struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub key: Digest,
    pub meta: StageMeta,
}

impl StageState {
    pub fn new(mut config: ImageConfig, layers: Vec<Layer>, key: Digest) -> StageState {
        // BuildKit gives every image a PATH.
        let cc = config.config_mut();
        if !cc.env.iter().any(|e| e.starts_with("PATH=")) {
            cc.env.insert(0, format!("PATH={}", meta::DEFAULT_PATH));
        }
        StageState {
            config,
            layers,
            key,
            meta: StageMeta::default(),
        }
    }

    /// The rootfs as a read-only merged view, top layer first.
    pub fn view(&self) -> View {
        View::new(self.layers.iter().rev().map(|l| l.dir.clone()).collect())
    }

    pub fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .unwrap_or_else(meta::default_shell)
    }
}

/// Runs the steps of one stage with its [`StepCtx`].
pub struct StepRunner<'c, 'a> {
    pub ctx: &'c StepCtx<'a>,
}

fn used_vars(step: &Step) -> Vec<(String, String)> {
    step.used_args
        .iter()
        .map(|a| {
            let v = step
                .args
                .iter()
                .rev()
                .find(|(k, _)| k == a)
                .and_then(|(_, v)| v.clone())
                .unwrap_or_default();
            (a.clone(), v)
        })
        .collect()
}

impl StepRunner<'_, '_> {
    /// Runs `step`: Ok(Some(true)) when it came from the cache, Ok(None) for config-only steps.
    pub fn execute(&self, st: &mut StageState, step: &Step, id: usize) -> Result<Option<bool>, BuildError> {
        let line = step.instruction.span.start.line as usize;
        let mut kb = KeyBuilder::new(&st.key);
        if let Some(e) = self.ctx.settings.epoch {
            // Layers made under an epoch have clamped mtimes: never reuse one made without it, or under another.
            kb.field(&format!("source-date-epoch {e}"));
        }
        kb.field(&meta::canonical(&step.instruction));
        kb.vars(used_vars(step).iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match &step.instruction.kind {
            Kind::Run { .. } => {
                kb.vars(step.run_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let (key, hint) = kb.finish_with_hint();
                self.run(st, step, key, hint, id).map(Some)
            }
            Kind::Copy(a) => self.copy(st, step, a, false, kb).map(Some),
            Kind::Add(a) => self.copy(st, step, a, true, kb).map(Some),
            Kind::From { .. } => Ok(None),
            Kind::Workdir { .. } => {
                let cc = st.config.config_mut();
                meta::apply(cc, &mut st.meta, &step.instruction, line)?;
                let key = kb.finish();
                let wd = st.workdir();
                let view = st.view();
                let comps = view
                    .resolve(&wd, true)
                    .map_err(|e| BuildError::from(e).at_line(line))?;
                self.add_history(st, step, &[], false);
                if comps.is_empty() || view.lookup(&comps).is_some() {
                    st.key = key;
                    if let Some(h) = st.config.history.last_mut() {
                        h.empty_layer = true;
                        self.untime(h);
                    }
                    return Ok(None);
                }
                let owner = match st.config.config.as_ref().and_then(|c| c.user.clone()) {
                    Some(u) => Some(resolve_chown(&view, &u, line)?),
                    None => None,
                };
                self.layer_step(st, key, None, |upper| {
                    super::copy::mkdir_p(&view, upper, &comps, owner, self.ctx.settings.unprivileged)
                })
                .map(Some)
            }
            _ => {
                let cc = st.config.config_mut();
                meta::apply(cc, &mut st.meta, &step.instruction, line)?;
                st.key = kb.finish();
                if !matches!(step.instruction.kind, Kind::Arg { .. }) {
                    self.add_history(st, step, &[], true);
                }
                Ok(None)
            }
        }
    }

    fn add_history(&self, st: &mut StageState, step: &Step, run_args: &[(String, String)], empty: bool) {
        let shell = st.shell();
        let text = meta::step_text(step, &self.ctx.settings.source);
        let cb = meta::created_by(&step.instruction, text, &shell, run_args);
        let mut h = meta::history(&self.ctx.settings.created, cb, empty);
        if empty {
            self.untime(&mut h);
        }
        st.config.history.push(h);
    }

    /// A metadata step's entry has no time of its own unless SOURCE_DATE_EPOCH gives one: the image
    /// writer fills it from the layers around it ([`meta::fill_history_times`]), as BuildKit does.
    fn untime(&self, h: &mut lamina_store::config::History) {
        if self.ctx.settings.epoch.is_none() {
            h.created = None;
        }
    }

    /// Cache lookup, else `produce` into a staging dir → snapshot → background layer write. The step's
    /// history entry (already added) names it in the cache record. `hint`: the step's parent-independent
    /// key, for steps likely to make the same tree again under a changed parent (see `LayerWriter::spawn`).
    fn layer_step(
        &self,
        st: &mut StageState,
        key: Digest,
        hint: Option<Digest>,
        produce: impl FnOnce(&Path) -> Result<(), BuildError>,
    ) -> Result<bool, BuildError> {
        let c = self.ctx;
        let w = c.writer;
        if !c.no_cache
            && let Some(layer) = c.cache.lookup(&key, w, c.store, c.progress)?
        {
            // The step's time is when its layer was made (BuildKit's "createdat"), so a cached rebuild
            // repeats the history, and with it the image ID, of the build that made the layer.
            if let Some(rec) = c.cache.index.get(&key)
                && let Some(h) = st.config.history.last_mut()
            {
                let t = match c.settings.epoch {
                    Some(e) => rec.created.min(e),
                    None => rec.created,
                };
                h.created = Some(meta::rfc3339(t, 0));
            }
            st.layers.push(layer);
            st.key = key;
            return Ok(true);
        }
        let staging = w.staging()?;
        if let Err(e) = produce(&staging) {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        let id = w.fresh_snapshot_id(&key);
        let dir = w.commit(staging, &id)?;
        let created_by = st
            .config
            .history
            .last()
            .and_then(|h| h.created_by.clone())
            .unwrap_or_default();
        let created = c.settings.created_secs;
        st.layers
            .push(w.spawn(dir, key.clone(), &id, created_by, created, hint));
        st.key = key;
        Ok(false)
    }

    fn copy(
        &self,
        st: &mut StageState,
        step: &Step,
        a: &CopyArgs,
        is_add: bool,
        mut kb: KeyBuilder,
    ) -> Result<bool, BuildError> {
        let instr = &step.instruction;
        let line = instr.span.start.line as usize;
        let e = self.ctx;
        // Heredoc sources become files of a small private context.
        let heredoc_dir;
        let mut url_dir: Option<tempfile::TempDir> = None;
        let mut sources: Vec<String> = Vec::new();
        let mut heredoc_ctx: Option<Context> = None;
        if !instr.heredocs.is_empty() {
            heredoc_dir = tempfile::tempdir_in(e.store.tmp_dir()).map_err(|source| BuildError::Io {
                path: e.store.tmp_dir().to_path_buf(),
                source,
            })?;
            for h in &instr.heredocs {
                let p = heredoc_dir.path().join(&h.name);
                fs::write(&p, &h.content).map_err(|source| BuildError::Io {
                    path: p.clone(),
                    source,
                })?;
            }
            heredoc_ctx = Some(Context::open(heredoc_dir.path(), None, None)?);
        }
        let mut urls: Vec<String> = Vec::new();
        for w in &a.sources {
            let v = w.value.as_str();
            if let Some(name) = v.strip_prefix("<<") {
                sources.push(name.trim_start_matches('-').trim_matches(['"', '\'']).to_string());
            } else if is_add && (v.starts_with("http://") || v.starts_with("https://")) {
                urls.push(v.to_string());
            } else {
                sources.push(v.to_string());
            }
        }
        let mut pinned_urls = None;
        if !urls.is_empty() {
            // Downloaded files form a private context, like heredocs; the key covers their content.
            if !sources.is_empty() || heredoc_ctx.is_some() {
                return Err(BuildError::Unsupported {
                    line,
                    what: "ADD mixing URLs and other sources".into(),
                });
            }
            let dir = tempfile::tempdir_in(e.store.tmp_dir()).map_err(|source| BuildError::Io {
                path: e.store.tmp_dir().to_path_buf(),
                source,
            })?;
            let checksum = a.checksum.as_ref().map(|c| c.value.as_str());
            let fetch = super::fetch::UrlSources::new(urls.clone(), checksum, dir.path(), line)?;
            sources.extend(fetch.sources());
            if let Some(pin) = fetch.pin() {
                // Like BuildKit: a pinned URL is keyed by its checksum and only downloaded on a miss.
                kb.field(&format!("url-checksum {pin}"));
                pinned_urls = Some(fetch);
            } else {
                // Unpinned: always fetched, keyed by content and Last-Modified (the file's mtime).
                for d in fetch.fetch(&e.settings.registry, e.settings.runtime("ADD <url>")?)? {
                    let mtime = d
                        .last_modified
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |t| t.as_secs());
                    kb.field(&format!("url {} {mtime}", d.digest));
                }
            }
            heredoc_ctx = Some(Context::open(dir.path(), None, None)?);
            url_dir = Some(dir);
        }
        let excludes: Vec<String> = a.exclude.iter().map(|w| w.value.clone()).collect();
        let exclude = move |rel: &str, _is_dir: bool| excludes.iter().any(|p| path_match(p, rel));
        let view_holder;
        let stage_ctx;
        let (tree, from_context): (&dyn SourceTree, bool) = match (&heredoc_ctx, &step.copy_from) {
            (Some(c), _) => {
                kb.field("heredoc");
                (c as &dyn SourceTree, true)
            }
            (None, None) => {
                let mut selected = Vec::new();
                for s in &sources {
                    let (a, b) = s.split_once("/./").unwrap_or(("", s));
                    let pat = if a.is_empty() {
                        b.to_string()
                    } else {
                        format!("{a}/{b}")
                    };
                    selected.extend(select(e.context, &pat).map_err(|er| er.at_line(line))?);
                }
                let d = selection_digest(e.context, &selected, &exclude)?;
                kb.field(&d.to_string());
                (e.context as &dyn SourceTree, true)
            }
            (None, Some(Ref::Stage(i))) => {
                let out = e.stage(*i)?;
                kb.field(&out.key.to_string());
                view_holder = out.view();
                (&view_holder as &dyn SourceTree, false)
            }
            (None, Some(Ref::Image(name))) => {
                let (img, layers) = e.images.load(name, e.platform).map_err(|er| er.at_line(line))?;
                kb.field(&img.config_digest.to_string());
                stage_ctx = View::new(layers.iter().rev().map(|l| l.dir.clone()).collect());
                (&stage_ctx as &dyn SourceTree, false)
            }
        };
        let (key, hint) = kb.finish_with_hint();
        let parent_view = st.view();
        let owner = match &a.chown {
            Some(c) if !c.value.is_empty() => Some(resolve_chown(&parent_view, &c.value, line)?),
            _ => None,
        };
        let chmod = match &a.chmod {
            Some(c) if !c.value.is_empty() => Some(parse_chmod(&c.value, line)?),
            _ => None,
        };
        let target = if a.link { View::empty() } else { parent_view };
        let workdir = st.workdir();
        let store_tmp = e.store.tmp_dir().to_path_buf();
        let extract_fn = move |archive: &Path, dest: &Path| extract_archive(archive, dest, &store_tmp);
        let unpack = is_add && urls.is_empty() && a.unpack != Some(false);
        let spec = CopySpec {
            line,
            sources,
            dest: a.dest.value.clone(),
            workdir,
            owner,
            chmod,
            parents: a.parents,
            exclude: &exclude,
            from_context,
            link_files: !from_context,
            extract: if unpack { Some(&extract_fn) } else { None },
            unprivileged: e.settings.unprivileged,
        };
        self.add_history(st, step, &[], false);
        let r = self.layer_step(st, key, Some(hint), |upper| {
            if let Some(f) = &pinned_urls {
                f.fetch(
                    &self.ctx.settings.registry,
                    self.ctx.settings.runtime("ADD <url>")?,
                )?;
            }
            copy(tree, &target, upper, &spec).map(|_| ())
        });
        drop(url_dir);
        r
    }

    fn run(
        &self,
        st: &mut StageState,
        step: &Step,
        key: Digest,
        hint: Digest,
        id: usize,
    ) -> Result<bool, BuildError> {
        let run_args: Vec<(String, String)> = step
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        self.add_history(st, step, &run_args, false);
        let input = super::run::RunInput {
            step,
            id,
            lower: st.layers.iter().map(|l| l.dir.clone()).collect(),
            user: st
                .config
                .config
                .as_ref()
                .and_then(|c| c.user.clone())
                .filter(|u| !u.is_empty()),
            shell: st.shell(),
            workdir: st.workdir(),
            view: st.view(),
        };
        // A RUN writes its files now: only with SOURCE_DATE_EPOCH clamping their mtimes can a rerun
        // make the same tar, so only then is a hash pass first worth its cost.
        let hint = self.ctx.writer.clamps_mtimes().then_some(hint);
        self.layer_step(st, key, hint, |upper| {
            super::run::run_step(self.ctx, &input, upper)
        })
    }
}

/// `--exclude` patterns: component-wise globs, `**` spanning dirs; a pattern matching a dir excludes it.
pub use crate::glob::match_path as path_match;

/// ADD of a local archive: tar, gzip, zstd (in process) or bzip2/xz (through the system decompressor),
/// applied in-root into `dest`. Ok(false) when the file is not a tar archive.
pub fn extract_archive(archive: &Path, dest: &Path, _tmp: &Path) -> Result<bool, BuildError> {
    let ioe = |source| BuildError::Io {
        path: archive.to_path_buf(),
        source,
    };
    let mut magic = [0u8; 6];
    let n = fs::File::open(archive)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(ioe)?;
    let magic = &magic[..n];
    let external = if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else {
        None
    };
    let mut reader: Box<dyn Read> = match external {
        Some(tool) => {
            let child = std::process::Command::new(tool)
                .arg("-dc")
                .stdin(fs::File::open(archive).map_err(ioe)?)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(ioe)?;
            Box::new(
                child
                    .stdout
                    .ok_or_else(|| ioe(std::io::Error::other("no stdout")))?,
            )
        }
        None => Box::new(
            lamina_store::layer::read::decompress(std::io::BufReader::new(
                fs::File::open(archive).map_err(ioe)?,
            ))
            .map_err(ioe)?,
        ),
    };
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < 512 {
        let k = reader.read(&mut head[got..]).map_err(ioe)?;
        if k == 0 {
            break;
        }
        got += k;
    }
    if got < 512 || &head[257..262] != b"ustar" {
        return Ok(false);
    }
    let chained = std::io::Cursor::new(head).chain(reader);
    let opts = lamina_store::layer::apply::ApplyOptions::default();
    lamina_store::layer::apply::apply_layer(chained, dest, &opts).map_err(|e| BuildError::Extract {
        path: archive.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_patterns() {
        assert!(path_match("*.md", "README.md"));
        assert!(!path_match("*.md", "docs/a.md"));
        assert!(path_match("**/*.md", "docs/a.md"));
        assert!(path_match("docs", "docs"));
    }
}
