//! `lamina sign --key KEY IMAGE` and `lamina verify --key PUB IMAGE`: cosign-format signatures (see the
//! `lamina-sign` crate for the format). The image is named by tag or digest; what is signed is its manifest
//! digest, so a later push under the same tag is not covered.
//!
//! An image in the local store (looked up by the name as given) is signed there: the signature image is
//! stored and tagged `NAME:sha256-<hex>.sig` in the store, as cosign keeps it in a registry, and `lamina
//! push` takes it along (merged with the signatures the registry already has). `docker://REF`, or a name
//! the store does not have, signs in the registry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use lamina_registry::RegistryClient;
use lamina_sign::{
    Payload, SIMPLE_SIGNING_MEDIA_TYPE, SignatureImage, SignatureLayer, SigningKey, VerifyingKey,
    signature_tag,
};
use lamina_store::image::media;
use lamina_store::{Descriptor, Digest, Reference, StoreError};

use super::transfer::RegistryFlags;

/// The largest signature payload read (cosign's are a few hundred bytes).
const MAX_PAYLOAD: u64 = 1 << 20;

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// Private key (PEM: PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`, ECDSA P-256).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Image in the local store, or in a registry (`docker://REF`, or a name the store lacks), by tag or
    /// digest (e.g. localhost:5000/app:1.0).
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Public key (PEM `PUBLIC KEY`, ECDSA P-256).
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// Image in the local store, or in a registry (`docker://REF`, or a name the store lacks).
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

use super::remote_image::{image_ref, resolve};

/// Where the image to sign or verify is.
enum Target {
    /// In the local store under `name` (a tag), its manifest `digest`.
    Local {
        store: lamina_store::Store,
        name: Reference,
        digest: Digest,
    },
    Remote(Reference),
}

fn target(cli: &crate::Cli, image: &str) -> anyhow::Result<Target> {
    if image.starts_with("docker://") {
        return Ok(Target::Remote(image_ref(image)?));
    }
    // No store (or none this user can open) holds no images: the name is a registry's.
    if !cli.store_root().exists() {
        return Ok(Target::Remote(image_ref(image)?));
    }
    let Ok(store) = super::open_store(cli) else {
        return Ok(Target::Remote(image_ref(image)?));
    };
    match store.resolve(image) {
        Ok(found) => {
            let name = found.reference.with_context(|| {
                format!("{image}: name the image by a tag to sign or verify it in the store")
            })?;
            let digest = found.descriptor.digest;
            Ok(Target::Local {
                store,
                name: name.with_tag(name.tag().unwrap_or("latest"))?,
                digest,
            })
        }
        Err(StoreError::ImageNotFound(_)) => Ok(Target::Remote(image_ref(image)?)),
        Err(e) => Err(anyhow::Error::new(e).context(format!("looking up {image} in the store"))),
    }
}

