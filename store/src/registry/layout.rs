//! Minimal OCI image-layout index handling for `oci:` destinations and sources: read and update
//! `index.json` entries named by `org.opencontainers.image.ref.name`, written temp-then-rename.

use std::path::Path;

use super::RegistryError;
use super::manifest::Descriptor;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

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

/// Adds `desc` to `dir/index.json`, replacing an entry with the same ref name.
pub fn set_ref(dir: &Path, desc: &Descriptor, name: Option<&str>) -> Result<(), RegistryError> {
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(RegistryError::io("write", &layout))?;
    }
    let mut index = read_index(dir)?;
    let mut entry = desc.clone();
    entry.platform = None;
    if let Some(n) = name {
        entry.annotations.insert(REF_NAME.to_owned(), n.to_owned());
    }
    let entry = serde_json::to_value(&entry).expect("descriptors serialize");
    let list = index["manifests"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut list: Vec<serde_json::Value> = list
        .into_iter()
        .filter(|m| match name {
            Some(n) => m["annotations"][REF_NAME].as_str() != Some(n),
            None => m["digest"] != entry["digest"] || m["annotations"][REF_NAME].is_string(),
        })
        .collect();
    list.push(entry);
    index["manifests"] = serde_json::Value::Array(list);
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(RegistryError::io("create temp file in", dir))?;
    serde_json::to_writer(&tmp, &index).map_err(|e| RegistryError::Io {
        op: "write",
        path: tmp.path().to_owned(),
        source: e.into(),
    })?;
    tmp.persist(dir.join("index.json"))
        .map_err(|e| RegistryError::Io {
            op: "rename into place",
            path: dir.join("index.json"),
            source: e.error,
        })?;
    Ok(())
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
