//! The build engine: executes a Dockerfile's stage graph into images in the store.
//!
//! - [`cache`]: step cache keys and the local cache index.
//! - [`remote_cache`]: `--cache-from`/`--cache-to` (registry or local directory).
//! - [`context`]: the build context, source selection, content digests with a persistent stat memo.
//! - [`view`]: read-only merged view over snapshot dirs (whiteouts honoured).
//! - [`copy`]: the COPY/ADD executor writing into a new snapshot dir.
//! - [`perms`]: `--chown`/`USER` resolution from the target's passwd/group, `--chmod`.

pub mod attest;
pub mod beneath;
pub mod bind_source;
pub mod build;
pub mod cache;
pub mod context;
pub mod copy;
pub mod ctx;
pub mod exec;
pub mod fetch;
pub mod layers;
pub mod meta;
pub mod node_key;
pub mod output;
pub mod perms;
pub mod plan;
pub mod platforms;
pub mod progress;
pub mod remote_cache;
pub mod run;
pub mod run_mounts;
pub mod solve;
pub mod step;
pub mod view;

pub use build::{
    BuildOutcome, BuildRequest, SecretSource, build, build_plan, build_plan_with, build_with,
    external_images, tag_image,
};
pub use plan::Plan;

use std::path::PathBuf;

/// Everything a build can fail on; variants name the Dockerfile line or the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("reading build context {path}")]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exporting build cache to {target}")]
    CacheExport {
        target: String,
        #[source]
        source: Box<lamina_registry::RegistryError>,
    },
    #[error("exporting build cache to {path}")]
    CacheDest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cache record for step key {key} (was it written?)")]
    CacheRecordMissing { key: lamina_store::Digest },
    #[error("build cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("COPY/ADD source {pattern:?} not found in the build context (or excluded by .dockerignore)")]
    SourceNotFound { pattern: String },
    #[error("Dockerfile:{line}")]
    AtLine {
        line: usize,
        #[source]
        source: Box<BuildError>,
    },
    #[error(
        "Dockerfile:{line}: when using COPY/ADD with more than one source file, the destination {dest:?} must be a directory and end with a /"
    )]
    CopyDestNotDir { line: usize, dest: String },
    #[error("Dockerfile:{line}: unknown user {name:?} (not in the image's /etc/passwd)")]
    UnknownUser { line: usize, name: String },
    #[error("Dockerfile:{line}: unknown group {name:?} (not in the image's /etc/group)")]
    UnknownGroup { line: usize, name: String },
    #[error("Dockerfile:{line}: invalid --chmod {value:?} (octal like 755 or symbolic like u+x,go-w)")]
    BadChmod { line: usize, value: String },
    #[error(
        "Dockerfile:{line}: RUN --security=insecure needs a privileged sandbox (all capabilities, no seccomp), \
         which lamina's runner does not provide"
    )]
    Privileged { line: usize },
    #[error("Dockerfile:{line}: invalid {what} {value:?}")]
    BadValue {
        line: usize,
        what: &'static str,
        value: String,
    },
    #[error(".dockerignore")]
    Ignore(#[source] crate::dockerfile::dockerignore::IgnoreError),
    /// The front end's error, rendered with its source snippet.
    #[error("{}", .0.render())]
    Parse(Box<crate::dockerfile::ParseError>),
    #[error("invalid platform {platform:?}: expected os/arch[/variant], e.g. linux/arm64")]
    Platform { platform: String },
    #[error("Dockerfile:{line}: RUN in a stage for {platform} needs emulation (the host is {host})")]
    Emulation {
        line: usize,
        platform: String,
        host: String,
        #[source]
        source: exec::binfmt::EmulatorError,
    },
    #[error("base image {name:?} in the store is for {has}, not {want} (pull it for that platform)")]
    BaseImagePlatform { name: String, has: String, want: String },
    #[error("base image {name:?}")]
    BaseImage {
        name: String,
        #[source]
        source: Box<lamina_store::StoreError>,
    },
    #[error("SBOM of image {digest}")]
    Sbom {
        digest: lamina_store::Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what} needs an async runtime, and the build request has none (BuildRequest::runtime)")]
    NoRuntime { what: &'static str },
    #[error("store")]
    Store {
        #[source]
        source: Box<lamina_store::StoreError>,
    },
    #[error("snapshots")]
    Snapshot {
        #[source]
        source: Box<lamina_store::layer::LayerError>,
    },
    #[error("blob {digest}")]
    Blob {
        digest: lamina_store::Digest,
        #[source]
        source: Box<lamina_store::blob::BlobError>,
    },
    /// Shared: every stage using the layer waits for the one write.
    #[error("writing layer from {dir}")]
    LayerWrite {
        dir: PathBuf,
        #[source]
        source: std::sync::Arc<lamina_store::layer::LayerError>,
    },
    #[error("extracting archive {path}")]
    Extract {
        path: PathBuf,
        #[source]
        source: Box<lamina_store::layer::LayerError>,
    },
    #[error("Dockerfile:{line}: {what} is not supported yet")]
    Unsupported { line: usize, what: String },
    #[error("Dockerfile:{line}: secret {id:?} is required but was not given (--secret id={id},src=FILE)")]
    MissingSecret { line: usize, id: String },
    #[error("secret {id:?}: reading {path}")]
    SecretFile {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Dockerfile:{line}: starting the RUN container")]
    Runner {
        line: usize,
        #[source]
        source: Box<exec::ExecError>,
    },
    #[error("Dockerfile:{line}: RUN {command:?} failed")]
    RunFailed {
        line: usize,
        command: String,
        #[source]
        exit: RunExit,
    },
    /// An ONBUILD trigger of the stage's base image failed (to parse, expand or run); `line` is the FROM's.
    #[error("Dockerfile:{line}: ONBUILD trigger `{trigger}` of base image {image}")]
    Trigger {
        line: usize,
        trigger: String,
        image: String,
        #[source]
        source: Box<BuildError>,
    },
    /// A trigger BuildKit refuses (`ONBUILD ONBUILD`, `ONBUILD FROM`, `ONBUILD MAINTAINER`).
    #[error(
        "Dockerfile:{line}: base image {image} has ONBUILD trigger `{trigger}`: {keyword} is not allowed as a trigger"
    )]
    TriggerNotAllowed {
        line: usize,
        trigger: String,
        image: String,
        keyword: &'static str,
    },
    /// A RUN that needs an entitlement (BuildKit's `network.host`, `security.insecure`) not allowed.
    #[error("{file}:{line}: RUN --{flag} needs the {entitlement} entitlement: pass --allow {entitlement}")]
    Entitlement {
        file: String,
        line: usize,
        flag: &'static str,
        entitlement: &'static str,
    },
    #[error("stage {stage} needed by this one failed")]
    DependencyFailed { stage: usize },
    #[error(
        "Dockerfile:{line}: ADD --checksum needs exactly one URL source (one checksum can't pin several)"
    )]
    ChecksumManyUrls { line: usize },
    #[error("Dockerfile:{line}: ADD {url}")]
    Fetch {
        line: usize,
        url: String,
        #[source]
        source: lamina_registry::download::DownloadError,
    },
    #[error("output {dest}")]
    Output {
        dest: PathBuf,
        #[source]
        source: Box<output::OutputError>,
    },
    /// A path of the context, a stage or an image that doesn't resolve inside its tree (a link loop).
    #[error(transparent)]
    Resolve(#[from] view::ResolveError),
    /// A symlink in the new layer (put there by an earlier source of the same step) where lamina would
    /// have to write through it; writes never follow links out of the layer.
    #[error("{path}: a symbolic link in the new layer is in the way; lamina does not write through it")]
    WriteThroughLink { path: PathBuf },
}

