//! Build attestations, attached the way buildx attaches them so the tools that read buildx's read
//! lamina's: for each image of the result, an *attestation manifest* in the image index, with platform
//! `unknown/unknown` and the annotations `vnd.docker.reference.type: attestation-manifest` and
//! `vnd.docker.reference.digest: <the image's manifest digest>`. Its layers are in-toto statements
//! (`application/vnd.in-toto+json`, annotated with `in-toto.io/predicate-type`) whose subject is the
//! image:
//! - provenance: an SLSA v0.2 predicate (BuildKit 0.13's default) naming the materials — base images by
//!   digest, the context's git commit when it is a work tree — the Dockerfile's digest, the platform, and
//!   with `mode=max` the build args, labels and target;
//! - SBOM: lamina's own SPDX 2.3 document of the image (`lamina-sbom`, from its package databases).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use lamina_store::image::{Descriptor, Image, Manifest, canonical_json, media};
use lamina_store::{Digest, Store};
use serde_json::{Value, json};

use super::BuildError;
use super::build::BuildRequest;
use crate::dockerfile::graph::Platform;

/// The index annotations buildx puts on an attestation manifest's descriptor.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// An in-toto statement layer, and the annotation naming its predicate.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";

/// How much the provenance records (`--attest type=provenance,mode=…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProvenanceMode {
    /// Materials, the Dockerfile, the platform.
    #[default]
    Min,
    /// Also the build args, labels and target.
    Max,
}

/// Which attestations a build attaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attest {
    pub provenance: Option<ProvenanceMode>,
    pub sbom: bool,
}

impl Attest {
    pub fn any(&self) -> bool {
        self.provenance.is_some() || self.sbom
    }
}

/// A base image a stage or `COPY --from` used: a provenance material.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Material {
    pub name: String,
    pub platform: String,
    pub digest: Digest,
}

/// The base images a build used, recorded as stages load them.
#[derive(Default)]
pub struct Materials(Mutex<Vec<Material>>);

impl Materials {
    pub fn record(&self, name: &str, platform: &Platform, digest: &Digest) {
        let m = Material {
            name: name.to_owned(),
            platform: platform.to_string(),
            digest: digest.clone(),
        };
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !all.contains(&m) {
            all.push(m);
        }
    }

    fn for_platform(&self, platform: &str) -> Vec<Material> {
        let mut v: Vec<Material> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|m| m.platform == platform)
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// What the provenance says about the build as a whole.
pub struct BuildFacts<'a> {
    pub req: &'a BuildRequest,
    pub materials: &'a Materials,
    pub started: String,
    pub finished: String,
}

/// The index entries for `images` with their attestation manifests, each after its image.
pub fn index_entries(
    store: &Store,
    images: &[Image],
    facts: &BuildFacts<'_>,
) -> Result<Vec<Descriptor>, BuildError> {
    let mut out = Vec::with_capacity(images.len() * 2);
    for img in images {
        let platform = img.config.platform();
        out.push(Descriptor {
            platform: Some(platform.clone()),
            ..img.descriptor()
        });
        if facts.req.attest.any() {
            out.push(attestation_manifest(store, img, &platform, facts)?);
        }
    }
    Ok(out)
}

