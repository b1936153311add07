//! The registry client's error type.

use std::path::PathBuf;

use crate::blob::BlobError;
use crate::digest::Digest;

/// Errors talking to a registry or moving content between a registry and the store.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{op} {url}")]
    Http {
        op: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: registry answered {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{registry}: extra CA certificates")]
    Trust {
        registry: String,
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("{registry}: authentication required (log in with `lamina login {registry}`)")]
    Unauthorized { registry: String },
    #[error("{registry}: access to {repository} denied")]
    Denied { registry: String, repository: String },
    #[error("{registry}: token server {realm} refused the credentials (HTTP {status})")]
    TokenRefused {
        registry: String,
        realm: String,
        status: u16,
    },
    #[error("{registry}: malformed authentication challenge {challenge:?}")]
    BadChallenge { registry: String, challenge: String },
    #[error("{registry}: the token server answered with a malformed token")]
    BadToken {
        registry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading credentials for {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: docker_credential::CredentialRetrievalError,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {reference} is larger than the {limit}-byte limit{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    ManifestTooLarge {
        reference: String,
        /// What the registry declared, when it did.
        size: Option<u64>,
        limit: u64,
    },
    #[error("{what} of {reference}: expected digest {expected}, got {actual}")]
    DigestMismatch {
        what: &'static str,
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{reference}: manifest is not valid JSON of a known image type")]
    InvalidManifest {
        reference: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{reference}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { reference: String, media_type: String },
    #[error("{reference}: no image for platform {platform} (available: {available})")]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{reference}: is not a valid reference for the registry")]
    BadReference {
        reference: String,
        #[source]
        source: oci_spec::distribution::ParseError,
    },
    #[error("blob {digest}")]
    Blob {
        digest: Digest,
        #[source]
        source: BlobError,
    },
    #[error("{what}: giving up after {attempts} attempts")]
    GaveUp {
        what: String,
        attempts: u32,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "{registry}: authentication required for {repository} and no credentials are configured (log in with `lamina login {registry}`)"
    )]
    NoCredentials { registry: String, repository: String },
    #[error("{path}: invalid {what}")]
    BadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("credential helper docker-credential-{helper} failed to {op} for {registry}: {stderr}")]
    Helper {
        helper: String,
        op: &'static str,
        registry: String,
        stderr: String,
    },
    #[error(
        "{reference}: layer {digest} has media type {media_type}, which is non-distributable; pass --include-foreign to fetch it"
    )]
    ForeignLayer {
        reference: String,
        digest: Digest,
        media_type: String,
    },
    #[error("{setting}: invalid value {value:?} (expected {expected})")]
    BadSetting {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("upload of {digest} to {repository}")]
    Upload {
        digest: Digest,
        repository: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{repository}: the source registry ignores Range requests for {digest}")]
    RangeIgnored { digest: Digest, repository: String },
    #[error("upload of {digest} to {repository}: {problem}")]
    UploadProtocol {
        digest: Digest,
        repository: String,
        problem: String,
    },
    #[error("{0}: the upload was cancelled")]
    Cancelled(String),
    #[error("archive {path}")]
    Archive {
        path: PathBuf,
        #[source]
        source: Box<crate::archive::ArchiveError>,
    },
    #[error("updating the index of OCI layout {path}")]
    Layout {
        path: PathBuf,
        #[source]
        source: Box<lamina_store::layout::StoreError>,
    },
    #[error("temporary store for {path}")]
    Store {
        path: PathBuf,
        #[source]
        source: Box<lamina_store::layout::StoreError>,
    },
    #[error(transparent)]
    Body(#[from] super::bounded::BodyError),
    #[error("{op} {url}: redirect refused")]
    Redirect {
        op: &'static str,
        url: String,
        #[source]
        source: super::bounded::RedirectError,
    },
    #[error(
        "blob {digest} from {url}: the registry sent more than the {limit} bytes its descriptor declares"
    )]
    BlobTooLong { digest: Digest, url: String, limit: u64 },
    #[error("blob {digest}: reading from {url}")]
    BlobRead {
        digest: Digest,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tags of {repository}: more than {limit} pages")]
    TooManyTagPages { repository: String, limit: usize },
    #[error("tags of {repository}: the listing is larger than the {limit}-byte limit")]
    TagListTooLarge { repository: String, limit: u64 },
    #[error(
        "tags of {repository}: pagination does not advance (a page ending at {last:?} follows one ending at {previous:?})"
    )]
    PaginationStalled {
        repository: String,
        previous: String,
        last: String,
    },
    #[error("referrers of {subject}: more than {limit} pages")]
    TooManyReferrerPages { subject: String, limit: usize },
    #[error("referrers of {subject}: pagination does not advance ({url} was already read)")]
    ReferrersStalled { subject: String, url: String },
    #[error("referrers of {subject}: malformed index from {url}")]
    BadReferrers {
        subject: String,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("referrers of {subject}: the tag {tag} holds {media_type}, not an index")]
    ReferrersTagNotIndex {
        subject: String,
        tag: String,
        media_type: String,
    },
    #[error("tags of {repository}: malformed tag list from {url}")]
    BadTagList {
        repository: String,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{reference}: config {digest} is {size} bytes, larger than the {limit}-byte limit")]
    ConfigTooLarge {
        reference: String,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("{reference}: blob {digest} is {size} bytes, larger than the {limit}-byte limit for it")]
    SmallBlobTooLarge {
        reference: String,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("{path}: {found} images in the archive match {wanted:?}")]
    ArchiveImage {
        path: PathBuf,
        wanted: Option<String>,
        found: usize,
    },
}

impl RegistryError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RegistryError::Io { op, path, source }
    }

    /// A reqwest failure of `op` on `url`; a refused redirect keeps its typed reason.
    pub(crate) fn http(op: &'static str, url: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let url = url.into();
        move |source| {
            let mut cause = std::error::Error::source(&source);
            let mut redirect = None;
            while let Some(c) = cause {
                if let Some(r) = c.downcast_ref::<super::bounded::RedirectError>() {
                    redirect = Some(r.clone());
                    break;
                }
                cause = c.source();
            }
            match redirect {
                Some(source) => RegistryError::Redirect { op, url, source },
                None => RegistryError::Http { op, url, source },
            }
        }
    }

    /// Whether trying again may help: transport failures, 5xx, 429, truncated or corrupted transfers.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Http { source, .. } => !source.is_builder() && !source.is_redirect(),
            RegistryError::Body(super::bounded::BodyError::Read { source, .. }) => !source.is_builder(),
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            RegistryError::DigestMismatch { .. } | RegistryError::BlobRead { .. } => true,
            RegistryError::Blob { source, .. } => matches!(
                source,
                BlobError::DigestMismatch { .. } | BlobError::SizeMismatch { .. }
            ),
            _ => false,
        }
    }

    /// The registry answered 404: no such manifest, tag, blob or endpoint.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Status { status: 404, .. })
    }

    /// A 401 on a request that carried a token: the token may have expired.
    pub(crate) fn is_unauthorized(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => *status == 401,
            _ => false,
        }
    }
}
