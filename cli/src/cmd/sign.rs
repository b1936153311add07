//! `lamina sign --key KEY IMAGE` and `lamina verify --key PUB IMAGE`: cosign-format signatures of images in
//! a registry (see the `lamina-sign` crate for the format). The image is named by tag or digest; what is
//! signed is its manifest digest, so a later push under the same tag is not covered.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use lamina_registry::RegistryClient;
use lamina_sign::{
    Payload, SIMPLE_SIGNING_MEDIA_TYPE, SignatureImage, SigningKey, VerifyingKey, signature_tag,
};
use lamina_store::image::media;

use super::transfer::RegistryFlags;

/// The largest signature payload read (cosign's are a few hundred bytes).
const MAX_PAYLOAD: u64 = 1 << 20;

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// Private key (PEM: PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`, ECDSA P-256).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Image in a registry, by tag or digest (e.g. localhost:5000/app:1.0).
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Public key (PEM `PUBLIC KEY`, ECDSA P-256).
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// Image in a registry, by tag or digest.
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

use super::remote_image::{image_ref, resolve};

pub fn run_sign(_cli: &crate::Cli, args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = SigningKey::from_file(&args.key)?;
    let r = image_ref(&args.image)?;
    let opts = args.registry.options()?;
    let rt = super::transfer::runtime()?;
    let (digest, tag) = rt
        .block_on(async {
            let client = RegistryClient::new(r.registry(), &opts)?;
            let repo = r.repository();
            let digest = resolve(&client, &r).await?;
            let payload = Payload::new(&format!("{}/{repo}", r.registry()), &digest.to_string()).to_bytes();
            let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload)?);
            let tag = signature_tag(&digest);
            let mut sigs = match client.get_manifest(repo, &tag, None).await {
                Ok((bytes, _, _)) => SignatureImage::parse(&bytes)?,
                Err(e) if e.is_not_found() => SignatureImage::default(),
                Err(e) => return Err(anyhow::Error::new(e)),
            };
            let layer = client
                .push_bytes(repo, SIMPLE_SIGNING_MEDIA_TYPE, payload)
                .await?;
            sigs.add(lamina_sign::sigimage_layer(layer.digest, layer.size, signature));
            let config = sigs.config();
            client.push_bytes(repo, media::OCI_CONFIG, config.clone()).await?;
            client
                .put_manifest(repo, &tag, &sigs.manifest(&config), media::OCI_MANIFEST)
                .await?;
            anyhow::Ok((digest, tag))
        })
        .with_context(|| format!("signing {}", args.image))?;
    eprintln!(
        "Signed {}@{digest}; signature stored as {}:{tag}",
        r.name(),
        r.name()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_verify(_cli: &crate::Cli, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = VerifyingKey::from_file(&args.key)?;
    let r = image_ref(&args.image)?;
    let opts = args.registry.options()?;
    let rt = super::transfer::runtime()?;
    let (digest, verified, rejected) = rt
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
            let mut verified = Vec::new();
            let mut rejected = Vec::new();
            for l in &sigs.layers {
                let desc =
                    lamina_registry::Descriptor::new(SIMPLE_SIGNING_MEDIA_TYPE, l.digest.clone(), l.size);
                let payload = client.fetch_small(repo, &desc, MAX_PAYLOAD).await?;
                let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(l.signature.trim()) else {
                    rejected.push(format!("{}: signature is not base64", l.digest));
                    continue;
                };
                if !key.verify(&payload, &sig) {
                    rejected.push(format!("{}: signature does not match the key", l.digest));
                    continue;
                }
                match Payload::parse(&payload) {
                    Ok(p) if p.claims(&digest.to_string()) => verified.push(p),
                    Ok(p) => rejected.push(format!(
                        "{}: signed payload is for {}, not {digest}",
                        l.digest, p.critical.image.docker_manifest_digest
                    )),
                    Err(e) => rejected.push(format!("{}: {e}", l.digest)),
                }
            }
            anyhow::Ok((digest, verified, rejected))
        })
        .with_context(|| format!("verifying {}", args.image))?;
    if verified.is_empty() {
        let why = if rejected.is_empty() {
            "the signature image holds no signatures".to_owned()
        } else {
            rejected.join("; ")
        };
        bail!(
            "no valid signature for {}@{digest} with key {}: {why}",
            r.name(),
            args.key.display()
        );
    }
    eprintln!(
        "Verification for {}@{digest} --\nThe following checks were performed on each of these signatures:\n  \
         - The cosign claims were validated\n  - The signatures were verified against the specified public key",
        r.name()
    );
    crate::outln!("{}", serde_json::to_string(&verified)?);
    Ok(ExitCode::SUCCESS)
}
