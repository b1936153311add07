//! OCI image-layout index handling for `oci:` destinations and sources (not the store): find and set
//! `index.json` entries named by `org.opencontainers.image.ref.name`. Writes go through the store's one
//! locked index writer ([`lamina_store::layout::update_layout_index`]); the store root itself is tagged through
//! [`lamina_store::Store::set_tag`].

use std::path::Path;

use super::RegistryError;
use super::manifest::Descriptor;

pub use crate::image::REF_NAME_ANNOTATION as REF_NAME;

fn read_index(dir: &Path) -> Result<serde_json::Value, RegistryError> {
    let path = dir.join("index.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| RegistryError::BadFile {
            what: "OCI layout index",
            path,
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(
            serde_json::json!({"schemaVersion": 2, "mediaType": super::manifest::OCI_INDEX, "manifests": []}),
        ),
        Err(e) => Err(RegistryError::Io {
            op: "read",
            path,
            source: e,
        }),
    }
}

/// Adds `desc` to `dir/index.json` (an OCI layout that is not the store), replacing an entry with the same
/// ref name; through the store's one locked index writer.
pub fn set_ref(dir: &Path, desc: &Descriptor, name: Option<&str>) -> Result<(), RegistryError> {
    let mut entry = desc.clone();
    entry.platform = None;
    if let Some(n) = name {
        entry.annotations.insert(REF_NAME.to_owned(), n.to_owned());
    }
    lamina_store::layout::update_layout_index(dir, |index| {
        index.manifests.retain(|m| match name {
            Some(n) => m.ref_name() != Some(n),
            None => m.digest != entry.digest || m.ref_name().is_some(),
        });
        index.manifests.push(entry);
        Ok(())
    })
    .map_err(|source| RegistryError::Layout {
        path: dir.to_owned(),
        source: Box::new(source),
    })
}

/// The entry named `name` (or the only entry when no name is given).
pub fn find_ref(dir: &Path, name: Option<&str>) -> Result<Descriptor, RegistryError> {
    let index = read_index(dir)?;
    let entries: Vec<Descriptor> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| serde_json::from_value(m.clone()).ok())
        .collect();
    let found: Vec<&Descriptor> = entries
        .iter()
        .filter(|d| match name {
            Some(n) => d.annotations.get(REF_NAME).is_some_and(|r| {
                r == n
                    || r.rsplit_once(':')
                        .is_some_and(|(_, t)| t == n && !t.contains('/'))
            }),
            None => true,
        })
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(RegistryError::Io {
            op: "find image in OCI layout",
            path: dir.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                match name {
                    Some(n) => format!("{} entries named {n:?}", found.len()),
                    None => format!("{} entries and no name given", found.len()),
                },
            ),
        }),
    }
}