/// cosign's `critical.identity.docker-reference`: registry and repository.
fn docker_reference(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

/// The local signature image of `name`'s `digest`: its tag, and the signatures it holds (none yet: empty).
fn local_signatures(
    store: &lamina_store::Store,
    name: &Reference,
    digest: &Digest,
) -> anyhow::Result<(Reference, SignatureImage)> {
    let tag = name.with_tag(&signature_tag(digest))?;
    let sigs = match store.resolve(&tag.to_string()) {
        Ok(found) => {
            SignatureImage::parse(&store.blobs().read_small(&found.descriptor.digest, MAX_PAYLOAD)?)?
        }
        Err(StoreError::ImageNotFound(_)) => SignatureImage::default(),
        Err(e) => return Err(e.into()),
    };
    Ok((tag, sigs))
}

pub fn run_sign(cli: &crate::Cli, args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = SigningKey::from_file(&args.key)?;
    match target(cli, &args.image)? {
        Target::Local { store, name, digest } => {
            let payload = Payload::new(&docker_reference(&name), &digest.to_string()).to_bytes();
            let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload)?);
            let (tag, mut sigs) = local_signatures(&store, &name, &digest)?;
            let (pdigest, psize) = store.blobs().put_bytes(&payload)?;
            sigs.add(lamina_sign::sigimage_layer(pdigest, psize, signature));
            let config = sigs.config();
            store.blobs().put_bytes(&config)?;
            let (mdigest, msize) = store.blobs().put_bytes(&sigs.manifest(&config))?;
            store.set_tag(&tag, Descriptor::new(media::OCI_MANIFEST, mdigest, msize))?;
            eprintln!(
                "Signed {}@{digest} in the local store; signature stored as {} (lamina push takes it along)",
                name.name(),
                tag.familiar()
            );
        }
        Target::Remote(r) => {
            let opts = args.registry.options()?;
            let rt = super::transfer::runtime()?;
            let (digest, tag) = rt
                .block_on(async {
                    let client = RegistryClient::new(r.registry(), &opts)?;
                    let digest = resolve(&client, &r).await?;
                    let payload = Payload::new(&docker_reference(&r), &digest.to_string()).to_bytes();
                    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload)?);
                    let tag = add_remote_signatures(&client, &r, &digest, vec![(payload, signature)]).await?;
                    anyhow::Ok((digest, tag))
                })
                .with_context(|| format!("signing {}", args.image))?;
            eprintln!(
                "Signed {}@{digest}; signature stored as {}:{tag}",
                r.name(),
                r.name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds signatures (payload bytes, base64 signature) to the registry's signature image of `digest` in
/// `r`'s repository, keeping those it has; returns the signature tag.
async fn add_remote_signatures(
    client: &RegistryClient,
    r: &Reference,
    digest: &Digest,
    new: Vec<(Vec<u8>, String)>,
) -> anyhow::Result<String> {
    let repo = r.repository();
    let tag = signature_tag(digest);
    let mut sigs = match client.get_manifest(repo, &tag, None).await {
        Ok((bytes, _, _)) => SignatureImage::parse(&bytes)?,
        Err(e) if e.is_not_found() => SignatureImage::default(),
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    for (payload, signature) in new {
        let layer = client
            .push_bytes(repo, SIMPLE_SIGNING_MEDIA_TYPE, payload)
            .await?;
        sigs.add(lamina_sign::sigimage_layer(layer.digest, layer.size, signature));
    }
    let config = sigs.config();
    client.push_bytes(repo, media::OCI_CONFIG, config.clone()).await?;
    client
        .put_manifest(repo, &tag, &sigs.manifest(&config), media::OCI_MANIFEST)
        .await?;
    Ok(tag)
}

/// After `lamina push`: the local signatures of `source`'s `digest`, if any, added to `dest`'s repository.
/// Returns how many were carried.
pub async fn push_local_signatures(
    store: &lamina_store::Store,
    source: &Reference,
    digest: &Digest,
    client: &RegistryClient,
    dest: &Reference,
) -> anyhow::Result<usize> {
    let (_, sigs) = local_signatures(store, source, digest)?;
    let mut new = Vec::with_capacity(sigs.layers.len());
    for l in &sigs.layers {
        new.push((
            store.blobs().read_small(&l.digest, MAX_PAYLOAD)?,
            l.signature.clone(),
        ));
    }
    let n = new.len();
    if n > 0 {
        add_remote_signatures(client, dest, digest, new).await?;
    }
    Ok(n)
}

/// Checks each signature (its payload as stored, fetched by the caller) against the key and the digest:
/// the claims that verified, and why the others did not.
fn check(
    key: &VerifyingKey,
    digest: &Digest,
    signed: &[(SignatureLayer, Vec<u8>)],
) -> (Vec<Payload>, Vec<String>) {
    let mut verified = Vec::new();
    let mut rejected = Vec::new();
    for (l, payload) in signed {
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(l.signature.trim()) else {
            rejected.push(format!("{}: signature is not base64", l.digest));
            continue;
        };
        if !key.verify(payload, &sig) {
            rejected.push(format!("{}: signature does not match the key", l.digest));
            continue;
        }
        match Payload::parse(payload) {
            Ok(p) if p.claims(&digest.to_string()) => verified.push(p),
            Ok(p) => rejected.push(format!(
                "{}: signed payload is for {}, not {digest}",
                l.digest, p.critical.image.docker_manifest_digest
            )),
            Err(e) => rejected.push(format!("{}: {e}", l.digest)),
        }
    }
    (verified, rejected)
}

pub fn run_verify(cli: &crate::Cli, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = VerifyingKey::from_file(&args.key)?;
    let (name, digest, signed) = match target(cli, &args.image)? {
        Target::Local { store, name, digest } => {
            let (tag, sigs) = local_signatures(&store, &name, &digest)?;
            if sigs.layers.is_empty() {
                bail!(
                    "no signatures found for {}@{digest} in the local store (no tag {})",
                    name.name(),
                    tag.familiar()
                );
            }
            let mut signed = Vec::new();
            for l in sigs.layers {
                let payload = store.blobs().read_small(&l.digest, MAX_PAYLOAD)?;
                signed.push((l, payload));
            }
            (name.name(), digest, signed)
        }
        Target::Remote(r) => {
            let opts = args.registry.options()?;
            let rt = super::transfer::runtime()?;
            let (digest, signed) = rt
                .block_on(async {
                    let client = RegistryClient::new(r.registry(), &opts)?;
                    let repo = r.repository();
                    let digest = resolve(&client, &r).await?;
                    let tag = signature_tag(&digest);
                    let sigs = match client.get_manifest(repo, &tag, None).await {
                        Ok((bytes, _, _)) => SignatureImage::parse(&bytes)?,
                        Err(e) if e.is_not_found() => {
                            bail!("no signatures found for {}@{digest} (no tag {tag})", r.name())
                        }
                        Err(e) => return Err(anyhow::Error::new(e)),
                    };
                    let mut signed = Vec::new();
                    for l in sigs.layers {
                        let desc = lamina_registry::Descriptor::new(
                            SIMPLE_SIGNING_MEDIA_TYPE,
                            l.digest.clone(),
                            l.size,
                        );
                        let payload = client.fetch_small(repo, &desc, MAX_PAYLOAD).await?;
                        signed.push((l, payload));
                    }
                    anyhow::Ok((digest, signed))
                })
                .with_context(|| format!("verifying {}", args.image))?;
            (r.name(), digest, signed)
        }
    };
    let (verified, rejected) = check(&key, &digest, &signed);
    if verified.is_empty() {
        let why = if rejected.is_empty() {
            "the signature image holds no signatures".to_owned()
        } else {
            rejected.join("; ")
        };
        bail!(
            "no valid signature for {name}@{digest} with key {}: {why}",
            args.key.display()
        );
    }
    eprintln!(
        "Verification for {name}@{digest} --\nThe following checks were performed on each of these signatures:\n  \
         - The cosign claims were validated\n  - The signatures were verified against the specified public key"
    );
    crate::outln!("{}", serde_json::to_string(&verified)?);
    Ok(ExitCode::SUCCESS)
}
