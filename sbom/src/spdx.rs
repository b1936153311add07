//! SPDX 2.3 JSON: the image as the described package, every found package CONTAINED by it, each with its
//! purl as a PACKAGE-MANAGER external reference (what buildx's SBOM attestations and scanners read).

use serde_json::{Value, json};

use super::{Inventory, stable_uuid};

/// The SPDX document for `inv`; `tool` names the creator (`lamina-0.1.0`).
pub fn document(inv: &Inventory, tool: &str) -> Value {
    let id = inv.digest.as_deref().unwrap_or(&inv.image);
    let root = "SPDXRef-Image";
    let mut packages = vec![json!({
        "name": inv.image,
        "SPDXID": root,
        "versionInfo": inv.digest.clone().unwrap_or_else(|| "NOASSERTION".into()),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": root,
    })];
    for (i, p) in inv.packages.iter().enumerate() {
        let spdx_id = format!("SPDXRef-Package-{}-{}", p.ecosystem.purl_type(), i + 1);
        let mut pkg = json!({
            "name": p.name,
            "SPDXID": spdx_id,
            "versionInfo": p.version,
            "downloadLocation": p.homepage.clone().filter(|h| h.starts_with("http")).unwrap_or_else(|| "NOASSERTION".into()),
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("acquired package info from {}", p.found_in),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl(),
            }],
        });
        if let Some(s) = &p.supplier {
            // SPDX wants "Person: …" or "Organization: …"; a package database only says who maintains it.
            pkg["supplier"] = json!(format!("Person: {}", s.replace('\n', " ")));
        }
        if let Some(l) = &p.license {
            pkg["comment"] = json!(format!("license as declared by the package: {l}"));
        }
        packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": root,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": spdx_id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("sbom-{}", inv.image),
        "documentNamespace": format!("https://lamina.invalid/spdx/{}", stable_uuid(&[id, "spdx"])),
        "creationInfo": {
            "created": spdx_time(inv.created.as_deref()),
            "creators": [format!("Tool: {tool}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// SPDX's `created` is `YYYY-MM-DDThh:mm:ssZ` exactly: no fraction, UTC. Image configs carry RFC 3339
/// with nanoseconds (`2024-01-01T00:00:00.123456789Z`).
fn spdx_time(created: Option<&str>) -> String {
    match created {
        Some(t) if t.len() >= 19 && t.is_char_boundary(19) && t.as_bytes()[10] == b'T' => {
            format!("{}Z", &t[..19])
        }
        _ => "1970-01-01T00:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn created_is_second_precision_utc() {
        assert_eq!(
            super::spdx_time(Some("2026-12-07T16:17:54.264485183Z")),
            "2026-12-07T16:17:54Z"
        );
        assert_eq!(
            super::spdx_time(Some("2026-12-07T16:17:54Z")),
            "2026-12-07T16:17:54Z"
        );
        assert_eq!(super::spdx_time(Some("garbage")), "1970-01-01T00:00:00Z");
        assert_eq!(super::spdx_time(None), "1970-01-01T00:00:00Z");
    }
}