/// How a RUN command ended when it failed, with the last lines it printed.
#[derive(Debug, thiserror::Error)]
#[error("exited with code {code}\n--- last output lines ---\n{tail}")]
pub struct RunExit {
    pub code: i32,
    pub tail: String,
}

impl BuildError {
    /// Attaches a Dockerfile line to an error that has none.
    pub fn at_line(self, line: usize) -> BuildError {
        match self {
            e @ (BuildError::AtLine { .. }
            | BuildError::CopyDestNotDir { .. }
            | BuildError::UnknownUser { .. }
            | BuildError::UnknownGroup { .. }
            | BuildError::BadChmod { .. }
            | BuildError::BadValue { .. }
            | BuildError::Unsupported { .. }
            | BuildError::Privileged { .. }
            | BuildError::MissingSecret { .. }
            | BuildError::Runner { .. }
            | BuildError::RunFailed { .. }
            | BuildError::Parse(_)
            | BuildError::DependencyFailed { .. }
            | BuildError::Fetch { .. }
            | BuildError::Emulation { .. }
            | BuildError::ChecksumManyUrls { .. }
            | BuildError::Trigger { .. }
            | BuildError::TriggerNotAllowed { .. }
            | BuildError::Entitlement { .. }) => e,
            e => BuildError::AtLine {
                line,
                source: Box::new(e),
            },
        }
    }
}

impl BuildError {
    /// Whether the build's input is at fault (the Dockerfile, the context, a missing secret or base,
    /// a RUN command that failed) rather than lamina or the machine (store I/O, the sandbox).
    pub fn is_user_error(&self) -> bool {
        match self {
            BuildError::AtLine { source, .. } => source.is_user_error(),
            BuildError::Runner { source, .. } => source.is_user_error(),
            BuildError::Trigger { source, .. } => source.is_user_error(),
            BuildError::TriggerNotAllowed { .. } | BuildError::Entitlement { .. } => true,
            BuildError::Context { .. }
            | BuildError::SourceNotFound { .. }
            | BuildError::CopyDestNotDir { .. }
            | BuildError::UnknownUser { .. }
            | BuildError::UnknownGroup { .. }
            | BuildError::BadChmod { .. }
            | BuildError::BadValue { .. }
            | BuildError::Parse(_)
            | BuildError::Ignore(_)
            | BuildError::Platform { .. }
            | BuildError::Emulation { .. }
            | BuildError::BaseImagePlatform { .. }
            | BuildError::BaseImage { .. }
            | BuildError::Unsupported { .. }
            | BuildError::Privileged { .. }
            | BuildError::MissingSecret { .. }
            | BuildError::SecretFile { .. }
            | BuildError::RunFailed { .. }
            | BuildError::ChecksumManyUrls { .. }
            | BuildError::Fetch { .. }
            | BuildError::Resolve(_)
            | BuildError::Extract { .. }
            // The destination or registry the user named for `--cache-to`.
            | BuildError::CacheExport { .. }
            | BuildError::CacheDest { .. }
            | BuildError::WriteThroughLink { .. } => true,
            BuildError::CacheRecordMissing { .. }
            | BuildError::Cache { .. }
            | BuildError::Io { .. }
            | BuildError::Store { .. }
            | BuildError::NoRuntime { .. }
            | BuildError::Sbom { .. }
            | BuildError::Snapshot { .. }
            | BuildError::Blob { .. }
            | BuildError::LayerWrite { .. }
            | BuildError::DependencyFailed { .. }
            | BuildError::Output { .. } => false,
        }
    }

    /// The error and its causes on one line.
    pub fn to_string_chain(&self) -> String {
        layers::error_chain(self)
    }
}
