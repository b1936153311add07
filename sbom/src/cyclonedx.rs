//! CycloneDX 1.5 JSON: the image as the metadata component, every found package a `library` component
//! with its purl.

use serde_json::{Value, json};

use super::{Inventory, stable_uuid};

/// The CycloneDX BOM for `inv`; `version` is lamina's version.
pub fn bom(inv: &Inventory, version: &str) -> Value {
    let id = inv.digest.as_deref().unwrap_or(&inv.image);
    let components: Vec<Value> = inv
        .packages
        .iter()
        .map(|p| {
            let purl = p.purl();
            let mut c = json!({
                "type": "library",
                "bom-ref": purl,
                "name": p.name,
                "version": p.version,
                "purl": purl,
                "properties": [{"name": "lamina:found-in", "value": p.found_in}],
            });
            if let Some(l) = &p.license {
                c["licenses"] = json!([{"license": {"name": l}}]);
            }
            if let Some(s) = &p.supplier {
                c["supplier"] = json!({"name": s.replace('\n', " ")});
            }
            c
        })
        .collect();
    let mut component = json!({
        "type": "container",
        "bom-ref": format!("image:{id}"),
        "name": inv.image,
    });
    if let Some(d) = &inv.digest {
        component["version"] = json!(d);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", stable_uuid(&[id, "cyclonedx"])),
        "version": 1,
        "metadata": {
            "timestamp": inv.created.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
            "tools": {"components": [{"type": "application", "name": "lamina", "version": version}]},
            "component": component,
        },
        "components": components,
    })
}