fn attestation_manifest(
    store: &Store,
    img: &Image,
    platform: &Platform,
    facts: &BuildFacts<'_>,
) -> Result<Descriptor, BuildError> {
    let store_err = |source: lamina_store::StoreError| BuildError::Store {
        source: Box::new(source),
    };
    let put = |bytes: &[u8]| -> Result<(Digest, u64), BuildError> {
        store
            .blobs()
            .put_bytes(bytes)
            .map_err(|e| store_err(lamina_store::StoreError::from(e)))
    };
    let subject = subjects(img, platform, facts.req);
    let mut statements: Vec<(String, Value)> = Vec::new();
    if let Some(mode) = facts.req.attest.provenance {
        statements.push((SLSA_PROVENANCE_V02.to_owned(), provenance(platform, mode, facts)));
    }
    if facts.req.attest.sbom {
        statements.push((SPDX_DOCUMENT.to_owned(), sbom(store, img)?));
    }
    let mut layers = Vec::new();
    for (predicate_type, predicate) in statements {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": predicate_type,
            "subject": subject,
            "predicate": predicate,
        });
        let (digest, size) = put(&canonical_json(&statement))?;
        let mut d = Descriptor::new(IN_TOTO, digest, size);
        d.annotations.insert(PREDICATE_TYPE.to_owned(), predicate_type);
        layers.push(d);
    }
    // buildx's attestation config: an image config of platform unknown/unknown listing the layers.
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>()},
    });
    let (cdigest, csize) = put(&canonical_json(&config))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, cdigest, csize),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
        extra: Default::default(),
    };
    let (mdigest, msize) = put(&canonical_json(&manifest))?;
    let mut d = Descriptor::new(media::OCI_MANIFEST, mdigest, msize);
    d.platform = Some(Platform::new("unknown", "unknown", None));
    d.annotations
        .insert(REFERENCE_TYPE.to_owned(), ATTESTATION_MANIFEST.to_owned());
    d.annotations
        .insert(REFERENCE_DIGEST.to_owned(), img.manifest_digest.to_string());
    Ok(d)
}

/// `pkg:docker/<name>@<tag>?platform=…` per tag (`_` without one, as BuildKit), all with the
/// image's manifest digest.
fn subjects(img: &Image, platform: &Platform, req: &BuildRequest) -> Value {
    let digest = json!({"sha256": img.manifest_digest.hex()});
    let p = purl_platform(&platform.to_string());
    let names: Vec<String> = if req.tags.is_empty() {
        vec![format!("pkg:docker/_?platform={p}")]
    } else {
        req.tags
            .iter()
            .map(|t| format!("pkg:docker/{}?platform={p}", purl_name(t)))
            .collect()
    };
    Value::Array(
        names
            .into_iter()
            .map(|n| json!({"name": n, "digest": digest}))
            .collect(),
    )
}

/// `repo:tag` → `repo@tag`, as purls spell the version.
fn purl_name(reference: &str) -> String {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => format!("{repo}@{tag}"),
        _ => format!("{reference}@latest"),
    }
}

fn purl_platform(p: &str) -> String {
    p.replace('/', "%2F")
}

fn provenance(platform: &Platform, mode: ProvenanceMode, facts: &BuildFacts<'_>) -> Value {
    let req = facts.req;
    let p = platform.to_string();
    let mut materials: Vec<Value> = facts
        .materials
        .for_platform(&p)
        .into_iter()
        .map(|m| {
            json!({
                "uri": format!("pkg:docker/{}?platform={}", purl_name(&m.name), purl_platform(&m.platform)),
                "digest": {m.digest.algorithm().as_str(): m.digest.hex()},
            })
        })
        .collect();
    let git = git_revision(&req.context_dir);
    if let Some(g) = &git {
        materials.push(json!({"uri": g.source, "digest": {"sha1": g.revision}}));
    }
    let dockerfile = Digest::sha256_of(req.dockerfile.as_bytes());
    let mut parameters = json!({"frontend": "dockerfile.v0"});
    if mode == ProvenanceMode::Max {
        let mut args = serde_json::Map::new();
        for (k, v) in &req.build_args {
            args.insert(format!("build-arg:{k}"), json!(v));
        }
        for (k, v) in &req.labels {
            args.insert(format!("label:{k}"), json!(v));
        }
        if let Some(t) = &req.target {
            args.insert("target".into(), json!(t));
        }
        parameters["args"] = Value::Object(args);
    }
    let mut lamina_meta = json!({});
    if let Some(g) = &git {
        lamina_meta["vcs"] = json!({"source": g.source, "revision": g.revision});
    }
    json!({
        "builder": {"id": format!("urn:lamina:builder:{}", env!("CARGO_PKG_VERSION"))},
        "buildType": "urn:lamina:dockerfile-build:v1",
        "materials": materials,
        "invocation": {
            "configSource": {
                "entryPoint": req.dockerfile_name,
                "digest": {"sha256": dockerfile.hex()},
            },
            "parameters": parameters,
            "environment": {"platform": p},
        },
        "metadata": {
            "buildStartedOn": facts.started,
            "buildFinishedOn": facts.finished,
            "completeness": {"parameters": mode == ProvenanceMode::Max, "environment": true, "materials": false},
            "reproducible": false,
            "urn:lamina:metadata": lamina_meta,
        },
    })
}

