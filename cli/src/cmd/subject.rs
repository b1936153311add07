//! The IMAGE operand of inspect, history, ls-layer, tree, diff and analyze: where to read an image from,
//! without writing anything to the store.
//!
//! - `NAME[:TAG]`, `NAME@sha256:…`, `sha256:…` / an ID prefix: the local store
//! - `oci:DIR[:REF]`: an OCI image layout directory
//! - `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`: archives, read in place
//! - `docker://REF`: a registry (layers are streamed, never stored)
//! - `layer:FILE`: one layer tar (plain, gzip or zstd)
//! - any of the image forms followed by `@N`: layer N of that image (`@-1` = the top layer)

use std::path::{Path, PathBuf};

use anyhow::Context;
use lamina_inspect::source::ImageView;
use lamina_store::Reference;

use super::transfer::RegistryFlags;

/// Help text for IMAGE operands.
pub const IMAGE_HELP: &str = "NAME[:TAG] | sha256:ID | oci:DIR[:REF] | oci-archive:FILE[:REF] | \
docker-archive:FILE[:REF] | docker://REF";

/// A parsed operand: the image part and the layer selector, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Spec<'a> {
    pub image: &'a str,
    pub layer: Option<i64>,
}

/// Splits `IMAGE@N`; `name@sha256:…` is a digest reference, not a layer.
pub fn split_layer(s: &str) -> Spec<'_> {
    if let Some((img, n)) = s.rsplit_once('@')
        && !img.is_empty()
        && let Ok(i) = n.parse::<i64>()
    {
        return Spec {
            image: img,
            layer: Some(i),
        };
    }
    Spec {
        image: s,
        layer: None,
    }
}

/// `FILE[:REF]` where FILE may itself contain ':' — an existing path wins.
fn path_and_ref(rest: &str) -> (PathBuf, Option<&str>) {
    if Path::new(rest).exists() {
        return (PathBuf::from(rest), None);
    }
    match rest.rsplit_once(':') {
        Some((p, r)) if !p.is_empty() && !r.contains('/') && !r.is_empty() => (PathBuf::from(p), Some(r)),
        _ => (PathBuf::from(rest), None),
    }
}

/// Opens the image (no layer selector) named by `spec`.
pub fn open_image(cli: &crate::Cli, spec: &str, registry: &RegistryFlags) -> anyhow::Result<ImageView> {
    if let Some(rest) = spec.strip_prefix("oci:") {
        let (dir, r) = path_and_ref(rest);
        let mut v = ImageView::open_oci_layout(&dir, r).with_context(|| format!("reading {spec}"))?;
        v.name = spec.to_string();
        return Ok(v);
    }
    if let Some(rest) = spec.strip_prefix("oci-archive:") {
        let (file, r) = path_and_ref(rest);
        let mut v = ImageView::open_oci_archive(&file, r).with_context(|| format!("reading {spec}"))?;
        v.name = spec.to_string();
        return Ok(v);
    }
    if let Some(rest) = spec.strip_prefix("docker-archive:") {
        let (file, r) = path_and_ref(rest);
        let mut v = ImageView::open_docker_archive(&file, r).with_context(|| format!("reading {spec}"))?;
        v.name = spec.to_string();
        return Ok(v);
    }
    if let Some(rest) = spec.strip_prefix("layer:") {
        return ImageView::open_layer_file(Path::new(rest)).with_context(|| format!("reading {spec}"));
    }
    if let Some(rest) = spec.strip_prefix("docker://") {
        return super::remote_image::open(rest, registry);
    }
    let store = super::open_store(cli)?;
    let found = store
        .resolve(spec)
        .with_context(|| format!("looking up image {spec:?} in the local store"))?;
    let image = store
        .load_image(found.digest())
        .with_context(|| format!("loading image {spec:?} ({})", found.digest()))?;
    let mut tags: Vec<String> = store
        .tags()?
        .into_iter()
        .filter(|t| t.descriptor.digest == image.manifest_digest || t.descriptor.digest == *found.digest())
        .map(|t| t.reference.familiar())
        .collect();
    tags.sort();
    let name = found
        .reference
        .as_ref()
        .map_or_else(|| spec.to_string(), Reference::familiar);
    Ok(ImageView::from_store(&store, &image, &name, tags)?)
}

/// Layer `i`'s unpacked size (docker's SIZE), from the local store when it holds the layer (memoized
/// there); else its blob's size, which is all an archive or a registry tells without reading the layer.
pub fn layer_unpacked_size(store: Option<&lamina_store::Store>, view: &ImageView, i: usize) -> u64 {
    let Some(l) = view.layers.get(i) else { return 0 };
    match (store, &l.digest, &l.diff_id) {
        (Some(s), Some(digest), Some(diff_id)) if s.blobs().contains(digest) => s
            .layer_unpacked_size(&lamina_store::image::LayerDesc {
                digest: digest.clone(),
                diff_id: diff_id.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .unwrap_or(l.size),
        _ => l.size,
    }
}

/// The local store if there is one: reading an archive or a registry must not create a store.
pub fn existing_store(cli: &crate::Cli) -> Option<lamina_store::Store> {
    cli.store_root()
        .join("index.json")
        .exists()
        .then(|| super::open_store(cli).ok())
        .flatten()
}

/// The image's unpacked size when the local store holds all its layers; `None` otherwise.
pub fn unpacked_size(cli: &crate::Cli, view: &ImageView) -> Option<u64> {
    let store = existing_store(cli)?;
    let all_here = view
        .layers
        .iter()
        .all(|l| l.digest.as_ref().is_some_and(|d| store.blobs().contains(d)));
    all_here.then(|| {
        (0..view.layers.len())
            .map(|i| layer_unpacked_size(Some(&store), view, i))
            .sum()
    })
}

/// Opens `spec`, and if it selects a layer (`IMAGE@N`), returns the image and that layer's index.
pub fn open(
    cli: &crate::Cli,
    spec: &str,
    registry: &RegistryFlags,
) -> anyhow::Result<(ImageView, Option<usize>)> {
    let s = split_layer(spec);
    let view = open_image(cli, s.image, registry)?;
    let layer = match s.layer {
        None => None,
        Some(n) => {
            let count = view.layers.len() as i64;
            let idx = if n < 0 { count + n } else { n };
            if idx < 0 || idx >= count {
                anyhow::bail!(
                    "{spec}: layer {n} out of range ({} has {count} layers, 0..{})",
                    s.image,
                    count - 1
                );
            }
            Some(idx as usize)
        }
    };
    Ok((view, layer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_selectors() {
        assert_eq!(
            split_layer("busybox@2"),
            Spec {
                image: "busybox",
                layer: Some(2)
            }
        );
        assert_eq!(
            split_layer("busybox@-1"),
            Spec {
                image: "busybox",
                layer: Some(-1)
            }
        );
        let d = "busybox@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            split_layer(d),
            Spec {
                image: d,
                layer: None
            }
        );
        assert_eq!(
            split_layer("oci-archive:/x.tar:app@0").image,
            "oci-archive:/x.tar:app"
        );
    }
}
