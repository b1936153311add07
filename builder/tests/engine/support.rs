//! A temp store and context, builds through the public entry point with the fake executor, and the
//! built image's files read back from its layer blobs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use lamina_builder::engine;
use lamina_builder::engine::exec::fake::FakeExecutor;
use lamina_builder::engine::layers::LayerWriter;
use lamina_builder::engine::progress::{Event, Progress};
use lamina_builder::engine::{BuildError, BuildOutcome, BuildRequest, build_with};
use lamina_store::{Reference, Store};

/// Records the events of a build.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Progress for Recorder {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub ctx: PathBuf,
}

/// What a build returned, with its events and its flattened rootfs.
pub struct Built {
    pub outcome: BuildOutcome,
    pub events: Vec<Event>,
    pub rootfs: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        Env { dir, store, ctx }
    }

    /// Writes a context file (parents made).
    pub fn file(&self, rel: &str, content: &str) -> &Env {
        let p = self.ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        self
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        fs::set_permissions(self.ctx.join(rel), fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn req(&self, dockerfile: &str) -> BuildRequest {
        let mut r = BuildRequest::new(dockerfile, &self.ctx);
        r.source_date_epoch = Some(1_700_000_000);
        r.unprivileged = true;
        r
    }

    pub fn run(&self, req: &BuildRequest, exec: &FakeExecutor) -> Result<Built, BuildError> {
        let rec = Recorder::default();
        let outcome = build_with(&self.store, req, &rec, exec)?;
        let rootfs = tempfile::tempdir_in(self.dir.path()).unwrap();
        let w = LayerWriter::new(&self.store, req.compression, req.source_date_epoch).unwrap();
        w.flatten(&outcome.image.layers, rootfs.path()).unwrap();
        Ok(Built {
            outcome,
            events: rec.0.into_inner().unwrap(),
            rootfs,
        })
    }

    /// Builds `dockerfile` with a fresh fake executor; panics on failure.
    pub fn build(&self, dockerfile: &str) -> Built {
        self.run(&self.req(dockerfile), &FakeExecutor::new())
            .unwrap_or_else(|e| panic!("build failed: {}", e.to_string_chain()))
    }

    pub fn build_err(&self, dockerfile: &str) -> BuildError {
        match self.run(&self.req(dockerfile), &FakeExecutor::new()) {
            Ok(_) => panic!("build succeeded"),
            Err(e) => e,
        }
    }

    /// Builds `dockerfile` and tags the image `name` (a base for later builds).
    pub fn base(&self, name: &str, dockerfile: &str) -> Built {
        let b = self.build(dockerfile);
        engine::tag_image(&self.store, &b.outcome.image, &[Reference::parse(name).unwrap()]).unwrap();
        b
    }
}

impl Built {
    pub fn path(&self, p: &str) -> PathBuf {
        self.rootfs.path().join(p.trim_start_matches('/'))
    }

    pub fn read(&self, p: &str) -> Option<String> {
        fs::read_to_string(self.path(p)).ok()
    }

    pub fn exists(&self, p: &str) -> bool {
        fs::symlink_metadata(self.path(p)).is_ok()
    }

    pub fn mode(&self, p: &str) -> u32 {
        fs::symlink_metadata(self.path(p)).unwrap().permissions().mode() & 0o7777
    }

    pub fn config(&self) -> &lamina_store::config::ContainerConfig {
        self.outcome.image.config.config.as_ref().unwrap()
    }

    pub fn env(&self, k: &str) -> Option<String> {
        self.config()
            .env
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{k}=")).map(str::to_string))
    }

    /// RUN output lines.
    pub fn logs(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Log { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn layers(&self) -> usize {
        self.outcome.image.layers.len()
    }

    /// Names under a dir of the rootfs, sorted.
    pub fn ls(&self, p: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.path(p))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// The Dockerfile line an error names (`Dockerfile:N` in its chain).
pub fn error_line(e: &BuildError) -> Option<usize> {
    let s = e.to_string_chain();
    let i = s.find("Dockerfile:")? + "Dockerfile:".len();
    s[i..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}
