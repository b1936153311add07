//! `copy SRC DEST` between transports, named like skopeo's: `docker://REF` (or a bare reference),
//! `oci:DIR[:TAG]`. Registry→registry copies stream each blob from the source straight into the
//! destination (nothing touches the disk); the destination verifies every digest. Blobs the destination
//! has are skipped, blobs in a sibling repository of the same registry are mounted.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use futures_util::StreamExt;

use super::client::{RegistryClient, RegistryOptions};
use super::manifest::{Descriptor, Manifest, Platform};
use super::progress::{Outcome, Progress};
use super::pull::{self, PullOptions};
use super::{RegistryError, layout, push};
use crate::blob::BlobStore;
use crate::digest::Digest;
use crate::reference::Reference;

/// One end of a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Registry(Reference),
    /// An OCI image layout directory and the `org.opencontainers.image.ref.name` to read or write.
    OciDir {
        path: PathBuf,
        tag: Option<String>,
    },
    /// A tar of an OCI layout (`oci-archive:PATH[:NAME]`) or `docker save` output
    /// (`docker-archive:PATH[:REF]`).
    Archive {
        path: PathBuf,
        name: Option<String>,
        format: ArchiveFormat,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    Oci,
    Docker,
}

/// Why a location string is not usable.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "{input:?}: unknown transport {transport:?} (supported: docker://, oci:, oci-archive:, docker-archive:)"
    )]
    UnknownTransport { input: String, transport: String },
    #[error("{input:?}: missing path")]
    MissingPath { input: String },
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
}

impl FromStr for Location {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(r) = s.strip_prefix("docker://") {
            return Ok(Location::Registry(r.parse()?));
        }
        for (prefix, format) in [
            ("oci-archive:", ArchiveFormat::Oci),
            ("docker-archive:", ArchiveFormat::Docker),
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                // PATH[:NAME]; a docker-archive name is a whole reference (with its own ':').
                let (path, name) = match rest.split_once(':') {
                    Some((p, n)) if !p.is_empty() => (p, Some(n.to_owned())),
                    _ => (rest, None),
                };
                if path.is_empty() {
                    return Err(LocationError::MissingPath { input: s.to_owned() });
                }
                return Ok(Location::Archive {
                    path: PathBuf::from(path),
                    name: name.filter(|n| !n.is_empty()),
                    format,
                });
            }
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            // The tag follows the last ':' unless that ':' is part of the path.
            let (path, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t.to_owned())),
                _ => (rest, None),
            };
            if path.is_empty() {
                return Err(LocationError::MissingPath { input: s.to_owned() });
            }
            return Ok(Location::OciDir {
                path: PathBuf::from(path),
                tag: tag.filter(|t| !t.is_empty()),
            });
        }
        if let Some((transport, _)) = s.split_once(':')
            && !transport.contains('/')
            && !transport.contains('.')
            && transport.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && s.contains(":/")
        {
            return Err(LocationError::UnknownTransport {
                input: s.to_owned(),
                transport: transport.to_owned(),
            });
        }
        Ok(Location::Registry(s.parse()?))
    }
}

#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Copy every platform of an index (and the index itself) instead of one image.
    pub all: bool,
    pub platform: Option<Platform>,
    /// Leave the image's referrers and cosign signature tags behind (registry → registry copies).
    pub skip_referrers: bool,
}

