//! OCI 1.1 referrers: artifacts (SBOMs, provenance, signatures) whose manifest names another manifest as
//! its `subject`.
//!
//! A registry with the referrers API lists them at `GET /v2/<repo>/referrers/<digest>` and says so by
//! answering a manifest PUT that has a subject with `OCI-Subject`. Other registries (Debian's
//! docker-registry 2.8 among them) get the referrers tag schema of the distribution spec: the pusher
//! keeps an index of the referrers under the tag `<alg>-<hex>` of the subject, and readers fall back to
//! that tag when the API answers 404. Both listings are bounded: each page is a manifest-sized read,
//! at most [`MAX_REFERRER_PAGES`] pages, and a `Link` that leads back to a page already read is refused.

use std::collections::{BTreeMap, HashSet};

use reqwest::header::ACCEPT;

use super::bounded;
use super::client::{RegistryClient, status_error};
use super::manifest::{Descriptor, Manifest, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use super::{RegistryError, auth};
use crate::digest::Digest;
use crate::image::{Index, canonical_json};

/// Pages of one referrers listing, at most (each is at most a manifest's size).
pub const MAX_REFERRER_PAGES: usize = 64;

/// Where a listing came from, or how a new referrer was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Api,
    /// The `<alg>-<hex>` tag of the referrers tag schema.
    TagSchema,
}

impl ReferrersSource {
    pub fn describe(self) -> &'static str {
        match self {
            ReferrersSource::Api => "the registry's referrers API",
            ReferrersSource::TagSchema => "the referrers tag schema",
        }
    }
}

/// The referrers of one subject.
#[derive(Clone, Debug)]
pub struct Referrers {
    pub source: ReferrersSource,
    pub manifests: Vec<Descriptor>,
}

/// An artifact to attach to a subject; its layers are already in the repository.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub subject: Descriptor,
    pub artifact_type: String,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// The referrers tag schema's tag for `subject` (`sha256-<hex>`).
pub fn schema_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm().as_str(), subject.hex())
}

/// The bytes of the empty JSON object OCI artifacts use as their config.
const EMPTY_CONFIG: &[u8] = b"{}";