fn sbom(store: &Store, img: &Image) -> Result<Value, BuildError> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| BuildError::Sbom {
        digest: img.manifest_digest.clone(),
        source,
    };
    let name = img.manifest_digest.to_string();
    let view = lamina_inspect::source::ImageView::from_store(store, img, &name, Vec::new())
        .map_err(|e| fail(Box::new(e)))?;
    let files = lamina_sbom::collect::collect(&view).map_err(|e| fail(Box::new(e)))?;
    let inv = lamina_sbom::scan_collected(&view, &files);
    Ok(lamina_sbom::spdx::document(
        &inv,
        &format!("lamina-{}", env!("CARGO_PKG_VERSION")),
    ))
}

/// The context's git commit and where it came from, when the context is a git work tree.
struct Git {
    source: String,
    revision: String,
}

fn git_revision(context: &Path) -> Option<Git> {
    let dir = context.join(".git");
    let head = std::fs::read_to_string(dir.join("HEAD")).ok()?;
    let head = head.trim();
    let revision = match head.strip_prefix("ref: ") {
        Some(r) => std::fs::read_to_string(dir.join(r))
            .ok()
            .map(|s| s.trim().to_owned())
            .or_else(|| {
                std::fs::read_to_string(dir.join("packed-refs"))
                    .ok()?
                    .lines()
                    .find_map(|l| {
                        let (sha, name) = l.split_once(' ')?;
                        (name == r).then(|| sha.to_owned())
                    })
            })?,
        None => head.to_owned(),
    };
    if revision.len() != 40 || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let origin = std::fs::read_to_string(dir.join("config")).ok().and_then(|c| {
        let mut in_origin = false;
        c.lines().find_map(|l| {
            let l = l.trim();
            if l.starts_with('[') {
                in_origin = l == "[remote \"origin\"]";
                return None;
            }
            l.strip_prefix("url")
                .filter(|_| in_origin)
                .and_then(|rest| rest.trim_start().strip_prefix('='))
                .map(|u| u.trim().to_owned())
        })
    });
    let source = origin.unwrap_or_else(|| format!("git+file://{}", context.display()));
    Some(Git { source, revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_spell_the_tag_as_version() {
        assert_eq!(purl_name("localhost:5000/app:1.0"), "localhost:5000/app@1.0");
        assert_eq!(purl_name("busybox"), "busybox@latest");
        assert_eq!(purl_name("localhost:5000/app"), "localhost:5000/app@latest");
        assert_eq!(purl_platform("linux/arm64"), "linux%2Farm64");
    }

    #[test]
    fn git_work_trees_give_their_commit_and_origin() {
        let d = tempfile::tempdir().unwrap();
        let git = d.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let sha = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack-refs\n{sha} refs/heads/main\n"),
        )
        .unwrap();
        std::fs::write(
            git.join("config"),
            "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://example.invalid/app.git\n",
        )
        .unwrap();
        let g = git_revision(d.path()).unwrap();
        assert_eq!(
            (g.revision.as_str(), g.source.as_str()),
            (sha, "https://example.invalid/app.git")
        );
        assert!(git_revision(&d.path().join("nope")).is_none());
    }
}