/// Copies an image; returns the digest of what was written at the destination.
pub async fn copy(
    src: &Location,
    dst: &Location,
    registry: &RegistryOptions,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Digest, RegistryError> {
    if let Location::Archive { path, name, .. } = src {
        let (_tmp, store, top) = load_archive(path, name.as_deref())?;
        let dir = Location::OciDir {
            path: store.root().to_owned(),
            tag: Some(top),
        };
        return Box::pin(copy(&dir, dst, registry, opts, progress)).await;
    }
    if let Location::Archive { path, name, format } = dst {
        let tmp = tempfile::tempdir().map_err(RegistryError::io("create temp dir for", path))?;
        let store = lamina_store::layout::Store::open(tmp.path()).map_err(|source| RegistryError::Store {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let staged = Location::OciDir {
            path: tmp.path().to_owned(),
            tag: Some("staged".into()),
        };
        let digest = Box::pin(copy(src, &staged, registry, opts, progress)).await?;
        save_archive(&store, &digest, path, name.as_deref(), *format, src)?;
        return Ok(digest);
    }
    match (src, dst) {
        (Location::Archive { .. }, _) | (_, Location::Archive { .. }) => unreachable!("handled above"),
        (Location::Registry(s), Location::Registry(d)) => {
            let sc = RegistryClient::new(s.registry(), registry)?;
            let dc = if s.registry() == d.registry() {
                sc.clone()
            } else {
                RegistryClient::new(d.registry(), registry)?
            };
            copy_remote(&sc, s, &dc, d, opts, progress).await
        }
        (Location::Registry(s), Location::OciDir { path, tag }) => {
            let sc = RegistryClient::new(s.registry(), registry)?;
            let blobs = open_layout(path)?;
            let popts = PullOptions {
                platform: opts.platform.clone(),
                include_foreign: false,
            };
            let pulled = pull::pull(&sc, s, &blobs, None, &popts, progress, &|_, _| {}).await?;
            let name = tag.clone().or_else(|| s.tag().map(str::to_owned));
            layout::set_ref(path, &pulled.manifest, name.as_deref())?;
            Ok(pulled.manifest.digest)
        }
        (Location::OciDir { path, tag }, Location::Registry(d)) => {
            let dc = RegistryClient::new(d.registry(), registry)?;
            let blobs = open_layout(path)?;
            let top = layout::find_ref(path, tag.as_deref())?;
            push::push(&dc, d, &blobs, &top, None, progress).await
        }
        (Location::OciDir { path: sp, tag: st }, Location::OciDir { path: dp, tag: dt }) => {
            let sb = open_layout(sp)?;
            let db = open_layout(dp)?;
            let top = layout::find_ref(sp, st.as_deref())?;
            copy_local_tree(&sb, &db, &top)?;
            layout::set_ref(dp, &top, dt.as_deref().or(st.as_deref()))?;
            Ok(top.digest)
        }
    }
}

/// Loads an archive into a temporary store; returns it and the ref name of the chosen image there.
fn load_archive(
    path: &Path,
    name: Option<&str>,
) -> Result<(tempfile::TempDir, lamina_store::layout::Store, String), RegistryError> {
    let tmp = tempfile::tempdir().map_err(RegistryError::io("create temp dir for", path))?;
    let serr = |source| RegistryError::Store {
        path: path.to_owned(),
        source: Box::new(source),
    };
    let store = lamina_store::layout::Store::open(tmp.path()).map_err(serr)?;
    let report = crate::archive::load::load(&store, path, &Default::default()).map_err(|source| {
        RegistryError::Archive {
            path: path.to_owned(),
            source: Box::new(source),
        }
    })?;
    let wanted = name.map(|n| {
        Reference::parse(n)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| n.to_owned())
    });
    let matching: Vec<_> = report
        .images
        .iter()
        .filter(|i| match &wanted {
            None => true,
            Some(w) => i.tags.iter().any(|t| &t.to_string() == w || t.tag() == name),
        })
        .collect();
    let [image] = matching.as_slice() else {
        return Err(RegistryError::ArchiveImage {
            path: path.to_owned(),
            wanted,
            found: matching.len(),
        });
    };
    let img = store.load_image(&image.manifest).map_err(serr)?;
    let mut desc = Descriptor::new(
        &img.manifest_media_type,
        img.manifest_digest.clone(),
        img.manifest_size,
    );
    desc.platform = None;
    layout::set_ref(tmp.path(), &desc, Some("lamina-copy-source"))?;
    Ok((tmp, store, "lamina-copy-source".into()))
}

fn save_archive(
    store: &lamina_store::layout::Store,
    digest: &Digest,
    path: &Path,
    name: Option<&str>,
    format: ArchiveFormat,
    src: &Location,
) -> Result<(), RegistryError> {
    let serr = |source| RegistryError::Store {
        path: path.to_owned(),
        source: Box::new(source),
    };
    let image = store.load_image(digest).map_err(serr)?;
    let base = match src {
        Location::Registry(r) => Some(r.clone()),
        _ => None,
    };
    let reference = match (name, format) {
        // skopeo's oci-archive:PATH:NAME names the image by its ref.name, which save() writes as the tag.
        (Some(n), ArchiveFormat::Oci) => base
            .as_ref()
            .and_then(|b| b.with_tag(n).ok())
            .or_else(|| Reference::parse(n).ok()),
        (Some(n), ArchiveFormat::Docker) => Reference::parse(n).ok(),
        (None, _) => base,
    };
    let fmt = match format {
        ArchiveFormat::Oci => crate::archive::save::SaveFormat::Oci,
        ArchiveFormat::Docker => crate::archive::save::SaveFormat::Docker,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(RegistryError::io("create temp file in", dir))?;
    let out = std::io::BufWriter::new(tmp);
    let items = [crate::archive::save::SaveItem { image, reference }];
    let out =
        crate::archive::save::save(store, &items, fmt, out).map_err(|source| RegistryError::Archive {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
    let tmp = out.into_inner().map_err(|e| RegistryError::Io {
        op: "write",
        path: path.to_owned(),
        source: e.into_error(),
    })?;
    tmp.persist(path).map_err(|e| RegistryError::Io {
        op: "rename into place",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

fn open_layout(path: &Path) -> Result<BlobStore, RegistryError> {
    BlobStore::open(path).map_err(|source| RegistryError::Io {
        op: "open OCI layout",
        path: path.to_owned(),
        source: std::io::Error::other(source),
    })
}

fn copy_local_tree(src: &BlobStore, dst: &BlobStore, desc: &Descriptor) -> Result<(), RegistryError> {
    let blob = |d: &Digest, size: u64| -> Result<(), RegistryError> {
        if dst.contains(d) {
            return Ok(());
        }
        let berr = |source| RegistryError::Blob {
            digest: d.clone(),
            source,
        };
        let f = src.open_blob(d).map_err(berr)?;
        dst.put_verified(std::io::BufReader::new(f), d, Some(size))
            .map_err(berr)?;
        Ok(())
    };
    let bytes = src
        .read_small(&desc.digest, super::client::MAX_MANIFEST_SIZE)
        .map_err(|source| RegistryError::Blob {
            digest: desc.digest.clone(),
            source,
        })?;
    match Manifest::parse(&bytes, Some(&desc.media_type), &desc.digest.to_string())? {
        Manifest::Index { manifests, .. } => {
            for m in &manifests {
                copy_local_tree(src, dst, m)?;
            }
        }
        m @ Manifest::Image { .. } => {
            for d in m.blobs() {
                blob(&d.digest, d.size)?;
            }
        }
    }
    blob(&desc.digest, desc.size)
}

/// Registry → registry. The image's referrers (OCI 1.1 artifacts naming it as subject) and its
/// cosign signature, attestation and SBOM tags come along unless `opts.skip_referrers`.
pub async fn copy_remote(
    src: &RegistryClient,
    src_ref: &Reference,
    dst: &RegistryClient,
    dst_ref: &Reference,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Digest, RegistryError> {
    let repo = src_ref.repository();
    let top_ref = src_ref
        .digest()
        .map(|d| d.to_string())
        .or(src_ref.tag().map(str::to_owned))
        .unwrap_or_else(|| "latest".into());
    let (bytes, ctype, digest) = src.get_manifest(repo, &top_ref, src_ref.digest()).await?;
    let parsed = Manifest::parse(&bytes, Some(&ctype), &src_ref.to_string())?;
    let dst_tag = dst_ref.tag().map(str::to_owned);
    let ends = Ends {
        src,
        src_ref,
        dst,
        dst_ref,
        progress,
    };
    let (written, children) = match &parsed {
        Manifest::Index { manifests, .. } if !opts.all => {
            let want = opts.platform.clone().unwrap_or_else(Platform::host);
            let pick = super::manifest::select_platform(&want, manifests, &src_ref.to_string())?;
            let put = ends.copy_image(&pick.digest, dst_tag.as_deref()).await?;
            (put.digest, Vec::new())
        }
        Manifest::Index { manifests, .. } => {
            for m in manifests {
                ends.copy_image(&m.digest, None).await?;
            }
            let target = dst_tag.unwrap_or_else(|| digest.to_string());
            let d = dst
                .put_manifest(dst_ref.repository(), &target, &bytes, parsed.media_type())
                .await?;
            (d, manifests.iter().map(|m| m.digest.clone()).collect())
        }
        Manifest::Image { .. } => {
            copy_blobs(src, src_ref, dst, dst_ref, &parsed, progress).await?;
            let target = dst_tag.unwrap_or_else(|| digest.to_string());
            let d = dst
                .put_manifest(dst_ref.repository(), &target, &bytes, parsed.media_type())
                .await?;
            (d, Vec::new())
        }
    };
    if !opts.skip_referrers {
        for subject in std::iter::once(&written).chain(&children) {
            ends.copy_referrers(subject).await?;
        }
    }
    Ok(written)
}

/// Tags cosign keeps next to an image (`sha256-<hex>.sig`, `.att`, `.sbom`).
const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// Both ends of a registry → registry copy.
struct Ends<'a> {
    src: &'a RegistryClient,
    src_ref: &'a Reference,
    dst: &'a RegistryClient,
    dst_ref: &'a Reference,
    progress: &'a dyn Progress,
}

impl Ends<'_> {
    /// Copies the image manifest `digest` (and its blobs); puts it under `tag`, or its digest.
    async fn copy_image(
        &self,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<super::client::PutManifest, RegistryError> {
        self.copy_manifest(&digest.to_string(), Some(digest), tag).await
    }

    async fn copy_manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
        tag: Option<&str>,
    ) -> Result<super::client::PutManifest, RegistryError> {
        let (bytes, ctype, digest) = self
            .src
            .get_manifest(self.src_ref.repository(), reference, expected)
            .await?;
        let parsed = Manifest::parse(&bytes, Some(&ctype), &self.src_ref.to_string())?;
        if let Manifest::Index { .. } = parsed {
            return Err(RegistryError::UnsupportedMediaType {
                reference: format!("{}@{digest}", self.src_ref.name()),
                media_type: "nested index".into(),
            });
        }
        copy_blobs(
            self.src,
            self.src_ref,
            self.dst,
            self.dst_ref,
            &parsed,
            self.progress,
        )
        .await?;
        let target = tag.map(str::to_owned).unwrap_or_else(|| digest.to_string());
        self.dst
            .put_manifest_reporting(self.dst_ref.repository(), &target, &bytes, parsed.media_type())
            .await
    }

    /// The referrers of `subject` and its cosign tags, from the source to the destination; each
    /// referrer is recorded at the destination the way that registry lists referrers.
    async fn copy_referrers(&self, subject: &Digest) -> Result<(), RegistryError> {
        let listed = self
            .src
            .referrers(self.src_ref.repository(), subject, None)
            .await?;
        for r in &listed.manifests {
            let put = self.copy_image(&r.digest, None).await?;
            self.dst
                .record_referrer(self.dst_ref.repository(), subject, r, put.subject.as_ref())
                .await?;
        }
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{}.{suffix}", super::referrers::schema_tag(subject));
            match self.copy_manifest(&tag, None, Some(&tag)).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

async fn copy_blobs(
    src: &RegistryClient,
    src_ref: &Reference,
    dst: &RegistryClient,
    dst_ref: &Reference,
    parsed: &Manifest,
    progress: &dyn Progress,
) -> Result<(), RegistryError> {
    let (srepo, drepo) = (src_ref.repository(), dst_ref.repository());
    let same_registry = src.registry() == dst.registry();
    let mut results = futures_util::stream::iter(parsed.blobs())
        .map(|d| async move {
            progress.start(&d.digest, d.size, "blob");
            if dst.blob_exists(drepo, &d.digest, true).await? {
                progress.finish(&d.digest, Outcome::Exists);
                return Ok(());
            }
            if same_registry && srepo != drepo && dst.mount_blob(drepo, srepo, &d.digest).await {
                progress.finish(&d.digest, Outcome::Mounted);
                return Ok(());
            }
            let chunked = if d.size > 0 && dst.options().upload.chunked_for(d.size) {
                let from = super::upload::BlobSource::Remote(src, srepo);
                match dst.upload_chunked(drepo, d, from, progress).await {
                    Ok(()) => true,
                    // The source can't serve chunks: one streamed upload instead.
                    Err(RegistryError::RangeIgnored { .. }) => false,
                    Err(e) => return Err(e),
                }
            } else {
                false
            };
            if !chunked {
                dst.upload(drepo, d, progress, || src.blob_stream(srepo, d))
                    .await?;
            }
            progress.finish(&d.digest, Outcome::Pushed);
            Ok::<_, RegistryError>(())
        })
        .buffer_unordered(dst.options().jobs.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            "oci:/tmp/x:v1".parse::<Location>().unwrap(),
            Location::OciDir {
                path: "/tmp/x".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            "oci:dir".parse::<Location>().unwrap(),
            Location::OciDir {
                path: "dir".into(),
                tag: None
            }
        );
        assert!(matches!(
            "docker://localhost:5000/a:b".parse::<Location>().unwrap(),
            Location::Registry(r) if r.registry() == "localhost:5000"
        ));
        assert!(matches!(
            "busybox".parse::<Location>().unwrap(),
            Location::Registry(_)
        ));
        assert_eq!(
            "docker-archive:/x.tar:a/b:1".parse::<Location>().unwrap(),
            Location::Archive {
                path: "/x.tar".into(),
                name: Some("a/b:1".into()),
                format: ArchiveFormat::Docker
            }
        );
        assert_eq!(
            "oci-archive:rel/x.tar".parse::<Location>().unwrap(),
            Location::Archive {
                path: "rel/x.tar".into(),
                name: None,
                format: ArchiveFormat::Oci
            }
        );
        assert_eq!(
            "oci-archive:/x.tar:v2".parse::<Location>().unwrap(),
            Location::Archive {
                path: "/x.tar".into(),
                name: Some("v2".into()),
                format: ArchiveFormat::Oci
            }
        );
        for missing in ["oci-archive:", "docker-archive:", "oci:"] {
            assert!(
                matches!(
                    missing.parse::<Location>(),
                    Err(LocationError::MissingPath { .. })
                ),
                "{missing}"
            );
        }
        assert!(matches!(
            "zip:/x".parse::<Location>(),
            Err(LocationError::UnknownTransport { .. })
        ));
    }
}