impl RegistryClient {
    /// The referrers of `subject` in `repo`, optionally only those of `artifact_type`: from the API
    /// when the registry has it, else from the referrers tag (none when neither exists).
    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        let (source, mut manifests) = match self.referrers_api(repo, subject, artifact_type).await? {
            Some(list) => (ReferrersSource::Api, list),
            None => (
                ReferrersSource::TagSchema,
                self.referrers_tag(repo, subject).await?.manifests,
            ),
        };
        if let Some(want) = artifact_type {
            manifests.retain(|m| m.artifact_type.as_deref() == Some(want));
        }
        Ok(Referrers { source, manifests })
    }

    /// `None` when the registry has no referrers API (404).
    async fn referrers_api(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let path = format!("/v2/{repo}/referrers/{subject}");
        let mut first = format!("{}{path}", self.inner.base);
        if let Some(t) = artifact_type {
            first.push('?');
            first.push_str(&super::tags::url_query(&[("artifactType", t)]));
        }
        let name = format!("{}/{repo}@{subject}", self.inner.registry);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if !seen.insert(url.clone()) {
                return Err(RegistryError::ReferrersStalled { subject: name, url });
            }
            if seen.len() > MAX_REFERRER_PAGES {
                return Err(RegistryError::TooManyReferrerPages {
                    subject: name,
                    limit: MAX_REFERRER_PAGES,
                });
            }
            let mut r = self.retrier(format!("list referrers of {name}"));
            let page = loop {
                match self.referrers_page(repo, &url).await {
                    Ok(v) => break v,
                    Err(e) => r.check(e).await?,
                }
            };
            let Some((body, link)) = page else {
                // Only the first page may be missing: that is how a registry says it has no API.
                return if out.is_empty() && seen.len() == 1 {
                    Ok(None)
                } else {
                    Err(RegistryError::Status {
                        url,
                        status: 404,
                        message: "a referrers page the registry linked to is missing".into(),
                    })
                };
            };
            let index: Index =
                serde_json::from_slice(&body).map_err(|source| RegistryError::BadReferrers {
                    subject: name.clone(),
                    url: url.clone(),
                    source,
                })?;
            out.extend(index.manifests);
            // Credentials go with the request, so a link is followed only on this registry and path.
            let here = reqwest::Url::parse(&url).ok();
            next = link
                .and_then(|l| here.as_ref()?.join(&l).ok())
                .filter(|u| here.as_ref().is_some_and(|h| u.origin() == h.origin()) && u.path() == path)
                .map(String::from);
        }
        Ok(Some(out))
    }

    /// One page: its body and the `Link` to the next, or `None` on 404.
    async fn referrers_page(
        &self,
        repo: &str,
        url: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, RegistryError> {
        let req = self.inner.http.get(url).header(ACCEPT, OCI_INDEX);
        let req = self
            .inner
            .auth
            .apply(req, repo, &auth::scopes(repo, false, None))
            .await?;
        let res = req.send().await.map_err(RegistryError::http("GET", url))?;
        let status = res.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            let message = bounded::read_prefix(res).await;
            return Err(status_error(url, &self.inner.registry, repo, status, message));
        }
        let link = super::tags::next_link_of(&res);
        let body = bounded::read_body(res, self.inner.opts.max_manifest_size, "referrers index").await?;
        Ok(Some((body, link)))
    }

    /// The index under the referrers tag of `subject`; empty when there is no such tag.
    async fn referrers_tag(&self, repo: &str, subject: &Digest) -> Result<Index, RegistryError> {
        let tag = schema_tag(subject);
        let (bytes, ctype) = match self.get_manifest(repo, &tag, None).await {
            Ok((bytes, ctype, _)) => (bytes, ctype),
            Err(e) if e.is_not_found() => return Ok(Index::default()),
            Err(e) => return Err(e),
        };
        let name = format!("{}/{repo}:{tag}", self.inner.registry);
        match Manifest::parse(&bytes, Some(&ctype), &name)? {
            Manifest::Index { .. } => {}
            other => {
                return Err(RegistryError::ReferrersTagNotIndex {
                    subject: format!("{}/{repo}@{subject}", self.inner.registry),
                    tag,
                    media_type: other.media_type().to_owned(),
                });
            }
        }
        serde_json::from_slice(&bytes).map_err(|source| RegistryError::InvalidManifest {
            reference: name,
            source,
        })
    }

    /// Pushes an artifact manifest for `a` (empty config, its layers, `subject`) and records it as a
    /// referrer. Returns its descriptor and how the registry lists it.
    pub async fn attach(
        &self,
        repo: &str,
        a: &Attachment,
    ) -> Result<(Descriptor, ReferrersSource), RegistryError> {
        let config = self.push_bytes(repo, OCI_EMPTY, EMPTY_CONFIG.to_vec()).await?;
        let manifest = crate::image::Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            artifact_type: Some(a.artifact_type.clone()),
            config,
            layers: a.layers.clone(),
            subject: Some(a.subject.clone()),
            annotations: a.annotations.clone(),
            extra: Default::default(),
        };
        let body = canonical_json(&manifest);
        let digest = Digest::sha256_of(&body);
        let put = self
            .put_manifest_reporting(repo, &digest.to_string(), &body, OCI_MANIFEST)
            .await?;
        let mut desc = Descriptor::new(OCI_MANIFEST, put.digest, body.len() as u64);
        desc.artifact_type = Some(a.artifact_type.clone());
        desc.annotations = a.annotations.clone();
        let source = self
            .record_referrer(repo, &a.subject.digest, &desc, put.subject.as_ref())
            .await?;
        Ok((desc, source))
    }

    /// After a manifest with a subject was pushed: nothing more when the registry reported the subject
    /// back (`reported`, its `OCI-Subject`); otherwise adds `desc` to the subject's referrers tag.
    /// Two pushers updating one tag at once can lose an entry: the tag schema has no lock (the spec
    /// says as much); the API has no such race.
    pub async fn record_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        desc: &Descriptor,
        reported: Option<&Digest>,
    ) -> Result<ReferrersSource, RegistryError> {
        if reported == Some(subject) {
            return Ok(ReferrersSource::Api);
        }
        let mut index = self.referrers_tag(repo, subject).await?;
        if index.manifests.iter().any(|m| m.digest == desc.digest) {
            return Ok(ReferrersSource::TagSchema);
        }
        index.manifests.push(desc.clone());
        index.media_type = Some(OCI_INDEX.to_owned());
        self.put_manifest(repo, &schema_tag(subject), &canonical_json(&index), OCI_INDEX)
            .await?;
        Ok(ReferrersSource::TagSchema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_tag_is_algorithm_dash_hex() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(schema_tag(&d), format!("sha256-{}", d.hex()));
    }
}
